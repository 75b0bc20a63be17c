"""Summarise one training run of the Telugu example codec for the benchmark report.

    python -m examples.telugu_codec.studies.run_summary RUN_DIR \\
        --command "python -m examples.telugu_codec.train --num_epochs 200 --threads 1 ..." \\
        --out benchmarks/results/telugu_training.json

``RUN_DIR`` is the directory ``python -m examples.telugu_codec.train`` writes
(``<checkpoint_dir>/<experiment_name>``): its ``metrics.jsonl`` (one record per epoch) is the
curve, its ``summary.json`` (written when the run ends) the final record; a run that is still
going is summarised up to its last finished epoch and marked ``finished: false``. The codec
configuration and the training arguments are read from the run's ``last.pt`` when it is
readable. Nothing is trained or evaluated here: every figure is one the run logged.

The JSON holds ``meta`` (the command as given, machine, versions, threads, codec config),
``curve`` (per epoch: every scalar the run logged, plus ``codes_used`` and ``perplexity`` per
quantizer), ``final`` (the last record) and ``best`` (the best held-out SNR, SI-SNR and mel
distance, with their epoch and step). The benchmark report renders it as the section
"Telugu codec: a long CPU run".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import RESULTS_DIR, write_text_atomic

LISTS = ("codes_used", "perplexity")
# Training arguments that describe the run (paths and switches of the console are left out).
ARGS = ("batch_size", "num_epochs", "learning_rate", "steps_per_epoch", "segment_seconds",
        "max_steps", "max_minutes", "eval_seconds", "corpus_minutes", "threads", "device",
        "seed", "head", "balancer", "vq_warmup_steps", "kmeans_batches", "grad_clip")
BEST = (("snr", max), ("si_snr", max), ("mel_distance", min))


def _clean(v: object, digits: int = 6) -> object:
    """Floats to ``digits`` significant digits, non-finite ones to ``None`` (strict JSON)."""
    if isinstance(v, bool) or not isinstance(v, float):
        return v
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def read_rows(run_dir: Path) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl``; a torn last line is skipped."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a telugu_codec run directory?")
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if not rows:
        raise ValueError(f"{path} holds no epoch records yet")
    return rows


def curve_row(row: dict) -> dict:
    """Every scalar of one epoch record, plus the per-quantizer lists."""
    out = {}
    for k, v in row.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = _clean(v)
        elif k in LISTS and isinstance(v, list):
            out[k] = [_clean(x) for x in v]
    return out


def best(rows: list[dict]) -> dict:
    out = {}
    for key, pick in BEST:
        have = [r for r in rows if isinstance(r.get(key), (int, float))
                and math.isfinite(r[key])]
        if have:
            r = pick(have, key=lambda r, key=key: r[key])
            out[key] = {"value": _clean(r[key]), "epoch": r.get("epoch"), "step": r.get("step")}
    return out


def threads_from(command: str) -> int | None:
    """The ``--threads N`` (or ``--threads=N``) of a command line, if it has one."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for i, w in enumerate(words):
        value = None
        if w == "--threads" and i + 1 < len(words):
            value = words[i + 1]
        elif w.startswith("--threads="):
            value = w.split("=", 1)[1]
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def checkpoint_info(run_dir: Path) -> dict:
    """Codec config and training arguments stored in ``last.pt`` (empty if unreadable)."""
    path = run_dir / "last.pt"
    if not path.is_file():
        return {}
    try:
        from ..checkpoint import load_checkpoint

        state = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - the summary does not need the checkpoint
        print(f"note: {path} not read ({type(e).__name__}: {e})", file=sys.stderr)
        return {}
    args = state.get("args") or {}
    return {"config": state.get("config"),
            "args": {k: args[k] for k in ARGS if k in args},
            "checkpoint_step": state.get("global_step")}


def summarise(run_dir: Path, command: str, read_checkpoint: bool = True,
              threads: int | None = None) -> dict:
    import torch

    rows = read_rows(run_dir)
    summary_path = run_dir / "summary.json"
    finished = summary_path.is_file()
    final = json.loads(summary_path.read_text()) if finished else rows[-1]
    ckpt = checkpoint_info(run_dir) if read_checkpoint else {}
    threads = threads or threads_from(command)
    if threads is None:
        threads = (ckpt.get("args") or {}).get("threads")
    try:
        import rvq_blocks

        version = rvq_blocks.__version__
    except ImportError:
        version = None
    meta = {"command": command, "run_dir": run_dir.name, "finished": finished,
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "threads": threads,
            "epochs": len(rows), "steps": final.get("step"),
            "wall_seconds": _clean(final.get("wall_seconds"))}
    if version:
        meta["rvq_blocks"] = version
    if ckpt.get("config"):
        meta["config"] = ckpt["config"]
    if ckpt.get("args"):
        meta["args"] = ckpt["args"]
    return {"meta": meta, "final": curve_row(final), "best": best(rows),
            "curve": [curve_row(r) for r in rows]}


def dumps(data: object, indent: int = 0, width: int = 100) -> str:
    """JSON with a value on one line when it fits in ``width``, a list of numbers and each
    epoch of the curve always on one line."""
    flat = json.dumps(data, allow_nan=False)
    if len(flat) + indent <= width or not isinstance(data, (dict, list)) or not data or (
            isinstance(data, list) and not any(isinstance(v, (dict, list)) for v in data)):
        return flat
    pad = " " * (indent + 1)
    if isinstance(data, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1, width)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + dumps(v, indent + 1, 10**9 if isinstance(v, dict) else width) for v in data]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.telugu_codec.studies.run_summary",
                                description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="<checkpoint_dir>/<experiment_name> of the run")
    p.add_argument("--command", required=True,
                   help="the training command line, as it is to be shown in the report")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "telugu_training.json")
    p.add_argument("--no_checkpoint", action="store_true",
                   help="do not read the codec config from the run's last.pt")
    p.add_argument("--threads", type=int, default=None,
                   help="the run's CPU thread count, where neither the command line nor the "
                        "checkpoint records it (a run without --threads uses torch's default)")
    args = p.parse_args(argv)
    data = summarise(args.run_dir, args.command, read_checkpoint=not args.no_checkpoint,
                     threads=args.threads)
    write_text_atomic(args.out, dumps(data) + "\n")
    m, f = data["meta"], data["final"]
    print(f"wrote {args.out}: {m['epochs']} epochs, step {m['steps']}, "
          f"{(m['wall_seconds'] or 0) / 60:.0f} min, held-out SNR {f.get('snr')} dB"
          f"{'' if m['finished'] else ' (run not finished)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
