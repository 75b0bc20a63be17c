"""Mixed precision: under bf16 autocast the quantizer's lookup and state stay float32, every
block runs forward and backward without dtype errors, and the codes equal float32's."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rvq_blocks import (
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    ResidualVQ,
    ScaledTanhHead,
    multi_resolution_stft_loss,
    rms_scale_loss,
)

RVQ_OPTIONS = [
    {},
    {"use_cosine": True},
    {"codebook_dim": 4},
    {"ema": False},
    {"ema": False, "codebook_dim": 4},
    {"gradient_estimator": "rotation"},
    {"gradient_estimator": "rotation", "codebook_dim": 4},
    {"joint_refine": True},
    {"beam_size": 2},
    {"quantizer_dropout": 0.5},
]
IDS = [",".join(map(str, o)) or "default" for o in RVQ_OPTIONS]


def _autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("options", RVQ_OPTIONS, ids=IDS)
def test_residual_vq_under_autocast_equals_float32_and_keeps_float32_state(options):
    torch.manual_seed(0)
    enc = nn.Conv1d(1, 8, 4, stride=4)
    ref = ResidualVQ(8, 3, 16, **options)
    amp = copy.deepcopy(ref)
    for step in range(3):
        wav = torch.randn(2, 1, 128)
        with _autocast():
            z = enc(wav)  # bf16 latents, as a bf16 encoder would give
        assert z.dtype == torch.bfloat16
        zr = z.detach().float().requires_grad_(True)  # the same values, in float32
        za = z.detach().requires_grad_(True)
        torch.manual_seed(step)
        out_ref = ref(zr)
        torch.manual_seed(step)
        with _autocast():
            out_amp = amp(za)
            loss = out_amp.quantized.float().square().mean() + out_amp.loss
        # the same codes as float32 on the same input, in training (state updates included)
        assert torch.equal(out_amp.indices, out_ref.indices)
        assert out_amp.quantized.dtype == torch.bfloat16  # the input's dtype
        assert out_amp.loss.dtype == torch.float32
        loss.backward()
        assert za.grad is not None and za.grad.dtype == torch.bfloat16
        assert torch.isfinite(za.grad.float()).all()
        (out_ref.quantized.square().mean() + out_ref.loss).backward()
    for name, buf in amp.named_buffers():
        if buf.is_floating_point():
            assert buf.dtype == torch.float32, name
            torch.testing.assert_close(buf, dict(ref.named_buffers())[name], msg=name)
    for name, p in amp.named_parameters():
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
        # the gradient reaching the projections passes the bf16 ``quantized``: bf16 rounding
        torch.testing.assert_close(p.grad, dict(ref.named_parameters())[name].grad, msg=name,
                                   rtol=2e-2, atol=2e-3)
    amp.eval()
    ref.eval()
    x = torch.randn(2, 8, 40)
    with _autocast():
        codes = amp.encode(x)
        assert torch.equal(amp(x).indices, codes)
    assert torch.equal(codes, ref.encode(x))
    assert amp.decode(codes).dtype == torch.float32


def test_half_precision_input_codes_equal_float32_of_the_same_values():
    rvq = ResidualVQ(8, 3, 16)
    rvq(torch.randn(4, 8, 50))
    rvq.eval()
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.randn(2, 8, 40).to(dtype)
        out = rvq(x)
        assert out.quantized.dtype == dtype
        assert torch.equal(out.indices, rvq(x.float()).indices)


@pytest.mark.parametrize("options", [{}, {"channels": 2, "parametrization": "exp"},
                                     {"parametrization": "softplus"}, {"learnable": False}])
def test_scaled_tanh_under_autocast(options):
    head = ScaledTanhHead(**options)
    x = torch.randn(2, 2, 64, requires_grad=True)
    with _autocast():
        h = nn.functional.conv1d(x, torch.randn(2, 2, 1))  # bf16 under autocast
        y = head(h)
    assert y.dtype == torch.bfloat16
    assert y.float().abs().max() < 1
    y.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if head.learnable:
        assert head.raw_scale.grad is not None and head.raw_scale.grad.dtype == torch.float32


@pytest.mark.parametrize("loss_fn", [
    lambda p, t: rms_scale_loss(p, t, domain="db"),
    lambda p, t: multi_resolution_stft_loss(p, t, fft_sizes=(64, 128)),
    MultiResolutionSTFTLoss(fft_sizes=(64, 128)),
    MultiScaleMelLoss(16000, window_lengths=(64, 256), n_mels=(8, 32)),
], ids=["rms", "stft_fn", "stft", "mel"])
def test_losses_under_autocast_match_float32(loss_fn):
    torch.manual_seed(0)
    pred = torch.randn(2, 1, 1000)
    target = torch.randn(2, 1, 1000)
    ref = loss_fn(pred, target)
    p16 = pred.to(torch.bfloat16).requires_grad_(True)
    with _autocast():
        out = loss_fn(p16, target.to(torch.bfloat16))
    assert out.dtype == torch.float32 and torch.isfinite(out)
    out.backward()
    assert p16.grad.dtype == torch.bfloat16 and torch.isfinite(p16.grad.float()).all()
    # bf16 inputs carry ~3 significant digits; the loss is computed in float32 from them
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)


def test_balancer_with_mixed_dtype_losses_under_autocast():
    x = torch.randn(2, 1, 64, requires_grad=True)
    bal = LossBalancer({"a": 1.0, "b": 1.0})
    with _autocast():
        y = nn.functional.conv1d(x, torch.randn(1, 1, 3), padding=1)  # bf16
        losses = {"a": y.abs().mean(), "b": rms_scale_loss(y, torch.randn(2, 1, 64))}
    assert {v.dtype for v in losses.values()} == {torch.bfloat16, torch.float32}
    eff = bal.backward(losses, y)
    assert eff.dtype == torch.float32 and torch.isfinite(eff)
    assert bal.norm_ema_sum.dtype == torch.float32 and torch.isfinite(bal.norm_ema_sum).all()
    assert x.grad is not None and torch.isfinite(x.grad).all()
