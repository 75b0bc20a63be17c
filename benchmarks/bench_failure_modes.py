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

Writes ``benchmarks/results/failure_modes.json`` (figures and per-step curves), then renders
``docs/failure_modes.md`` and its plots in ``docs/img/`` with ``benchmarks/report.py``
(``--no-report`` skips that). One thread; about two minutes on one core.

Run: ``python benchmarks/bench_failure_modes.py [--quick] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _peers import write_json  # noqa: E402
from original_failure import (  # noqa: E402  (the tiny codec and the original head)
    SR,
    ScaleAfterTanh,
    TinyCodec,
    naive_percept,
    speech_like,
)

import rvq_blocks  # noqa: E402
from rvq_blocks import (  # noqa: E402
    LossBalancer,
    MultiScaleMelLoss,
    ResidualVQ,
    ScaledTanhHead,
    rms_scale_loss,
)

NO_REVIVAL = dict(dead_code_threshold=0.0, dead_code_patience=0.0)  # codebooks left alone


def _r(x: float, digits: int = 5) -> float:
    """Round to ``digits`` significant digits for the JSON."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _curve(values: list[float]) -> list[float]:
    return [_r(float(v), 4) for v in values]


def snr_db(x: Tensor, y: Tensor) -> float:
    return (10 * torch.log10(x.square().mean() / (x - y).square().mean())).item()


# ------------------------------------------------------------------ 1. no codebook loss
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
    frozen_init = dict(ema=False, kmeans_init=False, **NO_REVIVAL)
    recipes = {
        "buggy": ("BUGGY: learned codebook, no codebook loss (commitment only), random init",
                  frozen_init),
        "loss_only": ("learned codebook, the library's loss, random init, no revival",
                      frozen_init),
        "fixed": ("learned codebook, the library's loss and defaults (k-means init, revival)",
                  dict(ema=False)),
        "default": ("library defaults (EMA codebooks, k-means init, revival)", {}),
    }
    out: dict = {"config": dict(dim_in=dim_in, dim=dim, num_quantizers=q, codebook_size=k,
                                batch=batch, steps=steps, optimizer="Adam lr 3e-3",
                                encoder="Linear + GELU", decoder="Linear")}
    for name, (label, opts) in recipes.items():
        torch.manual_seed(0)
        enc, dec = nn.Sequential(nn.Linear(dim_in, dim), nn.GELU()), nn.Linear(dim, dim_in)
        rvq = ResidualVQ(dim, q, k, channel_last=True, **opts)
        c0 = rvq.codebook.detach().clone()
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), *rvq.parameters()],
                               lr=3e-3)
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
            codebook_drift=_r(drift_c[-1]),
            held_out_codes_used=[_r(v) for v in vq.codes_used.tolist()],
            held_out_snr_db=_r(snr_db(held, y)),
            final_recon_mse=_r(loss_c[-1]),
            curves=dict(recon_mse=_curve(loss_c), codes_used_min=_curve(used_c),
                        codebook_drift=_curve(drift_c)),
        )
    return out


# ------------------------------------------------------------------ 2. straight-through
# Local quantizers that share the library's codebooks. Each takes ``x`` (N, D) with a
# gradient and the learned codebook ``cb`` (Q, K, D) and returns (quantized, vq_loss) with
# the library's loss formula, mean(codebook) + 0.25 * mean(commitment).
def _nearest(r: Tensor, codes: Tensor) -> Tensor:
    return torch.cdist(r.detach(), codes.detach()).argmin(-1)


def _losses(commit: list[Tensor], book: list[Tensor]) -> Tensor:
    return torch.stack(book).mean() + 0.25 * torch.stack(commit).mean()


def vq_reference(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """Correct: residuals from detached codes, one straight-through estimator on the sum."""
    r, total, commit, book = x, torch.zeros_like(x), [], []
    for k in range(cb.shape[0]):
        c = cb[k][_nearest(r, cb[k])]
        commit.append(F.mse_loss(r, c.detach()))
        book.append(F.mse_loss(c, r.detach()))
        r = r - c.detach()
        total = total + c.detach()
    return x + (total - x.detach()), _losses(commit, book)


def vq_bug_ste_per_stage(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: one straight-through estimator per stage, on residuals built from detached codes.

    Every stage's output carries the identity to ``x``, so ``d quantized / d x = Q * I``.
    """
    r, total, commit, book = x, 0, [], []
    for k in range(cb.shape[0]):
        c = cb[k][_nearest(r, cb[k])]
        commit.append(F.mse_loss(r, c.detach()))
        book.append(F.mse_loss(c, r.detach()))
        total = total + (r + (c - r).detach())  # STE at every stage
        r = r - c.detach()
    return total, _losses(commit, book)


def vq_bug_ste_after_detached_loop(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: the loop runs on ``x.detach()`` and the STE is applied once after it, to the
    detached loop input: the reconstruction gradient never reaches the encoder (``0``)."""
    x0 = x.detach()
    r, total, commit, book = x0, torch.zeros_like(x0), [], []
    for k in range(cb.shape[0]):
        c = cb[k][_nearest(r, cb[k])]
        commit.append(F.mse_loss(r, c.detach()))
        book.append(F.mse_loss(c, r.detach()))
        r = r - c
        total = total + c
    return x0 + (total - x0).detach(), _losses(commit, book)


def vq_bug_ste_after_loop_live_codes(x: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """BUGGY: STE once after the loop (right), but residuals subtract codes that still carry
    their gradient: stage k's commitment loss pulls the codebooks of stages 1..k-1."""
    r, total, commit, book = x, 0, [], []
    for k in range(cb.shape[0]):
        c = cb[k][_nearest(r, cb[k])]
        commit.append(F.mse_loss(r, c.detach()))
        book.append(F.mse_loss(c, r.detach()))
        r = r - c  # not detached
        total = total + c
    return x + (total - x).detach(), _losses(commit, book)


STE_VARIANTS = {
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


def exp_ste(steps: int) -> dict:
    dim, q, k, n = 8, 4, 32, 2048
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
        if fn is None:
            out = rvq(x[None])
            quantized, vq_loss = out.quantized[0], out.loss
        else:
            quantized, vq_loss = fn(x, rvq.codebook)
        jac = torch.zeros_like(x)  # column sums of d quantized / d x
        if quantized.requires_grad:
            jac = torch.autograd.grad(quantized.sum(), x, retain_graph=True, allow_unused=True,
                                      materialize_grads=True)[0]
        loss = F.mse_loss(quantized, target) + vq_loss
        gx, gc = torch.autograd.grad(loss, [x, rvq.codebook], allow_unused=True,
                                     materialize_grads=True)
        grads[name] = (jac.mean().item(), gx, gc, quantized.detach())
    ref = grads["library"]
    gradients = {}
    for name, (label, _) in STE_VARIANTS.items():
        jac, gx, gc, qv = grads[name]
        gradients[name] = dict(label=label, dq_dx=_r(jac), encoder_grad_cos=_r(_cos(gx, ref[1])),
                               encoder_grad_rel_err=_r(_rel(gx, ref[1])),
                               codebook_grad_rel_err=_r(_rel(gc, ref[2])),
                               value_max_abs_diff=_r((qv - ref[3]).abs().max().item()))

    # training: a small autoencoder with each quantizer, same data and seed
    dim_in = 16
    mix = torch.randn(dim_in, dim_in, generator=torch.Generator().manual_seed(3)) / 4.0
    held = torch.randn(4096, dim_in, generator=torch.Generator().manual_seed(99)) @ mix * 2.0
    training = {}
    for name, (label, fn) in STE_VARIANTS.items():
        if name == "reference":
            continue
        torch.manual_seed(0)
        enc, dec = nn.Linear(dim_in, dim), nn.Linear(dim, dim_in)
        rvq = ResidualVQ(dim, q, k, ema=False, channel_last=True, **NO_REVIVAL)
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), *rvq.parameters()],
                               lr=3e-3)
        gen = torch.Generator().manual_seed(1)
        curve = []
        for step in range(steps):
            x = torch.randn(512, dim_in, generator=gen) @ mix * 2.0
            z = enc(x)
            if fn is None or step == 0:  # step 0: the library's k-means init for everyone
                out = rvq(z[None])
                quantized, vq_loss = out.quantized[0], out.loss
            else:
                quantized, vq_loss = fn(z, rvq.codebook)
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
        training[name] = dict(label=label, final_recon_mse=_r(curve[-1]),
                              held_out_snr_db=_r(snr), curves=dict(recon_mse=_curve(curve)))
    return dict(config=dict(dim=dim, num_quantizers=q, codebook_size=k, vectors=n,
                            train_steps=steps, train_batch=512, optimizer="Adam lr 3e-3"),
                gradients=gradients, training=training)


# ------------------------------------------------------------------ 3. summed VQ losses
def exp_summed_losses() -> dict:
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
        rows.append(dict(num_quantizers=q, summed=_r(summed.item()), averaged=_r(out.loss.item()),
                         encoder_grad_summed=_r(g_sum), encoder_grad_averaged=_r(g_avg)))
    for row in rows:
        row["summed_over_q1"] = _r(row["summed"] / rows[0]["summed"])
        row["averaged_over_q1"] = _r(row["averaged"] / rows[0]["averaged"])
    return dict(config=dict(dim=dim, codebook_size=k, vectors=n,
                            codebooks="learned (ema=False), k-means init on the batch"),
                rows=rows)


# ------------------------------------------------------------------ 4/5. head and balancer
def train_codec(head: str, losses: str, steps: int, batch: int = 4, samples: int = 4096) -> dict:
    """The tiny codec of examples/original_failure.py with one head and one loss recipe.

    head: ``"scale_after_tanh"`` (3.0 * tanh(h), learnable) or ``"scaled_tanh"``.
    losses: ``"l1"`` (L1 + vq), ``"static"`` (2.0 * L1 + 0.1 * raw-STFT MSE + vq),
    ``"balanced"`` (the same two losses as gradient fractions 2.0 : 0.1, vq outside) or
    ``"library"`` (balancer over L1, rms_scale_loss and the mel loss).
    """
    torch.manual_seed(0)
    model = TinyCodec(ScaleAfterTanh() if head == "scale_after_tanh" else ScaledTanhHead(1.0))
    mel = MultiScaleMelLoss(SR, window_lengths=(64, 256, 1024), n_mels=(10, 40, 80))
    if losses == "library":
        balancer = LossBalancer({"recon": 1.0, "scale": 1.0, "percept": 2.0})
    elif losses == "l1":
        balancer = LossBalancer({"recon": 1.0}, balance_grads=False)
    else:
        balancer = LossBalancer({"recon": 2.0, "percept": 0.1},
                                balance_grads=losses == "balanced")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    curves: dict[str, list[float]] = {"l1": [], "total": [], "percept_share": [], "peak": [],
                                      "saturation": []}
    first = {}
    for step in range(steps):
        x = speech_like(batch, samples, g)
        y, vq = model(x)
        recon = F.l1_loss(y, x)
        if losses == "library":
            named = {"recon": recon, "scale": rms_scale_loss(y, x), "percept": mel(y, x)}
        elif losses == "l1":
            named = {"recon": recon}
        else:
            named = {"recon": recon, "percept": naive_percept(y, x)}
        opt.zero_grad()
        balancer.backward(named, y, unbalanced={"vq": vq})
        opt.step()
        m = balancer.metrics
        total = sum(w * m[f"{n}/value"] for n, w in balancer.weights.items()) + m["vq/value"]
        curves["l1"].append(recon.item())
        curves["total"].append(total)
        curves["percept_share"].append(m.get("percept/share", 0.0))
        curves["peak"].append(y.detach().abs().max().item())
        curves["saturation"].append(ScaledTanhHead.saturation(y.detach()).item())
        if step == 0:
            first = dict(loss=_r(total), l1=_r(recon.item()), lo=_r(y.min().item()),
                         hi=_r(y.max().item()), x_lo=_r(x.min().item()), x_hi=_r(x.max().item()),
                         saturation=_r(curves["saturation"][0]),
                         percept_share=_r(m.get("percept/share", 0.0)))
    model.eval()
    with torch.no_grad():
        x = speech_like(16, samples, torch.Generator().manual_seed(2))
        y, _ = model(x)
        final = dict(l1=_r(F.l1_loss(y, x).item()), mel=_r(mel(y, x).item()),
                     rms_ratio=_r((y.std(-1) / x.std(-1)).mean().item()),
                     peak=_r(y.abs().max().item()), x_peak=_r(x.abs().max().item()),
                     saturation=_r(ScaledTanhHead.saturation(y).item()))
    shares = curves["percept_share"]
    return dict(first_step=first, held_out=final,
                mean_percept_share=_r(sum(shares) / len(shares)),
                curves={k: _curve(v) for k, v in curves.items()})


def exp_head(steps: int) -> dict:
    return dict(config=dict(steps=steps, batch=4, samples=4096, sample_rate=SR, loss="L1 + vq",
                            optimizer="Adam lr 3e-3"),
                buggy=dict(label="`3.0 * tanh(h)`, learnable scale from 3.0",
                           **train_codec("scale_after_tanh", "l1", steps)),
                fixed=dict(label="`ScaledTanhHead(1.0)`: `tanh(scale * h)`",
                           **train_codec("scaled_tanh", "l1", steps)))


def exp_balancer(steps: int) -> dict:
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


def exp_rms(steps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    target = speech_like(4, 8000, g)
    target = target / target.std(-1, keepdim=True) * torch.tensor([0.3, 0.15, 0.06, 0.03]
                                                                   )[:, None, None]
    batch_rms = target.square().mean().sqrt()
    cases = {
        "swapped": ("the targets' waveforms with their loudness swapped between examples",
                    target.flip(0) / target.flip(0).std(-1, keepdim=True) * target.std(-1,
                    keepdim=True).flip(0)),
        "equal": ("every example at the batch RMS (loudness differences erased)",
                  target / target.square().mean(-1, keepdim=True).sqrt() * batch_rms),
        "dc": ("a constant DC offset at the batch RMS, no waveform at all",
               torch.full_like(target, batch_rms.item())),
    }
    rows = {}
    for name, (label, pred) in cases.items():
        rows[name] = dict(label=label, batch_rms_loss=_r(batch_rms_loss(pred, target).item()),
                          per_example_loss=_r(rms_scale_loss(pred, target).item()),
                          per_example_loss_db=_r(rms_scale_loss(pred, target, domain="db").item()))
    # fit a per-example gain and DC offset, y_b = a_b * s_b + d_b, to each loss from silence
    src = target / target.std(-1, keepdim=True)  # the right waveforms, unit loudness
    fits = {}
    for name, fn in (("batch", batch_rms_loss), ("per_example", rms_scale_loss)):
        a = torch.full((4, 1, 1), 0.01, requires_grad=True)
        d = torch.zeros(4, 1, 1, requires_grad=True)
        opt = torch.optim.Adam([a, d], lr=3e-3)
        err, loss_c = [], []
        for _ in range(steps):
            y = a * src + d
            loss = fn(y, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_c.append(loss.item())
            with torch.no_grad():
                ratio = (a * src + d - (a * src + d).mean(-1, keepdim=True)).square().mean(
                    (-1, -2)).sqrt() / target.std(-1).squeeze(-1)
                err.append((20 * ratio.log10()).abs().max().item())
        fits[name] = dict(final_loss=_r(loss_c[-1]), final_worst_db_error=_r(err[-1]),
                          gains=[_r(v) for v in a.detach().flatten().tolist()],
                          dc=[_r(v) for v in d.detach().flatten().tolist()],
                          curves=dict(loss=_curve(loss_c), worst_db_error=_curve(err)))
    return dict(config=dict(batch=4, samples=8000, target_rms=[0.3, 0.15, 0.06, 0.03],
                            fit_steps=steps, fit="y_b = a_b * s_b + d_b, Adam lr 3e-3"),
                cases=rows, fits=fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "failure_modes.json")
    parser.add_argument("--quick", action="store_true", help="smoke run: a few steps each")
    parser.add_argument("--no-report", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    vq_steps, codec_steps, fit_steps = (5, 3, 10) if args.quick else (300, 200, 600)
    t0 = time.perf_counter()
    res: dict = {"meta": dict(torch=torch.__version__, rvq_blocks=rvq_blocks.__version__,
                              python=platform.python_version(), machine=platform.machine(),
                              processor=platform.platform(), threads=1, quick=args.quick)}
    for name, fn in (("codebook_loss", lambda: exp_codebook_loss(vq_steps)),
                     ("ste", lambda: exp_ste(vq_steps)),
                     ("summed_losses", exp_summed_losses),
                     ("head", lambda: exp_head(codec_steps)),
                     ("balancer", lambda: exp_balancer(codec_steps)),
                     ("rms", lambda: exp_rms(fit_steps))):
        t = time.perf_counter()
        res[name] = fn()
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
    res["meta"]["wall_s"] = _r(time.perf_counter() - t0, 3)
    write_json(args.out, res)
    if not args.no_report:
        import report

        report.main(["--only", "failure_modes"] if args.out.parent == report.RESULTS else
                    ["--only", "failure_modes", "--results", str(args.out.parent)])


if __name__ == "__main__":
    main()
