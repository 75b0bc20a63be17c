"""Rate-distortion on Gaussian vectors (``results/rate_distortion.json``): tables, plot, values."""

from __future__ import annotations

from .fmt import bold, machine, ms, num, pct, table
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "rate_distortion.json"
PEER_SETTINGS = {"vector-quantize-pytorch": "k-means, EMA 0.99, dead-code 2",
                 "EnCodec": "its defaults", "DAC": "its defaults (Adam 1e-3)"}
CONFIG_TITLES = {"d8": "dim 8", "d128": "dim 128"}
HEADER = ["implementation", "variant", "SNR dB", "codes used (min over stages)", "encode ms"]


def _variant(r: dict) -> str:
    if r["implementation"] != "rvq_blocks":
        return PEER_SETTINGS.get(r["implementation"], r["variant"])
    opts = r.get("options") or {}
    return ", ".join(f"`{k}={v}`" for k, v in opts.items()) or "default"


def _codes_used(r: dict) -> str:
    used = r["codes_used"]
    lo = min(used)
    i = used.index(lo)
    others = used[:i] + used[i + 1:]
    text = f"{lo:.2f}"
    if others and max(others) - lo > 0.1:
        text += f" (stage {i + 1}; the others {min(others):.2f}-{max(others):.2f})"
    return text


def _title(name: str, cfg: dict) -> str:
    return f"{CONFIG_TITLES.get(name, name)}, {cfg['num_quantizers']} x {cfg['codebook_size']}"


def _rows(cfg: dict) -> list[list[str]]:
    best = max(r["snr_db"] for r in cfg["results"] if r.get("snr_db") is not None)
    rows = []
    for r in cfg["results"]:
        if r.get("snr_db") is None:
            reason = r.get("skipped", "not run").split(";")[0]
            rows.append([r["implementation"], _variant(r), f"not run: {reason}", "", ""])
            continue
        ours = r["implementation"] == "rvq_blocks"
        strong = ours and (r["variant"] == "default" or r["snr_db"] == best)
        rows.append([bold(r["implementation"], False), _variant(r), bold(num(r["snr_db"]), strong),
                     _codes_used(r), ms(r["encode_ms"])])
    return rows


@section(PAGE, "rd_tables", FILE)
def rd_tables(data: dict, fig: Figures) -> str:
    """One table per configuration, under its title and Shannon bound."""
    return "\n".join(f"**{_title(name, cfg)} codes (bound {cfg['bound_db']:.2f} dB)**\n\n"
                     + table(HEADER, _rows(cfg)) for name, cfg in data["configs"].items())


def _draw_config(ax, name: str, cfg: dict) -> None:
    done = [r for r in cfg["results"] if r.get("snr_db") is not None]
    labels = [r["implementation"].replace("vector-quantize-pytorch", "vq-pytorch")
              + ("" if r["implementation"] != "rvq_blocks" or r["variant"] == "default"
                 else f"\n{r['variant']}") for r in done]
    colors = ["tab:blue" if r["implementation"] == "rvq_blocks" else "tab:gray" for r in done]
    ax.barh(range(len(done)), [r["snr_db"] for r in done], color=colors)
    ax.axvline(cfg["bound_db"], color="tab:red", ls="--",
               label=f"Shannon bound {cfg['bound_db']:.2f} dB")
    ax.set_yticks(range(len(done)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("held-out SNR (dB)")
    ax.set_title(_title(name, cfg), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


@section(PAGE, "rd_plot", FILE)
def rd_plot(data: dict, fig: Figures) -> str:
    """Held-out SNR per implementation next to the bound, one panel per configuration."""
    def draw(*axes) -> None:
        for ax, (name, cfg) in zip(axes, data["configs"].items(), strict=True):
            _draw_config(ax, name, cfg)

    return fig.png("rate_distortion", draw, "held-out SNR per implementation next to the "
                   "Shannon bound", size=(9.0, 4.2), ncols=len(data["configs"]))


def _by(cfg: dict) -> dict[tuple[str, str], dict]:
    return {(r["implementation"], r["variant"]): r for r in cfg["results"]}


@values(PAGE, "rd", FILE)
def rd_values(data: dict) -> dict[str, str]:
    """The protocol's sizes and the figures the findings quote."""
    meta = data["meta"]
    d8, d128 = _by(data["configs"]["d8"]), _by(data["configs"]["d128"])
    vqp8, vqp128 = d8[("vector-quantize-pytorch", "defaults")], \
        d128[("vector-quantize-pytorch", "defaults")]
    ours8, ours128 = d8[("rvq_blocks", "default")], d128[("rvq_blocks", "default")]
    beam8, beam128 = d8[("rvq_blocks", "beam_size=4")], d128[("rvq_blocks", "beam_size=4")]
    jr8, jr128 = d8[("rvq_blocks", "joint_refine")], d128[("rvq_blocks", "joint_refine")]
    cos8, cos128 = d8[("rvq_blocks", "use_cosine")], d128[("rvq_blocks", "use_cosine")]
    unused = [1 - u for u in vqp128["codes_used"]]
    enc_x = [beam8["encode_ms"] / ours8["encode_ms"], beam128["encode_ms"] / ours128["encode_ms"]]
    rest = ours128["codes_used"][3:]
    return {
        "n_train": f"{meta['n_train']:,}", "n_test": f"{meta['n_test']:,}",
        "steps": f"{meta['steps']}", "batch": f"{meta['batch']:,}", "machine": machine(meta),
        "ours8": num(ours8["snr_db"]), "vqp8": num(vqp8["snr_db"]),
        "gain128": num(ours128["snr_db"] - vqp128["snr_db"], 1),
        "unused": f"{pct(min(unused))}-{pct(max(unused))}",
        "beam8": num(beam8["snr_db"] - ours8["snr_db"], 1),
        "beam128": num(beam128["snr_db"] - ours128["snr_db"], 1),
        "beam_time": f"{min(enc_x):.0f}-{max(enc_x):.0f}",
        "joint8": f"{jr8['snr_db'] - ours8['snr_db']:+.2f}",
        "joint128": f"{jr128['snr_db'] - ours128['snr_db']:+.2f}",
        "cos_used": pct(min(cos128["codes_used"])),
        "cos_loss128": num(ours128["snr_db"] - cos128["snr_db"]),
        "cos_loss8": num(ours8["snr_db"] - cos8["snr_db"], 1),
        "first": ", ".join(pct(u) for u in ours128["codes_used"][:3]),
        "rest": f"{pct(min(rest))}-{pct(max(rest))}",
    }
