"""Codebook usage in the first training steps of two real waveform codecs, per quantizer.

Trains, with Adam, on 16 x 0.48 s crops of the Telugu example's synthetic training corpus:

* ``a``: the example's ``TeluguCodec`` (``examples/telugu_codec/model.py``) built from the
  module's own ``CodecConfig()`` defaults with ``center_latents=False``;
* ``b``: a plain strided-``Conv1d`` waveform autoencoder defined here (hop 240 at 16 kHz =
  66.7 Hz, 32-d latents, 8 x 256 codes, LeakyReLU, no output head),

each with several quantizers in place of the model's own: ``ResidualVQ`` with its defaults and
with one option each, SimVQ (arXiv 2411.02038, defined here) and vector-quantize-pytorch's
``ResidualVQ``. The loss is fixed and cheap: L1 waveform + ``MultiScaleMelLoss`` + the VQ loss.
At each checkpoint step (25, 50, 100, 200, 400) the codes chosen by every stage are counted, in
eval mode through ``encode`` (no state change), over a window of held-out crops spread evenly
over the held-out clips (at least 12 x codebook_size frames, or all held-out frames when there
are fewer), and the window is reconstructed (SNR, SI-SNR). Same seed, initial weights and crops
for every variant. The quantizers and models are in ``benchmarks/_usage_models.py``.

    python -m benchmarks.bench_codebook_usage --out benchmarks/results/codebook_usage.json
    python -m benchmarks.bench_codebook_usage --variants ours,vqtorch --models a --threads 1
    python -m benchmarks.bench_codebook_usage --quick --data_dir D --out x.json  # smoke run

``--data_dir`` takes a directory of audio (``train/`` and ``heldout/`` subdirectories, or a
flat folder split by name hash); by default the example's corpus is built (or reused) in its
cache (festival and espeak-ng needed the first time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks._common import (
    ROOT,
    file_digest,
    load_average,
    package_version,
    run_meta,
    write_json,
)
from benchmarks._usage_models import (
    MODELS,
    VARIANTS,
    Spec,
    build_model,
    build_quantizer,
    model_forward,
    unavailable,
)
from rvq_blocks import MultiScaleMelLoss

CHECKPOINTS = (25, 50, 100, 200, 400)
WINDOW_CODEBOOKS = 12  # held-out frames counted: at least this many x codebook_size
Log = Callable[[str], None]


# ----------------------------------------------------------------------------- data


def load_data(data_dir: Path | None, log: Log) -> tuple[list, list, str]:
    """Training clips, held-out clips and a note of where they came from.

    ``data_dir=None`` builds (or reuses) the Telugu example's default corpus.
    """
    from examples.telugu_codec.data import load_corpus

    if data_dir is None:
        from examples.telugu_codec.corpus import build_default_corpus
        from examples.telugu_codec.data import default_cache_dir

        data_dir = build_default_corpus(default_cache_dir() / "telugu_corpus", log=log)
        source = f"default Telugu corpus ({data_dir})"
    else:
        source = str(data_dir)
    train, heldout = load_corpus(data_dir, log=log)
    return train, heldout, source


def heldout_window(clips: list, segment: int) -> Tensor:
    """Every whole ``segment``-long crop of the held-out clips, in order: ``(N, 1, S)``."""
    crops = [torch.from_numpy(c.audio[i:i + segment].copy())
             for c in clips for i in range(0, len(c.audio) - segment + 1, segment)]
    if not crops:
        raise SystemExit(f"no held-out clip is at least {segment} samples long")
    return torch.stack(crops)[:, None]


def eval_window(crops: Tensor, frames_per_crop: int, frames_wanted: int) -> Tensor:
    """Enough of ``crops`` for ``frames_wanted`` frames (or all), spread evenly over the
    held-out set (every voice and sentence), in a fixed order."""
    take = min(crops.shape[0], math.ceil(frames_wanted / frames_per_crop))
    return crops[torch.linspace(0, crops.shape[0] - 1, take).round().long()]


# ----------------------------------------------------------------------------- measuring


def si_snr_db(x: Tensor, y: Tensor) -> Tensor:
    """Scale-invariant SNR of each row of ``y`` against the same row of ``x``, in dB."""
    xs, ys = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    alpha = (xs * ys).sum(1) / xs.pow(2).sum(1).clamp_min(1e-12)
    target = alpha[:, None] * xs
    ratio = target.pow(2).sum(1) / (ys - target).pow(2).sum(1).clamp_min(1e-12)
    return 10 * torch.log10(ratio.clamp_min(1e-12))


@torch.no_grad()
def evaluate(model: nn.Module, spec: Spec, window: Tensor, batch: int) -> dict[str, Any]:
    """Codes in use per stage over ``window`` and its reconstruction quality (eval mode)."""
    was = model.training
    model.eval()
    used = torch.zeros(spec.num_quantizers, spec.codebook_size, dtype=torch.bool)
    sig = err = 0.0
    si: list[float] = []
    for i in range(0, window.shape[0], batch):
        x = window[i:i + batch]
        codes = model.encode(x)  # (B, Q, T)
        for q in range(codes.shape[1]):
            used[q, codes[:, q].reshape(-1)] = True
        y = model.decode(codes)[..., : x.shape[-1]]
        sig += float(x.double().pow(2).sum())
        err += float((x - y).double().pow(2).sum())
        si += si_snr_db(x[:, 0].double(), y[:, 0].double()).tolist()
    model.train(was)
    frac = used.double().mean(1).tolist()
    return {"codes_used": frac, "min_codes_used": min(frac),
            "mean_codes_used": sum(frac) / len(frac),
            "snr_db": 10 * math.log10(sig / max(err, 1e-30)), "si_snr_db": sum(si) / len(si)}


def _setup(key: str, variant: str, seed: int, quick: bool) -> tuple[nn.Module, Spec]:
    """Model ``key`` with ``variant``'s quantizer; the same encoder/decoder for every variant."""
    torch.manual_seed(seed)
    model, spec = build_model(key, quick)
    if variant != "ours":
        torch.manual_seed(seed + 1)
        model.quantizer = build_quantizer(variant, spec.latent_dim, spec.num_quantizers,
                                          spec.codebook_size, spec.quantizer_options)
    torch.manual_seed(seed + 2)  # k-means sampling, revival, ...
    return model, spec


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, mel: MultiScaleMelLoss,
                x: Tensor, args: argparse.Namespace) -> tuple[float, float]:
    """One Adam step on the fixed loss: the loss and the seconds it took."""
    t0 = time.perf_counter()
    y, vq_loss = model_forward(model, x)
    loss = args.l1_weight * F.l1_loss(y, x) + mel(y, x) + vq_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if args.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
    opt.step()
    return float(loss.detach()), time.perf_counter() - t0


def run_variant(key: str, variant: str, args: argparse.Namespace, train_clips: list,
                window: Tensor, log: Log) -> dict[str, Any]:
    """Train model ``key`` with quantizer ``variant``; codebook usage at every checkpoint."""
    from examples.telugu_codec.data import RandomCrops

    model, spec = _setup(key, variant, args.seed, args.quick)
    impl, opts = VARIANTS[variant]
    row: dict[str, Any] = {"variant": variant, "implementation": impl, "options": opts}
    crops = RandomCrops(train_clips, spec.segment(args.segment_seconds),
                        args.steps * args.batch, args.seed)
    crops.set_epoch(0)
    mel = MultiScaleMelLoss(spec.sample_rate)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.8, 0.99))
    checkpoints = sorted({s for s in args.checkpoints if s <= args.steps} | {args.steps})
    model.train()
    seconds: list[float] = []
    losses: list[float] = []
    records: list[dict[str, Any]] = []
    for step in range(1, args.steps + 1):
        x = torch.stack([crops[i] for i in range((step - 1) * args.batch, step * args.batch)])
        loss, dt = _train_step(model, opt, mel, x, args)
        seconds.append(dt)
        losses.append(loss)
        if not math.isfinite(loss):
            row["diverged_at_step"] = step
            log(f"  {variant}: non-finite loss at step {step}; stopped")
            break
        if step in checkpoints:
            records.append({"step": step, **evaluate(model, spec, window, args.eval_batch),
                            "train_loss": sum(losses[-25:]) / len(losses[-25:])})
            _log_checkpoint(log, key, variant, records[-1], sum(seconds) / step)
    row.update({"steps_run": len(losses), "s_per_step": sum(seconds) / max(1, len(losses)),
                "first_step_s": seconds[0] if seconds else None, "train_s": sum(seconds),
                "checkpoints": records})
    if records:
        row["final"] = {k: records[-1][k] for k in ("step", "min_codes_used",
                                                    "mean_codes_used", "snr_db", "si_snr_db")}
    return row


def _log_checkpoint(log: Log, key: str, variant: str, rec: dict[str, Any],
                    s_per_step: float) -> None:
    log(f"  {key} {variant:<14} step {rec['step']:4d}  codes used min "
        f"{rec['min_codes_used']:6.1%} mean {rec['mean_codes_used']:6.1%}  SNR "
        f"{rec['snr_db']:6.2f} dB  SI-SNR {rec['si_snr_db']:7.2f} dB  loss "
        f"{rec['train_loss']:.4f}  {s_per_step:.3f} s/step")


# ----------------------------------------------------------------------------- main


def meta_of(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """The run's ``meta``: environment, code digests and every training setting."""
    import rvq_blocks

    lib = Path(rvq_blocks.__file__).resolve().parent
    return run_meta(
        threads=torch.get_num_threads(),
        vector_quantize_pytorch=package_version("vector-quantize-pytorch"),
        code_sha256={"rvq_blocks/residual_vq.py": file_digest(lib / "residual_vq.py"),
                     "examples/telugu_codec/model.py":
                         file_digest(ROOT / "examples" / "telugu_codec" / "model.py")},
        steps=args.steps, checkpoints=args.checkpoints, batch=args.batch,
        segment_seconds=args.segment_seconds, lr=args.lr,
        optimizer="Adam(betas=(0.8, 0.99))", grad_clip=args.grad_clip,
        loss=f"{args.l1_weight:g} * l1(y, x) + MultiScaleMelLoss(y, x) + vq.loss",
        seed=args.seed, data=source, quick=args.quick, label=args.label, argv=sys.argv[1:])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with ``--quick`` applied and the comma lists split."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--checkpoints", default=",".join(map(str, CHECKPOINTS)),
                    help="steps at which usage is measured (the last step always is)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of "
                    f"{list(VARIANTS)}")
    ap.add_argument("--models", default="a,b", help=f"comma list of {list(MODELS)}")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment_seconds", type=float, default=0.48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l1_weight", type=float, default=1.0,
                    help="weight of the L1 waveform loss (the mel loss and VQ loss weigh 1)")
    ap.add_argument("--grad_clip", type=float, default=1.0, help="0 disables")
    ap.add_argument("--eval_batch", type=int, default=32)
    ap.add_argument("--window_codebooks", type=int, default=WINDOW_CODEBOOKS,
                    help="held-out frames counted: this many x codebook_size (or all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--data_dir", type=Path, default=None,
                    help="audio directory (train/ + heldout/); default: the example's corpus")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: tiny models (2 x 16 codes), 2 steps, batch 2")
    ap.add_argument("--label", default="", help="free text recorded in the JSON (e.g. which "
                    "code was measured)")
    ap.add_argument("--out", type=Path, help="write results as JSON")
    ap.add_argument("--merge", action="store_true",
                    help="add this run's rows to the existing --out file (same settings "
                         "required), replacing rows of the same model and variant")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.checkpoints = 2, 2, "1,2"
    args.checkpoints = [int(s) for s in args.checkpoints.split(",") if s]
    args.variants = [v for v in args.variants.split(",") if v]
    args.models = [m for m in args.models.split(",") if m]
    bad = [v for v in args.variants if v not in VARIANTS] + \
        [m for m in args.models if m not in MODELS]
    if bad:
        ap.error(f"unknown variants/models {bad}; variants {list(VARIANTS)}, "
                 f"models {list(MODELS)}")
    return args


def model_entry(key: str, args: argparse.Namespace, heldout: list) -> tuple[dict, Tensor]:
    """Model ``key``'s JSON entry (results still empty) and its held-out window."""
    _, spec = build_model(key, args.quick)
    segment = spec.segment(args.segment_seconds)
    crops = heldout_window(heldout, segment)
    frames_per_crop = segment // spec.hop_length
    available = crops.shape[0] * frames_per_crop
    window = eval_window(crops, frames_per_crop, args.window_codebooks * spec.codebook_size)
    entry = {"description": MODELS[key], "sample_rate": spec.sample_rate,
             "hop_length": spec.hop_length, "frame_rate": spec.sample_rate / spec.hop_length,
             "latent_dim": spec.latent_dim, "num_quantizers": spec.num_quantizers,
             "codebook_size": spec.codebook_size, "config": spec.config,
             "segment_samples": segment, "heldout_frames_available": available,
             "eval_crops": window.shape[0],
             "eval_frames": window.shape[0] * frames_per_crop, "results": []}
    print(f"\n== model {key}: {MODELS[key]}; {spec.num_quantizers} x {spec.codebook_size} "
          f"codes, {spec.latent_dim}-d at {entry['frame_rate']:.1f} Hz; usage over "
          f"{entry['eval_frames']} held-out frames ({available} available) ==")
    return entry, window


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every selected model with every selected quantizer; the results (and the JSON)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_clips, heldout, source = load_data(args.data_dir, print)
    meta = meta_of(args, source)
    print("codebook usage | " + ", ".join(f"{k} {v}" for k, v in meta.items()
                                          if k not in ("argv", "code_sha256")))
    results: dict[str, Any] = {"meta": meta, "models": {}}
    earlier = json.loads(args.out.read_text()) if args.out and args.merge \
        and args.out.exists() else None

    def full(res: dict[str, Any]) -> dict[str, Any]:  # with --merge: the earlier rows too
        return res if earlier is None else merge_into(earlier, res)

    for key in args.models:
        entry, window = model_entry(key, args, heldout)
        for variant in args.variants:
            why = unavailable(variant)
            if why:
                print(f"  {key} {variant:<14} skipped: {why}")
                impl, opts = VARIANTS[variant]
                entry["results"].append({"variant": variant, "implementation": impl,
                                         "options": opts, "skipped": why})
                continue
            entry["results"].append(run_variant(key, variant, args, train_clips, window, print))
            if args.out:  # partial results survive an interrupted run
                write_json(args.out, full({**results, "models": {**results["models"],
                                                                  key: entry}}), quiet=True)
        results["models"][key] = entry
    meta["loadavg_end"] = load_average()
    results = full(results)
    if args.out:
        write_json(args.out, results)
    return results


SAME_SETTINGS = ("steps", "checkpoints", "batch", "segment_seconds", "lr", "optimizer",
                 "grad_clip", "loss", "seed", "quick", "threads")


def merge_into(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with ``later``'s rows added (a row of the same model and variant is
    replaced); ``later``'s meta is kept under ``meta["added_runs"]``.

    Raises:
        SystemExit: If the two runs differ in a training or measuring setting.
    """
    differ = [k for k in SAME_SETTINGS if earlier["meta"].get(k) != later["meta"].get(k)]
    if differ:
        raise SystemExit(f"--merge: the runs differ in {differ}; write a new file instead")
    out = {"meta": {**earlier["meta"], "added_runs": [
        *earlier["meta"].get("added_runs", []), later["meta"]]},
        "models": dict(earlier["models"])}
    for key, entry in later["models"].items():
        if key not in out["models"]:
            out["models"][key] = entry
            continue
        new = {r["variant"] for r in entry["results"]}
        kept = [r for r in out["models"][key]["results"] if r["variant"] not in new]
        out["models"][key] = {**out["models"][key], "results": kept + entry["results"]}
    return out


if __name__ == "__main__":
    main()
