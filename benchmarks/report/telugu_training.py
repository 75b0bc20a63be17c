"""The long CPU run of the Telugu codec (``results/telugu_training.json``), benchmarks page."""

from __future__ import annotations

import math

from .fmt import machine, mean, minutes, opt, output_range, plural, table, used_range
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "telugu_training.json"
BESTS = (("snr", "SNR", " dB", 2), ("si_snr", "SI-SNR", " dB", 2),
         ("mel_distance", "mel distance", "", 3))
STILL_GOING = (" The run was still going when it was summarised: the last row is epoch "
               "{epoch}.")


def pick_epochs(n: int, k: int = 8) -> list[int]:
    """Indices of the first, the last and evenly spaced epochs in between (at most ``k``)."""
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if n > 1 else [0] * n


def _final(data: dict) -> dict:
    return data.get("final") or data["curve"][-1]


def _codec(meta: dict, final: dict) -> str:
    cfg, args = meta.get("config") or {}, meta.get("args") or {}
    q = cfg.get("num_quantizers") or len(final.get("codes_used") or [])
    k = cfg.get("codebook_size")
    codec = f"{q} x {k:,} codes" if k else f"{q} quantizers"
    if cfg.get("strides"):
        codec += f" at {cfg.get('sample_rate', 16000) / math.prod(cfg['strides']):g} Hz"
    if final.get("bitrate_kbps") is not None:
        codec += f", {final['bitrate_kbps']:g} kbps"
    if cfg.get("head"):
        codec += f"; head `{cfg['head']}`"
    if args.get("balancer"):
        codec += f", balancer `{args['balancer']}`"
    return codec


def _budget(meta: dict, final: dict, epochs: int) -> str:
    args = meta.get("args") or {}
    steps = final.get("step", meta.get("steps"))
    budget = (f"{steps:,}" if isinstance(steps, int) else f"{steps}") + f" steps ({epochs} epochs"
    if args.get("steps_per_epoch"):
        budget += f" of {args['steps_per_epoch']} steps"
    if args.get("batch_size"):
        budget += f", batches of {args['batch_size']}"
        if args.get("segment_seconds"):
            budget += f" crops of {args['segment_seconds']:g} s"
    if args.get("learning_rate"):
        budget += f", learning rate {args['learning_rate']:g}"
    return budget + ")"


@values(PAGE, "tt", FILE)
def training_values(data: dict) -> dict[str, str]:
    """The codec, the training budget, the time it took and where."""
    meta, final = data["meta"], _final(data)
    args, threads = meta.get("args") or {}, meta.get("threads")
    wall = (final.get("wall_seconds") or meta.get("wall_seconds") or 0) / 60
    finished = meta.get("finished", True)
    return {"codec": _codec(meta, final), "budget": _budget(meta, final, len(data["curve"])),
            "minutes": f"{wall:.0f}", "on": plural(threads, "CPU thread") if threads else "CPU",
            "heldout": f" (up to {args['eval_seconds']:g} s)" if args.get("eval_seconds") else "",
            "status": "" if finished else STILL_GOING.format(
                epoch=final.get("epoch", len(data["curve"]))),
            "machine": machine(meta)}


@section(PAGE, "tt_command", FILE, optional=True)
def training_command(data: dict, fig: Figures) -> str:
    """The training command line."""
    return f"```bash\n{data['meta']['command']}\n```"


def _best(best: dict) -> str:
    found = [f"{label} {opt(best[key]['value'], d)}{unit} at step {best[key]['step']}"
             for key, label, unit, d in BESTS if key in best]
    return "Best held-out " + ", ".join(found) + ".\n" if found else ""


@section(PAGE, "tt_table", FILE, optional=True)
def training_table(data: dict, fig: Figures) -> str:
    """Evenly spaced epochs of the run, then its best held-out figures."""
    curve, k = data["curve"], (data["meta"].get("config") or {}).get("codebook_size")
    rows = []
    for i in pick_epochs(len(curve)):
        r = curve[i]
        dc = r.get("dc_offset")
        rows.append([r.get("epoch", i + 1), f"{r['step']:,}" if "step" in r else "-",
                     minutes(r.get("wall_seconds")), opt(r.get("snr")), opt(r.get("si_snr")),
                     opt(r.get("mel_distance"), 3), output_range(r),
                     "-" if dc is None else f"{abs(dc):.4f}", used_range(r),
                     opt(mean(r.get("perplexity")), 0)])
    header = ["epoch", "step", "wall min", "SNR dB", "SI-SNR dB", "mel distance", "output range",
              "\\|DC\\|", f"codes used{f' (of {k:,})' if k else ''}", "mean perplexity"]
    return table(header, rows) + "\n" + _best(data.get("best") or {})


def _per_quantizer(ax, steps: list[float], series: list[list[float | None]], ylabel: str,
                   title: str) -> None:
    import matplotlib as mpl

    q = max((len(s) for s in series), default=0)
    cmap = mpl.colormaps["viridis"]
    norm = mpl.colors.Normalize(vmin=1, vmax=max(q, 2))
    for i in range(q):
        pts = [(s, v[i]) for s, v in zip(steps, series, strict=True)
               if i < len(v) and v[i] is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=cmap(norm(i + 1)), lw=1.1)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if q:
        bar = ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
        bar.set_label("quantizer (1 = first stage)")


def _curves(ax1, ax2, steps: list, curve: list[dict]) -> None:
    for key, label in (("snr", "SNR"), ("si_snr", "SI-SNR")):
        pts = [(s, r[key]) for s, r in zip(steps, curve, strict=True) if r.get(key) is not None]
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], label=label, lw=1.2)
    ax1.set_ylabel("dB")
    ax1.set_title("held-out SNR and SI-SNR", fontsize=9)
    ax1.legend(fontsize=7)
    pts = [(s, r["mel_distance"]) for s, r in zip(steps, curve, strict=True)
           if r.get("mel_distance") is not None]
    ax2.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:green", lw=1.2)
    ax2.set_ylabel("log-mel distance")
    ax2.set_title("held-out mel distance (lower is better)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")


def _usage(ax1, ax2, steps: list, curve: list[dict], k: int | None) -> None:
    _per_quantizer(ax1, steps, [r.get("codes_used") or [] for r in curve],
                   "fraction of codes used", "codes used on the held-out clips")
    ax1.set_ylim(0, 1.02)
    _per_quantizer(ax2, steps, [r.get("perplexity") or [] for r in curve],
                   "perplexity", "code perplexity on the held-out clips")
    if k:
        ax2.axhline(k, color="gray", ls="--", lw=0.8)
        ax2.annotate(f"codebook size {k:,}", (0.02, k), xycoords=("axes fraction", "data"),
                     va="top", fontsize=7, color="gray")
    ax2.set_ylim(0, None)


@section(PAGE, "tt_plots", FILE, optional=True)
def training_plots(data: dict, fig: Figures) -> str:
    """The held-out curves and the codebook usage against training step."""
    curve, k = data["curve"], (data["meta"].get("config") or {}).get("codebook_size")
    steps = [r.get("step", i + 1) for i, r in enumerate(curve)]
    curves = fig.png("telugu_training_curves", lambda a, b: _curves(a, b, steps, curve),
                     "Held-out SNR, SI-SNR and mel distance of the Telugu codec against training "
                     "step", size=(10.0, 3.4), ncols=2)
    usage = fig.png("telugu_codebook_usage", lambda a, b: _usage(a, b, steps, curve, k),
                    "Codebook usage over training: fraction of codes used and perplexity per "
                    "quantizer against training step", size=(11.0, 3.6), ncols=2)
    return f"{curves}\n\n{usage}"
