"""The failure modes of the original run (``results/failure_modes.json``): the summary tables
on both pages and the first three failures (codebook loss, straight-through estimator, summed
losses).
"""

from __future__ import annotations

from collections.abc import Sequence

from .fmt import machine, num, pct, table
from .registry import Figures, section, values

PAGE = "docs/failure_modes.md"
FILE = "failure_modes.json"
COMMANDS = ("python benchmarks/bench_failure_modes.py   # about {wall} on one core; rewrites "
            "this page\nmake report                                # re-renders it from the "
            "JSON, without re-running")


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


def _used(codes: list[float]) -> str:
    return "/".join(pct(u) for u in codes)


def _codebook_row(cb: dict) -> tuple[str, str, str, str]:
    b, f = cb["buggy"], cb["fixed"]
    return ("no codebook loss (learned codebook)",
            f"codebook moved {pct(b['codebook_drift'])}; held-out SNR "
            f"{num(b['held_out_snr_db'])} dB; codes used {_used(b['held_out_codes_used'])}",
            f"moved {pct(f['codebook_drift'])}; {num(f['held_out_snr_db'])} dB; "
            f"{_used(f['held_out_codes_used'])}", "no-codebook-loss")


def _ste_row(ste: dict) -> tuple[str, str, str, str]:
    live = ste["ste_after_loop_live_codes"]["codebook_grad_rel_err"]
    return ("straight-through estimator in the wrong place",
            f"`d quantized / d x` = {ste['ste_per_stage']['dq_dx']:g} (STE per stage) or "
            f"{ste['ste_after_detached_loop']['dq_dx']:g} (STE after a detached loop); codebook "
            f"gradient off by {pct(live)} (live codes in the residuals)",
            f"{ste['library']['dq_dx']:g}; encoder and codebook gradients equal to the reference",
            "straight-through-estimator")


def _summed_row(summed: list[dict]) -> tuple[str, str, str, str]:
    q1, q8 = summed[0], summed[-1]
    return (f"VQ losses summed over Q = 1..{q8['num_quantizers']}",
            f"{num(q1['summed'], 3)} -> {num(q8['summed'], 3)} ({q8['summed_over_q1']:.2f}x)",
            f"{num(q1['averaged'], 3)} -> {num(q8['averaged'], 3)} "
            f"({q8['averaged_over_q1']:.2f}x)", "summed-vq-losses")


def _head_row(head: dict) -> tuple[str, str, str, str]:
    hb, hf = head["buggy"]["first_step"], head["fixed"]["first_step"]
    return ("output scale 3.0 outside the tanh",
            f"first-step L1 {num(hb['l1'], 3)}; output [{hb['lo']:+.2f}, {hb['hi']:+.2f}]; "
            f"{pct(hb['saturation'])} saturated",
            f"L1 {num(hf['l1'], 3)}; [{hf['lo']:+.2f}, {hf['hi']:+.2f}]; "
            f"{pct(hf['saturation'])} saturated", "output-scale-30-outside-the-tanh")


def _balancer_row(bal: dict) -> tuple[str, str, str, str]:
    b, f = bal["buggy"], bal["fixed"]
    return ("fixed weights `2.0 * recon + 0.1 * percept`",
            f"percept takes {pct(b['first_step']['percept_share'], 1)} of the gradient "
            f"at step 1 (mean {pct(b['mean_percept_share'], 1)})",
            f"{pct(f['first_step']['percept_share'], 1)} (mean "
            f"{pct(f['mean_percept_share'], 1)}), as the weights say", "unbalanced-loss-weights")


def _rms_row(rms: dict) -> tuple[str, str, str, str]:
    fits = rms["fits"]
    return ("batch-global RMS loss",
            f"loss fitted to ~0 ({fits['batch']['final_loss']:.0e}) with loudness off by up to "
            f"{fits['batch']['final_worst_db_error']:.1f} dB",
            f"loudness within {fits['per_example']['final_worst_db_error']:.3f} dB",
            "batch-rms-vs-per-example-rms")


def summary_rows(d: dict) -> list[tuple[str, str, str, str]]:
    """(failure, buggy figure, fixed figure, anchor on the failure-modes page) per failure."""
    return [_codebook_row(d["codebook_loss"]), _ste_row(d["ste"]["gradients"]),
            _summed_row(d["summed_losses"]["rows"]), _head_row(d["head"]),
            _balancer_row(d["balancer"]), _rms_row(d["rms"])]


@section("docs/benchmarks.md", "failure_summary", FILE)
def failure_summary(data: dict, fig: Figures) -> str:
    """Each failure, buggy against fixed, for the benchmarks page."""
    return table(["failure", "buggy", "fixed"],
                 [[label, buggy, fixed] for label, buggy, fixed, _ in summary_rows(data)])


@values("docs/benchmarks.md", "fmsum", FILE)
def summary_values(data: dict) -> dict[str, str]:
    """The machine of the failure-mode runs."""
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
    return table(["failure", "buggy", "fixed"], [[f"[{label}](#{anchor})", buggy, fixed]
                                                 for label, buggy, fixed, anchor
                                                 in summary_rows(data)])


@values(PAGE, "fm", FILE)
def fm_values(data: dict) -> dict[str, str]:
    """The machine of the failure-mode runs."""
    return {"machine": machine(data["meta"])}
