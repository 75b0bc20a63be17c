"""Checkpoints that survive a kill at any instant, and say so when they are damaged.

File layout: the line ``RVQCKPT1 <sha256 of the payload>\\n`` followed by a ``torch.save``
payload. ``load_checkpoint`` recomputes the hash, so a truncated or bit-flipped file is
detected and named instead of half-loading.

``save_checkpoint`` writes a temporary file in the same directory, fsyncs it, moves the current
``last.pt`` to ``prev.pt`` and renames the new file to ``last.pt`` (both renames atomic). Killed
at any instant, the directory holds at least one complete checkpoint, and ``find_resumable``
returns the newest intact one.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .model import TeluguCodec

MAGIC = b"RVQCKPT1"
LAST, PREV = "last.pt", "prev.pt"


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that is truncated, damaged or not a checkpoint of this example."""


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``directory/last.pt`` atomically, keeping the previous as ``prev.pt``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    last = directory / LAST
    tmp = directory / f".last.pt.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:  # e.g. disk full: leave no half-written file behind
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, f"could not write the checkpoint {last} ({len(payload) / 1e6:.1f} "
                      f"MB): {e.strerror}; the previous checkpoints in {directory} are "
                      "untouched") from e
    if last.exists():
        os.replace(last, directory / PREV)
    os.replace(tmp, last)
    _fsync_dir(directory)
    return last


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and verify a checkpoint; raise :class:`CorruptCheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    head, sep, payload = data.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 2 or parts[0] != MAGIC:
        raise CorruptCheckpointError(
            f"{path} is not a telugu_codec checkpoint (expected it to start with {MAGIC!r}, "
            f"got {data[:16]!r}); it may be truncated or from another program")
    if hashlib.sha256(payload).hexdigest().encode() != parts[1]:
        raise CorruptCheckpointError(
            f"{path} is corrupt or truncated ({len(data)} bytes, checksum mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CorruptCheckpointError(f"{path} could not be read: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or "model" not in state:
        raise CorruptCheckpointError(f"{path} holds no model state (keys: {list(state)[:8]})")
    return state


def find_resumable(directory: str | os.PathLike, log=print) -> tuple[Path, dict] | None:
    """Newest intact checkpoint in ``directory`` (``last.pt``, else ``prev.pt``); ``None`` when
    there is none; :class:`CorruptCheckpointError` when there are some and all are damaged."""
    directory = Path(directory)
    found: list[tuple[int, Path, dict]] = []
    for name in (LAST, PREV):
        path = directory / name
        if not path.exists():
            continue
        try:
            state = load_checkpoint(path)
        except CorruptCheckpointError as e:
            log(f"warning: skipping {e}")
            continue
        found.append((int(state.get("global_step", -1)), path, state))
    if not found:
        damaged = [directory / n for n in (LAST, PREV) if (directory / n).exists()]
        if damaged:  # never start over on top of files that may still be recovered
            raise CorruptCheckpointError(
                f"every checkpoint in {directory} is damaged "
                f"({', '.join(p.name for p in damaged)}); nothing was changed. Move them "
                "aside to start over, or pass another --experiment_name")
        return None
    _, path, state = max(found, key=lambda t: t[0])
    return path, state


PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
# the quantizer's EMA accumulators: only needed to keep training, left out of exported weights
_TRAINING_ONLY = ("embed_sum", "embed_avg", "cluster_size", "unused_for")
WEIGHTS, CONFIG = "weights.pt", "config.json"


def load_model(path: str | os.PathLike = PRETRAINED_DIR, device: str = "cpu") -> Any:
    """Rebuild a trained codec in eval mode.

    ``path`` is a training checkpoint (``last.pt``: its EMA weights when it has them) or a
    directory written by :func:`export_pretrained` (``weights.pt`` fp16 + ``config.json``);
    the default is the shipped ``pretrained/`` directory.
    """
    import json

    from .model import CodecConfig, TeluguCodec

    path = Path(path)
    if path.is_dir():
        if not (path / WEIGHTS).is_file() or not (path / CONFIG).is_file():
            raise FileNotFoundError(f"{path} holds no {WEIGHTS} and {CONFIG} (a directory "
                                    "written by export_pretrained)")
        cfg = json.loads((path / CONFIG).read_text())
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
        model = TeluguCodec(CodecConfig.from_dict(cfg))
        missing, unexpected = model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
            strict=False)
        missing = [k for k in missing if not k.endswith(_TRAINING_ONLY)]
        if missing or unexpected:
            raise RuntimeError(f"{path / WEIGHTS} does not match its config: missing "
                               f"{missing}, unexpected {unexpected}")
    else:
        ckpt = load_checkpoint(path)
        model = TeluguCodec(CodecConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt.get("ema", ckpt["model"]))  # EMA weights when saved
    return model.to(device).eval()


def export_pretrained(checkpoint: str | os.PathLike, out_dir: str | os.PathLike = PRETRAINED_DIR,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint's EMA weights as fp16 (``weights.pt``) and its codec config plus
    ``extra`` (command, figures) as ``config.json`` / ``run.json`` into ``out_dir``.

    The quantizer's EMA accumulators are left out (only needed to keep training); integer
    buffers stay as they are.
    """
    import json

    ckpt = load_checkpoint(checkpoint)
    state = ckpt.get("ema", ckpt["model"])
    keep = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()
            if not k.endswith(_TRAINING_ONLY)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(keep, out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps(ckpt["config"], indent=1) + "\n")
    run = {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
           "args": ckpt.get("args"), "metrics": ckpt.get("metrics"), **(extra or {})}
    (out / "run.json").write_text(json.dumps(run, indent=1, default=str) + "\n")
    return out


def init_weights(model: TeluguCodec, path: Path, vectors_per_step: int,
                 log: Callable[..., object]) -> None:
    """``--init_weights``: copy a trained codec's weights and codebooks into ``model``.

    An exported directory has no EMA usage statistics (only training needs them): they start
    as uniform usage worth one step's vectors, each code the mean of its share, so the first
    EMA steps move the codes no more than a k-means init's would be moved."""
    try:
        src = load_model(path)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise SystemExit(f"error: --init_weights {path}: {e}") from None
    if src.cfg != model.cfg:
        raise SystemExit(f"error: --init_weights {path} was trained with {src.cfg.to_dict()}; "
                         f"the flags give {model.cfg.to_dict()}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in src.state_dict().items()})
    if path.is_dir():  # exported weights keep no EMA statistics: restart them uniform
        q = model.quantizer
        with torch.no_grad():
            q.cluster_size.fill_(vectors_per_step / q.codebook_size)
            if q.ema:
                q.embed_sum.copy_(q.codebook * q.cluster_size[..., None])
            q.unused_for.zero_()
    log(f"weights from {path}")
