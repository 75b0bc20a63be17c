"""torch.compile: graph-break counts of every public block, and compiled == eager.

The counts are part of the documented contract (docs/reliability.md): a change that adds a
graph break fails here. Matching runs use ``backend="eager"`` (dynamo tracing only) or
``"aot_eager"`` (plus AOTAutograd, so the backward is traced too); inductor's code generation
is slow on a small CPU and would prove nothing more about the library's graphs.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import RVQ_OPTIONS, option_id, rvq_input

from rvq_blocks import (
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    ResidualVQ,
    RMSScaleLoss,
    ScaledTanhHead,
)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _breaks(fn, *args) -> int:
    return torch._dynamo.explain(fn)(*args).graph_break_count


@pytest.mark.parametrize("options", RVQ_OPTIONS, ids=option_id)
def test_residual_vq_has_no_graph_break_and_matches_eager(options):
    rvq = ResidualVQ(8, 3, 16, **options)
    x = rvq_input(rvq)
    rvq(x)  # k-means init (a one-off host sync) before tracing
    assert _breaks(rvq, x) == 0  # training: lookup, losses, EMA update and revival
    rvq.eval()
    assert _breaks(rvq, x) == 0
    assert _breaks(rvq.encode, x) == 0
    compiled = torch.compile(rvq, backend="eager", fullgraph=True)
    out, ref = compiled(x), rvq(x)
    assert torch.equal(out.indices, ref.indices)
    torch.testing.assert_close(out.quantized, ref.quantized)
    # training, with the backward through AOTAutograd: same codes, gradients and EMA state
    eager, traced = copy.deepcopy(rvq).train(), copy.deepcopy(rvq).train()
    compiled = torch.compile(traced, backend="aot_eager", fullgraph=True)
    xe, xc = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    torch.manual_seed(1)
    oe = eager(xe)
    torch.manual_seed(1)
    oc = compiled(xc)
    assert torch.equal(oe.indices, oc.indices)
    (oe.quantized.square().sum() + oe.loss).backward()
    (oc.quantized.square().sum() + oc.loss).backward()
    torch.testing.assert_close(xc.grad, xe.grad)
    for (name, a), b in zip(eager.state_dict().items(), traced.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(b, a, msg=name)


def test_residual_vq_documented_graph_breaks():
    rvq = ResidualVQ(8, 3, 16, quantizer_dropout=0.5)
    x = torch.randn(2, 8, 30)
    rvq(x)
    assert _breaks(rvq, x) == 1  # the quantizer-dropout draw decides the number of stages
    assert _breaks(lambda v: rvq(v, n_quantizers=2), x) == 0  # a fixed n does not break
    rvq.eval()
    codes = rvq.encode(x)
    assert _breaks(rvq.decode, codes) == 0  # the host-side range check is eager-only


def test_scaled_tanh_and_losses_compile_without_break_and_match():
    wav = torch.randn(2, 1, 1200)
    target = torch.randn(2, 1, 1200)
    blocks = {
        "tanh": (ScaledTanhHead(channels=1, parametrization="exp"), (wav,)),
        "rms": (RMSScaleLoss(domain="db"), (wav, target)),
        "stft": (MultiResolutionSTFTLoss(fft_sizes=(64, 256)), (wav, target)),
        "mel": (MultiScaleMelLoss(16000, window_lengths=(64, 256), n_mels=(8, 32)),
                (wav, target)),
    }
    for name, (block, args) in blocks.items():
        assert _breaks(block, *args) == 0, name
        compiled = torch.compile(block, backend="aot_eager", fullgraph=True)
        pe, pc = args[0].clone().requires_grad_(True), args[0].clone().requires_grad_(True)
        ref, out = block(pe, *args[1:]), compiled(pc, *args[1:])
        torch.testing.assert_close(out, ref, msg=name)
        ref.sum().backward()
        out.sum().backward()
        torch.testing.assert_close(pc.grad, pe.grad, msg=name)


def test_balancer_backward_works_on_a_compiled_model():
    """The balancer itself runs eagerly (autograd.grad, one host read by design); it must
    accept the outputs of a compiled model."""
    head = ScaledTanhHead()
    compiled = torch.compile(head, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 1, 64, requires_grad=True)
    y = compiled(x)
    balancer = LossBalancer({"l1": 1.0, "l2": 1.0})
    balancer.backward({"l1": y.abs().mean(), "l2": 100 * y.square().mean()}, y)
    assert x.grad is not None and torch.isfinite(x.grad).all()
