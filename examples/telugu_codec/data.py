"""Audio data for the Telugu codec example: loading, held-out split, random crops, loudness.

Levels are in dBFS relative to a full-scale value of 1.0: ``20 * log10(rms)``, so a full-scale
sine wave reads -3 dBFS.

Example:
    >>> import numpy as np
    >>> from examples.telugu_codec.data import Clip, RandomCrops
    >>> clips = [Clip("a", np.ones(16000, np.float32)), Clip("b", np.ones(8000, np.float32))]
    >>> crops = RandomCrops(clips, segment_samples=4000, crops_per_epoch=8, seed=0)
    >>> crops[0].shape
    torch.Size([1, 4000])
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "AUDIO_EXTENSIONS",
    "Clip",
    "RandomCrops",
    "default_cache_dir",
    "eval_subset",
    "load_audio_dir",
    "load_corpus",
    "load_heldout",
    "load_recorded_english",
    "loudness_normalize",
    "normalization_gain",
    "split_heldout",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


@dataclass
class Clip:
    """One mono recording.

    Args:
        name: Path relative to the directory it was loaded from (POSIX form), or any label.
        audio: Float32 samples in ``[-1, 1]`` at the loader's sample rate, shape ``(S,)``.
    """

    name: str
    audio: np.ndarray


def normalization_gain(audio: np.ndarray, target_dbfs: float = -20.0, *,
                       peak: float = 0.99) -> tuple[float, bool]:
    """The gain that brings ``audio`` to ``target_dbfs`` RMS without exceeding ``peak``.

    Returns:
        ``(gain, limited)``: the linear gain, and whether it was lowered below the RMS gain
        so that the peak stays at ``peak``. Silence (RMS 0) gives ``(1.0, False)``.
    """
    x = np.asarray(audio, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    if rms == 0.0 or not np.isfinite(rms):
        return 1.0, False
    gain = 10.0 ** (target_dbfs / 20.0) / rms
    top = float(np.max(np.abs(x)))
    if top * gain > peak:
        return peak / top, True
    return gain, False


def loudness_normalize(audio: np.ndarray, target_dbfs: float = -20.0, *,
                       peak: float = 0.99) -> np.ndarray:
    """Scale ``audio`` to ``target_dbfs`` RMS, with a lower gain if the peak would pass ``peak``.

    One gain for the whole clip (not per-clip peak normalisation, which flattens the
    level differences a codec must learn to reproduce).

    Args:
        audio: Samples, shape ``(S,)``.
        target_dbfs: RMS level to reach, in dBFS.
        peak: Largest absolute sample value allowed after scaling.

    Returns:
        Float32 samples, shape ``(S,)``; a silent clip comes back unchanged.
    """
    gain, _ = normalization_gain(audio, target_dbfs, peak=peak)
    return (np.asarray(audio, dtype=np.float64) * gain).astype(np.float32)


def _read(path: Path, sample_rate: int, nonfinite: str = "zero") -> np.ndarray:
    """Mono float32 at ``sample_rate``; NaN/inf samples become 0 (``nonfinite="zero"``, for
    corpora) or raise ``ValueError`` (``"raise"``, for a file the user asked to code)."""
    import soundfile as sf
    import soxr

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (S, C), ints -> [-1, 1)
    if data.shape[0] == 0:
        raise ValueError("empty (0 samples)")
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    finite = np.isfinite(audio)
    if not finite.any():
        raise ValueError("no finite samples (all NaN/inf)")
    if not finite.all():
        if nonfinite == "raise":
            raise ValueError(f"it holds {int((~finite).sum())} NaN/inf samples; clean the file "
                             "first")
        audio = np.where(finite, audio, 0.0).astype(np.float32)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def load_audio_dir(path: str | Path, *, sample_rate: int = 16000, min_seconds: float = 0.5,
                   log: Callable[[str], object] = print) -> list[Clip]:
    """Every WAV/FLAC/OGG file under ``path`` (recursively, sorted), as mono clips.

    Multichannel files are averaged to mono, other rates are resampled with soxr, integer
    formats become float32 in ``[-1, 1]``. Files that cannot be used (unreadable, corrupt,
    empty, shorter than ``min_seconds``, no finite samples) are skipped with one ``log``
    line each that names the file and the reason; non-finite samples in an otherwise
    usable file are replaced by zeros.

    Args:
        path: Directory to search.
        sample_rate: Rate of the returned audio, in Hz.
        min_seconds: Shortest usable clip, measured after resampling.
        log: Receives one line per skipped file and a one-line summary.

    Returns:
        The usable clips, named by their POSIX path relative to ``path``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        NotADirectoryError: If ``path`` is not a directory.
        ValueError: If no usable audio was found; the message names the directory and
            what it holds.
    """
    try:
        import soundfile  # noqa: F401
        import soxr  # noqa: F401
    except ImportError as err:
        raise ImportError("loading audio needs soundfile and soxr: "
                          "pip install 'rvq-blocks[examples]' (or soundfile soxr)") from err
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"audio directory {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory of audio files")
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    clips, skipped = [], 0
    for file in files:
        name = file.relative_to(root).as_posix()
        try:
            audio = _read(file, sample_rate)
        except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, ...
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log(f"skipping {name}: unreadable or unusable ({reason})")
            skipped += 1
            continue
        if audio.size < min_seconds * sample_rate:
            log(f"skipping {name}: too short ({audio.size / sample_rate:.2f} s < "
                f"{min_seconds:g} s)")
            skipped += 1
            continue
        clips.append(Clip(name, audio))
    if not clips:
        raise _no_audio_error(root, files)
    minutes = sum(c.audio.size for c in clips) / sample_rate / 60
    log(f"loaded {len(clips)} clips ({minutes:.1f} min) from {root}"
        + (f", skipped {skipped}" if skipped else ""))
    return clips


def _no_audio_error(root: Path, files: list[Path]) -> ValueError:
    """The error for a directory that gave no clip: what it holds instead."""
    if files:
        return ValueError(f"no usable audio in {root}: all {len(files)} audio files were "
                          "skipped (see the messages above)")
    others = Counter(p.suffix.lower() or "(no extension)" for p in root.rglob("*") if p.is_file())
    found = ", ".join(f"{n} {ext}" for ext, n in others.most_common(5)) or "nothing"
    return ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}; "
                      f"found {found}")


def _rank(name: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha1(f"{seed}:{name}".encode()).digest()[:8], "big")


def split_heldout(clips: Sequence[Clip], fraction: float = 0.1,
                  seed: int = 0) -> tuple[list[Clip], list[Clip]]:
    """Split clips into ``(train, heldout)`` by a seeded hash of their names.

    The split depends only on the clip names and ``seed``, not on their order. The held-out
    set has ``ceil(fraction * len(clips))`` clips (at least one when ``fraction > 0``, and
    never all of them). Files of one speaker can land on both sides; give ``train/`` and
    ``heldout/`` subdirectories to :func:`load_corpus` to control that.

    Args:
        clips: Clips with distinct names.
        fraction: Share of clips to hold out, in ``[0, 1)``.
        seed: Changes which clips are held out.

    Returns:
        Two lists that partition ``clips``, each in the input order.

    Raises:
        ValueError: If ``fraction`` is outside ``[0, 1)``, or there are fewer than two
            clips while ``fraction > 0``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(clips), []
    if len(clips) < 2:
        raise ValueError(f"need at least 2 clips to hold some out, got {len(clips)}")
    count = min(len(clips) - 1, max(1, int(np.ceil(fraction * len(clips)))))
    order = sorted(range(len(clips)), key=lambda i: (_rank(clips[i].name, seed), i))
    held = set(order[:count])
    return ([c for i, c in enumerate(clips) if i not in held],
            [c for i, c in enumerate(clips) if i in held])


def load_corpus(data_dir: str | Path, *, sample_rate: int = 16000, min_seconds: float = 0.5,
                heldout_fraction: float = 0.1, seed: int = 0,
                log: Callable[[str], object] = print) -> tuple[list[Clip], list[Clip]]:
    """Load ``(train, heldout)`` clips from ``data_dir``.

    If ``data_dir`` has both ``train/`` and ``heldout/`` subdirectories (as the corpus
    built by :func:`~examples.telugu_codec.corpus.build_default_corpus` has), each is
    loaded on its own. Otherwise all audio under ``data_dir`` is loaded and split with
    :func:`split_heldout`.

    Args:
        data_dir: Directory of audio.
        sample_rate: Rate of the returned audio, in Hz.
        min_seconds: Shortest usable clip.
        heldout_fraction: Used only when there are no ``train/`` and ``heldout/`` subdirectories.
        seed: Seed of that split.
        log: Receives progress and skipped-file lines.

    Returns:
        ``(train, heldout)`` lists of :class:`Clip`.

    Raises:
        FileNotFoundError, NotADirectoryError, ValueError: As :func:`load_audio_dir`.
    """
    root = Path(data_dir)
    if (root / "train").is_dir() and (root / "heldout").is_dir():
        train = load_audio_dir(root / "train", sample_rate=sample_rate,
                               min_seconds=min_seconds, log=log)
        heldout = load_audio_dir(root / "heldout", sample_rate=sample_rate,
                                 min_seconds=min_seconds, log=log)
        return train, heldout
    clips = load_audio_dir(root, sample_rate=sample_rate, min_seconds=min_seconds, log=log)
    train, heldout = split_heldout(clips, heldout_fraction, seed)
    log(f"no train/ and heldout/ subdirectories in {root}: held out {len(heldout)} of "
        f"{len(clips)} clips by name hash (seed {seed})")
    return train, heldout


def default_cache_dir() -> Path:
    """Where the corpus and the recorded speech are cached: ``$XDG_CACHE_HOME/rvq_blocks``
    (``~/.cache/rvq_blocks`` when unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rvq_blocks"


def load_heldout(cache_dir: str | Path, data_dir: str | Path | None = None, *,
                 whole_dir: bool = False,
                 log: Callable[[str], object] = print) -> list[Clip]:
    """The held-out clips every evaluation of the example uses.

    Args:
        cache_dir: Cache directory; with no ``data_dir``, the default synthetic corpus is
            built there (``telugu_corpus/``, reused when it exists) and its ``heldout/``
            clips are returned: Telugu sentences and voices never used in training.
        data_dir: Another corpus: its ``heldout/`` subdirectory when it has ``train/`` and
            ``heldout/``, otherwise as ``whole_dir`` says.
        whole_dir: For a ``data_dir`` without those subdirectories: ``True`` holds out all of
            its audio, ``False`` the part :func:`load_corpus` splits off by name hash.
        log: Receives progress and skipped-file lines.

    Returns:
        The held-out clips, in the order of their files.
    """
    if data_dir is None:
        from .corpus import build_default_corpus

        data_dir = build_default_corpus(Path(cache_dir) / "telugu_corpus", log=log)
    root = Path(data_dir)
    if whole_dir and not (root / "heldout").is_dir():
        return load_audio_dir(root, log=log)
    return load_corpus(root, log=log)[1]


def load_recorded_english(cache_dir: str | Path, *,
                          log: Callable[[str], object] = print) -> list[Clip]:
    """The recorded English studio prompts (never trained on), fetched into
    ``cache_dir/real_speech`` once and reused."""
    from .corpus import fetch_real_speech

    return load_audio_dir(fetch_real_speech(Path(cache_dir) / "real_speech", log=log), log=log)


def eval_subset(clips: Sequence[Clip], seconds: float, sr: int) -> list[Clip]:
    """The first clips, in the given order, totalling at most ``seconds`` (at least one)."""
    out, total = [], 0.0
    for c in clips:
        d = len(c.audio) / sr
        if out and total + d > seconds:
            break
        out.append(c)
        total += d
    return out


class RandomCrops(torch.utils.data.Dataset):
    """Fixed-length random crops of clips, reproducible per ``(seed, epoch, index)``.

    Item ``index`` of epoch ``epoch`` is drawn from ``np.random.default_rng((seed, epoch,
    index))``: a clip chosen with probability proportional to its length times the share of
    the segment it fills (``min(1, length / segment_samples)``), so every second of audio is
    about equally likely and clips shorter than the segment are rarely used; then a uniform
    start. Clips shorter than the segment are zero-padded at the end. A resumed run that
    calls :meth:`set_epoch` with the same epoch sees exactly the same crops, whatever the
    number of workers; use an unshuffled sampler (the crops are already random).

    ``set_epoch`` must be called before the epoch's ``DataLoader`` iterator is created; with
    ``persistent_workers=True`` the workers keep the epoch they started with.

    With ``gain_db > 0`` each crop is scaled by a gain drawn uniformly in ``[-gain_db,
    +gain_db]`` dB (from the same generator, after the position) and clipped to [-1, 1], so the
    codec sees speech at many levels.

    Args:
        clips: Mono clips, at least one non-empty.
        segment_samples: Length of every crop, in samples.
        crops_per_epoch: Number of items per epoch (``len(self)``).
        seed: Seed of the crop positions.
        gain_db: Range of the random gain per crop, in dB (0: none).

    Shape:
        - Item: ``(1, segment_samples)`` float32 tensor.

    Raises:
        ValueError: If ``segment_samples`` or ``crops_per_epoch`` is less than 1, or no clip
            has samples.
    """

    def __init__(self, clips: Sequence[Clip], segment_samples: int, crops_per_epoch: int,
                 seed: int = 0, gain_db: float = 0.0) -> None:
        if segment_samples < 1 or crops_per_epoch < 1:
            raise ValueError(f"segment_samples and crops_per_epoch must be >= 1, got "
                             f"{segment_samples} and {crops_per_epoch}")
        self.clips = [c for c in clips if c.audio.size > 0]
        if not self.clips:
            raise ValueError("RandomCrops needs at least one clip with samples")
        self.segment_samples = int(segment_samples)
        self.crops_per_epoch = int(crops_per_epoch)
        self.seed = int(seed)
        self.gain_db = float(gain_db)
        self.epoch = 0
        lengths = np.array([c.audio.size for c in self.clips], dtype=np.float64)
        weights = lengths * np.minimum(1.0, lengths / self.segment_samples)
        self._cumulative = np.cumsum(weights / weights.sum())

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.crops_per_epoch

    def crop_position(self, index: int) -> tuple[int, int]:
        """``(clip index, start sample)`` of item ``index`` in the current epoch."""
        if not 0 <= index < self.crops_per_epoch:
            raise IndexError(f"index {index} out of range for {self.crops_per_epoch} crops")
        rng = np.random.default_rng((self.seed, self.epoch, index))
        clip = min(int(np.searchsorted(self._cumulative, rng.random(), side="right")),
                   len(self.clips) - 1)
        spare = self.clips[clip].audio.size - self.segment_samples
        start = int(rng.integers(0, spare + 1)) if spare > 0 else 0
        return clip, start

    def crop_gain(self, index: int) -> float:
        """Linear gain of item ``index`` in the current epoch (1.0 when ``gain_db`` is 0)."""
        if self.gain_db <= 0:
            return 1.0
        rng = np.random.default_rng((self.seed, self.epoch, index))
        rng.random()
        rng.integers(0, 2)  # the draws crop_position makes come first
        return float(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))

    def __getitem__(self, index: int) -> torch.Tensor:
        clip, start = self.crop_position(index)
        audio = self.clips[clip].audio[start:start + self.segment_samples]
        out = np.zeros((1, self.segment_samples), dtype=np.float32)  # (1, S)
        out[0, :audio.size] = audio
        if self.gain_db > 0:
            out = np.clip(out * self.crop_gain(index), -1.0, 1.0)
        return torch.from_numpy(out)
