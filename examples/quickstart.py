"""Quickstart: train a ResidualVQ on correlated latents and print what it achieves.

Run: ``python examples/quickstart.py`` (a few seconds on a laptop CPU).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from rvq_blocks import ResidualVQ


def latents(batch: int, dim: int, frames: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth, correlated ``(B, D, T)`` latents: a first-order autoregressive process."""
    noise = torch.randn(batch, dim, frames, generator=generator)
    mix = torch.randn(dim, dim, generator=generator) / math.sqrt(dim)
    out = torch.empty_like(noise)
    out[..., 0] = noise[..., 0]
    for t in range(1, frames):
        out[..., t] = 0.9 * out[..., t - 1] + math.sqrt(1 - 0.81) * noise[..., t]
    return torch.einsum("ed,bdt->bet", mix, out)


def snr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    return 10 * math.log10(x.pow(2).sum().item() / (x - y).pow(2).sum().clamp_min(1e-12).item())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--num-quantizers", type=int, default=8)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--frame-rate", type=float, default=50.0, help="frames per second")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    rvq = ResidualVQ(args.dim, args.num_quantizers, args.codebook_size)
    pool = latents(256, args.dim, 100, g)  # training sequences, drawn from below
    held_out = latents(8, args.dim, 100, g)
    print(f"ResidualVQ: {args.num_quantizers} x {args.codebook_size} codes of dim {args.dim}, "
          f"{rvq.bits_per_frame():.0f} bits/frame = "
          f"{rvq.bitrate(args.frame_rate) / 1000:.2f} kbps at {args.frame_rate:g} frames/s")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        rvq.train()
        out = rvq(pool[torch.randint(0, len(pool), (8,), generator=g)])
        if step == 1 or step % 50 == 0:
            rvq.eval()
            codes = rvq.encode(held_out)
            snr = [snr_db(held_out, rvq.decode(codes[:, :n])) for n in (1, 2, 4,
                                                                         args.num_quantizers)]
            print(f"step {step:4d}  vq loss {out.loss.item():.4f}  held-out SNR by stages "
                  f"1/2/4/{args.num_quantizers}: " + " / ".join(f"{s:5.2f}" for s in snr)
                  + " dB")
    usage = rvq.codebook_usage()
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")
    print("codes in use per stage:   " + " ".join(f"{u:.2f}" for u in usage.codes_used.tolist()))
    print("perplexity per stage:     " + " ".join(f"{p:.0f}" for p in usage.perplexity.tolist()))


if __name__ == "__main__":
    main()
