"""ResidualVQ: contract, straight-through rule, losses, codebook learning, bad input."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rvq_blocks import ResidualVQ, RVQOutput


def _trained(rvq: ResidualVQ, x: torch.Tensor, steps: int = 2) -> ResidualVQ:
    rvq.train()
    for _ in range(steps):
        rvq(x)
    return rvq.eval()


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("b,t", [(1, 1), (2, 7), (3, 40)])
def test_output_contract(b, t):
    rvq = ResidualVQ(16, 3, 32)
    out = rvq(torch.randn(b, 16, t))
    assert isinstance(out, RVQOutput)
    assert out.quantized.shape == (b, 16, t) and out.quantized.dtype == torch.float32
    assert out.indices.shape == (b, 3, t) and out.indices.dtype == torch.int64
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < 32
    assert out.loss.shape == ()
    for field in ("commitment_loss", "codebook_loss", "perplexity", "codes_used"):
        assert getattr(out, field).shape == (3,)
    assert torch.all(out.perplexity >= 1) and torch.all(out.perplexity <= 32 + 1e-3)


def test_hand_computed_nearest_codes():
    rvq = ResidualVQ(2, 2, 4, kmeans_init=False).eval()
    with torch.no_grad():
        rvq.codebook[0] = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
        rvq.codebook[1] = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = torch.tensor([[3.9, 0.8], [0.2, 5.1], [-3.0, -4.1]]).t()[None]  # (1, 2, 3)
    out = rvq(x)
    assert out.indices[0].tolist() == [[1, 2, 3], [2, 2, 1]]
    expected = torch.tensor([[4.0, 1.0], [0.0, 5.0], [-3.0, -4.0]]).t()[None]
    torch.testing.assert_close(out.quantized, expected)


def test_eval_decode_of_encode_equals_forward_exactly():
    x = torch.randn(2, 32, 60)
    rvq = _trained(ResidualVQ(32, 4, 64), x)
    out = rvq(x)
    codes = rvq.encode(x)
    assert torch.equal(codes, out.indices)
    assert torch.equal(rvq.decode(codes), out.quantized)


def test_encode_and_decode_fewer_quantizers():
    x = torch.randn(2, 16, 30)
    rvq = _trained(ResidualVQ(16, 4, 32), x)
    codes = rvq.encode(x, n_quantizers=2)
    assert codes.shape == (2, 2, 30)
    assert torch.equal(codes, rvq.encode(x)[:, :2])
    torch.testing.assert_close(rvq.decode(codes), rvq(x, n_quantizers=2).quantized)
    err = [(rvq.decode(rvq.encode(x, n)) - x).pow(2).mean() for n in (1, 2, 4)]
    assert err[0] > err[1] > err[2]


def test_channel_last_is_a_transpose():
    x = torch.randn(2, 16, 20)
    a = _trained(ResidualVQ(16, 3, 32), x)
    b = ResidualVQ(16, 3, 32, channel_last=True)
    b.load_state_dict(a.state_dict())
    b.eval()
    out_a, out_b = a(x), b(x.transpose(1, 2))
    assert torch.equal(out_a.indices, out_b.indices)
    assert torch.equal(out_a.quantized, out_b.quantized.transpose(1, 2))
    torch.testing.assert_close(b.decode(out_b.indices), out_b.quantized)


def test_bitrate_helpers():
    rvq = ResidualVQ(8, 8, 1024)
    assert rvq.bits_per_frame() == 80
    assert rvq.bits_per_frame(n_quantizers=6) == 60
    assert rvq.bitrate(frame_rate=75) == 6000


# --------------------------------------------------------------------------- original bugs
@pytest.mark.gradcheck
@pytest.mark.parametrize("options", [{}, {"ema": False}, {"codebook_dim": 3},
                                     {"codebook_dim": 3, "use_cosine": True},
                                     {"beam_size": 3}])
def test_straight_through_jacobian_is_exactly_identity(options):
    """Bug: STE applied after the loop / per stage without detach gives Q*I or 0."""
    dim, t = 4, 3
    rvq = ResidualVQ(dim, 4, 8, **options).double()
    rvq(torch.randn(1, dim, 40, dtype=torch.float64))  # k-means init + one EMA step
    rvq.train(not options.get("beam_size"))  # the beam runs in eval
    x = torch.randn(1, dim, t, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: rvq(v).quantized, x)
    torch.testing.assert_close(jac.reshape(dim * t, dim * t),
                               torch.eye(dim * t, dtype=torch.float64), rtol=0, atol=0)


def test_learned_codebooks_get_gradient_from_their_own_codebook_loss():
    """Bug: no codebook loss, so learned codebooks never moved."""
    rvq = ResidualVQ(8, 3, 16, ema=False)
    x = torch.randn(2, 8, 30)
    rvq(x)  # k-means init
    out = rvq(x)
    for k in range(3):
        (grad,) = torch.autograd.grad(out.codebook_loss[k], rvq.codebook, retain_graph=True)
        used = torch.zeros(16, dtype=torch.bool)
        used[out.indices[:, k].unique()] = True
        assert grad[k][used].abs().sum() > 0, f"stage {k} codebook got no gradient"
        assert torch.all(grad[k][~used] == 0)
        others = [j for j in range(3) if j != k]
        assert torch.all(grad[others] == 0)
    (grad,) = torch.autograd.grad(out.loss, rvq.codebook)
    assert grad.abs().sum() > 0


def test_learned_codebooks_get_no_gradient_from_the_commitment_loss():
    """Residuals from detached codes: the commitment loss moves the encoder only, and the
    codebook gradient of ``out.loss`` is exactly that of ``codebook_loss.mean()``."""
    torch.manual_seed(0)
    rvq = ResidualVQ(8, 3, 16, ema=False)
    x = torch.randn(2, 8, 30)
    rvq(x)  # k-means init
    out = rvq(x.clone().requires_grad_(True))
    (g_commit,) = torch.autograd.grad(out.commitment_loss.sum(), rvq.codebook,
                                      retain_graph=True, allow_unused=True)
    assert g_commit is None or torch.all(g_commit == 0)
    (g_loss,) = torch.autograd.grad(out.loss, rvq.codebook, retain_graph=True)
    (g_cb,) = torch.autograd.grad(out.codebook_loss.mean(), rvq.codebook)
    torch.testing.assert_close(g_loss, g_cb, rtol=0, atol=0)
    assert g_cb.abs().sum() > 0


@pytest.mark.parametrize("options", [{}, {"codebook_dim": 4}])
def test_codebook_and_commitment_losses_are_one_distance_with_opposite_gradients(options):
    """Both losses are ``|ze - c|^2`` per stage (in code space); the codebook loss moves only
    the codes, the commitment loss only the input (and input projections)."""
    torch.manual_seed(0)
    rvq = ResidualVQ(8, 3, 16, ema=False, **options)
    x = torch.randn(2, 8, 30)
    rvq(x)  # k-means init
    xg = x.clone().requires_grad_(True)
    out = rvq(xg)
    torch.testing.assert_close(out.codebook_loss, out.commitment_loss)
    (g_x,) = torch.autograd.grad(out.codebook_loss.sum(), xg, retain_graph=True,
                                 allow_unused=True)
    assert g_x is None or torch.count_nonzero(g_x) == 0
    (g_cb,) = torch.autograd.grad(out.commitment_loss.sum(), rvq.codebook, retain_graph=True,
                                  allow_unused=True)
    assert g_cb is None or torch.count_nonzero(g_cb) == 0
    (g_x,) = torch.autograd.grad(out.commitment_loss.sum(), xg)
    assert torch.count_nonzero(g_x) > 0


def test_every_stage_commitment_loss_reaches_the_encoder():
    """Bug (encodec#25, vector-quantize-pytorch#33): later stages' commitment grads were zero."""
    rvq = ResidualVQ(8, 4, 16)
    rvq(torch.randn(2, 8, 30))
    rvq.eval()  # losses are still computed; the codebooks stay as they are for `decode`
    x = torch.randn(2, 8, 30, requires_grad=True)
    out = rvq(x)
    codes = [rvq.decode(out.indices[:, : k + 1]) for k in range(4)]
    for k in range(4):
        (grad,) = torch.autograd.grad(out.commitment_loss[k], x, retain_graph=True)
        assert grad.abs().sum() > 0, f"stage {k} commitment loss does not reach the encoder"
        # Exactly d mse(r_k, c_k) / dx with r_k - c_k = x - (c_1 + ... + c_k).
        expected = 2 * (x.detach() - codes[k]) / x.numel()
        torch.testing.assert_close(grad, expected)


def test_loss_is_averaged_not_summed_over_quantizers():
    """Bug: VQ losses summed, so the loss grew with num_quantizers."""
    x = torch.randn(2, 8, 30)
    losses = {}
    for q in (1, 2, 8):
        rvq = ResidualVQ(8, q, 16, ema=False, kmeans_init=False, dead_code_threshold=0,
                         dead_code_patience=0)
        with torch.no_grad():
            rvq.codebook.zero_()  # every stage sees the same residual: x itself
        out = rvq(x)
        losses[q] = out.loss
        torch.testing.assert_close(
            out.loss, out.codebook_loss.mean() + 0.25 * out.commitment_loss.mean())
    expected = 1.25 * x.pow(2).mean()
    for q in (1, 2, 8):
        torch.testing.assert_close(losses[q], expected)


def test_quantizer_dropout_runs_fewer_stages_and_keeps_the_loss_scale():
    rvq = ResidualVQ(8, 6, 16, quantizer_dropout=1.0, ema=False, kmeans_init=False,
                     dead_code_threshold=0,
                         dead_code_patience=0)
    with torch.no_grad():
        rvq.codebook.zero_()
    x = torch.randn(2, 8, 10)
    seen = set()
    for _ in range(40):
        out = rvq(x)
        n = out.indices.shape[1]
        seen.add(n)
        assert out.commitment_loss.shape == (n,)
        torch.testing.assert_close(out.loss, 1.25 * x.pow(2).mean())
    assert seen == set(range(1, 7))
    rvq.eval()
    assert rvq(x).indices.shape[1] == 6


# --------------------------------------------------------------------------- codebook learning
@pytest.mark.parametrize("decay", [0.5, 0.8])  # 0.8: a mutant using 1 - decay shows up
def test_ema_moves_codes_to_cluster_means(decay):
    rvq = ResidualVQ(2, 1, 2, kmeans_init=False, decay=decay, dead_code_threshold=0,
                     dead_code_patience=0, eps=1e-9)
    with torch.no_grad():
        rvq.codebook[0] = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        rvq.embed_sum.copy_(rvq.codebook)
        rvq.cluster_size.fill_(1.0)
    x = torch.tensor([[2.0, 0.0], [2.0, 2.0], [-3.0, 0.0]]).t()[None]  # (1, 2, 3)
    rvq(x)
    # cluster sizes d*1 + (1-d)*[2, 1]; sums d*c + (1-d)*[(4, 2), (-3, 0)]
    d, e = decay, 1.0 - decay
    expected = torch.tensor([[(d + 4 * e) / (d + 2 * e), 2 * e / (d + 2 * e)],
                             [(-d - 3 * e) / (d + e), 0.0]])
    torch.testing.assert_close(rvq.codebook[0], expected, rtol=1e-5, atol=1e-5)


def test_revived_code_moves_and_stays_moved():
    """EnCodec's revival is undone by its own EMA step in the same forward."""
    torch.manual_seed(1)
    rvq = ResidualVQ(4, 1, 8, kmeans_init=False, dead_code_threshold=0.5)
    x = torch.randn(4, 4, 64)
    with torch.no_grad():
        rvq.codebook[0, :7] = torch.randn(7, 4) * 0.5
        rvq.codebook[0, 7] = 100.0  # never chosen
        rvq.embed_sum.copy_(rvq.codebook)
        rvq.cluster_size.fill_(1.0)
        rvq.cluster_size[0, 7] = 0.0
    rvq(x)
    revived = rvq.codebook[0, 7].clone()
    assert (revived - 100.0).abs().min() > 50, "dead code was not revived"
    # its EMA state is reset with it: a mean usage count, a sum that gives back the new code
    size = rvq.cluster_size[0]
    assert size[7] > 0.5 * size.mean(), "usage count of the revived code was not reset"
    torch.testing.assert_close(rvq.embed_sum[0, 7], revived * size[7])
    assert rvq.unused_for[0, 7] == 0
    data = x.transpose(1, 2).reshape(-1, 4)
    live = rvq.codebook[0, :7]
    # A split: a live code moved a fifth of the way toward a batch vector.
    step = (revived[None] - live) / 0.2 + live  # the batch vector each code implies
    assert torch.cdist(step, data).min() < 1e-3, "revived code is not a split of a live code"
    rvq(x)
    assert (rvq.codebook[0, 7] - revived).abs().max() < 5, "next EMA step pulled it back"
    assert (rvq.codebook[0, 7] - 100.0).abs().min() > 50


def test_codebook_usage_stays_high_over_training():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, 2, 64, decay=0.9)
    for _ in range(60):
        rvq(torch.randn(4, 8, 64))
    usage = rvq.codebook_usage()
    assert torch.all(usage.codes_used >= 0.95), usage
    assert torch.all(usage.perplexity > 0.8 * 64), usage


def test_kmeans_init_runs_once_and_state_dict_restores_it():
    x = torch.randn(2, 8, 100)
    rvq = ResidualVQ(8, 2, 16)
    assert not bool(rvq.initialized)
    rvq(x)
    assert bool(rvq.initialized)
    data = x.transpose(1, 2).reshape(-1, 8)
    # Stage 0 codes are k-means centroids of the data: each close to some vectors' mean.
    assert torch.cdist(rvq.codebook[0], data).min(dim=1).values.max() < 3
    fresh = ResidualVQ(8, 2, 16)
    fresh.load_state_dict(rvq.state_dict(), strict=True)
    before = fresh.codebook.clone()
    fresh.eval()
    torch.testing.assert_close(fresh(x).quantized, rvq.eval()(x).quantized)
    fresh.train()
    fresh._update_codebooks = lambda *a, **k: None  # isolate the init decision
    fresh(x)
    assert torch.equal(fresh.codebook, before), "k-means ran again after load_state_dict"


def test_batch_smaller_than_the_codebook_starts_no_stage_collapsed():
    """Regression: k-means from fewer vectors than codes made each vector its own stage-1
    code, so every later stage saw zero residuals and started collapsed (perplexity 1)."""
    torch.manual_seed(0)
    rvq = ResidualVQ(128, 8, 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rvq(torch.randn(4, 128, 50))  # 200 vectors for 1024 codes
    assert torch.all(out.perplexity > 30), out.perplexity  # max 200; the old init gave 1
    assert not bool(rvq.initialized)  # provisional: still gathering kmeans_samples vectors
    out = rvq(torch.randn(4, 128, 50))  # a fresh batch: codes fit the data, not one batch
    assert torch.all(out.perplexity > 80), out.perplexity


def test_kmeans_init_gathers_kmeans_samples_then_commits_once():
    torch.manual_seed(0)
    rvq = ResidualVQ(8, 2, 64, kmeans_samples=300)
    calls = []
    fit = rvq._init_kmeans
    rvq._init_kmeans = lambda data, *a: (calls.append(data.shape[0]), fit(data, *a))[1]
    for _ in range(5):
        rvq(torch.randn(1, 8, 100))
    assert calls == [100, 300]  # provisional from the first batch, final at 300 vectors
    assert bool(rvq.initialized)
    # The EMA usage starts at one step's flow (100 vectors), not the 300 of the k-means.
    rvq2 = ResidualVQ(8, 2, 64, kmeans_samples=300, decay=0.9, dead_code_threshold=0,
                      dead_code_patience=0)
    for _ in range(3):
        rvq2(torch.randn(1, 8, 100))
    torch.testing.assert_close(rvq2.cluster_size.sum(-1), torch.full((2,), 100.0))


def test_unused_code_is_revived_within_patience():
    """Regression: with only the EMA ratio rule, a code unused after init needed ~230 steps
    (decay 0.99) to be found dead; the patience rule finds it once it would have been chosen
    ``patience`` times at its usage share (here 1/16: just over 2 * 16 vectors)."""
    torch.manual_seed(0)
    rvq = ResidualVQ(4, 1, 16, dead_code_patience=2.0, kmeans_init=False)
    x = torch.randn(2, 4, 8)  # 16 vectors a step: 2 * 16 vectors = 2 steps of patience
    with torch.no_grad():
        rvq.codebook[0, 5] = 100.0  # far from all data: never chosen
        rvq.embed_sum.copy_(rvq.codebook)
    rvq(x)
    assert (rvq.codebook[0, 5] - 100).abs().max() < 1e-3 and rvq.unused_for[0, 5] == 16
    rvq(x)  # 32 vectors at a share just under 1/16 (it decayed): not yet
    assert (rvq.codebook[0, 5] - 100).abs().max() < 1e-3 and rvq.unused_for[0, 5] == 32
    rvq(x)  # 48 vectors unused: dead, revived, its idle counter reset
    assert (rvq.codebook[0, 5] - 100).abs().min() > 50
    assert rvq.unused_for[0, 5] == 0


def test_0_1_0_layout_loads_with_zero_idle_counters():
    rvq = ResidualVQ(8, 2, 16)
    state = rvq.state_dict()
    del state["unused_for"]
    state._metadata[""]["version"] = 1
    fresh = ResidualVQ(8, 2, 16)
    fresh.unused_for.fill_(5.0)
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.unused_for, torch.zeros(2, 16))


def test_joint_refinement_trains_and_reduces_error():
    torch.manual_seed(0)
    data = torch.randn(1, 8, 4000)
    errors = {}
    for refine in (False, True):
        torch.manual_seed(0)
        rvq = ResidualVQ(8, 3, 32, joint_refine=refine, decay=0.9)
        for _ in range(30):
            rvq(data)
        rvq.eval()
        errors[refine] = (rvq(data).quantized - data).pow(2).mean()
        assert torch.isfinite(rvq.codebook).all()
    assert errors[True] <= errors[False] * 1.02


# --------------------------------------------------------------------------- beam search
def test_exhaustive_beam_finds_the_optimal_codes():
    torch.manual_seed(0)
    rvq = ResidualVQ(3, 3, 4, kmeans_init=False, beam_size=64).eval()
    x = torch.randn(1, 3, 50)
    best = rvq(x).quantized
    grid = torch.cartesian_prod(*[torch.arange(4)] * 3)  # (64, 3)
    sums = sum(rvq.codebook[k][grid[:, k]] for k in range(3))  # (64, 3)
    brute = torch.cdist(x[0].t(), sums).argmin(dim=1)
    torch.testing.assert_close(best[0].t(), sums[brute])
    greedy = ResidualVQ(3, 3, 4, kmeans_init=False).eval()
    greedy.load_state_dict(rvq.state_dict())
    assert (greedy(x).quantized - x).pow(2).sum() >= (best - x).pow(2).sum()


def _reference_beam(x: torch.Tensor, codebooks: list[torch.Tensor], beam: int) -> torch.Tensor:
    """Beam search written out per row: keep the ``beam`` partial sums nearest to ``x``."""
    out = []
    for row in x:
        beams = [((), torch.zeros_like(row))]
        for codes in codebooks:
            cand = [(path + (j,), total + c) for path, total in beams
                    for j, c in enumerate(codes)]
            cand.sort(key=lambda pt: float((row - pt[1]).pow(2).sum()))
            beams = cand[:beam]
        out.append(beams[0][0])
    return torch.tensor(out)


@pytest.mark.parametrize("beam", [2, 3])
def test_pruned_beam_keeps_the_best_beams(beam):
    """With beam_size << K^Q beams are pruned every stage; keeping the worst ones instead (a
    mutant the exhaustive test cannot see) gives other codes than the reference search."""
    torch.manual_seed(0)
    rvq = ResidualVQ(3, 3, 8, kmeans_init=False, beam_size=beam).eval()
    x = torch.randn(1, 3, 40)
    codes = rvq.encode(x)[0].t()  # (T, Q)
    ref = _reference_beam(x[0].t(), [rvq.codebook[k] for k in range(3)], beam)
    assert torch.equal(codes, ref)
    greedy = ResidualVQ(3, 3, 8, kmeans_init=False).eval()
    greedy.load_state_dict(rvq.state_dict())
    assert not torch.equal(greedy.encode(x)[0].t(), codes)  # the search did something


# --------------------------------------------------------------------------- gradient estimator
def test_rotation_trick_forward_is_exact_and_gradient_is_rotated():
    x = torch.randn(2, 6, 20)
    ste = _trained(ResidualVQ(6, 2, 16), x)
    rot = ResidualVQ(6, 2, 16, gradient_estimator="rotation")
    rot.load_state_dict(ste.state_dict())
    rot.eval()
    xr = x.clone().requires_grad_(True)
    out_rot = rot(xr)
    assert torch.equal(out_rot.quantized, ste(x).quantized)
    g = torch.randn_like(x)
    (grad,) = torch.autograd.grad(out_rot.quantized, xr, g)
    # Per vector: grad = (|q|/|x|) R^T g, so its norm is |g| |q| / |x|.
    vx, vq, vg, vgrad = (t.transpose(1, 2).reshape(-1, 6) for t in (x, out_rot.quantized, g,
                                                                     grad))
    expected_norm = vg.norm(dim=1) * vq.norm(dim=1) / vx.norm(dim=1)
    torch.testing.assert_close(vgrad.norm(dim=1), expected_norm, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(grad, g)


# --------------------------------------------------------------------------- masks, NaN, dtypes
def test_mask_excludes_padding_from_losses_stats_and_ema():
    torch.manual_seed(0)
    real = torch.randn(1, 8, 50)
    padded = torch.cat([real, torch.full((1, 8, 30), 1e4)], dim=2)
    padded[..., -3] = float("nan")
    mask = torch.zeros(1, 80, dtype=torch.bool)
    mask[:, :50] = True
    a = ResidualVQ(8, 2, 16, dead_code_threshold=0,
                         dead_code_patience=0)
    b = ResidualVQ(8, 2, 16, dead_code_threshold=0,
                         dead_code_patience=0)
    torch.manual_seed(3)
    out_a = a(real)
    torch.manual_seed(3)
    out_b = b(padded, mask=mask)
    for name in ("loss", "commitment_loss", "perplexity", "codes_used"):
        torch.testing.assert_close(getattr(out_a, name), getattr(out_b, name))
    for name, buf in a.named_buffers():
        torch.testing.assert_close(buf, dict(b.named_buffers())[name], msg=name)
    assert torch.equal(out_a.indices, out_b.indices[..., :50])


def test_all_padding_batch_leaves_state_unchanged():
    rvq = ResidualVQ(8, 2, 16)
    rvq(torch.randn(2, 8, 40))
    state = {k: v.clone() for k, v in rvq.state_dict().items()}
    out = rvq(torch.randn(2, 8, 40), mask=torch.zeros(2, 40))
    assert out.loss == 0
    for k, v in rvq.state_dict().items():
        torch.testing.assert_close(v, state[k], msg=k)


def test_non_finite_input_never_reaches_the_codebooks():
    rvq = ResidualVQ(8, 3, 16, ema=False)
    x = torch.randn(2, 8, 40)
    x[0, :, 3] = float("nan")
    x[1, 2, 7] = float("inf")
    for _ in range(3):
        out = rvq(x)
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert torch.isfinite(rvq.codebook.grad).all()
        rvq.codebook.grad = None
    ema = ResidualVQ(8, 3, 16)
    for _ in range(3):
        ema(x)
    for name, buf in ema.named_buffers():
        if buf.is_floating_point():
            assert torch.isfinite(buf).all(), name
    assert not torch.isfinite(ema(x).quantized[0, :, 3]).any()  # its own output shows it


def test_bf16_autocast_keeps_float32_lookup():
    x = torch.randn(2, 16, 50)
    rvq = _trained(ResidualVQ(16, 3, 64, codebook_dim=8), x)
    ref = rvq(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = rvq(x)
    assert torch.equal(out.indices, ref.indices)
    assert out.quantized.dtype == torch.float32
    out16 = rvq(x.to(torch.bfloat16))
    assert out16.quantized.dtype == torch.bfloat16
    rvq.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = x.clone().requires_grad_(True)
        res = rvq(xb)
        (res.quantized.float().sum() + res.loss).backward()
    assert xb.grad is not None and torch.isfinite(xb.grad).all()
    assert rvq.codebook.dtype == torch.float32


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad,exc,match", [
    (torch.randn(16, 20), ValueError, r"expected x of shape \(B, 16, T\), got \(16, 20\)"),
    (torch.randn(2, 15, 20), ValueError, r"dim=16, got \(2, 15, 20\)"),
    (torch.zeros(2, 16, 20, dtype=torch.long), TypeError, "floating-point dtype, got torch.int64"),
    (torch.randn(2, 16, 0), ValueError, "non-empty"),
    ([[1.0]], TypeError, "torch.Tensor, got list"),
])
def test_bad_input_names_expected_and_actual(bad, exc, match):
    with pytest.raises(exc, match=match):
        ResidualVQ(16, 2, 8)(bad)


def test_bad_mask_and_indices():
    rvq = ResidualVQ(16, 2, 8)
    x = torch.randn(2, 16, 20)
    with pytest.raises(ValueError, match=r"mask of shape \(B, T\) = \(2, 20\), got \(2, 19\)"):
        rvq(x, mask=torch.ones(2, 19))
    with pytest.raises(ValueError, match=r"codes in \[0, 8\), got values in \[0, 8\]"):
        rvq.decode(torch.tensor([[[0, 8]]]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 0\]"):
        rvq.decode(torch.tensor([[[-1, 0]]]))
    with pytest.raises(TypeError, match="integer indices, got torch.float32"):
        rvq.decode(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"1 <= n <= 2, got \(1, 3, 4\)"):
        rvq.decode(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_quantizers <= 2, got 3"):
        rvq.encode(x, n_quantizers=3)


@pytest.mark.parametrize("kwargs,match", [
    ({"dim": 0}, "dim >= 1, got 0"),
    ({"decay": 1.0}, r"decay in \(0.0, 1.0\), got 1.0"),
    ({"gradient_estimator": "gumbel"}, "'ste' or 'rotation', got 'gumbel'"),
    ({"joint_refine": True, "ema": False}, "joint_refine needs ema=True"),
    ({"quantizer_dropout": 1.5}, r"quantizer_dropout in \[0.0, 1.0\], got 1.5"),
    ({"dead_code_threshold": 1.0}, r"dead_code_threshold in \[0.0, 1.0\), got 1.0"),
    ({"eps": 0.0}, r"eps in \(0.0, inf\], got 0.0"),
    ({"kmeans_iters": -1}, "kmeans_iters to be an int >= 0, got -1"),
])
def test_bad_hyperparameters(kwargs, match):
    args = {"dim": 8, "num_quantizers": 2, "codebook_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        ResidualVQ(**args)


# --------------------------------------------------------------------------- state, devices
@pytest.mark.parametrize("options", [{}, {"ema": False}, {"codebook_dim": 4}])
def test_state_dict_strict_round_trip(options):
    x = torch.randn(2, 8, 30)
    a = _trained(ResidualVQ(8, 3, 16, **options), x)
    b = ResidualVQ(8, 3, 16, **options)
    b.load_state_dict(a.state_dict(), strict=True)
    b.eval()
    assert torch.equal(a(x).quantized, b(x).quantized)


def test_meta_device_construction():
    rvq = ResidualVQ(8, 2, 16, codebook_dim=4, device="meta")
    assert rvq.codebook.device.type == "meta"
    rvq = rvq.to_empty(device="cpu")
    rvq.reset_parameters()
    assert torch.isfinite(rvq.codebook).all()


def test_compile_fullgraph_matches_eager():
    x = torch.randn(2, 8, 30)
    rvq = _trained(ResidualVQ(8, 3, 16), x)
    explain = torch._dynamo.explain(rvq)(x)
    assert explain.graph_break_count == 0
    compiled = torch.compile(rvq, backend="eager", fullgraph=True)
    out, ref = compiled(x), rvq(x)
    assert torch.equal(out.indices, ref.indices)
    torch.testing.assert_close(out.quantized, ref.quantized)
    rvq.train()
    ctrain = torch.compile(rvq, backend="eager", fullgraph=True)
    res = ctrain(x)
    assert torch.isfinite(res.loss)


# --------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 12), q=st.integers(1, 4), k=st.sampled_from([1, 2, 5, 16]),
    cdim=st.one_of(st.none(), st.integers(1, 6)), cosine=st.booleans(), ema=st.booleans(),
    b=st.integers(1, 3), t=st.integers(1, 9), beam=st.sampled_from([1, 2]),
)
def test_property_shapes_and_round_trip(dim, q, k, cdim, cosine, ema, b, t, beam):
    rvq = ResidualVQ(dim, q, k, codebook_dim=cdim, use_cosine=cosine, ema=ema, beam_size=beam)
    x = torch.randn(b, dim, t)
    out = rvq(x)
    assert out.quantized.shape == x.shape and out.indices.shape == (b, q, t)
    assert torch.isfinite(out.loss) and torch.isfinite(out.quantized).all()
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < k
    rvq.eval()
    codes = rvq.encode(x)
    torch.testing.assert_close(rvq.decode(codes), rvq(x).quantized)
    assert math.isclose(rvq.bits_per_frame(), q * math.log2(k))


def test_quantized_matches_codes_sum_in_training_too():
    rvq = ResidualVQ(8, 3, 16)
    x = torch.randn(2, 8, 30)
    rvq(x)
    state = {k: v.clone() for k, v in rvq.state_dict().items()}
    out = rvq(x)  # updates the codebooks after quantizing
    rvq.load_state_dict(state)
    torch.testing.assert_close(rvq.decode(out.indices), out.quantized)
    assert F.mse_loss(out.quantized, x) < x.pow(2).mean()


@pytest.mark.parametrize("option", ["decay", "eps", "commitment_weight", "quantizer_dropout",
                                    "dead_code_threshold", "dead_code_patience"])
def test_nan_options_are_refused_by_name(option):
    with pytest.raises(ValueError, match=f"{option} to be a number, got NaN"):
        ResidualVQ(8, 2, 16, **{option: float("nan")})


def test_non_integer_kmeans_iters_is_refused():
    with pytest.raises(ValueError, match="kmeans_iters to be an int >= 0, got 2.5"):
        ResidualVQ(8, 2, 16, kmeans_iters=2.5)


# --------------------------------------------------------------------------- pinned behaviour
def test_documented_defaults():
    """The defaults are part of the API (docs/residual_vq.md lists them): a change here is a
    change users see, and must be made on purpose."""
    import inspect

    params = inspect.signature(ResidualVQ).parameters
    defaults = {name: p.default for name, p in params.items() if p.default is not p.empty}
    assert defaults == {
        "num_quantizers": 8, "codebook_size": 1024, "codebook_dim": None, "use_cosine": False,
        "ema": True, "decay": 0.99, "eps": 1e-5, "commitment_weight": 0.25,
        "kmeans_init": True, "kmeans_iters": 10, "kmeans_samples": None,
        "dead_code_threshold": 0.1, "dead_code_patience": 4.0, "quantizer_dropout": 0.0,
        "gradient_estimator": "ste", "beam_size": 1, "joint_refine": False,
        "channel_last": False, "sync": None, "device": None, "dtype": None,
    }
    rvq = ResidualVQ(8)  # and the built module holds them
    built = {name: getattr(rvq, name) for name in defaults if hasattr(rvq, name)}
    built["num_quantizers"], built["codebook_size"] = rvq.codebook.shape[:2]
    assert built == {name: value for name, value in defaults.items() if name in built} | {
        "kmeans_samples": 2 * 1024, "codebook_dim": 8}


@pytest.mark.parametrize("n", [0, -1, 5])
def test_n_quantizers_out_of_range_is_refused_everywhere(n):
    rvq = ResidualVQ(4, 4, 8)
    x = torch.randn(1, 4, 6)
    for call in (lambda: rvq.encode(x, n_quantizers=n), lambda: rvq(x, n_quantizers=n),
                 lambda: rvq.bits_per_frame(n)):
        with pytest.raises(ValueError, match="n_quantizers"):
            call()


def test_init_from_batch_marks_the_quantizer_initialized_and_resets_idle_counters():
    rvq = ResidualVQ(4, 2, 8)
    rvq.unused_for.fill_(1e6)
    rvq.init_from_batch_(torch.randn(2, 4, 40))
    assert bool(rvq.initialized)
    assert torch.count_nonzero(rvq.unused_for) == 0
    copy = ResidualVQ(4, 2, 8)
    copy.load_state_dict(rvq.state_dict())
    before = copy.codebook.clone()
    copy.eval()(torch.randn(2, 4, 40))  # loaded as initialized: no k-means on first use
    assert torch.equal(copy.codebook, before)


def test_zero_kmeans_iterations_is_the_seeding_and_kmeans_samples_defaults_to_2k():
    rvq = ResidualVQ(4, 1, 8, kmeans_iters=0)
    assert rvq.kmeans_samples == 16
    x = torch.randn(1, 4, 200)
    rvq.init_from_batch_(x)
    rows = x[0].t()
    assert (rvq.codebook[0][:, None, :] == rows[None]).all(-1).any(1).all()  # data vectors


def test_training_with_a_beam_is_greedy():
    """Beam search runs in eval only; a training forward takes the greedy codes."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 40)
    beam = ResidualVQ(3, 3, 8, kmeans_init=False, beam_size=4, decay=0.999)
    greedy = ResidualVQ(3, 3, 8, kmeans_init=False, decay=0.999)
    greedy.load_state_dict(beam.state_dict())
    assert torch.equal(beam.train()(x).indices, greedy.train()(x).indices)
    assert not torch.equal(beam.eval()(x).indices, greedy.eval()(x).indices)


def test_projected_stages_code_what_the_earlier_ones_left():
    """With ``codebook_dim`` every stage codes the residual left by the ones before it: trained
    together, four stages of 32 codes in 4-d get far closer to 8-d data than one stage."""
    torch.manual_seed(0)
    x = torch.randn(4, 8, 300)
    rvq = ResidualVQ(8, 4, 32, codebook_dim=4)
    opt = torch.optim.Adam(rvq.parameters(), lr=1e-2)
    for _ in range(150):
        out = rvq(x)
        loss = (out.quantized - x).pow(2).mean() + out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    rvq.eval()
    with torch.no_grad():
        one, four = (float((rvq.decode(rvq.encode(x, n_quantizers=n)) - x).pow(2).mean())
                     for n in (1, 4))
    assert four < 0.2 and four < 0.25 * one, (one, four)


@pytest.mark.parametrize("options", [{"codebook_dim": 4}, {"codebook_dim": 4, "ema": False}])
def test_rotation_trick_with_projections_outputs_the_decoded_codes(options):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 30)
    rvq = _trained(ResidualVQ(8, 3, 16, gradient_estimator="rotation", **options), x)
    out = rvq(x)
    torch.testing.assert_close(out.quantized, rvq.decode(out.indices), rtol=1e-5, atol=1e-6)
    x_grad = x.clone().requires_grad_(True)
    rvq(x_grad).quantized.sum().backward()
    proj = [p for n, p in rvq.named_parameters() if "project" in n]
    assert proj and all(p.grad is not None and p.grad.abs().sum() > 0 for p in proj)


@pytest.mark.parametrize("rule", [{"dead_code_threshold": 0.5, "dead_code_patience": 0.0},
                                  {"dead_code_threshold": 0.0, "dead_code_patience": 0.5}])
def test_each_dead_code_rule_alone_revives(rule):
    """Codes placed far from the data are never chosen; either rule alone brings them back."""
    torch.manual_seed(0)
    rvq = ResidualVQ(2, 1, 8, kmeans_init=False, ema=False, decay=0.5, **rule)
    with torch.no_grad():
        rvq.codebook[0, 4:] = 1e3  # (4 codes no vector will choose)
    x = torch.randn(1, 2, 64)
    for _ in range(3):
        rvq(x)
    assert bool((rvq.codebook[0, 4:].abs() < 100).all())


def test_no_rule_revives_nothing():
    rvq = ResidualVQ(2, 1, 8, kmeans_init=False, ema=False, dead_code_threshold=0.0,
                     dead_code_patience=0.0)
    with torch.no_grad():
        rvq.codebook[0, 4:] = 1e3
    for _ in range(3):
        rvq(torch.randn(1, 2, 64))
    assert bool((rvq.codebook[0, 4:] == 1e3).all())


def test_reset_parameters_forgets_training():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 40)
    rvq = _trained(ResidualVQ(8, 2, 16, codebook_dim=4), x, steps=3).train()
    rvq.unused_for.fill_(7.0)
    weights = [p.detach().clone() for n, p in rvq.named_parameters() if "project" in n]
    rvq.reset_parameters()
    assert not bool(rvq.initialized)
    assert torch.count_nonzero(rvq.unused_for) == 0
    assert torch.equal(rvq.embed_sum, rvq.codebook)
    after = [p for n, p in rvq.named_parameters() if "project" in n]
    assert all(not torch.equal(a, b) for a, b in zip(weights, after, strict=True))


def test_kmeans_init_is_float32_under_autocast():
    x = 50.0 + 0.05 * torch.randn(2, 8, 200)  # bf16 distances could not tell these apart
    torch.manual_seed(1)
    plain = ResidualVQ(8, 2, 16)
    plain.init_from_batch_(x)
    torch.manual_seed(1)
    auto = ResidualVQ(8, 2, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto.init_from_batch_(x)
    assert torch.equal(auto.codebook, plain.codebook)


def test_codes_used_is_the_fraction_of_codes_chosen_in_the_batch():
    torch.manual_seed(0)
    rvq = ResidualVQ(4, 2, 16, kmeans_init=False)
    out = rvq.eval()(torch.randn(1, 4, 6))  # 6 vectors: some codes once, most never
    expected = [len(out.indices[0, k].unique()) / 16 for k in range(2)]
    torch.testing.assert_close(out.codes_used, torch.tensor(expected))


def test_codebook_usage_counts_codes_under_the_floor_as_dead():
    rvq = ResidualVQ(2, 1, 4, dead_code_threshold=0.0)  # floor: 0.01 of the uniform share
    rvq.cluster_size.copy_(torch.tensor([[1.0, 1.0, 1.0, 0.001]]))
    usage = rvq.codebook_usage()
    assert usage.dead_codes.tolist() == [1]
    rvq.cluster_size.copy_(torch.tensor([[1.0, 1.0, 1.0, 0.01]]))  # above 0.01 / 4 of 3.01
    assert rvq.codebook_usage().dead_codes.tolist() == [0]
    rvq = ResidualVQ(2, 1, 4, dead_code_threshold=0.5)  # floor: 0.5 of the uniform share
    rvq.cluster_size.copy_(torch.tensor([[1.0, 1.0, 1.0, 0.3]]))
    assert rvq.codebook_usage().dead_codes.tolist() == [1]


@pytest.mark.parametrize("train", [False, True])
def test_projected_stage_codes_the_residual_of_the_stages_before(train):
    """Stage 2 picks the code nearest to ``project_in[1](x - decode(stage 1))``."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 50)
    rvq = ResidualVQ(8, 2, 16, codebook_dim=4)
    rvq.init_from_batch_(x)
    codes = rvq.train(train)(x).indices  # (B, 2, T)
    rvq.eval()
    with torch.no_grad():
        residual = (x - rvq.decode(codes[:, :1])).transpose(1, 2)  # (B, T, D)
        ze = rvq.project_in[1](residual)  # (B, T, 4)
        expected = torch.cdist(ze, rvq.codebook[1].expand(2, -1, -1)).argmin(-1)
    assert (codes[:, 1] == expected).float().mean() > 0.98


def _quiet(**options):
    """A quantizer whose EMA usage is easy to follow: no revival, decay 0.5."""
    return ResidualVQ(4, 1, 8, decay=0.5, dead_code_threshold=0.0, dead_code_patience=0.0,
                      **options)


def test_init_from_batch_usage_is_rescaled_to_the_first_training_batch():
    rvq = _quiet()
    rvq.init_from_batch_(torch.randn(4, 4, 100))  # 400 vectors
    rvq(torch.randn(1, 4, 64))
    torch.testing.assert_close(rvq.cluster_size.sum(-1), torch.tensor([64.0]))
    rvq(torch.randn(1, 4, 32))  # once: from now on an ordinary EMA step
    torch.testing.assert_close(rvq.cluster_size.sum(-1), torch.tensor([0.5 * 64 + 0.5 * 32]))


def test_without_kmeans_the_usage_starts_uniform_and_reset_forgets_a_pending_rescale():
    rvq = _quiet(kmeans_init=False)
    rvq(torch.randn(1, 4, 64))
    torch.testing.assert_close(rvq.cluster_size.sum(-1), torch.tensor([0.5 * 8 + 0.5 * 64]))
    rvq.init_from_batch_(torch.randn(4, 4, 100))
    rvq.reset_parameters()  # the rescale the init asked for is forgotten with it
    rvq.kmeans_init = False
    rvq._needs_init = False
    rvq(torch.randn(1, 4, 64))
    torch.testing.assert_close(rvq.cluster_size.sum(-1), torch.tensor([0.5 * 8 + 0.5 * 64]))


def test_a_single_valid_vector_weighs_as_itself():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 3)
    rvq = ResidualVQ(4, 2, 8, ema=False).eval()
    mask = torch.tensor([[True, False, False]])
    alone = rvq(x[..., :1])
    masked = rvq(x, mask=mask)
    torch.testing.assert_close(masked.commitment_loss, alone.commitment_loss)
    torch.testing.assert_close(masked.codebook_loss, alone.codebook_loss)
    left = x[..., :1] - rvq.decode(alone.indices[:, :1])  # what stage 2 is given
    torch.testing.assert_close(alone.commitment_loss[0], left.pow(2).mean())


def test_rotation_trick_sends_projections_the_straight_through_gradient():
    """Only the value path to the input is rotated; the projections learn from the sum of
    codes as with the plain estimator."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 30)
    ste = _trained(ResidualVQ(8, 3, 16, codebook_dim=4), x).train()
    rot = ResidualVQ(8, 3, 16, codebook_dim=4, gradient_estimator="rotation").train()
    rot.load_state_dict(ste.state_dict())
    g = torch.randn(2, 8, 30)
    grads = []
    for rvq in (ste, rot):
        rvq.decay = 1.0 - 1e-9  # (keep the codes fixed between the two)
        out = rvq(x)
        params = [p for n, p in rvq.named_parameters() if "project_out" in n]
        grads.append(torch.autograd.grad((out.quantized * g).sum(), params))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_commitment_loss_sends_no_gradient_to_the_output_projections():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 30, requires_grad=True)
    rvq = _trained(ResidualVQ(8, 3, 16, codebook_dim=4), x.detach()).train()
    out = rvq(x)
    params = [p for n, p in rvq.named_parameters() if "project_out" in n]
    grads = torch.autograd.grad(out.commitment_loss.sum(), params, allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_the_kmeans_pool_holds_no_autograd_graph():
    """Latents gathered over the first batches are detached: the pool must not keep every
    batch's graph (and its activations) alive until the init commits."""
    rvq = ResidualVQ(4, 2, 64, kmeans_samples=10_000)
    x = torch.randn(1, 4, 50, requires_grad=True)
    rvq(x * 2.0)
    assert rvq._pool and not any(p.requires_grad for p in rvq._pool)


def test_a_loaded_uninitialised_state_starts_gathering_with_a_provisional_init():
    source = ResidualVQ(8, 2, 64, kmeans_samples=1000)
    rvq = ResidualVQ(8, 2, 64, kmeans_samples=1000)
    rvq.load_state_dict(source.state_dict())  # not initialised yet
    x = 100.0 * torch.randn(1, 8, 50)  # far from the unit-variance random codes
    rvq(x)
    # fitted to the data (norms ~ 100 sqrt(8)), not left at the random unit-variance codes
    assert float(rvq.codebook[0].norm(dim=1).median()) > 50.0


def test_one_valid_vector_is_enough_for_an_ema_step():
    rvq = ResidualVQ(4, 1, 8, kmeans_init=False, dead_code_threshold=0.0, dead_code_patience=0.0)
    before = rvq.cluster_size.clone()
    mask = torch.tensor([[True, False, False]])
    rvq(torch.randn(1, 4, 3), mask=mask)
    assert not torch.equal(rvq.cluster_size, before)
    torch.testing.assert_close(rvq.cluster_size.sum(), 0.99 * before.sum() + 0.01 * 1.0)


def test_a_first_batch_of_one_valid_vector_gets_a_provisional_init():
    rvq = ResidualVQ(4, 1, 8, kmeans_samples=100, dead_code_threshold=0.0,
                     dead_code_patience=0.0)
    x = 100.0 * torch.randn(1, 4, 3)
    rvq(x, mask=torch.tensor([[False, True, False]]))
    # a code starts at that vector (norm ~ 200), not at a random unit-variance code
    assert float(rvq.codebook[0].norm(dim=1).max()) > 0.5 * float(x[0, :, 1].norm())
