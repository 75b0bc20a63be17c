"""The command line of ``python -m examples.telugu_codec.train``: the original training script's
flags first, then the run, codec and optimisation flags (``--help`` lists them in groups)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .data import default_cache_dir
from .model import ARCHS, HEADS


def build_parser() -> argparse.ArgumentParser:
    """The training command line: the original script's flags, then run and codec flags."""
    p = argparse.ArgumentParser(prog="python -m examples.telugu_codec.train",
                                description="Train the Telugu speech codec.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _original_flags(p.add_argument_group("the original script's flags"))
    _run_flags(p.add_argument_group("run"))
    g = p.add_argument_group("codec")
    _codec_flags(g)
    _optimisation_flags(g)
    return p


def _original_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--data_dir", type=Path, default=None,
                   help="WAV/FLAC files (recursive; train/ and heldout/ subdirs are used if "
                        "present); default: the synthesised Telugu corpus")
    g.add_argument("--checkpoint_dir", type=Path, default=Path("checkpoints"))
    g.add_argument("--batch_size", type=int, default=16, help="global batch (split over ranks)")
    g.add_argument("--num_epochs", type=int, default=8)
    g.add_argument("--learning_rate", type=float, default=1e-3)
    g.add_argument("--experiment_name", default="telugu_codec")


def _run_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint of this experiment")
    g.add_argument("--overwrite", action="store_true",
                   help="start this experiment over even though its directory holds a run "
                        "(its checkpoints are replaced as the new run saves)")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps_per_epoch", type=int, default=40)
    g.add_argument("--segment_seconds", type=float, default=0.48)
    g.add_argument("--max_steps", type=int, default=None, help="stop after this many steps")
    g.add_argument("--max_minutes", type=float, default=None,
                   help="stop (after checkpointing) once this much wall time has passed")
    g.add_argument("--eval_seconds", type=float, default=40.0,
                   help="held-out audio evaluated after every epoch")
    g.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    g.add_argument("--corpus_minutes", type=float, default=40.0)
    g.add_argument("--real_speech", action=argparse.BooleanOptionalAction, default=True,
                   help="add the recorded es/fr/it/ru Asterisk prompts (about 107 min, fetched "
                        "with apt-get download once) to the default corpus's training clips")
    g.add_argument("--gain_db", type=float, default=10.0,
                   help="random gain per training crop, uniform in +-gain_db dB")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--no_plots", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _codec_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--num_quantizers", type=int, default=12)
    g.add_argument("--codebook_size", type=int, default=1024)
    g.add_argument("--codebook_dim", type=int, default=None)
    g.add_argument("--quantizer_dropout", type=float, default=0.0)
    g.add_argument("--arch", choices=ARCHS, default="frame",
                   help="frame: ConvNeXt at 50 Hz + iSTFT head; seanet: the original model")
    g.add_argument("--channels", type=int, default=16, help="seanet: first encoder width")
    g.add_argument("--enc_width", type=int, default=192, help="frame: encoder ConvNeXt width")
    g.add_argument("--enc_blocks", type=int, default=4)
    g.add_argument("--dec_width", type=int, default=256, help="frame: decoder ConvNeXt width")
    g.add_argument("--dec_blocks", type=int, default=6)
    g.add_argument("--istft_n_fft", type=int, default=None,
                   help="frame: n_fft of the iSTFT head (default 4 x hop; 2 x hop halves the "
                        "overlap of the frames whose phases must agree)")
    g.add_argument("--adversarial", type=float, default=0.0,
                   help="weight of the adversarial and feature-matching losses in the balancer "
                        "(0: off; one process only; see examples/telugu_codec/adversarial.py)")
    g.add_argument("--init_weights", type=Path, default=None,
                   help="start from these weights (a checkpoint or an exported directory with "
                        "the same codec flags) instead of a random init; fresh optimizer")
    g.add_argument("--phase_max_hz", type=float, default=None,
                   help="phase-aware losses only below this frequency: the waveform MSE on "
                        "the band below it, the complex STFT loss on magnitudes alone "
                        "(default: both over the whole band)")
    g.add_argument("--head_upsample", type=int, default=1,
                   help="frame: run the iSTFT head at this multiple of the latent frame rate "
                        "(an even divisor of the hop; 1: at the latent rate)")
    g.add_argument("--latent_dim", type=int, default=64)
    g.add_argument("--head", choices=HEADS, default="scaled_tanh")
    g.add_argument("--center_latents", action=argparse.BooleanOptionalAction, default=False,
                   help="subtract each latent channel's mean over time before the quantizer "
                        "(the codes then miss that mean, and chunked coding differs from "
                        "one-pass coding; kept for checkpoints trained with it)")
    g.add_argument("--vq_warmup_steps", type=int, default=0,
                   help="train the autoencoder unquantized for this many steps first")
    g.add_argument("--kmeans_batches", type=int, default=8,
                   help="k-means initialisation of the codebooks from this many batches of "
                        "latents (at the first quantized step)")


def _optimisation_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--balancer", choices=("grad", "static", "original"), default="grad",
                   help="grad: gradient balancer; static: the same weights as a plain sum; "
                        "original: the failed run's 2*recon + 0.1*percept weights")
    g.add_argument("--loss_weights", default=None,
                   help="balancer weights as name=value,... (default: FRAME_WEIGHTS for "
                        "--arch frame, BALANCED_WEIGHTS for seanet); names: cstft mel time rms")
    g.add_argument("--grad_clip", type=float, default=1.0, help="0 disables")
    g.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine: linear warm-up then cosine decay to zero at the end of the run "
                        "(--num_epochs x --steps_per_epoch steps or --max_minutes, whichever "
                        "comes first)")
    g.add_argument("--warmup_fraction", type=float, default=0.05)
    g.add_argument("--ema_decay", type=float, default=0.999,
                   help="EMA of the weights, used for evaluation and saved; 0 disables")
