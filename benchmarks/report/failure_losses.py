"""The output and loss failure modes: the scale outside the tanh, unbalanced loss weights, and
the batch-global RMS loss (``results/failure_modes.json``)."""

from __future__ import annotations

from .failure_modes import FILE, PAGE, config_values, span, steps_plot
from .fmt import num, pct, table
from .registry import Figures, section, values

RECIPES = ("buggy", "fixed", "original", "library")
SHORT = {"buggy": "fixed weights", "fixed": "LossBalancer, same weights",
         "original": "original run", "library": "library recipe"}


def _head_rows(b: dict, f: dict, steps: int) -> list[list[str]]:
    b1, f1, bh, fh = b["first_step"], f["first_step"], b["held_out"], f["held_out"]
    return [
        ["step 1: loss (L1 + vq)", num(b1["loss"], 3), num(f1["loss"], 3)],
        [f"step 1: output range (input range {span(b1, 'x_lo', 'x_hi')})", span(b1),
         span(f1)],
        ["step 1: saturation (share of samples with magnitude > 0.99)",
         pct(b1["saturation"], 1), pct(f1["saturation"], 1)],
        [f"step {steps}: held-out L1", f"{bh['l1']:.4f}", f"{fh['l1']:.4f}"],
        [f"step {steps}: held-out mel distance", num(bh["mel"], 3), num(fh["mel"], 3)],
        [f"step {steps}: held-out RMS ratio out / in", num(bh["rms_ratio"]),
         num(fh["rms_ratio"])],
        [f"step {steps}: held-out peak (input peak {bh['x_peak']:.2f})", num(bh["peak"]),
         num(fh["peak"])],
    ]


@section(PAGE, "fm_head", FILE)
def head_table(data: dict, fig: Figures) -> str:
    """The two heads side by side, then their loss and saturation over training."""
    d = data["head"]
    b, f = d["buggy"], d["fixed"]

    def draw(ax1, ax2) -> None:
        steps_plot(ax1, {"3.0 * tanh(h)": b["curves"]["l1"],
                         "ScaledTanhHead(1.0)": f["curves"]["l1"]},
                   "training L1 loss", "L1", log=True)
        steps_plot(ax2, {"3.0 * tanh(h)": b["curves"]["saturation"],
                         "ScaledTanhHead(1.0)": f["curves"]["saturation"]},
                   "saturation |y| > 0.99", "fraction of samples")

    return (table(["", b["label"], f["label"]], _head_rows(b, f, d["config"]["steps"])) + "\n"
            + fig.png("fm_head", draw, "training loss and saturation of the two heads",
                      size=(9.0, 3.2), ncols=2))


@values(PAGE, "head", FILE)
def head_values(data: dict) -> dict[str, str]:
    """The tiny codec's batch, loss, optimiser and steps."""
    return config_values(data["head"]["config"], ("batch", "loss", "optimizer", "steps"),
                         counts=("samples", "sample_rate"))


@section(PAGE, "fm_balancer", FILE)
def balancer_table(data: dict, fig: Figures) -> str:
    """The perceptual loss's gradient share and the held-out figures per recipe; the plots."""
    d = data["balancer"]
    rows = [[d[n]["label"], pct(d[n]["first_step"]["percept_share"], 1),
             pct(d[n]["mean_percept_share"], 1), f"{d[n]['held_out']['l1']:.4f}",
             num(d[n]["held_out"]["mel"], 3), num(d[n]["held_out"]["rms_ratio"])]
            for n in RECIPES]

    def draw(ax1, ax2) -> None:
        steps_plot(ax1, {SHORT[n]: d[n]["curves"]["percept_share"] for n in ("buggy", "fixed")},
                   "gradient share of the 'perceptual' loss at y", "share")
        steps_plot(ax2, {SHORT[n]: d[n]["curves"]["l1"] for n in RECIPES},
                   "training L1 loss", "L1", log=True)

    return (table(["recipe", "percept share, step 1", "mean share", "held-out L1",
                   "held-out mel", "RMS ratio"], rows) + "\n"
            + fig.png("fm_balancer", draw, "gradient share of the perceptual loss and training "
                      "loss", size=(9.0, 3.2), ncols=2))


@values(PAGE, "bal", FILE)
def balancer_values(data: dict) -> dict[str, str]:
    """The perceptual loss, the head and the steps."""
    return config_values(data["balancer"]["config"], ("percept", "head", "steps"))


@section(PAGE, "fm_rms_cases", FILE)
def rms_cases(data: dict, fig: Figures) -> str:
    """Three predictions with the right batch RMS, scored by each loss."""
    rows = [[v["label"], f"{v['batch_rms_loss']:.1e}", f"{v['per_example_loss']:.4f}",
             num(v["per_example_loss_db"], 1)] for v in data["rms"]["cases"].values()]
    return table(["prediction", "batch-RMS loss", "`rms_scale_loss`",
                  "`rms_scale_loss`, dB domain"], rows)


def _fit_row(label: str, fit: dict, error: str) -> list[str]:
    return [label, f"{fit['final_loss']:.1e}", error, ", ".join(f"{v:.3f}" for v in fit["gains"]),
            ", ".join(f"{v:+.3f}" for v in fit["dc"])]


@section(PAGE, "fm_rms_fits", FILE)
def rms_fits(data: dict, fig: Figures) -> str:
    """What fitting a gain and an offset to each loss ends at; the loudness error over steps."""
    fb, fp = data["rms"]["fits"]["batch"], data["rms"]["fits"]["per_example"]
    rows = [_fit_row("batch RMS (buggy)", fb, num(fb["final_worst_db_error"], 2)),
            _fit_row("`rms_scale_loss`", fp, f"{fp['final_worst_db_error']:.4f}")]

    def draw(ax) -> None:
        steps_plot(ax, {"batch RMS loss (buggy)": fb["curves"]["worst_db_error"],
                        "rms_scale_loss": fp["curves"]["worst_db_error"]},
                   "worst per-example loudness error", "dB", log=True)

    return (table(["loss", "final loss", "worst loudness error dB", "gains a_b", "offsets d_b"],
                  rows) + "\n"
            + fig.png("fm_rms", draw, "worst per-example loudness error while fitting to each "
                      "loss", size=(6.0, 3.0)))


@values(PAGE, "rms", FILE)
def rms_values(data: dict) -> dict[str, str]:
    """The targets, the fit and the DC offsets the batch loss ends with."""
    d = data["rms"]
    targets = ", ".join(f"{t:g}" for t in d["config"]["target_rms"])
    return {**config_values(d["config"], ("batch", "fit", "fit_steps"), counts=("samples",)),
            "targets": targets, "answer": f"`a_b = {targets}`",
            "dc": f"{max(abs(v) for v in d['fits']['batch']['dc']):.2f}"}
