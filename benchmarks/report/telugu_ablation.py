"""The Telugu codec ablation at the same budget (``results/telugu_ablation.json``)."""

from __future__ import annotations

from .fmt import bold, machine, minutes, not_yet, opt, output_range, table
from .registry import Figures, region, section, values

PAGE = "docs/benchmarks.md"
WALKTHROUGH = "docs/telugu_codec.md"
FILE = "telugu_ablation.json"
ORDER = ("baseline", "head_tanh", "head_clamp", "head_original", "balancer_original",
         "original_run", "no_centering")
HEADER = ["variant", "flags", "steps", "SNR dB", "SI-SNR dB", "mel distance", "PESQ-WB", "STOI",
          "training output range", "output scale"]
DEFAULT_COMMAND = "python -m examples.telugu_codec.studies.ablation"
NOT_YET = "Variants not in the file yet: {names}."


def _names(variants: dict) -> list[str]:
    return sorted(variants, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


def rows(variants: dict) -> list[list[str]]:
    """One row per variant (baseline first), the columns of ``HEADER``."""
    out = []
    for n in _names(variants):
        v = variants[n]
        h, tr = v.get("heldout") or {}, v.get("final_train") or {}
        flags = " ".join(v.get("flags") or [])
        out.append([bold(v.get("label", n), n == "baseline"),
                    f"`{flags}`" if flags else "(baseline)", f"{v.get('steps', '-')}",
                    opt(h.get("snr")), opt(h.get("si_snr")), opt(h.get("mel_distance"), 3),
                    opt(h.get("pesq_wb")), opt(h.get("stoi"), 3), output_range(tr),
                    opt(tr.get("output_scale"), 3)])
    return out


@section(PAGE, "ablation_table", FILE, optional=True)
def ablation_table(data: dict, fig: Figures) -> str:
    """Every variant with its held-out figures and its training time."""
    variants = data.get("variants") or {}
    timed = [[*r, minutes(variants[n].get("train_seconds"))]
             for n, r in zip(_names(variants), rows(variants), strict=True)]
    return table([*HEADER, "train min"], timed)


def _draw(ax, variants: dict) -> None:
    for n in _names(variants):
        pts = [(c["step"], c["snr"]) for c in variants[n].get("curve") or []
               if c.get("snr") is not None]
        base = n == "baseline"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if base else ".-",
                lw=1.8 if base else 1.1, ms=3, label=variants[n].get("label", n))
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out SNR dB")
    ax.set_title("held-out SNR during training, per variant", fontsize=9)
    ax.legend(fontsize=7)


@section(PAGE, "ablation_plot", FILE, optional=True)
def ablation_plot(data: dict, fig: Figures) -> str:
    """Held-out SNR against training step per variant, when the file has curves."""
    variants = data.get("variants") or {}
    if not any(v.get("curve") for v in variants.values()):
        return ""
    return fig.png("telugu_ablation", lambda ax: _draw(ax, variants), "Held-out SNR against "
                   "training step for each ablation variant of the Telugu codec")


def _common(meta: dict) -> dict[str, str]:
    keys = ("epochs", "steps_per_epoch", "batch_size", "seed")
    return {**{k: f"{meta.get(k)}" for k in keys}, "machine": machine(meta)}


@values(PAGE, "ab", FILE)
def ablation_values(data: dict) -> dict[str, str]:
    """The shared budget, the held-out clips, the commands and the variants still missing."""
    meta, variants = data["meta"], data.get("variants") or {}
    secs = sorted({v.get("heldout_seconds") for v in variants.values()} - {None})
    missing = [n for n in ORDER if n not in variants]
    commands = [*meta.get("earlier_commands", []), meta.get("command", DEFAULT_COMMAND)]
    return {**_common(meta), "batch": f" of {meta['batch_size']} crops"
            if meta.get("batch_size") else "",
            "clips": f" ({'/'.join(f'{s:g}' for s in secs)} s)" if secs else "",
            "commands": ", then ".join(f"`{c}`" for c in commands),
            "note": " " + NOT_YET.format(names=", ".join(f"`{n}`" for n in missing))
            if missing and variants else ""}


@region(WALKTHROUGH, "ablation", reads=[FILE])
def walkthrough_ablation(results: dict[str, dict], fig: Figures) -> str:
    """The variants' held-out figures, without the training time."""
    if FILE not in results:
        return not_yet(FILE, f"`{DEFAULT_COMMAND}`")
    return table(HEADER, rows(results[FILE].get("variants") or {}))


@values(WALKTHROUGH, "abl", FILE)
def walkthrough_ablation_values(data: dict) -> dict[str, str]:
    """The shared budget and the machine."""
    return _common(data["meta"])


# ----------------------------------------------------------------------------- frame recipe
FRAME_FILE = "telugu_ablation_frame.json"
FRAME_ORDER = ("baseline", "center_latents", "no_cstft", "no_time", "phase_below_1k",
               "static_weights", "weights_1111", "weights_cstft_led", "mel_led", "lr_2e-3",
               "constant_lr", "no_weight_ema", "no_real_speech", "seanet", "istft_2x",
               "head_up4")
FRAME_HEADER = ["variant", "flags", "Telugu SI-SNR dB", "mel distance", "PESQ-WB", "STOI",
                "English SI-SNR dB", "PESQ-WB", "STOI", "codes used"]
FRAME_COMMAND = "python -m examples.telugu_codec.studies.ablation --recipe frame"


def _frame_names(variants: dict) -> list[str]:
    return sorted(variants, key=lambda n: FRAME_ORDER.index(n) if n in FRAME_ORDER
                  else len(FRAME_ORDER))


def frame_rows(variants: dict) -> list[list[str]]:
    """One row per variant of the frame-rate recipe: held-out Telugu, then recorded English."""
    out = []
    for n in _frame_names(variants):
        v = variants[n]
        h, e = v.get("heldout") or {}, v.get("english") or {}
        flags = " ".join(v.get("flags") or [])
        used = ((v.get("curve") or [{}])[-1]).get("codes_used")  # the last evaluation's
        out.append([bold(v.get("label", n), n == "baseline"),
                    f"`{flags}`" if flags else "(baseline)", opt(h.get("si_snr")),
                    opt(h.get("mel_distance"), 3), opt(h.get("pesq_wb")), opt(h.get("stoi"), 3),
                    opt(e.get("si_snr")), opt(e.get("pesq_wb")), opt(e.get("stoi"), 3),
                    f"{min(used):.0%}-{max(used):.0%}" if used else "-"])
    return out


@section(PAGE, "ablation_frame_table", FRAME_FILE, optional=True)
def ablation_frame_table(data: dict, fig: Figures) -> str:
    """Every variant of the frame-rate recipe with its held-out figures and training time."""
    variants = data.get("variants") or {}
    timed = [[*r, minutes(variants[n].get("train_seconds"))]
             for n, r in zip(_frame_names(variants), frame_rows(variants), strict=True)]
    return table([*FRAME_HEADER, "train min"], timed)


def _draw_frame(ax, variants: dict) -> None:
    for n in _frame_names(variants):
        pts = [(c["step"], c["si_snr"]) for c in variants[n].get("curve") or []
               if c.get("si_snr") is not None]
        base = n == "baseline"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if base else ".-",
                lw=1.8 if base else 1.1, ms=3, label=variants[n].get("label", n))
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out Telugu SI-SNR dB")
    ax.set_title("held-out SI-SNR during training, per variant (frame-rate recipe)",
                 fontsize=9)
    ax.legend(fontsize=7)


@section(PAGE, "ablation_frame_plot", FRAME_FILE, optional=True)
def ablation_frame_plot(data: dict, fig: Figures) -> str:
    """Held-out SI-SNR against training step per variant of the frame-rate recipe."""
    variants = data.get("variants") or {}
    if not any(v.get("curve") for v in variants.values()):
        return ""
    return fig.png("telugu_ablation_frame", lambda ax: _draw_frame(ax, variants),
                   "Held-out SI-SNR against training step for each ablation variant of the "
                   "frame-rate Telugu codec", size=(8.0, 3.8))


@values(PAGE, "abf", FRAME_FILE)
def ablation_frame_values(data: dict) -> dict[str, str]:
    """The frame recipe's shared budget, held-out clips, commands and missing variants."""
    meta, variants = data["meta"], data.get("variants") or {}
    secs = sorted({v.get("heldout_seconds") for v in variants.values()} - {None})
    missing = [n for n in FRAME_ORDER if n not in variants]
    commands = [*meta.get("earlier_commands", []), meta.get("command", FRAME_COMMAND)]
    return {**_common(meta), "steps": f"{int(meta['epochs']) * int(meta['steps_per_epoch'])}",
            "clips": f" ({'/'.join(f'{s:g}' for s in secs)} s)" if secs else "",
            "commands": ", then ".join(f"`{c}`" for c in commands),
            "note": (f" Note: {meta['note']}." if meta.get("note") else "")
            + (" " + NOT_YET.format(names=", ".join(f"`{n}`" for n in missing))
               if missing and variants else "")}


@region(WALKTHROUGH, "ablation_frame", reads=[FRAME_FILE])
def walkthrough_ablation_frame(results: dict[str, dict], fig: Figures) -> str:
    """The frame recipe's variants, without the training time."""
    if FRAME_FILE not in results:
        return not_yet(FRAME_FILE, f"`{FRAME_COMMAND}`")
    return table(FRAME_HEADER, frame_rows(results[FRAME_FILE].get("variants") or {}))


@values(WALKTHROUGH, "ablf", FRAME_FILE)
def walkthrough_ablation_frame_values(data: dict) -> dict[str, str]:
    """The frame recipe's shared budget and the machine."""
    meta = data["meta"]
    return {**_common(meta), "steps": f"{int(meta['epochs']) * int(meta['steps_per_epoch'])}"}
