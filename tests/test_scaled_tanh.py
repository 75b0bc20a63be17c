from __future__ import annotations

import pytest
import torch

from rvq_blocks.scaled_tanh import ScaledTanhHead, scaled_tanh

PARAMS = ["linear", "exp", "softplus"]


@pytest.mark.parametrize("parametrization", PARAMS)
@pytest.mark.parametrize("channels", [None, 3])
def test_init_equals_tanh(parametrization, channels):
    head = ScaledTanhHead(channels=channels, parametrization=parametrization)
    x = torch.randn(4, 3, 50)
    torch.testing.assert_close(head(x), torch.tanh(x))
    expected = torch.ones(()) if channels is None else torch.ones(3)
    torch.testing.assert_close(head.scale, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_output_strictly_inside_unit_interval(dtype):
    head = ScaledTanhHead(init_scale=5.0, channels=1)  # float32 scale, any input dtype
    x = (100 * torch.randn(8, 1, 1000)).to(dtype)
    y = head(x)
    assert y.dtype == dtype
    assert bool((y.abs() < 1).all())
    assert bool((y.abs() > 0.99).any())  # the test does reach saturation


@pytest.mark.gradcheck
@pytest.mark.parametrize("parametrization", PARAMS)
@pytest.mark.parametrize("channels", [None, 2])
def test_gradcheck(parametrization, channels):
    head = ScaledTanhHead(1.3, channels=channels, parametrization=parametrization,
                          dtype=torch.float64)
    x = torch.randn(3, 2, 7, dtype=torch.float64, requires_grad=True)
    raw = head.raw_scale.detach().clone().requires_grad_(True)

    def fn(x, raw):
        return torch.func.functional_call(head, {"raw_scale": raw}, (x,))

    assert torch.autograd.gradcheck(fn, (x, raw))
    assert torch.autograd.gradgradcheck(fn, (x, raw))


@pytest.mark.parametrize("parametrization", PARAMS)
def test_toy_fit_recovers_scale(parametrization):
    x = 0.5 * torch.randn(16, 1, 256)
    target = torch.tanh(2.5 * x)
    head = ScaledTanhHead(1.0, parametrization=parametrization)
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.mse_loss(head(x), target).backward()
        opt.step()
    assert abs(head.scale.item() - 2.5) / 2.5 < 0.02


def test_toy_fit_per_channel():
    x = 0.5 * torch.randn(16, 2, 256)
    true = torch.tensor([2.5, 0.6])
    target = torch.tanh(true[:, None] * x)
    head = ScaledTanhHead(1.0, channels=2, parametrization="exp")
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.mse_loss(head(x), target).backward()
        opt.step()
    assert ((head.scale - true).abs() / true).max() < 0.02


@pytest.mark.parametrize("parametrization", ["exp", "softplus"])
def test_positive_parametrization_never_crosses_zero(parametrization):
    # the target asks for a negative scale: a positive parametrisation cannot follow it,
    # and the linear one stops at its floor
    x = 0.5 * torch.randn(16, 1, 128)
    target = torch.tanh(-1.0 * x)
    heads = {p: ScaledTanhHead(1.0, parametrization=p) for p in ("linear", parametrization)}
    for head in heads.values():
        opt = torch.optim.SGD(head.parameters(), lr=2.0)
        for _ in range(60):
            opt.zero_grad()
            torch.nn.functional.mse_loss(head(x), target).backward()
            opt.step()
    assert heads["linear"].scale.item() == pytest.approx(1e-4)
    assert heads[parametrization].scale.item() > 0


def test_frozen_scale():
    head = ScaledTanhHead(2.0, learnable=False)
    assert list(head.parameters()) == []
    assert "raw_scale" in head.state_dict()
    x = torch.randn(2, 1, 10, requires_grad=True)
    head(x).sum().backward()
    torch.testing.assert_close(head.scale, torch.tensor(2.0))
    torch.testing.assert_close(head(x), torch.tanh(2.0 * x))


def test_scale_property_is_detached():
    head = ScaledTanhHead(1.5, parametrization="softplus")
    assert not head.scale.requires_grad
    torch.testing.assert_close(head.scale, torch.tensor(1.5))


def test_saturation():
    y = torch.tensor([0.0, 0.5, 0.995, -0.999])
    assert ScaledTanhHead.saturation(y).item() == 0.5
    head = ScaledTanhHead()
    assert head.saturation(y, threshold=0.4).item() == 0.75
    assert head.saturation(head(torch.full((2, 1, 8), 50.0))).item() == 1.0
    with pytest.raises(ValueError, match="threshold in"):
        head.saturation(y, threshold=1.0)


def test_functional_matches_module_per_channel():
    scale = torch.tensor([0.5, 2.0])
    x = torch.randn(3, 2, 9)
    torch.testing.assert_close(scaled_tanh(x, scale), torch.tanh(scale[:, None] * x))
    with pytest.raises(ValueError, match=r"\(B, 2, S\)"):
        scaled_tanh(torch.randn(3, 5, 9), scale)


def test_state_dict_round_trip():
    head = ScaledTanhHead(1.0, channels=2, parametrization="exp")
    with torch.no_grad():
        head.raw_scale.copy_(torch.tensor([0.3, -0.2]))
    other = ScaledTanhHead(1.0, channels=2, parametrization="exp")
    other.load_state_dict(head.state_dict(), strict=True)
    x = torch.randn(2, 2, 16)
    torch.testing.assert_close(other(x), head(x))
    other.reset_parameters()
    torch.testing.assert_close(other.scale, torch.ones(2))


def test_meta_device_construction():
    head = ScaledTanhHead(2.0, channels=4, device="meta")
    assert head.raw_scale.is_meta
    assert head(torch.empty(1, 4, 8, device="meta")).shape == (1, 4, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init_scale": 0.0}, "init_scale > 0, got 0.0"),
        ({"init_scale": -1.0}, "init_scale > 0"),
        ({"init_scale": float("nan")}, "init_scale"),
        ({"channels": 0}, "channels"),
        ({"parametrization": "sigmoid"}, "parametrization"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScaledTanhHead(**kwargs)


def test_bad_inputs():
    head = ScaledTanhHead(channels=2)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 2, S\), got \(4, 3, 10\)"):
        head(torch.randn(4, 3, 10))
    with pytest.raises(TypeError, match="floating-point"):
        head(torch.ones(4, 2, 10, dtype=torch.long))


def test_linear_scale_cannot_be_trained_through_zero():
    """Regression: the "linear" scale could be trained negative, flipping the output."""
    head = ScaledTanhHead(1.0)
    opt = torch.optim.SGD(head.parameters(), lr=10.0)
    x = torch.linspace(-1, 1, 64)[None, None]
    for _ in range(5):  # a loss that pulls the scale hard toward -inf
        opt.zero_grad()
        head(x).mul(x).sum().backward()
        opt.step()
    assert float(head.raw_scale) < 0  # the raw parameter went negative ...
    assert float(head.scale) > 0  # ... the scale did not
    assert torch.all(torch.sign(head(x)) == torch.sign(torch.tanh(x)))


# --------------------------------------------------------------------------- checks that bite
def test_head_without_channels_takes_any_float_shape_and_refuses_integers():
    head = ScaledTanhHead()
    for shape in [(5,), (2, 7), (2, 1, 7), (2, 3, 4, 5)]:
        assert head(torch.randn(shape)).shape == shape
    with pytest.raises(TypeError, match="ScaledTanhHead expected x with a floating"):
        head(torch.ones(2, 1, 4, dtype=torch.long))


def test_head_with_channels_checks_the_channel_axis():
    head = ScaledTanhHead(channels=2)
    assert head(torch.randn(3, 2, 8)).shape == (3, 2, 8)
    with pytest.raises(ValueError, match="ScaledTanhHead expected x"):
        head(torch.randn(3, 4, 8))
    with pytest.raises(ValueError):
        head(torch.randn(3, 8))  # no channel axis to scale
    with pytest.raises(TypeError, match="floating"):
        head(torch.ones(3, 2, 8, dtype=torch.int32))


def test_per_channel_scale_needs_a_channel_axis():
    with pytest.raises(ValueError):
        scaled_tanh(torch.randn(2, 16), torch.ones(1))


def test_saturation_checks_its_input_and_threshold():
    y = torch.tensor([0.5, 0.995, -0.999, 0.1])
    assert float(ScaledTanhHead.saturation(y)) == pytest.approx(0.5)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            ScaledTanhHead.saturation(y, bad)
    with pytest.raises(TypeError, match="floating"):
        ScaledTanhHead.saturation(torch.ones(4, dtype=torch.long))
