"""Objective quality metrics of a reconstruction against its reference.

All take 1-D float arrays/tensors at 16 kHz of equal length (the reference first):

* ``snr``: ``10 log10(|x|^2 / |x - y|^2)`` in dB, what the original run watched;
* ``si_snr``: scale-invariant SNR in dB (mean removed, optimal scaling of the reference);
* ``mel_distance``: mean absolute difference of log10 mel spectrograms (80 bands,
  1024-point FFT, hop 256), the usual codec "mel distance" (lower is better);
* ``pesq_wb`` / ``stoi``: PESQ wide-band (ITU-T P.862.2, MOS-LQO 1.04..4.64) and STOI
  (0..1) from the ``pesq`` and ``pystoi`` packages, when installed (``None`` otherwise).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from rvq_blocks import mel_filterbank

SR = 16000
_EPS = 1e-8


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def snr(ref, est) -> float:
    x, y = _t(ref), _t(est)
    return float(10 * torch.log10((x.square().sum() + _EPS) / ((x - y).square().sum() + _EPS)))


def si_snr(ref, est) -> float:
    x, y = _t(ref), _t(est)
    x, y = x - x.mean(), y - y.mean()
    target = (y @ x) / (x @ x + _EPS) * x
    noise = y - target
    return float(10 * torch.log10((target.square().sum() + _EPS) / (noise.square().sum() + _EPS)))


@functools.lru_cache(maxsize=4)
def _mel_fb(n_fft: int, n_mels: int, sr: int) -> torch.Tensor:
    return mel_filterbank(n_fft // 2 + 1, n_mels, sr, dtype=torch.float64)


def log_mel(wav, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> torch.Tensor:
    """``(S,)`` -> ``(n_mels, frames)`` log10 mel-band magnitudes (RMS over each band, floor
    1e-5)."""
    x = _t(wav)
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      return_complex=True).abs()  # (F, frames)
    mel = (spec.T.square() @ _mel_fb(n_fft, n_mels, SR)).sqrt()  # (frames, n_mels) magnitudes
    return torch.log10(mel.clamp_min(1e-5)).T


def mel_distance(ref, est) -> float:
    return float((log_mel(ref) - log_mel(est)).abs().mean())


def pesq_wb(ref, est) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    try:
        return float(pesq(SR, np.asarray(ref, np.float64), np.asarray(est, np.float64), "wb"))
    except Exception:  # pesq raises on silent/too-short input
        return None


def stoi(ref, est) -> float | None:
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        return None
    return float(_stoi(np.asarray(ref, np.float64), np.asarray(est, np.float64), SR,
                       extended=False))


def all_metrics(ref, est, *, perceptual: bool = True) -> dict[str, float]:
    """Every metric above for one clip; PESQ/STOI only with ``perceptual`` and when installed."""
    out = {"snr": snr(ref, est), "si_snr": si_snr(ref, est), "mel_distance": mel_distance(ref, est)}
    if perceptual:
        for name, fn in (("pesq_wb", pesq_wb), ("stoi", stoi)):
            v = fn(ref, est)
            if v is not None and math.isfinite(v):
                out[name] = v
    return out


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over the clips that have it."""
    keys = sorted({k for r in rows for k in r})
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
