"""What ``import rvq_blocks`` adds to ``import torch``, in fresh processes.

Each repeat starts a new interpreter with ``-X importtime`` that imports torch, then
rvq_blocks; the cumulative time Python records for ``rvq_blocks`` is what the package adds on
top of torch (torch is already loaded by then). Printed: the median and range over
--repeats, torch's own import time for scale, and the ratio. The JSON keeps these figures at
its top level and the run's environment under ``meta``.

    python -m benchmarks.bench_import_time --out benchmarks/results/import_time.json
    python -m benchmarks.bench_import_time --quick      # two repeats
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks._common import run_meta, write_json

LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$")


def one_run() -> dict[str, float]:
    """Cumulative import seconds of torch and of rvq_blocks in one fresh interpreter."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import torch; import rvq_blocks"],
                          capture_output=True, text=True, check=True)
    cumulative = {m.group(2): int(m.group(1)) / 1e6
                  for m in map(LINE.match, proc.stderr.splitlines()) if m}
    return {"torch_s": cumulative["torch"], "rvq_blocks_s": cumulative["rvq_blocks"],
            "dynamo_imported": float("torch._dynamo" in cumulative)}


def main() -> None:
    """Time the imports over ``--repeats`` fresh processes; print and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke mode: two repeats")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 2
    meta = run_meta(threads=None, repeats=args.repeats)
    one_run()  # warm the file cache
    runs = [one_run() for _ in range(args.repeats)]
    added = [r["rvq_blocks_s"] for r in runs]
    torch_s = [r["torch_s"] for r in runs]
    result = {
        "torch": meta["torch"], "python": meta["python"],
        "repeats": args.repeats,
        "rvq_blocks_added_s": {"median": statistics.median(added), "min": min(added),
                               "max": max(added)},
        "torch_import_s": {"median": statistics.median(torch_s), "min": min(torch_s),
                           "max": max(torch_s)},
        "ratio_added_to_torch": statistics.median(added) / statistics.median(torch_s),
        "torch_dynamo_imported": any(r["dynamo_imported"] for r in runs),
        "meta": meta,
    }
    print(f"import rvq_blocks adds {result['rvq_blocks_added_s']['median']:.3f} s "
          f"(min {min(added):.3f}, max {max(added):.3f}) to import torch "
          f"({result['torch_import_s']['median']:.3f} s): ratio "
          f"{result['ratio_added_to_torch']:.3f}; torch._dynamo imported: "
          f"{result['torch_dynamo_imported']}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
