"""The failure modes of the original run (``results/failure_modes.json``): the summary tables
on both pages and the first three failures (codebook loss, straight-through estimator, summed
losses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .fmt import machine, num, pct, table
from .registry import Figures, section, values

PAGE = "docs/failure_modes.md"
FILE = "failure_modes.json"
COMMANDS = ("python -m benchmarks.bench_failure_modes   # about {wall} on one core; "
            "writes the JSON\n"
            "make report                                # renders this page and its plots "
            "from it")


def steps_plot(ax, curves: dict[str, list[float]], title: str, ylabel: str,
               log: bool = False, dashed: Sequence[str] = ()) -> None:
    """One line per curve against the training step."""
    for label, ys in curves.items():
        ax.plot(range(1, len(ys) + 1), ys, label=label, lw=1.2,
                ls="--" if label in dashed else "-")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)


def span(s: dict, lo: str = "lo", hi: str = "hi") -> str:
    """``[lo, hi]`` of ``s`` with signs, two decimals."""
    return f"[{s[lo]:+.2f}, {s[hi]:+.2f}]"


def config_values(c: dict, keys: Iterable[str] = (), counts: Iterable[str] = ()) -> dict[str, str]:
    """``c[k]`` as written for each of ``keys``, with thousands separators for each of
    ``counts``: the configuration figures of an experiment's prose."""
    return {**{k: f"{c[k]}" for k in keys}, **{k: f"{c[k]:,}" for k in counts}}


Row = tuple[str, str, str, str]


def _paired(label: str, anchor: str, d: dict, figures: Callable[[dict], dict[str, str]],
            buggy: str, fixed: str) -> Row:
    """A failure whose two sides show the same figures: ``figures`` picks them from
    ``d["buggy"]`` and from ``d["fixed"]``, the templates ``buggy`` and ``fixed`` word them."""
    return (label, buggy.format(**figures(d["buggy"])), fixed.format(**figures(d["fixed"])),
            anchor)


def _codebook_figures(s: dict) -> dict[str, str]:
    return {"moved": pct(s["codebook_drift"]), "snr": num(s["held_out_snr_db"]),
            "used": "/".join(pct(u) for u in s["held_out_codes_used"])}


def _head_figures(s: dict) -> dict[str, str]:
    first = s["first_step"]
    return {"l1": num(first["l1"], 3), "range": span(first), "sat": pct(first["saturation"])}


def _balancer_figures(s: dict) -> dict[str, str]:
    return {"share": pct(s["first_step"]["percept_share"], 1),
            "mean": pct(s["mean_percept_share"], 1)}


def _ste_row(ste: dict) -> Row:
    live = ste["ste_after_loop_live_codes"]["codebook_grad_rel_err"]
    return ("straight-through estimator in the wrong place",
            f"`d quantized / d x` = {ste['ste_per_stage']['dq_dx']:g} (STE per stage) or "
            f"{ste['ste_after_detached_loop']['dq_dx']:g} (STE after a detached loop); codebook "
            f"gradient off by {pct(live)} (live codes in the residuals)",
            f"{ste['library']['dq_dx']:g}; encoder and codebook gradients equal to the reference",
            "straight-through-estimator")


def _summed_row(summed: list[dict]) -> Row:
    q1, q8 = summed[0], summed[-1]
    return (f"VQ losses summed over Q = 1..{q8['num_quantizers']}",
            f"{num(q1['summed'], 3)} -> {num(q8['summed'], 3)} ({q8['summed_over_q1']:.2f}x)",
            f"{num(q1['averaged'], 3)} -> {num(q8['averaged'], 3)} "
            f"({q8['averaged_over_q1']:.2f}x)", "summed-vq-losses")


def _rms_row(rms: dict) -> Row:
    fits = rms["fits"]
    return ("batch-global RMS loss",
            f"loss fitted to ~0 ({fits['batch']['final_loss']:.0e}) with loudness off by up to "
            f"{fits['batch']['final_worst_db_error']:.1f} dB",
            f"loudness within {fits['per_example']['final_worst_db_error']:.3f} dB",
            "batch-rms-vs-per-example-rms")


def summary_rows(d: dict) -> list[Row]:
    """(failure, buggy figure, fixed figure, anchor on the failure-modes page) per failure."""
    return [
        _paired("no codebook loss (learned codebook)", "no-codebook-loss", d["codebook_loss"],
                _codebook_figures,
                "codebook moved {moved}; held-out SNR {snr} dB; codes used {used}",
                "moved {moved}; {snr} dB; {used}"),
        _ste_row(d["ste"]["gradients"]),
        _summed_row(d["summed_losses"]["rows"]),
        _paired("output scale 3.0 outside the tanh", "output-scale-30-outside-the-tanh",
                d["head"], _head_figures,
                "first-step L1 {l1}; output {range}; {sat} saturated",
                "L1 {l1}; {range}; {sat} saturated"),
        _paired("fixed weights `2.0 * recon + 0.1 * percept`", "unbalanced-loss-weights",
                d["balancer"], _balancer_figures,
                "percept takes {share} of the gradient at step 1 (mean {mean})",
                "{share} (mean {mean}), as the weights say"),
        _rms_row(d["rms"]),
    ]


def _summary_table(data: dict, link: bool) -> str:
    """Each failure, buggy against fixed; with ``link``, the failure links to its section."""
    return table(["failure", "buggy", "fixed"],
                 [[f"[{label}](#{anchor})" if link else label, buggy, fixed]
                  for label, buggy, fixed, anchor in summary_rows(data)])


@section("docs/benchmarks.md", "failure_summary", FILE)
def failure_summary(data: dict, fig: Figures) -> str:
    """Each failure, buggy against fixed, for the benchmarks page."""
    return _summary_table(data, link=False)


@values("docs/benchmarks.md", "fmsum", FILE)
@values(PAGE, "fm", FILE)
def machine_values(data: dict) -> dict[str, str]:
    """The machine of the failure-mode runs (both pages)."""
    return {"machine": machine(data["meta"])}


@section(PAGE, "fm_commands", FILE)
def fm_commands(data: dict, fig: Figures) -> str:
    """How to re-run the experiments, with the time they take."""
    s = data["meta"].get("wall_s", 0)
    wall = f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} minutes"
    return f"```bash\n{COMMANDS.format(wall=wall)}\n```"


@section(PAGE, "fm_summary", FILE)
def fm_summary(data: dict, fig: Figures) -> str:
    """Each failure, buggy against fixed, linked to its section."""
    return _summary_table(data, link=True)
