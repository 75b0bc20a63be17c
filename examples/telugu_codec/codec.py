"""Use a trained codec: wav -> code file -> wav, and evaluate it on held-out audio.

    python -m examples.telugu_codec.codec encode in.wav out.rvqc      # the shipped weights
    python -m examples.telugu_codec.codec decode out.rvqc back.wav
    python -m examples.telugu_codec.codec evaluate --checkpoint C/last.pt [--data_dir D]
        [--real_speech] [--n_quantizers N] [--json results.json]

``--checkpoint`` defaults to ``examples/telugu_codec/pretrained/`` (fp16 EMA weights of the
longest CPU run, its config, command and figures); any training ``last.pt`` works too.

Code file (``.rvqc``): a 24-byte header (magic ``RVQC``, format version, sample rate, hop,
quantizers, codebook size, samples, frames; little-endian) and the codes bit-packed at
``ceil(log2(codebook_size))`` bits each, frame-major. Its size is the true bitrate.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .metrics import all_metrics, mean_metrics
from .model import TeluguCodec, pad_to_hop

MAGIC = b"RVQC"
VERSION = 1
_HEADER = struct.Struct("<4sBxHIHHII")  # magic, version, pad, hop, sr, n_q, bits, samples, frames


def pack_codes(codes: np.ndarray, codebook_size: int, *, sample_rate: int, hop: int,
               num_samples: int) -> bytes:
    """``(n_q, T)`` integer codes -> header + bit-packed payload."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"expected codes of shape (n_q, frames), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size}), got "
                         f"[{codes.min()}, {codes.max()}]")
    bits = max(1, math.ceil(math.log2(codebook_size)))
    n_q, frames = codes.shape
    planes = (codes.T.astype(np.int64)[..., None] >> np.arange(bits)) & 1  # (T, n_q, bits)
    payload = np.packbits(planes.astype(np.uint8).reshape(-1), bitorder="little").tobytes()
    return _HEADER.pack(MAGIC, VERSION, hop, sample_rate, n_q, bits, num_samples,
                        frames) + payload


def unpack_codes(data: bytes) -> tuple[np.ndarray, dict]:
    """Inverse of :func:`pack_codes`: ``(codes (n_q, T) int64, header dict)``."""
    if len(data) < _HEADER.size:
        raise ValueError(f"code file too short ({len(data)} bytes, header is {_HEADER.size})")
    magic, version, hop, sr, n_q, bits, samples, frames = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"not an RVQC v{VERSION} code file (magic {magic!r}, version {version})")
    need = math.ceil(frames * n_q * bits / 8)
    payload = np.frombuffer(data, np.uint8, count=need, offset=_HEADER.size) \
        if len(data) >= _HEADER.size + need else None
    if payload is None:
        raise ValueError(f"code file truncated: expected {_HEADER.size + need} bytes, "
                         f"got {len(data)}")
    planes = np.unpackbits(payload, bitorder="little")[: frames * n_q * bits]
    codes = (planes.reshape(frames, n_q, bits).astype(np.int64) << np.arange(bits)).sum(-1).T
    return codes, {"hop": hop, "sample_rate": sr, "n_q": n_q, "bits": bits,
                   "num_samples": samples, "frames": frames}


def encode_wav(model: TeluguCodec, audio: np.ndarray, n_quantizers: int | None = None) -> bytes:
    x = torch.from_numpy(np.asarray(audio, np.float32))[None, None]
    codes = model.encode(pad_to_hop(x, model.hop_length), n_quantizers)[0].numpy()
    return pack_codes(codes, model.cfg.codebook_size, sample_rate=model.cfg.sample_rate,
                      hop=model.hop_length, num_samples=len(audio))


def decode_bytes(model: TeluguCodec, data: bytes) -> np.ndarray:
    codes, head = unpack_codes(data)
    if head["hop"] != model.hop_length or head["sample_rate"] != model.cfg.sample_rate:
        raise ValueError(f"code file is for hop {head['hop']} at {head['sample_rate']} Hz; "
                         f"this model has hop {model.hop_length} at {model.cfg.sample_rate} Hz")
    y = model.decode(torch.from_numpy(codes)[None])[0, 0].numpy()
    return y[: head["num_samples"]]


def evaluate_clips(model: TeluguCodec, clips: list, n_quantizers: int | None = None,
                   *, write_dir: Path | None = None, perceptual: bool = False) -> dict:
    """Round-trip every clip through the code file; metrics per clip averaged, true bitrate."""
    rows, total_bytes, total_seconds, t0 = [], 0, 0.0, time.perf_counter()
    for clip in clips:
        data = encode_wav(model, clip.audio, n_quantizers)
        est = decode_bytes(model, data)
        total_bytes += len(data)
        total_seconds += len(clip.audio) / model.cfg.sample_rate
        rows.append(all_metrics(clip.audio, est, perceptual=perceptual))
        if write_dir is not None:
            import soundfile as sf
            write_dir.mkdir(parents=True, exist_ok=True)
            sf.write(write_dir / f"{Path(clip.name).stem}.wav", est, model.cfg.sample_rate)
    n = n_quantizers or model.cfg.num_quantizers
    return {**mean_metrics(rows), "clips": len(clips), "seconds": total_seconds,
            "nominal_kbps": model.quantizer.bitrate(model.cfg.frame_rate, n) / 1000,
            "file_kbps": total_bytes * 8 / total_seconds / 1000,
            "realtime_factor": total_seconds / (time.perf_counter() - t0)}


def _read_mono(path: Path, sr: int) -> np.ndarray:
    """One file through the data layer's reader (mono, resampled to ``sr``)."""
    from .data import _read
    try:
        return _read(path, sr)
    except Exception as e:  # noqa: BLE001 - unreadable audio of any kind
        raise SystemExit(f"could not read audio from {path}: {e}") from e


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import PRETRAINED_DIR, load_model
    from .train import default_cache_dir

    p = argparse.ArgumentParser(prog="python -m examples.telugu_codec.codec")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("encode", "decode", "evaluate"):
        s = sub.add_parser(name)
        s.add_argument("--checkpoint", type=Path, default=PRETRAINED_DIR,
                       help="a training checkpoint (last.pt) or an exported weights directory;"
                            " default: the shipped pretrained/ weights")
        s.add_argument("--n_quantizers", type=int, default=None)
        if name != "evaluate":
            s.add_argument("input", type=Path)
            s.add_argument("output", type=Path)
    ev = sub.choices["evaluate"]
    ev.add_argument("--data_dir", type=Path, default=None,
                    help="held-out audio (default: the default corpus' heldout/)")
    ev.add_argument("--real_speech", action="store_true",
                    help="also evaluate on recorded English studio prompts")
    ev.add_argument("--max_clips", type=int, default=None)
    ev.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    ev.add_argument("--write_dir", type=Path, default=None, help="write reconstructions here")
    ev.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    model = load_model(args.checkpoint)
    sr = model.cfg.sample_rate

    if args.cmd == "encode":
        audio = _read_mono(args.input, sr)
        data = encode_wav(model, audio, args.n_quantizers)
        args.output.write_bytes(data)
        print(f"{args.input} ({len(audio) / sr:.2f} s) -> {args.output}: {len(data)} bytes, "
              f"{len(data) * 8 / (len(audio) / sr) / 1000:.2f} kbps")
        return 0
    if args.cmd == "decode":
        import soundfile as sf
        y = decode_bytes(model, args.input.read_bytes())
        sf.write(args.output, y, sr)
        print(f"{args.input} -> {args.output} ({len(y) / sr:.2f} s)")
        return 0

    from .data import load_audio_dir, load_corpus
    results = {}
    if args.data_dir is None:
        from .corpus import build_default_corpus
        _, heldout = load_corpus(build_default_corpus(args.cache_dir / "telugu_corpus"))
    elif (args.data_dir / "heldout").is_dir():
        _, heldout = load_corpus(args.data_dir)
    else:
        heldout = load_audio_dir(args.data_dir)
    sets = {"heldout": heldout}
    if args.real_speech:
        from .corpus import fetch_real_speech
        sets["real_speech"] = load_audio_dir(fetch_real_speech(args.cache_dir / "real_speech"))
    for name, clips in sets.items():
        clips = clips[: args.max_clips] if args.max_clips else clips
        wd = args.write_dir / name if args.write_dir else None
        results[name] = evaluate_clips(model, clips, args.n_quantizers, write_dir=wd)
        r = results[name]
        print(f"{name}: {r['clips']} clips, {r['seconds'] / 60:.1f} min | "
              f"{r['nominal_kbps']:.2f} kbps ({r['file_kbps']:.2f} in files) | "
              f"SNR {r['snr']:.2f} dB SI-SNR {r['si_snr']:.2f} dB mel {r['mel_distance']:.3f}"
              + (f" PESQ-WB {r['pesq_wb']:.2f}" if "pesq_wb" in r else "")
              + (f" STOI {r['stoi']:.3f}" if "stoi" in r else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
