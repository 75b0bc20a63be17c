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
import json
import math
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

from rvq_blocks import LossBalancer

from .checkpoint import CorruptCheckpointError, find_resumable, init_weights, save_checkpoint
from .data import Clip, RandomCrops, eval_subset
from .flags import build_parser
from .losses import loss_terms, loss_weights, make_balancer
from .metrics import all_metrics, mean_metrics
from .model import CodecConfig, TeluguCodec, pad_to_hop
from .runtime import Dist, RunLog, lock_run_dir

CKPT_FORMAT = "rvq_blocks.telugu_codec/1"


# ----------------------------------------------------------------------------- setup


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
    terms = loss_terms(args.phase_max_hz, cfg.sample_rate, env.device)
    return Run(args=args, env=env, log=log, run_dir=run_dir, lock=lock, source=source, cfg=cfg,
               segment=segment, train_clips=train_clips, heldout=heldout,
               evals=eval_subset(heldout, args.eval_seconds, cfg.sample_rate),
               crops=RandomCrops(train_clips, segment, args.steps_per_epoch * args.batch_size,
                                 args.seed, gain_db=args.gain_db),
               model=model, ema=copy.deepcopy(model) if args.ema_decay > 0 else None, opt=opt,
               balancer=balancer, terms=terms, runlog=RunLog(run_dir, args.resume),
               disc=disc, opt_d=opt_d)


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
