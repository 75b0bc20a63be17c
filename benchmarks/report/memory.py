"""Memory of the first training step (``results/memory.json``): the table and values."""

from __future__ import annotations

from .fmt import bold, machine, median_range, plural, table
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "memory.json"


@section(PAGE, "memory_table", FILE)
def memory_table(data: dict, fig: Figures) -> str:
    """Peak and retained RSS growth per implementation, median (min-max) over processes."""
    meta, rows = data["meta"], []
    for impl, runs in data["results"].items():
        ours = impl == "rvq_blocks"
        label = impl
        if impl == "EnCodec" and meta.get("encodec_kmeans_iters"):
            label = f"EnCodec ({plural(meta['encodec_kmeans_iters'], 'k-means iteration')})"
        rows.append([bold(label, ours),
                     bold(median_range([r["peak_growth_mb"] for r in runs]), ours),
                     median_range([r["retained_growth_mb"] for r in runs])])
    return table(["implementation", "peak MB", "retained MB"], rows)


@values(PAGE, "memory", FILE)
def memory_values(data: dict) -> dict[str, str]:
    """The configuration, the number of processes and the machine."""
    meta = data["meta"]
    keys = ("batch", "dim", "time", "num_quantizers", "codebook_size", "repeats")
    return {**{k: f"{meta[k]}" for k in keys}, "machine": machine(meta)}
