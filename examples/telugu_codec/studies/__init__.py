"""Studies of the Telugu example codec, run from the repository root.

    python -m examples.telugu_codec.studies.codec_quality   # against Opus and Codec2
    python -m examples.telugu_codec.studies.ablation        # heads, loss weighting, latents
    python -m examples.telugu_codec.studies.run_summary     # one training run's log
    python -m examples.telugu_codec.studies.spectrogram     # the walk-through's figure
    python -m examples.telugu_codec.studies.latents         # trained latents for bench_ddp.py
    python -m examples.telugu_codec.studies.band_energy     # energy per band against the input
    python -m examples.telugu_codec.studies.checkpoints     # checkpoints side by side

Their JSON goes to ``benchmarks/results/`` (:data:`RESULTS_DIR`), where the benchmark report
reads it, and their figures to ``docs/img/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..data import default_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, creating the folder, through a temporary file beside it that
    then replaces it: a reader, or an interrupted run, sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, results: dict) -> None:
    """Write a study's results as indented JSON, atomically (:func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")


def run_meta(argv: Sequence[str], threads: int | None) -> dict:
    """What every study records about its run: the command line (``python`` followed by
    ``argv``), library versions, machine, threads and git revision."""
    import numpy as np
    import torch

    import rvq_blocks

    git = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or None
    return {"command": shlex.join(["python", *argv]), "torch": torch.__version__,
            "rvq_blocks": rvq_blocks.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "cpu_count": os.cpu_count(), "threads": threads, "git": git}


def checkpoint_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """A parser with the flags every checkpoint study takes: ``--checkpoint`` (a training
    ``last.pt`` or an exported weights directory), ``--out`` and ``--cache_dir``."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    return p
