"""Ablation of the Telugu example codec on one budget: output heads, loss weighting, latents.

    python -m examples.telugu_codec.studies.ablation --out benchmarks/results/telugu_ablation.json

Every variant is the example's real training loop (``examples.telugu_codec.train``) with the
same seed, data, crops, step budget and thread count; only the named setting differs from the
baseline (``ScaledTanhHead``, gradient balancer, centred latents). Each final checkpoint is
then scored on the same held-out clips (SNR, SI-SNR, log-mel distance, PESQ-WB, STOI, codes
used). The rows answer the failed run's questions: what the head does (learnable
``tanh(scale * x)`` against a fixed tanh, identity + clamp and the original
``3.0 * tanh(x)``), and what the gradient balancer does against the original fixed weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from ..checkpoint import load_model
from ..codec import evaluate_clips
from ..data import default_cache_dir, eval_subset, load_heldout
from ..train import train
from . import RESULTS_DIR, write_text_atomic

MODULE = "examples.telugu_codec.studies.ablation"
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("ScaledTanhHead, gradient balancer", []),
    "head_tanh": ("fixed tanh(x) head", ["--head", "tanh"]),
    "head_clamp": ("identity + clamp head", ["--head", "clamp"]),
    "head_original": ("original 3.0 * tanh(x) head", ["--head", "original"]),
    "balancer_original": ("original fixed weights (2 * time + 0.1 * mel + rms)",
                          ["--balancer", "original"]),
    "no_centering": ("latents not centred", ["--no-center_latents"]),
    "original_run": ("original head and original fixed weights together",
                     ["--head", "original", "--balancer", "original"]),
}


def run_variant(name: str, extra: list[str], args: argparse.Namespace) -> dict:
    """Train variant ``name`` (the baseline plus ``extra`` flags) and score its checkpoint."""
    ckpt = args.work_dir / name
    argv = ["--checkpoint_dir", str(args.work_dir), "--experiment_name", name,
            "--cache_dir", str(args.cache_dir), "--num_epochs", str(args.epochs),
            "--steps_per_epoch", str(args.steps_per_epoch), "--threads", str(args.threads),
            "--eval_seconds", "20", "--quiet", "--no_plots", "--seed", str(args.seed), *extra]
    t0 = time.perf_counter()
    summary = train(argv)
    train_s = time.perf_counter() - t0
    model = load_model(ckpt / "last.pt")
    heldout = load_heldout(args.cache_dir, log=lambda *_: None)
    clips = eval_subset(heldout, args.eval_seconds, 16000)
    total = sum(len(c.audio) for c in clips) / 16000
    scores = evaluate_clips(model, clips, perceptual=True)
    curve = [{k: r[k] for k in ("step", "snr", "si_snr", "mel_distance", "output_min",
                                "output_max", "dc_offset", "loss")}
             for r in map(json.loads, (ckpt / "metrics.jsonl").read_text().splitlines())]
    return {"label": VARIANTS[name][0], "flags": extra, "train_seconds": round(train_s, 1),
            "steps": summary["step"], "final_train": {k: summary.get(k) for k in (
                "output_min", "output_max", "dc_offset", "saturation", "output_scale")},
            "heldout": scores, "heldout_seconds": round(total, 1), "curve": curve}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen variants, writing the JSON after each."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "telugu_ablation.json")
    p.add_argument("--work_dir", type=Path, default=Path("/tmp/rvq_blocks_ablation"))
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps_per_epoch", type=int, default=80)
    p.add_argument("--eval_seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": args.threads,
            "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
            "batch_size": 16, "seed": args.seed,
            "command": f"python -m {MODULE} " + " ".join(
                argv if argv is not None else sys.argv[1:])}
    if "meta" in res:  # adding variants to an earlier run: keep its command line too
        meta["earlier_commands"] = [*res["meta"].get("earlier_commands", []),
                                    res["meta"]["command"]]
    res["meta"] = meta
    res.setdefault("variants", {})
    for name in args.only:
        print(f"== {name}: {VARIANTS[name][0]}", flush=True)
        res["variants"][name] = run_variant(name, VARIANTS[name][1], args)
        h = res["variants"][name]["heldout"]
        print(f"   SNR {h['snr']:.2f} dB SI-SNR {h['si_snr']:.2f} dB mel "
              f"{h['mel_distance']:.3f} PESQ {h.get('pesq_wb')} STOI {h.get('stoi')}", flush=True)
        write_text_atomic(args.out, json.dumps(res, indent=1) + "\n")  # after each variant
    return 0


if __name__ == "__main__":
    sys.exit(main())
