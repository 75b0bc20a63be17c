from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rvq_blocks.rms_loss import RMSScaleLoss, per_example_rms, rms_scale_loss


def _batch_global_rms_loss(pred, target):
    """The broken variant: one RMS for the whole batch."""
    return (pred.square().mean().sqrt() - target.square().mean().sqrt()).square()


@settings(max_examples=25, deadline=None)
@given(gains=st.lists(st.sampled_from([0.5, 1.0, 1.5]), min_size=1, max_size=4))
def test_zero_iff_per_example_loudness_matches(gains):
    b = len(gains)
    torch.manual_seed(1)
    target = torch.randn(b, 2, 300)
    # a different waveform with the same per-example RMS: time-reversed and sign-flipped
    pred = -target.flip(-1) * torch.tensor(gains)[:, None, None]
    loss = rms_scale_loss(pred, target)
    if all(g == 1.0 for g in gains):
        assert loss.item() < 1e-10
    else:
        assert loss.item() > 1e-3


def test_batch_global_match_with_per_example_mismatch_is_penalised():
    wave = torch.randn(2, 1, 1000)
    wave = wave - wave.mean(-1, keepdim=True)
    wave = wave / per_example_rms(wave)[:, None, None]  # zero mean, unit RMS each
    target = wave * torch.tensor([1.0, 0.2])[:, None, None]
    pred = wave * torch.tensor([0.2, 1.0])[:, None, None]  # loudness swapped between examples
    assert _batch_global_rms_loss(pred, target).item() < 1e-8  # the global loss sees nothing
    assert rms_scale_loss(pred, target).item() == pytest.approx(0.8**2, rel=1e-4)


def test_dc_offset_is_penalised():
    s = torch.arange(1600) / 16000
    target = (0.3 * math.sqrt(2) * torch.sin(2 * math.pi * 100 * s)).expand(2, 1, -1)  # RMS 0.3
    pred = torch.full_like(target, 0.3)  # pure DC with the same plain RMS
    # without mean removal the cheat works ...
    assert rms_scale_loss(pred, target, remove_mean=False).item() < 1e-6
    # ... the default removes the mean and sees a silent waveform
    assert rms_scale_loss(pred, target).item() == pytest.approx(0.09, rel=1e-3)
    # ... or an explicit DC term catches it
    assert rms_scale_loss(pred, target, remove_mean=False, dc_weight=1.0).item() == \
        pytest.approx(0.09, rel=1e-3)


def test_dc_offset_cheat_with_wrong_waveform():
    # output mean -0.31 with a little noise against a silent-mean quiet target
    target = 0.33 * torch.randn(4, 1, 2000)
    pred = -0.31 + 0.114 * torch.randn(4, 1, 2000)
    assert rms_scale_loss(pred, target, remove_mean=False).item() < 0.01
    assert rms_scale_loss(pred, target).item() > 0.04


def test_mask_excludes_padding():
    target = torch.randn(3, 1, 100)
    pred = target.clone()
    pred[:, :, 60:] = 10.0  # garbage in the padding
    mask = torch.zeros(3, 100, dtype=torch.bool)
    mask[:, :60] = True
    assert rms_scale_loss(pred, target, mask).item() == 0.0
    assert rms_scale_loss(pred, target).item() > 1.0
    float_mask = mask.float()
    assert rms_scale_loss(pred, target, float_mask).item() == 0.0


def test_mono_2d_equals_3d():
    pred, target = torch.randn(3, 200), torch.randn(3, 200)
    torch.testing.assert_close(rms_scale_loss(pred, target),
                               rms_scale_loss(pred[:, None], target[:, None]))


@pytest.mark.parametrize("domain", ["linear", "log", "db"])
def test_silence_finite_value_and_gradient(domain):
    pred = torch.zeros(2, 1, 64, requires_grad=True)
    for target in (torch.zeros(2, 1, 64), torch.randn(2, 1, 64)):
        loss = rms_scale_loss(pred, target, domain=domain, dc_weight=0.5)
        (grad,) = torch.autograd.grad(loss, pred)
        assert torch.isfinite(loss)
        assert bool(torch.isfinite(grad).all())


def test_domains():
    x = torch.randn(4, 1, 500)
    assert rms_scale_loss(2 * x, x).item() == pytest.approx(
        (per_example_rms(x) ** 2).mean().item(), rel=1e-5)
    assert rms_scale_loss(2 * x, x, domain="log").item() == pytest.approx(math.log(2) ** 2,
                                                                          rel=1e-5)
    assert rms_scale_loss(2 * x, x, domain="db").item() == pytest.approx(
        (20 * math.log10(2)) ** 2, rel=1e-5)


def test_reduction():
    pred, target = torch.randn(5, 2, 50), torch.randn(5, 2, 50)
    per = rms_scale_loss(pred, target, reduction="none")
    assert per.shape == (5,)
    torch.testing.assert_close(rms_scale_loss(pred, target, reduction="sum"), per.sum())
    torch.testing.assert_close(RMSScaleLoss()(pred, target), per.mean())


@pytest.mark.gradcheck
@pytest.mark.parametrize(("domain", "remove_mean"),
                         [("linear", True), ("log", False), ("db", True), ("linear", False)])
def test_gradcheck(domain, remove_mean):
    pred = torch.randn(3, 2, 11, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 2, 11, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False

    def fn(p, t):
        return rms_scale_loss(p, t, mask, domain=domain, remove_mean=remove_mean,
                              dc_weight=0.3, reduction="none")

    assert torch.autograd.gradcheck(fn, (pred, target))


def test_state_dict_round_trip():
    loss_fn = RMSScaleLoss(domain="log", dc_weight=0.1)
    assert loss_fn.state_dict() == {}
    other = RMSScaleLoss(domain="log", dc_weight=0.1)
    other.load_state_dict(loss_fn.state_dict(), strict=True)
    pred, target = torch.randn(2, 1, 40), torch.randn(2, 1, 40)
    torch.testing.assert_close(other(pred, target), loss_fn(pred, target))


def test_bad_inputs():
    p = torch.randn(2, 1, 10)
    with pytest.raises(ValueError, match=r"same shape, got \(2, 1, 10\) and \(2, 1, 11\)"):
        rms_scale_loss(p, torch.randn(2, 1, 11))
    with pytest.raises(ValueError, match=r"mask of shape \(B, S\) = \(2, 10\), got \(2, 9\)"):
        rms_scale_loss(p, p, torch.ones(2, 9))
    with pytest.raises(ValueError, match=r"\(B, C, S\) or \(B, S\), got \(2, 1, 1, 10\)"):
        rms_scale_loss(p[:, None], p[:, None])
    with pytest.raises(TypeError, match="floating-point"):
        rms_scale_loss(p.long(), p.long())
    with pytest.raises(TypeError, match=r"numpy array of shape \(2, 1, 10\) and dtype float32; "
                                        r"convert it with torch.from_numpy\(pred\)"):
        rms_scale_loss(p.numpy(), p)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain in"):
        rms_scale_loss(p, p, domain="dbfs")
    with pytest.raises(ValueError, match="eps > 0"):
        RMSScaleLoss(eps=0.0)
    with pytest.raises(ValueError, match="dc_weight >= 0"):
        RMSScaleLoss(dc_weight=-1.0)
    with pytest.raises(ValueError, match="reduction in"):
        RMSScaleLoss(reduction="max")


def test_all_zero_mask_is_refused_and_empty_examples_are_left_out_of_the_mean():
    x, y = torch.randn(2, 1, 100), torch.randn(2, 1, 100)
    with pytest.raises(ValueError, match="at least one valid sample"):
        rms_scale_loss(x, y, mask=torch.zeros(2, 100))
    mask = torch.ones(2, 100)
    mask[1] = 0  # the second example has no samples: the mean is over the first alone
    got = rms_scale_loss(x, y, mask=mask)
    torch.testing.assert_close(got, rms_scale_loss(x[:1], y[:1]))


# --------------------------------------------------------------------------- exact values
def test_rms_of_offset_stereo_signals_exactly():
    """Two channels, each ``c + unit-power square wave``: the RMS over channels and samples is
    1 with the mean removed and ``sqrt(mean c^2 + 1)`` without."""
    wave = torch.tensor([1.0, -1.0]).repeat(50)  # (100,), power 1, mean 0
    x = torch.stack([3.0 + wave, -1.0 + wave])[None]  # (1, 2, 100)
    torch.testing.assert_close(per_example_rms(x, eps=0.0), torch.tensor([1.0]))
    torch.testing.assert_close(per_example_rms(x, remove_mean=False, eps=0.0),
                               torch.tensor([math.sqrt((9.0 + 1.0) / 2 + 1.0)]))


def test_one_valid_sample_is_its_own_rms():
    x = torch.tensor([[[0.5, -4.0, 9.0]]])
    mask = torch.tensor([[False, True, False]])
    torch.testing.assert_close(per_example_rms(x, mask, remove_mean=False, eps=0.0),
                               torch.tensor([4.0]))


def test_masked_mean_counts_examples_with_one_valid_sample():
    """Examples with samples (even one) count; an all-padding example does not."""
    target = torch.ones(3, 1, 4)
    pred = 2.0 * target  # per-example loss 1 where there are samples
    mask = torch.tensor([[True, True, True, True], [False, True, False, False],
                         [False, False, False, False]])
    loss = rms_scale_loss(pred, target, mask, remove_mean=False, eps=1e-12)
    assert float(loss) == pytest.approx(1.0)  # (1 + 1 + 0) / 2
    none = rms_scale_loss(pred, target, mask, remove_mean=False, eps=1e-12, reduction="none")
    torch.testing.assert_close(none, torch.tensor([1.0, 1.0, 0.0]))


def test_dc_term_is_the_squared_offset_of_the_means():
    target = torch.randn(2, 1, 64)
    pred = target + 0.5
    loss = rms_scale_loss(pred, target, dc_weight=3.0, reduction="none")
    torch.testing.assert_close(loss, torch.full((2,), 3.0 * 0.25), rtol=1e-4, atol=1e-5)


def test_one_sample_is_enough_and_empty_axes_are_refused():
    x = torch.tensor([[[0.5]], [[-2.0]]])  # (2, 1, 1)
    torch.testing.assert_close(rms_scale_loss(x, x), torch.tensor(0.0))
    for empty in (torch.zeros(0, 1, 8), torch.zeros(2, 1, 0)):
        with pytest.raises(ValueError, match="non-empty"):
            rms_scale_loss(empty, empty)
