"""The quantizer's failure modes: no codebook loss, the straight-through estimator in the wrong
place, and VQ losses summed over the stages (``results/failure_modes.json``)."""

from __future__ import annotations

from .failure_modes import FILE, PAGE, config_values, steps_plot
from .fmt import num, pct, table
from .registry import Figures, section, values

RECIPES = ("buggy", "loss_only", "fixed", "default")
SHORT = {"buggy": "no codebook loss (buggy)", "loss_only": "codebook loss, random init",
         "fixed": "codebook loss + k-means, revival", "default": "EMA defaults"}


def _rvq(c: dict, quantizers: str = "", ema: bool = True) -> str:
    """The ``ResidualVQ(...)`` call of an experiment's configuration ``c``; ``quantizers``
    replaces its number of quantizers."""
    return (f"`ResidualVQ({c['dim']}, {quantizers or c['num_quantizers']}, {c['codebook_size']}"
            f"{'' if ema else ', ema=False'})`")


@section(PAGE, "fm_codebook_table", FILE)
def codebook_table(data: dict, fig: Figures) -> str:
    """Codebook movement, held-out SNR and codes used per recipe."""
    d = data["codebook_loss"]
    rows = [[d[n]["label"], pct(d[n]["codebook_drift"]), num(d[n]["held_out_snr_db"]),
             " / ".join(pct(u) for u in d[n]["held_out_codes_used"])] for n in RECIPES]
    return table(["recipe", "codebook moved", "held-out SNR dB",
                  "codes used per stage (held out)"], rows)


@section(PAGE, "fm_codebook_plots", FILE)
def codebook_plots(data: dict, fig: Figures) -> str:
    """Codebook usage and movement, then the reconstruction loss, over training."""
    d = data["codebook_loss"]

    def usage(ax1, ax2) -> None:
        steps_plot(ax1, {SHORT[n]: d[n]["curves"]["codes_used_min"] for n in RECIPES},
                   "codes used in the batch (lowest stage)", "fraction of the codebook")
        steps_plot(ax2, {SHORT[n]: d[n]["curves"]["codebook_drift"] for n in RECIPES},
                   "codebook moved from its start", "||C - C0|| / ||C0||")

    def loss(ax) -> None:
        steps_plot(ax, {SHORT[n]: d[n]["curves"]["recon_mse"] for n in RECIPES},
                   "reconstruction loss", "MSE", log=True)

    return (fig.png("fm_codebook_usage", usage, "codebook usage and codebook movement over "
                    "training", size=(9.0, 3.2), ncols=2) + "\n\n"
            + fig.png("fm_codebook_loss", loss, "reconstruction loss over training for each "
                      "recipe", size=(6.0, 3.0)))


@values(PAGE, "cb", FILE)
def codebook_values(data: dict) -> dict[str, str]:
    """The autoencoder's configuration and the SNR lost without the codebook loss."""
    d = data["codebook_loss"]
    return {**config_values(d["config"], ("dim_in", "encoder", "decoder", "steps", "batch",
                                          "optimizer")),
            "rvq": _rvq(d["config"]),
            "loss_db": num(d["default"]["held_out_snr_db"] - d["buggy"]["held_out_snr_db"], 1)}


@section(PAGE, "fm_ste_gradients", FILE)
def ste_gradients(data: dict, fig: Figures) -> str:
    """The Jacobian and the gradient errors of each quantizer."""
    rows = [[v["label"], f"{v['dq_dx']:g}", f"{v['encoder_grad_cos']:.3f}",
             f"{v['encoder_grad_rel_err']:.3g}", f"{v['codebook_grad_rel_err']:.3g}"]
            for v in data["ste"]["gradients"].values()]
    return table(["quantizer", "d quantized / d x", "encoder grad cosine",
                  "encoder grad rel. error", "codebook grad rel. error"], rows)


@section(PAGE, "fm_ste_training", FILE)
def ste_training(data: dict, fig: Figures) -> str:
    """Each quantizer trained in a small autoencoder: the table and the loss curves."""
    tr = data["ste"]["training"]
    rows = [[v["label"], f"{v['final_recon_mse']:.3f}", num(v["held_out_snr_db"])]
            for v in tr.values()]

    def draw(ax) -> None:
        steps_plot(ax, {k: v["curves"]["recon_mse"] for k, v in tr.items()},
                   "reconstruction loss with each quantizer", "MSE", log=True,
                   dashed=("ste_after_loop_live_codes",))

    return (table(["quantizer", "final training MSE", "held-out SNR dB"], rows) + "\n"
            + fig.png("fm_ste_loss", draw, "reconstruction loss over training with each "
                      "quantizer", size=(6.5, 3.0)))


@values(PAGE, "ste", FILE)
def ste_values(data: dict) -> dict[str, str]:
    """The configuration and what the misplaced estimators cost."""
    d = data["ste"]
    c, tr = d["config"], d["training"]
    lib = tr["library"]["held_out_snr_db"]
    return {**config_values(c, ("train_steps", "train_batch", "optimizer"), counts=("vectors",)),
            "rvq": _rvq(c, ema=False),
            "per_stage": num(lib - tr["ste_per_stage"]["held_out_snr_db"], 2),
            "detached": num(lib - tr["ste_after_detached_loop"]["held_out_snr_db"], 1),
            "live": pct(d["gradients"]["ste_after_loop_live_codes"]["codebook_grad_rel_err"])}


@section(PAGE, "fm_summed", FILE)
def summed_table(data: dict, fig: Figures) -> str:
    """The VQ loss and its input gradient, summed and averaged, against Q; and the plot."""
    rows = data["summed_losses"]["rows"]
    trows = [[r["num_quantizers"], num(r["summed"], 3), f"{r['summed_over_q1']:.2f}x",
              num(r["averaged"], 3), f"{r['averaged_over_q1']:.2f}x",
              f"{r['encoder_grad_summed']:.2e}", f"{r['encoder_grad_averaged']:.2e}"]
             for r in rows]

    def draw(ax) -> None:
        qs = [r["num_quantizers"] for r in rows]
        ax.plot(qs, [r["summed"] for r in rows], "o-", label="summed (buggy)")
        ax.plot(qs, [r["averaged"] for r in rows], "o-", label="averaged (library)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(qs, [str(q) for q in qs])
        ax.set_xlabel("number of quantizers Q")
        ax.set_ylabel("VQ loss")
        ax.legend(fontsize=7)

    return (table(["Q", "summed", "vs Q=1", "averaged", "vs Q=1", "input grad, summed",
                   "input grad, averaged"], trows) + "\n"
            + fig.png("fm_summed_losses", draw, "VQ loss against the number of quantizers, "
                      "summed and averaged", size=(5.0, 3.0)))


@values(PAGE, "sum", FILE)
def summed_values(data: dict) -> dict[str, str]:
    """The configuration and how much the summed loss grows."""
    d = data["summed_losses"]
    c, last = d["config"], d["rows"][-1]
    return {**config_values(c, counts=("vectors",)), "rvq": _rvq(c, "Q", ema=False),
            "growth": f"{last['summed_over_q1']:.1f}",
            "max_q": f"{last['num_quantizers']}"}
