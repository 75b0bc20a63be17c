"""Codebook usage in the first training steps (``results/codebook_usage*.json``)."""

from __future__ import annotations

from .fmt import machine, num, table, upct
from .registry import Figures, section, values

PAGE = "docs/benchmarks.md"
FILE = "codebook_usage.json"
BEFORE = "codebook_usage_before.json"
LABELS = {"ours": "`ResidualVQ` defaults",
          "ours_final": "`ResidualVQ` defaults (this version)",
          "ours_flat8": "`ResidualVQ`, idle rule `8 * K` vectors for every code",
          "ema_false": "`ema=False`",
          "cosine": "`use_cosine=True`", "codebook_dim8": "`codebook_dim=8`",
          "rotation": "`gradient_estimator=\"rotation\"`",
          "simvq": "SimVQ (frozen Gaussian x learned linear map)",
          "patience_off": "`dead_code_patience=0` (revival by the EMA ratio only)",
          "first_batch_init": "`kmeans_samples=1` (k-means on the first batch alone)",
          "vqtorch": "vector-quantize-pytorch (k-means, EMA 0.99, dead-code 2)"}
MEASURED = " Code measured: {label}."


def _row(r: dict, steps: list[int], width: int) -> list[str]:
    label = LABELS.get(r["variant"], r["variant"])
    if "skipped" in r:
        return [label, f"skipped: {r['skipped']}", *[""] * (width - 2)]
    by_step = {c["step"]: c for c in r.get("checkpoints", [])}
    cells = [f"{upct(by_step[s]['min_codes_used'])} / {upct(by_step[s]['mean_codes_used'])}"
             if s in by_step else "-" for s in steps]
    final = r.get("final") or {}
    if r.get("diverged_at_step"):
        label += f" (diverged at step {r['diverged_at_step']})"
    return [label, *cells, num(final["snr_db"]) if final else "-",
            num(final["si_snr_db"]) if final else "-", num(r["s_per_step"], 2)]


def _model(key: str, m: dict) -> str:
    results = m.get("results") or []
    steps = sorted({c["step"] for r in results for c in r.get("checkpoints", [])})
    header = ["quantizer", *[f"step {s}" for s in steps], "SNR dB", "SI-SNR dB", "s/step"]
    cfg = (f"{m['num_quantizers']} x {m['codebook_size']} codes, {m['latent_dim']}-d latents "
           f"at {m['frame_rate']:.1f} Hz")
    caption = (f"**Model {key}**: {m['description']}; {cfg}. Codes in use counted over "
               f"{m['eval_frames']:,} held-out frames ({m['heldout_frames_available']:,} "
               "available).")
    return caption + "\n\n" + table(header, [_row(r, steps, len(header)) for r in results])


@section(PAGE, "usage_tables", FILE, optional=True)
def codebook_usage(data: dict, fig: Figures) -> str:
    """Per model, one row per quantizer: min / mean over stages of the codes in use per step."""
    return "\n".join(_model(key, m) for key, m in data.get("models", {}).items())


section(PAGE, "usage_tables_before", BEFORE, optional=True)(codebook_usage)


def usage_values(data: dict) -> dict[str, str]:
    """The training protocol, the code measured and the machine."""
    meta = data["meta"]
    keys = ("steps", "lr", "batch", "segment_seconds", "seed")
    return {**{k: f"{meta.get(k)}" for k in keys}, "loss": f"`{meta.get('loss')}`",
            "machine": machine(meta),
            "label": MEASURED.format(label=meta["label"]) if meta.get("label") else ""}


values(PAGE, "usage", FILE)(usage_values)
values(PAGE, "usage0", BEFORE)(usage_values)
