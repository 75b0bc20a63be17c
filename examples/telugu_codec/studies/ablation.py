"""Ablation of the Telugu example codec on one budget, for each of its two recipes.

    python -m examples.telugu_codec.studies.ablation               # the frame-rate recipe
    python -m examples.telugu_codec.studies.ablation --recipe seanet

Every variant is the example's real training loop (``examples.telugu_codec.train``) with the
same seed, data, crops, step budget and thread count; only the named flags differ from the
recipe's baseline. Each final checkpoint is then scored on the same held-out clips (SNR,
SI-SNR, log-mel distance, PESQ-WB, STOI, codes used): held-out Telugu and, for the frame-rate
recipe, the recorded English prompts that training never sees.

* ``frame`` (the example's defaults): what each part of the recipe buys. The compressed complex
  STFT loss, the gradient balancer, the warm-up + cosine schedule, the weight EMA, recorded
  voices in training and the architecture, each removed in turn, and centred latents added.
* ``seanet`` (the original SEANet-style model): the failed run's questions, what the output
  head does (learnable ``tanh(scale * x)`` against a fixed tanh, identity + clamp and the
  original ``3.0 * tanh(x)``) and what the gradient balancer does against the original fixed
  weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

from ..checkpoint import load_model
from ..codec import evaluate_clips
from ..data import default_cache_dir, eval_subset, load_heldout, load_recorded_english
from ..train import train
from . import RESULTS_DIR, write_text_atomic

MODULE = "examples.telugu_codec.studies.ablation"


class Recipe(NamedTuple):
    """A baseline (``flags`` on top of the training defaults) and its variants."""

    file: str  # results file under benchmarks/results
    flags: list[str]
    variants: dict[str, tuple[str, list[str]]]  # name -> (label, flags on top of the baseline)
    english: bool  # also score the recorded English prompts


RECIPES: dict[str, Recipe] = {
    "frame": Recipe("telugu_ablation_frame.json", [], {
        "baseline": ("frame-rate model, all of the recipe", []),
        "center_latents": ("latents centred per crop", ["--center_latents"]),
        "no_cstft": ("no compressed complex STFT loss",
                     ["--loss_weights", "mel=1,time=2,rms=0.1"]),
        "static_weights": ("the same weights as a plain sum (no balancer)",
                           ["--balancer", "static"]),
        "weights_1111": ("gradient fractions cstft 1 : mel 1 : time 1 : rms 0.1",
                         ["--loss_weights", "cstft=1,mel=1,time=1,rms=0.1"]),
        "weights_cstft_led": ("gradient fractions cstft 4 : mel 1 : time 1 : rms 0.1",
                              ["--loss_weights", "cstft=4,mel=1,time=1,rms=0.1"]),
        "mel_led": ("gradient fractions cstft 1 : mel 4 : time 1 : rms 0.1",
                    ["--loss_weights", "cstft=1,mel=4,time=1,rms=0.1"]),
        "no_time": ("no waveform MSE (cstft 2 : mel 1 : rms 0.1)",
                    ["--loss_weights", "cstft=2,mel=1,rms=0.1"]),
        "lr_2e-3": ("learning rate 2e-3 (default 1e-3)", ["--learning_rate", "2e-3"]),
        "constant_lr": ("constant learning rate (no warm-up, no decay)",
                        ["--schedule", "constant"]),
        "no_weight_ema": ("no EMA of the weights", ["--ema_decay", "0"]),
        "no_real_speech": ("synthetic Telugu only (no recorded voices)", ["--no-real_speech"]),
        "seanet": ("SEANet waveform model + ScaledTanhHead", ["--arch", "seanet"]),
        "head_up4": ("iSTFT head at 200 Hz (hop 80, n_fft 320) after a 4x upsampler",
                     ["--head_upsample", "4"]),
        "phase_below_1k": ("phase-aware losses below 1 kHz only (magnitudes above)",
                           ["--phase_max_hz", "1000"]),
        "istft_2x": ("iSTFT head with n_fft 2 x hop (640) instead of 4 x hop",
                     ["--istft_n_fft", "640"]),
    }, True),
    "seanet": Recipe("telugu_ablation.json", ["--arch", "seanet", "--center_latents"], {
        "baseline": ("ScaledTanhHead, gradient balancer", []),
        "head_tanh": ("fixed tanh(x) head", ["--head", "tanh"]),
        "head_clamp": ("identity + clamp head", ["--head", "clamp"]),
        "head_original": ("original 3.0 * tanh(x) head", ["--head", "original"]),
        "balancer_original": ("original fixed weights (2 * time + 0.1 * mel + rms)",
                              ["--balancer", "original"]),
        "no_centering": ("latents not centred", ["--no-center_latents"]),
        "original_run": ("original head and original fixed weights together",
                         ["--head", "original", "--balancer", "original"]),
    }, False),
}


def run_variant(name: str, recipe: Recipe, args: argparse.Namespace) -> dict:
    """Train variant ``name`` of ``recipe`` and score its checkpoint."""
    label, extra = recipe.variants[name]
    ckpt = args.work_dir / name
    argv = ["--checkpoint_dir", str(args.work_dir), "--experiment_name", name,
            "--cache_dir", str(args.cache_dir), "--num_epochs", str(args.epochs),
            "--steps_per_epoch", str(args.steps_per_epoch), "--threads", str(args.threads),
            "--eval_seconds", "20", "--quiet", "--no_plots", "--overwrite",
            "--seed", str(args.seed),
            *recipe.flags, *extra]
    t0 = time.perf_counter()
    summary = train(argv)
    train_s = time.perf_counter() - t0
    model = load_model(ckpt / "last.pt")
    heldout = load_heldout(args.cache_dir, log=lambda *_: None)
    clips = eval_subset(heldout, args.eval_seconds, 16000)
    total = sum(len(c.audio) for c in clips) / 16000
    scores = evaluate_clips(model, clips, perceptual=True)
    english = None
    if recipe.english:
        en = eval_subset(load_recorded_english(args.cache_dir, log=lambda *_: None),
                         args.eval_seconds, 16000)
        english = evaluate_clips(model, en, perceptual=True)
    curve = [{k: r[k] for k in ("step", "snr", "si_snr", "mel_distance", "output_min",
                                "output_max", "dc_offset", "loss") if k in r}
             | {"codes_used": r.get("codes_used")}
             for r in map(json.loads, (ckpt / "metrics.jsonl").read_text().splitlines())]
    return {"label": label, "flags": extra, "train_seconds": round(train_s, 1),
            "steps": summary["step"], "final_train": {k: summary.get(k) for k in (
                "output_min", "output_max", "dc_offset", "saturation", "output_scale")},
            "heldout": scores, "heldout_seconds": round(total, 1), "curve": curve,
            **({"english": english} if english is not None else {})}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen variants, writing the JSON after each."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", choices=list(RECIPES), default="frame")
    p.add_argument("--out", type=Path, default=None,
                   help="default: benchmarks/results/ and the recipe's file")
    p.add_argument("--work_dir", type=Path, default=Path("/tmp/rvq_blocks_ablation"))
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps_per_epoch", type=int, default=80)
    p.add_argument("--eval_seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    args = p.parse_args(argv)
    recipe = RECIPES[args.recipe]
    names = args.only if args.only is not None else list(recipe.variants)
    unknown = sorted(set(names) - set(recipe.variants))
    if unknown:
        p.error(f"unknown variants {unknown} for --recipe {args.recipe}; "
                f"choose from {list(recipe.variants)}")
    args.out = args.out or RESULTS_DIR / recipe.file
    torch.set_num_threads(args.threads)
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": args.threads,
            "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
            "batch_size": 16, "seed": args.seed, "recipe": args.recipe,
            "recipe_flags": recipe.flags,
            "command": f"python -m {MODULE} " + " ".join(
                argv if argv is not None else sys.argv[1:])}
    if "meta" in res:  # adding variants to an earlier run: keep its command line too
        meta["earlier_commands"] = [*res["meta"].get("earlier_commands", []),
                                    res["meta"]["command"]]
        if "note" in res["meta"]:
            meta["note"] = res["meta"]["note"]
    res["meta"] = meta
    res.setdefault("variants", {})
    for name in names:
        print(f"== {name}: {recipe.variants[name][0]}", flush=True)
        res["variants"][name] = run_variant(name, recipe, args)
        h = res["variants"][name]["heldout"]
        print(f"   SNR {h['snr']:.2f} dB SI-SNR {h['si_snr']:.2f} dB mel "
              f"{h['mel_distance']:.3f} PESQ {h.get('pesq_wb')} STOI {h.get('stoi')}", flush=True)
        write_text_atomic(args.out, json.dumps(res, indent=1) + "\n")  # after each variant
    return 0


if __name__ == "__main__":
    sys.exit(main())
