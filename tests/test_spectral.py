from __future__ import annotations

import math

import pytest
import torch

from rvq_blocks.spectral import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    mel_filterbank,
    multi_resolution_stft_loss,
    multi_scale_mel_loss,
)

SR = 16000
SMALL = {"window_lengths": (64, 256), "n_mels": (10, 40)}


def _losses():
    return {
        "mel": MultiScaleMelLoss(SR, **SMALL),
        "stft": MultiResolutionSTFTLoss(fft_sizes=(64, 256)),
        "mel_default": MultiScaleMelLoss(SR),
        "stft_default": MultiResolutionSTFTLoss(),
    }


@pytest.fixture(scope="module")
def losses():
    return _losses()


@pytest.fixture(scope="module")
def audio():
    g = torch.Generator().manual_seed(1)
    s = torch.arange(4096) / SR
    tone = 0.5 * torch.sin(2 * math.pi * 440 * s)
    return (tone + 0.1 * torch.randn(2, 1, 4096, generator=g)).clamp(-1, 1)  # (B, C, S)


@pytest.mark.parametrize("name", ["mel", "stft", "mel_default", "stft_default"])
def test_zero_for_identical_input(losses, audio, name):
    assert losses[name](audio, audio.clone()).item() == 0.0
    stereo = torch.cat([audio, -audio], 1)  # (B, 2, S)
    assert losses[name](stereo, stereo.clone()).item() == 0.0


@pytest.mark.parametrize("name", ["mel", "stft", "mel_default", "stft_default"])
def test_grows_with_distortion(losses, audio, name):
    noise = torch.randn(audio.shape, generator=torch.Generator().manual_seed(2))
    values = [losses[name](audio + a * noise, audio).item() for a in (0.003, 0.03, 0.3, 1.0)]
    assert all(lo < hi for lo, hi in zip(values, values[1:], strict=False)), values


@pytest.mark.parametrize("name", ["mel", "stft", "mel_default", "stft_default"])
def test_finite_on_silence_and_order_one(losses, audio, name):
    silence = torch.zeros_like(audio, requires_grad=True)
    for pred, target in ((silence, audio), (silence, torch.zeros_like(audio))):
        loss = losses[name](pred, target)
        (grad,) = torch.autograd.grad(loss, silence)
        assert torch.isfinite(loss) and bool(torch.isfinite(grad).all())
    # unit-scale audio against silence stays near log10(1 / floor) = 5, not in the hundreds
    assert losses[name](torch.zeros_like(audio), audio).item() < 8.0
    assert losses[name](audio, torch.zeros_like(audio)).item() < 8.0
    # two unrelated unit-variance signals: order one
    a, b = torch.randn(2, 2, 1, 4096, generator=torch.Generator().manual_seed(3))
    assert 0.05 < losses[name](a, b).item() < 3.0


@pytest.mark.parametrize("name", ["mel", "stft"])
def test_gain_of_two_is_log10_two(audio, name):
    loss = (MultiScaleMelLoss(SR, **SMALL, floor=1e-7) if name == "mel"
            else MultiResolutionSTFTLoss(fft_sizes=(64, 256), mag_weight=0.0, floor=1e-7))
    assert loss(2 * audio, audio).item() == pytest.approx(math.log10(2), rel=1e-3)


@pytest.mark.gradcheck
@pytest.mark.parametrize("kind", ["mel", "stft"])
def test_gradcheck(kind):
    pred = 0.5 * torch.randn(2, 1, 48, dtype=torch.float64)
    target = 0.5 * torch.randn(2, 1, 48, dtype=torch.float64)
    pred.requires_grad_(True)
    if kind == "mel":
        loss = MultiScaleMelLoss(8000, window_lengths=(8, 16), n_mels=(3, 6), mag_weight=1.0,
                                 dtype=torch.float64)
    else:
        loss = MultiResolutionSTFTLoss(fft_sizes=(8, 16), hop_sizes=(3, 5), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred,))


def test_functional_matches_module(audio):
    pred = audio + 0.1 * torch.randn_like(audio)
    torch.testing.assert_close(multi_scale_mel_loss(pred, audio, SR, **SMALL),
                               MultiScaleMelLoss(SR, **SMALL)(pred, audio))
    torch.testing.assert_close(multi_resolution_stft_loss(pred, audio, fft_sizes=(64, 256)),
                               MultiResolutionSTFTLoss(fft_sizes=(64, 256))(pred, audio))


def test_functional_forms_build_no_module_and_survive_inference_mode(audio, monkeypatch):
    """The functional losses run on cached windows and filterbanks, never on a Module built
    per call; a first call under inference_mode caches tensors that later training uses."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Module was built")

    monkeypatch.setattr(MultiScaleMelLoss, "__init__", refuse)
    monkeypatch.setattr(MultiResolutionSTFTLoss, "__init__", refuse)
    sizes = {"window_lengths": (48, 96), "n_mels": (6, 12)}  # not cached by other tests
    with torch.inference_mode():
        multi_scale_mel_loss(audio, audio, SR, **sizes)
        multi_resolution_stft_loss(audio, audio, fft_sizes=(48, 96))
    pred = audio.clone().requires_grad_(True)
    loss = multi_scale_mel_loss(pred, audio, SR, **sizes) + multi_resolution_stft_loss(
        pred, audio, fft_sizes=(48, 96))
    loss.backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())


def test_window_and_filterbank_buffers_follow_to_and_stay_out_of_the_state_dict(audio):
    loss = MultiScaleMelLoss(SR, **SMALL).to(torch.float64)
    buffers = dict(loss.named_buffers())
    assert len(buffers) == 4 and all(b.dtype == torch.float64 for b in buffers.values())
    assert len(loss.state_dict()) == 0
    ref = MultiScaleMelLoss(SR, **SMALL)  # float32 buffers, cast to the input's float64
    torch.testing.assert_close(loss(audio.double(), audio.double().flip(-1)),
                               ref(audio.double(), audio.double().flip(-1)), rtol=0, atol=0)


def test_mono_2d_equals_3d(audio):
    loss = MultiScaleMelLoss(SR, **SMALL)
    pred = audio + 0.1 * torch.randn_like(audio)
    torch.testing.assert_close(loss(pred[:, 0], audio[:, 0]), loss(pred, audio))


def test_half_precision_input_runs_in_float32(audio):
    loss = MultiResolutionSTFTLoss(fft_sizes=(64, 256))
    out = loss(audio.bfloat16(), (audio + 0.1).bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_mel_filterbank_bands_are_averages_and_never_empty():
    for n_fft, n_mels, sr in ((32, 5, 44100), (2048, 320, 44100), (64, 40, 16000)):
        fb = mel_filterbank(n_fft // 2 + 1, n_mels, sr)
        assert fb.shape == (n_fft // 2 + 1, n_mels)
        torch.testing.assert_close(fb.sum(0), torch.ones(n_mels))
        assert bool((fb >= 0).all())
    fb = mel_filterbank(513, 80, 16000, f_min=100.0, f_max=4000.0)
    freqs = torch.linspace(0, 8000, 513)
    used = fb.sum(1) > 0
    assert freqs[used].min() >= 100.0 - 1e-3 and freqs[used].max() <= 4000.0 + 1e-3


# (n_fft, n_mels, sample_rate, f_min, f_max): DAC's smallest and largest scales (the first has
# empty bands in every variant), common feature settings, a band-limited one
_LIBROSA_CASES = [(32, 5, 44100, 0.0, None), (2048, 320, 44100, 0.0, None),
                  (512, 80, 16000, 0.0, None), (1024, 128, 22050, 0.0, 8000.0),
                  (1024, 80, 24000, 30.0, 11000.0)]


@pytest.mark.filterwarnings("ignore:Empty filters detected")  # librosa, on the first case
@pytest.mark.parametrize("mel_scale,norm", [("slaney", "slaney"), ("htk", None),
                                            ("slaney", None), ("htk", "slaney")])
@pytest.mark.parametrize("n_fft,n_mels,sr,f_min,f_max", _LIBROSA_CASES)
def test_mel_filterbank_matches_librosa(n_fft, n_mels, sr, f_min, f_max, mel_scale, norm):
    librosa = pytest.importorskip("librosa")  # the test and dev extras install it
    import numpy as np

    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                              htk=mel_scale == "htk", norm=norm, dtype=np.float64)
    ref = torch.from_numpy(ref).T  # librosa is (n_mels, F); ours is (F, n_mels)
    for dtype in (torch.float64, torch.float32):
        fb = mel_filterbank(n_fft // 2 + 1, n_mels, sr, f_min=f_min, f_max=f_max,
                            mel_scale=mel_scale, norm=norm, dtype=dtype)
        assert fb.dtype == dtype
        torch.testing.assert_close(fb.double(), ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_mel_filterbank_default_is_htk_sum_and_norms_rescale_the_same_triangles():
    args = (513, 80, 16000)
    default = mel_filterbank(*args, dtype=torch.float64)
    assert torch.equal(default, mel_filterbank(*args, mel_scale="htk", norm="sum",
                                               dtype=torch.float64))
    peak = mel_filterbank(*args, norm=None, dtype=torch.float64)
    area = mel_filterbank(*args, norm="slaney", dtype=torch.float64)
    assert peak.max().item() <= 1.0 and peak.max().item() > 0.99  # triangles of height 1
    # same triangles, only the column scale differs
    torch.testing.assert_close(default, peak / peak.sum(0))
    torch.testing.assert_close(default, area / area.sum(0))
    slaney = mel_filterbank(*args, mel_scale="slaney", dtype=torch.float64)
    assert not torch.allclose(slaney, default)  # the scales place the bands differently
    torch.testing.assert_close(slaney.sum(0), torch.ones(80, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"mel_scale in \('htk', 'slaney'\), got 'mel'"):
        mel_filterbank(*args, mel_scale="mel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"norm in \('sum', 'slaney', None\), got 'l2'"):
        mel_filterbank(*args, norm="l2")  # type: ignore[arg-type]


def test_state_dict_round_trip(audio):
    loss = MultiScaleMelLoss(SR, **SMALL)
    assert loss.state_dict() == {}  # windows and filterbanks are derived, not saved
    other = MultiScaleMelLoss(SR, **SMALL)
    other.load_state_dict(loss.state_dict(), strict=True)
    pred = audio + 0.1
    torch.testing.assert_close(other(pred, audio), loss(pred, audio))
    stft = MultiResolutionSTFTLoss(fft_sizes=(64, 256))
    stft2 = MultiResolutionSTFTLoss(fft_sizes=(64, 256))
    stft2.load_state_dict(stft.state_dict(), strict=True)
    torch.testing.assert_close(stft2(pred, audio), stft(pred, audio))


def test_bad_inputs(audio):
    loss = MultiScaleMelLoss(SR, **SMALL)
    with pytest.raises(ValueError, match="at least 129 samples"):
        loss(audio[..., :100], audio[..., :100])
    with pytest.raises(ValueError, match=r"same shape, got \(2, 1, 4096\) and \(2, 1, 4000\)"):
        loss(audio, audio[..., :4000])
    with pytest.raises(ValueError, match=r"\(B, C, S\) or \(B, S\), got \(4096,\)"):
        loss(audio[0, 0], audio[0, 0])
    with pytest.raises(TypeError, match="floating-point"):
        loss(audio.long(), audio.long())
    with pytest.raises(ValueError, match="one n_mels per window length"):
        MultiScaleMelLoss(SR, window_lengths=(64, 256), n_mels=(10,))
    with pytest.raises(ValueError, match="floor > 0"):
        MultiResolutionSTFTLoss(floor=0.0)
    with pytest.raises(ValueError, match="positive sum"):
        MultiResolutionSTFTLoss(log_weight=0.0, mag_weight=0.0)
    with pytest.raises(ValueError, match="hop sizes"):
        MultiResolutionSTFTLoss(fft_sizes=(64, 256), hop_sizes=(16,))
    with pytest.raises(ValueError, match="f_min < f_max"):
        mel_filterbank(257, 40, 16000, f_max=9000.0)


def test_multi_resolution_losses_are_the_mean_of_their_single_resolutions(audio):
    """Every resolution counts: dropping one changes the value (a mutant that skipped one
    survived the other tests)."""
    pred = audio + 0.05 * torch.randn_like(audio)
    stft = MultiResolutionSTFTLoss(fft_sizes=(64, 256, 512), hop_sizes=(16, 64, 128))
    singles = [MultiResolutionSTFTLoss(fft_sizes=(n,), hop_sizes=(h,))(pred, audio)
               for n, h in ((64, 16), (256, 64), (512, 128))]
    assert len({round(float(s), 6) for s in singles}) == 3  # the resolutions differ
    torch.testing.assert_close(stft(pred, audio), torch.stack(singles).mean())
    mel = MultiScaleMelLoss(SR, **SMALL)
    mel_singles = [MultiScaleMelLoss(SR, window_lengths=(w,), n_mels=(m,))(pred, audio)
                   for w, m in zip(SMALL["window_lengths"], SMALL["n_mels"], strict=True)]
    torch.testing.assert_close(mel(pred, audio), torch.stack(mel_singles).mean())


FORMS = {
    "MultiResolutionSTFTLoss": lambda a, **kw: MultiResolutionSTFTLoss(**kw)(a, a),
    "MultiScaleMelLoss": lambda a, **kw: MultiScaleMelLoss(SR, **kw)(a, a),
    "multi_resolution_stft_loss": lambda a, **kw: multi_resolution_stft_loss(a, a, **kw),
    "multi_scale_mel_loss": lambda a, **kw: multi_scale_mel_loss(a, a, SR, **kw),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("option,other", [("log_weight", "mag_weight"),
                                          ("mag_weight", "log_weight"), ("floor", None)])
def test_every_option_is_checked_in_module_and_functional_form(form, option, other, audio):
    kwargs = {option: -1.0, **({other: 5.0} if other else {})}  # the weights' sum stays > 0
    with pytest.raises(ValueError, match=f"{option} >"):
        FORMS[form](audio, **kwargs)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_shortest_input_is_half_the_largest_window_plus_one(form, audio):
    FORMS[form](audio[..., :1025])  # default largest window 2048
    with pytest.raises(ValueError, match="at least 1025 samples"):
        FORMS[form](audio[..., :1024])


@pytest.mark.parametrize("sizes", [(), (2,), (64.5,), (64, 3)])
def test_window_sizes_must_be_integers_of_at_least_four(sizes):
    with pytest.raises(ValueError, match="window sizes >= 4"):
        MultiResolutionSTFTLoss(fft_sizes=sizes, hop_sizes=None)


def test_mel_filterbank_of_two_bins_is_the_smallest():
    assert mel_filterbank(2, 1, 16000).shape == (2, 1)
    with pytest.raises(ValueError, match="n_freqs >= 2"):
        mel_filterbank(1, 1, 16000)


def test_default_hops_are_a_quarter_window_and_the_smallest_sizes_work():
    assert MultiResolutionSTFTLoss(fft_sizes=(64, 256)).hop_sizes == (16, 64)
    smallest = MultiResolutionSTFTLoss(fft_sizes=(4,))
    assert smallest.hop_sizes == (1,)
    x = torch.randn(1, 1, 32)
    assert torch.isfinite(smallest(x, 0.5 * x))
    assert MultiResolutionSTFTLoss(fft_sizes=(8,), hop_sizes=(1,)).hop_sizes == (1,)
    with pytest.raises(ValueError, match="hop sizes >= 1"):
        MultiResolutionSTFTLoss(fft_sizes=(8,), hop_sizes=(0,))


def test_frames_are_centred_so_the_first_samples_count():
    """``center=True`` with reflect padding: a change in the first samples weighs about as
    much as the same change mid-signal (uncentred frames taper it away)."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 4096)
    loss = MultiResolutionSTFTLoss(fft_sizes=(512,))
    edge, middle = x.clone(), x.clone()
    edge[..., :4] += 3.0
    middle[..., 2048:2052] += 3.0
    assert float(loss(edge, x)) > 0.2 * float(loss(middle, x))


def test_empty_mel_bands_fall_back_to_the_bin_nearest_their_centre():
    fb = mel_filterbank(33, 40, 16000)  # 40 bands over 33 bins: many would be empty
    peaks = fb.argmax(0)
    assert bool((peaks[1:] >= peaks[:-1]).all()) and int(peaks[-1]) > 20
