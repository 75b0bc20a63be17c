"""Gradient checks you can point at your own model.

Finite differences cannot check a quantizer directly: its value is piecewise constant, while
the straight-through estimator promises an identity gradient. :func:`check_gradients` therefore
checks each :class:`~rvq_blocks.ResidualVQ` inside a model for the exact identity, then runs
``torch.autograd.gradcheck`` (float64) on the whole model with every quantizer replaced by its
linearisation ``q(x) = q(x0) + (x - x0)`` around the example input: the function whose true
derivative is the one the straight-through estimator claims (codes held fixed, codebook losses,
which are stop-gradient functions of the input by design, held at their value at ``x0``).
Every other block, and the commitment losses, are checked as they are.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from rvq_blocks import ResidualVQ
    >>> from rvq_blocks.testing import check_gradients
    >>> model = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), ResidualVQ(4, 2, 8))
    >>> results = check_gradients(model, torch.randn(1, 1, 6))
    >>> all(r.passed for r in results)
    True
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .residual_vq import ResidualVQ

__all__ = ["CheckResult", "check_gradients", "check_straight_through",
           "check_commitment_gradients", "check_codebook_gradients", "forced_codes",
           "run_gradcheck"]


@dataclass(frozen=True)
class CheckResult:
    """One gradient check: its name, whether it passed, and what was measured."""

    name: str
    passed: bool
    detail: str


@contextlib.contextmanager
def forced_codes(rvq: ResidualVQ, codes: Tensor) -> Iterator[None]:
    """Within the block, ``rvq`` uses ``codes`` ``(B, n, T)`` instead of searching for codes,
    so its losses are smooth functions of the input (for finite differences); the same as
    ``rvq.forced_codes(codes)``."""
    with rvq.forced_codes(codes):
        yield


def _float_outputs(out: object) -> tuple[Tensor, ...]:
    """The floating-point tensors of a model's output (a tensor, tuple or NamedTuple)."""
    items = out if isinstance(out, tuple | list) else (out,)
    return tuple(t for t in items if isinstance(t, Tensor) and t.is_floating_point())


def run_gradcheck(name: str, fn: Callable[..., object], *inputs: Tensor,
                  atol: float = 1e-6, rtol: float = 1e-4) -> CheckResult:
    """``torch.autograd.gradcheck`` of ``fn`` at float64 ``inputs``, reported, never raised."""
    inputs = tuple(t.detach().double().requires_grad_(True) for t in inputs)
    try:
        ok = torch.autograd.gradcheck(lambda *a: _float_outputs(fn(*a)), inputs, eps=1e-6,
                                      atol=atol, rtol=rtol, fast_mode=True)
        return CheckResult(name, bool(ok), "analytic == finite differences (float64)")
    except RuntimeError as err:  # gradcheck reports a mismatch as a RuntimeError
        return CheckResult(name, False, str(err).splitlines()[0])


def check_straight_through(rvq: ResidualVQ, x: Tensor, name: str = "straight-through") \
        -> CheckResult:
    """``d quantized / d x`` is exactly the identity: the VJP of a random ``v`` returns ``v``."""
    x = x.detach().to(rvq.codebook.dtype).requires_grad_(True)
    v = torch.randn_like(x)
    (grad,) = torch.autograd.grad(rvq(x).quantized, x, v)
    err = (grad - v).abs().max().item()
    return CheckResult(name, err == 0.0, f"max |v^T J - v| = {err:.3g} (exact 0 expected)")


def check_commitment_gradients(rvq: ResidualVQ, x: Tensor, name: str = "commitment") \
        -> CheckResult:
    """Every stage's commitment loss reaches the input, with a non-zero gradient."""
    x = x.detach().to(rvq.codebook.dtype).requires_grad_(True)
    out = rvq(x)
    norms = []
    for k in range(out.commitment_loss.shape[0]):
        (grad,) = torch.autograd.grad(out.commitment_loss[k], x, retain_graph=True)
        norms.append(grad.norm().item())
    ok = all(n > 0 for n in norms)
    return CheckResult(name, ok, "per-stage |grad| = " + ", ".join(f"{n:.2g}" for n in norms))


def check_codebook_gradients(rvq: ResidualVQ, x: Tensor, name: str = "codebook loss") \
        -> CheckResult:
    """With learned codebooks, stage ``k``'s codebook loss moves stage ``k``'s codes only."""
    if rvq.ema:
        return CheckResult(name, True, "EMA codebooks learn without gradients (skipped)")
    out = rvq(x.detach().to(rvq.codebook.dtype))
    stages = []
    for k in range(out.codebook_loss.shape[0]):
        (grad,) = torch.autograd.grad(out.codebook_loss[k], rvq.codebook, retain_graph=True)
        own = grad[k].abs().sum().item()
        others = grad.abs().sum().item() - own
        stages.append(own > 0 and others == 0)
    return CheckResult(name, all(stages), f"{sum(stages)}/{len(stages)} stages get exactly "
                                          "their own codebook gradient")


def check_gradients(module: nn.Module, example_input: Tensor, *, atol: float = 1e-6,
                    rtol: float = 1e-4) -> list[CheckResult]:
    """Float64 gradient checks of a whole assembly, quantizers included.

    Works on a float64 copy in eval mode, so ``module`` and its codebooks are never changed.

    Args:
        module: Any model; its output may be a tensor or a tuple/NamedTuple of tensors.
        example_input: One input batch, e.g. ``(B, C, S)`` audio for a codec.
        atol: Absolute tolerance of ``gradcheck``.
        rtol: Relative tolerance of ``gradcheck``.

    Returns:
        One :class:`CheckResult` per check: the straight-through identity of every
        ``ResidualVQ`` inside (at the input it actually sees), then ``gradcheck`` of the model.
    """
    model = copy.deepcopy(module).double().eval()
    x = example_input.detach().double()
    quantizers = [(n or "model", m) for n, m in model.named_modules() if isinstance(m, ResidualVQ)]
    seen: dict[str, tuple[Tensor, Tensor, Tensor]] = {}

    def recorder(name: str) -> Callable[[nn.Module, tuple[Tensor, ...], object], None]:
        def hook(mod: nn.Module, args: tuple[Tensor, ...], out: object) -> None:
            seen[name] = (args[0].detach(), out.indices.detach(),  # type: ignore[attr-defined]
                          out.codebook_loss.detach())  # type: ignore[attr-defined]
        return hook

    handles = [m.register_forward_hook(recorder(n)) for n, m in quantizers]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    results = []
    for name, m in quantizers:
        if m.gradient_estimator == "ste":
            results.append(check_straight_through(m, seen[name][0], f"{name}: straight-through"))
        results.append(check_commitment_gradients(m, seen[name][0], f"{name}: commitment"))

    def linearised(name: str) -> tuple[Callable[[nn.Module, tuple[Tensor, ...], object],
                                                object], Tensor]:
        x0, codes, codebook_loss0 = seen[name]

        def hook(mod: nn.Module, args: tuple[Tensor, ...], out: object) -> object:
            # The codebook loss is a stop-gradient function of the input by design: hold it
            # at its value at x0 so that finite differences see what the gradient claims.
            loss = out.loss - out.codebook_loss.mean() + codebook_loss0.mean()  # type: ignore
            return out._replace(quantized=out.quantized.detach() + (args[0] - x0),  # type: ignore
                                loss=loss, codebook_loss=codebook_loss0)
        return hook, codes

    with contextlib.ExitStack() as stack:
        for name, m in quantizers:
            hook, codes = linearised(name)
            stack.callback(m.register_forward_hook(hook).remove)
            stack.enter_context(forced_codes(m, codes))
        results.append(run_gradcheck("gradcheck (quantizers linearised)", model, x,
                                     atol=atol, rtol=rtol))
    return results
