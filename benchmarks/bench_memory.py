"""Memory of the first training step (k-means included) of residual VQ, each in a fresh process.

For each implementation a new Python process builds the quantizer for the standard config
(batch 8, dim 128, time 250, 8 x 1024 codes), runs a tiny unrelated forward + backward so that
the one-time runtime start-up is not charged to it, then measures resident memory (RSS) before
and after one training forward + backward. Printed: the peak RSS growth during the step and the
RSS still held after it, in MB, median and min-max over --repeats fresh processes.

    python -m benchmarks.bench_memory --out benchmarks/results/memory.json
    python -m benchmarks.bench_memory --quick       # one process each, a tiny batch
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, run_meta, write_json

IMPLS = ["floor", "rvq_blocks", "vector-quantize-pytorch", "EnCodec", "DAC"]
CONFIG = {"batch": 8, "dim": 128, "time": 250, "num_quantizers": 8, "codebook_size": 1024}
MB = 2**20


def rss_bytes() -> int:
    """Resident memory of this process now."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The most resident memory this process has held so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def child(name: str, threads: int, encodec_iters: int, batch: int) -> dict[str, Any]:
    """In the fresh process: build ``name``, warm the runtime, measure one training step."""
    import warnings

    import torch

    from benchmarks._peers import load_all

    torch.set_num_threads(threads)
    build, why = load_all([name])[name]
    if build is None:
        return {"skipped": why}
    opts = {"EnCodec": {"kmeans_iters": encodec_iters}}.get(name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapter = build(CONFIG["dim"], CONFIG["num_quantizers"], CONFIG["codebook_size"], **opts)
    x = torch.randn(batch, CONFIG["dim"], CONFIG["time"])
    # one-time runtime start-up (thread pool, autograd engine) on a tiny unrelated problem
    w = torch.randn(64, 16, requires_grad=True)
    d = torch.addmm(torch.zeros(64), torch.randn(32, 16), w.t(), alpha=-2.0)
    (d.index_select(1, d.argmin(1)).sum() + w.pow(2).mean()).backward()
    before = rss_bytes()
    t0 = time.perf_counter()
    adapter.train_step(x)
    seconds = time.perf_counter() - t0
    after, peak = rss_bytes(), peak_rss_bytes()
    return {"rss_before_mb": before / MB, "peak_growth_mb": (peak - before) / MB,
            "retained_growth_mb": (after - before) / MB, "step_s": seconds}


def run_fresh(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`child` for ``name`` in a new Python process; its result or why it failed."""
    cmd = [sys.executable, "-m", "benchmarks.bench_memory", "--child", name,
           "--threads", str(args.threads),
           "--encodec-kmeans-iters", str(args.encodec_kmeans_iters), "--batch", str(args.batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"child exited {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def summary(values: list[float]) -> str:
    """Median and (min-max) of ``values``, one decimal."""
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    """Measure every implementation in fresh processes (or be one, with ``--child``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=CONFIG["batch"])
    ap.add_argument("--encodec-kmeans-iters", type=int, default=1,
                    help="EnCodec's peak is the same every k-means iteration; its default is 50")
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: batch 1, one process per implementation")
    ap.add_argument("--out", type=Path, help="write results as JSON")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.repeats = 1, 1
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.encodec_kmeans_iters, args.batch)))
        return
    import torch

    cfg = {**CONFIG, "batch": args.batch}
    print(f"RSS growth over the first training step (k-means included), fresh process each | "
          f"torch {torch.__version__}, threads {args.threads}, "
          + ", ".join(f"{k} {v}" for k, v in cfg.items()))
    print(f"{args.repeats} fresh processes each; median (min-max)")
    print(f"{'implementation':<25}{'peak MB':>22}{'retained MB':>22}{'step s':>8}")
    results: dict[str, Any] = {
        "meta": run_meta(threads=args.threads, **cfg,
                         encodec_kmeans_iters=args.encodec_kmeans_iters, repeats=args.repeats),
        "results": {}}
    for name in args.impls.split(","):
        runs = [run_fresh(name, args) for _ in range(args.repeats)]
        results["results"][name] = runs
        good = [r for r in runs if "skipped" not in r]
        if not good:
            print(f"{name:<25}  skipped: {runs[0]['skipped']}")
            continue
        cols = [summary([r[key] for r in good]) for key in ("peak_growth_mb",
                                                             "retained_growth_mb")]
        step = statistics.median(r["step_s"] for r in good)
        print(f"{name:<25}{cols[0]:>22}{cols[1]:>22}{step:>8.2f}")
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
