"""PNG plots of a training run: curves per epoch and an original-vs-reconstruction spectrogram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .metrics import log_mel  # noqa: E402


def plot_curves(rows: list[dict], path: Path) -> None:
    """Loss terms, held-out SNR/SI-SNR, mel distance, output range and codebook usage."""
    if not rows:
        return
    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(2, 3, figsize=(15, 7.5))
    for k in [k for k in rows[0] if k.startswith("loss/")] + ["vq_loss"]:
        ax[0, 0].plot(ep, [r.get(k, float("nan")) for r in rows], label=k)
    ax[0, 0].set_yscale("log")
    ax[0, 0].set_title("training losses")
    for k in ("snr", "si_snr", "train_snr"):
        if k in rows[0]:
            ax[0, 1].plot(ep, [r[k] for r in rows], label=k)
    ax[0, 1].set_title("SNR (dB; snr and si_snr held out)")
    ax[0, 2].plot(ep, [r["mel_distance"] for r in rows])
    ax[0, 2].set_title("held-out log-mel distance")
    ax[1, 0].fill_between(ep, [r["output_min"] for r in rows], [r["output_max"] for r in rows],
                          alpha=0.3, label="output range")
    ax[1, 0].plot(ep, [r["dc_offset"] for r in rows], label="DC offset")
    ax[1, 0].plot(ep, [r["output_scale"] for r in rows], label="output scale")
    ax[1, 0].axhline(1.0, color="k", lw=0.5)
    ax[1, 0].axhline(-1.0, color="k", lw=0.5)
    ax[1, 0].set_title("output")
    used = np.array([r["codes_used"] for r in rows])  # (epochs, Q)
    for q in range(used.shape[1]):
        ax[1, 1].plot(ep, used[:, q], color=plt.cm.viridis(q / max(1, used.shape[1] - 1)),
                      label=f"q{q + 1}" if q in (0, used.shape[1] - 1) else None)
    ax[1, 1].set_ylim(0, 1.02)
    ax[1, 1].set_title("held-out codebook usage per quantizer")
    shares = [k for k in rows[-1] if k.startswith("share/")]
    for k in shares:
        ax[1, 2].plot(ep, [r.get(k, np.nan) for r in rows], label=k)
    ax[1, 2].set_title("gradient share per loss")
    for a in ax.flat:
        a.set_xlabel("epoch")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_spectrograms(ref: np.ndarray, est: np.ndarray, sr: int, path: Path,
                      title: str = "") -> None:
    """Log-mel spectrograms (dB) of the original and the reconstruction, one above the other,
    on one colour scale: the original's loudest band down to 80 dB below it."""
    n = min(len(ref), len(est), sr * 6)
    mels = [20 * log_mel(w[:n]).numpy() for w in (ref, est)]
    vmax = float(mels[0].max())
    fig, ax = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for a, m, name in zip(ax, mels, ("original", "reconstruction"), strict=True):
        im = a.imshow(m, origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax, cmap="magma",
                      extent=(0, n / sr, 0, m.shape[0]))
        a.set_ylabel("mel band")
        a.set_title(f"{name} {title}")
    ax[1].set_xlabel("seconds")
    fig.colorbar(im, ax=ax, label="dB")
    fig.savefig(path, dpi=90)
    plt.close(fig)
