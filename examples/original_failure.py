"""Reproduce the original codec failure and its fix on a tiny random codec, side by side.

The failing recipe: a learnable output scale initialised at 3.0 and applied *after* the tanh
(``y = 3.0 * tanh(h)``), and fixed loss weights ``2.0 * recon + 0.1 * percept + vq`` with a
"perceptual" loss on raw, unnormalised STFT magnitudes (MSE). Three runs of the same seeded codec:

* ``original``:  ``3.0 * tanh(h)``, ``2.0 * recon + 0.1 * percept + vq``;
* ``head+bal``:  ``ScaledTanhHead(init_scale=1.0)`` and ``LossBalancer`` over the *same* recon
  and percept losses (weights 2.0 and 0.1 read as gradient fractions), vq added outside;
* ``library``:   ``ScaledTanhHead`` + ``LossBalancer`` over L1, ``rms_scale_loss`` and
  ``MultiScaleMelLoss``.

Run: ``python examples/original_failure.py`` (under a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import math

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


class TinyCodec(nn.Module):
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


def run(recipe: str, steps: int, batch: int, samples: int) -> dict[str, float]:
    torch.manual_seed(0)
    head = ScaleAfterTanh() if recipe == "original" else ScaledTanhHead(init_scale=1.0)
    model = TinyCodec(head)
    mel = MultiScaleMelLoss(SR, window_lengths=(64, 256, 1024), n_mels=(10, 40, 80))
    if recipe == "original":  # static weights: a plain weighted sum, with share monitoring
        balancer = LossBalancer({"recon": 2.0, "percept": 0.1}, balance_grads=False)
    elif recipe == "head+bal":
        balancer = LossBalancer({"recon": 2.0, "percept": 0.1})
    else:
        balancer = LossBalancer({"recon": 1.0, "scale": 1.0, "percept": 2.0})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    out: dict[str, float] = {}
    for step in range(1, steps + 1):
        x = speech_like(batch, samples, g)
        y, vq = model(x)
        recon = F.l1_loss(y, x)
        if recipe == "library":
            losses = {"recon": recon, "scale": rms_scale_loss(y, x), "percept": mel(y, x)}
        else:
            losses = {"recon": recon, "percept": naive_percept(y, x)}
        opt.zero_grad()
        balancer.backward(losses, y, unbalanced={"vq": vq})
        opt.step()
        if step == 1:
            m = balancer.metrics
            weighted = sum(w * m[f"{k}/value"] for k, w in balancer.weights.items())
            out.update(loss1=weighted + m["vq/value"], recon1=m["recon/value"],
                       percept1=m["percept/value"],
                       share1=m["percept/share"], lo1=y.min().item(), hi1=y.max().item(),
                       sat1=ScaledTanhHead.saturation(y).item())
    model.eval()
    with torch.no_grad():
        x = speech_like(16, samples, torch.Generator().manual_seed(2))
        y, _ = model(x)
        rms = (y.std(-1) / x.std(-1)).mean().item()
        out.update(recon=F.l1_loss(y, x).item(), mel=mel(y, x).item(), rms_ratio=rms,
                   lo=y.min().item(), hi=y.max().item(), x_lo=x.min().item(), x_hi=x.max().item(),
                   sat=ScaledTanhHead.saturation(y).item())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4096)
    args = parser.parse_args()
    recipes = ("original", "head+bal", "library")
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
