"""Train the Telugu speech codec.

    python -m examples.telugu_codec.train                      # built-in corpus, short run
    python -m examples.telugu_codec.train --data_dir D --checkpoint_dir C --batch_size 16 \\
        --num_epochs 100 --learning_rate 1e-5 --experiment_name telucodec_stable_final
    torchrun --nproc_per_node=2 -m examples.telugu_codec.train ...   # data parallel (gloo on CPU)

With no ``--data_dir`` the default corpus is synthesised (festival + espeak-ng) into
``--cache_dir`` once and reused. An epoch is ``--steps_per_epoch`` batches of random crops; every
epoch prints and logs (``metrics.csv``, ``metrics.jsonl``) the losses, output range, DC offset,
output scale, SNR, SI-SNR, mel distance, per-quantizer codebook usage and the bitrate, writes a
checkpoint atomically and refreshes the plots. ``--resume`` continues exactly where the newest
intact checkpoint left off.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from rvq_blocks import ComplexSTFTLoss, LossBalancer, MultiScaleMelLoss, rms_scale_loss

from .checkpoint import CorruptCheckpointError, find_resumable, save_checkpoint
from .data import Clip, RandomCrops, default_cache_dir, eval_subset
from .metrics import all_metrics, mean_metrics
from .model import ARCHS, HEADS, CodecConfig, TeluguCodec, pad_to_hop

CKPT_FORMAT = "rvq_blocks.telugu_codec/1"
# Gradient fractions of the balanced losses. The waveform (MSE) loss leads: the mel loss is
# blind to phase, and with it in front the output keeps the right spectrum but stays
# uncorrelated with the input (SNR near -3 dB, SI-SNR near -40 dB) for hundreds of steps.
BALANCED_WEIGHTS = {"mel": 1.0, "time": 3.0, "rms": 0.1}
# The frame-rate architecture adds the compressed complex STFT loss (phase-aware, quiet bins
# weighted): it leads with the waveform MSE, the mel loss beside them.
FRAME_WEIGHTS = {"cstft": 2.0, "mel": 1.0, "time": 2.0, "rms": 0.1}
# The failed run's fixed weights: 2 * recon + 0.1 * percept (+ the scale loss), no balancing.
ORIGINAL_WEIGHTS = {"mel": 0.1, "time": 2.0, "rms": 1.0}


def build_parser() -> argparse.ArgumentParser:
    """The training command line: the original script's flags, then run and codec flags."""
    p = argparse.ArgumentParser(prog="python -m examples.telugu_codec.train",
                                description=__doc__.split("\n\n")[0],
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


# ----------------------------------------------------------------------------- setup


class Dist:
    """Rank/world of a ``torchrun`` launch (world 1 when launched plainly)."""

    def __init__(self, device_arg: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device_arg == "auto":
            device_arg = "cuda" if torch.cuda.is_available() else "cpu"
        if device_arg.startswith("cuda") and self.world > 1:
            device_arg = f"cuda:{local}"
        self.device = torch.device(device_arg)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def lock_run_dir(run_dir: Path):
    """An exclusive lock on ``run_dir/.lock`` for this process's lifetime, so two runs never
    write one experiment; ``SystemExit`` naming the holder when another run has it."""
    import fcntl

    f = open(run_dir / ".lock", "a+")  # noqa: SIM115 - kept open: the lock lives with it
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise SystemExit(f"error: {run_dir} is in use by another training run ({holder}); "
                         "wait for it or pass another --experiment_name") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(args, log) -> tuple[list, list, str]:
    from .data import load_corpus

    if args.data_dir is None:
        from .corpus import build_default_corpus
        root = build_default_corpus(args.cache_dir / "telugu_corpus",
                                    minutes=args.corpus_minutes, log=log)
        train, heldout = load_corpus(root, log=log)
        source = f"default Telugu corpus ({root})"
        if args.real_speech:
            real = load_training_speech(args.cache_dir, log)
            if real:
                train = train + real
                source += (f" + {sum(len(c.audio) for c in real) / 16000 / 60:.1f} min of "
                           f"recorded es/fr/it/ru prompts")
        return train, heldout, source
    train, heldout = load_corpus(args.data_dir, log=log)
    return train, heldout, str(args.data_dir)


def load_training_speech(cache_dir: Path, log) -> list:
    """The Spanish, French, Italian and Russian Asterisk prompts (recorded studio voices), as
    recorded (natural silences at the edges kept). English is never loaded here: it is the
    held-out recorded speech. Returns [] with a log line when they cannot be fetched."""
    from .corpus import TRAINING_SPEECH_PACKAGES, fetch_real_speech
    from .data import load_audio_dir

    clips: list = []
    for package in TRAINING_SPEECH_PACKAGES:
        lang = package.split("-")[3]
        try:
            root = fetch_real_speech(cache_dir / f"real_speech_{lang}", log=log, package=package)
            loaded = load_audio_dir(root, log=lambda *a: None)
        except (OSError, RuntimeError, ImportError, ValueError) as err:
            log(f"recorded {lang} speech not used: {err}")
            continue
        clips += [type(c)(f"{lang}/{c.name}", c.audio) for c in loaded]
    return clips


def loss_weights(args) -> dict[str, float]:
    """The balancer's weights: ``--loss_weights`` or the architecture's default, and with
    ``--adversarial W`` the adversarial and feature-matching losses at ``W`` each."""
    out: dict[str, float] = {}
    if args.loss_weights:
        for item in args.loss_weights.split(","):
            name, _, value = item.partition("=")
            if name.strip() not in ("cstft", "mel", "time", "rms") or not value:
                raise SystemExit(f"--loss_weights expected name=value with names cstft, mel, "
                                 f"time, rms; got {item!r}")
            out[name.strip()] = float(value)
    else:
        out = dict(FRAME_WEIGHTS if args.arch == "frame" else BALANCED_WEIGHTS)
    if getattr(args, "adversarial", 0.0):
        out.update(adv=args.adversarial, fm=args.adversarial)
    return out


class LowBandMSE:
    """Waveform MSE of the parts of ``pred`` and ``target`` below ``cutoff`` (cycles per
    sample): by Parseval, the mean squared error of their FFT bins under the cut-off.

    A codec at a few kbps cannot carry the phase of every harmonic above about 1 kHz; a
    phase-aware loss there prefers silence to a spectrum with the right magnitude and another
    phase, so the decoder learns to leave the high band out (``--phase_max_hz``)."""

    def __init__(self, cutoff: float) -> None:
        if not 0.0 < cutoff <= 0.5:
            raise SystemExit(f"--phase_max_hz must lie in (0, sample_rate / 2], got "
                             f"{cutoff:g} of the sample rate")
        self.cutoff = cutoff

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = pred.shape[-1]
        diff = torch.fft.rfft(pred - target, dim=-1)[..., :int(self.cutoff * n) + 1]
        weight = torch.full(diff.shape[-1:], 2.0, device=diff.device)
        weight[0] = 1.0  # DC once; every other bin stands for itself and its mirror
        if n % 2 == 0 and diff.shape[-1] == n // 2 + 1:
            weight[-1] = 1.0  # Nyquist once
        return (weight * diff.abs().square()).sum(-1).mean() / (n * n)


def make_balancer(kind: str, weights: dict[str, float] | None = None) -> LossBalancer:
    weights = weights or BALANCED_WEIGHTS
    if kind == "grad":
        return LossBalancer(weights)
    if kind == "static":
        return LossBalancer(weights, balance_grads=False)
    return LossBalancer(ORIGINAL_WEIGHTS, balance_grads=False)


def lr_factor(args, step: int, minutes: float) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to 0 at the end of the run.

    Progress is the larger of the step fraction (of ``--num_epochs`` x ``--steps_per_epoch``)
    and the time fraction of ``--max_minutes``, so the decay ends with whichever budget runs
    out first. ``--max_steps`` only stops the run (as a kill would): a run stopped there and
    resumed follows the same schedule as one that never stopped.
    """
    if args.schedule == "constant":
        return 1.0
    total = args.num_epochs * args.steps_per_epoch
    progress = step / total
    if args.max_minutes:
        progress = max(progress, minutes / args.max_minutes)
    progress = min(progress, 1.0)
    if progress < args.warmup_fraction:
        return max(progress / args.warmup_fraction, 1e-3)
    rest = (progress - args.warmup_fraction) / max(1.0 - args.warmup_fraction, 1e-9)
    return 0.5 * (1.0 + math.cos(math.pi * rest))


@torch.no_grad()
def update_ema(ema: TeluguCodec, model: TeluguCodec, decay: float, step: int) -> None:
    """Parameters: exponential moving average (decay ramped up over the first steps);
    buffers (the codebooks' EMA state, k-means flags): copied."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - d)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def unwrap(model) -> TeluguCodec:
    return model.module if hasattr(model, "module") else model


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: TeluguCodec, clips: list, device: torch.device, *,
             perceptual: bool = False) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Reconstruct whole clips in eval mode; metrics averaged over clips, codebook usage."""
    was_training = model.training
    model.eval()
    rows, recons = [], []
    q, k = model.cfg.num_quantizers, model.cfg.codebook_size
    counts = torch.zeros(q, k, dtype=torch.float64)
    for clip in clips:
        x = torch.from_numpy(clip.audio).float()[None, None].to(device)
        xp = pad_to_hop(x, model.hop_length)
        codes = model.encode(xp)  # (1, Q, T)
        y = model.decode(codes)[..., : x.shape[-1]]
        counts += F.one_hot(codes[0].cpu(), k).sum(1).double()
        est = y[0, 0].cpu().numpy()
        recons.append(est)
        rows.append(all_metrics(clip.audio, est, perceptual=perceptual))
    model.train(was_training)
    p = counts / counts.sum(1, keepdim=True).clamp_min(1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1)
    usage = {"codes_used": (counts > 0).double().mean(1).tolist(),
             "perplexity": entropy.exp().tolist()}
    return {**mean_metrics(rows), **usage}, recons


# ----------------------------------------------------------------------------- logging


class RunLog:
    """Per-epoch records to ``metrics.jsonl`` (everything) and ``metrics.csv`` (scalars)."""

    def __init__(self, run_dir: Path, resume: bool) -> None:
        self.jsonl, self.csv = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if resume and self.jsonl.exists():
            self.rows = [json.loads(s) for s in self.jsonl.read_text().splitlines() if s]

    def truncate(self, epoch: int) -> None:
        """Drop records past ``epoch`` (written after the checkpoint we resume from)."""
        self.rows = [r for r in self.rows if r["epoch"] <= epoch]
        self._rewrite()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.jsonl.with_suffix(".jsonl.tmp")
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        except OSError as e:  # e.g. disk full: the old log stays, no empty temp file
            tmp.unlink(missing_ok=True)
            raise OSError(e.errno, f"could not write {self.jsonl}: {e.strerror}") from e
        os.replace(tmp, self.jsonl)
        scalars = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                   for r in self.rows]
        keys = list(dict.fromkeys(k for r in scalars for k in r))
        tmp = self.csv.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(scalars)
        os.replace(tmp, self.csv)


def fmt_epoch(r: dict) -> str:
    used = r.get("codes_used") or [0.0]
    return (f"epoch {r['epoch']:3d} step {r['step']:6d} | loss {r['loss']:.4f} "
            f"({' '.join(f'{k[5:]} {v:.4f}' for k, v in r.items() if k.startswith('loss/'))} "
            f"vq {r['vq_loss']:.4f}) | out [{r['output_min']:+.3f}, {r['output_max']:+.3f}] "
            f"dc {r['dc_offset']:+.5f} scale {r['output_scale']:.3f} | "
            f"SNR {r['snr']:.2f} dB SI-SNR {r['si_snr']:.2f} dB mel {r['mel_distance']:.3f} | "
            f"codes used {min(used):.1%}-{max(used):.1%} | {r['bitrate_kbps']:.2f} kbps | "
            f"{r['epoch_seconds']:.0f} s")


# ----------------------------------------------------------------------------- the run


@dataclass
class Run:
    """One training run: what :func:`set_up` builds, :func:`resume` restores and every step
    advances."""

    args: argparse.Namespace
    env: Dist
    log: Callable[..., object]
    run_dir: Path
    lock: Any  # the open lock file (main process only): the lock lives as long as the run
    source: str
    cfg: CodecConfig
    segment: int
    train_clips: list[Clip]
    heldout: list[Clip]
    evals: list[Clip]
    crops: RandomCrops
    model: TeluguCodec
    ema: TeluguCodec | None
    opt: torch.optim.Optimizer
    balancer: LossBalancer
    terms: dict[str, Callable[..., torch.Tensor]]
    runlog: RunLog
    ddp: torch.nn.Module | None = None
    disc: Any = None  # --adversarial: the discriminator and its optimizer
    opt_d: torch.optim.Optimizer | None = None
    start_epoch: int = 0
    global_step: int = 0
    resumed_minutes: float = 0.0
    t_start: float = 0.0


@dataclass
class EpochStats:
    """Running sums of one epoch's training steps."""

    sums: dict[str, float] = field(default_factory=dict)
    out_min: float = math.inf
    out_max: float = -math.inf
    dc_sum: float = 0.0
    sat_sum: float = 0.0
    n_batches: int = 0

    def add(self, stats: dict[str, Any], y: torch.Tensor) -> None:
        """Add one step's losses and its (detached) output."""
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.out_min, self.out_max = min(self.out_min, float(y.min())), max(self.out_max,
                                                                            float(y.max()))
        self.dc_sum += float(y.mean())
        self.sat_sum += float((y.abs() > 0.99).float().mean())
        self.n_batches += 1

    def means(self) -> dict[str, float]:
        """Mean losses, then the output's range, DC offset and saturated share."""
        n = self.n_batches
        return {**{k: v / n for k, v in self.sums.items()},
                "output_min": self.out_min, "output_max": self.out_max,
                "dc_offset": self.dc_sum / n, "saturation": self.sat_sum / n}


def check_args(args: argparse.Namespace, env: Dist) -> None:
    """Apply ``--threads`` and refuse flag values the run cannot use."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()  # recorded in the checkpoint as the run used it
    if args.batch_size % env.world:
        raise SystemExit(f"--batch_size {args.batch_size} must be divisible by the number of "
                         f"processes {env.world}")
    if args.max_steps is not None and args.max_steps < 1:
        raise SystemExit(f"error: --max_steps must be >= 1, got {args.max_steps}")
    for name in ("batch_size", "num_epochs", "steps_per_epoch"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not args.adversarial >= 0:
        raise SystemExit(f"--adversarial must be >= 0, got {args.adversarial}")
    if args.adversarial and env.world > 1:
        raise SystemExit("--adversarial runs in one process; got "
                         f"{env.world} processes")
    if args.adversarial and args.balancer == "original":
        raise SystemExit("--adversarial needs --balancer grad or static")


def open_run_dir(args: argparse.Namespace, env: Dist) -> tuple[Path, Any]:
    """The experiment's directory and its lock; ``SystemExit`` when it holds a run and
    neither ``--resume`` nor ``--overwrite`` was given."""
    run_dir = args.checkpoint_dir / args.experiment_name
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_run_dir(run_dir) if env.main else None
    if env.main and not args.resume and not args.overwrite:
        previous = [n for n in ("last.pt", "prev.pt", "metrics.jsonl") if (run_dir / n).exists()]
        if previous:
            raise SystemExit(f"error: {run_dir} already holds a run ({', '.join(previous)}); "
                             "pass --resume to continue it, --overwrite to start it over, or "
                             "another --experiment_name")
    return run_dir, lock


def codec_config(args: argparse.Namespace) -> tuple[CodecConfig, int]:
    """The codec's configuration and the training crop length in samples."""
    cfg = CodecConfig(channels=args.channels, latent_dim=args.latent_dim,
                      num_quantizers=args.num_quantizers, codebook_size=args.codebook_size,
                      codebook_dim=args.codebook_dim, quantizer_dropout=args.quantizer_dropout,
                      head=args.head, center_latents=args.center_latents, arch=args.arch,
                      enc_width=args.enc_width, enc_blocks=args.enc_blocks,
                      dec_width=args.dec_width, dec_blocks=args.dec_blocks,
                      istft_n_fft=args.istft_n_fft, head_upsample=args.head_upsample)
    segment = int(round(args.segment_seconds * cfg.sample_rate / cfg.hop_length)) * cfg.hop_length
    if segment < cfg.hop_length * 4:
        raise SystemExit(f"--segment_seconds {args.segment_seconds} is too short "
                         f"(at least {4 * cfg.hop_length / cfg.sample_rate:.2f} s)")
    return cfg, segment


def set_up(args: argparse.Namespace, env: Dist, log: Callable[..., object]) -> Run:
    """Lock the run directory, seed, load the data and build the model, its EMA copy, the
    optimizer, the balancer and the losses (fresh: :func:`resume` restores a checkpoint)."""
    run_dir, lock = open_run_dir(args, env)
    seed_everything(args.seed)
    train_clips, heldout, source = load_data(args, log)
    cfg, segment = codec_config(args)
    model = TeluguCodec(cfg).to(env.device)
    if args.init_weights is not None:
        init_weights(model, args.init_weights, args.batch_size * segment // cfg.hop_length, log)
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=(0.8, 0.99),
                            weight_decay=0.0)
    disc, opt_d = None, None
    if args.adversarial:
        from .adversarial import MultiResolutionDiscriminator
        disc = MultiResolutionDiscriminator().to(env.device)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=args.learning_rate, betas=(0.8, 0.99),
                                  weight_decay=0.0)
    balancer = make_balancer(args.balancer, loss_weights(args)).to(env.device)
    mel_loss = MultiScaleMelLoss(cfg.sample_rate).to(env.device)
    terms = {"cstft": ComplexSTFTLoss().to(env.device), "mel": mel_loss, "time": F.mse_loss,
             "rms": rms_scale_loss}
    if args.phase_max_hz is not None:  # phase-aware losses below the cut-off only
        terms["cstft"] = ComplexSTFTLoss(complex_weight=0.0).to(env.device)
        terms["time"] = LowBandMSE(args.phase_max_hz / cfg.sample_rate)
    return Run(args=args, env=env, log=log, run_dir=run_dir, lock=lock, source=source, cfg=cfg,
               segment=segment, train_clips=train_clips, heldout=heldout,
               evals=eval_subset(heldout, args.eval_seconds, cfg.sample_rate),
               crops=RandomCrops(train_clips, segment, args.steps_per_epoch * args.batch_size,
                                 args.seed, gain_db=args.gain_db),
               model=model, ema=copy.deepcopy(model) if args.ema_decay > 0 else None, opt=opt,
               balancer=balancer, terms=terms, runlog=RunLog(run_dir, args.resume),
               disc=disc, opt_d=opt_d)


def init_weights(model: TeluguCodec, path: Path, vectors_per_step: int,
                 log: Callable[..., object]) -> None:
    """``--init_weights``: copy a trained codec's weights and codebooks into ``model``.

    An exported directory has no EMA usage statistics (only training needs them): they start
    as uniform usage worth one step's vectors, each code the mean of its share, so the first
    EMA steps move the codes no more than a k-means init's would be moved."""
    from .checkpoint import load_model

    try:
        src = load_model(path)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise SystemExit(f"error: --init_weights {path}: {e}") from None
    if src.cfg != model.cfg:
        raise SystemExit(f"error: --init_weights {path} was trained with {src.cfg.to_dict()}; "
                         f"the flags give {model.cfg.to_dict()}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in src.state_dict().items()})
    if path.is_dir():  # exported weights keep no EMA statistics: restart them uniform
        q = model.quantizer
        with torch.no_grad():
            q.cluster_size.fill_(vectors_per_step / q.codebook_size)
            if q.ema:
                q.embed_sum.copy_(q.codebook * q.cluster_size[..., None])
            q.unused_for.zero_()
    log(f"weights from {path}")


def resume(run: Run) -> None:
    """With ``--resume``: restore the newest intact checkpoint (if any) and drop the log
    records of the epochs that will run again."""
    if not run.args.resume:
        return
    try:
        found = find_resumable(run.run_dir, log=run.log)
    except CorruptCheckpointError as e:
        raise SystemExit(f"error: --resume: {e}") from None
    if found is None:
        run.log(f"--resume: no checkpoint in {run.run_dir}; starting from scratch")
    else:
        restore(run, *found)
    if run.env.main:
        # Records past the checkpoint resumed from (or all of them, when none survived)
        # belong to epochs that will run again.
        run.runlog.truncate(run.start_epoch)


def restore(run: Run, path: Path, state: dict[str, Any]) -> None:
    """Load a checkpoint's weights, optimizer, balancer, position and random states."""
    if state.get("format") != CKPT_FORMAT:
        raise SystemExit(f"{path}: unknown checkpoint format {state.get('format')!r}")
    if CodecConfig.from_dict(state["config"]) != run.cfg:
        raise SystemExit(f"{path} was trained with {state['config']}; the flags give "
                         f"{run.cfg.to_dict()}: pass the same codec flags to resume")
    run.model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.load_state_dict(state.get("ema", state["model"]))
    run.opt.load_state_dict(state["optimizer"])
    run.resumed_minutes = state.get("metrics", {}).get("wall_seconds", 0.0) / 60
    if (run.disc is not None) != ("disc" in state):
        had = "with" if "disc" in state else "without"
        raise SystemExit(f"{path} was trained {had} --adversarial; resume it {had} it")
    if run.disc is not None:
        run.disc.load_state_dict(state["disc"])
        run.opt_d.load_state_dict(state["opt_d"])
    run.balancer.load_state_dict(state["balancer"])
    run.start_epoch, run.global_step = state["epoch"], state["global_step"]
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    run.log(f"resumed from {path} (epoch {run.start_epoch}, step {run.global_step})")


def distribute(run: Run) -> None:
    """Wrap the model in ``DistributedDataParallel`` under ``torchrun`` (itself otherwise)."""
    run.ddp = run.model
    if run.env.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        run.ddp = DistributedDataParallel(
            run.model, device_ids=None if run.env.device.type == "cpu"
            else [run.env.device.index], broadcast_buffers=False,
            find_unused_parameters=run.args.vq_warmup_steps > 0)


def log_start(run: Run) -> None:
    """One line on the data, one on the codec and where it trains."""
    cfg, sr = run.cfg, run.cfg.sample_rate
    run.log(f"data: {run.source}: {len(run.train_clips)} training clips "
            f"({sum(len(c.audio) for c in run.train_clips) / sr / 60:.1f} min), "
            f"{len(run.heldout)} held-out ({sum(len(c.audio) for c in run.heldout) / sr / 60:.1f}"
            f" min; {len(run.evals)} evaluated per epoch)")
    run.log(f"codec: {sum(p.numel() for p in run.model.parameters()) / 1e6:.2f} M parameters, "
            f"{cfg.num_quantizers} x {cfg.codebook_size} codes at {cfg.frame_rate:g} Hz = "
            f"{run.model.bitrate / 1000:.2f} kbps; head {cfg.head}; balancer "
            f"{run.args.balancer}; {run.env.world} process(es) on {run.env.device}; run dir "
            f"{run.run_dir}")


# ----------------------------------------------------------------------------- training


def init_codebooks(model: TeluguCodec, clips: list, segment: int, args, env: Dist) -> None:
    """k-means initialisation from ``--kmeans_batches`` batches of latents.

    The quantizer's automatic init uses the first batch alone: 16 crops of 0.48 s are 384
    latent frames for 1024 codes, so every frame becomes its own code, the residuals of
    stages 2-12 are zero and those codebooks start collapsed.
    """
    n = args.kmeans_batches * args.batch_size
    crops = RandomCrops(clips, segment, n, args.seed + 1)
    crops.set_epoch(0)
    per = n // env.world  # contiguous shares: gathered in rank order they are the same rows
    x = torch.stack([crops[i] for i in range(env.rank * per, (env.rank + 1) * per)])
    with torch.no_grad():
        model.quantizer.init_from_batch_(model.encoder(x.to(env.device)))


def crop_indices(step: int, batch: int, rank: int, world: int) -> list[int]:
    """Rank ``rank``'s share of global batch ``step``: the same crops whatever ``world`` is."""
    per = batch // world
    start = step * batch + rank * per
    return list(range(start, start + per))


def _progress(run: Run, epoch: int) -> Iterable[int]:
    """The epoch's step indices, behind a progress bar when tqdm is installed."""
    steps = range(run.args.steps_per_epoch)
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional
        return steps
    return tqdm(steps, desc=f"epoch {epoch}", leave=False, mininterval=2.0,
                disable=run.args.quiet or not run.env.main)


def train_step(run: Run, step: int) -> tuple[dict[str, Any], torch.Tensor]:
    """One optimizer step on global batch ``step`` of the epoch; returns the step's losses
    and SNR (tensors) and the detached output."""
    args, env, model = run.args, run.env, run.model
    x = torch.stack([run.crops[i] for i in crop_indices(step, args.batch_size, env.rank,
                                                        env.world)]).to(env.device)  # (b, 1, S)
    warmup = run.global_step < args.vq_warmup_steps
    if not warmup and not bool(model.quantizer.initialized):
        init_codebooks(model, run.train_clips, run.segment, args, env)
    lr = args.learning_rate * lr_factor(
        args, run.global_step, run.resumed_minutes + (time.monotonic() - run.t_start) / 60)
    for group in run.opt.param_groups + (run.opt_d.param_groups if run.opt_d else []):
        group["lr"] = lr
    y, vq = run.ddp(x, bypass=warmup)
    losses = {k: run.terms[k](y, x) for k in run.balancer.names if k in run.terms}
    extra = {}
    if run.disc is not None:  # one discriminator step, then its losses for the codec
        k = max(1, x.shape[0] // 2)  # on half the batch: the discriminator costs a generator
        d_loss = run.disc.discriminator_loss(x[:k], y[:k])
        run.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        run.opt_d.step()
        losses["adv"], losses["fm"] = run.disc.generator_losses(y[:k], x[:k])
        extra["d_loss"] = d_loss.detach()
    run.opt.zero_grad(set_to_none=True)
    total = run.balancer.backward(losses, y, unbalanced={} if vq is None else {"vq": vq.loss})
    if vq is None:  # warm-up: report zero VQ losses
        zero = y.new_zeros(())
        vq = SimpleNamespace(loss=zero, commitment_loss=zero, codebook_loss=zero)
    if args.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
    run.opt.step()
    if run.ema is not None:
        update_ema(run.ema, model, args.ema_decay, run.global_step)
    run.global_step += 1
    yd = y.detach()
    return {"loss": total, **{f"loss/{k}": v.detach() for k, v in losses.items()},
            "vq_loss": vq.loss.detach(),
            "commitment_loss": vq.commitment_loss.detach().mean(),
            "codebook_loss": vq.codebook_loss.detach().mean(),
            "train_snr": 10 * torch.log10(x.square().sum() / (x - yd).square().sum()
                                          .clamp_min(1e-12)), **extra}, yd


def train_epoch(run: Run, epoch: int) -> tuple[EpochStats, bool]:
    """The epoch's training steps; returns their running sums and whether ``--max_steps``
    was reached."""
    run.crops.set_epoch(epoch)
    run.model.train()
    acc, stop = EpochStats(), False
    bar = _progress(run, epoch)
    for step in bar:
        stats, y = train_step(run, step)
        acc.add(stats, y)
        if not all(math.isfinite(float(v)) for v in stats.values()):
            raise FloatingPointError(f"non-finite loss at epoch {epoch} step {run.global_step}: "
                                     f"{ {k: float(v) for k, v in stats.items()} }")
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{float(stats['loss']):.3f}", refresh=False)
        if run.args.max_steps is not None and run.global_step >= run.args.max_steps:
            stop = True
            break
    if hasattr(bar, "close"):
        bar.close()
    return acc, stop


def end_epoch(run: Run, epoch: int, acc: EpochStats, t0: float) -> dict[str, Any]:
    """Evaluate on the held-out clips, log the epoch's record, checkpoint and plot (main
    process); returns the record."""
    row: dict[str, Any] = {"epoch": epoch, "step": run.global_step, **acc.means(),
                           "output_scale": float(unwrap(run.ddp).head.scale.mean()),
                           "bitrate_kbps": run.model.bitrate / 1000,
                           "lr": run.opt.param_groups[0]["lr"]}
    row.update({f"share/{k}": run.balancer.metrics.get(f"{k}/share", float("nan"))
                for k in run.balancer.names})
    recons: list[np.ndarray] = []
    if run.env.main:
        heldout_metrics, recons = evaluate(run.ema if run.ema is not None else run.model,
                                           run.evals, run.env.device)
        row.update(heldout_metrics)
    row["epoch_seconds"] = time.monotonic() - t0
    row["wall_seconds"] = time.monotonic() - run.t_start
    if run.env.main:
        run.runlog.add(row)
        run.log(fmt_epoch(row))
        save_checkpoint(run.run_dir, checkpoint_state(run, epoch, row))
        if not run.args.no_plots:
            _plots(run.run_dir, run.runlog.rows, run.evals, recons, run.cfg.sample_rate, run.log)
    run.env.barrier()
    return row


def checkpoint_state(run: Run, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
    """Everything a resumed run needs, and the epoch's record."""
    return {"format": CKPT_FORMAT, "config": run.cfg.to_dict(),
            "args": _jsonable(vars(run.args)), "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            **({"ema": run.ema.state_dict()} if run.ema is not None else {}),
            "balancer": run.balancer.state_dict(), "epoch": epoch,
            **({"disc": run.disc.state_dict(), "opt_d": run.opt_d.state_dict()}
               if run.disc is not None else {}),
            "global_step": run.global_step,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "metrics": row}


def train(argv: list[str] | None = None) -> dict[str, Any]:
    """Train the codec as the command line ``argv`` says; returns the last epoch's record."""
    args = build_parser().parse_args(argv)
    env = Dist(args.device)
    log = print if env.main else (lambda *a, **k: None)
    check_args(args, env)
    run = set_up(args, env, log)
    resume(run)
    distribute(run)
    log_start(run)
    run.t_start = time.monotonic()
    summary: dict[str, Any] = {}
    for epoch in range(run.start_epoch + 1, args.num_epochs + 1):
        t0 = time.monotonic()
        acc, stop = train_epoch(run, epoch)
        summary = end_epoch(run, epoch, acc, t0)
        minutes = (time.monotonic() - run.t_start) / 60
        if stop or (args.max_minutes is not None and minutes >= args.max_minutes):
            break
    if env.main:
        (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log(f"done: {run.run_dir / 'last.pt'}")
    if env.world > 1:
        dist.destroy_process_group()
    return summary


def _jsonable(d: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _plots(run_dir: Path, rows: list[dict], evals: list, recons: list, sr: int, log) -> None:
    try:
        from .plots import plot_curves, plot_spectrograms
    except ImportError as e:  # matplotlib missing
        log(f"plots skipped: {e}")
        return
    plot_curves(rows, run_dir / "curves.png")
    if evals:
        plot_spectrograms(evals[0].audio, recons[0], sr, run_dir / "spectrogram.png",
                          title=evals[0].name)


def main(argv: list[str] | None = None) -> int:
    try:
        train(argv)
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is intact; --resume continues", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "evaluate", "main", "train"]
