"""The benchmark scripts still run (smoke mode, rvq_blocks alone; peers are a separate extra)."""

import json
import pathlib
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
    # a later run of one variant with --merge replaces that row and keeps every other one
    try:
        bench.main(["--quick", "--threads", "1", "--data_dir", str(tmp_path / "data"),
                    "--models", "b", "--variants", "ours", "--out", str(out), "--merge"])
    finally:
        torch.set_num_threads(threads)
    merged = json.loads(out.read_text())
    assert {k: [r["variant"] for r in m["results"]] for k, m in merged["models"].items()} == {
        "a": list(VARIANTS), "b": [v for v in VARIANTS if v != "ours"] + ["ours"]}
    assert len(merged["meta"]["added_runs"]) == 1
    # docs/benchmarks.md renders it: one row per quantizer, one column per checkpoint step
    from benchmarks import report

    text = report.codebook_usage(results, report.Figures(tmp_path / "img", draw=False))
    assert "| quantizer | step 1 | step 2 | SNR dB | SI-SNR dB | s/step |" in text
    assert text.count("| `ResidualVQ` defaults |") == 2


def test_codebook_usage_merge_adds_and_replaces_rows_of_the_same_protocol():
    from benchmarks.bench_codebook_usage import merge_into

    def run(rows: dict[str, list[str]], **meta) -> dict:
        base = {"steps": 400, "seed": 0, "lr": 1e-3, "command": "x"}
        return {"meta": {**base, **meta}, "models": {
            k: {"description": k, "results": [{"variant": v, "tag": meta.get("tag")}
                                              for v in vs]} for k, vs in rows.items()}}

    first = run({"a": ["ours", "vqtorch"], "b": ["ours"]}, tag=1)
    later = run({"a": ["vqtorch", "cosine"]}, tag=2)
    merged = merge_into(first, later)
    rows = {(k, r["variant"]): r["tag"] for k, m in merged["models"].items()
            for r in m["results"]}
    assert rows == {("a", "ours"): 1, ("a", "vqtorch"): 2, ("a", "cosine"): 2, ("b", "ours"): 1}
    assert merged["meta"]["tag"] == 1 and merged["meta"]["added_runs"] == [later["meta"]]
    with pytest.raises(SystemExit, match="steps"):
        merge_into(first, run({"a": ["ours"]}, steps=200))


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
