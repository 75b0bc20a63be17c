"""Float64 gradient checks of every block shipped: ``python -m rvq_blocks.gradcheck``.

Prints a pass/fail table and exits non-zero if any check fails, so it runs the same on an
installed copy as in the repository (``pytest -m gradcheck`` there).
"""


from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .balancer import LossBalancer
from .complex_stft import complex_stft_loss
from .istft_head import ISTFTHead
from .outputs import RVQOutput
from .residual_vq import ResidualVQ
from .rms_loss import rms_scale_loss
from .scaled_tanh import ScaledTanhHead
from .spectral import multi_resolution_stft_loss, multi_scale_mel_loss
from .testing import (
    CheckResult,
    check_codebook_gradients,
    check_commitment_gradients,
    check_gradients,
    check_straight_through,
    forced_codes,
    run_gradcheck,
)

_HELP = """Float64 gradient checks of every rvq_blocks block on this installation.
Prints a pass/fail table; the exit status is 1 if any check fails."""

_RVQ_CONFIGS: dict[str, dict[str, Any]] = {
    "ema": {},
    "learned": {"ema": False},
    "factorized-cosine": {"codebook_dim": 2, "use_cosine": True},
    "beam": {"beam_size": 4},
    "rotation": {"gradient_estimator": "rotation"},
}


class _TinyCodec(nn.Module):
    """Conv encoder -> ResidualVQ -> conv decoder -> ScaledTanhHead, for the assembly check."""

    def __init__(self, rvq: ResidualVQ) -> None:
        super().__init__()
        self.encoder = nn.Conv1d(1, rvq.dim, 4, stride=2, padding=1)
        self.rvq = rvq
        self.decoder = nn.ConvTranspose1d(rvq.dim, 1, 4, stride=2, padding=1)
        self.head = ScaledTanhHead()

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.rvq(self.encoder(audio))
        return self.head(self.decoder(out.quantized)), out.loss


def _rvq_checks() -> Iterator[CheckResult]:
    for name, options in _RVQ_CONFIGS.items():
        torch.manual_seed(0)
        rvq = ResidualVQ(4, 3, 8, **options).double()
        rvq(torch.randn(2, 4, 64, dtype=torch.float64))  # k-means init and one update
        rvq.train(rvq.beam_size == 1)  # the beam search runs in eval
        x = torch.randn(2, 4, 16, dtype=torch.float64)
        if rvq.gradient_estimator == "ste":
            yield check_straight_through(rvq, x, f"ResidualVQ[{name}] straight-through = I")
        yield check_commitment_gradients(rvq, x, f"ResidualVQ[{name}] every stage's commitment")
        if not rvq.ema:
            yield check_codebook_gradients(rvq, x, f"ResidualVQ[{name}] codebook loss")
        rvq.eval()
        yield run_gradcheck(f"ResidualVQ[{name}] loss (codes fixed)",
                            lambda v, m=rvq: _with_forced_codes(m, v), x)


def _with_forced_codes(rvq: ResidualVQ, x: torch.Tensor) -> torch.Tensor:
    """The commitment loss as a smooth function of ``x`` with the codes held fixed."""
    with forced_codes(rvq, rvq.encode(x.detach())):
        out: RVQOutput = rvq(x)
        return out.commitment_loss


def _other_checks() -> Iterator[CheckResult]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 20)
    yield run_gradcheck("ScaledTanhHead input", ScaledTanhHead().double(), x)
    head = ScaledTanhHead(init_scale=1.7, channels=3, parametrization="softplus").double()
    yield run_gradcheck("ScaledTanhHead per-channel, positive", head, x)
    pred, target = torch.randn(3, 1, 64), torch.randn(3, 1, 64)
    yield run_gradcheck("rms_scale_loss", rms_scale_loss, pred, target)
    yield run_gradcheck("rms_scale_loss dB domain",
                        lambda p, t: rms_scale_loss(p, t, domain="db"), pred, target)
    audio, ref = torch.randn(1, 1, 512), torch.randn(1, 1, 512)
    yield run_gradcheck("multi_resolution_stft_loss", lambda p, t: multi_resolution_stft_loss(
        p, t, fft_sizes=(64, 128)), audio, ref)
    yield run_gradcheck("multi_scale_mel_loss", lambda p, t: multi_scale_mel_loss(
        p, t, 16000, window_lengths=(128, 256), n_mels=(16, 32)), audio, ref)
    yield run_gradcheck("complex_stft_loss", lambda p, t: complex_stft_loss(
        p, t, resolutions=((64, 16), (128, 32))), audio, ref)
    yield run_gradcheck("ISTFTHead", ISTFTHead(4, 16, 4, max_magnitude=1e3).double(),
                        torch.randn(1, 4, 3))
    yield _balancer_check()
    torch.manual_seed(0)
    codec = _TinyCodec(ResidualVQ(4, 2, 8))
    codec.rvq(torch.randn(2, 4, 64))
    for r in check_gradients(codec, torch.randn(1, 1, 16)):
        yield CheckResult(f"codec assembly: {r.name}", r.passed, r.detail)


def _balancer_check() -> CheckResult:
    """With its norm averages frozen (eval), the gradient the balancer sends back equals the
    finite-difference derivative of ``sum_i scale_i * loss_i`` (float64 central differences)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.Tanh(),
                          nn.Conv1d(3, 1, 3, padding=1)).double()
    target = torch.randn(2, 1, 6, dtype=torch.float64)
    balancer = LossBalancer({"l2": 1.0, "l1": 3.0}, ema_decay=0.8, dtype=torch.float64)

    def losses(y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l2": (y - target).pow(2).mean(), "l1": 7 * (y - target).abs().mean()}

    for _ in range(3):  # populate the norm averages, then freeze them
        y = model(torch.randn(2, 1, 6, dtype=torch.float64))
        balancer.backward(losses(y), y)
    balancer.eval()
    x = torch.randn(2, 1, 6, dtype=torch.float64, requires_grad=True)
    y = model(x)
    balancer.backward(losses(y), y)
    assert x.grad is not None  # backward filled it
    analytic = x.grad.clone()
    w = torch.tensor([balancer.weights[k] for k in balancer.names], dtype=torch.float64)
    scales = balancer.total_norm * w / w.sum() / (balancer.eps + balancer.ema_norms)

    def surrogate(v: torch.Tensor) -> float:
        with torch.no_grad():
            values = losses(model(v))
        return float(sum(s * values[k] for s, k in zip(scales, balancer.names, strict=True)))

    numeric = torch.zeros_like(analytic)
    flat, h = x.detach().clone().view(-1), 1e-6
    for i in range(flat.numel()):
        flat[i] += h
        up = surrogate(flat.view_as(x))
        flat[i] -= 2 * h
        down = surrogate(flat.view_as(x))
        flat[i] += h
        numeric.view(-1)[i] = (up - down) / (2 * h)
    err = (analytic - numeric).abs().max().item()
    return CheckResult("LossBalancer balanced gradient", err < 1e-6 * max(1.0, numeric.abs().max()
                                                                          .item()),
                       f"max |analytic - finite differences| = {err:.2g}")


def run_all(report: Callable[[str], None] = print) -> bool:
    """Run every check, print the table, and return whether all passed."""
    torch.set_default_dtype(torch.float32)
    rows: list[CheckResult] = []
    start = time.perf_counter()
    for result in (*_rvq_checks(), *_other_checks()):
        rows.append(result)
        report(f"{'PASS' if result.passed else 'FAIL'}  {result.name:<58} {result.detail}")
    failed = [r for r in rows if not r.passed]
    report(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
           f"in {time.perf_counter() - start:.1f} s (torch {torch.__version__})")
    return not failed


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rvq-blocks-gradcheck`` and ``python -m rvq_blocks.gradcheck``."""
    prog = "python -m rvq_blocks.gradcheck" if _run_as_module() else None  # None: argv[0]
    argparse.ArgumentParser(prog=prog, description=_HELP).parse_args(argv)
    return 0 if run_all() else 1


def _run_as_module() -> bool:
    return sys.argv[0].endswith(("gradcheck.py", "__main__.py"))


if __name__ == "__main__":
    sys.exit(main())
