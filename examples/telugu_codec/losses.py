"""The Telugu codec's training losses: which terms, and their weights in the balancer.

``loss_terms`` builds the terms (each ``(pred, target) -> scalar`` on ``(B, 1, S)``
waveforms), ``loss_weights`` reads ``--loss_weights`` (or the architecture's default) and
``--adversarial``, ``make_balancer`` wraps the weights in a :class:`rvq_blocks.LossBalancer`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rvq_blocks import ComplexSTFTLoss, LossBalancer, MultiScaleMelLoss, rms_scale_loss

# Gradient fractions of the balanced losses. The waveform (MSE) loss leads: the mel loss is
# blind to phase, and with it in front the output keeps the right spectrum but stays
# uncorrelated with the input (SNR near -3 dB, SI-SNR near -40 dB) for hundreds of steps.
BALANCED_WEIGHTS = {"mel": 1.0, "time": 3.0, "rms": 0.1}
# The frame-rate architecture adds the compressed complex STFT loss (phase-aware, quiet bins
# weighted): it leads with the waveform MSE, the mel loss beside them.
FRAME_WEIGHTS = {"cstft": 2.0, "mel": 1.0, "time": 2.0, "rms": 0.1}
# The failed run's fixed weights: 2 * recon + 0.1 * percept (+ the scale loss), no balancing.
ORIGINAL_WEIGHTS = {"mel": 0.1, "time": 2.0, "rms": 1.0}


def loss_weights(args) -> dict[str, float]:
    """The balancer's weights: ``--loss_weights`` or the architecture's default, and with
    ``--adversarial W`` the adversarial and feature-matching losses at ``W`` each."""
    out: dict[str, float] = {}
    if args.loss_weights:
        for item in args.loss_weights.split(","):
            name, _, value = item.partition("=")
            if name.strip() not in ("cstft", "mel", "time", "rms") or not value:
                raise SystemExit(f"--loss_weights expected name=value with names cstft, mel, "
                                 f"time, rms; got {item!r}")
            out[name.strip()] = float(value)
    else:
        out = dict(FRAME_WEIGHTS if args.arch == "frame" else BALANCED_WEIGHTS)
    if args.adversarial:
        out.update(adv=args.adversarial, fm=args.adversarial)
    return out


class LowBandMSE:
    """Waveform MSE of the parts of ``pred`` and ``target`` below ``cutoff`` (cycles per
    sample): by Parseval, the mean squared error of their FFT bins under the cut-off.

    A codec at a few kbps cannot carry the phase of every harmonic above about 1 kHz; a
    phase-aware loss there prefers silence to a spectrum with the right magnitude and another
    phase, so the decoder learns to leave the high band out (``--phase_max_hz``)."""

    def __init__(self, cutoff: float) -> None:
        if not 0.0 < cutoff <= 0.5:
            raise SystemExit(f"--phase_max_hz must lie in (0, sample_rate / 2], got "
                             f"{cutoff:g} of the sample rate")
        self.cutoff = cutoff

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = pred.shape[-1]
        diff = torch.fft.rfft(pred - target, dim=-1)[..., :int(self.cutoff * n) + 1]
        weight = torch.full(diff.shape[-1:], 2.0, device=diff.device)
        weight[0] = 1.0  # DC once; every other bin stands for itself and its mirror
        if n % 2 == 0 and diff.shape[-1] == n // 2 + 1:
            weight[-1] = 1.0  # Nyquist once
        return (weight * diff.abs().square()).sum(-1).mean() / (n * n)


def make_balancer(kind: str, weights: dict[str, float] | None = None) -> LossBalancer:
    weights = weights or BALANCED_WEIGHTS
    if kind == "grad":
        return LossBalancer(weights)
    if kind == "static":
        return LossBalancer(weights, balance_grads=False)
    return LossBalancer(ORIGINAL_WEIGHTS, balance_grads=False)


def loss_terms(phase_max_hz: float | None, sample_rate: int, device: torch.device | str
               ) -> dict[str, Callable[..., torch.Tensor]]:
    """The balanced loss terms by name; with ``phase_max_hz`` the phase-aware ones only below
    it (the waveform MSE on the band under it, the complex STFT loss on magnitudes alone)."""
    low_band = phase_max_hz is not None
    cstft = ComplexSTFTLoss(complex_weight=0.0) if low_band else ComplexSTFTLoss()
    return {"cstft": cstft.to(device),
            "mel": MultiScaleMelLoss(sample_rate).to(device),
            "time": LowBandMSE(phase_max_hz / sample_rate) if low_band else F.mse_loss,
            "rms": rms_scale_loss}
