"""Speed against the peers (``results/speed.json``): the timing table, the plot and values."""

from __future__ import annotations

from .fmt import bold, machine, table
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "speed.json"
COLORS = {"rvq_blocks": "tab:blue", "vector-quantize-pytorch": "tab:purple",
          "EnCodec": "tab:orange", "DAC": "tab:green", "floor": "tab:gray"}
TITLES = {"standard": "standard: batch {batch}, dim {dim}, T {time}, {num_quantizers} x "
                      "{codebook_size}",
          "factorized8": "factorized: `codebook_dim={codebook_dim}`",
          "batch6x": "6x batch: batch {batch}"}
WORDS = {"standard": "standard", "factorized8": "factorized", "batch6x": "6x batch"}
HEADER = ["config", "implementation", "train ms", "train / floor", "eval ms", "eval / floor",
          "k-means init"]


def _timing(t: dict) -> str:
    if t["runs"] == 1 or t["min_ms"] == t["max_ms"]:
        return f"{t['median_ms']:.1f}"
    return f"{t['median_ms']:.1f} ({t['min_ms']:.1f}-{t['max_ms']:.1f})"


def _kmeans(r: dict) -> str:
    s = r.get("kmeans_init_s")
    if s is None:
        return "-"
    if "estimated" in (r.get("kmeans_note") or ""):
        return f"~{s:,.0f} s (est.)"
    return f"{s:.2f} s"


def _row(title: str, impl: str, r: dict, factorized: bool) -> list[str]:
    if "train" not in r:
        return [title, impl, f"not run: {r.get('skipped', '')}", "", "", "", ""]
    ours = impl == "rvq_blocks"
    label = "floor (projects too)" if impl == "floor" and factorized else impl
    return [title, bold(label, ours), bold(_timing(r["train"]), ours),
            bold(f"{r['train']['x_floor']:.2f}", ours), bold(_timing(r["eval"]), ours),
            bold(f"{r['eval']['x_floor']:.2f}", ours), bold(_kmeans(r), ours)]


@section(PAGE, "speed_table", FILE)
def speed_table(data: dict, fig: Figures) -> str:
    """Training step and eval times per configuration and implementation."""
    rows = []
    for name, cfg in data["configs"].items():
        title = TITLES.get(name, name).format(**cfg)
        for i, (impl, r) in enumerate(cfg["results"].items()):
            rows.append(_row(title if i == 0 else "", impl, r, bool(cfg.get("codebook_dim"))))
    return table(HEADER, rows)


def _names(cfgs: dict) -> list[str]:
    return [n for n in ("standard", "factorized8", "batch6x") if n in cfgs]


@section(PAGE, "speed_plot", FILE)
def speed_plot(data: dict, fig: Figures) -> str:
    """Each implementation's training step divided by the floor's, per configuration."""
    cfgs = data["configs"]
    names = _names(cfgs)

    def draw(ax) -> None:
        impls = [i for i in cfgs[names[0]]["results"] if i != "floor"]
        width = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            vals = [cfgs[n]["results"].get(impl, {}).get("train", {}).get("x_floor", 0)
                    for n in names]
            ax.bar([i + j * width for i in range(len(names))], vals, width,
                   label=impl, color=COLORS.get(impl))
        ax.axhline(1.0, color="black", lw=0.8, ls="--", label="floor")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], [WORDS[n] for n in names])
        ax.set_ylabel("training step / floor")
        ax.legend(fontsize=7)

    return fig.png("speed_ratios", draw, "training-step time of each implementation divided by "
                   "the floor", size=(7.0, 3.0))


@values(PAGE, "speed", FILE)
def speed_values(data: dict) -> dict[str, str]:
    """The timing protocol and the ratios to EnCodec and vector-quantize-pytorch."""
    meta, cfgs = data["meta"], data["configs"]

    def ratio(cfg: str, impl: str) -> float:
        res = cfgs[cfg]["results"]
        return res[impl]["train"]["median_ms"] / res["rvq_blocks"]["train"]["median_ms"]

    names = _names(cfgs)
    enc = [f"{ratio(n, 'EnCodec'):.1f}x ({WORDS[n]})" for n in names]
    vqp = [ratio(n, "vector-quantize-pytorch") for n in names]
    return {"autorange": f"`blocked_autorange(min_run_time={meta['min_run_time_s']:g})`",
            "threads": f"{meta['threads']}",
            "machine": machine(meta), "encodec": ", ".join(enc[:-1]) + f" and {enc[-1]}",
            "vqp": f"{min(vqp):.1f}-{max(vqp):.1f}"}
