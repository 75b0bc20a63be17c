"""Codebook maintenance behind :class:`~rvq_blocks.ResidualVQ`, as functions over explicit tensors.

Every function takes the state it changes as arguments (``(n, K)`` usage counts, ``(n, K, Dc)``
codes and EMA sums of the ``n`` stages that ran) and changes it in place. The functions at the
top work on single tensors; below them, :class:`State` bundles a module's state, and the
functions over it run one training step's EMA update and revival and the k-means init,
with the collectives that keep the state identical on every rank (:func:`all_reduce_stats`,
and those that take ``synced``).
Only the k-means gathering (:func:`gather_`, over the first training batches) and, under
``torch.distributed``, the decisions of :func:`share_init_` and :func:`revive_dead_` read
tensor values on the host.

Shape letters: ``n`` stages that ran, ``K`` codes per stage, ``Dc`` code dimension, ``N`` vectors,
``D`` latent dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from . import _dist
from . import _vq_ops as ops
from ._compile import eager

SPLIT_STEP = 0.2  # how far a new code moves from the code it copies, toward a data vector
MIN_VECTORS_PER_CODE = 8  # k-means fits at most N // 8 clusters; the rest are splits


def fit_stage(data: Tensor, size: int, iters: int, cosine: bool) -> Tensor:
    """Initial codes of one stage from its input vectors ``data`` ``(N, Dc)``.

    k-means fits ``min(K, N // 8)`` clusters, so every cluster holds vectors to average and the
    residual left for the next stage keeps its scale (with one vector per code it would be
    zero; with two, a quickstart-sized batch leaves stages 4-8 of 8 collapsed). When the data
    are too few for ``K`` clusters, the remaining codes are *splits*: copies of fitted
    centroids moved ``SPLIT_STEP`` of the way toward a random data vector, so they start where
    the data are and take over part of a cluster; the EMA update and dead-code revival spread
    them from there.

    Returns:
        ``(K, Dc)`` codes.
    """
    fitted, _ = ops.kmeans(data, max(1, min(size, data.shape[0] // MIN_VECTORS_PER_CODE)),
                           iters, cosine)
    if fitted.shape[0] == size:
        return fitted
    spare = size - fitted.shape[0]
    parent = torch.randint(0, fitted.shape[0], (spare,), device=data.device)
    toward = data[torch.randint(0, data.shape[0], (spare,), device=data.device)]
    return torch.cat([fitted, fitted[parent] + SPLIT_STEP * (toward - fitted[parent])])


def usage_share(counts: Tensor) -> Tensor:
    """``(n, K)`` each code's share of its stage's usage ``counts`` (all 0 for a stage unused)."""
    return counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def set_usage_(cluster_size: Tensor, embed_sum: Tensor | None, codebook: Tensor,
               counts: Tensor, total: Tensor | float) -> None:
    """Start the EMA state from usage ``counts`` ``(n, K)``, scaled to ``total`` per stage.

    Called with the vectors of one step, the EMA then weighs the init like one step's worth of
    data: a code the data stop using loses its share at the rate of the EMA decay, instead of
    carrying the weight of the whole k-means sample for hundreds of steps. (Starting lower, at
    one step's *contribution* ``(1 - decay) * vectors``, makes codes running means of their
    first vectors: with fewer vectors than codes per step they jump onto single vectors and
    code fresh data worse, measured.)
    """
    cluster_size.copy_(usage_share(counts) * total)
    if embed_sum is not None:
        embed_sum.copy_(codebook * cluster_size[..., None])


def ema_update_(cluster_size: Tensor, embed_sum: Tensor | None, codebook: Tensor,
                counts: Tensor, sums: Tensor | None, keep: Tensor, eps: float) -> None:
    """One EMA step: ``state <- keep * state + (1 - keep) * batch`` for the usage counts and,
    with ``embed_sum``, the sums of assigned vectors; codes become the Laplace-smoothed means.

    Args:
        cluster_size: ``(n, K)`` EMA usage counts.
        embed_sum: ``(n, K, Dc)`` EMA sums, or ``None`` for learned codebooks.
        codebook: ``(n, K, Dc)`` codes, rewritten from the EMA state when ``embed_sum`` is set.
        counts: ``(n, K)`` this batch's counts; ``sums``: ``(n, K, Dc)`` its sums.
        keep: ``()`` the decay, or 1 on a batch without valid vectors (state unchanged).
        eps: Laplace-smoothing constant.
    """
    cluster_size.lerp_(counts.to(cluster_size.dtype), 1.0 - keep)
    if embed_sum is None or sums is None:
        return
    embed_sum.lerp_(sums.to(embed_sum.dtype), 1.0 - keep)
    size = cluster_size.shape[-1]
    total = cluster_size.sum(dim=-1, keepdim=True)  # (n, 1)
    smoothed = (cluster_size + eps) / (total + size * eps) * total
    codebook.copy_(embed_sum / smoothed[..., None])


def age_(unused_for: Tensor, counts: Tensor, coded: Tensor) -> None:
    """Count, per code, the vectors its stage has coded since the code was last chosen.

    Args:
        unused_for: ``(n, K)`` the counters, reset to 0 where ``counts > 0``.
        counts: ``(n, K)`` this batch's usage counts.
        coded: ``()`` number of valid vectors in the batch.
    """
    unused_for.copy_(torch.where(counts > 0, 0.0, unused_for + coded.to(unused_for.dtype)))


def dead_codes(cluster_size: Tensor, unused_for: Tensor, threshold: float, patience: float,
               has_data: Tensor) -> Tensor:
    """``(n, K)`` bool: codes to revive.

    A code is dead when no vector chose it while its stage coded enough vectors for it to have
    been chosen ``patience`` times at its own EMA usage share (``unused_for * share >=
    patience``: ``patience * K`` vectors for a code of uniform share, proportionally more for
    a rarely used code that serves the tails of the data), or when its EMA usage share is
    below ``threshold`` times the uniform share. 0 turns a rule off.
    """
    mean = cluster_size.sum(dim=-1, keepdim=True) / cluster_size.shape[-1]  # (n, 1)
    dead = cluster_size < threshold * mean  # never with threshold 0: counts are >= 0
    if patience > 0:
        dead = dead | (unused_for * usage_share(cluster_size) >= patience)
    return dead & has_data


def revival_draws(dead: Tensor) -> Tensor:
    """``(2, n, K)`` uniform float64 draws in ``[0, 1)`` that :func:`revive_` turns into batch
    rows (targets, donors) once it knows the batch size: drawn before the batch is gathered,
    and on every step that checks for dead codes, so the global RNG stream is the same with
    any number of processes (see :func:`revive_dead_`)."""
    return torch.rand((2, *dead.shape), dtype=torch.float64, device=dead.device)


def revive_(codebook: Tensor, cluster_size: Tensor, embed_sum: Tensor | None,
            unused_for: Tensor, dead: Tensor, inputs: list[Tensor], indices: list[Tensor],
            weight: Tensor, draws: Tensor | None = None) -> None:
    """Re-seed the ``dead`` codes by splitting busy codes, and reset their EMA state.

    Each dead code becomes a copy of a code in use in this batch (the code of a random batch
    vector, so busy codes are drawn most often), moved ``SPLIT_STEP`` of the way toward another
    random batch vector: it starts where the data are dense and takes over part of a cluster.
    (A bare batch vector, the usual choice, is near nothing else in high dimension and dies
    again: at dim 128 it leaves 80% of the codes unused on held-out data. Donors are drawn from
    this batch's codes, not by EMA usage, which lags latents that move.) Its usage count, EMA
    sum and idle counter are reset with it, so the next EMA step does not pull it back. A code
    whose drawn batch vectors are masked out waits for the next step.

    Args:
        codebook: ``(n, K, Dc)``; ``cluster_size``, ``unused_for``, ``dead``: ``(n, K)``;
            ``embed_sum``: ``(n, K, Dc)`` or ``None``.
        inputs: Per stage, the ``(N, Dc)`` vectors it coded in this batch.
        indices: Per stage, the ``(N,)`` codes it chose for them (the donors are drawn here).
        weight: ``(N,)`` 1 for valid vectors, 0 for masked or non-finite ones.
        draws: :func:`revival_draws` of ``dead``; ``None``: drawn here.
    """
    n, size, dim = codebook.shape
    if draws is None:
        draws = revival_draws(dead)
    total = weight.shape[0]
    rows, owners = (draws * total).long().clamp_(0, max(total - 1, 0))
    dead = dead & (weight[rows] > 0) & (weight[owners] > 0)  # (n, K)
    target = torch.stack([ze[r] for ze, r in zip(inputs, rows, strict=True)])  # (n, K, Dc)
    donor = torch.stack([idx[r] for idx, r in zip(indices, owners, strict=True)])  # (n, K)
    base = codebook.gather(1, donor[..., None].expand(-1, -1, dim))
    fresh = base + SPLIT_STEP * (target.to(base.dtype) - base)
    codebook.copy_(torch.where(dead[..., None], fresh, codebook))
    mean = cluster_size.sum(dim=-1, keepdim=True) / size  # (n, 1)
    cluster_size.copy_(torch.where(dead, mean, cluster_size))
    unused_for.masked_fill_(dead, 0.0)
    if embed_sum is not None:
        embed_sum.copy_(torch.where(dead[..., None], fresh * mean[..., None], embed_sum))


# ---------------------------------------------------------------- the EMA step over the stages
class State(NamedTuple):
    """The codebook state of ``n`` stages, as views of the module's tensors."""

    codebook: Tensor  # (n, K, Dc) codes
    cluster_size: Tensor  # (n, K) EMA usage counts
    unused_for: Tensor  # (n, K) vectors coded since each code was last chosen
    embed_sum: Tensor | None  # (n, K, Dc) EMA sums of assigned vectors; None: learned codes

    def tensors(self) -> list[Tensor]:
        """The tensors to broadcast, in a fixed order."""
        rest = [] if self.embed_sum is None else [self.embed_sum]
        return [self.codebook, self.cluster_size, self.unused_for, *rest]


class BatchStats(NamedTuple):
    """One training batch's statistics (summed over the ranks when synced)."""

    counts: Tensor  # (n, K) code counts
    sums: Tensor | None  # (n, K, Dc) sums of the EMA targets per code; None: learned codes
    coded: Tensor  # () valid vectors


def batch_stats(counts: Tensor, inputs: list[Tensor], indices: list[Tensor], weight: Tensor,
                sums_for: Tensor | None, joint_rest: Tensor | None, masked: bool) -> BatchStats:
    """Counts, EMA target sums and valid count of the batch.

    Args:
        counts: ``(n, K)`` weighted code counts.
        inputs: Per stage, the ``(N, Dc)`` vectors it coded (its EMA targets).
        indices: Per stage, the ``(N,)`` codes it chose.
        weight: ``(N,)`` 1 for valid vectors, 0 for masked or non-finite ones.
        sums_for: ``(Q, K, Dc)`` codebook with EMA codebooks (sums are gathered), else ``None``.
        joint_rest: ``(N, Dc)`` ``x - sum_j c_j`` with ``joint_refine``: the target of stage
            ``k`` is then ``joint_rest + c_k``, what code ``k`` must produce given the others.
        masked: Whether a mask was given (padding rows hold real values and are zeroed).
    """
    sums = None
    if sums_for is not None:
        sums = inputs[0].new_zeros(len(indices), sums_for.shape[1], sums_for.shape[2])
        for k, (ze, idx) in enumerate(zip(inputs, indices, strict=True)):
            target = ze if joint_rest is None else joint_rest + sums_for[k].to(ze.dtype)[idx]
            if masked:  # non-finite rows are already 0
                target = torch.where(weight[:, None] > 0, target, 0.0)
            sums[k].index_add_(0, idx, target)
    return BatchStats(counts, sums, weight.sum())


@eager  # one graph break at the call under torch.compile, as for the collective itself
def all_reduce_stats(stats: BatchStats) -> BatchStats:
    """``stats`` summed over the ranks: the one ``all_reduce`` of a synced training step."""
    parts = [stats.counts, stats.coded] + ([stats.sums] if stats.sums is not None else [])
    counts, coded, *rest = _dist.all_reduce_sum(parts)
    return BatchStats(counts, rest[0] if rest else None, coded)


def ema_step_(state: State, stats: BatchStats, decay: float, eps: float) -> Tensor:
    """One EMA step of the usage counts, sums and codes, then the idle counters.

    A batch without valid vectors leaves the EMA state unchanged.

    Returns:
        ``()`` bool, whether the batch had valid vectors (on every rank when synced).
    """
    has_data = stats.coded > 0
    keep = torch.where(has_data, decay, 1.0).to(state.cluster_size.dtype)
    ema_update_(state.cluster_size, state.embed_sum, state.codebook, stats.counts, stats.sums,
                keep, eps)
    age_(state.unused_for, stats.counts, stats.coded)
    return has_data


def revive_dead_(state: State, has_data: Tensor, threshold: float, patience: float,
                 synced: bool, revive: Callable[[Tensor, Tensor], None]) -> None:
    """Find the dead codes (:func:`dead_codes`) and call ``revive(dead, draws)`` on them.

    One process revives on every step, with no host read (``dead`` may be all false). With
    ``synced`` the decision comes from all-reduced statistics, so it is the same on every
    rank: on a step with a dead code every rank calls ``revive`` (which gathers the global
    batch to rank 0 with :func:`gather_batch`) and rank 0 broadcasts the state. The draws
    are made on every step either way, so rank 0 revives the codes one process would on the
    whole batch. Both rules 0: nothing runs.
    """
    if threshold <= 0 and patience <= 0:
        return
    dead = dead_codes(state.cluster_size, state.unused_for, threshold, patience, has_data)
    draws = revival_draws(dead)
    if not synced:
        revive(dead, draws)
        return
    if not bool(dead.any()):
        return
    revive(dead, draws)
    _dist.broadcast_(state.tensors())


def gather_batch(inputs: list[Tensor], indices: list[Tensor], weight: Tensor
                 ) -> tuple[list[Tensor], list[Tensor], Tensor] | None:
    """Every rank's ``inputs``, ``indices`` and ``weight`` (as :func:`revive_` takes them)
    concatenated in rank order on rank 0, ``None`` on the other ranks: a collective.

    Packed into one float64 buffer (exact for the codes and for any float input dtype), so the
    global batch travels in one :func:`rvq_blocks._dist.gather_rows`.
    """
    n, dim = len(inputs), inputs[0].shape[1]
    packed = torch.cat([*(x.double() for x in inputs), torch.stack(indices, dim=1).double(),
                        weight[:, None].double()], dim=1)
    rows = _dist.gather_rows(packed, cap=packed.shape[0])
    if rows is None:
        return None
    stages = rows[:, :n * dim].reshape(-1, n, dim).to(inputs[0].dtype).unbind(1)
    codes = rows[:, n * dim:n * dim + n].long().unbind(1)
    return list(stages), list(codes), rows[:, -1].to(weight.dtype)


# ---------------------------------------------------------------- the k-means init
class Gathered(NamedTuple):
    """What :func:`gather_` decides after adding a batch to the k-means pool."""

    rows: Tensor | None  # (M, D) pooled rows to fit now; None: keep gathering
    flow: float  # valid vectors in this batch (all ranks): the EMA usage scale
    done: bool  # ``samples`` vectors are gathered: this init is final


def kmeans_cap(samples: int, size: int) -> int:
    """Most vectors the k-means init uses: enough for one cluster per eight vectors."""
    return max(samples, MIN_VECTORS_PER_CODE * size)


def gather_(pool: list[Tensor], z: Tensor, weight: Tensor, samples: int, size: int,
            provisional: bool, synced: bool) -> Gathered:
    """Add this batch's valid vectors to ``pool`` and decide whether to fit k-means now.

    A single batch may hold fewer vectors than codes, and k-means on it would leave later
    stages collapsed, so the init gathers vectors over the first training batches: the first
    batch with data gets a provisional init from what there is, and the init is made again,
    for good, once ``samples`` vectors are pooled (counted over all ranks when synced: one
    ``all_reduce`` and one host read).

    Args:
        pool: The rows gathered so far (appended to in place).
        z: ``(N, D)`` flat latents; ``weight``: ``(N,)`` 1 for valid rows.
        samples: Vectors to gather before the init commits (``kmeans_samples``).
        size: Codes per stage ``K``.
        provisional: Whether a provisional init has already run.
        synced: Count the pooled rows over the ranks.
    """
    cap = kmeans_cap(samples, size)
    rows = z.detach()[weight > 0][:cap]  # (M, D)
    pool.append(rows)
    pooled = torch.tensor([float(sum(p.shape[0] for p in pool)), rows.shape[0]],
                          device=z.device)
    if synced:
        (pooled,) = _dist.all_reduce_sum([pooled])
    have, flow = float(pooled[0]), float(pooled[1])
    done = have >= samples
    if have == 0 or (provisional and not done):
        return Gathered(None, flow, done)
    return Gathered(torch.cat(pool)[-cap:], flow, done)


def share_init_(state: State, data: Tensor, samples: int, size: int,
                fit: Callable[[Tensor], None]) -> bool:
    """The k-means init across ranks: all ranks' valid rows ``data`` ``(M, D)`` (at most
    :func:`kmeans_cap` per rank) are gathered on rank 0 in rank order, ``fit`` runs there, and
    one broadcast sends the state to every rank.

    Returns:
        Whether any rank had a row (the same on every rank).
    """
    rows = _dist.gather_rows(data, kmeans_cap(samples, size))  # None off rank 0
    ok = torch.tensor([0.0 if rows is None else float(rows.shape[0] > 0)],
                      device=state.codebook.device)
    if rows is not None and rows.shape[0] > 0:
        fit(rows)
    _dist.broadcast_([*state.tensors(), ok])
    return bool(ok)
