"""Use a trained codec: wav -> code file -> wav, and evaluate it on held-out audio.

    python -m examples.telugu_codec.codec encode in.wav out.rvqc      # the shipped weights
    python -m examples.telugu_codec.codec decode out.rvqc back.wav
    python -m examples.telugu_codec.codec evaluate --checkpoint C/last.pt [--data_dir D]
        [--real_speech] [--n_quantizers N] [--json results.json]

``--checkpoint`` defaults to ``examples/telugu_codec/pretrained/`` (fp16 EMA weights of the
longest CPU run, its config, command and figures); any training ``last.pt`` works too.

Code file (``.rvqc``, format 2): a 40-byte little-endian header (magic ``RVQC``, format
version, hop, sample rate, quantizers in the file, bits per code, samples, frames, the
model's codebook size and quantizer count, the first 8 bytes of the SHA-256 of its config, and a
CRC-32 of the payload), then the codes bit-packed at ``ceil(log2(codebook_size))`` bits each,
frame-major. Its size is the true bitrate. ``decode`` checks every header field against the
model and the payload (exact length, checksum) and names what does not match.
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
VERSION = 2
# magic, version, pad, hop, sr, n_q, bits, samples, frames, codebook size, model Q, config
# fingerprint, payload CRC-32
_HEADER = struct.Struct("<4sBxHIHHIIHH8sI")


class CodeFileError(ValueError):
    """A code file that is damaged, truncated, or made by another model."""


def model_fingerprint(model: TeluguCodec) -> bytes:
    """8 bytes that identify the codec's configuration (not its weights)."""
    import hashlib
    cfg = json.dumps(model.cfg.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(cfg).digest()[:8]


def pack_codes(codes: np.ndarray, codebook_size: int, *, sample_rate: int, hop: int,
               num_samples: int, num_quantizers: int | None = None,
               fingerprint: bytes = bytes(8)) -> bytes:
    """``(n_q, T)`` integer codes -> header + bit-packed payload."""
    import zlib
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
    return _HEADER.pack(MAGIC, VERSION, hop, sample_rate, n_q, bits, num_samples, frames,
                        codebook_size, num_quantizers or n_q, fingerprint,
                        zlib.crc32(payload)) + payload


def unpack_codes(data: bytes) -> tuple[np.ndarray, dict]:
    """Inverse of :func:`pack_codes`: ``(codes (n_q, T) int64, header dict)``; raises
    :class:`CodeFileError` on a damaged, truncated or padded file."""
    import zlib
    if len(data) < 8 or data[:4] != MAGIC:
        raise CodeFileError(f"not an RVQC code file (starts with {data[:8]!r})")
    if data[4] != VERSION:
        raise CodeFileError(f"RVQC format {data[4]} (this version reads format {VERSION}); "
                            "encode the audio again")
    if len(data) < _HEADER.size:
        raise CodeFileError(f"code file truncated in its header ({len(data)} bytes, the header "
                            f"is {_HEADER.size})")
    (_, _, hop, sr, n_q, bits, samples, frames, size, model_q, fingerprint,
     crc) = _HEADER.unpack_from(data)
    if size < 2 or bits != math.ceil(math.log2(size)) or not 1 <= n_q <= model_q:
        raise CodeFileError(f"inconsistent header: {n_q} of {model_q} quantizers, {bits} bits "
                            f"per code for {size} codes")
    if frames * hop < samples or (frames - 1) * hop >= samples + hop:
        raise CodeFileError(f"inconsistent header: {frames} frames of {hop} samples for "
                            f"{samples} samples")
    need = _HEADER.size + math.ceil(frames * n_q * bits / 8)
    if len(data) != need:
        raise CodeFileError(f"code file {'truncated' if len(data) < need else 'has trailing data'}"
                            f": expected {need} bytes, got {len(data)}")
    payload = data[_HEADER.size:]
    if zlib.crc32(payload) != crc:
        raise CodeFileError("code file damaged: payload checksum mismatch")
    planes = np.unpackbits(np.frombuffer(payload, np.uint8), bitorder="little")
    planes = planes[: frames * n_q * bits]
    codes = (planes.reshape(frames, n_q, bits).astype(np.int64) << np.arange(bits)).sum(-1).T
    return codes, {"hop": hop, "sample_rate": sr, "n_q": n_q, "bits": bits,
                   "num_samples": samples, "frames": frames, "codebook_size": size,
                   "num_quantizers": model_q, "fingerprint": fingerprint}


# Long files go through the model in chunks of CHUNK_FRAMES frames, each with CONTEXT_FRAMES
# frames of real audio (or codes) on either side that are computed and dropped: more than the
# receptive field of either architecture, so the seams are exact (tested) and memory stays
# flat whatever the length. (With --center_latents each chunk removes its own latent mean, so
# chunked codes differ slightly from whole-file ones.)
CHUNK_FRAMES, CONTEXT_FRAMES = 1500, 64


def _chunks(frames: int, chunk: int, context: int):
    """``(start, stop, lo, hi)``: frames ``[start, stop)`` are kept from a pass over
    ``[lo, hi)``."""
    for start in range(0, frames, chunk):
        stop = min(start + chunk, frames)
        yield start, stop, max(0, start - context), min(frames, stop + context)


@torch.no_grad()
def encode_audio(model: TeluguCodec, audio: np.ndarray, n_quantizers: int | None = None, *,
                 chunk_frames: int = CHUNK_FRAMES,
                 context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """``(S,)`` samples -> ``(n_q, ceil(S / hop))`` codes, in chunks (flat memory)."""
    hop = model.hop_length
    x = pad_to_hop(torch.from_numpy(np.asarray(audio, np.float32))[None, None], hop)
    frames = x.shape[-1] // hop
    parts = []
    for start, stop, lo, hi in _chunks(frames, chunk_frames, context_frames):
        codes = model.encode(x[..., lo * hop: hi * hop], n_quantizers)[0]  # (n_q, hi - lo)
        parts.append(codes[:, start - lo: stop - lo])
    return torch.cat(parts, dim=1).numpy()


@torch.no_grad()
def decode_codes(model: TeluguCodec, codes: np.ndarray, *, chunk_frames: int = CHUNK_FRAMES,
                 context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """``(n_q, T)`` codes -> ``(T * hop,)`` samples, in chunks (flat memory)."""
    hop, c = model.hop_length, torch.from_numpy(np.asarray(codes))[None]
    parts = []
    for start, stop, lo, hi in _chunks(c.shape[-1], chunk_frames, context_frames):
        y = model.decode(c[..., lo:hi])[0, 0]  # ((hi - lo) * hop,)
        parts.append(y[(start - lo) * hop: (stop - lo) * hop])
    return torch.cat(parts).numpy()


def encode_wav(model: TeluguCodec, audio: np.ndarray, n_quantizers: int | None = None) -> bytes:
    codes = encode_audio(model, audio, n_quantizers)
    return pack_codes(codes, model.cfg.codebook_size, sample_rate=model.cfg.sample_rate,
                      hop=model.hop_length, num_samples=len(audio),
                      num_quantizers=model.cfg.num_quantizers,
                      fingerprint=model_fingerprint(model))


def decode_bytes(model: TeluguCodec, data: bytes, n_quantizers: int | None = None) -> np.ndarray:
    """Samples of a code file; ``n_quantizers`` decodes only the first stages in it."""
    codes, head = unpack_codes(data)
    mine = {"hop": model.hop_length, "sample_rate": model.cfg.sample_rate,
            "codebook_size": model.cfg.codebook_size,
            "num_quantizers": model.cfg.num_quantizers,
            "fingerprint": model_fingerprint(model)}
    wrong = [f"{k} {head[k]!r} (this model: {v!r})" for k, v in mine.items() if head[k] != v]
    if wrong:
        raise CodeFileError("code file was made by another model: " + "; ".join(wrong))
    if n_quantizers is not None:
        if not 1 <= n_quantizers <= head["n_q"]:
            raise ValueError(f"--n_quantizers must be in [1, {head['n_q']}] (the quantizers "
                             f"in this file), got {n_quantizers}")
        codes = codes[:n_quantizers]
    return decode_codes(model, codes)[: head["num_samples"]]


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


class CLIError(Exception):
    """A user error: printed as one ``error:`` line, exit code 2."""


def _read_mono(path: Path, sr: int) -> np.ndarray:
    """One file, mono, resampled to ``sr``; non-finite samples are refused, samples beyond
    [-1, 1] (which the codec's output range cannot hold) are reported."""
    from .data import _read
    try:
        audio = _read(path, sr, nonfinite="raise")
    except Exception as e:  # noqa: BLE001 - unreadable audio of any kind
        raise CLIError(f"could not read audio from {path}: {e}") from e
    over = int((np.abs(audio) > 1.0).sum())
    if over:
        print(f"warning: {path}: {over} samples beyond [-1, 1] (peak {np.abs(audio).max():.2f})"
              "; the decoded audio is limited to [-1, 1]", file=sys.stderr)
    return audio


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CorruptCheckpointError

    try:
        return _main(argv)
    except (CLIError, CodeFileError, CorruptCheckpointError, FileNotFoundError,
            ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``encode``, ``decode`` and ``evaluate`` commands and their flags."""
    from .checkpoint import PRETRAINED_DIR
    from .data import default_cache_dir

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
    return p


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse flag values that cannot work, before the model is loaded."""
    if args.n_quantizers is not None and args.n_quantizers < 1:
        p.error(f"--n_quantizers must be >= 1, got {args.n_quantizers}")
    if args.cmd != "evaluate" and args.input.resolve() == args.output.resolve():
        p.error(f"the output {args.output} is the input: choose another path")
    if args.cmd == "evaluate":
        if args.max_clips is not None and args.max_clips < 1:
            p.error(f"--max_clips must be >= 1, got {args.max_clips}")
        if args.json is not None:  # fail now, not after the whole evaluation
            args.json.parent.mkdir(parents=True, exist_ok=True)


def _main(argv: list[str] | None = None) -> int:
    from .checkpoint import load_model

    p = build_parser()
    args = p.parse_args(argv)
    _check_args(p, args)
    model = load_model(args.checkpoint)
    sr = model.cfg.sample_rate
    if args.n_quantizers is not None and args.n_quantizers > model.cfg.num_quantizers:
        p.error(f"--n_quantizers must be <= {model.cfg.num_quantizers}, got "
                f"{args.n_quantizers}")

    if args.cmd == "encode":
        audio = _read_mono(args.input, sr)
        data = encode_wav(model, audio, args.n_quantizers)
        args.output.write_bytes(data)
        print(f"{args.input} ({len(audio) / sr:.2f} s) -> {args.output}: {len(data)} bytes, "
              f"{len(data) * 8 / (len(audio) / sr) / 1000:.2f} kbps")
        return 0
    if args.cmd == "decode":
        import soundfile as sf
        y = decode_bytes(model, args.input.read_bytes(), args.n_quantizers)
        sf.write(args.output, y, sr)
        print(f"{args.input} -> {args.output} ({len(y) / sr:.2f} s)")
        return 0
    return _evaluate(model, args)


def _evaluate(model: TeluguCodec, args: argparse.Namespace) -> int:
    """The ``evaluate`` command: every held-out set through the code file, one line each."""
    from .data import load_heldout, load_recorded_english

    sets = {"heldout": load_heldout(args.cache_dir, args.data_dir, whole_dir=True)}
    if args.real_speech:
        sets["real_speech"] = load_recorded_english(args.cache_dir)
    results = {}
    for name, clips in sets.items():
        clips = clips[: args.max_clips] if args.max_clips is not None else clips
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
