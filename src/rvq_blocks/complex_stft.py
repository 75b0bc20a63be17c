"""Multi-resolution power-law-compressed complex STFT loss (phase-aware).

For each resolution the spectra of prediction and target are compressed bin by bin,
``X_c = |X|^c * exp(i * angle(X))`` with ``c = compression`` (0.3 by default), then compared::

    loss_r = complex_weight * mean |P_c - T_c|^2 + (1 - complex_weight) * mean (|P|^c - |T|^c)^2

The power law lifts quiet bins (a bin 40 dB below another weighs 10^(-40 * 0.3 / 20) = 0.25 of it
instead of 0.01 under a plain squared error), so pauses and high bands count; the complex term
penalises phase errors, which a magnitude or mel loss cannot see. ``|X|^c`` is computed as
``(|X|^2 + eps)^(c/2)`` so the gradient stays finite at silent bins. The result is the mean over
resolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._checks import check_audio_pair, check_positive, check_range

__all__ = ["ComplexSTFTLoss", "complex_stft_loss"]

_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))


def _check_args(resolutions: Sequence[tuple[int, int]], compression: float,
                complex_weight: float, eps: float, owner: str) -> list[tuple[int, int]]:
    res = [tuple(r) for r in resolutions]
    if not res or any(len(r) != 2 or r[0] < 4 or not 1 <= r[1] <= r[0] for r in res):
        raise ValueError(f"{owner} expected a non-empty list of (n_fft >= 4, 1 <= hop <= n_fft) "
                         f"pairs, got {list(resolutions)}")
    check_range("compression", compression, 0.0, 1.0, owner, low_open=True)
    check_range("complex_weight", complex_weight, 0.0, 1.0, owner)
    check_positive("eps", eps, owner)
    return [(int(a), int(b)) for a, b in res]


def _flatten(pred: Tensor, target: Tensor, min_samples: int, owner: str) -> tuple[Tensor, Tensor]:
    """Check the waveforms and return them as ``(B * C, S)``."""
    p, t = check_audio_pair(pred, target, owner, min_samples=min_samples,
                            why=" (half the largest n_fft + 1)")
    return p.reshape(-1, p.shape[-1]), t.reshape(-1, t.shape[-1])


def _compressed(x: Tensor, window: Tensor, n_fft: int, hop: int, c: float,
                eps: float) -> tuple[Tensor, Tensor]:
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    power = spec.real.square() + spec.imag.square() + eps
    mag_c = power.pow(c / 2)
    # X * |X|^(c - 1): the compressed complex spectrum, smooth at silent bins
    return spec * power.pow((c - 1) / 2), mag_c


def complex_stft_loss(pred: Tensor, target: Tensor,
                      resolutions: Sequence[tuple[int, int]] = _RESOLUTIONS,
                      compression: float = 0.3, complex_weight: float = 0.3,
                      eps: float = 1e-8) -> Tensor:
    """Functional form of :class:`ComplexSTFTLoss`; returns a scalar.

    Args:
        pred: ``(B, C, S)`` or ``(B, S)`` audio.
        target: same shape as ``pred``.
        resolutions: ``(n_fft, hop_length)`` pairs (Hann window of ``n_fft``).
        compression: power-law exponent ``c`` in ``(0, 1]`` (1 = no compression).
        complex_weight: share of the complex (phase-aware) term in ``[0, 1]``; the rest goes to
            the compressed-magnitude term.
        eps: added to ``|X|^2`` before compressing.
    """
    owner = "complex_stft_loss"
    res = _check_args(resolutions, compression, complex_weight, eps, owner)
    p, t = _flatten(pred, target, max(n for n, _ in res) // 2 + 1, owner)
    total = p.new_zeros(())
    for n_fft, hop in res:
        window = torch.hann_window(n_fft, dtype=p.dtype, device=p.device)
        pc, pm = _compressed(p, window, n_fft, hop, compression, eps)
        tc, tm = _compressed(t, window, n_fft, hop, compression, eps)
        cplx = (pc - tc).abs().square().mean() if complex_weight > 0 else total.new_zeros(())
        mag = (pm - tm).square().mean()
        total = total + complex_weight * cplx + (1.0 - complex_weight) * mag
    return total / len(res)


class ComplexSTFTLoss(nn.Module):
    """Multi-resolution power-law-compressed complex STFT loss.

    See the module docstring for the formula. Stateless; a module so it can sit beside the other
    losses (for example in a :class:`rvq_blocks.LossBalancer` dictionary).

    Args:
        resolutions: ``(n_fft, hop_length)`` pairs, default ``(512, 128), (1024, 256),
            (2048, 512)``.
        compression: power-law exponent ``c`` in ``(0, 1]``, default 0.3.
        complex_weight: share of the phase-aware complex term, default 0.3 (the remaining 0.7
            on compressed magnitudes, as in Braun and Tashev's compressed spectral loss).
        eps: added to the power before compressing (finite gradients at silent bins).

    Shapes:
        ``pred``, ``target``: ``(B, C, S)`` or ``(B, S)`` with ``S`` at least half the largest
        ``n_fft`` plus one; returns a scalar.

    Example:
        >>> loss = ComplexSTFTLoss()
        >>> x = torch.randn(2, 1, 8000)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(self, resolutions: Sequence[tuple[int, int]] = _RESOLUTIONS,
                 compression: float = 0.3, complex_weight: float = 0.3,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.resolutions = _check_args(resolutions, compression, complex_weight, eps,
                                       "ComplexSTFTLoss")
        self.compression, self.complex_weight, self.eps = compression, complex_weight, eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return complex_stft_loss(pred, target, self.resolutions, self.compression,
                                 self.complex_weight, self.eps)

    def extra_repr(self) -> str:
        return (f"resolutions={self.resolutions}, compression={self.compression:g}, "
                f"complex_weight={self.complex_weight:g}")
