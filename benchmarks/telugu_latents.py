"""Encoder latents of the Telugu example codec on real audio, for ``bench_ddp.py --latents``.

    python benchmarks/telugu_latents.py --checkpoint CKPT --out latents.pt  # held-out Telugu
    python benchmarks/telugu_latents.py --checkpoint CKPT --out latents.pt --real_speech

Each clip goes through the trained encoder whole (as in evaluation); its latent frames are cut
into chunks of ``--frames`` and stacked into one ``(B, latent_dim, frames)`` tensor, saved as
``{"latents": tensor, "source": str, "checkpoint": str}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def codec_latents(model, clips: list, frames: int) -> torch.Tensor:
    """``(B, D, frames)`` latents of ``clips`` (1-D float arrays at the codec's rate)."""
    from examples.telugu_codec.model import pad_to_hop

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
    from examples.telugu_codec.data import load_audio_dir, load_corpus
    from examples.telugu_codec.train import default_cache_dir, load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--real_speech", action="store_true")
    p.add_argument("--frames", type=int, default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    quiet = lambda *_: None  # noqa: E731
    if args.real_speech:
        from examples.telugu_codec.corpus import fetch_real_speech
        clips = load_audio_dir(fetch_real_speech(args.cache_dir / "real_speech"), log=quiet)
        source = "real recorded English speech (asterisk-core-sounds-en-g722)"
    else:
        from examples.telugu_codec.corpus import build_default_corpus
        _, clips = load_corpus(build_default_corpus(args.cache_dir / "telugu_corpus", log=quiet),
                               log=quiet)
        source = "held-out synthetic Telugu (unseen voices and sentences)"
    lat = codec_latents(model, [c.audio for c in clips], args.frames)
    torch.save({"latents": lat, "source": source, "checkpoint": str(args.checkpoint)}, args.out)
    print(f"{tuple(lat.shape)} latents of {len(clips)} clips ({source}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
