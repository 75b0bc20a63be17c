"""The Telugu codec example's training loop, end to end on a tiny config (seconds).

Smoke run through the real ``train()``, exact resume, corrupt checkpoints, SIGKILL at random
points followed by ``--resume``, the code-file round trip and the original command line.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from examples.telugu_codec.checkpoint import (  # noqa: E402
    CorruptCheckpointError,
    find_resumable,
    load_checkpoint,
    load_model,
)
from examples.telugu_codec.codec import pack_codes, unpack_codes  # noqa: E402
from examples.telugu_codec.train import build_parser, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--channels", "4", "--latent_dim", "8", "--num_quantizers", "2", "--codebook_size",
        "16", "--batch_size", "2", "--steps_per_epoch", "2", "--segment_seconds", "0.16",
        "--eval_seconds", "1", "--threads", "1", "--quiet", "--no_plots",
        "--enc_width", "8", "--enc_blocks", "1", "--dec_width", "8", "--dec_blocks", "1"]


def _voice(rng, seconds, rate=16000):
    """A crude voiced sound: harmonics of a gliding f0 under a syllable-rate envelope."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("heldout", 2)):
        (root / split).mkdir()
        for i in range(n):
            sf.write(root / split / f"{split}{i}.wav", _voice(rng, 1.0), 16000)
    return root


def _args(data_dir, ckpt, *extra):
    return ["--data_dir", str(data_dir), "--checkpoint_dir", str(ckpt), *TINY, *extra]


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_smoke_run_logs_every_epoch_and_writes_checkpoints(data_dir, tmp_path, capsys):
    summary = train(_args(data_dir, tmp_path, "--num_epochs", "2"))
    out = capsys.readouterr().out
    run = tmp_path / "telugu_codec"
    assert out.count("epoch   ") == 2 and "kbps" in out
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["step"] == 4
    for r in rows:  # what the original run watched, plus the quantizer's usage
        for key in ("loss", "loss/mel", "loss/time", "loss/rms", "vq_loss", "output_min",
                    "output_max", "dc_offset", "output_scale", "snr", "si_snr",
                    "mel_distance", "codes_used", "perplexity", "bitrate_kbps"):
            assert key in r, key
        assert -1.0 <= r["output_min"] <= r["output_max"] <= 1.0
        assert all(np.isfinite(r[k]) for k in ("loss", "snr", "si_snr", "mel_distance"))
        assert len(r["codes_used"]) == 2
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,step,")
    assert summary["epoch"] == 2 and summary["bitrate_kbps"] == pytest.approx(2 * 4 * 50 / 1000)
    assert {p.name for p in run.glob("*.pt")} == {"last.pt", "prev.pt"}
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert load_checkpoint(run / "prev.pt")["epoch"] == 1
    model = load_model(run / "last.pt")
    assert not model.training and model.cfg.num_quantizers == 2


def test_resume_continues_exactly(data_dir, tmp_path):
    train(_args(data_dir, tmp_path / "straight", "--num_epochs", "3"))
    # stopped after epoch 1 (as a kill would), then resumed: same learning-rate schedule
    train(_args(data_dir, tmp_path / "split", "--num_epochs", "3", "--max_steps", "2"))
    train(_args(data_dir, tmp_path / "split", "--num_epochs", "3", "--resume"))
    a = load_checkpoint(tmp_path / "straight" / "telugu_codec" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "telugu_codec" / "last.pt")
    assert a["global_step"] == b["global_step"] == 6
    assert _states_equal(a["model"], b["model"])  # weights, codebooks and EMA buffers
    assert _states_equal(a["ema"], b["ema"])  # the weights' EMA, used for evaluation
    assert not _states_equal(a["ema"], a["model"])
    assert a["metrics"]["loss"] == b["metrics"]["loss"]
    rows = (tmp_path / "split" / "telugu_codec" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


def test_vq_warmup_trains_unquantized_then_initialises_the_codebooks(data_dir, tmp_path):
    train(_args(data_dir, tmp_path, "--num_epochs", "2", "--vq_warmup_steps", "2"))
    rows = [json.loads(s) for s in
            (tmp_path / "telugu_codec" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["vq_loss"] == 0.0 and rows[1]["vq_loss"] > 0.0
    model = load_model(tmp_path / "telugu_codec" / "last.pt")
    assert bool(model.quantizer.initialized)


def test_resume_without_a_surviving_checkpoint_drops_the_logged_epochs(data_dir, tmp_path):
    """A kill between an epoch's log record and its checkpoint leaves a record of an epoch
    that will run again; when no checkpoint survives at all, the resumed run starts from
    scratch and must not log that epoch twice."""
    train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    run = tmp_path / "telugu_codec"
    for name in ("last.pt", "prev.pt"):
        (run / name).unlink(missing_ok=True)
    train(_args(data_dir, tmp_path, "--num_epochs", "2", "--resume"))
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2"]
    assert [json.loads(r)["epoch"] for r in (run / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2]


def test_resume_refuses_a_different_codec(data_dir, tmp_path):
    train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    with pytest.raises(SystemExit, match="pass the same codec flags"):
        train(_args(data_dir, tmp_path, "--num_epochs", "2", "--resume", "--codebook_size",
                    "32"))


def test_corrupt_checkpoint_is_named_and_resume_falls_back(data_dir, tmp_path):
    train(_args(data_dir, tmp_path, "--num_epochs", "2"))
    run = tmp_path / "telugu_codec"
    last = run / "last.pt"
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    last.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match="last.pt"):
        load_checkpoint(last)
    (run / "trunc.pt").write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(CorruptCheckpointError, match="trunc.pt"):
        load_checkpoint(run / "trunc.pt")
    logged = []
    path, state = find_resumable(run, log=logged.append)
    assert path.name == "prev.pt" and state["epoch"] == 1
    assert "last.pt" in logged[0]


def test_running_again_without_resume_refuses_and_keeps_the_run(data_dir, tmp_path):
    """Regression: a second run without --resume silently replaced a finished run's log and
    both checkpoints."""
    train(_args(data_dir, tmp_path, "--num_epochs", "2"))
    run = tmp_path / "telugu_codec"
    before = {n: (run / n).read_bytes() for n in ("last.pt", "prev.pt", "metrics.jsonl")}
    with pytest.raises(SystemExit, match="already holds a run .*--resume.*--overwrite"):
        train(_args(data_dir, tmp_path, "--num_epochs", "1", "--seed", "5"))
    assert all((run / n).read_bytes() == b for n, b in before.items())
    train(_args(data_dir, tmp_path, "--num_epochs", "1", "--seed", "5", "--overwrite"))
    assert load_checkpoint(run / "last.pt")["args"]["seed"] == 5


def test_resume_with_every_checkpoint_damaged_refuses_and_changes_nothing(data_dir, tmp_path):
    """Regression: it started from scratch, exited 0, emptied the log and overwrote the
    damaged (maybe recoverable) files."""
    train(_args(data_dir, tmp_path, "--num_epochs", "2"))
    run = tmp_path / "telugu_codec"
    for name in ("last.pt", "prev.pt"):
        raw = bytearray((run / name).read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (run / name).write_bytes(bytes(raw))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(SystemExit, match="every checkpoint .* is damaged .*nothing was changed"):
        train(_args(data_dir, tmp_path, "--num_epochs", "3", "--resume"))
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != ".lock"} == \
        {k: v for k, v in before.items() if k != ".lock"}


def test_disk_full_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    from examples.telugu_codec import checkpoint as ck

    ck.save_checkpoint(tmp_path, {"model": {}, "epoch": 1})
    good = (tmp_path / "last.pt").read_bytes()

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.os, "fsync", full)
    with pytest.raises(OSError, match=r"could not write the checkpoint .*last\.pt.*No space"):
        ck.save_checkpoint(tmp_path, {"model": {}, "epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no hidden temp file
    assert (tmp_path / "last.pt").read_bytes() == good


def test_two_runs_on_one_experiment_do_not_mix(data_dir, tmp_path):
    """Regression: two runs wrote one experiment directory, each exiting 0."""
    from examples.telugu_codec.train import lock_run_dir

    run = tmp_path / "telugu_codec"
    run.mkdir()
    held = lock_run_dir(run)  # another run holds the directory
    try:
        with pytest.raises(SystemExit, match="in use by another training run .*pid"):
            train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    finally:
        held.close()
    train(_args(data_dir, tmp_path, "--num_epochs", "1"))  # free again


def test_original_command_line_parses_with_its_meaning():
    a = build_parser().parse_args(
        "--data_dir D --checkpoint_dir C --batch_size 16 --num_epochs 100 --learning_rate 1e-5 "
        "--experiment_name telucodec_stable_final".split())
    assert (str(a.data_dir), str(a.checkpoint_dir), a.batch_size, a.num_epochs,
            a.learning_rate, a.experiment_name) == ("D", "C", 16, 100, 1e-5,
                                                    "telucodec_stable_final")


def test_code_file_round_trip(data_dir, tmp_path):
    train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    ckpt = tmp_path / "telugu_codec" / "last.pt"
    wav = data_dir / "heldout" / "heldout0.wav"
    r = _cli("encode", "--checkpoint", str(ckpt), str(wav), str(tmp_path / "a.rvqc"))
    assert r.returncode == 0, r.stderr
    r = _cli("decode", "--checkpoint", str(ckpt), str(tmp_path / "a.rvqc"),
             str(tmp_path / "a.wav"))
    assert r.returncode == 0, r.stderr
    frames = 16000 // 320
    # 40-byte header + 2 quantizers x 50 frames x 4 bits, packed
    assert (tmp_path / "a.rvqc").stat().st_size == 40 + (2 * frames * 4 + 7) // 8
    data = (tmp_path / "a.rvqc").read_bytes()
    codes, head = unpack_codes(data)
    assert codes.shape == (2, frames) and head["num_samples"] == 16000
    assert pack_codes(codes, 16, sample_rate=16000, hop=320, num_samples=16000,
                      fingerprint=head["fingerprint"]) == data
    y, rate = sf.read(tmp_path / "a.wav")
    assert rate == 16000 and len(y) == 16000 and np.abs(y).max() <= 1.0


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "examples.telugu_codec.codec", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True)


def test_code_files_are_checked_against_the_model_and_their_payload(data_dir, tmp_path):
    """Regression: codes of another model, flipped payload bytes, a bad bits field, more
    quantizers than the payload holds and trailing junk all decoded with rc 0."""
    from examples.telugu_codec.codec import CodeFileError, decode_bytes, encode_wav

    train(_args(data_dir, tmp_path / "a", "--num_epochs", "1"))
    train(_args(data_dir, tmp_path / "b", "--num_epochs", "1", "--codebook_size", "32"))
    a = load_model(tmp_path / "a" / "telugu_codec" / "last.pt")
    b = load_model(tmp_path / "b" / "telugu_codec" / "last.pt")
    audio = sf.read(data_dir / "heldout" / "heldout0.wav", dtype="float32")[0]
    data = encode_wav(a, audio)
    assert len(decode_bytes(a, data)) == len(audio)
    with pytest.raises(CodeFileError, match="another model: codebook_size 16 .*32"):
        decode_bytes(b, data)
    flipped = bytearray(data)
    flipped[-5] ^= 0x10
    bits0 = bytearray(data)
    bits0[14] = 0  # bits per code
    more_q = bytearray(data)
    more_q[12] = 6  # 6 quantizers over a 2-quantizer payload
    for bad, match in ((bytes(flipped), "checksum"), (bytes(bits0), "inconsistent header"),
                       (bytes(more_q), "inconsistent header|truncated"),
                       (data + b"junk", "trailing data"), (data[:-3], "truncated")):
        with pytest.raises(CodeFileError, match=match):
            decode_bytes(a, bad)
    low = decode_bytes(a, data, n_quantizers=1)  # decode honours fewer quantizers
    assert len(low) == len(audio) and not np.allclose(low, decode_bytes(a, data))


def test_codec_cli_errors_are_one_line_and_nothing_is_overwritten(data_dir, tmp_path):
    train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    ckpt = str(tmp_path / "telugu_codec" / "last.pt")
    wav = tmp_path / "in.wav"
    wav.write_bytes((data_dir / "heldout" / "heldout0.wav").read_bytes())
    before = wav.read_bytes()
    r = _cli("encode", "--checkpoint", ckpt, str(wav), str(wav))
    assert r.returncode == 2 and "is the input" in r.stderr and wav.read_bytes() == before
    nan = tmp_path / "nan.wav"
    samples = np.zeros(16000, np.float32)
    samples[100] = np.nan
    sf.write(nan, samples, 16000, subtype="FLOAT")
    r = _cli("encode", "--checkpoint", ckpt, str(nan), str(tmp_path / "x.rvqc"))
    assert r.returncode == 2 and "NaN/inf" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "junk.rvqc").write_bytes(b"RVQC" + bytes(40))
    r = _cli("decode", "--checkpoint", ckpt, str(tmp_path / "junk.rvqc"), str(tmp_path / "y.wav"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    for bad in ("0", "-1"):
        r = _cli("evaluate", "--checkpoint", ckpt, "--data_dir", str(data_dir), "--max_clips",
                 bad)
        assert r.returncode == 2 and "--max_clips must be >= 1" in r.stderr
    out = tmp_path / "new" / "dir" / "r.json"
    r = _cli("evaluate", "--checkpoint", ckpt, "--data_dir", str(data_dir), "--max_clips", "1",
             "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["heldout"]["clips"] == 1
    with pytest.raises(SystemExit, match="--max_steps must be >= 1"):
        train(_args(data_dir, tmp_path / "z", "--max_steps", "0"))


def test_sigkill_at_random_points_never_loses_a_checkpoint(data_dir, tmp_path):
    """Kill the real training process with SIGKILL at random moments, resume each time.

    Every resume must find an intact checkpoint, lose at most the epoch in flight, and the
    final weights must equal those of an uninterrupted run.
    """
    epochs, max_kills = 12, 4  # at most about 2 epochs pass per killed attempt
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "examples.telugu_codec.train",
           *_args(data_dir, tmp_path / "killed", "--num_epochs", str(epochs), "--resume")]
    run = tmp_path / "killed" / "telugu_codec"
    rng = random.Random(0)
    kills, resumed_from = 0, []
    for _ in range(max_kills + 1):
        before = find_resumable(run, log=lambda *_: None)
        done_before = before[1]["epoch"] if before else 0
        resumed_from.append(done_before)
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if kills < max_kills:
            # Moments are counted from what the run printed, not from the start of the
            # process, so neither a slow start-up on a loaded machine nor a fast idle one
            # moves them out of the run. Even attempts: a random moment in the first epochs
            # (an epoch of this tiny run takes about 0.1-0.3 s) after the start of training
            # (the "codec:" line). Odd ones: just after the second epoch line of the attempt,
            # which is printed right before that epoch's checkpoint is written.
            marker, count = ("codec:", 1) if kills % 2 == 0 else ("epoch", 2)
            while count and (line := proc.stdout.readline()):
                count -= line.startswith(marker)
            time.sleep(rng.uniform(0.0, 0.3) if kills % 2 == 0 else rng.uniform(0.0, 0.02))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err
        after = find_resumable(run, log=lambda *_: None)
        assert after is None or after[1]["epoch"] >= done_before  # never goes backwards
    else:
        pytest.fail(f"training did not finish after {max_kills} kills and a last run")
    assert kills >= 2 and max(resumed_from) >= 1, (kills, resumed_from)
    straight = tmp_path / "straight"
    train(_args(data_dir, straight, "--num_epochs", str(epochs)))
    a = load_checkpoint(straight / "telugu_codec" / "last.pt")
    b = load_checkpoint(run / "last.pt")
    assert b["epoch"] == epochs and _states_equal(a["model"], b["model"])
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [str(e) for e in range(1, epochs + 1)]


def test_torchrun_two_processes_matches_one_process(data_dir, tmp_path):
    """``torchrun --nproc_per_node=2`` (gloo on CPU) with the same flags trains the same model:
    each rank takes half of every global batch, gradients, codebook statistics, k-means rows
    and balancer norms are averaged, so only float summation order differs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    flags = _args(data_dir, tmp_path / "ddp", "--num_epochs", "2", "--batch_size", "4")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "examples.telugu_codec.train", *flags],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) on cpu" in proc.stdout
    train(_args(data_dir, tmp_path / "single", "--num_epochs", "2", "--batch_size", "4"))
    a = load_checkpoint(tmp_path / "ddp" / "telugu_codec" / "last.pt")
    b = load_checkpoint(tmp_path / "single" / "telugu_codec" / "last.pt")
    assert a["global_step"] == b["global_step"] == 4
    for k, ref in b["model"].items():
        # per tensor, not per element: Adam divides each gradient by its own RMS, so an
        # element whose gradient is ~0 turns summation-order noise into a step of up to lr
        got = a["model"][k]
        if ref.is_floating_point():
            # (relative, or absolute below norm 1: a LayerNorm bias that stays near 0 is noise)
            err = float((got - ref).norm() / ref.norm().clamp_min(1.0))
            assert err < 2e-3, f"{k}: difference {err:.2e} (norm {float(ref.norm()):.3g})"
        else:
            assert torch.equal(got, ref), k
    assert a["metrics"]["snr"] == pytest.approx(b["metrics"]["snr"], rel=1e-3, abs=1e-3)


def test_exported_fp16_weights_load_and_code_like_the_checkpoint(data_dir, tmp_path):
    from examples.telugu_codec.checkpoint import export_pretrained

    train(_args(data_dir, tmp_path, "--num_epochs", "1"))
    ckpt = tmp_path / "telugu_codec" / "last.pt"
    out = export_pretrained(ckpt, tmp_path / "pretrained", {"command": "x"})
    weights = torch.load(out / "weights.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert not any(k.endswith(("embed_sum", "cluster_size")) for k in weights)
    assert json.loads((out / "run.json").read_text())["command"] == "x"
    a, b = load_model(ckpt), load_model(out)
    x = torch.randn(1, 1, 320 * 10) * 0.1
    ya, yb = a.decode(a.encode(x)), b.decode(b.encode(x))
    assert ya.shape == yb.shape == x.shape
    assert (ya - yb).abs().max() < 1e-2 * max(ya.abs().max().item(), 1e-3)


@pytest.mark.parametrize(("arch", "head_upsample"), [("frame", 1), ("frame", 4), ("seanet", 1)])
def test_chunked_coding_is_exact_at_the_seams(arch, head_upsample):
    """Long files go through the model in chunks with context: the same codes and samples as
    one pass over the whole file (memory stays flat; see benchmarks for the figures)."""
    from examples.telugu_codec.codec import decode_codes, encode_audio
    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    torch.manual_seed(0)
    model = TeluguCodec(CodecConfig(arch=arch, channels=4, enc_width=16, dec_width=16,
                                    num_quantizers=2, codebook_size=16,
                                    center_latents=False, head_upsample=head_upsample)).eval()
    model.quantizer.train()
    model.quantizer(torch.randn(4, model.cfg.latent_dim, 64))  # a k-means init, any will do
    model.quantizer.eval()
    audio = np.random.default_rng(0).standard_normal(16000 * 7 + 123).astype(np.float32) * 0.1
    whole = encode_audio(model, audio, chunk_frames=10_000)
    chunked = encode_audio(model, audio, chunk_frames=50)
    assert whole.shape == (2, 351) and np.array_equal(whole, chunked)
    np.testing.assert_allclose(decode_codes(model, chunked, chunk_frames=50),
                               decode_codes(model, chunked, chunk_frames=10_000), atol=1e-5)


def test_shipped_weights_load_and_code_a_clip():
    """The CLI's default model: examples/telugu_codec/pretrained/ (fp16 weights + config)."""
    from examples.telugu_codec.checkpoint import PRETRAINED_DIR
    from examples.telugu_codec.codec import decode_bytes, encode_wav

    if not (PRETRAINED_DIR / "weights.pt").is_file():
        pytest.skip("no shipped weights in this checkout")
    assert (PRETRAINED_DIR / "weights.pt").stat().st_size <= 10_000_000
    model = load_model()
    audio = (0.1 * np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000)).astype(np.float32)
    data = encode_wav(model, audio)
    assert len(data) * 8 / 1.0 <= 6000 + 40 * 8 + 8  # 6 kbps plus the header
    y = decode_bytes(model, data)
    assert len(y) == 16000 and np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_upsampled_head_shapes_and_bad_factors():
    """The 4x head: T latent frames still give T x hop samples, its spectrum has the finer
    hop's frames, and a factor that does not divide the hop is refused by name."""
    from examples.telugu_codec.model import CodecConfig, TeluguCodec, UpsampledFrameHead

    cfg = CodecConfig(arch="frame", enc_width=16, dec_width=16, num_quantizers=2,
                      codebook_size=16, head_upsample=4)
    model = TeluguCodec(cfg)
    assert isinstance(model.head, UpsampledFrameHead)
    assert (model.head.hop_length, model.head.n_fft) == (80, 320)
    h = torch.randn(2, 16, 7)
    assert model.head.spectrum(h).shape == (2, 161, 28)
    assert model.head(h).shape == (2, 1, 7 * 320)
    y, _ = model(torch.randn(2, 1, 3200))
    assert y.shape == (2, 1, 3200)
    for bad in (3, 6):  # odd; does not divide 320
        with pytest.raises(ValueError, match="head_upsample"):
            UpsampledFrameHead(16, 8, bad, 320)


def test_adversarial_training_logs_its_losses_and_resumes_exactly(data_dir, tmp_path):
    """``--adversarial``: the discriminator steps beside the codec, its losses join the
    balancer, and its weights and optimizer are in every checkpoint, so a resumed run ends
    where a straight one does."""
    flags = ("--num_epochs", "3", "--adversarial", "1")
    train(_args(data_dir, tmp_path / "straight", *flags))
    train(_args(data_dir, tmp_path / "split", *flags, "--max_steps", "2"))
    train(_args(data_dir, tmp_path / "split", *flags, "--resume"))
    a = load_checkpoint(tmp_path / "straight" / "telugu_codec" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "telugu_codec" / "last.pt")
    assert _states_equal(a["model"], b["model"]) and _states_equal(a["disc"], b["disc"])
    assert {"loss/adv", "loss/fm", "d_loss"} <= set(a["metrics"])
    assert a["metrics"]["d_loss"] > 0
    with pytest.raises(SystemExit, match="without --adversarial"):
        train(_args(data_dir, tmp_path / "plain", "--num_epochs", "1"))
        train(_args(data_dir, tmp_path / "plain", "--num_epochs", "2", "--resume", *flags[2:]))


def test_init_weights_starts_from_a_trained_codec(data_dir, tmp_path):
    """``--init_weights``: the run starts from the given codec's (EMA) weights and codebooks;
    at learning rate 0 its encoder, decoder and head stay exactly those weights."""
    train(_args(data_dir, tmp_path / "a", "--num_epochs", "1"))
    src = load_model(tmp_path / "a" / "telugu_codec" / "last.pt")
    train(_args(data_dir, tmp_path / "b", "--num_epochs", "1", "--learning_rate", "0",
                "--init_weights", str(tmp_path / "a" / "telugu_codec" / "last.pt")))
    got = load_checkpoint(tmp_path / "b" / "telugu_codec" / "last.pt")["model"]
    for k, v in src.state_dict().items():
        if not k.startswith("quantizer."):  # EMA codebooks learn without a learning rate
            assert torch.equal(got[k], v), k
    assert bool(got["quantizer.initialized"])
    with pytest.raises(SystemExit, match="init_weights"):
        train(_args(data_dir, tmp_path / "c", "--num_epochs", "1", "--num_quantizers", "3",
                    "--init_weights", str(tmp_path / "a" / "telugu_codec" / "last.pt")))


def test_init_weights_from_an_exported_directory_restarts_the_usage_statistics(data_dir,
                                                                             tmp_path):
    """Exported weights keep no EMA statistics; the run restarts them uniform (one step's
    vectors) with each code the mean of its share, so the first EMA step keeps the codes."""
    from examples.telugu_codec.checkpoint import export_pretrained, init_weights
    from examples.telugu_codec.model import TeluguCodec

    train(_args(data_dir, tmp_path / "a", "--num_epochs", "1"))
    out = export_pretrained(tmp_path / "a" / "telugu_codec" / "last.pt", tmp_path / "export")
    src = load_model(out)
    model = TeluguCodec(src.cfg)
    init_weights(model, out, 48, log=lambda *_: None)
    q = model.quantizer
    assert torch.equal(q.codebook, src.quantizer.codebook)
    assert torch.equal(q.cluster_size, torch.full_like(q.cluster_size, 48 / 16))
    torch.testing.assert_close(q.embed_sum, q.codebook * 3.0)
    assert not q.unused_for.any()
    q.train()
    before = q.codebook.clone()
    q(torch.randn(1, src.cfg.latent_dim, 4))  # 4 vectors: most codes unused this step
    changed = (q.codebook - before).norm(dim=-1) > 1e-3 * before.norm(dim=-1)
    assert changed.sum() <= 2 * 4  # only codes that coded a vector (or a revival) move
