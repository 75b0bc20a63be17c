"""The studies of the Telugu example codec (examples/telugu_codec/studies/): the codec-quality
comparison against Opus and Codec2, and its JSON as the benchmark report renders it."""

import json
import shutil

import pytest


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


def test_write_json_replaces_the_file_whole(tmp_path):
    """The studies' JSON goes through a temporary file beside the target, then replaces it."""
    from examples.telugu_codec.studies import write_json

    out = tmp_path / "results" / "study.json"
    write_json(out, {"a": 1})
    write_json(out, {"b": [1, 2]})
    assert json.loads(out.read_text()) == {"b": [1, 2]}
    assert out.read_text().endswith("}\n")
    assert [p.name for p in out.parent.iterdir()] == ["study.json"]


def test_ablation_variants_are_valid_training_command_lines():
    """Every variant of both ablation recipes parses as the training script's flags, and each
    differs from its recipe's baseline in what its flags name."""
    from examples.telugu_codec.studies.ablation import RECIPES
    from examples.telugu_codec.train import build_parser

    parser = build_parser()
    for name, recipe in RECIPES.items():
        base = vars(parser.parse_args(recipe.flags))
        assert "baseline" in recipe.variants and recipe.variants["baseline"][1] == []
        for variant, (label, flags) in recipe.variants.items():
            assert label, (name, variant)
            args = vars(parser.parse_args([*recipe.flags, *flags]))
            changed = {k for k in args if args[k] != base[k]}
            assert bool(changed) == (variant != "baseline"), (name, variant, changed)
    assert vars(parser.parse_args(RECIPES["seanet"].flags))["arch"] == "seanet"
    assert vars(parser.parse_args(RECIPES["frame"].flags))["arch"] == "frame"


def test_ablation_rejects_a_variant_of_the_other_recipe(capsys):
    from examples.telugu_codec.studies import ablation

    with pytest.raises(SystemExit):
        ablation.main(["--recipe", "frame", "--only", "head_tanh"])
    assert "unknown variants ['head_tanh']" in capsys.readouterr().err


def test_band_power_puts_a_tone_in_its_band():
    import numpy as np
    import torch

    from examples.telugu_codec.studies.band_energy import EDGES_HZ, _band_power

    t = torch.arange(16000) / 16000
    spec = torch.stft(torch.sin(2 * np.pi * 1200 * t), 1024, 256, window=torch.hann_window(1024),
                      return_complex=True)
    power = _band_power(spec, 16000, EDGES_HZ)
    assert power[3] > 0.99 * sum(power)  # 1000-1500 Hz


def test_band_ratios_of_a_frame_model():
    """Every path's energy per band: the head's own output (on its STFT grid) is the bypass
    output (on the study's grid), so the two agree; the predicted spectrum is its own row."""
    import math

    import torch

    from examples.telugu_codec.model import CodecConfig, TeluguCodec
    from examples.telugu_codec.studies.band_energy import EDGES_HZ, band_ratios

    torch.manual_seed(0)
    model = TeluguCodec(CodecConfig(arch="frame", num_quantizers=2, codebook_size=16,
                                    enc_width=16, enc_blocks=1, dec_width=16,
                                    dec_blocks=1)).eval()
    out = band_ratios(model, _synthetic_clips())
    assert set(out) == {"codes_vs_input_db", "bypass_vs_input_db",
                        "head_predicted_vs_input_db", "head_output_vs_input_db"}
    for row in out.values():
        assert len(row) == len(EDGES_HZ) - 1 and all(math.isfinite(v) for v in row)
    for a, b in zip(out["head_output_vs_input_db"], out["bypass_vs_input_db"], strict=True):
        assert abs(a - b) < 1.5, out


def test_checkpoint_scores_are_means_over_the_clips():
    """``studies.checkpoints.score``: every metric, the mean over the clips of each clip's
    score alone."""
    import math

    import torch

    from examples.telugu_codec.model import CodecConfig, TeluguCodec
    from examples.telugu_codec.studies.checkpoints import score

    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    torch.manual_seed(0)
    model = TeluguCodec(CodecConfig(arch="frame", num_quantizers=2, codebook_size=16,
                                    enc_width=16, enc_blocks=1, dec_width=16,
                                    dec_blocks=1)).eval()
    clips = _synthetic_clips()
    both = score(model, clips)
    alone = [score(model, [c]) for c in clips]
    assert {"snr", "si_snr", "mel_distance", "stoi"} <= set(both)
    for key in ("snr", "si_snr", "mel_distance"):
        assert math.isfinite(both[key])
        assert both[key] == pytest.approx(sum(a[key] for a in alone) / 2, rel=1e-5)
