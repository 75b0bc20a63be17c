"""The benchmark scripts still run (smoke mode, rvq_blocks alone; peers are a separate extra)."""

import json
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_rate_distortion_smoke(tmp_path):
    out = tmp_path / "rd.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_rate_distortion.py"), "--quick",
                           "--impls", "rvq_blocks", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
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
    torch.save({"model": model.state_dict(), "epoch": 3}, buf)
    (tmp_path / "last.pt").write_bytes(b"RVQCKPT1 0123abcd\n" + buf.getvalue())
    torch.save(torch.randn(2, 16, 25), tmp_path / "lat.pt")
    assert "2 x 8, codebook_dim 4" in _bf16_agreement(tmp_path, "last.pt")["quantizer"]


def _bf16_agreement(tmp_path, state_name: str) -> dict:
    """Run bench_ddp.py's bf16 part on tmp_path/lat.pt and tmp_path/state_name; its JSON."""
    out = tmp_path / "ddp.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_ddp.py"), "--skip_ddp",
                           "--latents", str(tmp_path / "lat.pt"), "--rvq_state",
                           str(tmp_path / state_name), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())["bf16"]
