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


def test_hand_written_pages_hold_what_their_regions_render():
    pages = report.render_regions(report.RESULTS)
    assert {"README.md", "docs/telugu_codec.md"} <= set(pages)
    for name, text in pages.items():
        committed = (report.ROOT / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} differs from its JSON: run `make report`"
        for img in report.re_images(text):
            assert name == "README.md" or (report.DOCS / img).exists(), img


def test_regions_replace_only_their_block_and_name_a_missing_one(tmp_path):
    (tmp_path / "telugu_demo.json").write_text(json.dumps(_telugu_training(3, True)))
    text = ("# Page\n\nkept\n<!-- report:short_run -->\nstale figures\n"
            "<!-- /report:short_run -->\nalso kept\n")
    page = "docs/telugu_codec.md"
    region_names = {r.name for r in report.REGIONS if r.page == page}
    results = report.load_results(tmp_path)
    fig = report.Figures(tmp_path / "img", draw=False)
    with pytest.raises(ValueError, match="no `<!-- report:long_run -->`"):
        report.fill_regions(text, page, results, fig)
    for name in region_names - {"short_run"}:
        text += f"<!-- report:{name} -->\n<!-- /report:{name} -->\n"
    out = report.fill_regions(text, page, results, fig)
    assert out.startswith("# Page\n\nkept\n<!-- report:short_run -->\n")
    assert "stale figures" not in out and "also kept" in out
    assert "held-out SNR rose in 2 of 2 epochs, from 1.50 dB after the first to 4.50 dB" in out
    assert "*Not measured yet: `benchmarks/results/telugu_ablation.json` is missing" in out
    assert report.fill_regions(out, page, results, fig) == out  # idempotent


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
                     "command": "python benchmarks/bench_telugu_ablation.py"},
            "variants": variants}


def test_telugu_sections_render_their_numbers(tmp_path):
    (tmp_path / "telugu_training.json").write_text(json.dumps(_telugu_training(10)))
    (tmp_path / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation()))
    text = report.render(tmp_path, draw=False)["benchmarks.md"]
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
    assert "## Telugu codec ablation (same budget)" in text
    assert ("| **variant baseline** | (baseline) | 400 | 5.12 | 3.45 | 0.512 | 1.23 | - | "
            "-0.61 .. 0.58 | 0.925 | 5.0 |") in text
    assert ("| variant head_clamp | `--head clamp` | 400 | 6.12 | 3.45 | 0.512 | 1.23 | 0.714 | "
            "-0.61 .. 1.58 | 0.925 | 5.0 |") in text
    assert "(img/telugu_ablation.png)" in text
    assert text.index("a long CPU run") < text.index("ablation (same budget)")


def test_telugu_sections_are_left_out_without_their_json_and_take_partial_files(tmp_path):
    text = report.render(tmp_path, draw=False)["benchmarks.md"]
    assert "Telugu" not in text and "telugu_" not in text
    # The ablation writes its file after every variant: one variant done renders.
    (tmp_path / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation(["baseline"])))
    text = report.render(tmp_path, draw=False)["benchmarks.md"]
    assert "| **variant baseline** | (baseline) | 400 | 5.12 |" in text
    assert "Variants not in the file yet: `head_tanh`, `head_clamp`" in text
    assert "a long CPU run" not in text


def test_telugu_sections_draw_their_plots(tmp_path):
    pytest.importorskip("matplotlib")
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    (results / "telugu_training.json").write_text(json.dumps(_telugu_training(3, True)))
    (results / "telugu_ablation.json").write_text(json.dumps(_telugu_ablation()))
    assert report.main(["--results", str(results), "--docs", str(docs),
                        "--only", "telugu_training"]) == 0
    text = (docs / "benchmarks.md").read_text()
    assert "still going" not in text
    imgs = [i for i in report.re_images(text) if "telugu" in i]
    assert sorted(imgs) == ["img/telugu_ablation.png", "img/telugu_codebook_usage.png",
                            "img/telugu_training_curves.png"]
    for img in imgs:
        assert (docs / img).stat().st_size > 1000


def test_telugu_run_summary_reads_a_run_directory(tmp_path):
    import telugu_run_summary as trs

    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    rows = [_epoch(i) for i in (1, 2, 3)]
    rows[1]["snr"] = 9.0  # the best epoch is not the last
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)
                                       + '{"epoch": 4, "st')  # a torn last line is skipped
    out = tmp_path / "results" / "telugu_training.json"
    command = "python -m examples.telugu_codec.train --num_epochs 3 --threads 2"
    assert trs.main([str(run), "--command", command, "--out", str(out)]) == 0
    data = json.loads(out.read_text())  # strict JSON: NaN was written as null
    meta = data["meta"]
    assert meta["command"] == command and meta["threads"] == 2
    assert meta["finished"] is False and meta["epochs"] == 3 and meta["steps"] == 300
    assert meta["torch"] and meta["machine"] and "config" not in meta  # no last.pt
    assert [r["step"] for r in data["curve"]] == [100, 200, 300]
    assert data["curve"][0]["codes_used"] == [0.125, 0.25]
    assert data["curve"][2]["perplexity"] == [30.0, 90.0]
    assert data["curve"][0]["share/rms"] is None
    assert set(rows[0]) <= set(data["curve"][0])  # every key of the record
    assert data["final"]["epoch"] == 3 and data["final"]["snr"] == 4.5
    assert data["best"]["snr"] == {"value": 9.0, "epoch": 2, "step": 200}
    assert data["best"]["mel_distance"]["epoch"] == 3
    # summary.json marks the run finished and is its final record; --threads=N is read too.
    (run / "summary.json").write_text(json.dumps(rows[-1], indent=2))
    assert trs.main([str(run), "--command", "train --threads=4", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["meta"]["finished"] is True and data["meta"]["threads"] == 4
    text = report.render(out.parent, draw=False)["benchmarks.md"]
    assert "| 3 | 300 | 3.0 | 4.50 | 1.75 | 0.450 |" in text
    assert "still going" not in text
    # With a readable last.pt: the codec config, and the threads when the command has none.
    from examples.telugu_codec.checkpoint import save_checkpoint

    save_checkpoint(run, {"model": {}, "global_step": 300,
                          "config": {"num_quantizers": 2, "codebook_size": 64},
                          "args": {"threads": 3, "batch_size": 4, "cache_dir": "/somewhere"}})
    assert trs.main([str(run), "--command", "train", "--out", str(out)]) == 0
    meta = json.loads(out.read_text())["meta"]
    assert meta["threads"] == 3 and meta["config"]["codebook_size"] == 64
    assert meta["args"] == {"threads": 3, "batch_size": 4}
