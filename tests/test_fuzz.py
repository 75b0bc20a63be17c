"""Fuzzing every public block with random shapes, dtypes, masks, NaN/Inf, empty and length-1
axes and huge values.

The contract checked on every example: the call either returns a correct result (a property
is checked) or raises ``ValueError``/``TypeError`` with a message naming what was expected
and what was got; never an error from inside torch, and never a changed or non-finite buffer
behind a raised error. (``LossBalancer`` also raises ``FloatingPointError`` on a non-finite
loss, by design.)
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvq_blocks import (
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    ResidualVQ,
    ScaledTanhHead,
    mel_filterbank,
    multi_resolution_stft_loss,
    per_example_rms,
    rms_scale_loss,
    scaled_tanh,
)

# FUZZ_EXAMPLES=N runs N random (not derandomized) examples per test, for a deeper search.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 120)), deadline=None,
                derandomize=os.environ.get("FUZZ_EXAMPLES") is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
OTHERS = [torch.int64, torch.int32, torch.bool, torch.complex64]
DTYPES = st.sampled_from(FLOATS + FLOATS + OTHERS)  # floats twice as likely
SPECIALS = st.sampled_from(["plain", "plain", "nan", "inf", "huge", "zeros"])
ACCEPTED = (ValueError, TypeError)


def _tensor(shape: tuple[int, ...], dtype: torch.dtype, special: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    if special == "huge":
        x = x * 1e30
    elif special == "zeros":
        x = torch.zeros(shape, dtype=torch.float64)
    elif special in ("nan", "inf") and x.numel() > 0:
        flat = x.view(-1)
        pick = torch.randint(0, flat.numel(), (max(1, flat.numel() // 7),), generator=g)
        flat[pick] = float("nan") if special == "nan" else -math.inf
    if dtype.is_complex:
        return x.to(dtype)
    if not dtype.is_floating_point:
        return x.nan_to_num(0.0, 0.0, 0.0).clamp(-100, 100).to(dtype)
    return x.to(dtype)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()
            if isinstance(v, torch.Tensor)}


def _assert_unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    for k, v in _state(module).items():
        assert torch.equal(v, before[k]) or (v.isnan() == before[k].isnan()).all(), k


def _assert_finite_buffers(module: torch.nn.Module) -> None:
    for k, v in module.state_dict().items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            assert torch.isfinite(v).all(), f"non-finite buffer {k}"


def _call(fn, module: torch.nn.Module | None = None):
    """Run ``fn``; on an accepted error check its message and that ``module`` is unchanged.
    Returns the result, or ``None`` after an accepted error."""
    before = _state(module) if module is not None else None
    try:
        return fn()
    except ACCEPTED as err:
        msg = str(err)
        assert "expected" in msg or "needs" in msg, msg
        assert "got" in msg, msg
        if module is not None:
            _assert_unchanged(module, before)
        return None


# --------------------------------------------------------------------------- ResidualVQ
@st.composite
def rvq_case(draw):
    dim = draw(st.integers(1, 6))
    options = draw(st.fixed_dictionaries({}, optional={
        "codebook_dim": st.integers(1, 4), "use_cosine": st.booleans(), "ema": st.booleans(),
        "gradient_estimator": st.sampled_from(["ste", "rotation"]),
        "quantizer_dropout": st.sampled_from([0.0, 0.5]), "beam_size": st.integers(1, 3),
        "channel_last": st.booleans(), "dead_code_threshold": st.sampled_from([0.0, 0.5]),
    }))
    b, t = draw(st.integers(0, 3)), draw(st.sampled_from([0, 1, 2, 7]))
    d = draw(st.sampled_from([dim, dim, dim + 1]))
    layout = (b, t, d) if options.get("channel_last") else (b, d, t)
    shape = draw(st.sampled_from([layout, layout, layout, layout[1:], (*layout, 1)]))
    mask_kind = draw(st.sampled_from([None, None, "bool", "float", "none_valid", "wrong"]))
    return dim, options, shape, draw(DTYPES), draw(SPECIALS), mask_kind, draw(st.integers(0, 99))


def _mask(kind: str | None, b: int, t: int, seed: int) -> torch.Tensor | None:
    g = torch.Generator().manual_seed(seed)
    if kind is None:
        return None
    if kind == "wrong":
        return torch.ones(b + 1, t, dtype=torch.bool)
    if kind == "none_valid":
        return torch.zeros(b, t, dtype=torch.bool)
    m = torch.rand(b, t, generator=g) > 0.3
    return m if kind == "bool" else m.float()


@FUZZ
@given(rvq_case(), st.booleans())
def test_fuzz_residual_vq(case, warm):
    dim, options, shape, dtype, special, mask_kind, seed = case
    rvq = ResidualVQ(dim, 2, 4, **options)
    if warm:
        rvq(torch.randn(2, 10, dim) if rvq.channel_last else torch.randn(2, dim, 10))
    x = _tensor(shape, dtype, special, seed)
    b, t = (shape[0], shape[1]) if len(shape) == 3 and rvq.channel_last else \
        (shape[0], shape[-1]) if len(shape) == 3 else (1, 1)
    mask = _mask(mask_kind, b, t, seed)
    for training in (True, False):
        rvq.train(training)
        out = _call(lambda: rvq(x, mask=mask), rvq)  # noqa: B023
        if out is None:
            continue
        assert out.quantized.shape == x.shape and out.quantized.dtype == x.dtype
        n = out.indices.shape[1]
        assert out.indices.shape == (b, n, t) and 1 <= n <= 2
        assert out.indices.dtype == torch.int64
        assert 0 <= int(out.indices.min()) and int(out.indices.max()) < 4
        _assert_finite_buffers(rvq)
        finite = torch.isfinite(x).all()
        if finite and special != "huge" and mask_kind != "none_valid":
            assert torch.isfinite(out.loss) and torch.isfinite(out.quantized).all()
        if not training:
            codes = rvq.encode(x)
            assert torch.equal(codes, out.indices)
            ok = torch.isfinite(out.quantized)  # non-finite inputs keep non-finite outputs
            torch.testing.assert_close(rvq.decode(codes).to(x.dtype)[ok], out.quantized[ok],
                                       rtol=1e-4, atol=1e-5)  # sums in another order


@FUZZ
@given(st.sampled_from([(1, 2, 3), (2, 1, 1), (0, 2, 3), (1, 3, 2), (2, 2), (1, 2, 0)]),
       st.sampled_from(OTHERS[:2] + [torch.uint8, torch.int8] + FLOATS + [torch.bool]),
       st.integers(-6, 6))
def test_fuzz_residual_vq_decode(shape, dtype, offset):
    rvq = ResidualVQ(3, 2, 4)
    codes = (torch.arange(math.prod(shape)).reshape(shape) + offset).to(dtype)
    before = _state(rvq)
    out = _call(lambda: rvq.decode(codes))
    _assert_unchanged(rvq, before)
    if out is not None:
        assert out.shape == (shape[0], 3, shape[2])
        assert torch.isfinite(out).all()


@FUZZ
@given(rvq_case())
def test_fuzz_residual_vq_init_from_batch(case):
    dim, options, shape, dtype, special, mask_kind, seed = case
    rvq = ResidualVQ(dim, 2, 4, **options)
    x = _tensor(shape, dtype, special, seed)
    b, t = (shape[0], shape[1]) if len(shape) == 3 and rvq.channel_last else \
        (shape[0], shape[-1]) if len(shape) == 3 else (1, 1)
    if _call(lambda: rvq.init_from_batch_(x, _mask(mask_kind, b, t, seed)), rvq) is None \
            and not bool(rvq.initialized):
        return
    assert bool(rvq.initialized)
    _assert_finite_buffers(rvq)


# --------------------------------------------------------------------------- output head
@FUZZ
@given(st.lists(st.integers(0, 4), min_size=0, max_size=4), DTYPES, SPECIALS,
       st.sampled_from([None, 1, 2]), st.sampled_from(["linear", "exp", "softplus"]),
       st.sampled_from([1.0, 1e30, 1e-30, 3.0]), st.integers(0, 99))
def test_fuzz_scaled_tanh(shape, dtype, special, channels, param, init, seed):
    head = _call(lambda: ScaledTanhHead(init, channels=channels, parametrization=param))
    if head is None:
        return
    x = _tensor(tuple(shape), dtype, special, seed)
    y = _call(lambda: head(x), head)
    if y is not None:
        assert y.shape == x.shape and y.dtype == x.dtype
        ok = torch.isfinite(y)
        assert (y[ok].abs() < 1).all()
    z = _call(lambda: scaled_tanh(x, 2.0))
    if z is not None:
        assert z.shape == x.shape and (z[torch.isfinite(z)].abs() < 1).all()


# --------------------------------------------------------------------------- losses
@st.composite
def audio_pair(draw):
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))
    if draw(st.booleans()) and len(shape) in (2, 3):
        shape = (*shape[:-1], draw(st.sampled_from([0, 1, 40, 300])))
    tshape = draw(st.sampled_from([shape, shape, shape[::-1]]))
    return (shape, tshape, draw(DTYPES), draw(DTYPES), draw(SPECIALS), draw(st.integers(0, 99)))


@FUZZ
@given(audio_pair(), st.sampled_from(["linear", "log", "db"]),
       st.sampled_from([None, "bool", "float", "none_valid", "wrong"]))
def test_fuzz_rms_loss(pair, domain, mask_kind):
    shape, tshape, pd, td, special, seed = pair
    p, t = _tensor(shape, pd, special, seed), _tensor(tshape, td, "plain", seed + 1)
    b, s = (shape[0], shape[-1]) if len(shape) >= 2 else (1, 1)
    mask = _mask(mask_kind, b, s, seed)
    loss = _call(lambda: rms_scale_loss(p, t, mask, domain=domain, reduction="none"))
    if loss is not None:
        assert loss.shape == (b,)
        clean = torch.isfinite(p).all() and special not in ("huge",)
        if clean:
            assert torch.isfinite(loss).all() and (loss >= 0).all()
    rms = _call(lambda: per_example_rms(p, mask))
    if rms is not None:
        assert rms.shape == (b,)
        assert (rms[torch.isfinite(rms)] >= 0).all()


@FUZZ
@given(audio_pair(), st.booleans())
def test_fuzz_spectral_losses(pair, mel):
    shape, tshape, pd, td, special, seed = pair
    p, t = _tensor(shape, pd, special, seed), _tensor(tshape, td, "plain", seed + 1)
    if mel:
        fn = MultiScaleMelLoss(16000, window_lengths=(16, 64), n_mels=(4, 8))
    else:
        fn = MultiResolutionSTFTLoss(fft_sizes=(16, 64))
    loss = _call(lambda: fn(p, t))
    if loss is not None:
        assert loss.shape == () and loss.dtype in (torch.float32, torch.float64)
        if torch.isfinite(p).all() and special != "huge":
            assert torch.isfinite(loss) and loss >= 0
    out = _call(lambda: multi_resolution_stft_loss(p, t, fft_sizes=(16,)))
    if out is not None:
        assert out.shape == ()


@FUZZ
@given(st.integers(-1, 40), st.integers(-1, 40), st.sampled_from([0.0, -1.0, 100.0, 16000.0]),
       st.sampled_from([None, 0.0, 50.0, 1e9]))
def test_fuzz_mel_filterbank(n_freqs, n_mels, sample_rate, f_max):
    fb = _call(lambda: mel_filterbank(n_freqs, n_mels, sample_rate, f_max=f_max))
    if fb is not None:
        assert fb.shape == (n_freqs, n_mels)
        assert torch.isfinite(fb).all() and (fb >= 0).all()
        torch.testing.assert_close(fb.sum(0), torch.ones(n_mels))


# --------------------------------------------------------------------------- balancer
@FUZZ
@given(st.sampled_from(["raise", "skip"]), st.booleans(),
       st.lists(st.tuples(DTYPES, SPECIALS, st.sampled_from([(), (1,), (2,)])), min_size=2,
                max_size=2),
       st.sampled_from(["ok", "missing", "extra"]), st.integers(0, 99))
def test_fuzz_balancer(nonfinite, balance, losses_spec, names, seed):
    bal = LossBalancer({"a": 1.0, "b": 2.0}, nonfinite=nonfinite, balance_grads=balance)
    y0 = torch.randn(2, 1, 8, generator=torch.Generator().manual_seed(seed))
    bal.backward({"a": y0.requires_grad_(True).abs().mean(), "b": y0.square().mean()}, y0)
    y = torch.randn(2, 1, 8, generator=torch.Generator().manual_seed(seed + 1))
    y.requires_grad_(True)
    losses = {}
    for name, (dtype, special, shape) in zip("ab", losses_spec, strict=True):
        scale = _tensor(shape, dtype, special, seed)
        if scale.is_floating_point():
            losses[name] = (y.to(dtype).abs().mean() * scale).sum() if shape == (2,) else \
                y.to(dtype).abs().mean() * scale
        else:
            losses[name] = scale
    if names == "missing":
        losses.pop("b")
    elif names == "extra":
        losses["c"] = y.mean()
    before = _state(bal)
    try:
        out = bal.backward(losses, y)
    except ACCEPTED as err:
        assert "expected" in str(err) or "do not depend" in str(err), str(err)
        _assert_unchanged(bal, before)
        return
    except FloatingPointError as err:
        assert nonfinite == "raise" and "non-finite" in str(err)
        _assert_unchanged(bal, before)
        return
    if torch.isnan(out):  # skipped: state unchanged but the count
        assert nonfinite == "skip" and int(bal.num_skipped) == 1
        assert torch.equal(bal.norm_ema_sum, before["norm_ema_sum"])
    else:
        assert torch.isfinite(bal.norm_ema_sum).all()
        assert y.grad is not None and torch.isfinite(y.grad).all()


@pytest.mark.parametrize("bad", [torch.tensor(1.0), "x", None])
def test_balancer_rejects_non_tensor_output_by_type(bad):
    bal = LossBalancer({"a": 1.0})
    y = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(ACCEPTED, match="got"):
        bal.backward({"a": y.mean()}, bad)
