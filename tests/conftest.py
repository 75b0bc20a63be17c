"""Fixtures and option lists shared by the test files."""

from __future__ import annotations

import pytest
import torch

# ResidualVQ option sets that change its code paths (each tested on ResidualVQ(8, 3, 16))
RVQ_OPTIONS = [
    {},
    {"ema": False},
    {"codebook_dim": 4},
    {"use_cosine": True},
    {"gradient_estimator": "rotation"},
    {"beam_size": 2},
    {"joint_refine": True},
    {"channel_last": True},
]


def option_id(options: dict) -> str:
    """A readable pytest id for a dict of options."""
    return ",".join(map(str, options)) or "default"


def rvq_input(rvq, t: int = 30) -> torch.Tensor:
    """A random latent batch of 2 for ``rvq``, in its layout and dtype."""
    x = torch.randn(2, rvq.dim, t, dtype=rvq.codebook.dtype)
    return x.transpose(1, 2) if rvq.channel_last else x


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
