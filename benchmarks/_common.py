"""What every benchmark script shares: the metadata of a run and the writing of its results.

Each script records, under ``meta`` in its JSON, where and with what it ran (versions,
machine, threads, load average, git revision, date) next to its own settings, and writes the
file atomically, so that an interrupted run never leaves a half-written results file behind.

This module imports nothing heavy at import time: ``bench_memory`` reads it before it may
import torch.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout, or ``None`` outside one."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def file_digest(path: Path) -> str | None:
    """The first 16 hex digits of the file's SHA-256, or ``None`` when there is no file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (timings are only as good as these)."""
    return os.getloadavg()


def run_meta(threads: int | None, **settings: Any) -> dict[str, Any]:
    """The ``meta`` block of a results file: the run's environment, then ``settings``.

    Args:
        threads: torch's CPU threads, recorded as ``threads``; ``None`` leaves the key out
            (for a script that records its own thread layout under another key).
        **settings: the script's own settings, appended in order (they win over the
            environment keys of the same name).

    Returns:
        ``torch``, ``rvq_blocks``, ``python``, ``machine``, ``processor``, ``cpu_count``,
        ``threads``, ``git``, ``date`` (UTC, ISO 8601) and ``loadavg_start``, then
        ``settings``.
    """
    import torch

    import rvq_blocks

    meta: dict[str, Any] = {
        "torch": torch.__version__, "rvq_blocks": rvq_blocks.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    if threads is not None:
        meta["threads"] = threads
    meta.update(git=git_revision(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                loadavg_start=load_average())
    meta.update(settings)
    return meta


def write_json(path: Path, results: dict[str, Any], *, quiet: bool = False) -> None:
    """Write ``results`` to ``path`` as indented JSON, atomically, creating the folder.

    The text goes to a temporary file beside ``path`` first, which then replaces ``path``:
    a reader (or an interrupted run) sees the old file or the new one, never half of one.

    Args:
        path: the results file.
        results: the JSON-serialisable results.
        quiet: do not print the ``wrote PATH`` line.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)
    if not quiet:
        print(f"\nwrote {path}")


def rounded(x: float, digits: int = 5) -> float:
    """``x`` rounded to ``digits`` significant digits, for a compact JSON (inf and nan kept)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def rounded_curve(values: list[float], digits: int = 4) -> list[float]:
    """A per-step curve rounded to ``digits`` significant digits."""
    return [rounded(float(v), digits) for v in values]
