"""Original-vs-reconstruction log-mel spectrogram of the first held-out clip, for the docs.

    python benchmarks/telugu_spectrogram.py --checkpoint RUN/last.pt \\
        --out docs/img/telugu_spectrogram.png

The clip is the first of the held-out clips the training loop evaluates (the default corpus),
coded with every quantizer of the checkpoint; the plot is the one the training loop writes
into its run directory after every epoch (``examples.telugu_codec.plots``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from examples.telugu_codec.corpus import build_default_corpus
    from examples.telugu_codec.data import load_corpus
    from examples.telugu_codec.plots import plot_spectrograms
    from examples.telugu_codec.train import default_cache_dir, eval_subset, evaluate, load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    quiet = lambda *_: None  # noqa: E731
    _, heldout = load_corpus(build_default_corpus(args.cache_dir / "telugu_corpus", log=quiet),
                             log=quiet)
    clip = eval_subset(heldout, 40.0, model.cfg.sample_rate)[0]
    _, (recon,) = evaluate(model, [clip], torch.device("cpu"))  # as the training loop codes it
    plot_spectrograms(clip.audio, recon, model.cfg.sample_rate, args.out, title=clip.name)
    print(f"wrote {args.out} ({clip.name}, {len(clip.audio) / model.cfg.sample_rate:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
