"""ISTFTHead, stft_same / istft_same and the compressed complex STFT loss."""

from __future__ import annotations

import math

import pytest
import torch

from rvq_blocks import ComplexSTFTLoss, ISTFTHead, complex_stft_loss, istft_same, stft_same


def test_same_padding_round_trips_exactly() -> None:
    x = torch.randn(3, 320 * 7, dtype=torch.float64)
    spec = stft_same(x, 1280, 320)
    assert spec.shape == (3, 641, 7)
    y = istft_same(spec, 1280, 320)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-10)


def test_head_output_length_and_bound() -> None:
    head = ISTFTHead(8, 64, 16, max_magnitude=2.0)
    with torch.no_grad():
        head.proj.bias.fill_(50.0)  # exp(50) without the clip
    y = head(torch.randn(2, 8, 5))
    assert y.shape == (2, 1, 80)
    assert torch.isfinite(y).all()
    assert head.spectrum(torch.randn(2, 8, 5)).abs().max() <= 2.0 + 1e-5


def test_head_rejects_bad_input() -> None:
    head = ISTFTHead(8, 64, 16)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 8, T\).*got \(2, 7, 5\)"):
        head(torch.randn(2, 7, 5))
    with pytest.raises(ValueError, match="n_fft"):
        ISTFTHead(8, 63, 16)
    with pytest.raises(ValueError, match="multiple of hop_length=16"):
        stft_same(torch.randn(1, 50), 64, 16)
    with pytest.raises(ValueError, match=r"\(B, 33, T\)"):
        istft_same(torch.randn(1, 30, 4, dtype=torch.complex64), 64, 16)


@pytest.mark.gradcheck
def test_head_gradcheck() -> None:
    head = ISTFTHead(4, 16, 4, max_magnitude=1e3).double()
    x = torch.randn(1, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (x,))


@pytest.mark.gradcheck
def test_complex_loss_gradcheck() -> None:
    p = torch.randn(1, 1, 128, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 1, 128, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a: complex_stft_loss(a, t, resolutions=((32, 8), (64, 16))), (p,))


def test_complex_loss_zero_on_equal_and_sees_phase() -> None:
    x = torch.randn(2, 1, 4000)
    loss = ComplexSTFTLoss()
    assert float(loss(x, x)) == 0.0
    # a sign flip keeps every magnitude: only the complex term sees it
    flipped = float(complex_stft_loss(-x, x))
    assert flipped > 0.1
    assert float(complex_stft_loss(-x, x, complex_weight=0.0)) < 1e-6


def test_complex_loss_weights_quiet_bins() -> None:
    # the same relative error 40 dB down: 0.01 ** 0.6 of the loud one, not 0.01 ** 2 (plain MSE)
    x = torch.randn(1, 4000)
    loud = float(complex_stft_loss(1.1 * x, x))
    quiet = float(complex_stft_loss(0.011 * x, 0.01 * x))
    assert quiet / loud > 100 * 0.01 ** 2  # plain squared error: 0.01 ** 2
    assert math.isclose(quiet / loud, 0.01 ** 0.6, rel_tol=0.05)


def test_complex_loss_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(1, 1, 4000\) and \(1, 4000\)"):
        complex_stft_loss(torch.randn(1, 1, 4000), torch.randn(1, 4000))
    with pytest.raises(ValueError, match="at least 1025 samples"):
        complex_stft_loss(torch.randn(1, 100), torch.randn(1, 100))
    with pytest.raises(ValueError, match="compression"):
        ComplexSTFTLoss(compression=0.0)


# --------------------------------------------------------------------------- complex STFT loss
def test_complex_stft_loss_is_the_mean_of_its_resolutions():
    torch.manual_seed(0)
    x, y = torch.randn(2, 1, 4096), torch.randn(2, 1, 4096)
    res = ((256, 64), (1024, 256))
    whole = complex_stft_loss(x, y, resolutions=res)
    parts = [complex_stft_loss(x, y, resolutions=(r,)) for r in res]
    torch.testing.assert_close(whole, sum(parts) / 2)


@pytest.mark.parametrize("kwargs,match", [
    ({"resolutions": ()}, "non-empty list"),
    ({"resolutions": ((2, 1),)}, "n_fft >= 4"),
    ({"resolutions": ((64, 0),)}, "1 <= hop <= n_fft"),
    ({"resolutions": ((64, 65),)}, "1 <= hop <= n_fft"),
    ({"compression": 0.0}, "compression"),
    ({"complex_weight": 1.5}, "complex_weight"),
    ({"eps": 0.0}, "eps"),
])
def test_complex_stft_loss_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ComplexSTFTLoss(**kwargs)


# --------------------------------------------------------------------------- STFT pair edges
def test_stft_same_frames_are_periodic_hann_windows_of_the_padded_signal():
    torch.manual_seed(0)
    audio = torch.randn(1, 64)
    spec = stft_same(audio, 16, 8)  # pad (16 - 8) / 2 = 4 each side
    padded = torch.nn.functional.pad(audio, (4, 4))
    window = torch.hann_window(16, periodic=True)
    torch.testing.assert_close(spec[0, :, 1], torch.fft.rfft(padded[0, 8:24] * window))


@pytest.mark.parametrize("n_fft,hop", [(8, 4), (8, 2), (4, 2)])
def test_a_single_frame_round_trips(n_fft, hop):
    audio = torch.randn(2, hop)
    back = istft_same(stft_same(audio, n_fft, hop), n_fft, hop)
    torch.testing.assert_close(back, audio, rtol=1e-5, atol=1e-5)


def test_hop_may_equal_n_fft():
    assert stft_same(torch.randn(1, 16), 8, 8).shape == (1, 5, 2)


@pytest.mark.parametrize("n_fft,hop", [(7, 1), (8, 9), (8, 3), (0, 1), (8, 0)])
def test_stft_pair_refuses_bad_sizes(n_fft, hop):
    with pytest.raises(ValueError):
        stft_same(torch.randn(1, 72), n_fft, hop)
    with pytest.raises(ValueError):
        istft_same(torch.zeros(1, max(n_fft, 2) // 2 + 1, 3, dtype=torch.complex64), n_fft, hop)


def test_istft_same_needs_a_complex_tensor_and_the_head_a_positive_dim():
    with pytest.raises(TypeError, match="complex"):
        istft_same(torch.zeros(1, 5, 3), 8, 4)
    with pytest.raises(ValueError, match="dim"):
        ISTFTHead(0, 8, 4)
    head = ISTFTHead(6, 8, 4)
    assert head(torch.randn(2, 6, 1)).shape == (2, 1, 4)  # one frame
