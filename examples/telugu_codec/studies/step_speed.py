"""Training steps per second of the two architectures, measured interleaved in one process.

    python -m examples.telugu_codec.studies.step_speed --steps 20 \\
        --out benchmarks/results/step_speed.json [--threads 2] [--data_dir D] [-- TRAIN FLAGS]

Each architecture (``--arch frame``, the default, and ``--arch seanet``, the original model)
gets the training set-up a user's run of :mod:`examples.telugu_codec.train` builds: the
training parser's defaults (batch, crop length, codec, balancer, optimizer, EMA), its
:func:`~examples.telugu_codec.train.set_up` on the default corpus (or ``--data_dir``), and its
:func:`~examples.telugu_codec.train.train_step`, which does everything a step does: the crops,
the forward pass, the balanced losses and their backward pass, gradient clipping, the AdamW
step and the EMA update. Flags after ``--`` go to the training parser of both models (e.g.
``-- --batch_size 4``).

After ``--warmup`` steps each (the first one also runs the k-means initialisation of the
codebooks), the models take ``--steps`` timed steps in turn: frame, seanet, frame, seanet, ...
Both see the same batches (same seed) with the same ``--threads``. On a shared machine the
absolute times move with the load; since the two models take their steps in alternation they
see the same load, so their ratio is the figure to quote. The load average is recorded at the
start, after every round and at the end.

The JSON holds ``meta`` (command, machine, versions, threads, the training flags, batch and
crop), ``models`` (per architecture: parameter count, every step time, the median and quartiles
of the seconds per step, steps per second) and ``ratio`` (frame steps per second over seanet
steps per second, from the medians and as the median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data import default_cache_dir
from . import RESULTS_DIR, run_meta, write_json

MODULE = "examples.telugu_codec.studies.step_speed"
ARCHS = ("frame", "seanet")  # the order of the steps in a round


# ====================================================================== set-up
def training_run(arch: str, args: argparse.Namespace, train_flags: Sequence[str],
                 run_dir: Path):
    """The training set-up of ``python -m examples.telugu_codec.train --arch ARCH``.

    Args:
        arch: ``frame`` or ``seanet``.
        args: The study's arguments (``threads``, ``device``, ``data_dir``, ``cache_dir``).
        train_flags: Further training flags, after the study's own.
        run_dir: A scratch folder for the run's directory (nothing is written there but the
            run's lock file).

    Returns:
        The :class:`~examples.telugu_codec.train.Run`, in training mode, ready for
        :func:`~examples.telugu_codec.train.train_step`.
    """
    from .. import train

    argv = ["--arch", arch, "--threads", str(args.threads), "--device", args.device,
            "--cache_dir", str(args.cache_dir), "--checkpoint_dir", str(run_dir),
            "--experiment_name", f"step_speed_{arch}", "--quiet", "--no_plots"]
    if args.data_dir is not None:
        argv += ["--data_dir", str(args.data_dir)]
    targs = train.build_parser().parse_args([*argv, *train_flags])
    env = train.Dist(targs.device)
    train.check_args(targs, env)
    run = train.set_up(targs, env, lambda *a, **k: print(f"[{arch}]", *a, **k))
    train.distribute(run)
    run.t_start = time.monotonic()
    run.crops.set_epoch(1)
    run.model.train()
    return run


def timed_step(run, index: int) -> float:
    """One full training step (:func:`~examples.telugu_codec.train.train_step`); its seconds.

    Args:
        run: A run from :func:`training_run`.
        index: The step's number since the start (batches wrap into the next epoch).

    Returns:
        The wall time of the step.

    Raises:
        FloatingPointError: If a loss is not finite.
    """
    import torch

    from ..train import train_step

    per_epoch = run.args.steps_per_epoch
    run.crops.set_epoch(1 + index // per_epoch)
    sync = torch.cuda.synchronize if run.env.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    stats, _ = train_step(run, index % per_epoch)
    sync()
    seconds = time.perf_counter() - start
    if not all(np.isfinite(float(v)) for v in stats.values()):
        raise FloatingPointError(f"non-finite loss in step {index} of --arch "
                                 f"{run.args.arch}: { {k: float(v) for k, v in stats.items()} }")
    return seconds


# ====================================================================== summary
def summarise(times: Sequence[float]) -> dict:
    """Median, quartiles and interquartile range of step times, and steps per second.

    Args:
        times: Seconds per step.

    Returns:
        ``median_s``, ``q1_s``, ``q3_s``, ``iqr_s``, ``mean_s``, ``min_s``, ``max_s`` and
        ``steps_per_s`` (one over the median).
    """
    q1, median, q3 = (float(v) for v in np.percentile(times, [25, 50, 75]))
    return {"median_s": round(median, 4), "q1_s": round(q1, 4), "q3_s": round(q3, 4),
            "iqr_s": round(q3 - q1, 4), "mean_s": round(statistics.fmean(times), 4),
            "min_s": round(min(times), 4), "max_s": round(max(times), 4),
            "steps_per_s": round(1.0 / median, 3)}


def ratios(times: dict[str, list[float]]) -> dict:
    """Frame steps per second over seanet steps per second.

    Args:
        times: Step times per architecture, one per round, in the same order.

    Returns:
        ``frame_over_seanet_steps_per_s`` (from the medians), ``per_round_median``,
        ``per_round_q1`` and ``per_round_q3`` (of each round's seanet time over its frame
        time).
    """
    per_round = [s / f for f, s in zip(times["frame"], times["seanet"], strict=True)]
    q1, median, q3 = (float(v) for v in np.percentile(per_round, [25, 50, 75]))
    return {"frame_over_seanet_steps_per_s": round(statistics.median(times["seanet"])
                                                   / statistics.median(times["frame"]), 3),
            "per_round_median": round(median, 3), "per_round_q1": round(q1, 3),
            "per_round_q3": round(q3, 3)}


# ====================================================================== provenance
def meta(argv: Sequence[str], args: argparse.Namespace, runs: dict,
         train_flags: Sequence[str]) -> dict:
    """Versions, machine, the command line (``python`` followed by ``argv``) and settings."""
    import torch

    run = runs["frame"]
    return {**run_meta(argv, args.threads),
            "torch_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "device": args.device,
            "data": run.source, "train_flags": list(train_flags),
            "batch_size": run.args.batch_size, "segment_samples": run.segment,
            "segment_seconds": run.segment / run.cfg.sample_rate,
            "warmup_steps": args.warmup, "steps": args.steps, "order": list(ARCHS),
            "step": "examples.telugu_codec.train.train_step: crops, forward, balanced losses "
                    "and backward, grad clip, AdamW, EMA"}


# ====================================================================== CLI
def build_parser() -> argparse.ArgumentParser:
    """The study's command line (training flags go after ``--``)."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed steps per model first (the first one runs k-means)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="the training --device")
    p.add_argument("--data_dir", type=Path, default=None,
                   help="training audio (default: the default corpus in --cache_dir)")
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "step_speed.json")
    return p


def run(args: argparse.Namespace, train_flags: Sequence[str], argv: Sequence[str]) -> dict:
    """Set both models up, time their steps interleaved; the results as they go into the JSON.

    Args:
        args: The study's arguments.
        train_flags: Training flags for both models.
        argv: The command line, for the record.

    Returns:
        ``meta``, ``models`` and ``ratio``.
    """
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("--steps and --threads must be >= 1, --warmup >= 0")
    loadavg_start = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="step_speed_") as scratch:
        runs = {arch: training_run(arch, args, train_flags, Path(scratch)) for arch in ARCHS}
        results = {"meta": {**meta(argv, args, runs, train_flags),
                            "loadavg_start": loadavg_start}}
        for i in range(args.warmup):
            for arch in ARCHS:
                timed_step(runs[arch], i)
        times: dict[str, list[float]] = {arch: [] for arch in ARCHS}
        load: list[float] = []
        for i in range(args.warmup, args.warmup + args.steps):
            for arch in ARCHS:
                times[arch].append(timed_step(runs[arch], i))
            load.append(round(os.getloadavg()[0], 2))
            print(f"round {i - args.warmup + 1}/{args.steps}: "
                  + ", ".join(f"{a} {times[a][-1]:.3f} s" for a in ARCHS)
                  + f" (load {load[-1]:.2f})")
        models = {}
        for arch in ARCHS:
            r = runs[arch]
            models[arch] = {"parameters": sum(p.numel() for p in r.model.parameters()),
                            "frame_rate_hz": r.cfg.frame_rate, "hop": r.cfg.hop_length,
                            "losses": list(r.balancer.names), "balancer": r.args.balancer,
                            "ema_decay": r.args.ema_decay, **summarise(times[arch]),
                            "times_s": [round(t, 4) for t in times[arch]]}
            if r.lock is not None:
                r.lock.close()  # before the scratch folder goes
    results["models"] = models
    results["ratio"] = ratios(times)
    results["meta"]["loadavg_rounds"] = load
    results["meta"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study and write its JSON (``--out``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, train_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    args = build_parser().parse_args(own)
    results = run(args, train_flags, ["-m", MODULE, *argv])
    for arch, m in results["models"].items():
        print(f"{arch:6s}: {m['parameters'] / 1e6:.2f} M parameters, median {m['median_s']:.3f} "
              f"s/step (IQR {m['q1_s']:.3f}-{m['q3_s']:.3f}), {m['steps_per_s']:.2f} steps/s")
    print(f"frame/seanet steps per second: {results['ratio']['frame_over_seanet_steps_per_s']:.2f}"
          f" (per-round median {results['ratio']['per_round_median']:.2f})")
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
