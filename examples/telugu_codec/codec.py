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

``encode`` and ``decode`` read, code and write the files a chunk at a time
(:func:`encode_file`, :func:`decode_file`): their memory does not grow with the file, and the
codes and samples are those of :func:`encode_audio` and :func:`decode_codes` on the whole
file's samples.
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


# CodecConfig fields added after code files were first written, with their defaults
_LATER_FIELDS: dict[str, object] = {"istft_n_fft": None, "head_upsample": 1}


def model_fingerprint(model: TeluguCodec) -> bytes:
    """8 bytes that identify the codec's configuration (not its weights)."""
    import hashlib
    d = model.cfg.to_dict()
    for name, default in _LATER_FIELDS.items():  # at their defaults: older files still match
        if d.get(name, default) == default:
            d.pop(name, None)
    cfg = json.dumps(d, sort_keys=True).encode()
    return hashlib.sha256(cfg).digest()[:8]


def _pack_payload(codes: np.ndarray, bits: int, block: int = 8192) -> bytes:
    """Codes ``(n_q, T)`` bit-packed frame-major, ``block`` frames (a multiple of 8, so that
    every block ends on a byte) at a time: the bit planes of one block only, not of the file."""
    out = []
    for a in range(0, codes.shape[1], block):
        planes = (codes[:, a: a + block].T.astype(np.int64)[..., None] >> np.arange(bits)) & 1
        out.append(np.packbits(planes.astype(np.uint8).reshape(-1), bitorder="little").tobytes())
    return b"".join(out)


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
    payload = _pack_payload(codes, bits)
    return _HEADER.pack(MAGIC, VERSION, hop, sample_rate, n_q, bits, num_samples, frames,
                        codebook_size, num_quantizers or n_q, fingerprint,
                        zlib.crc32(payload)) + payload


def read_header(data: bytes) -> dict:
    """The header of a code file, checked against itself and the payload (exact length,
    checksum); raises :class:`CodeFileError` on a damaged, truncated or padded file."""
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
    if zlib.crc32(memoryview(data)[_HEADER.size:]) != crc:
        raise CodeFileError("code file damaged: payload checksum mismatch")
    return {"hop": hop, "sample_rate": sr, "n_q": n_q, "bits": bits,
            "num_samples": samples, "frames": frames, "codebook_size": size,
            "num_quantizers": model_q, "fingerprint": fingerprint}


def unpack_frames(data: bytes, head: dict, lo: int, hi: int) -> np.ndarray:
    """Codes ``(n_q, hi - lo)`` int64 of frames ``[lo, hi)`` of a code file whose header
    :func:`read_header` returned: only those frames' bytes are unpacked."""
    n_q, bits = head["n_q"], head["bits"]
    per_frame = n_q * bits
    first, last = lo * per_frame, hi * per_frame  # bits
    raw = np.frombuffer(data, np.uint8, offset=_HEADER.size + first // 8,
                        count=(last + 7) // 8 - first // 8)
    planes = np.unpackbits(raw, bitorder="little")[first % 8: first % 8 + last - first]
    return (planes.reshape(hi - lo, n_q, bits).astype(np.int64) << np.arange(bits)).sum(-1).T


def unpack_codes(data: bytes) -> tuple[np.ndarray, dict]:
    """Inverse of :func:`pack_codes`: ``(codes (n_q, T) int64, header dict)``; raises
    :class:`CodeFileError` on a damaged, truncated or padded file."""
    head = read_header(data)
    frames, block = head["frames"], 8192
    parts = [unpack_frames(data, head, a, min(a + block, frames))
             for a in range(0, frames, block)]
    codes = np.concatenate(parts, axis=1) if parts else np.zeros((head["n_q"], 0), np.int64)
    return codes, head


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


def _check_model(model: TeluguCodec, head: dict, n_quantizers: int | None) -> int:
    """Refuse a code file of another model (naming each field that differs) or an
    ``n_quantizers`` the file does not hold; the number of quantizers to decode."""
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
        return n_quantizers
    return head["n_q"]


def decode_bytes(model: TeluguCodec, data: bytes, n_quantizers: int | None = None) -> np.ndarray:
    """Samples of a code file; ``n_quantizers`` decodes only the first stages in it."""
    codes, head = unpack_codes(data)
    n = _check_model(model, head, n_quantizers)
    return decode_codes(model, codes[:n])[: head["num_samples"]]


# ---------------------------------------------------------------- files, in pieces
# The CLI reads, codes and writes files a chunk at a time, so its memory does not grow with
# the file: encode keeps only the codes (12 stages of 50 frames a second fit in 4 MiB an
# hour), decode writes each chunk's samples as they come. The codes and samples are those of
# encode_audio and decode_codes on the whole file (tested).
READ_BLOCK = 1 << 16  # input frames read at a time


def _count_nonfinite(f, block: int) -> tuple[int, int]:
    """Non-finite samples and all samples of the mono mix from ``f``'s position on."""
    bad = total = 0
    while len(data := f.read(block, dtype="float32", always_2d=True)):
        x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        bad, total = bad + int((~np.isfinite(x)).sum()), total + len(x)
    return bad, total


def _mono_blocks(path: Path, sr: int, block: int = READ_BLOCK):
    """The samples of ``path`` as :func:`.data._read` gives them with ``nonfinite="raise"``
    (mono float32 at ``sr``), in blocks of about ``block`` input frames: channels averaged,
    other rates resampled by a streaming soxr resampler (the same samples as resampling the
    whole file at once). Raises ``ValueError`` for an empty file or one with NaN/inf samples
    (the count over the whole file, as :func:`.data._read` reports it)."""
    import soundfile as sf
    import soxr

    with sf.SoundFile(str(path)) as f:
        rate, seen = f.samplerate, 0
        stream = None if rate == sr else soxr.ResampleStream(rate, sr, 1, dtype="float32",
                                                            quality="HQ")
        while len(data := f.read(block, dtype="float32", always_2d=True)):
            x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            finite = np.isfinite(x)
            if not finite.all():
                bad, rest = _count_nonfinite(f, block)
                bad, total = bad + int((~finite).sum()), rest + seen + len(x)
                if bad == total:
                    raise ValueError("no finite samples (all NaN/inf)")
                raise ValueError(f"it holds {bad} NaN/inf samples; clean the file first")
            seen += len(x)
            if stream is not None:
                x = stream.resample_chunk(np.ascontiguousarray(x))
            if len(x):
                yield np.ascontiguousarray(x, dtype=np.float32)
        if seen == 0:
            raise ValueError("empty (0 samples)")
        if stream is not None:
            x = stream.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(x):
                yield np.ascontiguousarray(x, dtype=np.float32)


class _Window:
    """Samples ``[a, b)`` of a stream of blocks, for windows that only move forward: holds the
    samples from the last window's start on, and counts those beyond [-1, 1] once each."""

    def __init__(self, path: Path, blocks):
        self.path, self._blocks = path, blocks
        self._buf, self._start = np.zeros(0, np.float32), 0  # _buf[0] is sample _start
        self.total: int | None = None  # the stream's length, once it has ended
        self.over, self.peak = 0, 0.0

    def fill(self, end: int) -> None:
        """Read until sample ``end`` is held or the stream has ended."""
        parts, have = [self._buf], self._start + len(self._buf)
        while self.total is None and have < end:
            try:
                x = next(self._blocks)
            except StopIteration:
                self.total = have
            except Exception as e:  # noqa: BLE001 - unreadable audio of any kind
                raise CLIError(f"could not read audio from {self.path}: {e}") from e
            else:
                mag = np.abs(x)
                self.over += int((mag > 1.0).sum())
                self.peak = max(self.peak, float(mag.max()))
                parts.append(x)
                have += len(x)
        if len(parts) > 1:
            self._buf = np.concatenate(parts)

    def get(self, a: int, b: int) -> np.ndarray:
        """Samples ``[a, b)`` (zeros past the end); forgets those before ``a``."""
        self.fill(b)
        self._buf, self._start = self._buf[a - self._start:], a
        x = self._buf[: b - a]
        return x if len(x) == b - a else np.concatenate([x, np.zeros(b - a - len(x),
                                                                     np.float32)])


@torch.no_grad()
def encode_file(model: TeluguCodec, path: Path, n_quantizers: int | None = None, *,
                chunk_frames: int = CHUNK_FRAMES, context_frames: int = CONTEXT_FRAMES,
                read_block: int = READ_BLOCK) -> tuple[bytes, int]:
    """A code file of the audio file ``path`` (``(contents, samples)``), read a chunk at a
    time: the codes of :func:`encode_wav` on the whole file's samples. Refuses unreadable,
    empty or non-finite audio (:class:`CLIError` naming the file); samples beyond [-1, 1],
    which the codec's output range cannot hold, are reported on stderr."""
    hop, sr = model.hop_length, model.cfg.sample_rate
    src = _Window(path, _mono_blocks(path, sr, read_block))
    dtype = np.uint16 if model.cfg.codebook_size <= 2**16 else np.int64
    parts, start, frames = [], 0, None
    while frames is None or start < frames:
        # the stream's length is needed only once it ends within this chunk and its context
        src.fill((start + chunk_frames + context_frames) * hop)
        if src.total is not None:
            frames = -(-src.total // hop)
        end = frames if frames is not None else start + chunk_frames + context_frames
        # as _chunks(frames, chunk_frames, context_frames)
        stop = min(start + chunk_frames, end)
        lo, hi = max(0, start - context_frames), min(end, stop + context_frames)
        x = torch.from_numpy(src.get(lo * hop, hi * hop))[None, None]
        codes = model.encode(x, n_quantizers)[0]  # (n_q, hi - lo)
        parts.append(codes[:, start - lo: stop - lo].numpy().astype(dtype))
        start = stop
    if src.over:
        print(f"warning: {path}: {src.over} samples beyond [-1, 1] (peak {src.peak:.2f})"
              "; the decoded audio is limited to [-1, 1]", file=sys.stderr)
    data = pack_codes(np.concatenate(parts, axis=1), model.cfg.codebook_size,
                      sample_rate=sr, hop=hop, num_samples=src.total,
                      num_quantizers=model.cfg.num_quantizers,
                      fingerprint=model_fingerprint(model))
    return data, src.total


@torch.no_grad()
def decode_file(model: TeluguCodec, path: Path, output: Path, n_quantizers: int | None = None,
                *, chunk_frames: int = CHUNK_FRAMES,
                context_frames: int = CONTEXT_FRAMES) -> int:
    """Decode the code file ``path`` into the audio file ``output`` a chunk at a time (the
    samples of :func:`decode_bytes`); the samples written. The file is checked before
    anything is written, and ``output`` is replaced only once it is complete."""
    import os

    import soundfile as sf

    data = Path(path).read_bytes()  # the codes: 0.7 kB a second
    head = read_header(data)
    n = _check_model(model, head, n_quantizers)
    fmt = output.suffix[1:].upper()
    if fmt not in sf.available_formats():
        raise CLIError(f"cannot tell the audio format of {output} from its extension "
                       "(.wav, .flac, ...)")
    hop, left = model.hop_length, head["num_samples"]
    tmp = output.with_name(f".{output.name}.partial")
    try:
        f = sf.SoundFile(str(tmp), "w", samplerate=head["sample_rate"], channels=1, format=fmt)
    except Exception as e:  # noqa: BLE001 - a folder that is missing or not writable
        raise CLIError(f"could not write {output}: {e}") from e
    try:
        with f:
            for start, stop, lo, hi in _chunks(head["frames"], chunk_frames, context_frames):
                c = torch.from_numpy(unpack_frames(data, head, lo, hi)[:n])[None]
                y = model.decode(c)[0, 0][(start - lo) * hop: (stop - lo) * hop].numpy()
                f.write(y[:left])
                left -= len(y[:left])
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return head["num_samples"]


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
        data, samples = encode_file(model, args.input, args.n_quantizers)
        args.output.write_bytes(data)
        print(f"{args.input} ({samples / sr:.2f} s) -> {args.output}: {len(data)} bytes, "
              f"{len(data) * 8 / (samples / sr) / 1000:.2f} kbps")
        return 0
    if args.cmd == "decode":
        samples = decode_file(model, args.input, args.output, args.n_quantizers)
        print(f"{args.input} -> {args.output} ({samples / sr:.2f} s)")
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
