from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rvq_blocks.balancer import LossBalancer


class _Tiny(nn.Module):
    """Encoder conv -> latent z -> decoder conv -> tanh: a codec in miniature."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.enc = nn.Conv1d(1, 4, 3, padding=1, dtype=dtype)
        self.dec = nn.Conv1d(4, 1, 3, padding=1, dtype=dtype)

    def forward(self, x):
        z = self.enc(x)  # (B, D, T)
        return torch.tanh(self.dec(z)), z  # (B, 1, S), (B, D, T)


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _opposite_losses(y):
    return {"a": (y - 1).abs().mean(), "b": 100 * (y + 1).abs().mean()}


def test_opposite_l1_losses_cancel_when_balanced_and_not_when_summed():
    x = torch.randn(4, 1, 16)
    model = _Tiny()
    y, _ = model(x)
    y.retain_grad()
    LossBalancer({"a": 1, "b": 1}, balance_grads=False).backward(_opposite_losses(y), y)
    assert y.grad.sum().item() == pytest.approx(99.0, rel=1e-5)  # tanh keeps |y| < 1

    y, _ = model(x)
    y.retain_grad()
    balancer = LossBalancer({"a": 1, "b": 1})
    balancer.backward(_opposite_losses(y), y)
    assert y.grad.abs().max().item() < 1e-6
    assert balancer.metrics["a/share"] == pytest.approx(0.5, abs=1e-6)


def test_shares_follow_weight_fractions_with_a_1000x_loss():
    # a codec-like run: Adam on a tiny model, fresh batches, a target with an unfittable part;
    # "percept" is 1000x larger than it would naturally be
    model = nn.Conv1d(1, 1, 9, padding=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    balancer = LossBalancer({"recon": 1.0, "percept": 3.0}, ema_decay=0.9)
    shares, natural = [], []
    for step in range(120):
        x = torch.randn(16, 1, 2048)
        target = 0.5 * x.roll(1, -1) + 0.3 * torch.randn_like(x)
        y = model(x)
        losses = {"recon": F.mse_loss(y, target), "percept": 1000 * F.l1_loss(y, target)}
        opt.zero_grad()
        balancer.backward(losses, y)
        opt.step()
        if step >= 90:  # the norm averages have settled
            m = balancer.metrics
            shares.append(m["percept/share"])
            natural.append(m["percept/grad_norm"] / (m["percept/grad_norm"]
                                                     + m["recon/grad_norm"]))
    shares = torch.tensor(shares)
    assert (shares / 0.75 - 1).abs().max() < 0.01  # percept: 3 / (1 + 3), within 1%
    assert ((1 - shares) / 0.25 - 1).abs().max() < 0.01  # recon: 1 / (1 + 3), within 1%
    assert min(natural) > 0.99  # a plain sum would hand almost everything to percept


def test_balanced_gradient_does_not_depend_on_loss_scale():
    x, target = torch.randn(4, 1, 64), torch.randn(4, 1, 64)
    grads = []
    for factor in (1.0, 1000.0):
        y = x.clone().requires_grad_(True)
        balancer = LossBalancer({"recon": 1.0, "percept": 3.0})
        balancer.backward({"recon": F.mse_loss(y, target),
                           "percept": factor * F.l1_loss(y, target)}, y)
        grads.append(y.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_first_step_is_not_amplified():
    # a bias-corrected EMA uses the first norm as is: the first balanced gradient has the
    # target norm, not 1 / (1 - decay) = 1000 times it
    y = torch.randn(8, 1, 64, requires_grad=True)
    balancer = LossBalancer({"recon": 1.0}, total_norm=2.0, ema_decay=0.999)
    balancer.backward({"recon": 1e-3 * y.square().mean()}, y)
    assert y.grad.flatten(1).norm(dim=1).mean().item() == pytest.approx(2.0, rel=1e-4)
    assert balancer.metrics["recon/ema_norm"] == pytest.approx(
        balancer.metrics["recon/grad_norm"], rel=1e-6)


def _codec_losses(y, z, target):
    return {
        "recon": F.l1_loss(y, target),
        "scale": (y.std(-1) - target.std(-1)).square().mean(),
        "percept": 100 * F.mse_loss(y, target),
        "vq": z.square().mean(),
    }


def test_static_mode_equals_hand_written_weighted_sum():
    weights = {"recon": 1.0, "scale": 1.0, "percept": 0.01, "vq": 5.0}
    x, target = torch.randn(3, 1, 32), torch.randn(3, 1, 32)
    model = _Tiny()
    y, z = model(x)
    losses = _codec_losses(y, z, target)
    value = sum(weights[k] * losses[k] for k in weights)
    value.backward()
    expected = _grads(model)
    model.zero_grad()
    y, z = model(x)
    out = LossBalancer(weights, balance_grads=False).backward(_codec_losses(y, z, target), y)
    torch.testing.assert_close(out, value.detach())
    for got, exp in zip(_grads(model), expected, strict=True):
        torch.testing.assert_close(got, exp)


def test_unbalanced_losses_are_added_as_they_are():
    x, target = torch.randn(3, 1, 32), torch.randn(3, 1, 32)
    model = _Tiny()
    balancer = LossBalancer({"recon": 1.0, "scale": 2.0, "percept": 1.0}, ema_decay=0.5)
    y, z = model(x)
    losses = _codec_losses(y, z, target)
    vq = losses.pop("vq")
    out = balancer.backward(losses, y, unbalanced={"vq": vq})
    got = _grads(model)
    m = balancer.metrics
    # reference: the same scales applied as constants, plus vq, in one ordinary backward
    model.zero_grad()
    y, z = model(x)
    ref = _codec_losses(y, z, target)
    surrogate = sum(m[f"{k}/scale"] * ref[k] for k in ("recon", "scale", "percept")) + ref["vq"]
    surrogate.backward()
    for a, b in zip(got, _grads(model), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out, surrogate.detach(), rtol=1e-5, atol=1e-6)
    assert m["vq/value"] == pytest.approx(vq.item())
    assert sum(m[f"{k}/share"] for k in ("recon", "scale", "percept")) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_loss_raises_naming_it_and_touches_nothing(bad):
    model = _Tiny()
    balancer = LossBalancer({"recon": 1.0, "percept": 1.0})
    y, z = model(torch.randn(2, 1, 16))
    losses = {"recon": y.abs().mean(), "percept": y.mean() * bad}
    with pytest.raises(FloatingPointError, match="non-finite loss percept;"):
        balancer.backward(losses, y)
    assert all(p.grad is None for p in model.parameters())
    assert balancer.norm_ema_weight.item() == 0.0


def test_nonfinite_skip_mode_reports_and_recovers():
    model = _Tiny()
    balancer = LossBalancer({"recon": 1.0}, nonfinite="skip")
    y, z = model(torch.randn(2, 1, 16))
    out = balancer.backward({"recon": y.abs().mean()}, y,
                            unbalanced={"vq": z.mean() * float("nan")})
    assert torch.isnan(out)
    assert all(p.grad is None for p in model.parameters())
    m = balancer.metrics
    assert m["skipped"] == 1.0 and m["nonfinite/vq"] == 1.0 and m["num_skipped"] == 1.0
    assert balancer.norm_ema_weight.item() == 0.0
    y, z = model(torch.randn(2, 1, 16))
    balancer.backward({"recon": y.abs().mean()}, y, unbalanced={"vq": z.square().mean()})
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert balancer.metrics["skipped"] == 0.0 and balancer.num_skipped.item() == 1


def test_nonfinite_gradient_with_finite_value_is_caught():
    y = torch.zeros(2, 1, 8, requires_grad=True)
    balancer = LossBalancer({"root": 1.0})
    with pytest.raises(FloatingPointError, match=r"non-finite loss root \(gradient\);"):
        balancer.backward({"root": y.abs().sqrt().mean()}, y)  # d sqrt|y| / dy = inf at 0
    assert y.grad is None


class _BalancedSurrogate(torch.autograd.Function):
    """Forward: sum_i scale_i * l_i(model(x)) with the frozen scales.
    Backward: whatever gradient LossBalancer.backward sends to x."""

    @staticmethod
    def forward(ctx, x, model, balancer, target):
        ctx.save_for_backward(x, target)
        ctx.model, ctx.balancer = model, balancer
        w = torch.tensor([balancer.weights[k] for k in balancer.names], dtype=x.dtype)
        scales = balancer.total_norm * w / w.sum() / (balancer.eps + balancer.ema_norms)
        with torch.no_grad():
            losses = _balanced_losses(ctx.model(x)[0], target)
        return sum(s * losses[k] for s, k in zip(scales, balancer.names, strict=True))

    @staticmethod
    def backward(ctx, grad_out):
        x, target = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            y, _ = ctx.model(xx)
            ctx.balancer.backward(_balanced_losses(y, target), y)
        return xx.grad * grad_out, None, None, None


def _balanced_losses(y, target):
    return {"recon": F.mse_loss(y, target), "percept": 7 * (y - target).abs().mean()}


@pytest.mark.gradcheck
def test_gradcheck_through_tiny_model():
    model = _Tiny(dtype=torch.float64)
    balancer = LossBalancer({"recon": 1.0, "percept": 2.0}, ema_decay=0.8, dtype=torch.float64)
    target = torch.randn(2, 1, 6, dtype=torch.float64)
    for _ in range(3):  # populate the EMA, then freeze it
        y, _ = model(torch.randn(2, 1, 6, dtype=torch.float64))
        balancer.backward(_balanced_losses(y, target), y)
    balancer.eval()
    frozen = balancer.state_dict()["norm_ema_sum"].clone()
    x = torch.randn(2, 1, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: _BalancedSurrogate.apply(x, model, balancer, target), (x,))
    torch.testing.assert_close(balancer.norm_ema_sum, frozen)  # eval() froze the EMA


def test_state_dict_round_trip_resumes_training():
    x, target = torch.randn(3, 1, 32), torch.randn(3, 1, 32)
    weights = {"recon": 1.0, "percept": 0.5}
    balancer = LossBalancer(weights, ema_decay=0.9)
    model = _Tiny()
    for _ in range(3):
        y, _ = model(torch.randn(3, 1, 32))
        balancer.backward(_balanced_losses(y, target), y)
    restored = LossBalancer(weights, ema_decay=0.9)
    restored.load_state_dict(balancer.state_dict(), strict=True)
    torch.testing.assert_close(restored.ema_norms, balancer.ema_norms)
    grads = []
    for b in (balancer, restored):
        model.zero_grad()
        y, _ = model(x)
        b.backward(_balanced_losses(y, target), y)
        grads.append(_grads(model))
    for a, c in zip(*grads, strict=True):
        torch.testing.assert_close(a, c)
    with pytest.raises(ValueError, match=r"holds losses \['recon', 'percept'\]"):
        LossBalancer({"recon": 1.0, "mel": 1.0}).load_state_dict(balancer.state_dict())


def test_injected_reduce_fn_averages_norms():
    calls = []

    def reduce_fn(t):
        calls.append(t.shape)
        return 3 * t  # as if the other ranks saw larger gradients

    y = torch.randn(4, 1, 16, requires_grad=True)
    balancer = LossBalancer({"a": 1.0, "b": 1.0}, reduce_fn=reduce_fn)
    balancer.backward({"a": y.square().mean(), "b": y.abs().mean()}, y)
    m = balancer.metrics
    assert calls == [torch.Size([3])]  # the two norms and the non-finite flag
    assert m["a/ema_norm"] == pytest.approx(3 * m["a/grad_norm"], rel=1e-5)


def test_default_reduce_uses_distributed_only_when_initialised(monkeypatch):
    import torch.distributed as dist

    y = torch.randn(4, 1, 16, requires_grad=True)
    balancer = LossBalancer({"a": 1.0})
    balancer.backward({"a": y.square().mean()}, y)  # not initialised: no collective
    assert balancer.metrics["a/ema_norm"] == pytest.approx(balancer.metrics["a/grad_norm"])

    def fake_all_reduce(t, op=None):
        t.mul_(4.0)  # this rank's value plus a peer holding 3x

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    balancer = LossBalancer({"a": 1.0})
    y.grad = None
    balancer.backward({"a": y.square().mean()}, y)
    assert balancer.metrics["a/ema_norm"] == pytest.approx(2 * balancer.metrics["a/grad_norm"])


def test_metrics_record():
    y = torch.randn(4, 1, 16, requires_grad=True)
    balancer = LossBalancer({"a": 1.0, "b": 3.0})
    assert balancer.metrics == {}
    balancer.backward({"a": y.square().mean(), "b": 50 * y.abs().mean()}, y)
    m = balancer.metrics
    for k in ("a", "b"):
        assert {f"{k}/{f}" for f in ("value", "weight", "scale", "grad_norm", "ema_norm",
                                     "share")} <= m.keys()
    assert m["b/weight"] == 3.0 and m["b/share"] == pytest.approx(0.75, rel=1e-5)
    assert m["b/value"] == pytest.approx(50 * y.abs().mean().item(), rel=1e-6)
    assert m["total"] == pytest.approx(m["a/scale"] * m["a/value"] + m["b/scale"] * m["b/value"],
                                       rel=1e-5)


def test_bad_inputs():
    y = torch.randn(2, 1, 8, requires_grad=True)
    balancer = LossBalancer({"recon": 1.0, "percept": 1.0})
    with pytest.raises(ValueError, match=r"\['percept', 'recon'\].*got \['mel', 'recon'\]"):
        balancer.backward({"recon": y.mean(), "mel": y.mean()}, y)
    with pytest.raises(ValueError, match="'percept' to be a scalar tensor, got \\(2, 1, 8\\)"):
        balancer.backward({"recon": y.mean(), "percept": y}, y)
    with pytest.raises(ValueError, match=r"\['percept'\] do not depend on output"):
        balancer.backward({"recon": y.mean(), "percept": torch.ones((), requires_grad=True)}, y)
    with pytest.raises(ValueError, match="needs the model output"):
        balancer.backward({"recon": y.mean(), "percept": y.mean()})
    with pytest.raises(ValueError, match=r"unbalanced losses \['recon'\]"):
        balancer.backward({"recon": y.mean(), "percept": y.mean()}, y,
                          unbalanced={"recon": y.mean()})
    for kwargs, match in (({"weights": {}}, "at least one"),
                          ({"weights": {"a": -1.0}}, "weights >= 0"),
                          ({"weights": {"a": 0.0}}, "positive sum"),
                          ({"weights": {"a": 1.0}, "total_norm": 0.0}, "total_norm > 0"),
                          ({"weights": {"a": 1.0}, "ema_decay": 1.0}, r"ema_decay in \[0, 1\)"),
                          ({"weights": {"a": 1.0}, "nonfinite": "ignore"}, "nonfinite in")):
        with pytest.raises(ValueError, match=match):
            LossBalancer(**kwargs)
    with pytest.raises(TypeError, match="mapping"):
        LossBalancer([("a", 1.0)])
    for weights in ({1: 1.0}, {"a": True}, {"a": "1"}):  # each part of the check alone
        with pytest.raises(TypeError, match="str -> float weights"):
            LossBalancer(weights)


def test_mixed_precision_losses_and_constant_terms():
    y = torch.randn(2, 1, 16, requires_grad=True)
    losses = {"a": y.square().mean().bfloat16(), "b": y.abs().mean(),
              "c": torch.tensor(0.5)}  # a logged constant: no gradient, counted as is
    balancer = LossBalancer({"a": 1.0, "b": 1.0, "c": 1.0}, balance_grads=False)
    out = balancer.backward(losses, y, unbalanced={"const": torch.tensor(2.0)})
    assert out.dtype == torch.float32
    assert bool(torch.isfinite(y.grad).all())
    assert balancer.metrics["c/share"] == 0.0 and balancer.metrics["const/value"] == 2.0


def test_loss_without_gradient_gets_scale_zero_not_total_norm_over_eps():
    """Regression: a loss with zero gradient at y was given total_norm / eps = 5e11 as its
    scale, which showed in the logs and in the returned loss value."""
    balancer = LossBalancer({"recon": 1.0, "flat": 1.0})
    y = torch.randn(2, 1, 16, requires_grad=True)
    total = balancer.backward({"recon": y.square().mean(), "flat": (y * 0).sum() + 3.0}, y)
    stats = balancer.metrics
    assert stats["flat/scale"] == 0.0
    assert stats["recon/scale"] > 0
    assert float(total) < 10.0  # not 3 * 5e11


@pytest.mark.parametrize("options", [{"per_batch_item": False},
                                     {"reduce_fn": lambda t: t},
                                     {"per_batch_item": False, "reduce_fn": lambda t: t}])
def test_balanced_gradient_has_the_target_norm_in_every_norm_mode(options):
    """``per_batch_item=False`` measures the whole batch's gradient norm; a custom
    ``reduce_fn`` is not scaled by a world size. Either way one loss gets ``total_norm``."""
    y = torch.randn(8, 1, 64, requires_grad=True)
    balancer = LossBalancer({"recon": 1.0}, total_norm=2.0, **options)
    balancer.backward({"recon": 1e-3 * y.square().mean()}, y)
    if options.get("per_batch_item", True):
        norm = y.grad.flatten(1).norm(dim=1).mean()
    else:
        norm = y.grad.norm()
    assert float(norm) == pytest.approx(2.0, rel=1e-4)



def test_shares_sum_to_one_whatever_the_total_norm():
    y = torch.randn(4, 1, 32, requires_grad=True)
    balancer = LossBalancer({"a": 1.0, "b": 3.0}, total_norm=0.5)
    balancer.backward({"a": y.square().mean(), "b": 7.0 * y.abs().mean()}, y)
    m = balancer.metrics
    assert m["a/share"] == pytest.approx(0.25) and m["b/share"] == pytest.approx(0.75)


@pytest.mark.parametrize("shape", [(6,), ()])
def test_target_norm_for_one_dimensional_and_scalar_outputs(shape):
    """Per item, a ``(B,)`` output's gradient norm is ``|g_b|``; a 0-d output has one item."""
    y = torch.randn(shape, requires_grad=True)
    balancer = LossBalancer({"a": 1.0}, total_norm=2.0)
    balancer.backward({"a": (3.0 * y).square().sum()}, y)
    assert float(y.grad.abs().mean()) == pytest.approx(2.0, rel=1e-5)


def test_eval_uses_the_training_norm_average_once_there_is_one():
    balancer = LossBalancer({"a": 1.0}, total_norm=1.0).eval()
    y = torch.randn(4, 1, 16, requires_grad=True)
    balancer.backward({"a": y.square().mean()}, y)  # no average yet: this batch's norm
    assert float(y.grad.flatten(1).norm(dim=1).mean()) == pytest.approx(1.0, rel=1e-5)
    balancer.train()
    y = torch.randn(4, 1, 16, requires_grad=True)
    balancer.backward({"a": y.square().mean()}, y)
    balancer.eval()
    y2 = y.detach().clone().requires_grad_(True)
    balancer.backward({"a": 10.0 * y2.square().mean()}, y2)  # 10x: the average is kept
    assert float(y2.grad.flatten(1).norm(dim=1).mean()) == pytest.approx(10.0, rel=1e-5)


@pytest.mark.parametrize("balance", [True, False])
def test_every_unbalanced_loss_is_added(balance):
    y = torch.randn(4, 1, 16, requires_grad=True)
    z1, z2 = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    balancer = LossBalancer({"a": 1.0}, balance_grads=balance)
    balancer.backward({"a": y.square().mean()}, y,
                      unbalanced={"u1": 2.0 * z1.sum(), "u2": 3.0 * z2.sum()})
    torch.testing.assert_close(z1.grad, torch.full((3,), 2.0))
    torch.testing.assert_close(z2.grad, torch.full((3,), 3.0))


def test_target_norm_for_two_dimensional_outputs():
    y = torch.randn(4, 32, requires_grad=True)  # (B, S)
    balancer = LossBalancer({"a": 1.0}, total_norm=2.0)
    balancer.backward({"a": y.square().mean()}, y)
    assert float(y.grad.norm(dim=1).mean()) == pytest.approx(2.0, rel=1e-5)
