"""Reference coders (Opus, Codec2) and the delay alignment that :mod:`.codec_quality` uses.

* Opus through libsndfile (``soundfile``, Ogg/Opus at 16 kHz): libsndfile sets the Opus target
  bitrate from ``compression_level`` as ``(1 - level) * 250 kbps + 6 kbps``, so a target
  bitrate is turned into a level by :func:`opus_level` (6 kbps, at level 1.0, is the lowest
  reachable);
* Codec2 (``c2enc``/``c2dec`` of the Debian ``codec2`` package) on 8 kHz 16-bit PCM: resampled
  16 -> 8 kHz with soxr, coded, decoded and resampled back to 16 kHz;
* the example codec itself, encoded once and decoded with the first ``n`` quantizers.

:func:`estimate_lag` finds one delay for a set of clips (on waveforms, or on amplitude
envelopes for Codec2, which does not keep the waveform's phase) and :func:`shift` applies it.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..model import pad_to_hop

SR = 16000
C2_SR = 8000
# Codec2 modes: samples per frame at 8 kHz and bits per frame (each frame is written as whole
# bytes, so 700C's 28 bits take 4 bytes in the file).
CODEC2_MODES = {"3200": (160, 64), "2400": (160, 48), "1600": (320, 64), "1400": (320, 56),
                "1300": (320, 52), "1200": (320, 48), "700C": (320, 28)}
C2_TAIL_S = 0.1
ENVELOPE_S = 0.002
OPUS_MIN_BPS, OPUS_SPAN_BPS = 6000, 250000  # libsndfile: (1 - level) * 250 kbps + 6 kbps


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
    """16 kHz -> 8 kHz with soxr (HQ)."""
    import soxr

    return soxr.resample(audio, SR, C2_SR, quality="HQ").astype(np.float32)


def to_16k(audio: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz with soxr (HQ)."""
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
    x = torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None, None]
    codes = model.encode(pad_to_hop(x, model.hop_length))  # (1, Q, T)
    return ({n: model.decode(codes[:, :n])[0, 0].numpy() for n in quantizers},
            int(codes.shape[-1]))


def envelope(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average of ``|x|`` over ``width`` samples, mean removed."""
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


# ---------------------------------------------------------------------------- provenance
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


def coder_versions() -> dict:
    """What the reference coders ran with: libsndfile, libopus and its pre-skip, whether
    ``bitrate_mode`` is taken, the Debian ``codec2`` version and where ``c2enc`` is."""
    import soundfile as sf

    return {"libsndfile": sf.__libsndfile_version__, **opus_info(),
            "opus_bitrate_mode": bitrate_mode_support(),
            "codec2": _dpkg("codec2"), "c2enc": shutil.which("c2enc")}
