"""The failure modes of the codec's output side, for ``bench_failure_modes``.

* ``head``: a learnable scale of 3.0 applied after the tanh, against ``ScaledTanhHead(1.0)``;
* ``balancer``: fixed weights ``2.0 * recon + 0.1 * percept`` against ``LossBalancer``;
* ``rms``: a batch-global RMS loss against the per-example ``rms_scale_loss``.

The first two train the tiny codec of ``examples/original_failure.py`` with its own training
loop, once per head and loss recipe, and record per-step curves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks._common import rounded, rounded_curve
from examples.original_failure import (
    SR,
    Step,
    held_out,
    mel_loss,
    speech_like,
    train,
    weighted_total,
)
from rvq_blocks import ScaledTanhHead, rms_scale_loss


# ------------------------------------------------------------------ 4/5. head and balancer
def train_codec(head: str, losses: str, steps: int, batch: int = 4,
                samples: int = 4096) -> dict[str, Any]:
    """The tiny codec trained with one head and one loss recipe, with its curves.

    Args:
        head: ``"scale_after_tanh"`` (3.0 * tanh(h), learnable) or ``"scaled_tanh"``.
        losses: ``"l1"`` (L1 + vq), ``"static"`` (2.0 * L1 + 0.1 * raw-STFT MSE + vq),
            ``"balanced"`` (the same two losses as gradient fractions 2.0 : 0.1, vq outside)
            or ``"library"`` (balancer over L1, rms_scale_loss and the mel loss).
        steps: training steps.
        batch: clips per step.
        samples: samples per clip.

    Returns:
        ``first_step`` and ``held_out`` figures, the mean perceptual-loss gradient share and
        the per-step ``curves``.
    """
    curves: dict[str, list[float]] = {"l1": [], "total": [], "percept_share": [], "peak": [],
                                      "saturation": []}
    first: dict[str, float] = {}

    def record(s: Step) -> None:
        share = s.balancer.metrics.get("percept/share", 0.0)
        curves["l1"].append(s.losses["recon"].item())
        curves["total"].append(weighted_total(s.balancer))
        curves["percept_share"].append(share)
        curves["peak"].append(s.y.abs().max().item())
        curves["saturation"].append(ScaledTanhHead.saturation(s.y).item())
        if s.step == 1:
            first.update(loss=rounded(curves["total"][0]), l1=rounded(curves["l1"][0]),
                         lo=rounded(s.y.min().item()), hi=rounded(s.y.max().item()),
                         x_lo=rounded(s.x.min().item()), x_hi=rounded(s.x.max().item()),
                         saturation=rounded(curves["saturation"][0]),
                         percept_share=rounded(share))

    x, y = held_out(train(head, losses, steps, batch, samples, on_step=record), samples)
    final = dict(l1=rounded(F.l1_loss(y, x).item()), mel=rounded(mel_loss()(y, x).item()),
                 rms_ratio=rounded((y.std(-1) / x.std(-1)).mean().item()),
                 peak=rounded(y.abs().max().item()), x_peak=rounded(x.abs().max().item()),
                 saturation=rounded(ScaledTanhHead.saturation(y).item()))
    shares = curves["percept_share"]
    return dict(first_step=first, held_out=final,
                mean_percept_share=rounded(sum(shares) / len(shares)),
                curves={k: rounded_curve(v) for k, v in curves.items()})


def exp_head(steps: int) -> dict[str, Any]:
    """The original head against ``ScaledTanhHead``, both trained on L1 + vq."""
    return dict(config=dict(steps=steps, batch=4, samples=4096, sample_rate=SR, loss="L1 + vq",
                            optimizer="Adam lr 3e-3"),
                buggy=dict(label="`3.0 * tanh(h)`, learnable scale from 3.0",
                           **train_codec("scale_after_tanh", "l1", steps)),
                fixed=dict(label="`ScaledTanhHead(1.0)`: `tanh(scale * h)`",
                           **train_codec("scaled_tanh", "l1", steps)))


def exp_balancer(steps: int) -> dict[str, Any]:
    """Fixed loss weights against ``LossBalancer``, and the original run against the library."""
    return dict(config=dict(steps=steps, batch=4, samples=4096, head="ScaledTanhHead(1.0)",
                            percept="MSE of raw STFT magnitudes (n_fft 2048)"),
                buggy=dict(label="fixed weights `2.0 * recon + 0.1 * percept + vq`",
                           **train_codec("scaled_tanh", "static", steps)),
                fixed=dict(label="`LossBalancer({'recon': 2.0, 'percept': 0.1})`, vq outside",
                           **train_codec("scaled_tanh", "balanced", steps)),
                original=dict(label="the original run: `3.0 * tanh(h)` and fixed weights",
                              **train_codec("scale_after_tanh", "static", steps)),
                library=dict(label="the library: `ScaledTanhHead`, `LossBalancer` over L1, "
                                   "`rms_scale_loss`, `MultiScaleMelLoss`",
                             **train_codec("scaled_tanh", "library", steps)))


# ------------------------------------------------------------------ 6. batch RMS vs per-example
def batch_rms_loss(pred: Tensor, target: Tensor) -> Tensor:
    """BUGGY: the original loudness loss, ``mse(rms(pred_batch), rms(target_batch))``."""
    return (pred.square().mean().sqrt() - target.square().mean().sqrt()).square()


def _rms_target() -> Tensor:
    """Four speech-like clips at RMS 0.3, 0.15, 0.06 and 0.03, ``(4, 1, 8000)``."""
    target = speech_like(4, 8000, torch.Generator().manual_seed(0))
    rms = torch.tensor([0.3, 0.15, 0.06, 0.03])[:, None, None]
    return target / target.std(-1, keepdim=True) * rms


def _rms_cases(target: Tensor) -> dict[str, Any]:
    """Both losses for three wrong outputs that the batch-global loss scores as perfect."""
    batch_rms = target.square().mean().sqrt()
    swapped = target.flip(0) / target.flip(0).std(-1, keepdim=True) * \
        target.std(-1, keepdim=True).flip(0)
    cases = {
        "swapped": ("the targets' waveforms with their loudness swapped between examples",
                    swapped),
        "equal": ("every example at the batch RMS (loudness differences erased)",
                  target / target.square().mean(-1, keepdim=True).sqrt() * batch_rms),
        "dc": ("a constant DC offset at the batch RMS, no waveform at all",
               torch.full_like(target, batch_rms.item())),
    }
    return {name: dict(label=label,
                       batch_rms_loss=rounded(batch_rms_loss(pred, target).item()),
                       per_example_loss=rounded(rms_scale_loss(pred, target).item()),
                       per_example_loss_db=rounded(
                           rms_scale_loss(pred, target, domain="db").item()))
            for name, (label, pred) in cases.items()}


def _rms_fit(loss_fn: Callable[[Tensor, Tensor], Tensor], target: Tensor,
             steps: int) -> dict[str, Any]:
    """Fit a per-example gain and DC offset, ``y_b = a_b * s_b + d_b``, from near silence."""
    src = target / target.std(-1, keepdim=True)  # the right waveforms, unit loudness
    a = torch.full((4, 1, 1), 0.01, requires_grad=True)
    d = torch.zeros(4, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([a, d], lr=3e-3)
    err, loss_c = [], []
    for _ in range(steps):
        y = a * src + d
        loss = loss_fn(y, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_c.append(loss.item())
        with torch.no_grad():
            ratio = (a * src + d - (a * src + d).mean(-1, keepdim=True)).square().mean(
                (-1, -2)).sqrt() / target.std(-1).squeeze(-1)
            err.append((20 * ratio.log10()).abs().max().item())
    return dict(final_loss=rounded(loss_c[-1]), final_worst_db_error=rounded(err[-1]),
                gains=[rounded(v) for v in a.detach().flatten().tolist()],
                dc=[rounded(v) for v in d.detach().flatten().tolist()],
                curves=dict(loss=rounded_curve(loss_c), worst_db_error=rounded_curve(err)))


def exp_rms(steps: int) -> dict[str, Any]:
    """The batch-global RMS loss against ``rms_scale_loss``: wrong outputs, then fits."""
    target = _rms_target()
    fits = {name: _rms_fit(fn, target, steps)
            for name, fn in (("batch", batch_rms_loss), ("per_example", rms_scale_loss))}
    return dict(config=dict(batch=4, samples=8000, target_rms=[0.3, 0.15, 0.06, 0.03],
                            fit_steps=steps, fit="y_b = a_b * s_b + d_b, Adam lr 3e-3"),
                cases=_rms_cases(target), fits=fits)
