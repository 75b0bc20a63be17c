"""Write the 0.1.0 state_dict fixtures used by tests/test_state_dict.py.

These files pin the state_dict layout released in rvq_blocks 0.1.0 (``ResidualVQ`` and
``LossBalancer`` at ``_version = 1``). They were written once, by the 0.1.0 code, with::

    OMP_NUM_THREADS=1 python tests/data/make_fixtures.py

Do not regenerate them with a newer version: their point is to be old. Each file holds the
state_dict, the probe input and the outputs the 0.1.0 code gave on it.
"""

from __future__ import annotations

from pathlib import Path

import torch

import rvq_blocks
from rvq_blocks import LossBalancer, ResidualVQ

HERE = Path(__file__).parent


def make_rvq() -> dict:
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=8, num_quantizers=2, codebook_size=16)
    rvq.train()
    for _ in range(3):
        rvq(torch.randn(2, 8, 32))
    rvq.eval()
    probe = torch.randn(2, 8, 12)
    out = rvq(probe)
    return {"version": rvq_blocks.__version__, "state_dict": rvq.state_dict(), "probe": probe,
            "quantized": out.quantized, "indices": out.indices}


def make_balancer() -> dict:
    torch.manual_seed(0)
    bal = LossBalancer({"a": 1.0, "b": 3.0})
    for _ in range(3):
        y = torch.randn(2, 1, 16, requires_grad=True)
        bal.backward({"a": y.abs().mean(), "b": 10 * y.square().mean()}, y)
    return {"version": rvq_blocks.__version__, "state_dict": bal.state_dict(),
            "ema_norms": bal.ema_norms.clone()}


if __name__ == "__main__":
    torch.save(make_rvq(), HERE / "rvq_0.1.0.pt")
    torch.save(make_balancer(), HERE / "balancer_0.1.0.pt")
