"""What a training run needs around the model: the ``torchrun`` ranks (:class:`Dist`), the
lock that keeps two runs out of one experiment directory, and the per-epoch log files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist


class Dist:
    """Rank/world of a ``torchrun`` launch (world 1 when launched plainly)."""

    def __init__(self, device_arg: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device_arg == "auto":
            device_arg = "cuda" if torch.cuda.is_available() else "cpu"
        if device_arg.startswith("cuda") and self.world > 1:
            device_arg = f"cuda:{local}"
        self.device = torch.device(device_arg)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def lock_run_dir(run_dir: Path):
    """An exclusive lock on ``run_dir/.lock`` for this process's lifetime, so two runs never
    write one experiment; ``SystemExit`` naming the holder when another run has it."""
    import fcntl

    f = open(run_dir / ".lock", "a+")  # noqa: SIM115 - kept open: the lock lives with it
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise SystemExit(f"error: {run_dir} is in use by another training run ({holder}); "
                         "wait for it or pass another --experiment_name") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


class RunLog:
    """Per-epoch records to ``metrics.jsonl`` (everything) and ``metrics.csv`` (scalars)."""

    def __init__(self, run_dir: Path, resume: bool) -> None:
        self.jsonl, self.csv = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if resume and self.jsonl.exists():
            self.rows = [json.loads(s) for s in self.jsonl.read_text().splitlines() if s]

    def truncate(self, epoch: int) -> None:
        """Drop records past ``epoch`` (written after the checkpoint we resume from)."""
        self.rows = [r for r in self.rows if r["epoch"] <= epoch]
        self._rewrite()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.jsonl.with_suffix(".jsonl.tmp")
        try:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        except OSError as e:  # e.g. disk full: the old log stays, no empty temp file
            tmp.unlink(missing_ok=True)
            raise OSError(e.errno, f"could not write {self.jsonl}: {e.strerror}") from e
        os.replace(tmp, self.jsonl)
        scalars = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))}
                   for r in self.rows]
        keys = list(dict.fromkeys(k for r in scalars for k in r))
        tmp = self.csv.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(scalars)
        os.replace(tmp, self.csv)
