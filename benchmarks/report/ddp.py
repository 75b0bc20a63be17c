"""Distributed training and bf16 (``results/ddp.json``): the two tables and values."""

from __future__ import annotations

from .fmt import machine, ms, table
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "ddp.json"
RUNS = (("single_process", "one process"),
        ("ddp2_nosync", "2 ranks, `sync=False` (gradient all-reduce)"),
        ("ddp2_sync", "2 ranks, codebook sync on (default)"))
LATENTS = (("bf16", "synthetic latents"), ("bf16_real_speech", "real recorded speech"),
           ("bf16_heldout", "held-out Telugu"))


@section(PAGE, "ddp_table", FILE)
def ddp_table(data: dict, fig: Figures) -> str:
    """Time per step of one process against 2 DDP ranks, with and without the codebook sync."""
    d = data.get("ddp")
    if not d:
        return ""
    single = d["single_process"]["min_ms"]
    rows = [[label, ms(d[k]["min_ms"]), ms(d[k]["median_ms"]), f"{d[k]['min_ms'] / single:.2f}x"]
            for k, label in RUNS]
    return table(["run", "ms per step, min", "median", "min / one process"], rows)


@section(PAGE, "bf16_table", FILE)
def bf16_table(data: dict, fig: Figures) -> str:
    """Codes chosen under bf16 against float32, per kind of latents."""
    stages = []
    for key, title in LATENTS:
        b = data.get(key)
        if not b:
            continue
        per = b["bf16_latents_identical_pct_per_stage"]
        stages.append([title, b["quantizer"].split(":")[-1].strip(), f"{b['frames']:,}",
                       f"{b['autocast_fp32_latents_identical_pct']:.1f}%",
                       f"{b['bf16_latents_identical_pct']:.1f}%",
                       f"{per[0]:.1f}% / {per[-1]:.1f}%"])
    if not stages:
        return ""
    return table(["latents", "quantizer", "frames", "autocast", "bf16-rounded latents",
                  "first / last stage"], stages)


@values(PAGE, "ddp", FILE)
def ddp_values(data: dict) -> dict[str, str]:
    """The small codec's configuration, the rounds and the cost of the sync."""
    d = data.get("ddp") or {"config": {}, "ratios_of_min": {}}
    c, sync = d["config"], d["ratios_of_min"].get("sync_over_nosync")
    keys = ("batch", "samples", "steps")
    rvq = f"`ResidualVQ({c.get('dim')}, {c.get('num_quantizers')}, {c.get('codebook_size')})`"
    return {**{k: f"{c.get(k)}" for k in keys}, "rvq": rvq, "rounds": f"{d.get('rounds')}",
            "sync": "-" if sync is None else f"{100 * (sync - 1):.0f}",
            "machine": machine(data["meta"])}
