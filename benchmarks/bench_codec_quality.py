"""Codec quality: the Telugu example codec against Opus and Codec2 at matched bitrates.

    python benchmarks/bench_codec_quality.py --checkpoint CKPT [--real_speech] \\
        [--cache_dir DIR] [--corpus DIR] [--max_seconds 240] \\
        [--out benchmarks/results/codec_quality.json]

Every system codes the same clips, and every figure is measured in the run:

* the example codec (``examples/telugu_codec``) from ``--checkpoint``, decoded with the first
  ``n`` of its quantizers for each ``n`` in ``--quantizers`` (default: Q, Q/2 and Q/4); its
  bitrate is ``n * log2(codebook_size) * frame_rate`` bits per second of coded audio;
* Opus through libsndfile (``soundfile``, Ogg/Opus at 16 kHz): libsndfile sets the Opus target
  bitrate from ``compression_level`` as ``(1 - level) * 250 kbps + 6 kbps``, so each target in
  ``--opus_kbps`` is turned into a level (6 kbps, at level 1.0, is the lowest reachable);
* Codec2 (``c2enc``/``c2dec`` of the Debian ``codec2`` package) at each mode of
  ``--codec2_modes``, on 8 kHz 16-bit PCM: resampled 16 -> 8 kHz with soxr, coded, decoded and
  resampled back to 16 kHz;
* an anchor without coding: the 16 -> 8 -> 16 kHz resampling alone (the band limit that Codec2's
  figures include).

Bitrates are measured from what each encoder wrote: bits over the duration of the audio given
to it. For Opus that is the whole Ogg file, headers and page overhead included (``kbps``), and
separately the Opus packets alone (``payload_kbps``): libsndfile pads the OpusTags header to
over 512 bytes, which is several kbps on a clip of a few seconds. Matched-bitrate comparisons
use ``payload_kbps``. Codec2's files are headerless (``.bit``), so both figures are the same.

Delay: each system's output is shifted by one lag per system, setting and clip set, the
argmax of the cross-correlation with the input summed over all the clips (within +-20 ms for
the waveform coders, +-100 ms for Codec2). Codec2 is a parametric coder that does not keep the
waveform's phase, so its lag is found on the amplitude envelopes (``|x|``, 2 ms moving
average); the others on the waveforms. Shifted outputs are zero-padded at the end to the input
length (Codec2's input gets 100 ms of trailing silence first, so nothing is cut off).

Metrics: ``examples.telugu_codec.metrics.all_metrics`` per clip (SNR, SI-SNR, mel distance,
PESQ wide-band, STOI), averaged over clips. One thread.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

SR = 16000
C2_SR = 8000
# Codec2 modes: samples per frame at 8 kHz and bits per frame (each frame is written as whole
# bytes, so 700C's 28 bits take 4 bytes in the file).
CODEC2_MODES = {"3200": (160, 64), "2400": (160, 48), "1600": (320, 64), "1400": (320, 56),
                "1300": (320, 52), "1200": (320, 48), "700C": (320, 28)}
C2_TAIL_S = 0.1
WAVEFORM_MAX_LAG_S = 0.02
CODEC2_MAX_LAG_S = 0.1
ENVELOPE_S = 0.002
OPUS_MIN_BPS, OPUS_SPAN_BPS = 6000, 250000  # libsndfile: (1 - level) * 250 kbps + 6 kbps


# ====================================================================== coders
def opus_level(target_bps: float) -> float:
    """The ``compression_level`` for which libsndfile asks libopus for ``target_bps``."""
    level = 1.0 - (target_bps - OPUS_MIN_BPS + 0.5) / OPUS_SPAN_BPS
    return min(1.0, max(0.0, level))


def ogg_packet_sizes(data: bytes) -> list[int]:
    """Sizes in bytes of the packets of a single-stream Ogg file, in order (page headers and
    lacing values not counted)."""
    sizes, pos, current = [], 0, 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"no Ogg page at byte {pos}")
        count = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + count]
        for v in lacing:
            current += v
            if v < 255:
                sizes.append(current)
                current = 0
        pos += 27 + count + sum(lacing)
    return sizes


def opus_roundtrip(audio: np.ndarray, level: float) -> tuple[np.ndarray, int, int]:
    """Encode ``audio`` (16 kHz) as Ogg/Opus at ``compression_level=level`` and decode it.

    Returns ``(decoded, file_bytes, opus_packet_bytes)``; the packet bytes leave out the Ogg
    pages and the two header packets (OpusHead, OpusTags).
    """
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="OGG", subtype="OPUS", compression_level=level)
    data = buf.getvalue()
    decoded, rate = sf.read(io.BytesIO(data), dtype="float32")
    if rate != SR:
        raise RuntimeError(f"Opus decoded at {rate} Hz, expected {SR}")
    return decoded, len(data), sum(ogg_packet_sizes(data)[2:])


def to_8k(audio: np.ndarray) -> np.ndarray:
    import soxr

    return soxr.resample(audio, SR, C2_SR, quality="HQ").astype(np.float32)


def to_16k(audio: np.ndarray) -> np.ndarray:
    import soxr

    return soxr.resample(audio, C2_SR, SR, quality="HQ").astype(np.float32)


def codec2_roundtrip(audio: np.ndarray, mode: str, workdir: Path) -> tuple[np.ndarray, int, int]:
    """Code ``audio`` (16 kHz) with ``c2enc``/``c2dec`` at ``mode``.

    The 8 kHz signal gets ``C2_TAIL_S`` of trailing silence and is zero-padded to whole
    frames. Returns ``(decoded at 16 kHz, longer than the input by about the tail, file bytes,
    8 kHz samples given to the encoder)``.
    """
    frame = CODEC2_MODES[mode][0]
    x8 = to_8k(audio)
    n = len(x8) + int(C2_TAIL_S * C2_SR)
    n += (-n) % frame
    pcm = np.zeros(n, np.int16)
    pcm[:len(x8)] = np.round(np.clip(x8, -1.0, 1.0) * 32767).astype(np.int16)
    raw, bits, out = workdir / "in.raw", workdir / "coded.bit", workdir / "out.raw"
    pcm.astype("<i2").tofile(raw)
    for cmd in (["c2enc", mode, str(raw), str(bits)], ["c2dec", mode, str(bits), str(out)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-300:]}")
    y8 = np.fromfile(out, "<i2").astype(np.float32) / 32768.0
    return to_16k(y8), bits.stat().st_size, n


@torch.no_grad()
def codec_roundtrip(model, audio: np.ndarray, quantizers: Sequence[int]
                    ) -> tuple[dict[int, np.ndarray], int]:
    """Encode once with the example codec, decode with the first ``n`` quantizers for each
    ``n``. Returns ``({n: decoded}, frames)``."""
    from examples.telugu_codec.model import pad_to_hop

    x = torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None, None]
    codes = model.encode(pad_to_hop(x, model.hop_length))  # (1, Q, T)
    return ({n: model.decode(codes[:, :n])[0, 0].numpy() for n in quantizers},
            int(codes.shape[-1]))


# ====================================================================== alignment
def envelope(x: np.ndarray, width: int) -> np.ndarray:
    e = np.convolve(np.abs(np.asarray(x, np.float64)), np.ones(width) / width, mode="same")
    return e - e.mean()


def estimate_lag(refs: Sequence[np.ndarray], outs: Sequence[np.ndarray], max_lag: int, *,
                 use_envelope: bool = False) -> tuple[int, float, float]:
    """The delay ``d`` (samples) at which ``out[n + d]`` best matches ``ref[n]``, over all
    clips together: the argmax over ``|d| <= max_lag`` of the summed cross-correlations.
    Returns ``(d, normalised correlation at d, normalised correlation at 0)``."""
    total = np.zeros(2 * max_lag + 1)
    e_ref = e_out = 0.0
    width = max(1, int(ENVELOPE_S * SR))
    for ref, out in zip(refs, outs, strict=True):
        a = envelope(ref, width) if use_envelope else np.asarray(ref, np.float64)
        b = envelope(out, width) if use_envelope else np.asarray(out, np.float64)
        size = 1 << (len(a) + len(b)).bit_length()
        c = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
        total += np.concatenate([c[-max_lag:], c[:max_lag + 1]])
        e_ref += float(a @ a)
        e_out += float(b @ b)
    i = int(np.argmax(total))
    norm = math.sqrt(max(e_ref * e_out, 1e-30))
    return i - max_lag, float(total[i] / norm), float(total[max_lag] / norm)


def shift(out: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``out`` advanced by ``lag`` samples (delayed if negative), cut or zero-padded to
    ``length``."""
    y = np.zeros(length, np.float32)
    src = np.asarray(out, np.float32)[max(lag, 0):]
    start = max(-lag, 0)
    n = max(0, min(length - start, len(src)))
    y[start:start + n] = src[:n]
    return y


# ====================================================================== evaluation
def _mean_sem(rows: list[dict[str, float]]) -> tuple[dict, dict, dict]:
    keys = sorted({k for r in rows for k in r})
    mean, sem, count = {}, {}, {}
    for k in keys:
        v = np.array([r[k] for r in rows if k in r], np.float64)
        mean[k] = round(float(v.mean()), 4)
        sem[k] = round(float(v.std(ddof=1) / math.sqrt(len(v))), 4) if len(v) > 1 else None
        count[k] = len(v)
    return mean, sem, count


def score(system: str, setting: str, clips: Sequence, outs: Sequence[np.ndarray], *,
          bits: float, coded_samples: float, coded_rate: int, max_lag: int,
          use_envelope: bool, perceptual: bool, codec_s: float, extra: dict | None = None
          ) -> dict:
    """Align ``outs`` to ``clips`` (one lag for all), score every clip, average."""
    from examples.telugu_codec.metrics import all_metrics

    refs = [c.audio for c in clips]
    lag, corr, lag0_corr = estimate_lag(refs, outs, max_lag, use_envelope=use_envelope)
    rows = [all_metrics(r, shift(y, lag, len(r)), perceptual=perceptual)
            for r, y in zip(refs, outs, strict=True)]
    mean, sem, count = _mean_sem(rows)
    kbps = bits / (coded_samples / coded_rate) / 1000
    row = {"system": system, "setting": setting, "kbps": round(kbps, 3),
           "payload_kbps": round(kbps, 3), "lag_samples": lag,
           "lag_ms": round(1000 * lag / SR, 2), "lag_found_on": "envelope" if use_envelope
           else "waveform", "corr_at_lag": round(corr, 4), "corr_at_zero": round(lag0_corr, 4),
           "metrics": mean, "sem": sem, "clips_scored": count, "codec_s": round(codec_s, 2)}
    row.update(extra or {})
    return row


def run(model, sets: dict[str, Sequence], *, quantizers: Sequence[int] | None = None,
        opus_kbps: Sequence[float] = (6, 8, 10, 12, 16),
        codec2_modes: Sequence[str] = ("3200", "2400", "1600", "700C"),
        perceptual: bool = True, anchor: bool = True,
        log: Callable[[str], object] = print) -> list[dict]:
    """Code every clip of every set with every system; one result row per (set, system,
    setting). ``model`` may be ``None`` (no rows for the example codec)."""
    results = []
    wave_lag, c2_lag = int(WAVEFORM_MAX_LAG_S * SR), int(CODEC2_MAX_LAG_S * SR)
    for set_name, clips in sets.items():
        samples = sum(len(c.audio) for c in clips)
        log(f"\n[{set_name}] {len(clips)} clips, {samples / SR:.1f} s")

        def add(row: dict, set_name: str = set_name) -> None:
            row = {"set": set_name, **row}
            results.append(row)
            m = {"pesq_wb": math.nan, "stoi": math.nan, **row["metrics"]}
            kbps = row["payload_kbps"]
            rate = f"{kbps:7.2f} kbps" if kbps is not None else "   (no coding)"
            log(f"  {row['system']:<13} {row['setting']:<29} {rate}"
                f" | PESQ {m['pesq_wb']:.2f} STOI {m['stoi']:.3f}"
                f" SI-SNR {m['si_snr']:6.2f} mel {m['mel_distance']:.3f} | lag {row['lag_samples']}"
                f" | {row['codec_s']:.1f} s")

        if model is not None:
            cfg = model.cfg
            qs = quantizers or default_quantizers(cfg.num_quantizers)
            bits_per_frame = math.log2(cfg.codebook_size)
            t0 = time.perf_counter()
            decoded, frames = {n: [] for n in qs}, 0
            for c in clips:
                outs, f = codec_roundtrip(model, c.audio, qs)
                frames += f
                for n in qs:
                    decoded[n].append(outs[n])
            secs = (time.perf_counter() - t0) / len(qs)
            for n in qs:
                nominal = n * bits_per_frame * cfg.frame_rate / 1000
                add(score("telugu_codec", f"{n} of {cfg.num_quantizers} quantizers", clips,
                          decoded[n], bits=frames * n * bits_per_frame,
                          coded_samples=frames * model.hop_length, coded_rate=SR,
                          max_lag=wave_lag, use_envelope=False, perceptual=perceptual,
                          codec_s=secs, extra={"nominal_kbps": round(nominal, 3),
                                               "quantizers": n}))
        for target in opus_kbps:
            level = opus_level(1000 * target)
            t0 = time.perf_counter()
            outs, file_bytes, packet_bytes = [], 0, 0
            for c in clips:
                y, fb, pb = opus_roundtrip(c.audio, level)
                outs.append(y)
                file_bytes += fb
                packet_bytes += pb
            row = score("opus", f"target {target:g} kbps", clips, outs, bits=8 * file_bytes,
                        coded_samples=samples, coded_rate=SR, max_lag=wave_lag,
                        use_envelope=False, perceptual=perceptual,
                        codec_s=time.perf_counter() - t0,
                        extra={"nominal_kbps": target, "compression_level": round(level, 6),
                               "decoded_length_equals_input": all(
                                   len(y) == len(c.audio) for y, c in zip(outs, clips,
                                                                          strict=True))})
            row["payload_kbps"] = round(8 * packet_bytes / (samples / SR) / 1000, 3)
            add(row)
        if codec2_modes:
            with tempfile.TemporaryDirectory(prefix="codec2-") as work:
                for mode in codec2_modes:
                    t0 = time.perf_counter()
                    outs, file_bytes, coded = [], 0, 0
                    for c in clips:
                        y, fb, n8 = codec2_roundtrip(c.audio, mode, Path(work))
                        outs.append(y)
                        file_bytes += fb
                        coded += n8
                    frame, frame_bits = CODEC2_MODES[mode]
                    add(score("codec2", f"mode {mode}", clips, outs, bits=8 * file_bytes,
                              coded_samples=coded, coded_rate=C2_SR, max_lag=c2_lag,
                              use_envelope=True, perceptual=perceptual,
                              codec_s=time.perf_counter() - t0,
                              extra={"nominal_kbps": round(frame_bits * C2_SR / frame / 1000, 3),
                                     "mode": mode}))
        if anchor:
            t0 = time.perf_counter()
            outs = [to_16k(to_8k(c.audio)) for c in clips]
            row = score("resample_8k", "16 -> 8 -> 16 kHz, no coding", clips, outs, bits=0,
                        coded_samples=samples, coded_rate=SR, max_lag=wave_lag,
                        use_envelope=False, perceptual=perceptual,
                        codec_s=time.perf_counter() - t0)
            row["kbps"] = row["payload_kbps"] = None  # no bitstream
            add(row)
    return results


def default_quantizers(q: int) -> list[int]:
    """Q, Q/2 and Q/4 (rounded down, at least 1, without repeats)."""
    return sorted({max(1, q // d) for d in (1, 2, 4)}, reverse=True)


def first_seconds(clips: Sequence, seconds: float) -> list:
    """The first clips, in the given order, totalling at most ``seconds`` (at least one)."""
    from examples.telugu_codec.train import eval_subset

    return eval_subset(list(clips), seconds, SR)


# ====================================================================== provenance
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dpkg(package: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def opus_info() -> dict:
    """The libopus version and pre-skip libsndfile reports for a file it wrote."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "probe.ogg"
        sf.write(path, np.zeros(SR, np.float32), SR, format="OGG", subtype="OPUS")
        text = sf.info(str(path)).extra_info
    info = {}
    for line in text.splitlines():
        if line.startswith("Opus library version:"):
            info["libopus"] = line.split(":", 1)[1].strip()
        if line.strip().startswith("Preskip"):
            info["preskip"] = line.split(":", 1)[1].strip()
    return info


def bitrate_mode_support() -> str:
    """Whether libsndfile takes a ``bitrate_mode`` for Ogg/Opus (soundfile passes it on only
    together with a ``compression_level``)."""
    import soundfile as sf

    try:
        sf.write(io.BytesIO(), np.zeros(SR, np.float32), SR, format="OGG", subtype="OPUS",
                 compression_level=1.0, bitrate_mode="CONSTANT")
    except Exception as err:  # LibsndfileError
        return (f"not supported for Ogg/Opus ({str(err).splitlines()[0]}): libopus runs "
                "with its default, VBR")
    return "accepted (not used here: libopus runs with its default, VBR)"


def meta(argv: Sequence[str], threads: int) -> dict:
    import soundfile as sf

    import rvq_blocks

    return {"torch": torch.__version__, "rvq_blocks": rvq_blocks.__version__,
            "numpy": np.__version__, "soundfile": sf.__version__,
            "libsndfile": sf.__libsndfile_version__, **opus_info(),
            "opus_bitrate_mode": bitrate_mode_support(),
            "codec2": _dpkg("codec2"), "c2enc": shutil.which("c2enc"),
            "soxr": _version("soxr"), "pesq": _version("pesq"), "pystoi": _version("pystoi"),
            "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "cpu_count": os.cpu_count(), "threads": threads,
            "loadavg_start": list(os.getloadavg()),
            "command": shlex.join(["python", *argv])}


def checkpoint_info(path: Path) -> dict:
    with open(path, "rb") as f:
        header = f.readline().decode("ascii", "replace").strip()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest,
            "header": header[:80]}


# ====================================================================== CLI
def build_parser() -> argparse.ArgumentParser:
    from examples.telugu_codec.train import default_cache_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="a checkpoint of examples/telugu_codec (e.g. .../telugu_codec/last.pt)")
    p.add_argument("--corpus", type=Path, default=None,
                   help="corpus directory (train/ and heldout/, or split by name hash); "
                        "default: the default synthetic corpus in CACHE_DIR/telugu_corpus")
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--real_speech", action="store_true",
                   help="also score recorded speech (CACHE_DIR/real_speech, fetched if absent)")
    p.add_argument("--max_seconds", type=float, default=240.0,
                   help="per set: the first clips in sorted order totalling at most this")
    p.add_argument("--quantizers", type=int, nargs="*", default=None,
                   help="quantizer counts to decode with (default: Q, Q/2, Q/4)")
    p.add_argument("--opus_kbps", type=float, nargs="*", default=[6, 8, 10, 12, 16],
                   help="Opus target bitrates (6 is the lowest libsndfile can ask for)")
    p.add_argument("--codec2_modes", nargs="*", default=["3200", "2400", "1600", "700C"],
                   choices=sorted(CODEC2_MODES))
    p.add_argument("--no_perceptual", action="store_true", help="skip PESQ and STOI")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks" / "results" / "codec_quality.json")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    from examples.telugu_codec.data import load_audio_dir, load_corpus
    from examples.telugu_codec.train import load_model

    if args.codec2_modes and not (shutil.which("c2enc") and shutil.which("c2dec")):
        print("c2enc/c2dec not found: apt-get install codec2 (or pass --codec2_modes with no "
              "modes)", file=sys.stderr)
        return 2
    provenance = meta(["benchmarks/bench_codec_quality.py", *argv], args.threads)
    model = load_model(args.checkpoint)
    cfg = model.cfg
    print(f"codec: {cfg.num_quantizers} x {cfg.codebook_size} codes at {cfg.frame_rate:g} Hz "
          f"({model.bitrate / 1000:.2f} kbps at full depth) from {args.checkpoint}")

    if args.corpus is None:
        from examples.telugu_codec.corpus import build_default_corpus
        corpus = build_default_corpus(args.cache_dir / "telugu_corpus")
    else:
        corpus = args.corpus
    _, heldout = load_corpus(corpus)
    heldout = sorted(heldout, key=lambda c: c.name)
    sets = {"heldout": first_seconds(heldout, args.max_seconds)}
    sources = {"heldout": str(corpus)}
    descriptions = {"heldout": "held-out clips of the default corpus: synthetic Telugu speech "
                               "(held-out sentences, voices never used in training)"
                    if args.corpus is None else f"held-out clips of {Path(corpus).name}"}
    if args.real_speech:
        from examples.telugu_codec.corpus import fetch_real_speech
        sources["real_speech"] = str(fetch_real_speech(args.cache_dir / "real_speech"))
        real = load_audio_dir(sources["real_speech"])
        sets["real_speech"] = first_seconds(sorted(real, key=lambda c: c.name),
                                            args.max_seconds)
        descriptions["real_speech"] = ("recorded English studio prompts (Asterisk core sounds, "
                                       "G.722 decoded to 16 kHz), levels as recorded")

    results = run(model, sets, quantizers=args.quantizers, opus_kbps=args.opus_kbps,
                  codec2_modes=args.codec2_modes, perceptual=not args.no_perceptual)
    data = {
        "meta": {**provenance, "wall_s": round(time.perf_counter() - start, 1),
                 "loadavg_end": list(os.getloadavg())},
        "model": {"checkpoint": checkpoint_info(args.checkpoint), "config": cfg.to_dict(),
                  "full_kbps": round(model.bitrate / 1000, 3)},
        "sets": {name: {"description": descriptions[name], "source": sources[name],
                        "clips": len(clips),
                        "seconds": round(sum(len(c.audio) for c in clips) / SR, 2),
                        "first": clips[0].name, "last": clips[-1].name,
                        "max_seconds": args.max_seconds}
                 for name, clips in sets.items()},
        "method": {
            "bitrate": "kbps: bits written by the encoder over the duration of the audio "
                       "given to it. Opus: the whole Ogg file, including the Ogg container "
                       "overhead (page headers, OpusHead, OpusTags padded to over 512 bytes); "
                       "payload_kbps: the Opus packets alone. Codec2: headerless .bit files "
                       "(whole bytes per frame, so 700C's 28-bit frames take 32 bits); its "
                       "input includes the 100 ms of trailing silence and the padding to "
                       "whole frames. Example codec: frames x n x log2(codebook_size), "
                       "frames = ceil(samples / hop).",
            "opus": "soundfile sf.write(format='OGG', subtype='OPUS', compression_level=L) "
                    "into memory and sf.read back; libsndfile asks libopus for "
                    "(1 - L) * 250 kbps + 6 kbps, so L = 1 - (target - 6 kbps) / 250 kbps. "
                    "libsndfile removes the pre-skip on reading and trims to the input "
                    "length (the lag found is 0).",
            "codec2": "16 -> 8 kHz with soxr (HQ), int16, 100 ms of trailing silence, "
                      "zero-padded to whole frames; c2enc MODE in.raw out.bit; c2dec MODE; "
                      "8 -> 16 kHz with soxr (HQ). The 16 kHz metrics include the 4 kHz band "
                      "limit: see the resample_8k anchor.",
            "alignment": "one lag per system, setting and set: the argmax of the "
                         "cross-correlation with the input summed over the clips, within "
                         "+-20 ms (waveforms) or +-100 ms (Codec2, on amplitude envelopes: "
                         "2 ms moving average of |x|); output shifted by it and cut or "
                         "zero-padded to the input length. PESQ also aligns by itself.",
            "metrics": "examples.telugu_codec.metrics.all_metrics per clip, mean over clips "
                       "(sem: standard error of the mean; clips_scored: clips where the "
                       "metric was defined, e.g. PESQ needs speech activity)."},
        "results": results,
    }
    from _peers import write_json

    write_json(args.out, data)
    print(f"done in {data['meta']['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
