"""state_dict: strict round trips for every block, the layout versions, and the 0.1.0 files.

``tests/data/*_0.1.0.pt`` were written by the 0.1.0 code (``tests/data/make_fixtures.py``):
they must keep loading, strictly, and give the outputs they gave then.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import RVQ_OPTIONS, option_id, rvq_input

from rvq_blocks import (
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    ResidualVQ,
    RMSScaleLoss,
    ScaledTanhHead,
)

DATA = Path(__file__).parent / "data"

RVQ_STATE_OPTIONS = [
    *RVQ_OPTIONS,
    {"codebook_dim": 4, "ema": False},
    {"beam_size": 3},
    {"quantizer_dropout": 0.5, "sync": False},
    {"kmeans_init": False, "dead_code_threshold": 0.0, "dead_code_patience": 0.0},
    {"dtype": torch.float64},
]


@pytest.mark.parametrize("options", RVQ_STATE_OPTIONS, ids=option_id)
def test_residual_vq_strict_round_trip(options):
    a = ResidualVQ(8, 3, 16, **options)
    x = rvq_input(a)
    for _ in range(3):
        a(x)
    state = a.state_dict()
    assert state._metadata[""]["version"] == ResidualVQ._version == 2
    b = ResidualVQ(8, 3, 16, **options)
    b.load_state_dict(state, strict=True)
    for k, v in b.state_dict().items():
        assert torch.equal(v, state[k]), k
    a.eval()
    b.eval()
    out_a, out_b = a(x), b(x)
    assert torch.equal(out_a.indices, out_b.indices)
    assert torch.equal(out_a.quantized, out_b.quantized)
    b.train()  # a loaded, initialised quantizer does not run k-means again
    b.init_from_batch_ = None  # calling it would raise TypeError
    b(x)


def test_residual_vq_0_1_0_file_loads_strictly_with_the_same_outputs():
    saved = torch.load(DATA / "rvq_0.1.0.pt")
    assert saved["version"] == "0.1.0"
    rvq = ResidualVQ(dim=8, num_quantizers=2, codebook_size=16)
    rvq.load_state_dict(saved["state_dict"], strict=True)
    rvq.eval()
    out = rvq(saved["probe"])
    assert torch.equal(out.indices, saved["indices"])
    assert torch.equal(out.quantized, saved["quantized"])


def test_balancer_0_1_0_file_loads_strictly():
    saved = torch.load(DATA / "balancer_0.1.0.pt")
    bal = LossBalancer({"a": 1.0, "b": 3.0})
    bal.load_state_dict(saved["state_dict"], strict=True)
    assert torch.equal(bal.ema_norms, saved["ema_norms"])


def test_unversioned_entries_load_as_version_1():
    saved = torch.load(DATA / "rvq_0.1.0.pt")["state_dict"]
    plain = dict(saved)  # a plain dict has no _metadata: what hand-made checkpoints look like
    rvq = ResidualVQ(dim=8, num_quantizers=2, codebook_size=16)
    rvq.load_state_dict(plain, strict=True)
    assert torch.equal(rvq.codebook, saved["codebook"])


@pytest.mark.parametrize("make", [
    lambda: ResidualVQ(8, 2, 16),
    lambda: LossBalancer({"a": 1.0}),
    lambda: ScaledTanhHead(channels=2),
])
def test_newer_layout_is_refused_with_a_clear_message(make):
    module = make()
    state = module.state_dict()
    state._metadata[""]["version"] = 99
    with pytest.raises(RuntimeError, match=r"layout version 99 is newer than the [12] "):
        make().load_state_dict(state)


def test_nested_versions_are_read_per_module():
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 8, 3), ResidualVQ(8, 2, 16))
    model(torch.randn(2, 1, 20))
    state = model.state_dict()
    assert state._metadata["1"]["version"] == ResidualVQ._version
    copy = torch.nn.Sequential(torch.nn.Conv1d(1, 8, 3), ResidualVQ(8, 2, 16))
    copy.load_state_dict(state, strict=True)
    state._metadata["1"]["version"] = 5
    with pytest.raises(RuntimeError, match="ResidualVQ at '1.'"):
        copy.load_state_dict(state)


@pytest.mark.parametrize("options", [
    {}, {"channels": 2}, {"parametrization": "exp", "init_scale": 2.0},
    {"parametrization": "softplus", "channels": 2}, {"learnable": False, "init_scale": 3.0},
])
def test_scaled_tanh_strict_round_trip(options):
    a = ScaledTanhHead(**options)
    with torch.no_grad():
        a.raw_scale.add_(0.25)
    b = ScaledTanhHead(**options)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 2, 50)
    assert torch.equal(a(x), b(x))
    assert a.state_dict()._metadata[""]["version"] == 1


@pytest.mark.parametrize("options", [{}, {"balance_grads": False}, {"nonfinite": "skip"}])
def test_balancer_strict_round_trip(options):
    a = LossBalancer({"a": 1.0, "b": 2.0}, **options)
    for _ in range(2):
        y = torch.randn(2, 1, 16, requires_grad=True)
        a.backward({"a": y.abs().mean(), "b": y.square().mean()}, y)
    b = LossBalancer({"a": 1.0, "b": 2.0}, **options)
    b.load_state_dict(a.state_dict(), strict=True)
    for k, v in a.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b.state_dict()[k]), k
    with pytest.raises(ValueError, match=r"holds losses \['a', 'b'\].*has \['a', 'c'\]"):
        LossBalancer({"a": 1.0, "c": 2.0}).load_state_dict(a.state_dict())


@pytest.mark.parametrize("make", [
    lambda: MultiResolutionSTFTLoss(fft_sizes=(16, 32)),
    lambda: MultiScaleMelLoss(16000, window_lengths=(32, 64), n_mels=(8, 16)),
    lambda: RMSScaleLoss(),
])
def test_losses_have_no_persistent_state(make):
    a = make()
    assert len(a.state_dict()) == 0  # windows and filterbanks are derived, not saved
    b = make()
    b.load_state_dict(a.state_dict(), strict=True)
    x, y = torch.randn(2, 1, 200), torch.randn(2, 1, 200)
    assert torch.equal(a(x, y), b(x, y))
