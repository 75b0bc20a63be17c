"""Reproduce the original codec failure and its fix on a tiny random codec, side by side.

The failing recipe: a learnable output scale initialised at 3.0 and applied *after* the tanh
(``y = 3.0 * tanh(h)``), and fixed loss weights ``2.0 * recon + 0.1 * percept + vq`` with a
"perceptual" loss on raw, unnormalised STFT magnitudes (MSE). Three runs of the same seeded codec:

* ``original``:  ``3.0 * tanh(h)``, ``2.0 * recon + 0.1 * percept + vq``;
* ``head+bal``:  ``ScaledTanhHead(init_scale=1.0)`` and ``LossBalancer`` over the *same* recon
  and percept losses (weights 2.0 and 0.1 read as gradient fractions), vq added outside;
* ``library``:   ``ScaledTanhHead`` + ``LossBalancer`` over L1, ``rms_scale_loss`` and
  ``MultiScaleMelLoss``.

The codec, its data and its training loop (:func:`train`) are also what
``benchmarks/bench_failure_modes.py`` measures, with more heads and loss recipes.

Run: ``python examples/original_failure.py`` (under a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rvq_blocks import LossBalancer, MultiScaleMelLoss, ResidualVQ, ScaledTanhHead, rms_scale_loss

SR = 16000


def speech_like(batch: int, samples: int, g: torch.Generator) -> Tensor:
    """Harmonic tones with random pitch, loudness and a syllable-rate envelope, ``(B, 1, S)``."""
    t = torch.arange(samples) / SR
    f0 = 100 + 150 * torch.rand(batch, 1, generator=g)  # (B, 1)
    wave = sum(torch.sin(2 * math.pi * k * f0 * t + 6.3 * torch.rand(batch, 1, generator=g)) / k
               for k in range(1, 8))  # (B, S)
    env = 0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t + 6.3 * torch.rand(batch, 1, generator=g))
    gain = 10 ** (-torch.rand(batch, 1, generator=g))  # 0 to -20 dB
    return (0.3 * gain * env * wave)[:, None, :]


def naive_percept(y: Tensor, x: Tensor) -> Tensor:
    """The original "perceptual" loss: MSE of raw (unnormalised) STFT magnitudes."""
    def mag(a: Tensor) -> Tensor:
        return torch.stft(a[:, 0], 2048, 512, window=torch.hann_window(2048),
                          return_complex=True).abs()
    return (mag(y) - mag(x)).square().mean()


def mel_loss() -> MultiScaleMelLoss:
    """The mel distance used for training (``library`` recipe) and for the held-out figures."""
    return MultiScaleMelLoss(SR, window_lengths=(64, 256, 1024), n_mels=(10, 40, 80))


class TinyCodec(nn.Module):
    """Two strided convolutions, a 4 x 64 ``ResidualVQ`` and a mirrored decoder, then ``head``."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(1, 32, 8, 4, 2), nn.GELU(), nn.Conv1d(32, 16, 8, 4, 2),
                                 nn.GroupNorm(1, 16))  # unit-variance latents
        self.rvq = ResidualVQ(16, 4, 64)
        self.dec = nn.Sequential(nn.ConvTranspose1d(16, 32, 8, 4, 2), nn.GELU(),
                                 nn.ConvTranspose1d(32, 32, 8, 4, 2), nn.GELU(),
                                 nn.Conv1d(32, 1, 7, padding=3))
        for m in self.dec:  # variance-preserving init: the random decoder outputs h ~ N(0, 1)
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                fan_in = m.in_channels * m.kernel_size[0] / m.stride[0]  # inputs per output
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / fan_in))
                nn.init.zeros_(m.bias)
        self.head = head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        q = self.rvq(self.enc(x))  # (B, D, T)
        return self.head(self.dec(q.quantized)), q.loss  # (B, 1, S)


class ScaleAfterTanh(nn.Module):
    """The original head: ``scale * tanh(h)`` with a learnable scale starting at 3.0."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, h: Tensor) -> Tensor:
        return self.scale * torch.tanh(h)


# head name -> constructor
HEADS: dict[str, Callable[[], nn.Module]] = {
    "scale_after_tanh": ScaleAfterTanh,  # the original run's
    "scaled_tanh": lambda: ScaledTanhHead(init_scale=1.0),
}
# loss recipe -> (LossBalancer weights, balance_grads); the VQ loss is always added outside
LOSSES: dict[str, tuple[dict[str, float], bool]] = {
    "l1": ({"recon": 1.0}, False),  # L1 + vq
    "static": ({"recon": 2.0, "percept": 0.1}, False),  # the original run's fixed weights
    "balanced": ({"recon": 2.0, "percept": 0.1}, True),  # the same, as gradient fractions
    "library": ({"recon": 1.0, "scale": 1.0, "percept": 2.0}, True),
}
# the three runs this script compares: name -> (head, loss recipe)
RECIPES = {"original": ("scale_after_tanh", "static"), "head+bal": ("scaled_tanh", "balanced"),
           "library": ("scaled_tanh", "library")}


class Step(NamedTuple):
    """One training step, as :func:`train` hands it to its ``on_step`` callback."""

    step: int  # 1-based
    x: Tensor  # the batch, (B, 1, S)
    y: Tensor  # the codec's output, detached, (B, 1, S)
    losses: dict[str, Tensor]  # the balanced losses (``recon`` is the L1 distance)
    balancer: LossBalancer


def named_losses(recipe: str, y: Tensor, x: Tensor, mel: MultiScaleMelLoss) -> dict[str, Tensor]:
    """The losses of loss recipe ``recipe`` (a key of :data:`LOSSES`) for output ``y``."""
    recon = F.l1_loss(y, x)
    if recipe == "library":
        return {"recon": recon, "scale": rms_scale_loss(y, x), "percept": mel(y, x)}
    if recipe == "l1":
        return {"recon": recon}
    return {"recon": recon, "percept": naive_percept(y, x)}


def train(head: str, losses: str, steps: int, batch: int = 4, samples: int = 4096,
          on_step: Callable[[Step], None] | None = None) -> TinyCodec:
    """Train the seeded tiny codec with one head and one loss recipe (Adam, lr 3e-3).

    Args:
        head: a key of :data:`HEADS`.
        losses: a key of :data:`LOSSES`.
        steps: training steps.
        batch: clips per step.
        samples: samples per clip.
        on_step: called after every optimizer step.

    Returns:
        The trained codec, in training mode.
    """
    torch.manual_seed(0)
    model = TinyCodec(HEADS[head]())
    mel = mel_loss()
    weights, balance_grads = LOSSES[losses]
    balancer = LossBalancer(weights, balance_grads=balance_grads)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        x = speech_like(batch, samples, g)
        y, vq = model(x)
        named = named_losses(losses, y, x, mel)
        opt.zero_grad()
        balancer.backward(named, y, unbalanced={"vq": vq})
        opt.step()
        if on_step is not None:
            on_step(Step(step, x, y.detach(), named, balancer))
    return model


@torch.no_grad()
def held_out(model: TinyCodec, samples: int = 4096) -> tuple[Tensor, Tensor]:
    """The 16 held-out clips (seed 2) and the codec's output for them, in eval mode."""
    model.eval()
    x = speech_like(16, samples, torch.Generator().manual_seed(2))
    return x, model(x)[0]


def weighted_total(balancer: LossBalancer) -> float:
    """``sum_i w_i loss_i + vq`` of the balancer's last step, from its metrics."""
    m = balancer.metrics
    return sum(w * m[f"{k}/value"] for k, w in balancer.weights.items()) + m["vq/value"]


def run(recipe: str, steps: int, batch: int, samples: int) -> dict[str, float]:
    """One of :data:`RECIPES`: the figures of its first step and of the held-out clips."""
    out: dict[str, float] = {}

    def first_step(s: Step) -> None:
        if s.step == 1:
            m = s.balancer.metrics
            out.update(loss1=weighted_total(s.balancer), recon1=m["recon/value"],
                       percept1=m["percept/value"], share1=m["percept/share"],
                       lo1=s.y.min().item(), hi1=s.y.max().item(),
                       sat1=ScaledTanhHead.saturation(s.y).item())

    model = train(*RECIPES[recipe], steps, batch, samples, on_step=first_step)
    x, y = held_out(model, samples)
    rms = (y.std(-1) / x.std(-1)).mean().item()
    out.update(recon=F.l1_loss(y, x).item(), mel=mel_loss()(y, x).item(), rms_ratio=rms,
               lo=y.min().item(), hi=y.max().item(), x_lo=x.min().item(), x_hi=x.max().item(),
               sat=ScaledTanhHead.saturation(y).item())
    return out


def main() -> None:
    """Run the three recipes and print their figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4096)
    args = parser.parse_args()
    recipes = tuple(RECIPES)
    res = {r: run(r, args.steps, args.batch, args.samples) for r in recipes}
    rows = [
        ("step 1: sum_i w_i loss_i + vq", "{loss1:.3f}"),
        ("step 1: recon L1 (raw)", "{recon1:.3f}"),
        ("step 1: percept (raw)", "{percept1:.3f}"),
        ("step 1: percept grad share at y", "{share1:.1%}"),
        ("step 1: output range", "[{lo1:+.2f}, {hi1:+.2f}]"),
        ("step 1: saturation |y| > 0.99", "{sat1:.2%}"),
        (f"step {args.steps}: output range", "[{lo:+.2f}, {hi:+.2f}]"),
        (f"step {args.steps}: held-out L1", "{recon:.4f}"),
        (f"step {args.steps}: held-out mel distance", "{mel:.3f}"),
        (f"step {args.steps}: held-out RMS ratio out/in", "{rms_ratio:.2f}"),
        (f"step {args.steps}: saturation |y| > 0.99", "{sat:.2%}"),
    ]
    x = res["original"]
    print(f"tiny random codec, seed 0, input range [{x['x_lo']:+.2f}, {x['x_hi']:+.2f}]")
    print(f"{'':40s}" + "".join(f"{r:>18s}" for r in recipes))
    for label, fmt in rows:
        print(f"{label:40s}" + "".join(f"{fmt.format(**res[r]):>18s}" for r in recipes))


if __name__ == "__main__":
    main()
