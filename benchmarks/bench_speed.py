"""Speed of residual VQ with the training machinery on: rvq_blocks, its peers and a plain floor.

Times (torch.utils.benchmark, blocked_autorange) a training forward + backward and an eval
encode + decode for each implementation, plus the k-means initialisation (the first training
step) separately. The floor is the minimum work of a greedy RVQ: per stage one addmm
distance, argmin, gather and subtract, forward and backward.

    python -m benchmarks.bench_speed --out benchmarks/results/speed.json
    python -m benchmarks.bench_speed --quick        # seconds-long smoke run
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

from benchmarks._common import load_average, run_meta, write_json
from benchmarks._peers import Adapter, Loader, encodec_kmeans_seconds, load_all

# name: (batch, dim, time, num_quantizers, codebook_size, codebook_dim)
CONFIGS = {
    "standard": (8, 128, 250, 8, 1024, None),
    "factorized8": (8, 128, 250, 8, 1024, 8),
    "batch6x": (48, 128, 250, 8, 1024, None),
}
QUICK = {"quick": (2, 32, 50, 2, 64, None), "quick-factorized": (2, 32, 50, 2, 64, 8)}
IMPLS = ["floor", "rvq_blocks", "vector-quantize-pytorch", "EnCodec", "DAC"]
# Training machinery switched on for every implementation that has it.
OPTIONS = {
    "rvq_blocks": {"ema": True, "kmeans_init": True, "kmeans_iters": 10,
                   "dead_code_threshold": 0.1},
    "vector-quantize-pytorch": {"kmeans_init": True, "kmeans_iters": 10, "decay": 0.99,
                                "dead_code": 2.0},
    "EnCodec": {"kmeans_init": True, "kmeans_iters": 50, "decay": 0.99, "dead_code": 2},
}


def timeit(fn: Callable[[], Any], threads: int, min_run_time: float) -> dict[str, float]:
    """Median, min and max milliseconds of ``fn()`` over blocks of runs, and the run count."""
    m = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    return {"median_ms": 1e3 * m.median, "min_ms": 1e3 * min(m.times),
            "max_ms": 1e3 * max(m.times), "runs": len(m.times) * m.number_per_run}


def kmeans_init(name: str, adapter: Adapter, x: torch.Tensor,
                max_kmeans_s: float) -> tuple[float | None, str]:
    """Seconds of the first training forward (k-means included) and a note."""
    if name == "EnCodec":
        est = encodec_kmeans_seconds(adapter, x, iters=1, total_iters=50)
        if est > max_kmeans_s:
            adapter.prime(x)  # seeds codebooks from the data so steady-state timing can go on
            return est, "estimated from 1 of 50 iterations x stages (over --max-kmeans-s)"
    if name in ("floor", "DAC"):
        return None, "no k-means init"
    t0 = time.perf_counter()
    adapter.train_step(x)
    return time.perf_counter() - t0, "first training step (forward + backward)"


def bench_config(key: str, cfg: tuple, loaded: dict[str, Loader],
                 args: argparse.Namespace) -> dict[str, Any]:
    """Train and eval timings of every implementation on one config, with ratios."""
    b, d, t, nq, k, cdim = cfg
    x = torch.randn(b, d, t)
    rows = {}
    for name in IMPLS:
        build, why = loaded[name]
        if build is None:
            rows[name] = {"skipped": why}
            continue
        try:
            torch.manual_seed(args.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adapter = build(d, nq, k, cdim, **OPTIONS.get(name, {}))
                init_s, note = kmeans_init(name, adapter, x, args.max_kmeans_s)
                adapter.train_step(x)  # warm-up
                train = timeit(lambda a=adapter: a.train_step(x), args.threads, args.min_time)
                evaluate = timeit(lambda a=adapter: a.decode(a.encode(x)), args.threads,
                                  args.min_time)
        except Exception as exc:  # report and go on
            rows[name] = {"skipped": f"failed: {exc!r}"}
            continue
        rows[name] = {"train": train, "eval": evaluate, "kmeans_init_s": init_s,
                      "kmeans_note": note}
    for row in rows.values():
        for mode in ("train", "eval"):
            if mode not in row:
                continue
            for ref in ("floor", "EnCodec"):
                base = rows.get(ref, {}).get(mode)
                row[mode][f"x_{ref}"] = row[mode]["median_ms"] / base["median_ms"] if base else None
    return {"batch": b, "dim": d, "time": t, "num_quantizers": nq, "codebook_size": k,
            "codebook_dim": cdim, "results": rows}


def fmt_time(m: dict[str, float]) -> str:
    """``median (min-max)`` in ms."""
    return f"{m['median_ms']:8.1f} ({m['min_ms']:.1f}-{m['max_ms']:.1f})"


def fmt_ratio(v: float | None) -> str:
    """A ratio to two decimals, or ``-``."""
    return f"{v:6.2f}" if v is not None else f"{'-':>6}"


def print_config(key: str, res: dict[str, Any]) -> None:
    """The table of one config."""
    print(f"\n== {key}: batch {res['batch']}, dim {res['dim']}, time {res['time']}, "
          f"{res['num_quantizers']} x {res['codebook_size']} codes, codebook_dim "
          f"{res['codebook_dim'] or res['dim']} ==")
    print(f"{'implementation':<25}{'train ms median (min-max)':>28}{'/floor':>7}{'/EnC':>7}"
          f"{'eval ms median (min-max)':>28}{'/floor':>7}{'/EnC':>7}  k-means init")
    for name, row in res["results"].items():
        if "skipped" in row:
            print(f"{name:<25}  skipped: {row['skipped']}")
            continue
        tr, ev = row["train"], row["eval"]
        init = row["kmeans_init_s"]
        init_txt = "-" if init is None else f"{init:.2f} s"
        if "estimated" in row["kmeans_note"]:
            init_txt = f"~{init:.0f} s (est.)"
        print(f"{name:<25}{fmt_time(tr):>28}{fmt_ratio(tr['x_floor']):>7}"
              f"{fmt_ratio(tr['x_EnCodec']):>7}{fmt_time(ev):>28}{fmt_ratio(ev['x_floor']):>7}"
              f"{fmt_ratio(ev['x_EnCodec']):>7}  {init_txt}")


def main() -> None:
    """Time every implementation on every selected config."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {list(CONFIGS)}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=3.0, help="blocked_autorange min_run_time")
    ap.add_argument("--max-kmeans-s", type=float, default=30.0,
                    help="estimate a k-means init instead of running it when longer than this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke mode: tiny configs")
    ap.add_argument("--out", type=Path, help="write results as JSON")
    args = ap.parse_args()
    configs = QUICK if args.quick else {k: CONFIGS[k] for k in args.configs.split(",")}
    if args.quick:
        args.min_time = 0.05
    torch.set_num_threads(args.threads)
    loaded = load_all(IMPLS)
    meta = run_meta(threads=torch.get_num_threads(), min_run_time_s=args.min_time)
    print("speed | " + ", ".join(f"{k} {v}" for k, v in meta.items()))
    busy = load_average()[0] - 0.5 * (os.cpu_count() or 1)
    if busy > 0:
        print("warning: other processes are using the CPUs; with 2 threads every parallel op "
              "waits for both, so timings are inflated, most for many small ops")
    results = {"meta": meta, "configs": {}}
    for key, cfg in configs.items():
        results["configs"][key] = bench_config(key, cfg, loaded, args)
        print_config(key, results["configs"][key])
    meta["loadavg_end"] = load_average()
    print(f"\nload average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}")
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
