"""The runnable examples still run and show what they claim (short settings)."""

import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_original_failure_demo_shows_the_explosion_and_the_fix():
    out = _run("original_failure.py", "--steps", "3", "--samples", "2048")
    row = next(line for line in out.splitlines() if line.startswith("step 1: output range"))
    ranges = [tuple(map(float, r)) for r in re.findall(r"\[([-+\d.]+), ([-+\d.]+)\]", row)]
    original, fixed = ranges[0], ranges[1]
    assert max(abs(v) for v in original) > 1.0  # 3.0 * tanh leaves [-1, 1]
    assert max(abs(v) for v in fixed) < 1.0
    loss = next(line for line in out.splitlines() if line.startswith("step 1: sum_i"))
    values = [float(v) for v in loss.split()[-3:]]
    assert values[0] > 5 * values[1]


@pytest.mark.slow
def test_quickstart_runs_and_uses_its_codebooks():
    out = _run("quickstart.py", "--steps", "20", "--dim", "16", "--codebook-size", "32")
    used = next(line for line in out.splitlines() if line.startswith("codes in use"))
    assert all(float(v) >= 0.9 for v in used.split(":")[1].split())
