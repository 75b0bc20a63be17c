"""The few collectives the blocks need under ``torch.distributed``.

Every function here but :func:`is_active`, :func:`world_size` and :func:`rank` is a
collective (:func:`mean_over_ranks` only when more than one rank runs): all ranks of the
default process group must call it, in the same order, with tensors of the same size.
Callers guarantee that by deciding
*whether* to call from values that are already identical on every rank (options, step counts,
all-reduced statistics), never from a rank's own data. Under ``torch.compile`` each runs
eagerly (a graph break), so the collective is the plain c10d call.

The functions are wrapped with :func:`rvq_blocks._compile.eager`, a lazy
``torch.compiler.disable`` (the public decorator imports ``torch._dynamo`` at load time).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from ._compile import eager


def is_active(sync: bool | None, owner: str) -> bool:
    """Whether to synchronise: ``sync`` is ``None`` (auto) or ``True``, and
    ``torch.distributed`` is initialised with more than one rank."""
    if sync is False:
        return False
    ready = dist.is_available() and dist.is_initialized()
    if sync is True and not ready:
        raise ValueError(f"{owner} was built with sync=True, which needs an initialised "
                         f"torch.distributed process group; got none (call "
                         f"init_process_group first, or pass sync=None for auto)")
    return ready and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank()


def world_size() -> int:
    """Ranks in the default process group; 1 when ``torch.distributed`` is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over the ranks (one ``all_reduce``) when ``torch.distributed`` runs
    more than one rank; ``x`` itself, and no collective, otherwise.

    The default ``reduce_fn`` of :class:`~rvq_blocks.LossBalancer`.

    Shape:
        - ``x``: any; output: the same.
    """
    world = world_size()
    if world == 1:
        return x
    return all_reduce_sum([x])[0] / world


@eager  # eager c10d calls: a graph break, never a traced collective
def all_reduce_sum(parts: list[Tensor]) -> list[Tensor]:
    """Sum every tensor of ``parts`` over the ranks with **one** ``all_reduce`` of a flat
    float buffer; returns new tensors shaped and typed like ``parts``."""
    flat = torch.cat([p.reshape(-1).to(parts[0].dtype) for p in parts])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return _unpack(flat, parts)


@eager  # eager c10d calls: a graph break, never a traced collective
def broadcast_(parts: list[Tensor], src: int = 0) -> None:
    """Overwrite ``parts`` in place on every rank with rank ``src``'s values (one broadcast)."""
    flat = torch.cat([p.detach().reshape(-1).to(parts[0].dtype) for p in parts])
    dist.broadcast(flat, src=src)
    for p, v in zip(parts, _unpack(flat, parts), strict=True):
        p.copy_(v)


def _unpack(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    out, start = [], 0
    for p in like:
        out.append(flat[start:start + p.numel()].reshape(p.shape).to(p.dtype))
        start += p.numel()
    return out


@eager  # eager c10d calls: a graph break, never a traced collective
def gather_rows(data: Tensor, cap: int) -> Tensor | None:
    """All ranks' rows ``(M_r, D)`` concatenated in rank order on rank 0, ``None`` elsewhere.

    A rank holding more than ``cap`` rows sends a random ``cap`` of them; a rank with none
    (all padding, all non-finite) still takes part. Two collectives: the row counts, then the
    rows padded to the largest count.
    """
    if data.shape[0] > cap:
        data = data[torch.randperm(data.shape[0], device=data.device)[:cap]]
    world = dist.get_world_size()
    count = torch.tensor([data.shape[0]], device=data.device, dtype=torch.long)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    width = max(max(sizes), 1)
    padded = data.new_zeros(width, data.shape[1])
    padded[:data.shape[0]] = data
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded)
    if dist.get_rank() != 0:
        return None
    return torch.cat([c[:s] for c, s in zip(chunks, sizes, strict=True)])


@eager  # eager c10d calls: a graph break, never a traced collective
def shared_generator(device: torch.device) -> torch.Generator:
    """A CPU generator seeded identically on every rank (rank 0 draws the seed from its global
    RNG and broadcasts it): the same draws everywhere without a collective per draw."""
    seed = torch.randint(0, 2**62, (1,), dtype=torch.long).to(device)
    dist.broadcast(seed, src=0)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen
