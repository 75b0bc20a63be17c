"""python -m rvq_blocks.gradcheck: the checks users run on their installed copy."""

import subprocess
import sys
from pathlib import Path

import pytest

from rvq_blocks import gradcheck


@pytest.mark.gradcheck
def test_every_shipped_check_passes_and_is_reported():
    lines: list[str] = []
    assert gradcheck.run_all(lines.append)
    rows = [line for line in lines if line[:4] in ("PASS", "FAIL")]
    assert len(rows) >= 20 and all(row.startswith("PASS") for row in rows)
    for block in ("ResidualVQ", "ScaledTanhHead", "rms_scale_loss", "multi_scale_mel_loss",
                  "multi_resolution_stft_loss", "LossBalancer", "codec assembly"):
        assert any(block in row for row in rows), block
    assert lines[-1].startswith(f"{len(rows)} passed, 0 failed")


def test_a_failing_check_fails_the_command(monkeypatch):
    from rvq_blocks.testing import CheckResult

    monkeypatch.setattr(gradcheck, "_other_checks",
                        lambda: iter([CheckResult("broken block", False, "off by 3x")]))
    monkeypatch.setattr(gradcheck, "_rvq_checks", lambda: iter([]))
    lines: list[str] = []
    assert not gradcheck.run_all(lines.append)
    assert lines[0].startswith("FAIL  broken block") and "0 passed, 1 failed" in lines[-1]
    assert gradcheck.main([]) == 1


@pytest.mark.gradcheck
def test_module_runs_as_a_command():
    proc = subprocess.run([sys.executable, "-m", "rvq_blocks.gradcheck"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed, 0 failed" in proc.stdout


def test_help_names_the_command_and_is_plain_text():
    module = subprocess.run([sys.executable, "-m", "rvq_blocks.gradcheck", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert module.returncode == 0, module.stderr
    assert module.stdout.startswith("usage: python -m rvq_blocks.gradcheck")
    script = Path(sys.executable).parent / "rvq-blocks-gradcheck"  # the console script
    if not script.exists():
        pytest.skip("rvq-blocks-gradcheck is not installed beside this interpreter")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: rvq-blocks-gradcheck")
    for text in (module.stdout, proc.stdout):
        assert "``" not in text and ":class:" not in text and "pass/fail table" in text
