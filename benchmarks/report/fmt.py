"""Formatting helpers shared by the sections: tables, numbers and the machine line."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

MISSING = "-"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with a trailing newline.

    Args:
        header: The column titles.
        rows: The cells, one sequence per row, converted with ``str``.

    Returns:
        The table's lines, joined.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def num(x: float, digits: int = 2) -> str:
    """``x`` with thousands separators and ``digits`` decimals."""
    return f"{x:,.{digits}f}"


def ms(x: float) -> str:
    """Milliseconds, about 3 significant digits."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def pct(x: float, digits: int = 0) -> str:
    """A fraction as a percentage."""
    return f"{100 * x:.{digits}f}%"


def upct(x: float) -> str:
    """A percentage with a decimal below 10% (0.1% of a 1,024-code book is one code)."""
    return pct(x, 1 if x < 0.1 else 0)


def bold(s: str, on: bool = True) -> str:
    """``s`` in bold when ``on``."""
    return f"**{s}**" if on else s


def opt(v: float | None, digits: int = 2) -> str:
    """``v`` with ``digits`` decimals, or ``-`` when it is missing."""
    return MISSING if v is None else f"{v:.{digits}f}"


def minutes(seconds: float | None) -> str:
    """Seconds as minutes with one decimal, or ``-``."""
    return MISSING if seconds is None else f"{seconds / 60:.1f}"


def mean(xs: Sequence[float | None] | None) -> float | None:
    """The mean of the values that are present, or ``None``."""
    kept = [x for x in xs or [] if x is not None]
    return statistics.fmean(kept) if kept else None


def median_range(vals: list[float]) -> str:
    """``median (min-max)`` with one decimal."""
    return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"


def output_range(r: dict) -> str:
    """``lo .. hi`` of a record's ``output_min`` and ``output_max``."""
    lo, hi = r.get("output_min"), r.get("output_max")
    return MISSING if lo is None or hi is None else f"{lo:.2f} .. {hi:.2f}"


def used_range(r: dict) -> str:
    """The lowest-highest fraction of codes used over a record's quantizers."""
    used = [u for u in r.get("codes_used") or [] if u is not None]
    if not used:
        return MISSING
    lo, hi = min(used), max(used)
    return pct(lo) if round(100 * lo) == round(100 * hi) else f"{pct(lo)[:-1]}-{pct(hi)}"


def plural(n: int, word: str) -> str:
    """``n word`` with an ``s`` unless ``n`` is 1."""
    return f"{n} {word}{'s' if n != 1 else ''}"


def machine(meta: dict) -> str:
    """One line naming the machine and versions recorded in a results file."""
    parts = [f"torch {meta['torch']}"]
    if "rvq_blocks" in meta:
        parts.append(f"rvq_blocks {meta['rvq_blocks']}")
    plat = meta.get("processor") or meta.get("platform")
    where = meta.get("machine", "")
    if plat:
        where = f"{where}, {plat.split('-')[0]}" if where else plat.split("-")[0]
    if meta.get("cpu_count"):
        cores = f"{meta['cpu_count']} CPU cores"
        where = f"{cores}, {where}" if where else cores
    if where:
        parts.append(where)
    threads = meta.get("threads", meta.get("threads_per_process"))
    if threads:
        parts.append(plural(threads, "thread"))
    if meta.get("loadavg_start"):
        parts.append(f"load average {meta['loadavg_start'][0]:.1f} at the start")
    return "Measured with " + ", ".join(parts) + "."


def not_yet(file: str, how: str) -> str:
    """The note a block shows while its results file is missing."""
    return f"*Not measured yet: `benchmarks/results/{file}` is missing ({how}).*"
