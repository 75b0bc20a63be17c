"""Multi-resolution STFT and multi-scale log-mel losses on ``torch.stft`` (no torchaudio)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn
from typing_extensions import override

from ._checks import (
    check_audio_pair,
    check_choice,
    check_positive,
    check_positive_int,
)

__all__ = ["mel_filterbank", "multi_resolution_stft_loss", "multi_scale_mel_loss",
           "MultiResolutionSTFTLoss", "MultiScaleMelLoss"]

_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
_MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)
_STFT_SIZES = (512, 1024, 2048)


# Slaney's Auditory Toolbox scale (librosa's default, htk=False): linear below 1 kHz at
# 3 bins per 200 Hz, logarithmic above with 27 bins per factor of 6.4
_SLANEY_HZ_STEP = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_STEP  # 15
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(f: Tensor | float, scale: str = "htk") -> Tensor:
    f = torch.as_tensor(f, dtype=torch.float64)
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    log_part = _SLANEY_BREAK_MEL + torch.log(f.clamp(min=_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ
                                             ) / _SLANEY_LOG_STEP
    return torch.where(f >= _SLANEY_BREAK_HZ, log_part, f / _SLANEY_HZ_STEP)


def _mel_to_hz(m: Tensor, scale: str = "htk") -> Tensor:
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_part = _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOG_STEP * (m - _SLANEY_BREAK_MEL))
    return torch.where(m >= _SLANEY_BREAK_MEL, log_part, m * _SLANEY_HZ_STEP)


def mel_filterbank(
    n_freqs: int,
    n_mels: int,
    sample_rate: float,
    *,
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: Literal["htk", "slaney"] = "htk",
    norm: Literal["sum", "slaney"] | None = "sum",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Triangular mel filterbank; by default HTK-scaled with bands that each sum to 1.

    Band ``m`` is a triangle between mel-spaced edges. With ``norm="sum"`` (the default,
    used by :class:`MultiScaleMelLoss`) each column is normalised to sum to 1, so a band's
    output is a weighted *average* of the bin powers: white noise of variance ``v`` gives
    ``v`` in every band, whatever ``n_mels``; a band too narrow to contain any bin (short
    windows, many bands) takes the bin nearest its centre instead of being empty, so no band
    is silently zero.

    ``mel_scale="slaney", norm="slaney"`` gives the filters of ``librosa.filters.mel`` (its
    defaults) and ``torchaudio``'s ``melscale_fbanks(..., norm="slaney", mel_scale="slaney")``,
    which DAC's mel loss uses: Slaney's scale (linear below 1 kHz, logarithmic above), each
    triangle scaled by ``2 / (hi - lo)`` in Hz, so band sums grow with bandwidth. Pick these
    to compare mel features or loss values with those tools; keep the default for a loss whose
    scale does not depend on ``n_mels``. With ``norm="slaney"`` or ``None`` (peak 1) an empty
    band stays zero, as in librosa.

    Args:
        n_freqs: Number of one-sided frequency bins, ``n_fft // 2 + 1``.
        n_mels: Number of mel bands.
        sample_rate: Sampling rate in Hz.
        f_min: Lowest edge in Hz.
        f_max: Highest edge in Hz; defaults to ``sample_rate / 2``.
        mel_scale: ``"htk"`` (``2595 log10(1 + f / 700)``) or ``"slaney"``.
        norm: ``"sum"`` (each band sums to 1), ``"slaney"`` (area normalisation, librosa's
            default) or ``None`` (triangles of height 1).
        device: Device of the result.
        dtype: Dtype of the result (default: torch's default dtype).

    Returns:
        The filterbank; ``power (..., F) @ fb`` gives mel band powers ``(..., n_mels)``.

    Raises:
        ValueError: If a size is below 1 (``n_freqs`` below 2), the band edges are not
            ``0 <= f_min < f_max <= sample_rate / 2``, or ``mel_scale``/``norm`` is unknown.

    Shape:
        - Output: ``(n_freqs, n_mels)`` (the transpose of librosa's ``(n_mels, n_freqs)``).
    """
    f_max = _check_mel_options(n_freqs, n_mels, sample_rate, f_min, f_max, mel_scale, norm)
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (F,)
    mels = torch.linspace(_hz_to_mel(f_min, mel_scale).item(),
                          _hz_to_mel(f_max, mel_scale).item(), n_mels + 2, dtype=torch.float64)
    edges = _mel_to_hz(mels, mel_scale)  # (M + 2,)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]  # (M,) each
    rise = (freqs[:, None] - lo) / (mid - lo)  # (F, M)
    fall = (hi - freqs[:, None]) / (hi - mid)  # (F, M)
    fb = torch.clamp(torch.minimum(rise, fall), min=0.0)  # (F, M)
    if norm == "sum":
        empty = fb.sum(0) == 0  # (M,)
        nearest = (freqs[:, None] - mid).abs().argmin(0)  # (M,)
        fb[nearest[empty], torch.nonzero(empty).flatten()] = 1.0
        fb = fb / fb.sum(0, keepdim=True)
    elif norm == "slaney":
        fb = fb * (2.0 / (hi - lo))
    return fb.to(device=device, dtype=dtype or torch.get_default_dtype())


def _check_mel_options(n_freqs: int, n_mels: int, sample_rate: float, f_min: float,
                       f_max: float | None, mel_scale: str, norm: str | None) -> float:
    """Check :func:`mel_filterbank`'s options; return ``f_max`` (``sample_rate / 2`` for
    ``None``)."""
    owner = "mel_filterbank"
    if check_positive_int("n_freqs", n_freqs, owner) < 2:
        raise ValueError(f"{owner} expected n_freqs >= 2, got {n_freqs}")
    check_positive_int("n_mels", n_mels, owner)
    nyquist = check_positive("sample_rate", sample_rate, owner) / 2
    check_choice("mel_scale", mel_scale, ("htk", "slaney"), owner)
    check_choice("norm", norm, ("sum", "slaney", None), owner)
    f_max = nyquist if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ValueError(f"{owner} expected 0 <= f_min < f_max <= sample_rate / 2 = {nyquist}, "
                         f"got f_min={f_min}, f_max={f_max}")
    return f_max


def _flatten_audio(pred: Tensor, target: Tensor, min_samples: int,
                   owner: str) -> tuple[Tensor, Tensor]:
    """Check the waveforms and return them as ``(B * C, S)`` in one dtype, at least float32
    (stft and logs in half precision are unreliable)."""
    p, t = check_audio_pair(pred, target, owner, min_samples=min_samples,
                            why=" (half the largest window + 1)")
    dtype = torch.promote_types(torch.promote_types(p.dtype, t.dtype), torch.float32)
    s = p.shape[-1]
    return p.to(dtype).reshape(-1, s), t.to(dtype).reshape(-1, s)  # (B * C, S)


def _power(x: Tensor, window: Tensor, hop: int) -> Tensor:
    n_fft = window.shape[0]
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, center=True, pad_mode="reflect",
                      return_complex=True)  # (N, F, T)
    # divide by sum(w^2): white noise of variance v has expected power v in every bin
    return (spec.real.square() + spec.imag.square()) / window.square().sum()


def _distance(p_pow: Tensor, t_pow: Tensor, floor: float, log_weight: float,
              mag_weight: float) -> Tensor:
    f2 = floor * floor
    out = p_pow.new_zeros(())
    if log_weight:
        # log10 of the floored magnitude sqrt(power + floor^2): smooth, finite on silence
        out = out + log_weight * 0.5 * ((p_pow + f2).log10() - (t_pow + f2).log10()).abs().mean()
    if mag_weight:
        out = out + mag_weight * ((p_pow + f2).sqrt() - (t_pow + f2).sqrt()).abs().mean()
    return out


def _spectral_loss(p: Tensor, t: Tensor, windows: Sequence[Tensor], hops: Sequence[int],
                   fbs: Sequence[Tensor | None], floor: float, log_weight: float,
                   mag_weight: float) -> Tensor:
    total = p.new_zeros(())
    for window, hop, fb in zip(windows, hops, fbs, strict=True):
        window = window.to(device=p.device, dtype=p.dtype)
        p_pow, t_pow = _power(p, window, hop), _power(t, window, hop)  # (N, F, T)
        if fb is not None:
            fb = fb.to(device=p.device, dtype=p.dtype)
            p_pow, t_pow = p_pow.transpose(1, 2) @ fb, t_pow.transpose(1, 2) @ fb  # (N, T, M)
        total = total + _distance(p_pow, t_pow, floor, log_weight, mag_weight)
    return total / len(windows)


def _check_common(sizes: Sequence[int], floor: float, log_weight: float, mag_weight: float,
                  owner: str) -> None:
    if len(sizes) == 0 or any(int(n) != n or n < 4 for n in sizes):
        raise ValueError(f"{owner} expected a non-empty list of window sizes >= 4, got "
                         f"{tuple(sizes)}")
    check_positive("floor", floor, owner)
    check_positive("log_weight", log_weight, owner, allow_zero=True)
    check_positive("mag_weight", mag_weight, owner, allow_zero=True)
    if log_weight + mag_weight <= 0:
        raise ValueError(f"{owner} expected log_weight, mag_weight >= 0 with a positive sum, "
                         f"got {log_weight} and {mag_weight}")


def _hops(sizes: Sequence[int], hop_sizes: Sequence[int] | None, owner: str) -> list[int]:
    if hop_sizes is None:
        return [max(1, int(n) // 4) for n in sizes]
    if len(hop_sizes) != len(sizes) or any(h < 1 for h in hop_sizes):
        raise ValueError(f"{owner} expected {len(sizes)} hop sizes >= 1, got {tuple(hop_sizes)}")
    return [int(h) for h in hop_sizes]


def _stft_options(fft_sizes: Sequence[int], hop_sizes: Sequence[int] | None, floor: float,
                  log_weight: float, mag_weight: float,
                  owner: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check the options of a multi-resolution STFT loss; return its sizes and hops."""
    _check_common(fft_sizes, floor, log_weight, mag_weight, owner)
    sizes = tuple(int(n) for n in fft_sizes)
    return sizes, tuple(_hops(sizes, hop_sizes, owner))


def _mel_options(window_lengths: Sequence[int], n_mels: Sequence[int], floor: float,
                 log_weight: float, mag_weight: float,
                 owner: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check the options of a multi-scale mel loss; return its window lengths and bands."""
    _check_common(window_lengths, floor, log_weight, mag_weight, owner)
    if len(n_mels) != len(window_lengths):
        raise ValueError(f"{owner} expected one n_mels per window length "
                         f"({len(window_lengths)}), got {tuple(n_mels)}")
    return tuple(int(w) for w in window_lengths), tuple(int(m) for m in n_mels)


def _filterbank(n_fft: int, n_mels: int, sample_rate: float, f_min: float,
                f_max: float | None, device: torch.device | str | None,
                dtype: torch.dtype | None) -> Tensor:
    return mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min=f_min, f_max=f_max,
                          device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _cached_window(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    with torch.inference_mode(False):  # a normal tensor, usable in later autograd graphs
        return torch.hann_window(n, device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _cached_filterbank(n_fft: int, n_mels: int, sample_rate: float, f_min: float,
                       f_max: float | None, device: torch.device, dtype: torch.dtype) -> Tensor:
    with torch.inference_mode(False):
        return _filterbank(n_fft, n_mels, sample_rate, f_min, f_max, device, dtype)


def _windows(sizes: Sequence[int], device: torch.device) -> list[Tensor]:
    """Hann windows of the default dtype, as the modules' buffers hold them; cached per
    (size, device, dtype) outside ``torch.compile`` graphs."""
    dtype = torch.get_default_dtype()
    if torch.compiler.is_compiling():
        return [torch.hann_window(n, device=device, dtype=dtype) for n in sizes]
    return [_cached_window(n, device, dtype) for n in sizes]


def _filterbanks(sizes: Sequence[int], n_mels: Sequence[int], sample_rate: float,
                 f_min: float, f_max: float | None, device: torch.device) -> list[Tensor]:
    """:func:`mel_filterbank` per scale, of the default dtype; cached like :func:`_windows`."""
    dtype = torch.get_default_dtype()
    make = _filterbank if torch.compiler.is_compiling() else _cached_filterbank
    return [make(n, m, sample_rate, f_min, f_max, device, dtype)
            for n, m in zip(sizes, n_mels, strict=True)]


class _Buffers(nn.Module):
    """Tensors kept as non-persistent buffers ``"0"``, ``"1"``, ... and read back in order:
    they follow ``.to()`` and stay out of the state_dict."""

    def __init__(self, tensors: Iterable[Tensor]) -> None:
        super().__init__()
        for i, t in enumerate(tensors):
            self.register_buffer(str(i), t, persistent=False)

    def tensors(self) -> list[Tensor]:
        return [b for b in self._buffers.values() if b is not None]


class _MultiScaleSpectralLoss(nn.Module):
    """Shared forward: subclasses set ``fft_sizes``, ``hop_sizes``, ``windows`` and
    ``filterbanks`` (``None``: no mel projection)."""

    fft_sizes: tuple[int, ...]
    hop_sizes: tuple[int, ...]
    windows: _Buffers
    filterbanks: _Buffers | None
    floor: float
    log_weight: float
    mag_weight: float

    if TYPE_CHECKING:  # nn.Module.__call__ is untyped: give loss(...) forward's signature
        def __call__(self, pred: Tensor, target: Tensor) -> Tensor: ...

    @override
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss (a 0-d tensor)."""
        owner = type(self).__name__
        p, t = _flatten_audio(pred, target, max(self.fft_sizes) // 2 + 1, owner)
        fbs = [None] * len(self.fft_sizes) if self.filterbanks is None else \
            self.filterbanks.tensors()
        return _spectral_loss(p, t, self.windows.tensors(), self.hop_sizes, fbs, self.floor,
                              self.log_weight, self.mag_weight)


class MultiResolutionSTFTLoss(_MultiScaleSpectralLoss):
    """L1 distance of log (and optionally linear) STFT magnitudes at several resolutions.

    For each FFT size ``n`` (Hann window of length ``n``, hop ``n // 4`` by default, centred
    reflect padding), the power spectrum is normalised by ``sum(window^2)`` so that
    unit-variance noise has unit expected power per bin. The per-resolution distance is
    ``log_weight * mean|log10 m(pred) - log10 m(target)| + mag_weight * mean|m(pred) -
    m(target)|`` with the floored magnitude ``m = sqrt(power + floor^2)``, and the loss is the
    *mean* over resolutions, so its value does not grow with the number of resolutions.
    Spectral convergence (used by some STFT losses) is left out on purpose: it divides by the
    target's energy and explodes on silent targets.

    Args:
        fft_sizes: FFT and window sizes.
        hop_sizes: Hop per resolution; defaults to ``n // 4``.
        floor: Magnitude floor inside the log, ``> 0``; bounds the loss on silence at about
            ``log10(magnitude / floor)`` per bin.
        log_weight: Weight of the log-magnitude term.
        mag_weight: Weight of the linear-magnitude term.
        device: Factory argument for the window buffers.
        dtype: Factory argument for the window buffers.

    Raises:
        ValueError: On an FFT size below 4, a hop below 1, a ``floor`` that is not finite
            and positive, negative weights or weights summing to 0; in ``forward``, on
            mismatched shapes or fewer than ``max(fft_sizes) // 2 + 1`` samples.
        TypeError: If an option is not a number; in ``forward``, if an input is not a
            floating-point tensor.

    Shape:
        - ``pred``, ``target``: ``(B, C, S)`` or ``(B, S)``, ``S > max(fft_sizes) // 2``.
        - Output: ``()``.

    Example:
        >>> import torch
        >>> loss_fn = MultiResolutionSTFTLoss(fft_sizes=(64, 128), mag_weight=0.0)
        >>> x = torch.randn(2, 1, 1000)
        >>> round(loss_fn(2 * x, x).item(), 3)  # log10(2)
        0.301
    """

    def __init__(
        self,
        *,
        fft_sizes: Sequence[int] = _STFT_SIZES,
        hop_sizes: Sequence[int] | None = None,
        floor: float = 1e-5,
        log_weight: float = 1.0,
        mag_weight: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.fft_sizes, self.hop_sizes = _stft_options(fft_sizes, hop_sizes, floor, log_weight,
                                                       mag_weight, "MultiResolutionSTFTLoss")
        self.floor, self.log_weight, self.mag_weight = float(floor), log_weight, mag_weight
        # derived, so not saved in the state_dict
        self.windows = _Buffers(torch.hann_window(n, device=device, dtype=dtype)
                                for n in self.fft_sizes)
        self.filterbanks = None

    @override
    def extra_repr(self) -> str:
        return (f"fft_sizes={self.fft_sizes}, hop_sizes={self.hop_sizes}, floor={self.floor}, "
                f"log_weight={self.log_weight}, mag_weight={self.mag_weight}")


class MultiScaleMelLoss(_MultiScaleSpectralLoss):
    """L1 distance of log mel magnitudes at several window sizes (DAC-style mel loss).

    Each scale uses a Hann window of length ``w`` (FFT size ``w``, hop ``w // 4``), a
    normalised power spectrum as in :class:`MultiResolutionSTFTLoss`, and a
    :func:`mel_filterbank` with bands that average bin powers. The distance per scale is
    ``log_weight * mean|log10 m(pred) - log10 m(target)| + mag_weight * mean|m(pred) -
    m(target)|`` on floored mel magnitudes ``m = sqrt(mel_power + floor^2)``, averaged over
    scales. Defaults follow DAC's 7 scales (windows 32..2048, 5..320 bands, log term only);
    DAC sums its scales where this loss averages them, so DAC's weight of 15 corresponds to
    about 100 here.

    Args:
        sample_rate: Sampling rate of the audio in Hz.
        window_lengths: Window (and FFT) length per scale.
        n_mels: Mel bands per scale, same length as ``window_lengths``.
        f_min: Lowest mel edge in Hz.
        f_max: Highest mel edge in Hz; defaults to ``sample_rate / 2``.
        floor: Magnitude floor inside the log, ``> 0``.
        log_weight: Weight of the log-magnitude term.
        mag_weight: Weight of the linear-magnitude term.
        device: Factory argument for the window and filterbank buffers.
        dtype: Factory argument for the window and filterbank buffers.

    Raises:
        ValueError: On a window below 4 samples, ``n_mels`` not matching the windows, band
            edges outside ``[0, sample_rate / 2]``, a ``floor`` that is not finite and
            positive, or weights as in :class:`MultiResolutionSTFTLoss`; in ``forward``, on
            mismatched shapes or fewer than ``max(window_lengths) // 2 + 1`` samples.
        TypeError: If an option is not a number; in ``forward``, if an input is not a
            floating-point tensor.

    Shape:
        - ``pred``, ``target``: ``(B, C, S)`` or ``(B, S)``, ``S > max(window_lengths) // 2``.
        - Output: ``()``.

    Example:
        >>> import torch
        >>> loss_fn = MultiScaleMelLoss(16000, window_lengths=(64, 256), n_mels=(8, 32))
        >>> x = torch.randn(2, 1, 4000)
        >>> loss_fn(x, x).item()
        0.0
    """

    def __init__(
        self,
        sample_rate: float,
        *,
        window_lengths: Sequence[int] = _MEL_WINDOWS,
        n_mels: Sequence[int] = _MEL_BANDS,
        f_min: float = 0.0,
        f_max: float | None = None,
        floor: float = 1e-5,
        log_weight: float = 1.0,
        mag_weight: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.window_lengths, self.n_mels = _mel_options(window_lengths, n_mels, floor,
                                                        log_weight, mag_weight,
                                                        "MultiScaleMelLoss")
        self.fft_sizes = self.window_lengths
        self.hop_sizes = tuple(_hops(self.window_lengths, None, "MultiScaleMelLoss"))
        self.sample_rate, self.f_min, self.f_max = float(sample_rate), f_min, f_max
        self.floor, self.log_weight, self.mag_weight = float(floor), log_weight, mag_weight
        # derived, so not saved in the state_dict
        self.windows = _Buffers(torch.hann_window(w, device=device, dtype=dtype)
                                for w in self.window_lengths)
        self.filterbanks = _Buffers(_filterbank(w, m, sample_rate, f_min, f_max, device, dtype)
                                    for w, m in zip(self.window_lengths, self.n_mels,
                                                    strict=True))

    @override
    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, window_lengths={self.window_lengths}, "
                f"n_mels={self.n_mels}, floor={self.floor}, log_weight={self.log_weight}, "
                f"mag_weight={self.mag_weight}")


def multi_resolution_stft_loss(
    pred: Tensor,
    target: Tensor,
    *,
    fft_sizes: Sequence[int] = _STFT_SIZES,
    hop_sizes: Sequence[int] | None = None,
    floor: float = 1e-5,
    log_weight: float = 1.0,
    mag_weight: float = 1.0,
) -> Tensor:
    """Functional form of :class:`MultiResolutionSTFTLoss` (windows cached per device).

    Args:
        pred: Predicted waveform, ``(B, C, S)`` or ``(B, S)``.
        target: Reference waveform, same shape.
        fft_sizes: FFT and window sizes.
        hop_sizes: Hop per resolution; defaults to ``n // 4``.
        floor: Magnitude floor inside the log.
        log_weight: Weight of the log-magnitude term.
        mag_weight: Weight of the linear-magnitude term.

    Returns:
        A 0-d tensor.
    """
    owner = "multi_resolution_stft_loss"
    sizes, hops = _stft_options(fft_sizes, hop_sizes, floor, log_weight, mag_weight, owner)
    p, t = _flatten_audio(pred, target, max(sizes) // 2 + 1, owner)
    return _spectral_loss(p, t, _windows(sizes, pred.device), hops, [None] * len(sizes),
                          float(floor), log_weight, mag_weight)


def multi_scale_mel_loss(
    pred: Tensor,
    target: Tensor,
    sample_rate: float,
    *,
    window_lengths: Sequence[int] = _MEL_WINDOWS,
    n_mels: Sequence[int] = _MEL_BANDS,
    f_min: float = 0.0,
    f_max: float | None = None,
    floor: float = 1e-5,
    log_weight: float = 1.0,
    mag_weight: float = 0.0,
) -> Tensor:
    """Functional form of :class:`MultiScaleMelLoss` (windows and filterbanks cached).

    Args:
        pred: Predicted waveform, ``(B, C, S)`` or ``(B, S)``.
        target: Reference waveform, same shape.
        sample_rate: Sampling rate in Hz.
        window_lengths: Window (and FFT) length per scale.
        n_mels: Mel bands per scale.
        f_min: Lowest mel edge in Hz.
        f_max: Highest mel edge in Hz; defaults to ``sample_rate / 2``.
        floor: Magnitude floor inside the log.
        log_weight: Weight of the log-magnitude term.
        mag_weight: Weight of the linear-magnitude term.

    Returns:
        A 0-d tensor.
    """
    owner = "multi_scale_mel_loss"
    sizes, bands = _mel_options(window_lengths, n_mels, floor, log_weight, mag_weight, owner)
    p, t = _flatten_audio(pred, target, max(sizes) // 2 + 1, owner)
    fbs = _filterbanks(sizes, bands, sample_rate, f_min, f_max, pred.device)
    return _spectral_loss(p, t, _windows(sizes, pred.device), _hops(sizes, None, owner), fbs,
                          float(floor), log_weight, mag_weight)
