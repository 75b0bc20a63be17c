"""The Telugu codec's runs on the walk-through and in the README (``results/telugu_demo.json``,
``results/telugu_training.json``, ``results/codec_quality.json``)."""

from __future__ import annotations

from .codec_quality import SYSTEMS, by_set, metric, nearest
from .fmt import machine, mean, not_yet, opt, output_range, plural, table, used_range
from .registry import Figures, region, values

PAGE = "docs/telugu_codec.md"
DEMO, LONG, QUALITY = "telugu_demo.json", "telugu_training.json", "codec_quality.json"
EPOCH_HEADER = ["epoch", "step", "loss", "VQ loss", "output range", "\\|DC\\|", "output scale",
                "SNR dB", "SI-SNR dB", "mel distance", "codes used"]
BOUNDS = {"seanet": "the head bounds it to 1"}
UNBOUNDED = "the iSTFT head does not bound it in training; decoding clamps to [-1, 1]"
AT_FINAL = ("The last epoch is also the best on {metrics}: the run was still improving when it "
            "stopped. ")


def _final(d: dict) -> dict:
    return d.get("final") or d["curve"][-1]


def _run_line(meta: dict, final: dict) -> str:
    args = meta.get("args") or {}
    return (f"{meta.get('epochs', '?')} epochs of {args.get('steps_per_epoch', '?')} steps "
            f"(batches of {args.get('batch_size', '?')} crops of "
            f"{args.get('segment_seconds', '?')} s, learning rate "
            f"{args.get('learning_rate', '?')}), {final.get('step', '?'):,} steps in "
            f"{(final.get('wall_seconds') or 0) / 60:.1f} minutes on "
            + (plural(meta["threads"], "CPU thread") if meta.get("threads") else "? CPU threads"))


def _checks(d: dict) -> dict[str, str]:
    """What the must-have properties of a training run measured, from its curve."""
    curve, meta = d["curve"], d["meta"]
    arch = (meta.get("config") or {}).get("arch", "seanet")
    peak = max(max(abs(r.get("output_min", 0.0)), abs(r.get("output_max", 0.0))) for r in curve)
    losses = [r["loss"] for r in curve if r.get("loss") is not None]
    snr = [r["snr"] for r in curve if r.get("snr") is not None]
    return {"epochs": f"{len(curve)}", "peak": f"{peak:.3f}",
            "bound": BOUNDS.get(arch, UNBOUNDED),
            "dc": f"{max(abs(r.get('dc_offset', 0.0)) for r in curve):.5f}",
            "loss_first": f"{losses[0]:.2f}", "loss_last": f"{losses[-1]:.2f}",
            "loss_max": f"{max(losses):.2f}",
            "rises": f"{sum(b > a for a, b in zip(snr, snr[1:], strict=False))}",
            "intervals": f"{len(snr) - 1}", "snr_first": f"{snr[0]:.2f}",
            "snr_last": f"{snr[-1]:.2f}", "machine": machine(meta)}


def _eval_seconds(meta: dict, default: float | None = None) -> str:
    s = (meta.get("args") or {}).get("eval_seconds", default)
    return "-" if s is None else f"{s:g}"


@values(PAGE, "short", DEMO)
def short_values(d: dict) -> dict[str, str]:
    """The default run's command, budget and checks."""
    meta = d["meta"]
    return {**_checks(d), "command": f"`{meta['command']}`",
            "run": _run_line(meta, _final(d)), "eval": _eval_seconds(meta)}


@region(PAGE, "short_run", reads=[DEMO])
def short_run(results: dict[str, dict], fig: Figures) -> str:
    """Every epoch of the default run."""
    d = results.get(DEMO)
    if d is None:
        return not_yet(DEMO, "run `make demo`, then `python -m "
                       "examples.telugu_codec.studies.run_summary checkpoints/telugu_codec "
                       f"--command \"make demo\" --out benchmarks/results/{DEMO}`")
    rows = []
    for i, r in enumerate(d["curve"]):
        dc = r.get("dc_offset")
        rows.append([r.get("epoch", i + 1), f"{r['step']:,}" if "step" in r else "-",
                     opt(r.get("loss")), opt(r.get("vq_loss"), 3), output_range(r),
                     "-" if dc is None else f"{abs(dc):.4f}", opt(r.get("output_scale"), 3),
                     opt(r.get("snr")), opt(r.get("si_snr")), opt(r.get("mel_distance"), 3),
                     used_range(r)])
    return table(EPOCH_HEADER, rows)


def _draw_short(ax1, ax2, curve: list[dict]) -> None:
    steps = [r["step"] for r in curve]
    for key, label in (("snr", "held-out SNR"), ("si_snr", "held-out SI-SNR")):
        ax1.plot(steps, [r[key] for r in curve], "o-", ms=3, lw=1.2, label=label)
    ax1.set_ylabel("dB")
    ax1.legend(fontsize=7)
    ax1.set_title("held-out SNR and SI-SNR after each epoch", fontsize=9)
    ax2.plot(steps, [r["output_max"] for r in curve], "o-", ms=3, label="max output")
    ax2.plot(steps, [r["output_min"] for r in curve], "o-", ms=3, label="min output")
    ax2.plot(steps, [r["dc_offset"] for r in curve], "o-", ms=3, label="DC offset")
    ax2.axhline(1, color="gray", ls="--", lw=0.8)
    ax2.axhline(-1, color="gray", ls="--", lw=0.8)
    ax2.set_ylim(-1.1, 1.1)
    ax2.legend(fontsize=7)
    ax2.set_title("training output range and DC offset", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("training step")


@region(PAGE, "short_run_plot", reads=[DEMO])
def short_run_plot(results: dict[str, dict], fig: Figures) -> str:
    """Held-out SNR, output range and DC offset of the default run."""
    d = results.get(DEMO)
    if d is None:
        return ""
    return fig.png("telugu_demo", lambda a, b: _draw_short(a, b, d["curve"]), "Held-out SNR and "
                   "SI-SNR, output range and DC offset of the default short run",
                   size=(10.0, 3.2), ncols=2)


@values(PAGE, "long", LONG)
def long_values(d: dict) -> dict[str, str]:
    """The long run's budget, codes, checks, and whether its last epoch is its best."""
    meta, final, curve = d["meta"], _final(d), d["curve"]
    cfg, best = meta.get("config") or {}, d.get("best") or {}
    at_final = [label for key, label in (("si_snr", "SI-SNR"), ("mel_distance", "mel distance"))
                if key in best and best[key]["epoch"] == final.get("epoch")
                and any(c.get("epoch") == best[key]["epoch"] for c in curve)]
    kbps = final.get("bitrate_kbps")
    codes = f"{cfg.get('num_quantizers')} x {cfg.get('codebook_size')} codes"
    return {**_checks(d), "run": _run_line(meta, final),
            "codes": codes + (f", {kbps:g} kbps" if kbps else ""),
            "eval": _eval_seconds(meta, 40),
            "at_final": AT_FINAL.format(metrics=" and ".join(at_final)) if at_final else ""}


@region(PAGE, "long_run_command", reads=[LONG])
def long_run_command(results: dict[str, dict], fig: Figures) -> str:
    """The long run's command line."""
    d = results.get(LONG)
    if d is None:
        return not_yet(LONG, "see `benchmarks/README.md`")
    return f"```bash\n{d['meta']['command']}\n```"


def _summary_row(label: str, r: dict) -> list[str]:
    return [f"{label} (epoch {r.get('epoch')})", opt(r.get("snr")), opt(r.get("si_snr")),
            opt(r.get("mel_distance"), 3), used_range(r), opt(mean(r.get("perplexity")), 0)]


@region(PAGE, "long_run", reads=[LONG])
def long_run(results: dict[str, dict], fig: Figures) -> str:
    """The final epoch and the best ones on SI-SNR and mel distance when they differ."""
    d = results.get(LONG)
    if d is None:
        return ""
    final, best = _final(d), d.get("best") or {}
    rows = [_summary_row("final", final)]
    for key, label in (("si_snr", "best SI-SNR"), ("mel_distance", "best mel distance")):
        r = next((c for c in d["curve"] if c.get("epoch") == best[key]["epoch"]), None) \
            if key in best else None
        if r is not None and r.get("epoch") != final.get("epoch"):
            rows.append(_summary_row(label, r))
    return table(["", "SNR dB", "SI-SNR dB", "mel distance", "codes used", "mean perplexity"],
                 rows)


def _readme_run(d: dict, label: str) -> list[str]:
    f = _final(d)
    return [f"Telugu codec, {label} ({f.get('step', 0):,} steps, "
            f"{(f.get('wall_seconds') or 0) / 60:.0f} min; first "
            f"{_eval_seconds(d['meta'], 40)} s held out)", f"{f.get('bitrate_kbps', 0):g}",
            opt(f.get("si_snr")), opt(f.get("mel_distance"), 3), "-", "-"]


def _readme_quality(q: dict) -> list[list[str]]:
    held = by_set(q).get("heldout", [])
    full = [r for r in held if r["system"] == "telugu_codec"]
    if not full:
        return []
    r = max(full, key=lambda r: r["payload_kbps"])
    seconds = (q.get("sets") or {}).get("heldout", {}).get("seconds", 0)
    rows = [[f"the long run's checkpoint, {r['setting']} ({seconds:.0f} s held out)",
             f"{r['payload_kbps']:.2f}", metric(r, "si_snr", 2), metric(r, "mel_distance", 3),
             metric(r, "pesq_wb", 2), metric(r, "stoi", 3)]]
    for system in ("opus", "codec2"):
        o = nearest(held, system, r["payload_kbps"])
        if o:
            rows.append([f"{SYSTEMS[system]} ({o['setting']})", f"{o['payload_kbps']:.2f}",
                         metric(o, "si_snr", 2) if system == "opus" else "-",
                         metric(o, "mel_distance", 3), metric(o, "pesq_wb", 2),
                         metric(o, "stoi", 3)])
    return rows


@region("README.md", "telugu_results", reads=[DEMO, LONG, QUALITY])
def readme_telugu(results: dict[str, dict], fig: Figures) -> str:
    """The short and long runs, the long run's checkpoint scored, and Opus and Codec2 beside."""
    rows = [_readme_run(results[file], label) for file, label in
            ((DEMO, "`make demo`"), (LONG, "long CPU run")) if results.get(file)]
    if results.get(QUALITY):
        rows += _readme_quality(results[QUALITY])
    if not rows:
        return not_yet(DEMO, "run `make demo`")
    return table(["", "kbps", "SI-SNR dB", "mel distance", "PESQ-WB", "STOI"], rows)
