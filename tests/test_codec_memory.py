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
        assert r["peak_rss_mib"] >= r["polled_peak_mib"] > 0 and r["wall_s"] > 0
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
