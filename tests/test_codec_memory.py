"""The codec memory study (examples/telugu_codec/studies/codec_memory.py) on a short file."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("soundfile")

from examples.telugu_codec.checkpoint import PRETRAINED_DIR  # noqa: E402
from examples.telugu_codec.studies import codec_memory  # noqa: E402

needs_weights = pytest.mark.skipif(not (PRETRAINED_DIR / "weights.pt").is_file(),
                                   reason="needs the shipped weights (pretrained/weights.pt)")


def test_speech_shaped_noise_is_bounded_and_at_minus_20_dbfs():
    x = codec_memory.speech_shaped_noise(3.0, seed=1)
    assert x.shape == (48000,) and x.dtype == np.float32
    assert np.abs(x).max() <= 1.0
    assert 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))) == pytest.approx(-20, 0.05)


def test_stopped_runs_are_extrapolated_from_the_longest_completed_one():
    runs = [{"minutes": m, "op": "decode", "mode": "whole", "stopped": s, "per_audio_mib": p}
            for m, s, p in ((1, None, 10.0), (2, None, 30.0), (8, "RSS passed", 50.0))]
    codec_memory.extrapolate(runs, baseline_mib=300.0)
    assert runs[2]["growth_mib_per_min_from"] == 2
    assert runs[2]["extrapolated_peak_mib"] == 300.0 + 15.0 * 8
    assert "extrapolated_peak_mib" not in runs[0]


@needs_weights
def test_study_on_a_file_longer_than_one_chunk(tmp_path):
    """33 s of audio (two 30 s chunks): every run measured, decoding exact at the seam."""
    out = tmp_path / "codec_memory.json"
    assert codec_memory.main(["--minutes", "0.55", "--source", "noise", "--out", str(out),
                              "--work_dir", str(tmp_path / "work")]) == 0
    data = json.loads(out.read_text())
    meta = data["meta"]
    assert meta["chunk_frames"] * meta["hop"] < 0.55 * 60 * meta["sample_rate"]
    assert {"command", "threads", "weights_sha256_16", "center_latents"} <= meta.keys()
    assert data["baseline"]["peak_rss_mib"] > 0 and data["baseline"]["wall_s"] > 0
    runs = data["runs"]
    assert {(r["op"], r["mode"]) for r in runs} == {(o, m) for o in codec_memory.OPS
                                                     for m in codec_memory.MODES}
    for r in runs:
        assert r["minutes"] == 0.55 and r["returncode"] == 0 and r["stopped"] is None
        # the kernel's high-water mark comes from per-CPU counters, VmRSS from their exact
        # sum: they may differ by a few hundred KiB
        assert r["peak_rss_mib"] >= r["polled_peak_mib"] - 1 and r["polled_peak_mib"] > 0
        assert r["wall_s"] > 0
        assert r["per_audio_mib"] == pytest.approx(
            r["peak_rss_mib"] - data["baseline"]["peak_rss_mib"], abs=0.11)
    (cmp,) = data["compare"]
    # both decodes read the same code file: one pass and chunks give the same samples
    assert cmp["decoded_max_abs_diff_lsb"] <= 1
    # with center_latents each chunk removes its own latent mean, so only without it are
    # the chunked codes those of one pass
    assert 0 <= cmp["codes_differing_share"] <= 1
    assert cmp["codes_identical"] is (cmp["codes_differing_share"] == 0)
    if not meta["center_latents"]:
        assert cmp["codes_identical"]


# ---------------------------------------------------------------- the CLI's files, in pieces
@pytest.fixture(scope="module")
def tiny_codec():
    """A small untrained codec (any weights will do: the paths are compared, not the sound)."""
    import torch

    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    torch.manual_seed(0)
    model = TeluguCodec(CodecConfig(arch="frame", channels=4, enc_width=16, dec_width=16,
                                    num_quantizers=2, codebook_size=16)).eval()
    model.quantizer.train()
    model.quantizer(torch.randn(4, model.cfg.latent_dim, 64))  # a k-means init
    model.quantizer.eval()
    return model


SMALL = {"chunk_frames": 50, "context_frames": 8}  # 1 s chunks: a 7 s file has 8 of them


def _in_memory(model, audio, n_quantizers=None, **chunking):
    from examples.telugu_codec import codec

    return codec.pack_codes(codec.encode_audio(model, audio, n_quantizers, **chunking),
                            model.cfg.codebook_size, sample_rate=model.cfg.sample_rate,
                            hop=model.hop_length, num_samples=len(audio),
                            num_quantizers=model.cfg.num_quantizers,
                            fingerprint=codec.model_fingerprint(model))


@pytest.mark.parametrize("n_quantizers", [None, 1])
def test_streamed_files_equal_the_in_memory_path(tiny_codec, tmp_path, n_quantizers):
    """The CLI reads, codes and writes a chunk at a time: the same code file and samples as
    encode_audio and decode_codes on the whole array, read blocks not aligned with chunks."""
    import soundfile as sf

    from examples.telugu_codec import codec

    audio = np.random.default_rng(0).standard_normal(16000 * 7 + 123).astype(np.float32) * 0.2
    wav = tmp_path / "in.wav"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    data, samples = codec.encode_file(tiny_codec, wav, n_quantizers, read_block=1000, **SMALL)
    assert samples == len(audio) and codec.unpack_codes(data)[0].shape[1] == 351
    assert data == _in_memory(tiny_codec, audio, n_quantizers, **SMALL)
    # one pass (a chunk longer than the file) reads the file whole: the same codes here,
    # without center_latents
    if not tiny_codec.cfg.center_latents:
        assert codec.encode_file(tiny_codec, wav, n_quantizers, chunk_frames=10**6)[0] == data

    (tmp_path / "in.rvqc").write_bytes(data)
    out = tmp_path / "out.wav"
    assert codec.decode_file(tiny_codec, tmp_path / "in.rvqc", out, **SMALL) == len(audio)
    y, rate = sf.read(out, dtype="int16")
    ref = codec.decode_codes(tiny_codec, codec.unpack_codes(data)[0], **SMALL)[: len(audio)]
    sf.write(tmp_path / "ref.wav", ref, 16000)  # the same 16-bit conversion as before
    assert rate == 16000 and np.array_equal(y, sf.read(tmp_path / "ref.wav", dtype="int16")[0])
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_streamed_encode_of_a_stereo_44k_file_resamples_like_the_whole_file(tiny_codec,
                                                                            tmp_path):
    """Channels averaged and soxr resampling per block give the samples of reading the whole
    file (data._read), so the codes are those of the in-memory path."""
    import soundfile as sf

    from examples.telugu_codec import codec
    from examples.telugu_codec.data import _read

    rng = np.random.default_rng(1)
    stereo = (rng.standard_normal((44100 * 4 + 77, 2)) * 0.2).astype(np.float32)
    wav = tmp_path / "stereo.wav"
    sf.write(wav, stereo, 44100, subtype="PCM_24")
    audio = _read(wav, 16000, nonfinite="raise")
    data, samples = codec.encode_file(tiny_codec, wav, read_block=3000, **SMALL)
    assert samples == len(audio) == round(len(stereo) * 16000 / 44100)
    assert data == _in_memory(tiny_codec, audio, **SMALL)


def test_nan_in_the_middle_of_a_long_file_is_refused_naming_it(tiny_codec, tmp_path, capsys):
    import soundfile as sf

    from examples.telugu_codec import codec

    audio = np.random.default_rng(2).standard_normal(16000 * 20).astype(np.float32) * 0.1
    audio[[200_000, 250_001]] = np.nan, np.inf
    wav = tmp_path / "long.wav"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    # the whole file's count, as when it was read at once
    with pytest.raises(codec.CLIError, match=f"could not read audio from {wav}: it holds 2 "
                                             "NaN/inf samples; clean the file first"):
        codec.encode_file(tiny_codec, wav, read_block=4096, **SMALL)
    sf.write(wav, np.full(1000, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(codec.CLIError, match="no finite samples"):
        codec.encode_file(tiny_codec, wav, read_block=300, **SMALL)
    sf.write(wav, np.zeros(0, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(codec.CLIError, match=r"empty \(0 samples\)"):
        codec.encode_file(tiny_codec, wav)
    # beyond [-1, 1]: coded, and reported once per sample as before
    loud = np.zeros(16000 * 3, np.float32)
    loud[[10, 40_000]] = 1.5, -2.0
    sf.write(wav, loud, 16000, subtype="FLOAT")
    codec.encode_file(tiny_codec, wav, read_block=1000, **SMALL)
    assert "2 samples beyond [-1, 1] (peak 2.00)" in capsys.readouterr().err


@needs_weights
def test_cli_refuses_a_nan_late_in_a_file_and_writes_nothing(tmp_path, capsys):
    """A NaN past the first chunks: exit code 2, one error line naming the file, no output."""
    import soundfile as sf

    from examples.telugu_codec import codec

    audio = codec_memory.speech_shaped_noise(70.0)
    audio[16000 * 65] = np.nan
    wav, out = tmp_path / "late.wav", tmp_path / "late.rvqc"
    sf.write(wav, audio, 16000, subtype="FLOAT")
    assert codec.main(["encode", str(wav), str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: could not read audio from {wav}: it holds 1 NaN/inf samples; "
                   "clean the file first\n")
    assert not out.exists()


def test_decode_checks_the_file_before_writing_anything(tiny_codec, tmp_path):
    from examples.telugu_codec import codec

    audio = np.zeros(16000, np.float32)
    (tmp_path / "a.rvqc").write_bytes(codec.encode_wav(tiny_codec, audio))
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep")
    with pytest.raises(ValueError, match=r"--n_quantizers must be in \[1, 2\]"):
        codec.decode_file(tiny_codec, tmp_path / "a.rvqc", out, 3)
    (tmp_path / "b.rvqc").write_bytes(codec.encode_wav(tiny_codec, audio)[:-1])
    with pytest.raises(codec.CodeFileError, match="truncated"):
        codec.decode_file(tiny_codec, tmp_path / "b.rvqc", out)
    with pytest.raises(codec.CLIError, match="audio format of .*out.xyz"):
        codec.decode_file(tiny_codec, tmp_path / "a.rvqc", tmp_path / "out.xyz")
    assert out.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.rvqc", "b.rvqc", "out.wav"]
