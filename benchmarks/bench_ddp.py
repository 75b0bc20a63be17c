"""Cost of ResidualVQ's cross-rank codebook sync, and bf16-vs-float32 code agreement.

1. DDP overhead (gloo, CPU, one thread per process). Time per training step (forward,
   backward, SGD step) of a small encoder + ResidualVQ + decoder, the same per-process batch in
   three runs: one process; two DDP ranks with ``ResidualVQ(sync=False)`` (DDP's gradient
   all-reduce only); two DDP ranks with the sync on (the default under torch.distributed:
   one extra all_reduce of the packed code statistics per step). ``sync / nosync`` is the
   price of the sync itself.

2. bf16 agreement: the fraction of identical codes when the quantizer sees latents rounded to
   bfloat16 (as a bf16 encoder under autocast hands them over) instead of the float32 values,
   per stage and overall, plus the same under ``torch.autocast`` with float32 latents (100% by
   construction: the lookup runs in float32).

    python -m benchmarks.bench_ddp --out benchmarks/results/ddp.json
    python -m benchmarks.bench_ddp --quick                     # seconds-long smoke run
    python -m benchmarks.bench_ddp --latents lat.pt --rvq_state rvq.pt   # real latents

``--latents``: a ``torch.save``d ``(B, D, T)`` tensor (or a dict with a ``"latents"`` entry) of
real encoder latents. ``--rvq_state``: the ``state_dict`` of a trained ``ResidualVQ``, or any
checkpoint that nests one (a model state_dict under ``"model"``, the quantizer under any
prefix such as ``"quantizer."``; the example codec's header line is skipped); sizes are read
from it, ``--use_cosine`` must match how it was trained.
Without ``--rvq_state`` the quantizer is k-means-initialised and EMA-trained on the first half
of the latents; without ``--latents`` structured synthetic latents are used, and the JSON says
which. Timings on a shared machine are noisy: the minimum over repeats is reported with the
median, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from benchmarks._common import load_average, run_meta, write_json
from rvq_blocks import ResidualVQ


class TinyCodec(nn.Module):
    """Strided conv encoder, ResidualVQ, transposed-conv decoder."""

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int,
                 sync: bool | None) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(1, dim, 8, stride=8), nn.GELU(),
                                 nn.Conv1d(dim, dim, 3, padding=1))
        self.rvq = ResidualVQ(dim, num_quantizers, codebook_size, sync=sync)
        self.dec = nn.ConvTranspose1d(dim, 1, 8, stride=8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.rvq(self.enc(x))
        return self.dec(out.quantized), out.loss


def _wrap(model: nn.Module) -> nn.Module:
    if not dist.is_initialized():
        return model
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(model, forward_sync_buffers=False)
    return DDP(model, broadcast_buffers=False)


def _time_steps(cfg: dict, sync: bool | None) -> dict:
    """Per-step times (ms) of ``cfg['repeats']`` blocks of ``cfg['steps']`` steps."""
    torch.manual_seed(0)
    rank = dist.get_rank() if dist.is_initialized() else 0
    model = _wrap(TinyCodec(cfg["dim"], cfg["num_quantizers"], cfg["codebook_size"], sync))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(cfg["batch"], 1, cfg["samples"], generator=g)

    def step() -> None:
        y, vq = model(x)
        loss = F.mse_loss(y, x) + vq
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(cfg["warmup"]):  # k-means init included here
        step()
    blocks = []
    for _ in range(cfg["repeats"]):
        if dist.is_initialized():
            dist.barrier()
        t0 = time.perf_counter()
        for _ in range(cfg["steps"]):
            step()
        if dist.is_initialized():
            dist.barrier()
        blocks.append(1e3 * (time.perf_counter() - t0) / cfg["steps"])
    blocks.sort()
    return {"min_ms": blocks[0], "median_ms": blocks[len(blocks) // 2], "blocks_ms": blocks}


def _rank_main(rank: int, world: int, init_file: str, out_file: str, cfg: dict,
               sync: bool | None) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=120))
    try:
        res = _time_steps(cfg, sync)
        if rank == 0:
            Path(out_file).write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


def run_ranks(world: int, cfg: dict, sync: bool | None) -> dict:
    """:func:`_time_steps` on ``world`` spawned gloo ranks; rank 0's timings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        mp.start_processes(_rank_main, args=(world, os.path.join(tmp, "store"), out, cfg, sync),
                           nprocs=world, join=True, start_method="spawn")
        return json.loads(Path(out).read_text())


def _merge(runs: list[dict]) -> dict:
    blocks = sorted(b for r in runs for b in r["blocks_ms"])
    return {"min_ms": blocks[0], "median_ms": blocks[len(blocks) // 2], "blocks_ms": blocks}


def ddp_overhead(cfg: dict, rounds: int) -> dict:
    """``rounds`` interleaved rounds of the three runs (load drifts hit all three alike);
    per run the minimum and median over all its blocks."""
    torch.set_num_threads(1)
    runs: dict[str, list[dict]] = {"single": [], "nosync": [], "sync": []}
    for _ in range(rounds):
        runs["single"].append(_time_steps(cfg, None))
        runs["nosync"].append(run_ranks(2, cfg, False))
        runs["sync"].append(run_ranks(2, cfg, None))
    single, nosync, synced = (_merge(runs[k]) for k in ("single", "nosync", "sync"))
    ratio = {
        "sync_over_nosync": synced["min_ms"] / nosync["min_ms"],
        "sync_over_single": synced["min_ms"] / single["min_ms"],
        "nosync_over_single": nosync["min_ms"] / single["min_ms"],
    }
    return {"config": cfg, "rounds": rounds, "single_process": single, "ddp2_nosync": nosync,
            "ddp2_sync": synced, "ratios_of_min": ratio}


# --------------------------------------------------------------------------- bf16 agreement
def synthetic_latents(batch: int, dim: int, frames: int, seed: int = 0) -> torch.Tensor:
    """Structured latents: a few slowly varying AR(1) sources mixed into ``dim`` channels,
    with a per-item gain and a little noise, ``(B, D, T)``."""
    g = torch.Generator().manual_seed(seed)
    rank = max(2, dim // 8)
    src = torch.zeros(batch, rank, frames)
    noise = torch.randn(batch, rank, frames, generator=g)
    for t in range(frames):
        src[..., t] = (0.9 * src[..., t - 1] if t else 0) + noise[..., t]
    mix = torch.randn(dim, rank, generator=g) / rank ** 0.5
    gain = torch.rand(batch, 1, 1, generator=g) * 1.5 + 0.5
    return gain * torch.einsum("dr,brt->bdt", mix, src) + 0.1 * torch.randn(
        batch, dim, frames, generator=g)


def _load_file(path: str) -> object:
    """``torch.load`` of a plain file, or of a checkpoint with a one-line text header (the
    example codec's ``RVQCKPT1 <sha256>`` line) before the payload."""
    data = Path(path).read_bytes()
    if data.startswith(b"RVQCKPT"):
        # the example's own format: it also pickles the numpy/python RNG states for --resume
        data = data[data.index(b"\n") + 1:]
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    return torch.load(io.BytesIO(data), map_location="cpu")


def _find_quantizer_state(obj: object) -> dict | None:
    """The entries of the first ResidualVQ state_dict found in ``obj`` (a state_dict, or a
    checkpoint nesting one, e.g. under ``"model"``), with their module prefix removed."""
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if isinstance(key, str) and key.endswith("codebook") and \
                isinstance(value, torch.Tensor) and value.ndim == 3:
            prefix = key[: -len("codebook")]
            return {k[len(prefix):]: v for k, v in obj.items()
                    if isinstance(k, str) and k.startswith(prefix)}
    for value in obj.values():
        found = _find_quantizer_state(value)
        if found is not None:
            return found
    return None


def _load_latents(path: str | None, quick: bool) -> tuple[torch.Tensor, str]:
    if path is None:
        b, d, t = (4, 32, 100) if quick else (16, 64, 500)
        return synthetic_latents(b, d, t), f"synthetic AR(1) mixture, (B, D, T) = ({b}, {d}, {t})"
    obj = _load_file(path)
    lat = obj["latents"] if isinstance(obj, dict) else obj
    if not isinstance(lat, torch.Tensor) or lat.ndim != 3:
        raise ValueError(f"--latents expected a (B, D, T) tensor, got "
                         f"{getattr(lat, 'shape', type(lat).__name__)}")
    return lat.float(), f"{path}, (B, D, T) = {tuple(lat.shape)}"


def _load_rvq(path: str | None, lat: torch.Tensor, args: argparse.Namespace) \
        -> tuple[ResidualVQ, str]:
    dim = lat.shape[1]
    if path is None:
        rvq = ResidualVQ(dim, args.num_quantizers, args.codebook_size)
        train = lat[: max(1, lat.shape[0] // 2)]
        for _ in range(args.train_steps):
            rvq(train)
        return rvq.eval(), (f"k-means init + {args.train_steps} EMA steps on the first half of "
                            f"the latents, {args.num_quantizers} x {args.codebook_size}")
    state = _find_quantizer_state(_load_file(path))
    if state is None:
        raise ValueError(f"--rvq_state expected a ResidualVQ state_dict (a '...codebook' entry "
                         f"of shape (Q, K, Dc)), found none in {path}")
    q, k, cdim = state["codebook"].shape
    rvq = ResidualVQ(dim, q, k, codebook_dim=cdim, ema="embed_sum" in state,
                     use_cosine=args.use_cosine)
    rvq.load_state_dict(state, strict=True)
    return rvq.eval(), f"{path}: trained state, {q} x {k}, codebook_dim {cdim}"


def bf16_agreement(args: argparse.Namespace) -> dict:
    """Code agreement between float32 latents and the same latents rounded to bfloat16."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lat, lat_note = _load_latents(args.latents, args.quick)
    rvq, rvq_note = _load_rvq(args.rvq_state, lat, args)
    held = lat[lat.shape[0] // 2:] if args.rvq_state is None and lat.shape[0] > 1 else lat
    ref = rvq.encode(held)  # (B, Q, T)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_codes = rvq.encode(held)
    bf16_codes = rvq.encode(held.to(torch.bfloat16))
    same = bf16_codes == ref  # (B, Q, T)
    prefix_same = same.cumprod(dim=1).bool()  # stages 1..k all identical
    rel = ((held.to(torch.bfloat16).float() - held).norm() / held.norm()).item()
    return {
        "latents": lat_note, "quantizer": rvq_note, "frames": int(held.shape[0] * held.shape[2]),
        "autocast_fp32_latents_identical_pct":
            100.0 * (autocast_codes == ref).float().mean().item(),
        "bf16_latents_identical_pct": 100.0 * same.float().mean().item(),
        "bf16_latents_identical_pct_per_stage": [100.0 * v for v in
                                                 same.float().mean(dim=(0, 2)).tolist()],
        "bf16_latents_all_stages_up_to_k_identical_pct": [
            100.0 * v for v in prefix_same.float().mean(dim=(0, 2)).tolist()],
        "bf16_rounding_relative_error": rel,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--latents", default=None)
    parser.add_argument("--rvq_state", default=None)
    parser.add_argument("--use_cosine", action="store_true")
    parser.add_argument("--num_quantizers", type=int, default=8)
    parser.add_argument("--codebook_size", type=int, default=256)
    parser.add_argument("--train_steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip_ddp", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--bf16_key", default="bf16",
                        help="key of the bf16 result; with --skip_ddp and an existing --out, "
                             "only this key of that file is replaced")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """The DDP timings (unless ``--skip_ddp``), then the bf16 agreement."""
    args = parse_args(argv)
    cfg = ({"dim": 32, "num_quantizers": 2, "codebook_size": 64, "batch": 2, "samples": 1024,
            "warmup": 2, "steps": 3, "repeats": 2} if args.quick else
           {"dim": 64, "num_quantizers": 8, "codebook_size": 256, "batch": 4, "samples": 8192,
            "warmup": 3, "steps": 10, "repeats": 5})
    result: dict = {"meta": run_meta(
        threads=None, platform=platform.platform(), threads_per_process=1, backend="gloo",
        note="shared 2-core machine, other jobs may run meanwhile: compare min_ms, not medians")}
    if not args.skip_ddp:
        result["ddp"] = ddp_overhead(cfg, 1 if args.quick else args.rounds)
        r = result["ddp"]
        print(f"step ms (min/median): single {r['single_process']['min_ms']:.1f}/"
              f"{r['single_process']['median_ms']:.1f}, 2 ranks no sync "
              f"{r['ddp2_nosync']['min_ms']:.1f}/{r['ddp2_nosync']['median_ms']:.1f}, "
              f"2 ranks sync {r['ddp2_sync']['min_ms']:.1f}/{r['ddp2_sync']['median_ms']:.1f}")
        print("ratios of min:", {k: round(v, 3) for k, v in r["ratios_of_min"].items()})
    if args.skip_ddp and args.out is not None and args.out.exists():
        result = json.loads(args.out.read_text())  # keep the DDP figures and their meta
    result[args.bf16_key] = bf16_agreement(args)
    b = result[args.bf16_key]
    print(f"bf16 latents: {b['bf16_latents_identical_pct']:.2f}% identical codes "
          f"(per stage {[round(v, 1) for v in b['bf16_latents_identical_pct_per_stage']]}); "
          f"autocast with float32 latents: {b['autocast_fp32_latents_identical_pct']:.2f}%")
    result["meta"]["loadavg_end"] = load_average()
    if args.out is not None:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
