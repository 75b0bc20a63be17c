"""Codec quality: the Telugu example codec against Opus and Codec2 at matched bitrates.

    python -m examples.telugu_codec.studies.codec_quality --checkpoint CKPT [--real_speech] \\
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
PESQ wide-band, STOI), averaged over clips. One thread. The coders and the alignment are
in :mod:`.coders`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model
from ..data import default_cache_dir, eval_subset, load_heldout, load_recorded_english
from ..metrics import all_metrics
from . import RESULTS_DIR, write_json
from .coders import (
    C2_SR,
    CODEC2_MODES,
    SR,
    codec2_roundtrip,
    codec_roundtrip,
    coder_versions,
    estimate_lag,
    opus_level,
    opus_roundtrip,
    shift,
    to_8k,
    to_16k,
)

MODULE = "examples.telugu_codec.studies.codec_quality"
WAVEFORM_MAX_LAG_S = 0.02
CODEC2_MAX_LAG_S = 0.1
WAVE_LAG, C2_LAG = int(WAVEFORM_MAX_LAG_S * SR), int(CODEC2_MAX_LAG_S * SR)

METHOD = {
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
               "metric was defined, e.g. PESQ needs speech activity)."}


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
          bits: float, coded_samples: float, perceptual: bool, codec_s: float,
          coded_rate: int = SR, max_lag: int = WAVE_LAG, use_envelope: bool = False,
          extra: dict | None = None) -> dict:
    """Align ``outs`` to ``clips`` (one lag for all), score every clip, average."""
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


def _codec_rows(model, clips: Sequence, quantizers: Sequence[int] | None,
                perceptual: bool) -> Iterator[dict]:
    """The example codec decoded with each quantizer count (one encoding per clip)."""
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
        yield score("telugu_codec", f"{n} of {cfg.num_quantizers} quantizers", clips,
                    decoded[n], bits=frames * n * bits_per_frame,
                    coded_samples=frames * model.hop_length, perceptual=perceptual,
                    codec_s=secs, extra={"nominal_kbps": round(nominal, 3), "quantizers": n})


def _opus_row(clips: Sequence, target: float, perceptual: bool) -> dict:
    """Opus at the level that targets ``target`` kbps; ``payload_kbps`` counts its packets."""
    samples = sum(len(c.audio) for c in clips)
    level = opus_level(1000 * target)
    t0 = time.perf_counter()
    outs, file_bytes, packet_bytes = [], 0, 0
    for c in clips:
        y, fb, pb = opus_roundtrip(c.audio, level)
        outs.append(y)
        file_bytes += fb
        packet_bytes += pb
    row = score("opus", f"target {target:g} kbps", clips, outs, bits=8 * file_bytes,
                coded_samples=samples, perceptual=perceptual, codec_s=time.perf_counter() - t0,
                extra={"nominal_kbps": target, "compression_level": round(level, 6),
                       "decoded_length_equals_input": all(
                           len(y) == len(c.audio) for y, c in zip(outs, clips, strict=True))})
    row["payload_kbps"] = round(8 * packet_bytes / (samples / SR) / 1000, 3)
    return row


def _codec2_rows(clips: Sequence, modes: Sequence[str], perceptual: bool) -> Iterator[dict]:
    """Codec2 at each mode, its lag found on the amplitude envelopes."""
    if not modes:
        return
    with tempfile.TemporaryDirectory(prefix="codec2-") as work:
        for mode in modes:
            t0 = time.perf_counter()
            outs, file_bytes, coded = [], 0, 0
            for c in clips:
                y, fb, n8 = codec2_roundtrip(c.audio, mode, Path(work))
                outs.append(y)
                file_bytes += fb
                coded += n8
            frame, frame_bits = CODEC2_MODES[mode]
            yield score("codec2", f"mode {mode}", clips, outs, bits=8 * file_bytes,
                        coded_samples=coded, coded_rate=C2_SR, max_lag=C2_LAG,
                        use_envelope=True, perceptual=perceptual,
                        codec_s=time.perf_counter() - t0,
                        extra={"nominal_kbps": round(frame_bits * C2_SR / frame / 1000, 3),
                               "mode": mode})


def _anchor_row(clips: Sequence, perceptual: bool) -> dict:
    """The 16 -> 8 -> 16 kHz resampling alone: no bitstream."""
    t0 = time.perf_counter()
    outs = [to_16k(to_8k(c.audio)) for c in clips]
    row = score("resample_8k", "16 -> 8 -> 16 kHz, no coding", clips, outs, bits=0,
                coded_samples=sum(len(c.audio) for c in clips), perceptual=perceptual,
                codec_s=time.perf_counter() - t0)
    row["kbps"] = row["payload_kbps"] = None  # no bitstream
    return row


def _describe(row: dict) -> str:
    """One log line for a result row."""
    m = {"pesq_wb": math.nan, "stoi": math.nan, **row["metrics"]}
    kbps = row["payload_kbps"]
    rate = f"{kbps:7.2f} kbps" if kbps is not None else "   (no coding)"
    return (f"  {row['system']:<13} {row['setting']:<29} {rate}"
            f" | PESQ {m['pesq_wb']:.2f} STOI {m['stoi']:.3f}"
            f" SI-SNR {m['si_snr']:6.2f} mel {m['mel_distance']:.3f} | lag {row['lag_samples']}"
            f" | {row['codec_s']:.1f} s")


def _set_rows(model, clips: Sequence, quantizers: Sequence[int] | None,
              opus_kbps: Sequence[float], codec2_modes: Sequence[str], perceptual: bool,
              anchor: bool) -> Iterator[dict]:
    """Every system's rows for one set, each produced as soon as it is scored."""
    if model is not None:
        yield from _codec_rows(model, clips, quantizers, perceptual)
    for target in opus_kbps:
        yield _opus_row(clips, target, perceptual)
    yield from _codec2_rows(clips, codec2_modes, perceptual)
    if anchor:
        yield _anchor_row(clips, perceptual)


def run(model, sets: dict[str, Sequence], *, quantizers: Sequence[int] | None = None,
        opus_kbps: Sequence[float] = (6, 8, 10, 12, 16),
        codec2_modes: Sequence[str] = ("3200", "2400", "1600", "700C"),
        perceptual: bool = True, anchor: bool = True,
        log: Callable[[str], object] = print) -> list[dict]:
    """Code every clip of every set with every system; one result row per (set, system,
    setting). ``model`` may be ``None`` (no rows for the example codec)."""
    results = []
    for set_name, clips in sets.items():
        log(f"\n[{set_name}] {len(clips)} clips, {sum(len(c.audio) for c in clips) / SR:.1f} s")
        for row in _set_rows(model, clips, quantizers, opus_kbps, codec2_modes, perceptual,
                             anchor):
            results.append({"set": set_name, **row})
            log(_describe(results[-1]))
    return results


def default_quantizers(q: int) -> list[int]:
    """Q, Q/2 and Q/4 (rounded down, at least 1, without repeats)."""
    return sorted({max(1, q // d) for d in (1, 2, 4)}, reverse=True)


# ====================================================================== provenance
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def meta(argv: Sequence[str], threads: int) -> dict:
    """Versions, machine and the command line (``python`` followed by ``argv``)."""
    import soundfile as sf

    import rvq_blocks

    return {"torch": torch.__version__, "rvq_blocks": rvq_blocks.__version__,
            "numpy": np.__version__, "soundfile": sf.__version__, **coder_versions(),
            "soxr": _version("soxr"), "pesq": _version("pesq"), "pystoi": _version("pystoi"),
            "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "cpu_count": os.cpu_count(), "threads": threads,
            "loadavg_start": list(os.getloadavg()),
            "command": shlex.join(["python", *argv])}


def checkpoint_info(path: Path) -> dict:
    """Path, size, SHA-256 and header line of the checkpoint file scored (of ``weights.pt``
    for an exported weights directory)."""
    if path.is_dir():
        path = path / "weights.pt"
    with open(path, "rb") as f:
        header = f.readline().decode("ascii", "replace").strip()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest,
            "header": header[:80]}


# ====================================================================== CLI
def build_parser() -> argparse.ArgumentParser:
    """The study's command line."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0],
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
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "codec_quality.json")
    return p


def load_sets(args: argparse.Namespace) -> tuple[dict[str, list], dict[str, dict]]:
    """The clip sets to score (held-out Telugu, and with ``--real_speech`` recorded English),
    each its first ``--max_seconds`` in name order, and their descriptions for the JSON."""
    def first(clips: list) -> list:
        return eval_subset(sorted(clips, key=lambda c: c.name), args.max_seconds, SR)

    sets = {"heldout": first(load_heldout(args.cache_dir, args.corpus))}
    sources = {"heldout": str(args.corpus or args.cache_dir / "telugu_corpus")}
    descriptions = {"heldout": "held-out clips of the default corpus: synthetic Telugu speech "
                               "(held-out sentences, voices never used in training)"
                    if args.corpus is None else f"held-out clips of {args.corpus.name}"}
    if args.real_speech:
        sets["real_speech"] = first(load_recorded_english(args.cache_dir))
        sources["real_speech"] = str(args.cache_dir / "real_speech")
        descriptions["real_speech"] = ("recorded English studio prompts (Asterisk core sounds, "
                                       "G.722 decoded to 16 kHz), levels as recorded")
    return sets, {name: {"description": descriptions[name], "source": sources[name],
                         "clips": len(clips),
                         "seconds": round(sum(len(c.audio) for c in clips) / SR, 2),
                         "first": clips[0].name, "last": clips[-1].name,
                         "max_seconds": args.max_seconds}
                  for name, clips in sets.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Score every system on every set and write the JSON the report renders."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.codec2_modes and not (shutil.which("c2enc") and shutil.which("c2dec")):
        print("c2enc/c2dec not found: apt-get install codec2 (or pass --codec2_modes with no "
              "modes)", file=sys.stderr)
        return 2
    provenance = meta(["-m", MODULE, *argv], args.threads)
    model = load_model(args.checkpoint)
    cfg = model.cfg
    print(f"codec: {cfg.num_quantizers} x {cfg.codebook_size} codes at {cfg.frame_rate:g} Hz "
          f"({model.bitrate / 1000:.2f} kbps at full depth) from {args.checkpoint}")
    sets, described = load_sets(args)
    results = run(model, sets, quantizers=args.quantizers, opus_kbps=args.opus_kbps,
                  codec2_modes=args.codec2_modes, perceptual=not args.no_perceptual)
    data = {
        "meta": {**provenance, "wall_s": round(time.perf_counter() - start, 1),
                 "loadavg_end": list(os.getloadavg())},
        "model": {"checkpoint": checkpoint_info(args.checkpoint), "config": cfg.to_dict(),
                  "full_kbps": round(model.bitrate / 1000, 3)},
        "sets": described, "method": METHOD, "results": results}
    write_json(args.out, data)
    print(f"done in {data['meta']['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
