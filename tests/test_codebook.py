"""Codebook maintenance (``rvq_blocks._codebook``): each function on hand-made state."""

import torch

from rvq_blocks import _codebook as cb


# --------------------------------------------------------------------------- fit_stage
def test_fit_stage_with_enough_vectors_fits_every_code_by_kmeans():
    """Eight vectors per code (the documented ``N // 8``): all ``K`` codes come from k-means
    (with no Lloyd iteration, its seeding: distinct data vectors), none is a split."""
    torch.manual_seed(0)
    data = torch.randn(8 * 8, 3)
    codes = cb.fit_stage(data, 8, iters=0, cosine=False)
    matches = (codes[:, None, :] == data[None]).all(-1)  # (K, N)
    assert matches.any(1).all() and len(set(matches.int().argmax(1).tolist())) == 8
    codes = cb.fit_stage(data[:-1], 8, iters=0, cosine=False)  # one vector short: one split
    assert int((codes[:, None, :] == data[None]).all(-1).any(1).sum()) == 7


def test_fit_stage_with_few_vectors_splits_fitted_codes_toward_the_data():
    torch.manual_seed(0)
    data = torch.randn(8 * 2, 3)  # room for 2 fitted codes of 16
    codes = cb.fit_stage(data, 16, iters=5, cosine=False)
    assert codes.shape == (16, 3)
    fitted, splits = codes[:2], codes[2:]
    # every split lies a fifth of the way (docs/residual_vq.md) from a fitted code to a vector
    for s in splits:
        ok = [(s - f) / 0.2 + f for f in fitted]
        assert any(torch.isclose(data, o, atol=1e-5).all(1).any() for o in ok)


# --------------------------------------------------------------------------- EMA state
def test_set_usage_scales_the_shares_to_the_total_and_matches_the_sums():
    size = torch.zeros(1, 4)
    embed_sum = torch.zeros(1, 4, 2)
    codebook = torch.arange(8.0).reshape(1, 4, 2)
    cb.set_usage_(size, embed_sum, codebook, torch.tensor([[3.0, 1.0, 0.0, 0.0]]), 8.0)
    assert torch.equal(size, torch.tensor([[6.0, 2.0, 0.0, 0.0]]))
    assert torch.equal(embed_sum, codebook * size[..., None])


def test_ema_update_is_the_decayed_mean_with_laplace_smoothing():
    size = torch.tensor([[4.0, 0.0]])
    embed_sum = torch.tensor([[[8.0], [0.0]]])
    codebook = torch.tensor([[[2.0], [5.0]]])
    counts, sums = torch.tensor([[2.0, 2.0]]), torch.tensor([[[2.0], [6.0]]])
    cb.ema_update_(size, embed_sum, codebook, counts, sums, torch.tensor(0.75), eps=0.5)
    assert torch.equal(size, torch.tensor([[3.5, 0.5]]))  # 0.75 * old + 0.25 * new
    assert torch.equal(embed_sum, torch.tensor([[[6.5], [1.5]]]))
    smoothed = (size + 0.5) / (4.0 + 2 * 0.5) * 4.0  # total 4, K = 2
    torch.testing.assert_close(codebook, embed_sum / smoothed[..., None])


def test_ema_update_with_keep_one_changes_nothing_and_learned_codes_keep_their_values():
    size, codebook = torch.tensor([[1.0, 3.0]]), torch.tensor([[[1.0], [2.0]]])
    cb.ema_update_(size, None, codebook, torch.tensor([[5.0, 0.0]]), None, torch.tensor(1.0), 1e-5)
    assert torch.equal(size, torch.tensor([[1.0, 3.0]]))
    assert torch.equal(codebook, torch.tensor([[[1.0], [2.0]]]))


def test_age_counts_coded_vectors_since_last_use():
    idle = torch.tensor([[0.0, 5.0, 7.0]])
    cb.age_(idle, torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor(3))
    assert torch.equal(idle, torch.tensor([[0.0, 8.0, 0.0]]))


# --------------------------------------------------------------------------- dead codes
def _state():
    size = torch.tensor([[6.0, 1.0, 1.0, 0.0]])  # shares 0.75, 0.125, 0.125, 0
    idle = torch.tensor([[0.0, 8.0, 16.0, 100.0]])
    return size, idle


def test_dead_by_patience_counts_idle_vectors_at_the_code_share():
    size, idle = _state()
    has = torch.ones(1, 1, dtype=torch.bool)
    # idle * share: 0, 1, 2, 0 -> dead where >= patience
    assert cb.dead_codes(size, idle, 0.0, 2.0, has).tolist() == [[False, False, True, False]]
    assert cb.dead_codes(size, idle, 0.0, 1.0, has).tolist() == [[False, True, True, False]]
    assert cb.dead_codes(size, idle, 0.0, 0.5, has).tolist() == [[False, True, True, False]]


def test_dead_by_threshold_compares_with_the_uniform_share():
    size, idle = _state()  # mean 2: codes under threshold * 2 are dead
    has = torch.ones(1, 1, dtype=torch.bool)
    assert cb.dead_codes(size, idle, 0.5, 0.0, has).tolist() == [[False, False, False, True]]
    assert cb.dead_codes(size, idle, 0.6, 0.0, has).tolist() == [[False, True, True, True]]


def test_no_rule_and_no_data_revive_nothing():
    size, idle = _state()
    has = torch.ones(1, 1, dtype=torch.bool)
    assert not cb.dead_codes(size, idle, 0.0, 0.0, has).any()
    assert not cb.dead_codes(size, idle, 0.9, 0.5, torch.zeros(1, 1, dtype=torch.bool)).any()


def test_revive_splits_a_batch_code_toward_a_batch_vector_and_resets_its_state():
    torch.manual_seed(0)
    codebook = torch.tensor([[[0.0, 0.0], [10.0, 10.0], [50.0, 50.0]]])
    size = torch.tensor([[5.0, 1.0, 0.0]])
    embed_sum = codebook * size[..., None]
    idle = torch.tensor([[0.0, 3.0, 9.0]])
    dead = torch.tensor([[False, False, True]])
    inputs = [torch.tensor([[1.0, 1.0], [2.0, 2.0]])]  # both coded by code 0
    indices = [torch.tensor([0, 0])]
    cb.revive_(codebook, size, embed_sum, idle, dead, inputs, indices, torch.ones(2))
    fresh = codebook[0, 2]
    # a copy of code 0 moved a fifth of the way toward one of the batch vectors
    assert any(torch.allclose(fresh, 0.2 * v) for v in inputs[0])
    assert torch.equal(codebook[0, :2], torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    mean = 2.0
    assert torch.equal(size, torch.tensor([[5.0, 1.0, mean]]))
    assert torch.equal(idle, torch.tensor([[0.0, 3.0, 0.0]]))
    assert torch.equal(embed_sum[0, 2], fresh * mean)
    assert torch.equal(embed_sum[0, :2], torch.tensor([[0.0, 0.0], [10.0, 10.0]]))


def test_revive_never_draws_masked_vectors():
    codebook = torch.zeros(1, 3, 2)
    before = codebook.clone()
    size, idle = torch.ones(1, 3), torch.full((1, 3), 5.0)
    dead = torch.ones(1, 3, dtype=torch.bool)
    inputs, indices = [torch.full((4, 2), 7.0)], [torch.zeros(4, dtype=torch.long)]
    cb.revive_(codebook, size, None, idle, dead, inputs, indices, torch.zeros(4))
    assert torch.equal(codebook, before)  # every drawn vector is masked: wait for a later step
    assert torch.equal(idle, torch.full((1, 3), 5.0))


def test_revive_draws_both_the_target_and_the_donor_from_valid_vectors():
    torch.manual_seed(0)
    codebook = torch.zeros(1, 64, 2)
    codebook[0, 1] = 100.0  # the code of the masked vector: never a donor
    size, idle = torch.ones(1, 64), torch.zeros(1, 64)
    dead = torch.ones(1, 64, dtype=torch.bool)
    dead[0, :2] = False
    inputs = [torch.tensor([[1.0, 1.0], [7.0, 7.0]])]  # row 1 is masked: never a target
    indices = [torch.tensor([0, 1])]
    cb.revive_(codebook, size, None, idle, dead, inputs, indices, torch.tensor([1.0, 0.0]))
    revived = codebook[0, 2:][(codebook[0, 2:] != 0).any(1)]
    assert len(revived) > 0  # about a quarter of the draws are both valid
    torch.testing.assert_close(revived, torch.full_like(revived, 0.2))
