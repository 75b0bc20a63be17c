"""Tensor kernels behind :class:`~rvq_blocks.ResidualVQ`: lookup, k-means, beam search, rotation.

Everything here works on flattened vectors ``(N, D)`` and never builds an ``(N, K, D)``
temporary: distances are ``|c|^2 - 2 z.c`` from one matrix product (``|z|^2`` is constant per
row and does not change the argmin).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_BLOCK_ELEMENTS = 1 << 19  # distance-block size (2 MiB of float32): stays in cache for argmin


def tracing() -> bool:
    """Whether dynamo, ``torch.export`` or ``torch.jit.trace`` is tracing this call: shapes may
    be symbolic there, so nothing may depend on their values."""
    return torch.compiler.is_compiling() or bool(torch._C._get_tracing_state())


def nearest(z: Tensor, codebook: Tensor, cosine: bool) -> Tensor:
    """Index of the closest code for every row.

    Distances are computed in row blocks of about 2 MiB, so the block is still in cache when
    ``argmin`` reads it; this matters for small code dimensions, where the lookup is bound by
    memory traffic rather than by the matrix product.

    Args:
        z: Vectors, ``(N, D)``.
        codebook: Codes, ``(K, D)``.
        cosine: Compare directions (L2-normalised vectors and codes) instead of positions.

    Returns:
        ``(N,)`` int64 indices.
    """
    if cosine:
        z, codebook = F.normalize(z, dim=-1), F.normalize(codebook, dim=-1)
        bias = torch.zeros_like(codebook[:, 0])
    else:
        bias = codebook.pow(2).sum(dim=-1)  # (K,); |z|^2 is constant per row and dropped
    codes_t = codebook.t()
    if tracing():  # one block: a loop over row blocks would bake N into the graph
        return torch.addmm(bias, z, codes_t, alpha=-2.0).argmin(dim=-1)
    rows = max(1, _BLOCK_ELEMENTS // codebook.shape[0])
    blocks = [torch.addmm(bias, z[i:i + rows], codes_t, alpha=-2.0).argmin(dim=-1)  # (rows,)
              for i in range(0, z.shape[0], rows)]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


def weighted_counts(indices: Tensor, weights: Tensor, size: int) -> Tensor:
    """Histogram of ``indices`` with per-row ``weights``; static shape, no host sync."""
    return torch.zeros(size, dtype=weights.dtype, device=weights.device).index_add_(
        0, indices, weights
    )


def perplexity(counts: Tensor, eps: float = 1e-12) -> Tensor:
    """``exp(entropy)`` of the distribution proportional to ``counts`` along the last axis."""
    p = counts / counts.sum(dim=-1, keepdim=True).clamp_min(eps)
    return torch.exp(-torch.special.xlogy(p, p).sum(dim=-1))


def kmeans(
    z: Tensor,
    num_clusters: int,
    iters: int,
    cosine: bool,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on the rows of ``z``, memory ``O(N K)``.

    Centroids start from distinct random rows (with replacement when ``N < K``); a cluster
    that empties is re-seeded from a random row, so every returned code is data-dependent.

    Args:
        z: Finite vectors, ``(N, D)``, ``N >= 1``.
        num_clusters: ``K``.
        iters: Lloyd iterations (0 returns the random seeding).
        cosine: Assign by direction (spherical k-means); centroids stay plain means.
        generator: Optional RNG for reproducible seeding.

    Returns:
        ``(centroids (K, D), counts (K,))``, counts from the final assignment.
    """
    n = z.shape[0]
    if n >= num_clusters:
        start = torch.randperm(n, device=z.device, generator=generator)[:num_clusters]
    else:
        start = torch.randint(0, n, (num_clusters,), device=z.device, generator=generator)
    centroids = z[start].clone()
    ones = torch.ones(n, dtype=z.dtype, device=z.device)
    for _ in range(iters):
        assign = nearest(z, centroids, cosine)
        counts = weighted_counts(assign, ones, num_clusters)
        sums = torch.zeros_like(centroids).index_add_(0, assign, z)
        empty = counts == 0
        reseed = z[torch.randint(0, n, (num_clusters,), device=z.device, generator=generator)]
        centroids = torch.where(empty[:, None], reseed, sums / counts.clamp_min(1)[:, None])
    counts = weighted_counts(nearest(z, centroids, cosine), ones, num_clusters)
    return centroids, counts


def beam_search(z: Tensor, code_vectors: list[Tensor], beam_size: int) -> Tensor:
    """Choose one code per stage to minimise the total squared reconstruction error.

    Keeps the ``beam_size`` best partial sums per vector through the stages (greedy residual
    quantization is ``beam_size=1``).

    Args:
        z: Target vectors, ``(N, D)``.
        code_vectors: Per stage, the ``(K, D)`` vectors each code adds to the reconstruction.
        beam_size: Candidates kept per vector.

    Returns:
        ``(N, Q)`` int64 indices of the best path.
    """
    n, d = z.shape
    residual = z[:, None, :]  # (N, b, D), b = 1 to start
    error = residual.pow(2).sum(dim=-1)  # (N, b)
    paths = torch.zeros(n, 1, 0, dtype=torch.long, device=z.device)  # (N, b, q)
    for codes in code_vectors:
        k = codes.shape[0]
        b = residual.shape[1]
        dots = torch.matmul(residual, codes.t())  # (N, b, K)
        cand = error[..., None] - 2.0 * dots + codes.pow(2).sum(dim=-1)  # (N, b, K)
        top = cand.reshape(n, b * k).topk(min(beam_size, b * k), dim=-1, largest=False)
        parent, code = top.indices // k, top.indices % k  # (N, b')
        residual = residual.gather(1, parent[..., None].expand(-1, -1, d)) - codes[code]
        error = residual.pow(2).sum(dim=-1)  # exact, no drift through the stages
        paths = torch.cat(
            [paths.gather(1, parent[..., None].expand(-1, -1, paths.shape[-1])), code[..., None]],
            dim=-1,
        )
    best = error.argmin(dim=-1)  # (N,)
    return paths[torch.arange(n, device=z.device), best]


def rotation_trick(z: Tensor, q: Tensor, eps: float = 1e-6) -> Tensor:
    """Rotation-trick estimator (Fifty et al. 2024, arXiv:2410.06424).

    Value ``q``, gradient ``sg(λR)``.

    ``R`` is the rotation taking ``z``'s direction to ``q``'s, ``λ = |q| / |z|``, both treated as
    constants, so the gradient reaching ``z`` is rotated and rescaled rather than copied.
    Uses the Householder form ``R v = v - 2 (v.r) r + 2 (v.u) w`` with ``u = ẑ``, ``w = q̂``,
    ``r = (u + w) / |u + w|``.

    Shape:
        ``z``, ``q`` and the output: ``(N, D)``.
    """
    z_norm = z.detach().norm(dim=-1, keepdim=True)
    q_norm = q.detach().norm(dim=-1, keepdim=True)
    u = z.detach() / z_norm.clamp_min(eps)
    w = q.detach() / q_norm.clamp_min(eps)
    r = F.normalize(u + w, dim=-1, eps=eps)
    # A (near-)zero input has no direction: fall back to the plain straight-through gradient.
    degenerate = z_norm <= eps
    scale = torch.where(degenerate, torch.ones_like(z_norm), q_norm / z_norm.clamp_min(eps))
    rotated = z - 2.0 * (z * r).sum(-1, keepdim=True) * r + 2.0 * (z * u).sum(-1, keepdim=True) * w
    out = torch.where(degenerate, z, scale * rotated)
    # Value exactly q (the formula equals q only up to rounding), gradient that of ``out``.
    return q.detach() + (out - out.detach())
