"""Generate the listening page: held-out clips through the codec, Opus and Codec2.

    python -m examples.telugu_codec.listening_page [--checkpoint DIR_OR_CKPT] [--out docs/listen]

Writes ``index.html`` (a standalone page that mkdocs copies into the site as it is), FLAC
files and one spectrogram PNG per clip into ``--out``. Each clip is the original, the codec with
3, 6 and 12 of its quantizers (1.5, 3 and 6 kbps), Opus at its lowest reachable rate through
libsndfile (about 6 kbps) and Codec2 at 1600 and 3200 bit/s (the nearest modes to 1.5 and
3 kbps; Debian's ``c2enc``/``c2dec``, left out when missing). Clips: the first ``--per_set``
held-out Telugu clips (unseen voices and sentences) and recorded English prompts (never
trained on), cut to ``--seconds``.

A script in the page writes each audio element's ``readyState`` and ``duration`` and each
image's ``naturalWidth`` into ``data-`` attributes once loaded, so a headless browser's
``--dump-dom`` shows whether every file loads (``tests/test_listening_page.py``).
"""

from __future__ import annotations

import argparse
import html
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

SR = 16000

_SCRIPT = """<script>
function report() {
  document.querySelectorAll('audio').forEach(function (a) {
    a.setAttribute('data-ready', String(a.readyState));
    a.setAttribute('data-duration', String(a.duration));
  });
  document.querySelectorAll('img').forEach(function (i) {
    i.setAttribute('data-width', String(i.complete ? i.naturalWidth : 0));
  });
}
document.querySelectorAll('audio').forEach(function (a) {
  a.addEventListener('loadedmetadata', report);
  a.addEventListener('canplaythrough', report);
  a.load();
});
window.addEventListener('load', report);
setInterval(report, 200);
</script>"""


def opus(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """Ogg/Opus at libsndfile's lowest rate (compression_level 1.0); (decoded, kbps of file)."""
    from .studies.coders import opus_roundtrip

    y, file_bytes, _ = opus_roundtrip(audio, 1.0)
    return y[: len(audio)], file_bytes * 8 / (len(audio) / SR) / 1000


def codec2(audio: np.ndarray, mode: str) -> np.ndarray:
    """Codec2 at ``mode`` on 8 kHz audio, back to 16 kHz (same length as the input)."""
    import soxr

    x8 = soxr.resample(audio, SR, 8000, quality="HQ")
    with tempfile.TemporaryDirectory() as d:
        raw, bits, out = Path(d, "in.raw"), Path(d, "c.bit"), Path(d, "out.raw")
        np.round(np.clip(x8, -1, 1) * 32767).astype("<i2").tofile(raw)
        for cmd in (["c2enc", mode, str(raw), str(bits)], ["c2dec", mode, str(bits), str(out)]):
            subprocess.run(cmd, check=True, capture_output=True)
        y8 = np.fromfile(out, "<i2").astype(np.float32) / 32768.0
    y = soxr.resample(y8, 8000, SR, quality="HQ").astype(np.float32)
    return np.pad(y, (0, max(0, len(audio) - len(y))))[: len(audio)]


def _spectrogram(rows: list[tuple[str, np.ndarray]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(2.1 * len(rows), 1.9), sharey=True)
    ref_max = None
    for ax, (name, y) in zip(axes, rows, strict=True):
        spec = np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(
            np.pad(y, (256, 256)), 512)[::128] * np.hanning(512), axis=-1)).T
        db = 20 * np.log10(spec + 1e-6)
        ref_max = db.max() if ref_max is None else ref_max
        ax.imshow(db, origin="lower", aspect="auto", vmin=ref_max - 80, vmax=ref_max,
                  extent=(0, len(y) / SR, 0, SR / 2000), cmap="magma")
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_ylabel("kHz", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=45)
    plt.close(fig)


def _clips(args: argparse.Namespace) -> list[tuple[str, str, np.ndarray]]:
    from .data import load_heldout, load_recorded_english

    quiet = lambda *a, **k: None  # noqa: E731
    heldout = load_heldout(args.cache_dir, log=quiet)
    english = load_recorded_english(args.cache_dir, log=quiet)
    n = int(args.seconds * SR)
    out = []
    for label, clips in (("Telugu (held out)", heldout), ("recorded English (held out)",
                                                          english)):
        long_enough = [c for c in clips if len(c.audio) >= n]
        step = max(1, len(long_enough) // args.per_set)
        for c in long_enough[::step][: args.per_set]:
            out.append((label, c.name, c.audio[:n]))
    return out


def build(args: argparse.Namespace) -> Path:
    import soundfile as sf

    from .checkpoint import load_model
    from .model import pad_to_hop

    model = load_model(args.checkpoint)
    q = model.cfg.num_quantizers
    depths = sorted({max(1, q // 4), max(1, q // 2), q})
    have_c2 = subprocess.run(["sh", "-c", "command -v c2enc"], capture_output=True).returncode == 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.flac")) + list(out.glob("*.png")):
        old.unlink()
    sections = []
    for i, (label, name, audio) in enumerate(_clips(args)):
        x = torch.from_numpy(audio)[None, None]
        with torch.no_grad():
            codes = model.encode(pad_to_hop(x, model.hop_length))
        rows = [("original", audio)]
        for n in depths:
            with torch.no_grad():
                y = model.decode(codes[:, :n])[0, 0, : len(audio)].numpy()
            kbps = model.quantizer.bitrate(model.cfg.frame_rate, n) / 1000
            rows.append((f"codec {kbps:g} kbps", y))
        if have_c2:
            rows.append(("Codec2 1.6 kbps", codec2(audio, "1600")))
            rows.append(("Codec2 3.2 kbps", codec2(audio, "3200")))
        y, kbps = opus(audio)
        rows.append((f"Opus {kbps:.1f} kbps", y))
        cells = []
        for j, (system, y) in enumerate(rows):
            fname = f"clip{i}_{j}.flac"
            sf.write(out / fname, np.clip(y, -1, 1), SR, format="FLAC", subtype="PCM_16")
            cells.append(f'<td><div class="sys">{html.escape(system)}</div>'
                         f'<audio controls preload="auto" src="{fname}"></audio></td>')
        png = f"clip{i}.png"
        _spectrogram(rows, out / png, f"{label}: {name}")
        sections.append(f"<h2>{i + 1}. {html.escape(label)}: <code>{html.escape(name)}"
                        f"</code></h2>\n<table><tr>{''.join(cells)}</tr></table>\n"
                        f'<img src="{png}" alt="spectrograms of clip {i + 1}" width="100%">')
    rates = ", ".join(f"{model.quantizer.bitrate(model.cfg.frame_rate, d) / 1000:g}"
                      for d in depths)
    page = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>Listen: the Telugu codec against Opus and Codec2</title>"
        "<style>body{font-family:sans-serif;max-width:1400px;margin:auto;padding:1em}"
        "td{vertical-align:top;padding:2px}audio{width:180px}.sys{font-size:80%}</style>"
        "</head><body>\n<h1>Listen: the Telugu codec against Opus and Codec2</h1>\n"
        f"<p>Held-out clips, {args.seconds:g} s each: Telugu with voices and sentences never "
        "seen in training, and recorded English studio prompts never trained on. The codec "
        f"decodes {', '.join(str(d) for d in depths)} of its {q} quantizers ({rates} kbps). "
        "Opus is at the lowest rate libsndfile reaches; Codec2 codes 8 kHz audio. "
        "Spectrograms in dB, 80 dB range from the original's loudest bin. "
        "Generated by <code>python -m examples.telugu_codec.listening_page</code>.</p>\n"
        + "\n".join(sections) + "\n" + _SCRIPT + "\n</body></html>\n")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import PRETRAINED_DIR
    from .data import default_cache_dir

    p = argparse.ArgumentParser(prog="python -m examples.telugu_codec.listening_page",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--out", type=Path, default=Path("docs/listen"))
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--per_set", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.2)
    args = p.parse_args(argv)
    page = build(args)
    total = sum(f.stat().st_size for f in page.parent.iterdir()) / 1e6
    print(f"wrote {page} ({total:.2f} MB in {page.parent})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
