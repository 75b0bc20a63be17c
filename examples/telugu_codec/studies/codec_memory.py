"""Peak memory of the codec CLI on long files: the whole file in one pass against 30 s chunks.

    python -m examples.telugu_codec.studies.codec_memory --minutes 10 60 \\
        --out benchmarks/results/codec_memory.json [--source heldout|noise] [--threads 1]

For each length in ``--minutes`` a 16 kHz mono 16-bit WAV of that length is written to a
temporary folder (``--work_dir``; under ``/tmp`` by default, removed at the end unless
``--keep``) and coded by separate processes, one at a time:

* ``chunked``: the CLI as it is, ``python -m examples.telugu_codec.codec encode IN OUT`` and
  ``decode OUT back.wav``: it reads, codes and writes the files a chunk at a time (chunks of
  :data:`~examples.telugu_codec.codec.CHUNK_FRAMES` frames with
  :data:`~examples.telugu_codec.codec.CONTEXT_FRAMES` frames of context on each side);
* ``whole``: the same CLI code in a process of this module (``--worker``) that binds
  ``chunk_frames`` of :func:`~examples.telugu_codec.codec.encode_file` and
  :func:`~examples.telugu_codec.codec.decode_file` (and of ``encode_audio`` and
  ``decode_codes``) to more frames than any file has, so each file is read, goes through the
  model and is written in one pass. Model, weights and code are the same; only the chunking
  differs.

Both ``decode`` runs read the code file of the chunked ``encode``, so their inputs are the
same. ``baseline`` is a process that only imports torch and loads the model: the fixed cost.

Peak memory is the child's ``ru_maxrss`` from ``os.wait4`` (the figure ``/usr/bin/time -v``
prints as "Maximum resident set size"). Each child is started by a small launcher process
with no third-party imports, not by this one: Linux carries the resident-memory high-water
mark of the process that calls ``execve`` into the new program's ``ru_maxrss``, so a child of
this process (torch, the study's audio) would report at least this process' own peak. The
launcher also polls the child's ``VmRSS`` every ``--poll`` seconds and stops it when it
passes ``--max_rss_gib`` or when the machine's ``MemAvailable`` falls under
``--min_available_gib``; a stopped run is recorded with
``stopped: true``, the RSS it had reached, and the figure extrapolated from the per-minute
growth (peak minus baseline, per minute of audio) of the longest completed run of the same
command. Wall times include process start-up (importing torch, loading the model) and the
reading and writing of the files.

Audio (``--source``): ``heldout`` concatenates the held-out clips of the default synthetic
Telugu corpus (built in ``--cache_dir`` when missing) and loops them to the length asked for;
``noise`` is speech-shaped noise (a 1/f-tilted spectrum, syllable-rate bursts and pauses, at
-20 dBFS), which needs no synthesizer. Memory does not depend on what the audio says.

The JSON holds ``meta`` (command, machine, versions, threads, model, chunking), ``baseline``,
``runs`` (one per length, command and mode: ``peak_rss_mib``, ``per_audio_mib`` = peak minus
baseline, ``wall_s``, ``realtime_factor``, ``stopped``) and ``compare`` (per length: the share
of codes that differ between the whole-file and the chunked ``encode``, and the largest
difference between the two decoded files, in units of one 16-bit step).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..checkpoint import PRETRAINED_DIR, WEIGHTS
from ..data import default_cache_dir
from . import REPO_ROOT, RESULTS_DIR, run_meta, write_json

MODULE = "examples.telugu_codec.studies.codec_memory"
CLI = "examples.telugu_codec.codec"
SR = 16000
MIB, GIB = 2**20, 2**30
WHOLE_FILE_FRAMES = 2**40  # more frames than any file: one chunk
OPS = ("encode", "decode")
MODES = ("whole", "chunked")
BASELINE_CODE = ("import sys, torch; from examples.telugu_codec.checkpoint import load_model; "
                 "load_model(sys.argv[1])")


# ====================================================================== audio
def speech_shaped_noise(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Noise with a speech-like spectrum and rhythm, at -20 dBFS RMS.

    Args:
        seconds: Length of the signal.
        sr: Sample rate.
        seed: Seed of the noise and of the burst pattern.

    Returns:
        ``(round(seconds * sr),)`` float32 samples in ``[-1, 1]``.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sr)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spectrum *= 1 / np.sqrt(1 + (f / 500.0) ** 2) * (f > 60)  # flat to 500 Hz, then -3 dB/oct
    x = np.fft.irfft(spectrum, n)
    # syllables of 120-300 ms, a pause of 200-600 ms after every 3-8 of them
    env = np.zeros(n)
    pos, left = 0, int(rng.integers(3, 9))
    while pos < n:
        length = int(rng.uniform(0.12, 0.3) * sr)
        env[pos: pos + length] = np.hanning(length)[: n - pos] * rng.uniform(0.4, 1.0)
        pos += length
        left -= 1
        if left == 0:
            pos, left = pos + int(rng.uniform(0.2, 0.6) * sr), int(rng.integers(3, 9))
    x *= env
    x *= 0.1 / max(float(np.sqrt(np.mean(x**2))), 1e-9)
    return np.clip(x, -1, 1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _heldout(cache_dir: Path) -> np.ndarray:
    from ..data import load_heldout

    return np.concatenate([c.audio for c in load_heldout(cache_dir)]).astype(np.float32)


def heldout_loop(seconds: float, cache_dir: Path) -> np.ndarray:
    """The held-out clips of the default corpus, concatenated and looped to ``seconds``.

    Args:
        seconds: Length of the signal.
        cache_dir: Where the default corpus is (built there when missing).

    Returns:
        ``(round(seconds * SR),)`` float32 samples.
    """
    return np.resize(_heldout(cache_dir), round(seconds * SR))


def write_wav(path: Path, minutes: float, source: str, cache_dir: Path) -> None:
    """Write ``minutes`` of 16 kHz mono 16-bit audio from ``source`` to ``path``."""
    import soundfile as sf

    seconds = minutes * 60
    audio = heldout_loop(seconds, cache_dir) if source == "heldout" else (
        speech_shaped_noise(seconds))
    sf.write(str(path), audio, SR, subtype="PCM_16")


# ====================================================================== measuring
def _vm_rss(pid: int) -> int | None:
    """The process' resident memory now (``VmRSS``), or ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _mem_available() -> int:
    """The machine's ``MemAvailable`` in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _run_and_watch(cmd: list[str], max_rss: int, min_available: int, poll: float) -> dict:
    """Run ``cmd`` and watch it (stdlib only: it runs in :func:`measure`'s small launcher)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        polled, stopped = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _vm_rss(proc.pid) or 0
            polled = max(polled, rss)
            if stopped is None and rss > max_rss:
                stopped = f"RSS passed {max_rss / 2**30:.1f} GiB"
            elif stopped is None and _mem_available() < min_available:
                stopped = f"machine's available memory under {min_available / 2**30:.1f} GiB"
            if stopped is not None:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(poll)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
    return {"maxrss": usage.ru_maxrss * 1024, "polled": polled, "wall": wall,
            "returncode": os.waitstatus_to_exitcode(status), "stopped": stopped, "tail": tail}


def _launcher_code() -> str:
    """A stdlib-only program that runs :func:`_run_and_watch` on the JSON in its argv[1]."""
    import inspect

    return "\n".join(["import json, os, subprocess, sys, tempfile, time"]
                     + [inspect.getsource(f) for f in (_vm_rss, _mem_available, _run_and_watch)]
                     + ["print(json.dumps(_run_and_watch(**json.loads(sys.argv[1]))))"])


def measure(cmd: list[str], env: dict[str, str], *, max_rss: int, min_available: int,
            poll: float) -> dict:
    """Run ``cmd`` in the repository root; its peak RSS, wall time and whether it was stopped.

    The command is started by a small launcher process (a Python with no third-party
    imports): on Linux ``execve`` records the resident-memory high-water mark of the memory it
    replaces in the new process' ``ru_maxrss``, so a command started by this process (which
    holds torch and the study's audio) would report at least this process' own peak.

    Args:
        cmd: The command line.
        env: Its environment.
        max_rss: Stop the process when its RSS passes this many bytes.
        min_available: Stop it when the machine's available memory falls under this.
        poll: Seconds between two looks at its RSS.

    Returns:
        ``peak_rss_mib`` (``ru_maxrss``), ``polled_peak_mib``, ``wall_s``, ``returncode``,
        ``stopped`` (``None`` or why).

    Raises:
        RuntimeError: If the command fails without having been stopped.
    """
    args = {"cmd": cmd, "max_rss": max_rss, "min_available": min_available, "poll": poll}
    launched = subprocess.run([sys.executable, "-c", _launcher_code(), json.dumps(args)],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if launched.returncode != 0:
        raise RuntimeError(f"the launcher of {shlex.join(cmd)} failed: {launched.stderr}")
    r = json.loads(launched.stdout)
    if r["returncode"] != 0 and r["stopped"] is None:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({r['returncode']}): "
                           + "\n".join(r["tail"]))
    return {"peak_rss_mib": round(r["maxrss"] / MIB, 1),
            "polled_peak_mib": round(r["polled"] / MIB, 1), "wall_s": round(r["wall"], 2),
            "returncode": r["returncode"], "stopped": r["stopped"]}


def commands(op: str, mode: str, src: Path, dst: Path, checkpoint: Path) -> list[str]:
    """The command line of one run: the CLI itself (``chunked``) or this module's worker."""
    paths = [op, "--checkpoint", str(checkpoint), str(src), str(dst)]
    if mode == "chunked":
        return [sys.executable, "-m", CLI, *paths]
    return [sys.executable, "-m", MODULE, "--worker", *paths]


def worker(argv: Sequence[str]) -> int:
    """The codec CLI with one chunk covering the whole file (the ``whole`` runs).

    Args:
        argv: The CLI's arguments (``encode``/``decode``, flags, input, output).

    Returns:
        The CLI's exit code.
    """
    from .. import codec

    for name in ("encode_file", "decode_file", "encode_audio", "decode_codes"):
        setattr(codec, name, functools.partial(getattr(codec, name),
                                               chunk_frames=WHOLE_FILE_FRAMES))
    return codec.main(list(argv))


# ====================================================================== comparing
def compare(work: Path, minutes: float) -> dict:
    """How far the whole-file and the chunked outputs of one length are apart.

    Args:
        work: The folder holding ``{minutes}min.{mode}.rvqc`` and ``{minutes}min.{mode}.wav``.
        minutes: The length.

    Returns:
        ``codes_identical``, ``codes_differing_share`` (over all quantizers),
        ``first_stage_differing_share`` and ``decoded_max_abs_diff_lsb`` (the largest sample
        difference of the two decoded WAVs, in 16-bit steps); ``None`` where a run was
        stopped before writing its file.
    """
    import soundfile as sf

    from ..codec import unpack_codes

    stem = work / f"{minutes:g}min"
    out: dict = {"minutes": minutes, "codes_identical": None, "codes_differing_share": None,
                 "first_stage_differing_share": None, "decoded_max_abs_diff_lsb": None}
    whole, chunked = Path(f"{stem}.whole.rvqc"), Path(f"{stem}.chunked.rvqc")
    if whole.is_file() and chunked.is_file():
        a, b = (unpack_codes(p.read_bytes())[0] for p in (whole, chunked))
        if a.shape == b.shape:
            differ = a != b
            out.update(codes_identical=not differ.any(),
                       codes_differing_share=round(float(differ.mean()), 5),
                       first_stage_differing_share=round(float(differ[0].mean()), 5))
    whole, chunked = Path(f"{stem}.whole.wav"), Path(f"{stem}.chunked.wav")
    if whole.is_file() and chunked.is_file():
        a, b = (sf.read(str(p), dtype="int16")[0].astype(np.int32) for p in (whole, chunked))
        if a.shape == b.shape:
            out["decoded_max_abs_diff_lsb"] = int(np.abs(a - b).max())
    return out


def extrapolate(runs: list[dict], baseline_mib: float) -> None:
    """Give each stopped run ``extrapolated_peak_mib``: the baseline plus the per-minute growth
    of the longest completed run of the same op and mode times its length (in place)."""
    for r in runs:
        if not r["stopped"]:
            continue
        done = [d for d in runs if d["op"] == r["op"] and d["mode"] == r["mode"]
                and not d["stopped"]]
        if done:
            ref = max(done, key=lambda d: d["minutes"])
            r["growth_mib_per_min_from"] = ref["minutes"]
            r["extrapolated_peak_mib"] = round(
                baseline_mib + ref["per_audio_mib"] / ref["minutes"] * r["minutes"], 1)


# ====================================================================== provenance
def meta(argv: Sequence[str], args: argparse.Namespace, cfg: dict) -> dict:
    """Versions, machine, the command line (``python`` followed by ``argv``) and settings."""
    from ..codec import CHUNK_FRAMES, CONTEXT_FRAMES, READ_BLOCK

    weights = args.checkpoint / WEIGHTS if args.checkpoint.is_dir() else args.checkpoint
    return {**run_meta(argv, args.threads),
            "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                   / GIB, 1),
            "loadavg_start": list(os.getloadavg()),
            "checkpoint": str(args.checkpoint.resolve().relative_to(REPO_ROOT)
                              if args.checkpoint.resolve().is_relative_to(REPO_ROOT)
                              else args.checkpoint),
            "weights_sha256_16": hashlib.sha256(weights.read_bytes()).hexdigest()[:16],
            "arch": cfg["arch"], "center_latents": cfg["center_latents"],
            "sample_rate": SR, "hop": int(np.prod(cfg["strides"])),
            "chunk_frames": CHUNK_FRAMES, "context_frames": CONTEXT_FRAMES,
            "read_block_frames": READ_BLOCK,
            "source": args.source, "max_rss_gib": args.max_rss_gib,
            "peak": "ru_maxrss of the child process (os.wait4), as /usr/bin/time -v",
            "baseline": "python -c '" + BASELINE_CODE + "' CHECKPOINT",
            "whole": "python -m " + MODULE + " --worker OP ... (the CLI with one chunk)",
            "chunked": "python -m " + CLI + " OP ... (the CLI as it is)"}


# ====================================================================== CLI
def build_parser() -> argparse.ArgumentParser:
    """The study's command line."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0],
                   help="lengths of the files to code")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "codec_memory.json")
    p.add_argument("--checkpoint", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--source", choices=("heldout", "noise"), default="heldout",
                   help="looped held-out clips of the default corpus, or speech-shaped noise")
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS and MKL_NUM_THREADS of the coding processes")
    p.add_argument("--max_rss_gib", type=float, default=18.0,
                   help="stop a run whose resident memory passes this")
    p.add_argument("--min_available_gib", type=float, default=1.0,
                   help="stop a run when the machine's available memory falls under this")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between RSS looks")
    p.add_argument("--work_dir", type=Path, default=None,
                   help="where the WAVs and code files go (default: a new folder in /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the WAVs and code files")
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    """Every run of the study; the results as they go into the JSON."""
    from ..checkpoint import load_model

    if any(m <= 0 for m in args.minutes):
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    cfg = load_model(args.checkpoint).cfg.to_dict()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    limits = {"max_rss": int(args.max_rss_gib * GIB),
              "min_available": int(args.min_available_gib * GIB), "poll": args.poll}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="codec_memory_", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"meta": meta(argv, args, cfg)}
    try:
        base = measure([sys.executable, "-c", BASELINE_CODE, str(args.checkpoint)], env,
                       **limits)
        results["baseline"] = {k: base[k] for k in ("peak_rss_mib", "wall_s")}
        print(f"baseline (import torch, load the model): {base['peak_rss_mib']:.0f} MiB, "
              f"{base['wall_s']:.1f} s")
        runs, comparisons = [], []
        for minutes in args.minutes:
            stem = work / f"{minutes:g}min"
            wav = Path(f"{stem}.wav")
            write_wav(wav, minutes, args.source, args.cache_dir)
            for op in OPS:
                for mode in MODES:
                    src = wav if op == "encode" else Path(f"{stem}.chunked.rvqc")
                    dst = Path(f"{stem}.{mode}.{'rvqc' if op == 'encode' else 'wav'}")
                    r = measure(commands(op, mode, src, dst, args.checkpoint), env, **limits)
                    r = {"minutes": minutes, "op": op, "mode": mode, **r,
                         "per_audio_mib": round(r["peak_rss_mib"]
                                                - base["peak_rss_mib"], 1),
                         "realtime_factor": round(minutes * 60 / r["wall_s"], 1)}
                    runs.append(r)
                    print(f"{minutes:g} min {op:6s} {mode:7s}: {r['peak_rss_mib']:8.0f} MiB "
                          f"peak, {r['wall_s']:6.1f} s"
                          + (f"  STOPPED ({r['stopped']})" if r["stopped"] else ""))
            comparisons.append(compare(work, minutes))
            print(f"{minutes:g} min: {comparisons[-1]}")
            if not args.keep:
                for p in work.glob(f"{minutes:g}min*"):
                    p.unlink()  # the next length's files need the room
        extrapolate(runs, base["peak_rss_mib"])
        results.update(runs=runs, compare=comparisons)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"]["loadavg_end"] = list(os.getloadavg())
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    args = build_parser().parse_args(argv)
    results = run(args, ["-m", MODULE, *argv])
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
