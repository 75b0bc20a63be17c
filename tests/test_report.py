"""benchmarks/report.py renders the committed benchmark pages from the committed JSON."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import report  # noqa: E402


def test_committed_pages_match_the_committed_results():
    pages = report.render(report.RESULTS, draw=False)
    assert {"benchmarks.md", "failure_modes.md"} <= set(pages)
    for name, text in pages.items():
        committed = (report.DOCS / name).read_text(encoding="utf-8")
        assert committed == text, f"docs/{name} differs from its JSON: run `make report`"


def test_every_section_reads_a_committed_results_file_and_images_exist():
    for s in report.SECTIONS:
        assert s.optional or (report.RESULTS / s.file).exists(), s
    for name, text in report.render(report.RESULTS, draw=False).items():
        for img in report.re_images(text):
            assert (report.DOCS / img).exists(), f"docs/{name} shows a missing {img}"


def test_a_missing_results_file_leaves_a_note(tmp_path):
    shutil.copy(report.RESULTS / "failure_modes.json", tmp_path)
    pages = report.render(tmp_path, draw=False)
    assert "`speed.json` is not in `benchmarks/results/`" in pages["benchmarks.md"]
    assert "## Batch RMS vs per-example RMS" in pages["failure_modes.md"]


def test_failure_modes_quick_run_renders_with_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results" / "failure_modes.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_failure_modes.py"),
                    "--quick", "--no-report", "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    assert data["ste"]["gradients"]["library"]["dq_dx"] == pytest.approx(1.0)
    assert data["ste"]["gradients"]["ste_per_stage"]["dq_dx"] == pytest.approx(4.0)
    assert data["codebook_loss"]["buggy"]["codebook_drift"] == 0.0
    docs = tmp_path / "docs"
    assert report.main(["--results", str(out.parent), "--docs", str(docs),
                        "--only", "failure_modes"]) == 0
    text = (docs / "failure_modes.md").read_text()
    for img in report.re_images(text):
        assert (docs / img).stat().st_size > 1000
