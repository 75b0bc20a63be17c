"""The step-speed study (examples/telugu_codec/studies/step_speed.py) on a tiny data set."""

from __future__ import annotations

import json

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from examples.telugu_codec.studies import step_speed  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Six training and two held-out clips of 1 s of a crude voiced sound."""
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for split, n in (("train", 6), ("heldout", 2)):
        (root / split).mkdir()
        for i in range(n):
            phase = 2 * np.pi * np.cumsum(rng.uniform(90, 220) * (1 + 0.1 * np.sin(t))) / 16000
            x = sum(np.sin(k * phase) / k for k in range(1, 8)) * np.sin(2 * np.pi * 4 * t) ** 2
            sf.write(root / split / f"{split}{i}.wav", (0.1 * x / np.abs(x).max()), 16000)
    return root


def test_both_models_are_timed_interleaved(data_dir, tmp_path):
    out = tmp_path / "step_speed.json"
    # the default models; a small batch and codebook keep the k-means and the steps short
    assert step_speed.main(["--steps", "2", "--warmup", "1", "--threads", "1", "--data_dir",
                            str(data_dir), "--out", str(out), "--", "--batch_size", "2",
                            "--kmeans_batches", "1", "--codebook_size", "16"]) == 0
    data = json.loads(out.read_text())
    meta = data["meta"]
    assert meta["threads"] == 1 and meta["torch_threads"] == 1
    assert meta["steps"] == 2 and meta["warmup_steps"] == 1
    assert meta["order"] == ["frame", "seanet"]
    assert meta["batch_size"] == 2 and meta["segment_samples"] == 7680  # 0.48 s, the default
    assert meta["train_flags"][:2] == ["--batch_size", "2"]
    assert meta["data"] == str(data_dir)
    assert meta["command"].startswith("python -m examples.telugu_codec.studies.step_speed")
    for key in ("loadavg_start", "loadavg_end"):
        assert len(meta[key]) == 3
    assert len(meta["loadavg_rounds"]) == 2
    assert set(data["models"]) == {"frame", "seanet"}
    for arch, m in data["models"].items():
        assert len(m["times_s"]) == 2 and all(t > 0 for t in m["times_s"]), arch
        assert m["q1_s"] <= m["median_s"] <= m["q3_s"]
        assert m["iqr_s"] == pytest.approx(m["q3_s"] - m["q1_s"], abs=2e-4)
        assert m["steps_per_s"] == pytest.approx(1 / m["median_s"], rel=1e-2)
        assert m["parameters"] > 10**6
    assert data["models"]["frame"]["frame_rate_hz"] == 50
    assert data["models"]["frame"]["losses"] == ["cstft", "mel", "time", "rms"]
    assert data["models"]["seanet"]["losses"] == ["mel", "time", "rms"]
    assert data["models"]["frame"]["parameters"] != data["models"]["seanet"]["parameters"]
    ratio = data["ratio"]
    assert ratio["frame_over_seanet_steps_per_s"] == pytest.approx(
        data["models"]["frame"]["steps_per_s"] / data["models"]["seanet"]["steps_per_s"],
        rel=2e-2)
    assert ratio["per_round_q1"] <= ratio["per_round_median"] <= ratio["per_round_q3"]


def test_summary_of_step_times():
    s = step_speed.summarise([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s["median_s"], s["q1_s"], s["q3_s"], s["iqr_s"]) == (3.0, 2.0, 4.0, 2.0)
    assert s["steps_per_s"] == pytest.approx(1 / 3, abs=1e-3)
    r = step_speed.ratios({"frame": [1.0, 1.0, 2.0], "seanet": [4.0, 5.0, 4.0]})
    assert r["frame_over_seanet_steps_per_s"] == 4.0
    assert r["per_round_median"] == 4.0
