"""rvq_blocks.testing: the checks users run on their own assemblies, and that they catch bugs."""

import pytest
import torch
from torch import nn

from rvq_blocks import ResidualVQ
from rvq_blocks.testing import (
    check_codebook_gradients,
    check_commitment_gradients,
    check_gradients,
    check_straight_through,
)


class _Codec(nn.Module):
    def __init__(self, rvq: ResidualVQ):
        super().__init__()
        self.enc = nn.Conv1d(1, rvq.dim, 3, padding=1)
        self.rvq = rvq
        self.dec = nn.Conv1d(rvq.dim, 1, 3, padding=1)

    def forward(self, x):
        out = self.rvq(self.enc(x))
        return self.dec(out.quantized), out.loss


class _BadGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 3  # wrong on purpose


class _SummedSTE(ResidualVQ):
    """The original run's bug: a straight-through estimator per stage, summed."""

    def forward(self, x, mask=None, n_quantizers=None):
        out = super().forward(x, mask, n_quantizers)
        q = out.quantized
        return out._replace(quantized=q + (self.num_quantizers - 1) * (x - x.detach()))


@pytest.mark.gradcheck
@pytest.mark.parametrize("options", [{}, {"ema": False}, {"codebook_dim": 2, "use_cosine": True}])
def test_check_gradients_passes_on_a_correct_codec(options):
    model = _Codec(ResidualVQ(4, 3, 8, **options))
    model.rvq(torch.randn(2, 4, 60))
    results = check_gradients(model, torch.randn(1, 1, 10))
    assert [r.name for r in results] == ["rvq: straight-through", "rvq: commitment",
                                         "gradcheck (quantizers linearised)"]
    assert all(r.passed for r in results), results


@pytest.mark.gradcheck
def test_check_gradients_catches_a_wrong_backward():
    class Broken(_Codec):
        def forward(self, x):
            y, loss = super().forward(x)
            return _BadGrad.apply(y), loss

    results = check_gradients(Broken(ResidualVQ(4, 2, 8)), torch.randn(1, 1, 6))
    assert results[-1].name.startswith("gradcheck") and not results[-1].passed


@pytest.mark.gradcheck
def test_check_straight_through_catches_the_summed_estimator():
    bad = _SummedSTE(4, 3, 8)
    result = check_straight_through(bad, torch.randn(1, 4, 5))
    assert not result.passed
    assert check_straight_through(ResidualVQ(4, 3, 8), torch.randn(1, 4, 5)).passed


@pytest.mark.gradcheck
def test_stage_checks_report_per_stage_figures():
    rvq = ResidualVQ(4, 3, 8, ema=False)
    x = torch.randn(2, 4, 40)
    rvq(x)
    commit = check_commitment_gradients(rvq, x)
    assert commit.passed and commit.detail.count(",") == 2
    assert check_codebook_gradients(rvq, x).passed


def test_check_gradients_leaves_the_model_untouched():
    model = _Codec(ResidualVQ(4, 2, 8))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_gradients(model, torch.randn(1, 1, 6))
    assert model.training and model.rvq._forced_indices is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
