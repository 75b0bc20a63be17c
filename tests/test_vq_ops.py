"""The tensor functions under ``ResidualVQ``: nearest code, k-means, beam search, rotation trick."""

import pytest
import torch

from rvq_blocks import _vq_ops as ops


# --------------------------------------------------------------------------- rotation trick
def test_rotation_trick_sends_the_rotated_gradient_to_z_and_none_to_q():
    """``R`` takes z's direction to q's, so ``R^T q̂ = ẑ``: an upstream gradient along ``q̂``
    reaches ``z`` as ``(|q| / |z|) ẑ``. The codes get no gradient through the estimator."""
    torch.manual_seed(0)
    z = torch.randn(5, 4, requires_grad=True)
    q = torch.randn(5, 4, requires_grad=True)
    out = ops.rotation_trick(z, q)
    assert torch.equal(out, q.detach())
    q_hat = q.detach() / q.detach().norm(dim=1, keepdim=True)
    z_hat = z.detach() / z.detach().norm(dim=1, keepdim=True)
    gz, gq = torch.autograd.grad(out, (z, q), q_hat, allow_unused=True)
    scale = q.detach().norm(dim=1, keepdim=True) / z.detach().norm(dim=1, keepdim=True)
    torch.testing.assert_close(gz, scale * z_hat, rtol=1e-5, atol=1e-6)
    assert gq is None or torch.count_nonzero(gq) == 0


def test_rotation_trick_is_the_plain_straight_through_gradient_when_q_equals_z():
    z = torch.randn(3, 6, requires_grad=True)
    g = torch.randn(3, 6)
    (grad,) = torch.autograd.grad(ops.rotation_trick(z, z.detach() * 2.0), z, g)
    torch.testing.assert_close(grad, 2.0 * g)  # same direction: R = I, scale |q| / |z| = 2


def test_rotation_trick_of_a_zero_vector_falls_back_to_straight_through():
    z = torch.zeros(2, 3, requires_grad=True)
    g = torch.randn(2, 3)
    (grad,) = torch.autograd.grad(ops.rotation_trick(z, torch.ones(2, 3)), z, g)
    torch.testing.assert_close(grad, g)


# --------------------------------------------------------------------------- k-means
def test_kmeans_with_as_many_points_as_clusters_starts_from_each_point_once():
    points = torch.arange(16.0)[:, None] * torch.ones(1, 2)  # 16 distinct points
    centroids, counts = ops.kmeans(points, 16, iters=0, cosine=False)
    assert torch.equal(centroids[:, 0].sort().values, points[:, 0])
    assert torch.equal(counts, torch.ones(16))


def test_kmeans_keeps_singleton_clusters_and_reseeds_only_empty_ones():
    points = torch.arange(8.0)[:, None] * 10.0 * torch.ones(1, 3)  # 8 far-apart points
    centroids, counts = ops.kmeans(points, 8, iters=5, cosine=False)
    assert torch.equal(centroids[:, 0].sort().values, points[:, 0])  # one code per point
    assert torch.equal(counts, torch.ones(8))


def test_kmeans_of_one_vector_puts_every_centroid_on_it():
    z = torch.randn(1, 4)
    centroids, counts = ops.kmeans(z, 5, iters=2, cosine=False)
    assert torch.equal(centroids, z.expand(5, 4))
    assert float(counts.sum()) == 1.0


def test_kmeans_moves_centroids_to_the_cluster_means():
    torch.manual_seed(0)
    a, b = torch.randn(50, 2) * 0.1 + 5.0, torch.randn(50, 2) * 0.1 - 5.0
    centroids, counts = ops.kmeans(torch.cat([a, b]), 2, iters=4, cosine=False)
    means = torch.stack([a.mean(0), b.mean(0)])
    order = centroids[:, 0].argsort(descending=True)
    torch.testing.assert_close(centroids[order], means)
    assert torch.equal(counts, torch.full((2,), 50.0))


# --------------------------------------------------------------------------- nearest
def test_nearest_in_blocks_equals_one_block():
    """Inputs larger than one cache block are split into row blocks; the answer is the same."""
    torch.manual_seed(0)
    codebook = torch.randn(4096, 8)
    z = torch.randn(300, 8)  # 300 * 4096 elements > one block
    expected = torch.cdist(z, codebook).argmin(dim=1)
    assert torch.equal(ops.nearest(z, codebook, False), expected)


def test_nearest_by_direction_ignores_length():
    codebook = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    z = torch.tensor([[0.1, 1.0]])
    assert int(ops.nearest(z, codebook, False)) == 1
    z = torch.tensor([[1.0, 0.2]])
    assert int(ops.nearest(z, codebook, False)) == 1  # nearer to (0, 1) in distance ...
    assert int(ops.nearest(z, codebook, True)) == 0  # ... but it points along (1, 0)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_tracing_is_seen_inside_jit_trace_only():
    seen: list[bool] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(ops.tracing())
        return x * 2

    f(torch.ones(2))
    torch.jit.trace(f, torch.ones(2), check_trace=False)
    assert seen == [False, True]


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_nearest_traced_at_one_length_runs_at_a_longer_one():
    """Traced, the lookup is one block, so the graph does not bake in the number of rows."""
    torch.manual_seed(0)
    codebook = torch.randn(1024, 8)
    traced = torch.jit.trace(lambda z: ops.nearest(z, codebook, False), torch.randn(10, 8))
    z = torch.randn(2000, 8)  # 2000 * 1024 elements: four blocks in eager mode
    assert torch.equal(traced(z), ops.nearest(z, codebook, False))


def test_perplexity_counts_the_codes_in_equal_use():
    counts = torch.tensor([[5.0, 5.0, 5.0, 5.0, 0.0], [0.0, 7.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(ops.perplexity(counts), torch.tensor([4.0, 1.0]))
    torch.testing.assert_close(ops.perplexity(torch.zeros(3)), torch.tensor(1.0))
