"""``python -m benchmarks.report`` fills the generated blocks of the pages from the committed
JSON, and ``--check`` notices every block that differs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.report as report
from benchmarks.report import strip_markers

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["docs/benchmarks.md", "docs/failure_modes.md", "docs/telugu_codec.md", "README.md"]


def test_committed_pages_match_the_committed_results():
    pages = report.render_pages(report.RESULTS)
    assert set(PAGES) <= set(pages)
    for name, text in pages.items():
        committed = (report.ROOT / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} differs from its JSON: run `make report`"
        for img in report.re_images(text):
            assert name == "README.md" or (report.ROOT / name).parent.joinpath(img).exists(), img


def test_every_block_reads_a_committed_results_file():
    for r in report.REGIONS:
        assert any((report.RESULTS / f).exists() for f in r.files), r
    for v in report.VALUES:
        assert (report.RESULTS / v.file).exists(), v


def _copy_pages(root: Path) -> Path:
    for page in PAGES:
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(report.ROOT / page, root / page)
    return root / "docs"


@pytest.mark.parametrize("edit", [
    ("docs/benchmarks.md", "| **rvq_blocks** |", "| **rvq-blocks** |"),  # a table cell
    ("docs/benchmarks.md", "-->2<!-- /v --> threads", "-->3<!-- /v --> threads"),  # a value
    ("README.md", "<!-- /report:telugu_results -->", "\n<!-- /report:telugu_results -->"),
    ("docs/failure_modes.md", "![training loss", "![the training loss"),  # a figure line
])
def test_check_fails_on_an_edit_inside_a_block_and_passes_on_prose(tmp_path, edit):
    docs = _copy_pages(tmp_path)
    assert report.main(["--docs", str(docs), "--check"]) == 0
    page, old, new = edit
    text = (tmp_path / page).read_text(encoding="utf-8")
    assert old in text
    (tmp_path / page).write_text(text.replace(old, new.replace("\\n", "\n"), 1))
    assert report.main(["--docs", str(docs), "--check"]) == 1
    (tmp_path / page).write_text(text.replace("## Memory", "## Memory use"))
    assert report.main(["--docs", str(docs), "--check"]) == 0


def test_check_fails_when_the_results_change(tmp_path):
    docs = _copy_pages(tmp_path)
    results = tmp_path / "results"
    shutil.copytree(report.RESULTS, results)
    data = json.loads((results / "memory.json").read_text())
    data["meta"]["repeats"] += 1
    (results / "memory.json").write_text(json.dumps(data))
    assert report.main(["--docs", str(docs), "--results", str(results), "--check"]) == 1


def test_blocks_replace_only_their_text_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "telugu_demo.json").write_text(json.dumps(_telugu_training(3, True)))
    page = "docs/telugu_codec.md"
    results = report.load_results(tmp_path)
    fig = report.Figures(tmp_path / "img", draw=False)
    text = ("# Page\n\nkept\n<!-- report:short_run -->\nstale figures\n"
            "<!-- /report:short_run -->\nalso kept\n")
    with pytest.raises(ValueError, match="no `<!-- report:"):
        report.fill_regions(text, page, results, fig)
    for name in {r.name for r in report.REGIONS if r.page == page} - {"short_run"}:
        text += f"<!-- report:{name} -->\n<!-- /report:{name} -->\n"
    out = report.fill_regions(text, page, results, fig)
    assert out.startswith("# Page\n\nkept\n<!-- report:short_run -->\n| epoch | step |")
    assert "stale figures" not in out and "also kept" in out
    assert "*Not measured yet: `benchmarks/results/telugu_ablation.json` is missing" in out
    assert report.fill_regions(out, page, results, fig) == out  # idempotent


def test_values_fill_the_sentences_of_the_page(tmp_path):
    (tmp_path / "telugu_demo.json").write_text(json.dumps(_telugu_training(3, True)))
    page = "docs/telugu_codec.md"
    template = (report.ROOT / page).read_text(encoding="utf-8")
    fig = report.Figures(tmp_path / "img", draw=False)
    out = report.fill_regions(template, page, report.load_results(tmp_path), fig)
    text = strip_markers(out)
    assert "held-out SNR rose in 2 of 2 epochs, from 1.50 dB after" in text
    assert "Over the 3 epochs: the largest |output| of any training batch was 0.750" in text
    assert "Over the - epochs" in text  # the long run's values, without their file
    results = report.load_results(tmp_path)
    for extra, error in (("\na <!-- v:nope.x -->1<!-- /v -->\n", "no values group 'nope'"),
                         ("\na <!-- v:short.nope -->1<!-- /v -->\n", "has no 'nope'"),
                         ("\na\n<!-- v:short.peak -->1<!-- /v -->\n", "starts a line inside")):
        with pytest.raises(ValueError, match=error):
            report.fill_regions(template + extra, page, results, fig)


def test_a_missing_results_file_leaves_a_note(tmp_path):
    shutil.copy(report.RESULTS / "failure_modes.json", tmp_path)
    pages = report.render(tmp_path, draw=False)
    assert "`speed.json` is not in `benchmarks/results/`" in pages["benchmarks.md"]
    assert "## Batch RMS vs per-example RMS" in pages["failure_modes.md"]
    assert "| [no codebook loss (learned codebook)](#no-codebook-loss) |" in \
        pages["failure_modes.md"]


def test_failure_modes_quick_run_renders_with_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results" / "failure_modes.json"
    subprocess.run([sys.executable, "-m", "benchmarks.bench_failure_modes", "--quick",
                    "--out", str(out)], check=True, capture_output=True, timeout=120, cwd=ROOT)
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


# ---------------------------------------------------------------------- Telugu training runs
def _epoch(i: int) -> dict:
    """One ``metrics.jsonl`` record of a fake run: 2 quantizers, 100 steps an epoch."""
    return {"epoch": i, "step": 100 * i, "loss": 40.0 - i, "loss/mel": 0.6, "loss/time": 0.01,
            "loss/rms": 0.001, "vq_loss": 1.0, "commitment_loss": 4.0, "codebook_loss": 0.0,
            "train_snr": float(i), "output_min": -0.25 * i, "output_max": 0.2 * i,
            "dc_offset": -0.0025 * i, "saturation": 0.0, "output_scale": 1 - 0.01 * i,
            "bitrate_kbps": 1.0, "lr": 1e-3, "share/mel": 0.3, "share/time": 0.7,
            "share/rms": float("nan"), "snr": 1.5 * i, "si_snr": 1.25 * i - 2,
            "mel_distance": 0.6 - 0.05 * i, "codes_used": [0.125 * i, 0.25 * i],
            "perplexity": [10.0 * i, 30.0 * i], "epoch_seconds": 60.0,
            "wall_seconds": 60.0 * i}


def _telugu_training(epochs: int = 4, finished: bool = False) -> dict:
    curve = [_epoch(i) for i in range(1, epochs + 1)]
    return {"meta": {"command": "python -m examples.telugu_codec.train --threads 1",
                     "torch": "2.x", "machine": "x86_64", "threads": 1, "finished": finished,
                     "config": {"sample_rate": 16000, "strides": [2, 4, 5, 8],
                                "num_quantizers": 2, "codebook_size": 64,
                                "head": "scaled_tanh"},
                     "args": {"steps_per_epoch": 100, "batch_size": 16, "eval_seconds": 40.0}},
            "final": curve[-1], "best": {"snr": {"value": 6.0, "epoch": 4, "step": 400}},
            "curve": curve}


def _telugu_ablation(names=("baseline", "head_clamp")) -> dict:
    variants = {}
    for j, name in enumerate(names):
        variants[name] = {
            "label": f"variant {name}", "flags": ["--head", "clamp"] if j else [],
            "train_seconds": 300.0, "steps": 400,
            "final_train": {"output_min": -0.61, "output_max": 0.58 + j, "dc_offset": 0.001,
                            "saturation": 0.0, "output_scale": 0.925},
            "heldout": {"snr": 5.12 + j, "si_snr": 3.45, "mel_distance": 0.512, "pesq_wb": 1.23,
                        "stoi": 0.714 if j else None},
            "heldout_seconds": 60.0,
            "curve": [{"step": 80 * s, "snr": 2.0 + s + j, "si_snr": 1.0, "mel_distance": 0.6,
                       "output_min": -0.5, "output_max": 0.5, "dc_offset": 0.0, "loss": 9.0}
                      for s in range(1, 6)]}
    return {"meta": {"torch": "2.x", "machine": "x86_64", "threads": 1, "epochs": 5,
                     "steps_per_epoch": 80, "batch_size": 16, "seed": 0,
                     "command": "python -m examples.telugu_codec.studies.ablation"},
            "variants": variants}


def _benchmarks_page(results: Path) -> str:
    return strip_markers(report.render(results, draw=False)["benchmarks.md"])


def test_telugu_sections_render_their_numbers(tmp_path):
    (tmp_path / "telugu_training.json").write_text(json.dumps(_telugu_training(10)))
    (tmp_path / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation()))
    text = _benchmarks_page(tmp_path)
    assert "## Telugu codec: a long CPU run" in text
    assert "python -m examples.telugu_codec.train --threads 1" in text
    assert "2 x 64 codes at 50 Hz, 1 kbps" in text
    assert "the last row is epoch 10" in text  # not finished
    # First, last and epochs in between: epoch, step, wall min, SNR, SI-SNR, mel, range, |DC|,
    # codes used min-max over the quantizers, mean perplexity.
    assert "| 1 | 100 | 1.0 | 1.50 | -0.75 | 0.550 | -0.25 .. 0.20 | 0.0025 | 12-25% | 20 |" in text
    assert "| 4 | 400 | 4.0 | 6.00 | 3.00 | 0.400 | -1.00 .. 0.80 | 0.0100 | 50-100% | 80 |" in text
    assert "| 10 | 1,000 | 10.0 | 15.00 | 10.50 | 0.100 |" in text
    assert text.count("| 10 | 1,000 |") == 1
    assert "Best held-out SNR 6.00 dB at step 400." in text
    assert "![" in text and "(img/telugu_training_curves.png)" in text
    assert "(img/telugu_codebook_usage.png)" in text
    assert ("| **variant baseline** | (baseline) | 400 | 5.12 | 3.45 | 0.512 | 1.23 | - | "
            "-0.61 .. 0.58 | 0.925 | 5.0 |") in text
    assert ("| variant head_clamp | `--head clamp` | 400 | 6.12 | 3.45 | 0.512 | 1.23 | 0.714 | "
            "-0.61 .. 1.58 | 0.925 | 5.0 |") in text
    assert "(img/telugu_ablation.png)" in text
    assert "(5 epochs x 80 steps of 16 crops, seed 0)" in text


def test_telugu_blocks_are_empty_without_their_json_and_take_partial_files(tmp_path):
    text = _benchmarks_page(tmp_path)
    for absent in ("telugu_training_curves.png", "telugu_ablation.png", "| variant |",
                   "Best held-out", "not in `benchmarks/results/`: run its benchmark, then "
                   "`make report`.*\n\n## Codebook"):
        assert absent not in text
    # The ablation writes its file after every variant: one variant done renders.
    (tmp_path / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation(["baseline"])))
    text = _benchmarks_page(tmp_path)
    assert "| **variant baseline** | (baseline) | 400 | 5.12 |" in text
    assert "Variants not in the file yet: `head_tanh`, `head_clamp`" in text
    assert "telugu_training_curves.png" not in text


def test_telugu_sections_draw_their_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    (results / "telugu_training.json").write_text(json.dumps(_telugu_training(3, True)))
    (results / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation()))
    assert report.main(["--results", str(results), "--docs", str(docs), "--no-plots",
                        "--only", "telugu_training"]) == 0
    assert not (docs / "img").exists()
    assert report.main(["--results", str(results), "--docs", str(docs),
                        "--only", "telugu_training"]) == 0
    text = strip_markers((docs / "benchmarks.md").read_text())
    assert "still going" not in text
    imgs = [i for i in report.re_images(text) if "telugu" in i]
    assert sorted(imgs) == ["img/telugu_ablation.png", "img/telugu_codebook_usage.png",
                            "img/telugu_training_curves.png"]
    for img in imgs:
        assert (docs / img).stat().st_size > 1000


def test_telugu_run_summary_output_renders(tmp_path):
    from examples.telugu_codec.studies import run_summary as trs

    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(_epoch(i)) + "\n" for i in (1, 2, 3)))
    (run / "summary.json").write_text(json.dumps(_epoch(3)))
    out = tmp_path / "results" / "telugu_training.json"
    assert trs.main([str(run), "--command", "train --threads=2", "--out", str(out)]) == 0
    text = _benchmarks_page(out.parent)
    assert "| 3 | 300 | 3.0 | 4.50 | 1.75 | 0.450 |" in text
    assert "still going" not in text
