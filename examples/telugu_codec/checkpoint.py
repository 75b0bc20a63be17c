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
from pathlib import Path
from typing import Any

import torch

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
    tmp = directory / f".last.pt.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n")
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    last = directory / LAST
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
            f"{path} is corrupt or truncated ({len(data)} bytes, checksum mismatch); "
            f"resume from {path.parent / PREV} or delete it")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CorruptCheckpointError(f"{path} could not be read: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or "model" not in state:
        raise CorruptCheckpointError(f"{path} holds no model state (keys: {list(state)[:8]})")
    return state


def find_resumable(directory: str | os.PathLike, log=print) -> tuple[Path, dict] | None:
    """Newest intact checkpoint in ``directory`` (``last.pt``, else ``prev.pt``), or ``None``."""
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
        return None
    _, path, state = max(found, key=lambda t: t[0])
    return path, state
