"""Adversarial losses for the Telugu codec: a multi-resolution STFT discriminator.

A codec at a few kbps cannot carry the phase of the harmonics above about 1 kHz, and the
regression losses (waveform MSE, complex STFT) then score silence in that band better than
a band with the right magnitude and an unknown phase: the decoder learns to leave it out
(docs/telugu_codec.md, "Where the quality goes"). A discriminator scores the *kind* of
signal instead of the sample-exact one, so a band with plausible structure and any phase is
no longer worse than silence. This is what EnCodec and DAC train with; the discriminator
here follows the idea of EnCodec's multi-scale STFT discriminator (2-D convolutions over the
real and imaginary parts of an STFT, one small network per resolution), kept small for a CPU.

``--adversarial W`` in ``train.py`` adds two losses to the balancer with weight ``W`` each:
``adv``, the hinge generator loss, and ``fm``, feature matching (the L1 distance between the
discriminator's feature maps of the output and of the input, each layer divided by the
input's mean magnitude). The discriminator takes one hinge step per generator step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RESOLUTIONS = ((256, 64), (512, 128), (1024, 256))  # (n_fft, hop)


class STFTDiscriminator(nn.Module):
    """One resolution: ``(B, 1, S)`` -> logits ``(B, 1, F', T')`` and the feature maps.

    The STFT's real and imaginary parts are two input channels of a ``(T, F)`` image; 2-D
    convolutions with dilations growing along time (frames), striding along frequency.
    """

    def __init__(self, n_fft: int, hop: int, channels: int = 8) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList([
            nn.Conv2d(2, c, (3, 9), stride=(1, 2), padding=(1, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(1, 1), padding=(1, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(2, 1), padding=(2, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(4, 1), padding=(4, 4)),
            nn.Conv2d(c, c, (3, 3), padding=(1, 1)),
        ])
        self.out = nn.Conv2d(c, 1, (3, 3), padding=(1, 1))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        spec = torch.stft(wav[:, 0], self.n_fft, self.hop, window=self.window,
                          return_complex=True)  # (B, F, T)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, T, F)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return self.out(h), feats


class MultiResolutionDiscriminator(nn.Module):
    """The :data:`RESOLUTIONS` discriminators side by side; waveforms ``(B, 1, S)``."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.discs = nn.ModuleList([STFTDiscriminator(n, h, channels) for n, h in RESOLUTIONS])

    def forward(self, wav: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [d(wav) for d in self.discs]

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """Hinge loss of the discriminator: real above +1, fake below -1 (``fake`` detached)."""
        loss = real.new_zeros(())
        for (lr, _), (lf, _) in zip(self(real), self(fake.detach()), strict=True):
            loss = loss + F.relu(1 - lr).mean() + F.relu(1 + lf).mean()
        return loss / len(self.discs)

    def generator_losses(self, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        """``(adv, fm)``: the hinge generator loss and feature matching, each averaged over
        the resolutions. Gradients reach ``fake`` only; the discriminator's parameters get
        gradients too, which its own step clears."""
        with torch.no_grad():
            ref = self(real)
        adv, fm = fake.new_zeros(()), fake.new_zeros(())
        for (lf, ff), (_, fr) in zip(self(fake), ref, strict=True):
            adv = adv + F.relu(1 - lf).mean()
            fm = fm + sum((a - b).abs().mean() / b.abs().mean().clamp_min(1e-5)
                          for a, b in zip(ff, fr, strict=True)) / len(ff)
        n = len(self.discs)
        return adv / n, fm / n
