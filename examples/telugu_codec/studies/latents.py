"""Encoder latents of the Telugu example codec on real audio, for ``bench_ddp.py --latents``.

    python -m examples.telugu_codec.studies.latents --checkpoint CKPT --out lat.pt  # Telugu
    python -m examples.telugu_codec.studies.latents --checkpoint CKPT --out lat.pt --real_speech

Each clip goes through the trained encoder whole (as in evaluation); its latent frames are cut
into chunks of ``--frames`` and stacked into one ``(B, latent_dim, frames)`` tensor, saved as
``{"latents": tensor, "source": str, "checkpoint": str}``.
"""

from __future__ import annotations

import sys

import torch

from ..checkpoint import load_model
from ..data import load_heldout, load_recorded_english
from ..model import pad_to_hop
from . import checkpoint_parser


def codec_latents(model, clips: list, frames: int) -> torch.Tensor:
    """``(B, D, frames)`` latents of ``clips`` (1-D float arrays at the codec's rate)."""
    chunks = []
    with torch.no_grad():
        for audio in clips:
            x = pad_to_hop(torch.as_tensor(audio, dtype=torch.float32)[None, None],
                           model.hop_length)
            z = model.encoder(x)[0]  # (D, T)
            chunks += [z[:, i: i + frames] for i in range(0, z.shape[1] - frames + 1, frames)]
    if not chunks:
        raise ValueError(f"no clip is {frames} latent frames long")
    return torch.stack(chunks)


def main(argv: list[str] | None = None) -> int:
    """Encode the held-out clips and save their latents."""
    p = checkpoint_parser("examples.telugu_codec.studies.latents", __doc__)
    p.add_argument("--real_speech", action="store_true")
    p.add_argument("--frames", type=int, default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    quiet = lambda *_: None  # noqa: E731
    if args.real_speech:
        clips = load_recorded_english(args.cache_dir, log=quiet)
        source = "real recorded English speech (asterisk-core-sounds-en-g722)"
    else:
        clips = load_heldout(args.cache_dir, log=quiet)
        source = "held-out synthetic Telugu (unseen voices and sentences)"
    lat = codec_latents(model, [c.audio for c in clips], args.frames)
    torch.save({"latents": lat, "source": source, "checkpoint": str(args.checkpoint)}, args.out)
    print(f"{tuple(lat.shape)} latents of {len(clips)} clips ({source}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
