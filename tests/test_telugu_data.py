"""Data layer of the Telugu codec example: loading, splits, crops, loudness, corpus builder."""

import json
import shutil

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from examples.telugu_codec.data import (  # noqa: E402
    Clip,
    RandomCrops,
    eval_subset,
    load_audio_dir,
    load_corpus,
    load_heldout,
    loudness_normalize,
    normalization_gain,
    split_heldout,
)
from examples.telugu_codec.texts import load_sentences, random_words, split_sentences  # noqa: E402


def _sine(freq, rate, seconds, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _clips(n, length=1000):
    return [Clip(f"c{i:03d}.wav", np.full(length, i, np.float32)) for i in range(n)]


# --- held-out clips --------------------------------------------------------------------------

def test_load_heldout_reads_heldout_or_splits_or_takes_the_whole_directory(tmp_path):
    quiet = lambda m: None  # noqa: E731
    corpus = tmp_path / "corpus"
    for split, names in (("train", ("a", "b")), ("heldout", ("c",))):
        (corpus / split).mkdir(parents=True)
        for name in names:
            sf.write(corpus / split / f"{name}.wav", _sine(300, 16000, 1.0), 16000)
    assert [c.name for c in load_heldout(tmp_path, corpus, log=quiet)] == ["c.wav"]
    assert [c.name for c in load_heldout(tmp_path, corpus, whole_dir=True, log=quiet)] == \
        ["c.wav"]
    flat = corpus / "train"  # no train/ and heldout/ inside: split by name hash, or all of it
    split = load_heldout(tmp_path, flat, log=quiet)
    assert [c.name for c in split] == [c.name for c in load_corpus(flat, log=quiet)[1]]
    assert len(split) == 1
    assert [c.name for c in load_heldout(tmp_path, flat, whole_dir=True, log=quiet)] == \
        ["a.wav", "b.wav"]


def test_eval_subset_keeps_the_order_and_at_least_one_clip():
    clips = _clips(5, length=16000)
    assert [c.name for c in eval_subset(clips, 2.5, 16000)] == ["c000.wav", "c001.wav"]
    assert [c.name for c in eval_subset(clips, 0.1, 16000)] == ["c000.wav"]


# --- load_audio_dir -------------------------------------------------------------------------

def test_missing_directory_raises_with_its_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_audio_dir(tmp_path / "nowhere", log=lambda m: None)


def test_directory_without_audio_raises_with_name_and_contents(tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(ValueError, match=rf"{tmp_path}.*found 1 \.txt"):
        load_audio_dir(tmp_path, log=lambda m: None)


def test_bad_files_are_reported_by_name_and_skipped(tmp_path):
    sf.write(tmp_path / "good.wav", _sine(300, 16000, 1.0), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 10)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(tmp_path / "short.wav", _sine(300, 16000, 0.1), 16000)
    sf.write(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    lines = []
    clips = load_audio_dir(tmp_path, log=lines.append)
    assert [c.name for c in clips] == ["good.wav"]
    skipped = {line.split(":")[0]: line for line in lines if line.startswith("skipping")}
    assert set(skipped) == {f"skipping {n}.wav" for n in ("corrupt", "empty", "short", "nan")}
    assert "too short" in skipped["skipping short.wav"]
    assert "empty" in skipped["skipping empty.wav"]
    assert "NaN" in skipped["skipping nan.wav"]


def test_directory_with_only_bad_audio_raises(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "corrupt.flac").write_bytes(b"not flac at all")
    lines = []
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_audio_dir(tmp_path, log=lines.append)
    assert any("sub/corrupt.flac" in line for line in lines)


@pytest.mark.parametrize("rate", [22050, 44100])
def test_resampled_to_16k_with_same_frequency_and_duration(tmp_path, rate):
    sf.write(tmp_path / "tone.wav", _sine(440.0, rate, 2.0), rate, subtype="PCM_16")
    (clip,) = load_audio_dir(tmp_path, log=lambda m: None)
    assert clip.audio.dtype == np.float32
    assert abs(clip.audio.size - 32000) <= 2
    spectrum = np.abs(np.fft.rfft(clip.audio * np.hanning(clip.audio.size)))
    assert abs(np.argmax(spectrum) * 16000 / clip.audio.size - 440.0) < 1.0
    assert 0.45 < np.abs(clip.audio).max() < 0.55


def test_multichannel_becomes_mono_mean_and_int_becomes_float(tmp_path):
    left, right = _sine(200, 16000, 1.0, 0.6), np.full(16000, 0.2, np.float32)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    sf.write(tmp_path / "quad.flac", np.full((16000, 4), -0.25, np.float32), 16000)
    clips = {c.name: c.audio for c in load_audio_dir(tmp_path, log=lambda m: None)}
    assert clips["stereo.wav"].ndim == 1
    np.testing.assert_allclose(clips["stereo.wav"], (left + right) / 2, atol=1e-4)
    np.testing.assert_allclose(clips["quad.flac"], -0.25, atol=1e-4)


# --- splits -----------------------------------------------------------------------------------

def test_split_heldout_is_disjoint_deterministic_and_order_free():
    clips = _clips(50)
    train, heldout = split_heldout(clips, 0.1, seed=0)
    assert len(heldout) == 5 and len(train) == 45
    assert {c.name for c in train}.isdisjoint(c.name for c in heldout)
    again = split_heldout(list(reversed(clips)), 0.1, seed=0)[1]
    assert {c.name for c in again} == {c.name for c in heldout}
    other = split_heldout(clips, 0.1, seed=1)[1]
    assert {c.name for c in other} != {c.name for c in heldout}
    assert split_heldout(_clips(2), 0.01)[1] != []
    with pytest.raises(ValueError, match="fraction"):
        split_heldout(clips, 1.0)


def test_load_corpus_uses_train_and_heldout_subdirectories(tmp_path):
    for split, n in (("train", 3), ("heldout", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            sf.write(tmp_path / split / f"{i}.wav", _sine(200 + i, 16000, 0.6), 16000)
    train, heldout = load_corpus(tmp_path, log=lambda m: None)
    assert (len(train), len(heldout)) == (3, 2)
    flat = tmp_path / "train"
    train, heldout = load_corpus(flat, heldout_fraction=0.34, log=lambda m: None)
    assert (len(train), len(heldout)) == (1, 2)


def test_shipped_sentences_split_is_disjoint_and_stable():
    sentences = load_sentences()
    assert len(sentences) >= 400
    train, heldout = split_sentences(sentences)
    assert {s.text for s in train}.isdisjoint(s.text for s in heldout)
    assert 0.05 < len(heldout) / len(sentences) < 0.2
    assert split_sentences(list(reversed(sentences)))[1] == heldout[::-1]
    line = random_words(np.random.default_rng(3), 5)
    assert line == random_words(np.random.default_rng(3), 5) and len(line.split()) == 5
    assert all("\u0c00" <= ch <= "\u0c7f" for ch in line.replace(" ", "").rstrip("."))


# --- RandomCrops ------------------------------------------------------------------------------

def test_random_crops_are_a_function_of_seed_epoch_and_index():
    rng = np.random.default_rng(0)
    clips = [Clip(str(i), rng.standard_normal(n).astype(np.float32))
             for i, n in enumerate((5000, 20000, 700))]
    crops = RandomCrops(clips, 1000, crops_per_epoch=16, seed=7)
    crops.set_epoch(3)
    epoch3 = torch.stack([crops[i] for i in range(16)])
    assert epoch3.shape == (16, 1, 1000) and epoch3.dtype == torch.float32
    crops.set_epoch(4)
    assert not torch.equal(torch.stack([crops[i] for i in range(16)]), epoch3)
    resumed = RandomCrops(clips, 1000, crops_per_epoch=16, seed=7)
    resumed.set_epoch(3)
    assert torch.equal(torch.stack([resumed[i] for i in range(16)]), epoch3)
    loader = torch.utils.data.DataLoader(resumed, batch_size=4, num_workers=2)
    assert torch.equal(torch.cat(list(loader)), epoch3)


def test_random_crops_pad_short_clips_and_prefer_long_ones():
    clips = [Clip("short", np.ones(100, np.float32)), Clip("long", np.ones(100_000, np.float32))]
    crops = RandomCrops(clips, 1000, crops_per_epoch=400, seed=0)
    chosen = [crops.crop_position(i)[0] for i in range(400)]
    assert chosen.count(0) <= 2
    only_short = RandomCrops(clips[:1], 1000, crops_per_epoch=1)
    item = only_short[0][0]
    assert torch.all(item[:100] == 1) and torch.all(item[100:] == 0)


# --- loudness ---------------------------------------------------------------------------------

def test_loudness_normalize_reaches_minus_20_dbfs_rms():
    for amplitude in (0.01, 0.3, 0.9):
        out = loudness_normalize(_sine(300, 16000, 1.0, amplitude))
        assert out.dtype == np.float32
        assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(
            -20.0, abs=0.01)


def test_loudness_normalize_never_clips():
    spiky = np.zeros(16000, np.float32)
    spiky[::4000] = 0.5  # crest factor far above 20 dB: the RMS gain would clip
    out = loudness_normalize(spiky)
    assert np.abs(out).max() == pytest.approx(0.99, abs=1e-6)
    assert normalization_gain(spiky)[1] is True
    silent = np.zeros(100, np.float32)
    np.testing.assert_array_equal(loudness_normalize(silent), silent)


# --- corpus builder ---------------------------------------------------------------------------

@pytest.mark.skipif(not (shutil.which("festival") and shutil.which("espeak-ng")),
                    reason="needs festival, festvox-te-nsk and espeak-ng")
def test_tiny_corpus_has_disjoint_heldout_sentences_and_voices(tmp_path):
    from examples.telugu_codec.corpus import build_default_corpus

    out = build_default_corpus(tmp_path / "corpus", minutes=0.3, log=lambda m: None)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = manifest["files"]
    by_split = {s: [f for f in files if f["split"] == s] for s in ("train", "heldout")}
    assert by_split["train"] and by_split["heldout"]
    for key in ("text", "voice"):
        assert {f[key] for f in by_split["train"]}.isdisjoint(f[key] for f in by_split["heldout"])
    clip = load_audio_dir(out / "heldout", log=lambda m: None)[0].audio
    assert 20 * np.log10(np.sqrt(np.mean(clip.astype(np.float64) ** 2))) == pytest.approx(
        -20.0, abs=0.5)
    assert np.abs(clip).max() <= 0.991
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]  # no leftover temp dir
    lines = []
    build_default_corpus(tmp_path / "corpus", minutes=0.3, log=lines.append)
    assert lines[-1].startswith("reusing")
