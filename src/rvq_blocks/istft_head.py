"""An inverse-STFT output head (Vocos-style) with an exactly invertible "same"-padded STFT.

A decoder that runs at the frame rate predicts, for every frame, a log-magnitude and a phase
for each of ``n_fft // 2 + 1`` frequency bins; an inverse STFT turns them into ``hop_length``
samples per frame. The network never has to upsample: all its layers run at the frame rate.

``torch.istft(center=True)`` returns ``(T - 1) * hop_length`` samples for ``T`` frames, one hop
short of the ``T * hop_length`` an encoder with stride ``hop_length`` consumed. :func:`istft_same`
instead pads by ``(n_fft - hop_length) // 2`` on each side (as Vocos does), so ``T`` frames give
exactly ``T * hop_length`` samples and :func:`stft_same` followed by :func:`istft_same` returns
its input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_float_tensor, check_positive, check_positive_int

__all__ = ["ISTFTHead", "istft_same", "stft_same"]


def _check_fft(n_fft: int, hop_length: int, owner: str) -> None:
    check_positive_int("n_fft", n_fft, owner)
    check_positive_int("hop_length", hop_length, owner)
    if n_fft % 2 or hop_length > n_fft or (n_fft - hop_length) % 2:
        raise ValueError(f"{owner} expected an even n_fft >= hop_length with n_fft - hop_length "
                         f"even, got n_fft={n_fft}, hop_length={hop_length}")


def _window(n_fft: int, like: Tensor) -> Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=like.real.dtype, device=like.device)


def stft_same(audio: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """Hann-windowed STFT with "same" padding: ``(B, S)`` -> complex ``(B, n_fft // 2 + 1, T)``.

    ``S`` must be a multiple of ``hop_length``; ``T = S / hop_length``. The signal is
    zero-padded by ``(n_fft - hop_length) // 2`` on each side. :func:`istft_same` inverts it.
    """
    owner = "stft_same"
    _check_fft(n_fft, hop_length, owner)
    audio = check_float_tensor("audio", audio, owner)
    if audio.ndim != 2 or audio.shape[-1] == 0 or audio.shape[-1] % hop_length:
        raise ValueError(f"{owner} expected audio of shape (B, S) with S a positive multiple of "
                         f"hop_length={hop_length}, got {tuple(audio.shape)}")
    pad = (n_fft - hop_length) // 2
    frames = F.pad(audio, (pad, pad)).unfold(-1, n_fft, hop_length)  # (B, T, n_fft)
    spec: Tensor = torch.fft.rfft(frames * _window(n_fft, audio), dim=-1)
    return spec.transpose(1, 2)


def istft_same(spec: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """Inverse of :func:`stft_same`: complex ``(B, n_fft // 2 + 1, T)`` -> ``(B, T * hop_length)``.

    Windowed overlap-add divided by the summed squared window (least-squares inverse), with
    ``(n_fft - hop_length) // 2`` samples cut from each end.
    """
    owner = "istft_same"
    _check_fft(n_fft, hop_length, owner)
    if not isinstance(spec, Tensor) or not spec.is_complex():
        raise TypeError(f"{owner} expected a complex tensor, got "
                        f"{getattr(spec, 'dtype', type(spec).__name__)}")
    bins = n_fft // 2 + 1
    if spec.ndim != 3 or spec.shape[1] != bins or spec.shape[2] == 0:
        raise ValueError(f"{owner} expected spec of shape (B, {bins}, T) with T >= 1, got "
                         f"{tuple(spec.shape)}")
    frames = spec.shape[2]
    pad = (n_fft - hop_length) // 2
    window = _window(n_fft, spec)
    ifft = torch.fft.irfft(spec, n_fft, dim=1) * window[None, :, None]  # (B, n_fft, T)
    size = (frames - 1) * hop_length + n_fft
    y = F.fold(ifft, output_size=(1, size), kernel_size=(1, n_fft), stride=(1, hop_length))
    envelope = F.fold(window.square()[None, :, None].expand(1, n_fft, frames),
                      output_size=(1, size), kernel_size=(1, n_fft), stride=(1, hop_length))
    y = y[:, 0, 0, pad:size - pad]
    envelope = envelope[0, 0, 0, pad:size - pad]
    return y / envelope.clamp_min(1e-11)


class ISTFTHead(nn.Module):
    """Frame features ``(B, dim, T)`` -> waveform ``(B, 1, T * hop_length)`` by an inverse STFT.

    A 1x1 convolution predicts, per frame and frequency bin, a log-magnitude and two
    components ``(a, b)`` whose angle ``atan2(b, a)`` is the phase. The magnitude is
    ``exp(log_magnitude)`` clipped to ``max_magnitude``, so the spectrum, and with it the output
    (at most ``max_magnitude * (n_fft // 2 + 1) * 2 / n_fft`` times the window ratio), is
    bounded whatever the decoder produces. :func:`istft_same` makes the output exactly
    ``T * hop_length`` samples long.

    Args:
        dim: feature channels ``D`` of the input.
        n_fft: FFT size (Vocos uses ``4 * hop_length``); even.
        hop_length: samples per frame.
        max_magnitude: upper bound of each bin's magnitude (Vocos: 100).

    Shapes:
        input ``(B, dim, T)``; output ``(B, 1, T * hop_length)``.

    Example:
        >>> head = ISTFTHead(dim=32, n_fft=1280, hop_length=320)
        >>> head(torch.randn(2, 32, 50)).shape
        torch.Size([2, 1, 16000])
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int,
                 max_magnitude: float = 100.0) -> None:
        super().__init__()
        owner = "ISTFTHead"
        check_positive_int("dim", dim, owner)
        _check_fft(n_fft, hop_length, owner)
        self.max_magnitude = check_positive("max_magnitude", max_magnitude, owner)
        self.dim, self.n_fft, self.hop_length = dim, n_fft, hop_length
        self.bins = n_fft // 2 + 1
        self.proj = nn.Conv1d(dim, 3 * self.bins, 1)

    def spectrum(self, x: Tensor) -> Tensor:
        """The complex spectrum ``(B, n_fft // 2 + 1, T)`` predicted from ``x`` ``(B, dim, T)``."""
        owner = "ISTFTHead"
        x = check_float_tensor("x", x, owner)
        if x.ndim != 3 or x.shape[1] != self.dim or x.shape[2] == 0:
            raise ValueError(f"{owner} expected x of shape (B, {self.dim}, T) with T >= 1, got "
                             f"{tuple(x.shape)}")
        log_mag, a, b = self.proj(x).chunk(3, dim=1)
        mag = torch.exp(log_mag.clamp(max=math.log(self.max_magnitude)))
        phase = torch.atan2(b, a)
        return torch.polar(mag, phase)

    def forward(self, x: Tensor) -> Tensor:
        return istft_same(self.spectrum(x), self.n_fft, self.hop_length).unsqueeze(1)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"max_magnitude={self.max_magnitude:g}")
