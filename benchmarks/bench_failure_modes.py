"""Why training exploded: each failure of the original codec run, measured, next to its fix.

The original run (a Telugu speech codec) combined six mistakes. Each experiment below
reproduces one of them on a small CPU config and measures the same quantity with the buggy
recipe and with the library:

* ``codebook_loss``: a learned codebook (``ema=False``) trained without the codebook loss;
* ``ste``: straight-through estimators in the wrong place (local buggy quantizers, labelled);
* ``summed_losses``: per-stage VQ losses summed instead of averaged, for Q = 1, 2, 4, 8;
* ``head``: a learnable scale of 3.0 applied after the tanh, against ``ScaledTanhHead(1.0)``;
* ``balancer``: fixed weights ``2.0 * recon + 0.1 * percept`` against ``LossBalancer``;
* ``rms``: a batch-global RMS loss against the per-example ``rms_scale_loss``.

The ``head`` and ``balancer`` experiments train the tiny codec of ``examples/original_failure.py``
with its own training loop. Writes ``benchmarks/results/failure_modes.json`` (figures and
per-step curves); ``make report`` renders ``docs/failure_modes.md`` and its plots from it.
One thread; under a minute on one core.

Run: ``python -m benchmarks.bench_failure_modes [--quick] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks._common import RESULTS, rounded, rounded_curve, run_meta, write_json
from benchmarks._output_failures import exp_balancer, exp_head, exp_rms
from rvq_blocks import ResidualVQ

NO_REVIVAL = dict(dead_code_threshold=0.0, dead_code_patience=0.0)  # codebooks left alone
Quantize = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def snr_db(x: Tensor, y: Tensor) -> float:
    """Signal-to-noise ratio of ``y`` as an approximation of ``x``, in dB."""
    return (10 * torch.log10(x.square().mean() / (x - y).square().mean())).item()


def _autoencoder(dim_in: int, dim: int, q: int, k: int, encoder_gelu: bool,
                 **opts: Any) -> tuple[nn.Module, nn.Module, ResidualVQ, torch.optim.Optimizer]:
    """A seeded linear encoder (optionally ending in a GELU), RVQ and linear decoder, Adam."""
    torch.manual_seed(0)
    enc: nn.Module = nn.Sequential(nn.Linear(dim_in, dim), nn.GELU()) if encoder_gelu else \
        nn.Linear(dim_in, dim)
    dec = nn.Linear(dim, dim_in)
    rvq = ResidualVQ(dim, q, k, channel_last=True, **opts)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), *rvq.parameters()], lr=3e-3)
    return enc, dec, rvq, opt


# ------------------------------------------------------------------ 1. no codebook loss
CODEBOOK_RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "buggy": ("BUGGY: learned codebook, no codebook loss (commitment only), random init",
              dict(ema=False, kmeans_init=False, **NO_REVIVAL)),
    "loss_only": ("learned codebook, the library's loss, random init, no revival",
                  dict(ema=False, kmeans_init=False, **NO_REVIVAL)),
    "fixed": ("learned codebook, the library's loss and defaults (k-means init, revival)",
              dict(ema=False)),
    "default": ("library defaults (EMA codebooks, k-means init, revival)", {}),
}


def exp_codebook_loss(steps: int) -> dict:
    """A small autoencoder around a 2 x 256 RVQ, trained four ways.

    The encoder ends in a GELU, so its latents fill only part of the space that a random
    codebook covers, as after any nonlinearity.
    """
    dim_in, dim, q, k, batch = 32, 16, 2, 256, 512
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(dim_in, dim_in, generator=g) / math.sqrt(dim_in)  # correlated data

    def data(n: int, gen: torch.Generator) -> Tensor:
        return torch.randn(n, dim_in, generator=gen) @ mix * 2.0

    held = data(4096, torch.Generator().manual_seed(99))
    out: dict = {"config": dict(dim_in=dim_in, dim=dim, num_quantizers=q, codebook_size=k,
                                batch=batch, steps=steps, optimizer="Adam lr 3e-3",
                                encoder="Linear + GELU", decoder="Linear")}
    for name, (label, opts) in CODEBOOK_RECIPES.items():
        enc, dec, rvq, opt = _autoencoder(dim_in, dim, q, k, True, **opts)
        c0 = rvq.codebook.detach().clone()
        gen = torch.Generator().manual_seed(1)
        loss_c, used_c, drift_c = [], [], []
        for _ in range(steps):
            x = data(batch, gen)
            vq = rvq(enc(x)[None])  # (1, N, D): one "clip" of N frames
            recon = F.mse_loss(dec(vq.quantized[0]), x)
            if name == "buggy":  # the original run: commitment term only
                loss = recon + rvq.commitment_weight * vq.commitment_loss.mean()
            else:
                loss = recon + vq.loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_c.append(recon.item())
            used_c.append(vq.codes_used.min().item())
            drift_c.append(((rvq.codebook.detach() - c0).norm() / c0.norm()).item())
        rvq.eval()
        with torch.no_grad():
            vq = rvq(enc(held)[None])
            y = dec(vq.quantized[0])
        out[name] = dict(
            label=label,
            codebook_drift=rounded(drift_c[-1]),
            held_out_codes_used=[rounded(v) for v in vq.codes_used.tolist()],
            held_out_snr_db=rounded(snr_db(held, y)),
            final_recon_mse=rounded(loss_c[-1]),
            curves=dict(recon_mse=rounded_curve(loss_c), codes_used_min=rounded_curve(used_c),
                        codebook_drift=rounded_curve(drift_c)),
        )
    return out


# ------------------------------------------------------------------ 2. straight-through
# Local quantizers that share the library's codebooks. Each takes ``x`` (N, D) with a
# gradient and the learned codebook ``cb`` (Q, K, D) and returns (quantized, vq_loss) with
# the library's loss formula, mean(codebook) + 0.25 * mean(commitment).
def _nearest(r: Tensor, codes: Tensor) -> Tensor:
    return torch.cdist(r.detach(), codes.detach()).argmin(-1)


def _stages(x: Tensor, cb: Tensor, detach_codes: bool) -> tuple[list[tuple[Tensor, Tensor]],
                                                                 Tensor]:
    """The greedy loop: per stage the residual it saw and the code it chose, and the VQ loss.

    Each next residual subtracts the detached code (``detach_codes``) or the live one.
    """
    r, pairs, commit, book = x, [], [], []
    for k in range(cb.shape[0]):
        c = cb[k][_nearest(r, cb[k])]
        commit.append(F.mse_loss(r, c.detach()))
        book.append(F.mse_loss(c, r.detach()))
        pairs.append((r, c))
        r = r - (c.detach() if detach_codes else c)
    return pairs, torch.stack(book).mean() + 0.25 * torch.stack(commit).mean()


def vq_reference(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """Correct: residuals from detached codes, one straight-through estimator on the sum."""
    pairs, loss = _stages(x, cb, detach_codes=True)
    total = sum(c.detach() for _, c in pairs)
    return x + (total - x.detach()), loss


def vq_bug_ste_per_stage(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: one straight-through estimator per stage, on residuals built from detached codes.

    Every stage's output carries the identity to ``x``, so ``d quantized / d x = Q * I``.
    """
    pairs, loss = _stages(x, cb, detach_codes=True)
    return sum(r + (c - r).detach() for r, c in pairs), loss  # STE at every stage


def vq_bug_ste_after_detached_loop(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: the loop runs on ``x.detach()`` and the STE is applied once after it, to the
    detached loop input: the reconstruction gradient never reaches the encoder (``0``)."""
    x0 = x.detach()
    pairs, loss = _stages(x0, cb, detach_codes=False)
    return x0 + (sum(c for _, c in pairs) - x0).detach(), loss


def vq_bug_ste_after_loop_live_codes(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: STE once after the loop (right), but residuals subtract codes that still carry
    their gradient: stage k's commitment loss pulls the codebooks of stages 1..k-1."""
    pairs, loss = _stages(x, cb, detach_codes=False)
    return x + (sum(c for _, c in pairs) - x).detach(), loss


STE_VARIANTS: dict[str, tuple[str, Quantize | None]] = {
    "library": ("`ResidualVQ` (one STE on the sum, detached residuals)", None),
    "reference": ("local copy of the correct rule", vq_reference),
    "ste_per_stage": ("BUGGY: STE at every stage", vq_bug_ste_per_stage),
    "ste_after_detached_loop": ("BUGGY: STE after a loop run on `x.detach()`",
                                vq_bug_ste_after_detached_loop),
    "ste_after_loop_live_codes": ("BUGGY: STE after the loop, residuals minus live codes",
                                  vq_bug_ste_after_loop_live_codes),
}


def _cos(a: Tensor, b: Tensor) -> float:
    if a.norm() == 0 or b.norm() == 0:
        return 0.0
    return F.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def _rel(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _quantize(rvq: ResidualVQ, fn: Quantize | None, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(quantized, vq_loss)`` of ``x`` (N, D) by the library (``fn is None``) or by ``fn``."""
    if fn is None:
        out = rvq(x[None])
        return out.quantized[0], out.loss
    return fn(x, rvq.codebook)


def _ste_gradients(dim: int, q: int, k: int, n: int) -> dict:
    """Per variant: ``d quantized / d x`` and the gradients of one loss, against the library's."""
    torch.manual_seed(0)
    base = ResidualVQ(dim, q, k, ema=False, channel_last=True, **NO_REVIVAL)
    x0 = torch.randn(1, n, dim)
    base(x0)  # k-means init of the learned codebooks on this batch
    target = torch.randn(n, dim)
    grads = {}
    for name, (_, fn) in STE_VARIANTS.items():
        rvq = ResidualVQ(dim, q, k, ema=False, channel_last=True, **NO_REVIVAL)
        rvq.load_state_dict(base.state_dict())
        x = x0[0].clone().requires_grad_(True)
        quantized, vq_loss = _quantize(rvq, fn, x)
        jac = torch.zeros_like(x)  # column sums of d quantized / d x
        if quantized.requires_grad:
            jac = torch.autograd.grad(quantized.sum(), x, retain_graph=True, allow_unused=True,
                                      materialize_grads=True)[0]
        loss = F.mse_loss(quantized, target) + vq_loss
        gx, gc = torch.autograd.grad(loss, [x, rvq.codebook], allow_unused=True,
                                     materialize_grads=True)
        grads[name] = (jac.mean().item(), gx, gc, quantized.detach())
    _, ref_gx, ref_gc, ref_q = grads["library"]
    gradients = {}
    for name, (label, _) in STE_VARIANTS.items():
        jac, gx, gc, qv = grads[name]
        gradients[name] = dict(label=label, dq_dx=rounded(jac),
                               encoder_grad_cos=rounded(_cos(gx, ref_gx)),
                               encoder_grad_rel_err=rounded(_rel(gx, ref_gx)),
                               codebook_grad_rel_err=rounded(_rel(gc, ref_gc)),
                               value_max_abs_diff=rounded((qv - ref_q).abs().max().item()))
    return gradients


def _ste_training(dim: int, q: int, k: int, steps: int) -> dict:
    """A small autoencoder trained with each quantizer, same data and seed."""
    dim_in = 16
    mix = torch.randn(dim_in, dim_in, generator=torch.Generator().manual_seed(3)) / 4.0
    held = torch.randn(4096, dim_in, generator=torch.Generator().manual_seed(99)) @ mix * 2.0
    training = {}
    for name, (label, fn) in STE_VARIANTS.items():
        if name == "reference":
            continue
        enc, dec, rvq, opt = _autoencoder(dim_in, dim, q, k, False, ema=False, **NO_REVIVAL)
        gen = torch.Generator().manual_seed(1)
        curve = []
        for step in range(steps):
            x = torch.randn(512, dim_in, generator=gen) @ mix * 2.0
            # step 0: the library's k-means init for everyone
            quantized, vq_loss = _quantize(rvq, None if step == 0 else fn, enc(x))
            recon = F.mse_loss(dec(quantized), x)
            opt.zero_grad()
            (recon + vq_loss).backward()
            opt.step()
            curve.append(recon.item())
        with torch.no_grad():
            z = enc(held)
            quantized = vq_reference(z, rvq.codebook)[0] if fn is not None else \
                rvq.eval()(z[None]).quantized[0]
            snr = snr_db(held, dec(quantized))
        training[name] = dict(label=label, final_recon_mse=rounded(curve[-1]),
                              held_out_snr_db=rounded(snr),
                              curves=dict(recon_mse=rounded_curve(curve)))
    return training


def exp_ste(steps: int) -> dict:
    """Straight-through estimators in the right and the wrong places: gradients and training."""
    dim, q, k, n = 8, 4, 32, 2048
    return dict(config=dict(dim=dim, num_quantizers=q, codebook_size=k, vectors=n,
                            train_steps=steps, train_batch=512, optimizer="Adam lr 3e-3"),
                gradients=_ste_gradients(dim, q, k, n), training=_ste_training(dim, q, k, steps))


# ------------------------------------------------------------------ 3. summed VQ losses
def exp_summed_losses() -> dict:
    """The VQ loss and its encoder gradient, summed and averaged over Q = 1, 2, 4, 8 stages."""
    dim, k, n = 16, 64, 4096
    x0 = torch.randn(1, n, dim, generator=torch.Generator().manual_seed(0))
    rows = []
    for q in (1, 2, 4, 8):
        torch.manual_seed(0)
        rvq = ResidualVQ(dim, q, k, ema=False, channel_last=True, **NO_REVIVAL)
        rvq(x0)  # k-means init on this batch
        x = x0.clone().requires_grad_(True)
        out = rvq(x)
        summed = out.codebook_loss.sum() + rvq.commitment_weight * out.commitment_loss.sum()
        g_sum = torch.autograd.grad(summed, x, retain_graph=True)[0].norm().item()
        g_avg = torch.autograd.grad(out.loss, x)[0].norm().item()
        rows.append(dict(num_quantizers=q, summed=rounded(summed.item()),
                         averaged=rounded(out.loss.item()), encoder_grad_summed=rounded(g_sum),
                         encoder_grad_averaged=rounded(g_avg)))
    for row in rows:
        row["summed_over_q1"] = rounded(row["summed"] / rows[0]["summed"])
        row["averaged_over_q1"] = rounded(row["averaged"] / rows[0]["averaged"])
    return dict(config=dict(dim=dim, codebook_size=k, vectors=n,
                            codebooks="learned (ema=False), k-means init on the batch"),
                rows=rows)


def main(argv: list[str] | None = None) -> None:
    """Run the six experiments on one thread and write their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "failure_modes.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: a few steps each")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vq_steps, codec_steps, fit_steps = (5, 3, 10) if args.quick else (300, 200, 600)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"meta": run_meta(threads=1, quick=args.quick)}
    experiments: dict[str, Callable[[], dict]] = {
        "codebook_loss": lambda: exp_codebook_loss(vq_steps),
        "ste": lambda: exp_ste(vq_steps),
        "summed_losses": exp_summed_losses,
        "head": lambda: exp_head(codec_steps),
        "balancer": lambda: exp_balancer(codec_steps),
        "rms": lambda: exp_rms(fit_steps),
    }
    for name, fn in experiments.items():
        t = time.perf_counter()
        res[name] = fn()
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
    res["meta"]["wall_s"] = rounded(time.perf_counter() - t0, 3)
    write_json(args.out, res)


if __name__ == "__main__":
    main()
