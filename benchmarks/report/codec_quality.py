"""Codec quality against Opus and Codec2 (``results/codec_quality.json``).

The full tables and the plot go on the benchmarks page; the matched-bitrate table on the
walk-through; the headline rows in the README.
"""

from __future__ import annotations

import math
from pathlib import Path

from .fmt import bold, machine, not_yet, table
from .registry import Figures, region, section, values

PAGE = "docs/benchmarks.md"
FILE = "codec_quality.json"
SYSTEMS = {"telugu_codec": "Telugu codec", "opus": "Opus", "codec2": "Codec2",
           "resample_8k": "8 kHz band limit"}
SETS = {"heldout": "Held-out synthetic Telugu", "real_speech": "Recorded speech"}
SHORT = {"heldout": "held-out Telugu", "real_speech": "recorded speech"}
COLORS = {"telugu_codec": "tab:blue", "opus": "tab:orange", "codec2": "tab:green"}
HEADER = ["system", "setting", "kbps", "PESQ-WB", "STOI", "SI-SNR dB", "SNR dB", "mel distance",
          "lag ms"]
README_KEYS = ("pesq", "stoi", "si_snr", "opus_pesq", "opus_stoi", "opus_si_snr", "opus_kbps")
MATCHED_HEADER = ["set", "Telugu codec", "nearest Opus", "nearest Codec2"]


def metric(r: dict, key: str, digits: int) -> str:
    """A metric of one result with ``digits`` decimals, or ``-`` when it was not measured."""
    v = r["metrics"].get(key)
    return "-" if v is None else f"{v:.{digits}f}"


def nearest(rows: list[dict], system: str, kbps: float) -> dict | None:
    """The result of ``system`` nearest in payload bitrate to ``kbps``."""
    cands = [r for r in rows if r["system"] == system]
    return min(cands, key=lambda r: abs(r["payload_kbps"] - kbps)) if cands else None


def by_set(data: dict) -> dict[str, list[dict]]:
    """The results grouped by clip set, in file order."""
    out: dict[str, list[dict]] = {}
    for r in data["results"]:
        out.setdefault(r["set"], []).append(r)
    return out


def _kbps(r: dict) -> str:
    if r.get("payload_kbps") is None:
        return "(no coding)"
    text = f"{r['payload_kbps']:.2f}"
    if r["kbps"] - r["payload_kbps"] > 0.005:
        text += f" ({r['kbps']:.2f} with Ogg)"
    return text


def _brief(r: dict | None, full: bool, waveform: bool = True) -> str:
    if r is None:
        return "-"
    text = (f"{r['payload_kbps']:.2f} kbps: PESQ {metric(r, 'pesq_wb', 2)}, "
            f"STOI {metric(r, 'stoi', 3)}")
    if full and waveform:
        text += f", SI-SNR {metric(r, 'si_snr', 2)} dB"
    return text + (f", mel {metric(r, 'mel_distance', 3)}" if full else "")


def matched(data: dict, full: bool = False) -> str:
    """Each setting of the Telugu codec beside the nearest Opus and Codec2, per set.

    Args:
        data: The parsed results.
        full: Add the SI-SNR (waveform coders) and the mel distance to PESQ and STOI.
    """
    rows = []
    for name, results in by_set(data).items():
        for r in (r for r in results if r["system"] == "telugu_codec"):
            rows.append([SETS.get(name, name), bold(_brief(r, full)),
                         _brief(nearest(results, "opus", r["payload_kbps"]), full),
                         _brief(nearest(results, "codec2", r["payload_kbps"]), full, False)])
    return table(MATCHED_HEADER, rows)


def _sort_key(r: dict) -> tuple[int, float]:
    order = list(SYSTEMS)
    return (order.index(r["system"]) if r["system"] in order else len(order),
            -(r["payload_kbps"] or 0))


@section(PAGE, "quality_tables", FILE, optional=True)
def quality_tables(data: dict, fig: Figures) -> str:
    """Per clip set, a one-line description and every system and setting."""
    out = []
    for name, results in by_set(data).items():
        info = data["sets"].get(name, {})
        rows = [[bold(SYSTEMS.get(r["system"], r["system"]), r["system"] == "telugu_codec"),
                 r["setting"], _kbps(r), metric(r, "pesq_wb", 2), metric(r, "stoi", 3),
                 metric(r, "si_snr", 2), metric(r, "snr", 2), metric(r, "mel_distance", 3),
                 f"{r['lag_ms']:g}"] for r in sorted(results, key=_sort_key)]
        out.append(f"**{SETS.get(name, name)}**: {info.get('clips')} clips, "
                   f"{info.get('seconds', 0):.0f} s; {info.get('description', '')}.\n\n"
                   + table(HEADER, rows))
    return "\n".join(out)


@section(PAGE, "quality_matched", FILE, optional=True)
def quality_matched(data: dict, fig: Figures) -> str:
    """PESQ and STOI of each codec setting beside the nearest Opus and Codec2."""
    return matched(data)


def _draw(data: dict, axes: tuple) -> None:
    styles = ["o-", "s--", "^:"]
    panels = (("pesq_wb", "PESQ-WB (MOS-LQO)", ("telugu_codec", "opus", "codec2")),
              ("stoi", "STOI", ("telugu_codec", "opus", "codec2")),
              ("si_snr", "SI-SNR dB (waveform coders)", ("telugu_codec", "opus")))
    for ax, (key, ylabel, systems) in zip(axes, panels, strict=True):
        for i, (name, rows) in enumerate(by_set(data).items()):
            for system in systems:
                pts = sorted((r["payload_kbps"], r["metrics"][key]) for r in rows
                             if r["system"] == system and key in r["metrics"])
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[i % 3],
                            color=COLORS[system],
                            label=f"{SYSTEMS[system]}, {SHORT.get(name, name)}")
        ax.set_xscale("log")
        ticks = [0.8, 1.5, 3, 6, 12]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("kbps (codec payload)")
        ax.set_title(ylabel, fontsize=9)
    axes[0].legend(fontsize=6)


@section(PAGE, "quality_plot", FILE, optional=True)
def quality_plot(data: dict, fig: Figures) -> str:
    """PESQ, STOI and SI-SNR against bitrate, one line per system and clip set."""
    return fig.png("codec_quality", lambda *axes: _draw(data, axes), "PESQ, STOI and SI-SNR "
                   "against bitrate for the Telugu codec, Opus and Codec2", size=(11.0, 3.6),
                   ncols=3)


def _checkpoint(data: dict) -> dict[str, str]:
    ckpt = data["model"]["checkpoint"]
    return {"checkpoint": f"`{Path(ckpt['path']).name}`", "sha256": f"`{ckpt['sha256'][:12]}`",
            "command": f"`{data['meta']['command']}`", "machine": machine(data["meta"])}


@values(PAGE, "cq", FILE)
def quality_values(data: dict) -> dict[str, str]:
    """The codec's configuration, the coders' versions and the run."""
    meta, model = data["meta"], data["model"]
    cfg = model["config"]
    return {**_checkpoint(data), "quantizers": f"{cfg['num_quantizers']}",
            "codebook_size": f"{cfg['codebook_size']}",
            "frame_rate": f"{cfg['sample_rate'] / math.prod(cfg['strides']):g}",
            "full_kbps": f"{model['full_kbps']:g}", "libopus": meta.get("libopus", "libopus"),
            "libsndfile": f"{meta['libsndfile']}", "codec2": f"{meta.get('codec2')}",
            "wall": f"{meta['wall_s']:.0f}"}


@values("docs/telugu_codec.md", "quality", FILE)
def walkthrough_quality_values(data: dict) -> dict[str, str]:
    """The command, checkpoint and machine of the walk-through's matched comparison."""
    return _checkpoint(data)


@region("docs/telugu_codec.md", "quality", reads=[FILE])
def walkthrough_quality(results: dict[str, dict], fig: Figures) -> str:
    """The matched-bitrate table with SI-SNR and mel distance."""
    if FILE not in results:
        return not_yet(FILE, "`python -m examples.telugu_codec.studies.codec_quality`")
    return matched(results[FILE], full=True)


@values("README.md", "readme", FILE)
def readme_values(data: dict) -> dict[str, str]:
    """Recorded English: the codec at its full bitrate and the nearest Opus."""
    real = by_set(data).get("real_speech", [])
    ours = [r for r in real if r["system"] == "telugu_codec"]
    if not ours:
        return dict.fromkeys(README_KEYS, "-")
    r = max(ours, key=lambda r: r["payload_kbps"])
    o = nearest(real, "opus", r["payload_kbps"]) or {"metrics": {}, "payload_kbps": math.nan}
    return {"pesq": metric(r, "pesq_wb", 2), "stoi": metric(r, "stoi", 3),
            "si_snr": metric(r, "si_snr", 2), "opus_pesq": metric(o, "pesq_wb", 2),
            "opus_stoi": metric(o, "stoi", 3), "opus_si_snr": metric(o, "si_snr", 2),
            "opus_kbps": f"{o['payload_kbps']:.2f}"}
