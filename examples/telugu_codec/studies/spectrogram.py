"""Original-vs-reconstruction log-mel spectrogram of the first held-out clip, for the docs.

    python -m examples.telugu_codec.studies.spectrogram --checkpoint RUN/last.pt \\
        --out docs/img/telugu_spectrogram.png

The clip is the first of the held-out clips the training loop evaluates (the default corpus),
coded with every quantizer of the checkpoint; the plot is the one the training loop writes
into its run directory after every epoch (``examples.telugu_codec.plots``).
"""

from __future__ import annotations

import sys

import torch

from ..checkpoint import load_model
from ..data import eval_subset, load_heldout
from ..train import evaluate
from . import checkpoint_parser


def main(argv: list[str] | None = None) -> int:
    """Code the first held-out clip and plot it beside the original."""
    from ..plots import plot_spectrograms  # matplotlib

    args = checkpoint_parser("examples.telugu_codec.studies.spectrogram",
                             __doc__).parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    quiet = lambda *_: None  # noqa: E731
    heldout = load_heldout(args.cache_dir, log=quiet)
    clip = eval_subset(heldout, 40.0, model.cfg.sample_rate)[0]
    _, (recon,) = evaluate(model, [clip], torch.device("cpu"))  # as the training loop codes it
    plot_spectrograms(clip.audio, recon, model.cfg.sample_rate, args.out, title=clip.name)
    print(f"wrote {args.out} ({clip.name}, {len(clip.audio) / model.cfg.sample_rate:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
