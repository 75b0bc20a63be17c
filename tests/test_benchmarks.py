"""The benchmark scripts still run (smoke mode, rvq_blocks alone; peers are a separate extra)."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bench(module: str, *args: str) -> None:
    """Run ``python -m benchmarks.<module> args`` from the repository root; it must succeed."""
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_rate_distortion_smoke(tmp_path):
    out = tmp_path / "rd.json"
    _bench("bench_rate_distortion", "--quick", "--impls", "rvq_blocks", "--out", str(out))
    results = json.loads(out.read_text())
    for config in results["configs"].values():
        rows = {r["variant"]: r for r in config["results"] if r["implementation"] == "rvq_blocks"}
        assert rows["default"]["snr_db"] > 0
        # Same seed, same (greedy) training: the beam search only changes the encoding.
        assert rows["beam_size=4"]["snr_db"] > rows["default"]["snr_db"]


def test_ddp_bench_reads_real_latents_and_a_trained_quantizer(tmp_path):
    """The --latents/--rvq_state path (real encoder latents, trained quantizer state dict,
    nested under a model prefix as a codec checkpoint holds it)."""
    import torch

    from rvq_blocks import ResidualVQ

    latents = torch.randn(3, 16, 40)
    rvq = ResidualVQ(16, 3, 32, codebook_dim=8)
    for _ in range(3):
        rvq(latents)
    torch.save({"latents": latents}, tmp_path / "lat.pt")
    torch.save({"state_dict": {f"quantizer.{k}": v for k, v in rvq.state_dict().items()}},
               tmp_path / "rvq.pt")
    bf16 = _bf16_agreement(tmp_path, "rvq.pt")
    assert "rvq.pt: trained state, 3 x 32, codebook_dim 8" in bf16["quantizer"]
    assert bf16["autocast_fp32_latents_identical_pct"] == 100.0
    assert len(bf16["bf16_latents_identical_pct_per_stage"]) == 3
    assert bf16["frames"] == 3 * 40


def test_ddp_bench_reads_a_codec_checkpoint_with_a_header_line(tmp_path):
    import io

    import torch

    from rvq_blocks import ResidualVQ

    model = torch.nn.ModuleDict({"encoder": torch.nn.Conv1d(1, 16, 3),
                                 "quantizer": ResidualVQ(16, 2, 8, codebook_dim=4)})
    model["quantizer"](torch.randn(2, 16, 30))
    buf = io.BytesIO()
    import numpy as np  # real checkpoints also hold the RNG states, numpy's included

    torch.save({"model": model.state_dict(), "epoch": 3,
                "rng": {"numpy": np.random.get_state()}}, buf)
    (tmp_path / "last.pt").write_bytes(b"RVQCKPT1 0123abcd\n" + buf.getvalue())
    torch.save(torch.randn(2, 16, 25), tmp_path / "lat.pt")
    assert "2 x 8, codebook_dim 4" in _bf16_agreement(tmp_path, "last.pt")["quantizer"]


def _bf16_agreement(tmp_path, state_name: str) -> dict:
    """Run bench_ddp.py's bf16 part on tmp_path/lat.pt and tmp_path/state_name; its JSON."""
    out = tmp_path / "ddp.json"
    _bench("bench_ddp", "--skip_ddp", "--latents", str(tmp_path / "lat.pt"), "--rvq_state",
           str(tmp_path / state_name), "--out", str(out))
    return json.loads(out.read_text())["bf16"]


def _synthetic_clips(seconds: float = 1.5, sr: int = 16000) -> list:
    """A chirp (200 Hz -> 2 kHz) and a speech-like harmonic tone (f0 130 Hz, 3 Hz envelope)."""
    import numpy as np

    from examples.telugu_codec.data import Clip

    t = np.arange(int(seconds * sr)) / sr
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 600 * t**2))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3 * t))
    voiced = 0.1 * envelope * sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 20))
    return [Clip("chirp.wav", chirp.astype(np.float32)), Clip("voiced.wav",
                                                               voiced.astype(np.float32))]


def _codec_quality_deps():
    pytest.importorskip("soundfile")
    pytest.importorskip("soxr")
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    if not (shutil.which("c2enc") and shutil.which("c2dec")):
        pytest.skip("Codec2 (c2enc/c2dec) is not installed: apt-get install codec2")
    from examples.telugu_codec.studies import codec_quality

    return codec_quality


def test_codec_quality_bitrates_lengths_and_alignment(tmp_path):
    """Every coder on two short synthetic clips with a tiny untrained codec: measured bitrates,
    output lengths, and the delay search."""
    import numpy as np

    from examples.telugu_codec.metrics import snr
    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    cq = _codec_quality_deps()
    clips = _synthetic_clips()
    model = TeluguCodec(CodecConfig(channels=4, num_quantizers=2, codebook_size=16)).eval()
    rows = cq.run(model, {"synth": clips}, opus_kbps=(6, 16), codec2_modes=("3200", "700C"),
                  log=lambda *_: None)
    by = {(r["system"], r["setting"]): r for r in rows}
    assert set(by) == {("telugu_codec", "2 of 2 quantizers"), ("telugu_codec", "1 of 2 quantizers"),
                       ("opus", "target 6 kbps"), ("opus", "target 16 kbps"),
                       ("codec2", "mode 3200"), ("codec2", "mode 700C"),
                       ("resample_8k", "16 -> 8 -> 16 kHz, no coding")}
    # 1.5 s is 75 frames of 320 samples: n x 4 bits x 50 Hz exactly.
    assert by["telugu_codec", "2 of 2 quantizers"]["payload_kbps"] == 0.4
    assert by["telugu_codec", "1 of 2 quantizers"]["payload_kbps"] == 0.2
    for target in (6, 16):
        r = by["opus", f"target {target} kbps"]
        assert 0.7 * target < r["payload_kbps"] < 1.3 * target, r
        assert r["kbps"] > r["payload_kbps"] + 1  # the Ogg pages and headers of short files
        assert r["decoded_length_equals_input"]
        assert abs(r["lag_samples"]) <= 2  # libsndfile removes the pre-skip itself
    assert by["opus", "target 16 kbps"]["metrics"]["snr"] > \
        by["opus", "target 6 kbps"]["metrics"]["snr"] + 3
    # Headerless Codec2 files: whole bytes per frame (700C: 28 bits in 4 bytes).
    assert by["codec2", "mode 3200"]["kbps"] == 3.2
    assert by["codec2", "mode 700C"]["kbps"] == 0.8
    assert 5 < by["codec2", "mode 3200"]["lag_ms"] < 40
    assert by["resample_8k", "16 -> 8 -> 16 kHz, no coding"]["metrics"]["snr"] > 30
    assert all("pesq_wb" in r["metrics"] and "stoi" in r["metrics"] for r in rows)

    x = clips[1].audio
    outs, frames = cq.codec_roundtrip(model, x, [2, 1])
    assert frames == 75 and all(len(y) == len(x) for y in outs.values())
    decoded, _, _ = cq.opus_roundtrip(x, cq.opus_level(16000))
    assert len(decoded) == len(x)
    y, _, samples_8k = cq.codec2_roundtrip(x, "3200", tmp_path)
    assert samples_8k % 160 == 0 and len(y) >= len(x) + 0.09 * 16000
    # A decoder that kept Opus's pre-skip (312 samples at 48 kHz = 104 at 16 kHz) lags by 104:
    # the search finds it, and aligning restores the SNR.
    late = np.concatenate([np.zeros(104, np.float32), decoded])
    lag, corr, corr0 = cq.estimate_lag([x], [late], 320)
    assert lag == 104 and corr > 0.9 > corr0
    aligned = cq.shift(late, lag, len(x))
    assert len(aligned) == len(x)
    assert snr(x, aligned) > snr(x, late[:len(x)]) + 15


def test_codec_quality_cli_writes_json_that_the_report_renders(tmp_path):
    import soundfile as sf
    import torch

    from examples.telugu_codec.checkpoint import save_checkpoint
    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    cq = _codec_quality_deps()
    from benchmarks import report

    cfg = CodecConfig(channels=4, num_quantizers=2, codebook_size=16)
    ckpt = save_checkpoint(tmp_path / "ckpt", {"config": cfg.to_dict(),
                                               "model": TeluguCodec(cfg).state_dict()})
    for split, clip in zip(("train", "heldout", "heldout"), [*_synthetic_clips()[:1],
                                                             *_synthetic_clips()], strict=True):
        (tmp_path / "corpus" / split).mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "corpus" / split / clip.name, clip.audio, 16000, subtype="PCM_16")
    out = tmp_path / "results" / "codec_quality.json"
    threads = torch.get_num_threads()
    try:
        assert cq.main(["--checkpoint", str(ckpt), "--corpus", str(tmp_path / "corpus"),
                        "--max_seconds", "2", "--opus_kbps", "8", "--codec2_modes", "1600",
                        "--no_perceptual", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    data = json.loads(out.read_text())
    assert data["sets"]["heldout"]["clips"] == 1  # 1.5 s each: the second would pass 2 s
    assert [r["system"] for r in data["results"]] == ["telugu_codec", "telugu_codec", "opus",
                                                     "codec2", "resample_8k"]
    assert data["model"]["full_kbps"] == 0.4
    assert "--max_seconds 2" in data["meta"]["command"]
    assert data["meta"]["libopus"].startswith("libopus")
    text = report.render(out.parent)["benchmarks.md"]
    assert "## Codec quality against Opus and Codec2" in text
    assert "| **Telugu codec** | 2 of 2 quantizers | 0.40 |" in text
    # Without its JSON the section is left out, not noted.
    assert "codec_quality" not in report.render(tmp_path / "ckpt")["benchmarks.md"]


# ----------------------------------------------------------------- bench_codebook_usage.py
def _tiny_corpus(root: pathlib.Path) -> pathlib.Path:
    """train/ and heldout/ WAVs of tones in noise (1 s, 16 kHz)."""
    np = pytest.importorskip("numpy")
    sf = pytest.importorskip("soundfile")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for split, n in (("train", 3), ("heldout", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            f0 = 110.0 * (i + 2) + (7.0 if split == "heldout" else 0.0)
            audio = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
            sf.write(root / split / f"{i}.wav", audio.astype(np.float32), 16000)
    return root


def test_codebook_usage_smoke(tmp_path):
    """Every variant on both models, tiny sizes, 2 steps: the JSON schema and the figures."""
    from benchmarks import bench_codebook_usage as bench
    from benchmarks._usage_models import VARIANTS

    out = tmp_path / "usage.json"
    import torch

    threads = torch.get_num_threads()
    try:
        bench.main(["--quick", "--threads", "1", "--data_dir",
                    str(_tiny_corpus(tmp_path / "data")), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    results = json.loads(out.read_text())
    meta = results["meta"]
    assert {"torch", "threads", "machine", "steps", "seed", "data"} <= set(meta)
    assert meta["steps"] == 2 and meta["checkpoints"] == [1, 2]
    assert set(results["models"]) == {"a", "b"}
    for key, model in results["models"].items():
        q, k = model["num_quantizers"], model["codebook_size"]
        frames = model["segment_samples"] // model["hop_length"]
        # the window: 12 x codebook_size frames, or every held-out frame when there are fewer
        assert model["eval_frames"] == min(model["heldout_frames_available"],
                                           -(-12 * k // frames) * frames)
        rows = {r["variant"]: r for r in model["results"]}
        assert list(rows) == list(VARIANTS)
        for name, row in rows.items():
            if "skipped" in row:  # only the peer may be missing (it is in the bench extra)
                assert name == "vqtorch", row
                continue
            assert [c["step"] for c in row["checkpoints"]] == [1, 2], (key, name)
            for c in row["checkpoints"]:
                used = c["codes_used"]
                assert len(used) == q
                # fractions of the codebook, and at least one code chosen per stage
                assert all(1 / k <= u <= 1 for u in used), (key, name, used)
                assert c["min_codes_used"] == min(used)
                assert c["mean_codes_used"] == pytest.approx(sum(used) / q)
                assert all(float(u * k).is_integer() for u in used)
                assert isinstance(c["snr_db"], float) and c["snr_db"] == c["snr_db"]
            assert row["final"]["step"] == 2 and row["steps_run"] == 2
            assert row["s_per_step"] > 0
    # docs/benchmarks.md renders it: one row per quantizer, one column per checkpoint step
    from benchmarks import report

    text = report.codebook_usage(results, report.Figures(tmp_path / "img", draw=False))
    assert "| quantizer | step 1 | step 2 | SNR dB | SI-SNR dB | s/step |" in text
    assert text.count("| `ResidualVQ` defaults |") == 2


def test_codebook_usage_simvq_behaves_like_residual_vq():
    """The benchmark's SimVQ: codes decode to the forward output, straight-through gradient
    to the latents, and the codebook loss trains the linear map (not the frozen matrix)."""
    import torch

    from benchmarks._usage_models import SimVQ

    torch.manual_seed(0)
    vq = SimVQ(dim=6, num_quantizers=3, codebook_size=16)
    x = torch.randn(2, 6, 10, requires_grad=True)
    out = vq(x)
    assert out.indices.shape == (2, 3, 10)
    assert torch.equal(vq.encode(x), out.indices)
    torch.testing.assert_close(vq.decode(out.indices), out.quantized.detach())
    (out.quantized * 3.0).sum().backward(retain_graph=True)
    torch.testing.assert_close(x.grad, torch.full_like(x, 3.0))
    out.loss.backward()
    assert all(p.weight.grad is not None and p.weight.grad.abs().sum() > 0 for p in vq.proj)
    assert not vq.frozen.requires_grad
    assert [n for n, _ in vq.named_parameters()] == ["proj.0.weight", "proj.1.weight",
                                                       "proj.2.weight"]
