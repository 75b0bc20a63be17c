"""The Telugu speech codec: an encoder/decoder around the library's blocks.

Waveform ``(B, 1, S)`` at 16 kHz -> encoder (one latent frame per 320 samples, 50 Hz) ->
:class:`rvq_blocks.ResidualVQ` -> decoder -> output head. With 12 quantizers of 1024 codes this
is 12 x 10 bits x 50 Hz = 6 kbps. Two architectures (``CodecConfig.arch``):

* ``frame`` (the default for new runs): every layer runs at the 50 Hz frame rate. The encoder
  frames the waveform with one strided convolution (kernel 2 x hop, stride hop) followed by
  ConvNeXt blocks; the decoder is ConvNeXt blocks ending in :class:`rvq_blocks.ISTFTHead`
  (n_fft 4 x hop, Vocos-style), so nothing is upsampled by transposed convolutions;
* ``seanet``: the original SEANet-style convolutional encoder/decoder (strides 2, 4, 5, 8,
  16 channels doubling at every downsampling) ending in a selectable head.

Only the encoder and decoder are specific to this example; the quantizer, the head and every
loss come from ``rvq_blocks``. The head is selectable for the ablation:

* ``scaled_tanh``: :class:`rvq_blocks.ScaledTanhHead` ``tanh(scale * x)``, scale learnable from 1.0;
* ``tanh``: a fixed ``tanh(x)`` (DAC's output layer);
* ``clamp``: identity in training, clamped to [-1, 1] at inference (BigVGAN-v2 style);
* ``original``: ``scale * tanh(x)`` with a learnable scale initialised at 3.0 (the failed run).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rvq_blocks import ISTFTHead, ResidualVQ, RVQOutput, ScaledTanhHead

Head = Literal["scaled_tanh", "tanh", "clamp", "original"]
HEADS: tuple[str, ...] = ("scaled_tanh", "tanh", "clamp", "original")
ARCHS: tuple[str, ...] = ("frame", "seanet")


@dataclass
class CodecConfig:
    """Everything needed to rebuild a :class:`TeluguCodec` (stored in every checkpoint)."""

    sample_rate: int = 16000
    channels: int = 16  # width of the first encoder block; doubles at every downsampling
    strides: tuple[int, ...] = (2, 4, 5, 8)
    latent_dim: int = 64
    num_quantizers: int = 12
    codebook_size: int = 1024
    codebook_dim: int | None = None
    quantizer_dropout: float = 0.0
    head: str = "scaled_tanh"
    # subtract each latent channel's mean over time (per example); off for new runs, kept for
    # checkpoints trained with it
    center_latents: bool = False
    arch: str = "seanet"  # checkpoints from before the frame architecture have no arch field
    # frame architecture: ConvNeXt width and depth of encoder and decoder (4.8 M parameters,
    # 9.6 MB as fp16 weights)
    enc_width: int = 192
    enc_blocks: int = 4
    dec_width: int = 256
    dec_blocks: int = 6
    istft_n_fft: int | None = None  # frame architecture: the iSTFT head's n_fft (4 x hop)
    # frame architecture: the head's frame rate as a multiple of the latent rate (1: the head
    # runs at 50 Hz; 4: a transposed convolution and two ConvNeXt blocks at 200 Hz feed an
    # iSTFT head with hop 80, whose frames need four times less phase precision)
    head_upsample: int = 1
    extra: dict = field(default_factory=dict)  # room for forward-compatible options

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strides"] = list(self.strides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CodecConfig:
        d = dict(d)
        d["strides"] = tuple(d["strides"])
        return cls(**d)


class ResidualUnit(nn.Module):
    """``x + conv1x1(elu(dilated_conv7(elu(x))))``, length-preserving."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


def _down(c_in: int, c_out: int, stride: int) -> nn.Conv1d:
    # kernel 2s, padding ceil(s/2): exactly S / s frames when s divides S
    return nn.Conv1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2))


def _up(c_in: int, c_out: int, stride: int) -> nn.ConvTranspose1d:
    return nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride,
                              padding=math.ceil(stride / 2), output_padding=stride % 2)


class Encoder(nn.Module):
    """``(B, 1, S)`` -> ``(B, latent_dim, S / hop)``, each channel centred over time."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        c = cfg.channels
        layers: list[nn.Module] = [nn.Conv1d(1, c, 7, padding=3)]
        for s in cfg.strides:
            layers += [ResidualUnit(c, 1), ResidualUnit(c, 3), nn.ELU(), _down(c, 2 * c, s)]
            c *= 2
        layers += [nn.ELU(), nn.Conv1d(c, cfg.latent_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.center_latents = cfg.center_latents

    def forward(self, x: Tensor) -> Tensor:
        z = self.net(x)
        if self.center_latents:
            # Without this the whole latent cloud drifts with the encoder's biases in the first
            # steps, faster than the codebooks follow: every frame then maps to one code (1 of
            # 1024 per batch for hundreds of steps, measured) and the decoder learns nothing.
            z = z - z.mean(dim=-1, keepdim=True)
        return z


class Decoder(nn.Module):
    """``(B, latent_dim, T)`` -> ``(B, 1, T * hop)`` pre-activation (the head bounds it)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        c = cfg.channels * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [nn.Conv1d(cfg.latent_dim, c, 7, padding=3)]
        for s in reversed(cfg.strides):
            layers += [nn.ELU(), _up(c, c // 2, s), ResidualUnit(c // 2, 1),
                       ResidualUnit(c // 2, 3)]
            c //= 2
        layers += [nn.ELU(), nn.Conv1d(c, 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k7) -> LayerNorm -> pointwise MLP (x3) -> layer scale, residual."""

    def __init__(self, dim: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, 3 * dim)
        self.pw2 = nn.Linear(3 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.dwconv(x).transpose(1, 2))
        h = self.gamma * self.pw2(F.gelu(self.pw1(h)))
        return x + h.transpose(1, 2)


class FrameEncoder(nn.Module):
    """``(B, 1, S)`` -> ``(B, latent_dim, S / hop)``: strided framing conv + ConvNeXt at 50 Hz."""

    input_gain = 10.0  # speech at -20 dBFS -> unit-scale frames

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        hop, w = cfg.hop_length, cfg.enc_width
        self.frame = nn.Conv1d(1, w, 2 * hop, stride=hop, padding=hop // 2)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(w, 1.0 / cfg.enc_blocks)
                                      for _ in range(cfg.enc_blocks)])
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, cfg.latent_dim)
        self.center_latents = cfg.center_latents

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.frame(self.input_gain * x))
        z = self.out(self.norm(h.transpose(1, 2))).transpose(1, 2)
        if self.center_latents:  # see Encoder.forward
            z = z - z.mean(dim=-1, keepdim=True)
        return z


class FrameDecoder(nn.Module):
    """``(B, latent_dim, T)`` -> ConvNeXt at 50 Hz -> ``(B, dec_width, T)`` for the iSTFT head."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        w = cfg.dec_width
        self.inp = nn.Conv1d(cfg.latent_dim, w, 7, padding=3)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(w, 1.0 / cfg.dec_blocks)
                                      for _ in range(cfg.dec_blocks)])
        self.norm = nn.LayerNorm(w)

    def forward(self, z: Tensor) -> Tensor:
        h = self.blocks(self.inp(z))
        return self.norm(h.transpose(1, 2)).transpose(1, 2)


class FrameHead(ISTFTHead):
    """:class:`rvq_blocks.ISTFTHead` with the ``scale`` the training log reports (always 1)."""

    scale = torch.tensor(1.0)


class UpsampledFrameHead(FrameHead):
    """:class:`FrameHead` fed at ``factor`` times the latent frame rate.

    An iSTFT head at 50 Hz (hop 20 ms) must predict each frame's phase so precisely that the
    four overlapping frames add up: a harmonic at 2 kHz turns 40 cycles between frames, so an
    error of 1% in its frequency cancels it. Upsampled by ``factor`` the hop shrinks, and with
    it the phase advance the decoder has to get right.
    """

    def __init__(self, dim: int, width: int, factor: int, hop_length: int,
                 n_fft: int | None = None) -> None:
        if factor < 2 or factor % 2 or hop_length % factor:
            raise ValueError(f"head_upsample must be an even divisor of the hop {hop_length}, "
                             f"got {factor}")
        hop = hop_length // factor
        super().__init__(width, n_fft or 4 * hop, hop)
        self.factor = factor
        self.up = nn.ConvTranspose1d(dim, width, 2 * factor, stride=factor, padding=factor // 2)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(width, 0.5) for _ in range(2)])
        self.norm = nn.LayerNorm(width)

    def spectrum(self, x: Tensor) -> Tensor:
        h = self.blocks(self.up(x))  # (B, width, factor * T)
        return super().spectrum(self.norm(h.transpose(1, 2)).transpose(1, 2))


class OriginalHead(nn.Module):
    """The failed run's head: ``scale * tanh(x)`` with a learnable scale initialised at 3.0."""

    def __init__(self) -> None:
        super().__init__()
        self.output_scale = nn.Parameter(torch.tensor(3.0))

    @property
    def scale(self) -> Tensor:
        return self.output_scale.detach()

    def forward(self, x: Tensor) -> Tensor:
        return self.output_scale * torch.tanh(x)


class FixedTanh(nn.Module):
    scale = torch.tensor(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x)


class IdentityClamp(nn.Module):
    """Identity while training (full gradient), clamped to [-1, 1] at inference."""

    scale = torch.tensor(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return x if self.training else x.clamp(-1.0, 1.0)


def make_head(name: str) -> nn.Module:
    if name == "scaled_tanh":
        return ScaledTanhHead(1.0)
    if name == "tanh":
        return FixedTanh()
    if name == "clamp":
        return IdentityClamp()
    if name == "original":
        return OriginalHead()
    raise ValueError(f"head must be one of {HEADS}, got {name!r}")


class TeluguCodec(nn.Module):
    """Encoder -> ``ResidualVQ`` -> decoder -> head.

    ``forward(wav)`` takes ``(B, 1, S)`` with ``S`` a multiple of ``hop_length`` and returns
    ``(y, rvq_out)``: the reconstruction ``(B, 1, S)`` and the quantizer's :class:`RVQOutput`.
    """

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {cfg.head!r}")
        if cfg.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {cfg.arch!r}")
        self.cfg = cfg
        self.quantizer = ResidualVQ(cfg.latent_dim, cfg.num_quantizers, cfg.codebook_size,
                                    codebook_dim=cfg.codebook_dim,
                                    quantizer_dropout=cfg.quantizer_dropout)
        self.encoder: nn.Module
        self.decoder: nn.Module
        self.head: nn.Module
        if cfg.arch == "frame":
            self.encoder = FrameEncoder(cfg)
            self.decoder = FrameDecoder(cfg)
            if cfg.head_upsample > 1:
                self.head = UpsampledFrameHead(cfg.dec_width, cfg.dec_width // 2,
                                               cfg.head_upsample, cfg.hop_length,
                                               cfg.istft_n_fft)
            else:
                self.head = FrameHead(cfg.dec_width, cfg.istft_n_fft or 4 * cfg.hop_length,
                                      cfg.hop_length)
        else:
            self.encoder = Encoder(cfg)
            self.decoder = Decoder(cfg)
            self.head = make_head(cfg.head)

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes at full depth."""
        return self.quantizer.bitrate(self.cfg.frame_rate)

    def _check(self, wav: Tensor) -> None:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected a waveform (batch, 1, samples), got {tuple(wav.shape)}")
        if wav.shape[-1] % self.hop_length:
            raise ValueError(f"expected samples to be a multiple of hop_length "
                             f"{self.hop_length}, got {wav.shape[-1]} (use pad_to_hop)")

    def forward(self, wav: Tensor, n_quantizers: int | None = None, *,
                bypass: bool = False) -> tuple[Tensor, RVQOutput | None]:
        """``bypass=True`` decodes the unquantized latents (the warm-up before the codes).
        Then the second value is ``None``."""
        self._check(wav)
        z = self.encoder(wav)
        if bypass:
            return self.head(self.decoder(z)), None
        out = self.quantizer(z, n_quantizers=n_quantizers)
        return self.head(self.decoder(out.quantized)), out

    @torch.no_grad()
    def encode(self, wav: Tensor, n_quantizers: int | None = None) -> Tensor:
        """``(B, 1, S)`` -> codes ``(B, n, S / hop)`` int64 (eval mode, no state change)."""
        self._check(wav)
        return self.quantizer.encode(self.encoder(wav), n_quantizers)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, n, T)`` -> waveform ``(B, 1, T * hop)`` in [-1, 1]."""
        y = self.head(self.decoder(self.quantizer.decode(codes)))
        return y.clamp(-1.0, 1.0)


def pad_to_hop(wav: Tensor, hop: int) -> Tensor:
    """Zero-pad the last axis up to a multiple of ``hop``."""
    extra = (-wav.shape[-1]) % hop
    return F.pad(wav, (0, extra)) if extra else wav
