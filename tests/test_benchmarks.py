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
