"""Codebook usage in the first training steps of two real waveform codecs, per quantizer.

Trains, with Adam, on 16 x 0.48 s crops of the Telugu example's synthetic training corpus:

* ``a``: the example's ``TeluguCodec`` (``examples/telugu_codec/model.py``) built from the
  module's own ``CodecConfig()`` defaults with ``center_latents=False``;
* ``b``: a plain strided-``Conv1d`` waveform autoencoder defined here (hop 240 at 16 kHz =
  66.7 Hz, 32-d latents, 8 x 256 codes, LeakyReLU, no output head),

each with several quantizers in place of the model's own: ``ResidualVQ`` with its defaults and
with one option each, SimVQ (arXiv 2411.02038, defined here) and vector-quantize-pytorch's
``ResidualVQ``. The loss is fixed and cheap: L1 waveform + ``MultiScaleMelLoss`` + the VQ loss.
At each checkpoint step (25, 50, 100, 200, 400) the codes chosen by every stage are counted, in
eval mode through ``encode`` (no state change), over a window of held-out crops spread evenly
over the held-out clips (at least 12 x codebook_size frames, or all held-out frames when there
are fewer), and the window is reconstructed (SNR, SI-SNR). Same seed, initial weights and crops
for every variant.

    python benchmarks/bench_codebook_usage.py --out benchmarks/results/codebook_usage.json
    python benchmarks/bench_codebook_usage.py --variants ours,vqtorch --models a --threads 1
    python benchmarks/bench_codebook_usage.py --quick --data_dir D --out x.json  # smoke run

``--data_dir`` takes a directory of audio (``train/`` and ``heldout/`` subdirectories, or a
flat folder split by name hash); by default the example's corpus is built (or reused) in its
cache (festival and espeak-ng needed the first time).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rvq_blocks import MultiScaleMelLoss, ResidualVQ  # noqa: E402

CHECKPOINTS = (25, 50, 100, 200, 400)
WINDOW_CODEBOOKS = 12  # held-out frames counted: at least this many x codebook_size

# name -> (implementation, ResidualVQ options). Options apply on top of ResidualVQ's defaults.
VARIANTS: dict[str, tuple[str, dict]] = {
    "ours": ("rvq_blocks", {}),
    "ema_false": ("rvq_blocks", {"ema": False}),
    "cosine": ("rvq_blocks", {"use_cosine": True}),
    "codebook_dim8": ("rvq_blocks", {"codebook_dim": 8}),
    "rotation": ("rvq_blocks", {"gradient_estimator": "rotation"}),
    "simvq": ("simvq (defined here)", {}),
    "vqtorch": ("vector-quantize-pytorch", {"kmeans_init": True, "kmeans_iters": 10,
                                            "decay": 0.99, "threshold_ema_dead_code": 2}),
}
MODELS = {
    "a": "Telugu codec (examples/telugu_codec, CodecConfig() defaults, center_latents=False)",
    "b": "plain strided Conv1d autoencoder (hop 240, 66.7 Hz, 32-d latents, 8 x 256 codes)",
}


class QuantOut(NamedTuple):
    """The fields of ``RVQOutput`` a codec forward and this benchmark read."""

    quantized: Tensor
    indices: Tensor
    loss: Tensor


# ----------------------------------------------------------------------------- quantizers


class SimVQ(nn.Module):
    """Residual SimVQ: stage ``k``'s codebook is ``W_k(C_k)``, ``C_k`` a frozen Gaussian
    ``(K, D)`` matrix and ``W_k`` a learned ``D x D`` linear map (arXiv 2411.02038).

    Trained by gradient: codebook loss ``mse(code, residual.detach())`` (reaches ``W_k``, so
    every code moves with every update) plus ``beta * mse(residual, code.detach())``, averaged
    over stages; residuals from detached codes and one straight-through estimator on the sum,
    as ``ResidualVQ``. Call signature and ``encode``/``decode`` mimic ``ResidualVQ``
    (``(B, D, T)`` latents, ``(B, Q, T)`` codes).
    """

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int,
                 beta: float = 0.25) -> None:
        super().__init__()
        self.num_quantizers, self.codebook_size, self.beta = num_quantizers, codebook_size, beta
        self.register_buffer("frozen", torch.randn(num_quantizers, codebook_size, dim)
                             * dim ** -0.5)
        self.proj = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(num_quantizers))

    def codebooks(self) -> list[Tensor]:
        return [p(c) for p, c in zip(self.proj, self.frozen, strict=True)]

    @staticmethod
    def _nearest(r: Tensor, cb: Tensor) -> Tensor:
        d = r.pow(2).sum(1, keepdim=True) - 2 * r @ cb.t() + cb.pow(2).sum(1)[None]
        return d.argmin(1)

    def forward(self, x: Tensor, n_quantizers: int | None = None, **_) -> QuantOut:
        b, d, t = x.shape
        z = x.transpose(1, 2).reshape(-1, d)
        residual, total, losses, cols = z, torch.zeros_like(z), [], []
        for cb in self.codebooks()[: n_quantizers or self.num_quantizers]:
            idx = self._nearest(residual.detach(), cb.detach())
            code = cb[idx]
            losses.append(F.mse_loss(code, residual.detach())
                          + self.beta * F.mse_loss(residual, code.detach()))
            total = total + code
            residual = residual - code.detach()
            cols.append(idx)
        quantized = z + (total - z).detach()  # straight-through on the sum
        quantized = quantized.reshape(b, t, d).transpose(1, 2)
        indices = torch.stack(cols, 1).reshape(b, t, -1).permute(0, 2, 1)
        return QuantOut(quantized, indices, torch.stack(losses).mean())

    @torch.no_grad()
    def encode(self, x: Tensor, n_quantizers: int | None = None) -> Tensor:
        return self.forward(x, n_quantizers).indices

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        cbs = self.codebooks()
        return sum(cbs[k][codes[:, k]] for k in range(codes.shape[1])).transpose(1, 2)


class VqtorchRVQ(nn.Module):
    """vector-quantize-pytorch's ``ResidualVQ`` behind ``ResidualVQ``'s channel-first calls."""

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int, **opts) -> None:
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ as PeerRVQ

        self.rvq = PeerRVQ(dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size,
                           **opts)

    def forward(self, x: Tensor, n_quantizers: int | None = None, **_) -> QuantOut:
        quantized, indices, losses = self.rvq(x.transpose(1, 2))  # (B, T, D), (B, T, Q), (Q,)
        return QuantOut(quantized.transpose(1, 2), indices.transpose(1, 2), losses.sum())

    @torch.no_grad()
    def encode(self, x: Tensor, n_quantizers: int | None = None) -> Tensor:
        was = self.training
        self.eval()  # eval: no EMA update, no dead-code expiry
        _, indices, _ = self.rvq(x.transpose(1, 2))
        self.train(was)
        return indices.transpose(1, 2)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.rvq.get_output_from_indices(codes.transpose(1, 2)).transpose(1, 2)


def build_quantizer(variant: str, dim: int, num_quantizers: int, codebook_size: int,
                    base: dict) -> nn.Module:
    impl, opts = VARIANTS[variant]
    if impl == "rvq_blocks":
        return ResidualVQ(dim, num_quantizers, codebook_size, **{**base, **opts})
    if impl.startswith("simvq"):
        return SimVQ(dim, num_quantizers, codebook_size)
    return VqtorchRVQ(dim, num_quantizers, codebook_size, **opts)


def unavailable(variant: str) -> str:
    """Why ``variant`` cannot run here ('' when it can)."""
    impl, opts = VARIANTS[variant]
    if impl == "rvq_blocks":
        import inspect

        accepted = set(inspect.signature(ResidualVQ.__init__).parameters)
        missing = sorted(set(opts) - accepted)
        return f"ResidualVQ does not accept {missing}" if missing else ""
    if impl == "vector-quantize-pytorch":
        try:
            import vector_quantize_pytorch  # noqa: F401
        except Exception as exc:  # reported, not raised
            return f"vector-quantize-pytorch does not import: {exc!r}"
    return ""


# ----------------------------------------------------------------------------- models


class ConvAE(nn.Module):
    """Model (b): ``Conv1d`` stack, strides ``(2, 4, 5, 6)`` (hop 240), LeakyReLU, a
    ``ResidualVQ`` on ``latent_dim`` channels, mirrored ``ConvTranspose1d`` decoder, linear
    output (clamped to [-1, 1] only by ``decode``). Same calls as ``TeluguCodec``."""

    def __init__(self, channels: int = 16, latent_dim: int = 32, num_quantizers: int = 8,
                 codebook_size: int = 256, strides: tuple[int, ...] = (2, 4, 5, 6),
                 sample_rate: int = 16000) -> None:
        super().__init__()
        self.hop_length = math.prod(strides)
        self.sample_rate = sample_rate
        self.latent_dim, self.num_quantizers = latent_dim, num_quantizers
        self.codebook_size = codebook_size
        c = channels
        enc: list[nn.Module] = [nn.Conv1d(1, c, 7, padding=3), nn.LeakyReLU(0.1)]
        for s in strides:
            enc += [nn.Conv1d(c, 2 * c, 2 * s, stride=s, padding=math.ceil(s / 2)),
                    nn.LeakyReLU(0.1)]
            c *= 2
        enc.append(nn.Conv1d(c, latent_dim, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        self.quantizer = ResidualVQ(latent_dim, num_quantizers, codebook_size)
        dec: list[nn.Module] = [nn.Conv1d(latent_dim, c, 3, padding=1), nn.LeakyReLU(0.1)]
        for s in reversed(strides):
            dec += [nn.ConvTranspose1d(c, c // 2, 2 * s, stride=s, padding=math.ceil(s / 2),
                                       output_padding=s % 2), nn.LeakyReLU(0.1)]
            c //= 2
        dec.append(nn.Conv1d(c, 1, 7, padding=3))
        self.decoder = nn.Sequential(*dec)

    def forward(self, wav: Tensor) -> tuple[Tensor, QuantOut]:
        out = self.quantizer(self.encoder(wav))
        return self.decoder(out.quantized), out

    @torch.no_grad()
    def encode(self, wav: Tensor) -> Tensor:
        return self.quantizer.encode(self.encoder(wav))

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.decoder(self.quantizer.decode(codes)).clamp(-1.0, 1.0)


class Spec(NamedTuple):
    """What the loop needs to know of a model, read from the built model."""

    sample_rate: int
    hop_length: int
    latent_dim: int
    num_quantizers: int
    codebook_size: int
    quantizer_options: dict  # passed to every ResidualVQ variant (the model's own settings)
    config: dict


def build_model(key: str, quick: bool) -> tuple[nn.Module, Spec]:
    if key == "b":
        kw = {"channels": 4, "latent_dim": 8, "num_quantizers": 2, "codebook_size": 16} \
            if quick else {}
        m = ConvAE(**kw)
        cfg = {"channels": 4 if quick else 16, "strides": [2, 4, 5, 6],
               "latent_dim": m.latent_dim, "num_quantizers": m.num_quantizers,
               "codebook_size": m.codebook_size, "sample_rate": m.sample_rate}
        return m, Spec(m.sample_rate, m.hop_length, m.latent_dim, m.num_quantizers,
                       m.codebook_size, {}, cfg)
    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    names = {f.name for f in dataclasses.fields(CodecConfig)}
    over = {"center_latents": False}
    if quick:
        over.update(channels=4, num_quantizers=2, codebook_size=16)
    cfg = CodecConfig(**{k: v for k, v in over.items() if k in names})
    m = TeluguCodec(cfg)
    base = {k: getattr(cfg, k) for k in ("codebook_dim", "quantizer_dropout")
            if getattr(cfg, k, None) not in (None, 0.0)}
    as_dict = cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg)
    return m, Spec(cfg.sample_rate, m.hop_length, cfg.latent_dim, cfg.num_quantizers,
                   cfg.codebook_size, base, json.loads(json.dumps(as_dict, default=str)))


def model_forward(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(y, vq_loss)`` of a training forward, called as the example's ``train.py`` does."""
    out = model(x)
    y, vq = out[0], out[1]
    return y, vq.loss


# ----------------------------------------------------------------------------- data


def load_data(data_dir: Path | None, log) -> tuple[list, list, str]:
    from examples.telugu_codec.data import load_corpus

    if data_dir is None:
        from examples.telugu_codec.corpus import build_default_corpus
        from examples.telugu_codec.train import default_cache_dir

        data_dir = build_default_corpus(default_cache_dir() / "telugu_corpus", log=log)
        source = f"default Telugu corpus ({data_dir})"
    else:
        source = str(data_dir)
    train, heldout = load_corpus(data_dir, log=log)
    return train, heldout, source


def heldout_window(clips: list, segment: int) -> Tensor:
    """Every whole ``segment``-long crop of the held-out clips, in order: ``(N, 1, S)``."""
    crops = [torch.from_numpy(c.audio[i:i + segment].copy())
             for c in clips for i in range(0, len(c.audio) - segment + 1, segment)]
    if not crops:
        raise SystemExit(f"no held-out clip is at least {segment} samples long")
    return torch.stack(crops)[:, None]


# ----------------------------------------------------------------------------- measuring


@torch.no_grad()
def evaluate(model: nn.Module, spec: Spec, window: Tensor, batch: int) -> dict:
    """Codes in use per stage over ``window`` and its reconstruction quality (eval mode)."""
    was = model.training
    model.eval()
    used = torch.zeros(spec.num_quantizers, spec.codebook_size, dtype=torch.bool)
    sig = err = 0.0
    si = []
    for i in range(0, window.shape[0], batch):
        x = window[i:i + batch]
        codes = model.encode(x)  # (B, Q, T)
        for q in range(codes.shape[1]):
            used[q, codes[:, q].reshape(-1)] = True
        y = model.decode(codes)[..., : x.shape[-1]]
        sig += float(x.double().pow(2).sum())
        err += float((x - y).double().pow(2).sum())
        xs, ys = x[:, 0].double(), y[:, 0].double()
        xs, ys = xs - xs.mean(1, keepdim=True), ys - ys.mean(1, keepdim=True)
        alpha = (xs * ys).sum(1) / xs.pow(2).sum(1).clamp_min(1e-12)
        target = alpha[:, None] * xs
        ratio = target.pow(2).sum(1) / (ys - target).pow(2).sum(1).clamp_min(1e-12)
        si += (10 * torch.log10(ratio.clamp_min(1e-12))).tolist()
    model.train(was)
    frac = used.double().mean(1).tolist()
    return {"codes_used": frac, "min_codes_used": min(frac),
            "mean_codes_used": sum(frac) / len(frac),
            "snr_db": 10 * math.log10(sig / max(err, 1e-30)), "si_snr_db": sum(si) / len(si)}


def run_variant(key: str, variant: str, args, train_clips, window: Tensor, log) -> dict:
    from examples.telugu_codec.data import RandomCrops

    torch.manual_seed(args.seed)  # same encoder/decoder weights for every variant
    model, spec = build_model(key, args.quick)
    impl, opts = VARIANTS[variant]
    row = {"variant": variant, "implementation": impl, "options": opts}
    if variant != "ours":
        torch.manual_seed(args.seed + 1)
        model.quantizer = build_quantizer(variant, spec.latent_dim, spec.num_quantizers,
                                          spec.codebook_size, spec.quantizer_options)
    torch.manual_seed(args.seed + 2)  # k-means sampling, revival, ...
    segment = int(round(args.segment_seconds * spec.sample_rate / spec.hop_length)) \
        * spec.hop_length
    crops = RandomCrops(train_clips, segment, args.steps * args.batch, args.seed)
    crops.set_epoch(0)
    mel = MultiScaleMelLoss(spec.sample_rate)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.8, 0.99))
    checkpoints = sorted({s for s in args.checkpoints if s <= args.steps} | {args.steps})
    model.train()
    train_s, first_step_s, losses, records = 0.0, None, [], []
    for step in range(1, args.steps + 1):
        x = torch.stack([crops[i] for i in range((step - 1) * args.batch, step * args.batch)])
        t0 = time.perf_counter()
        y, vq_loss = model_forward(model, x)
        loss = args.l1_weight * F.l1_loss(y, x) + mel(y, x) + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        dt = time.perf_counter() - t0
        train_s += dt
        first_step_s = dt if first_step_s is None else first_step_s
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            row["diverged_at_step"] = step
            log(f"  {variant}: non-finite loss at step {step}; stopped")
            break
        if step in checkpoints:
            rec = {"step": step, **evaluate(model, spec, window, args.eval_batch),
                   "train_loss": sum(losses[-25:]) / len(losses[-25:])}
            records.append(rec)
            log(f"  {key} {variant:<14} step {step:4d}  codes used min {rec['min_codes_used']:6.1%}"
                f" mean {rec['mean_codes_used']:6.1%}  SNR {rec['snr_db']:6.2f} dB  "
                f"SI-SNR {rec['si_snr_db']:7.2f} dB  loss {rec['train_loss']:.4f}  "
                f"{train_s / step:.3f} s/step")
    row.update({"steps_run": len(losses), "s_per_step": train_s / max(1, len(losses)),
                "first_step_s": first_step_s, "train_s": train_s, "checkpoints": records})
    if records:
        last = records[-1]
        row["final"] = {k: last[k] for k in ("step", "min_codes_used", "mean_codes_used",
                                             "snr_db", "si_snr_db")}
    return row


# ----------------------------------------------------------------------------- main


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def _revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def meta_of(args, source: str) -> dict:
    import rvq_blocks

    try:
        from importlib.metadata import version

        peer = version("vector-quantize-pytorch")
    except Exception:  # not installed
        peer = None
    lib = Path(rvq_blocks.__file__).resolve().parent
    return {"torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "python": platform.python_version(), "rvq_blocks": rvq_blocks.__version__,
            "vector_quantize_pytorch": peer, "git": _revision(),
            "code_sha256": {"rvq_blocks/residual_vq.py": _digest(lib / "residual_vq.py"),
                            "examples/telugu_codec/model.py":
                                _digest(ROOT / "examples" / "telugu_codec" / "model.py")},
            "steps": args.steps, "checkpoints": args.checkpoints, "batch": args.batch,
            "segment_seconds": args.segment_seconds, "lr": args.lr,
            "optimizer": "Adam(betas=(0.8, 0.99))", "grad_clip": args.grad_clip,
            "loss": f"{args.l1_weight:g} * l1(y, x) + MultiScaleMelLoss(y, x) + vq.loss",
            "seed": args.seed,
            "data": source, "quick": args.quick, "label": args.label, "argv": sys.argv[1:],
            "loadavg_start": os.getloadavg()}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--checkpoints", default=",".join(map(str, CHECKPOINTS)),
                    help="steps at which usage is measured (the last step always is)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of "
                    f"{list(VARIANTS)}")
    ap.add_argument("--models", default="a,b", help=f"comma list of {list(MODELS)}")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment_seconds", type=float, default=0.48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l1_weight", type=float, default=1.0,
                    help="weight of the L1 waveform loss (the mel loss and VQ loss weigh 1)")
    ap.add_argument("--grad_clip", type=float, default=1.0, help="0 disables")
    ap.add_argument("--eval_batch", type=int, default=32)
    ap.add_argument("--window_codebooks", type=int, default=WINDOW_CODEBOOKS,
                    help="held-out frames counted: this many x codebook_size (or all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--data_dir", type=Path, default=None,
                    help="audio directory (train/ + heldout/); default: the example's corpus")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: tiny models (2 x 16 codes), 2 steps, batch 2")
    ap.add_argument("--label", default="", help="free text recorded in the JSON (e.g. which "
                    "code was measured)")
    ap.add_argument("--out", type=Path, help="write results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.checkpoints = 2, 2, "1,2"
    args.checkpoints = [int(s) for s in args.checkpoints.split(",") if s]
    args.variants = [v for v in args.variants.split(",") if v]
    args.models = [m for m in args.models.split(",") if m]
    bad = [v for v in args.variants if v not in VARIANTS] + \
        [m for m in args.models if m not in MODELS]
    if bad:
        ap.error(f"unknown variants/models {bad}; variants {list(VARIANTS)}, "
                 f"models {list(MODELS)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = print
    train_clips, heldout, source = load_data(args.data_dir, log)
    meta = meta_of(args, source)
    print("codebook usage | " + ", ".join(f"{k} {v}" for k, v in meta.items()
                                          if k not in ("argv", "code_sha256")))
    results = {"meta": meta, "models": {}}
    for key in args.models:
        _, spec = build_model(key, args.quick)
        segment = int(round(args.segment_seconds * spec.sample_rate / spec.hop_length)) \
            * spec.hop_length
        window = heldout_window(heldout, segment)
        frames_per_crop = segment // spec.hop_length
        available = window.shape[0] * frames_per_crop
        want = args.window_codebooks * spec.codebook_size
        take = min(window.shape[0], math.ceil(want / frames_per_crop))
        # evenly spaced over the held-out set (every voice and sentence), in a fixed order
        window = window[torch.linspace(0, window.shape[0] - 1, take).round().long()]
        entry = {"description": MODELS[key], "sample_rate": spec.sample_rate,
                 "hop_length": spec.hop_length, "frame_rate": spec.sample_rate / spec.hop_length,
                 "latent_dim": spec.latent_dim, "num_quantizers": spec.num_quantizers,
                 "codebook_size": spec.codebook_size, "config": spec.config,
                 "segment_samples": segment, "heldout_frames_available": available,
                 "eval_crops": window.shape[0],
                 "eval_frames": window.shape[0] * frames_per_crop, "results": []}
        print(f"\n== model {key}: {MODELS[key]}; {spec.num_quantizers} x {spec.codebook_size} "
              f"codes, {spec.latent_dim}-d at {entry['frame_rate']:.1f} Hz; usage over "
              f"{entry['eval_frames']} held-out frames ({available} available) ==")
        for variant in args.variants:
            why = unavailable(variant)
            if why:
                print(f"  {key} {variant:<14} skipped: {why}")
                entry["results"].append({"variant": variant, "implementation":
                                         VARIANTS[variant][0], "options": VARIANTS[variant][1],
                                         "skipped": why})
                continue
            entry["results"].append(run_variant(key, variant, args, train_clips, window, log))
            if args.out:  # partial results survive an interrupted run
                _write(args.out, {**results, "models": {**results["models"], key: entry}})
        results["models"][key] = entry
    meta["loadavg_end"] = os.getloadavg()
    if args.out:
        _write(args.out, results)
        print(f"\nwrote {args.out}")
    return results


def _write(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
