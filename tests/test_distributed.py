"""ResidualVQ and LossBalancer under torch.distributed: real processes, gloo backend, CPU.

Each run spawns ``world`` processes once and plays several scenarios in the same process
group (process start-up dominates the cost); each rank saves what it saw, and the test
process compares ranks with each other and with one process on the concatenated batch.
A hang fails the test after a timeout instead of blocking the suite.
"""

from __future__ import annotations

import datetime
import inspect
import os
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from rvq_blocks import LossBalancer, ResidualVQ

PER_RANK = 2  # batch items per rank
STEPS = 6
TIMEOUT = datetime.timedelta(seconds=60)


class Tiny(nn.Module):
    """Encoder, quantizer, decoder: the smallest model with every part DDP has to sync."""

    def __init__(self, **rvq_options) -> None:
        super().__init__()
        self.enc = nn.Conv1d(1, 8, 4, stride=4)
        options = {"dead_code_threshold": 0.0, "dead_code_patience": 0.0, **rvq_options}
        self.rvq = ResidualVQ(8, 2, 16, **options)
        self.dec = nn.ConvTranspose1d(8, 1, 4, stride=4)

    def forward(self, x, mask=None):
        out = self.rvq(self.enc(x), mask=mask)
        return self.dec(out.quantized), out


def full_batch(step: int, world: int) -> torch.Tensor:
    """The step's batch of all ranks together, ``(world * PER_RANK, 1, 64)``."""
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(world * PER_RANK, 1, 64, generator=g)


def train(model: nn.Module, batches: list[torch.Tensor]) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for x in batches:
        y, out = model(x)
        loss = F.mse_loss(y, x) + out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()
            if isinstance(v, torch.Tensor)}


def ddp(module: nn.Module, **options) -> DDP:
    """DDP that does not broadcast buffers in forward: only ResidualVQ's own sync keeps the
    codebooks equal (``broadcast_buffers`` is deprecated in newer torch)."""
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(module, forward_sync_buffers=False, **options)
    return DDP(module, broadcast_buffers=False, **options)


# --------------------------------------------------------------------------- scenarios (per rank)
def scenario_ddp(rank: int, world: int, sync: bool | None = None) -> dict:
    torch.manual_seed(0)  # the same on every rank and in the reference process
    model = ddp(Tiny(sync=sync))
    batches = [full_batch(s, world)[rank * PER_RANK:(rank + 1) * PER_RANK]
               for s in range(STEPS)]
    losses = train(model, batches)
    return {"state": snapshot(model.module), "losses": losses}


def scenario_options(rank: int, world: int) -> dict:
    """Learned codebooks, projections, dropout and revival: ranks must still agree."""
    torch.manual_seed(rank)  # different global RNG per rank: shared draws must not rely on it
    model = ddp(Tiny(ema=False, codebook_dim=4, quantizer_dropout=0.5, dead_code_threshold=0.5,
                     use_cosine=True), find_unused_parameters=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    stages = []
    for s in range(STEPS):
        x = full_batch(s, world)[rank * PER_RANK:(rank + 1) * PER_RANK] + rank
        y, out = model(x)
        (F.mse_loss(y, x) + out.loss).backward()
        opt.step()
        opt.zero_grad()
        stages.append(out.indices.shape[1])
    return {"state": snapshot(model.module), "stages": stages}


def revival_batch(step: int, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s share of the revival scenario's step: each rank's data lie elsewhere."""
    g = torch.Generator().manual_seed(step * world + rank)
    return torch.randn(2, 8, 24, generator=g) * (1 + rank) + 3 * rank


def revival_run(batches, calls: list[int] | None = None) -> dict:
    """A high threshold: codes die and are revived, from the global batch."""
    rvq = ResidualVQ(8, 2, 32, dead_code_threshold=0.9)
    revive = rvq._revive
    if calls is not None:
        rvq._revive = lambda *a: (calls.append(1), revive(*a))
    for x in batches:
        rvq(x)
    return {"state": snapshot(rvq), "revivals": len(calls or [])}


def scenario_revival(rank: int, world: int) -> dict:
    torch.manual_seed(rank)  # rank 0 draws as the one-process reference does
    return revival_run([revival_batch(s, rank, world) for s in range(STEPS)], calls=[])


def scenario_padding(rank: int, world: int) -> dict:
    """The last rank's batch is all padding at the init step, then all NaN: no hang, and
    every rank ends with the same finite state."""
    torch.manual_seed(rank)
    rvq = ResidualVQ(8, 2, 16, dead_code_threshold=0.5, quantizer_dropout=0.3)
    last = rank == world - 1
    for s in range(4):
        g = torch.Generator().manual_seed(10 * s + rank)
        x = torch.randn(2, 8, 12, generator=g)
        mask = torch.zeros(2, 12, dtype=torch.bool) if last and s in (0, 2) else None
        if last and s == 1:
            x = torch.full_like(x, float("nan"))
        rvq(x, mask=mask)
    # No rank has data: training waits for data to initialise (no error, no hang);
    # init_from_batch_ raises on every rank, none hangs.
    empty = ResidualVQ(8, 2, 16)
    empty(torch.randn(1, 8, 4), mask=torch.zeros(1, 4))
    waiting = not bool(empty.initialized)
    try:
        empty.init_from_batch_(torch.randn(1, 8, 4), mask=torch.zeros(1, 4))
        raised = ""
    except ValueError as err:
        raised = str(err)
    return {"state": snapshot(rvq), "raised": raised, "waiting": waiting}


def scenario_balancer(rank: int, world: int) -> dict:
    balancer = LossBalancer({"a": 1.0, "b": 2.0}, ema_decay=0.5)
    local = []
    for s in range(3):
        g = torch.Generator().manual_seed(1000 * s + rank)
        y = (torch.randn(2, 1, 16, generator=g) * (1 + rank)).requires_grad_(True)
        losses = {"a": (y - 1).abs().mean(), "b": 10 * y.square().mean()}
        grads = [torch.autograd.grad(v, y, retain_graph=True)[0] for v in losses.values()]
        local.append(torch.stack([gr.flatten(1).norm(dim=1).mean() for gr in grads]))
        balancer.backward(losses, y)
    # a NaN on the last rank only: every rank skips that step (none waits alone in a
    # collective at the next one) and the EMA stays equal; with "raise" every rank raises
    skipper = LossBalancer({"a": 1.0, "b": 2.0}, nonfinite="skip")
    raiser = LossBalancer({"a": 1.0, "b": 2.0})
    raised = []
    for s in range(3):
        y = torch.randn(2, 1, 16, generator=torch.Generator().manual_seed(s)).requires_grad_(True)
        bad = float("nan") if s == 1 and rank == world - 1 else 1.0
        for bal in (skipper, raiser):
            try:
                bal.backward({"a": y.abs().mean() * bad, "b": y.square().mean()}, y)
            except FloatingPointError as err:
                raised.append((s, str(err)))
    return {"ema": balancer.ema_norms.clone(), "state": snapshot(balancer),
            "local": torch.stack(local), "skipper": snapshot(skipper), "raised": raised}


def _balanced_grads(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    balancer = LossBalancer({"a": 1.0, "b": 3.0})
    y = model(x)
    weight = model.module.weight if hasattr(model, "module") else model.weight
    balancer.backward({"a": (y - 1).abs().mean(), "b": y.square().mean()}, y,
                      unbalanced={"u": weight.square().mean()})
    return [p.grad.clone() for p in model.parameters()]


def balancer_batch(world: int) -> torch.Tensor:
    return torch.randn(2 * world, 4, generator=torch.Generator().manual_seed(7)) * \
        torch.arange(1, 2 * world + 1)[:, None]


def scenario_balancer_ddp(rank: int, world: int) -> dict:
    """DDP over the balanced gradient: the parameter gradients one process would get."""
    torch.manual_seed(0)
    model = DDP(torch.nn.Linear(4, 3))
    return {"grads": _balanced_grads(model,
                                     balancer_batch(world)[2 * rank: 2 * rank + 2])}


def scenario_compiled(rank: int, world: int) -> dict:
    """torch.compile in distributed training: the collectives run eagerly at graph breaks."""
    torch._dynamo.reset()
    torch.manual_seed(rank)
    rvq = ResidualVQ(8, 2, 16, dead_code_threshold=0.5, quantizer_dropout=0.5)
    compiled = torch.compile(rvq, backend="eager")
    for s in range(4):
        g = torch.Generator().manual_seed(10 * s + rank)
        compiled(torch.randn(2, 8, 12, generator=g))
    warm = ResidualVQ(8, 2, 16, dead_code_threshold=0.5)
    for _ in range(2):  # 48 >= kmeans_samples = 32 vectors: the k-means init has committed
        warm(torch.randn(2, 8, 12))
    assert bool(warm.initialized)  # count the steady-state breaks, on a step that revives
    with torch.no_grad():  # nothing: uniform usage, no idle code (a revival adds a broadcast)
        warm.cluster_size.fill_(1.0)
        warm.unused_for.zero_()
    breaks = torch._dynamo.explain(warm)(torch.randn(2, 8, 12)).graph_break_count
    return {"state": snapshot(rvq), "breaks": breaks}


SCENARIOS = {
    "compiled": scenario_compiled,
    "ddp": scenario_ddp,
    "ddp_nosync": lambda rank, world: scenario_ddp(rank, world, sync=False),
    "options": scenario_options,
    "revival": scenario_revival,
    "padding": scenario_padding,
    "balancer": scenario_balancer,
    "balancer_ddp": scenario_balancer_ddp,
}


def _worker(rank: int, world: int, init_file: str, out_dir: str, names: list[str]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=TIMEOUT)
    try:
        result = {name: SCENARIOS[name](rank, world) for name in names}
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_world(world: int, names: list[str], tmp_path: Path) -> list[dict]:
    """Spawn ``world`` ranks, play ``names``, return each rank's results; fail on a hang."""
    ctx = mp.start_processes(_worker, args=(world, str(tmp_path / "store"), str(tmp_path),
                                            names), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 2 * TIMEOUT.total_seconds()
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"{world} ranks still running after {2 * TIMEOUT}: a hang")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    return run_world(2, list(SCENARIOS), tmp_path_factory.mktemp("world2"))


@pytest.fixture(scope="module")
def four_ranks(tmp_path_factory) -> list[dict]:
    return run_world(4, ["ddp", "padding", "balancer", "balancer_ddp"],
                     tmp_path_factory.mktemp("world4"))


def _assert_identical(results: list[dict], scenario: str) -> None:
    ref = results[0][scenario]["state"]
    for r, res in enumerate(results[1:], start=1):
        state = res[scenario]["state"]
        assert state.keys() == ref.keys()
        for k in ref:
            assert torch.equal(state[k], ref[k]), f"{scenario}: rank {r} differs in {k}"


def _single_process_reference(world: int) -> dict:
    torch.manual_seed(0)
    model = Tiny()
    losses = train(model, [full_batch(s, world) for s in range(STEPS)])
    return {"state": snapshot(model), "losses": losses}


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("world", [2, 4])
def test_ddp_ranks_hold_identical_codebooks_equal_to_one_process(world, request):
    results = request.getfixturevalue({2: "two_ranks", 4: "four_ranks"}[world])
    _assert_identical(results, "ddp")
    ref = _single_process_reference(world)
    state = results[0]["ddp"]["state"]
    assert bool(state["rvq.initialized"])
    for k, v in ref["state"].items():
        # k-means init runs on the gathered rows in rank order: the concatenated batch, same RNG
        torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6, msg=k)
    # every rank has the same batch size, so the mean of the rank losses is the batch loss
    mean_losses = torch.tensor([r["ddp"]["losses"] for r in results]).mean(0)
    torch.testing.assert_close(mean_losses, torch.tensor(ref["losses"]), rtol=1e-4, atol=1e-5)


def test_without_sync_ranks_drift_apart(two_ranks):
    a, b = (r["ddp_nosync"]["state"] for r in two_ranks)
    assert not torch.equal(a["rvq.embed_sum"], b["rvq.embed_sum"])
    assert torch.equal(a["enc.weight"], b["enc.weight"])  # DDP itself still syncs gradients


def test_learned_codebooks_projections_dropout_and_revival_stay_identical(two_ranks):
    _assert_identical(two_ranks, "options")
    stages = [r["options"]["stages"] for r in two_ranks]
    assert stages[0] == stages[1]  # one quantizer-dropout draw for all ranks


def test_compiled_quantizer_stays_in_sync(two_ranks):
    _assert_identical(two_ranks, "compiled")
    # at the all_reduce and at the revival decision, each counted once per nested frame
    assert two_ranks[0]["compiled"]["breaks"] == 6


def test_revival_is_decided_once_and_draws_from_the_global_batch(two_ranks):
    _assert_identical(two_ranks, "revival")
    # codes did die, and every rank took part in each revival (the batch gather) on one step
    assert two_ranks[0]["revival"]["revivals"] == two_ranks[1]["revival"]["revivals"] > 0
    torch.manual_seed(0)
    ref = revival_run([torch.cat([revival_batch(s, r, 2) for r in range(2)])
                       for s in range(STEPS)])
    for k, v in ref["state"].items():  # the codes one process revives on the whole batch
        torch.testing.assert_close(two_ranks[0]["revival"]["state"][k], v, rtol=1e-5,
                                   atol=1e-5, msg=k)


@pytest.mark.parametrize("world", [2, 4])
def test_all_padding_or_nan_rank_takes_part_without_hanging(world, request):
    results = request.getfixturevalue({2: "two_ranks", 4: "four_ranks"}[world])
    _assert_identical(results, "padding")
    for k, v in results[0]["padding"]["state"].items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    for r in results:
        assert r["padding"]["waiting"]
        assert "on some rank, got none" in r["padding"]["raised"]


@pytest.mark.parametrize("world", [2, 4])
def test_balancer_ema_is_the_mean_over_ranks(world, request):
    results = request.getfixturevalue({2: "two_ranks", 4: "four_ranks"}[world])
    _assert_identical(results, "balancer")
    mean_local = torch.stack([r["balancer"]["local"] for r in results]).mean(0)  # (steps, L)
    num, den = torch.zeros(2), 0.0
    for norms in mean_local:
        num, den = 0.5 * num + norms, 0.5 * den + 1.0
    torch.testing.assert_close(results[0]["balancer"]["ema"], num / den)
    assert not torch.allclose(results[0]["balancer"]["local"][0], mean_local[0])
    for r, res in enumerate(results):
        assert int(res["balancer"]["skipper"]["num_skipped"]) == 1
        for k, v in results[0]["balancer"]["skipper"].items():
            assert torch.equal(res["balancer"]["skipper"][k], v), (r, k)
        (step, msg), = res["balancer"]["raised"]
        assert step == 1
        assert ("loss a;" if r == world - 1 else "loss on another rank;") in msg


def test_sync_option_in_one_process():
    x = torch.randn(2, 8, 12)
    auto, off = ResidualVQ(8, 2, 16), ResidualVQ(8, 2, 16, sync=False)
    off.load_state_dict(auto.state_dict())
    torch.manual_seed(0)
    a = auto(x)
    torch.manual_seed(0)
    b = off(x)
    assert torch.equal(a.indices, b.indices)  # no process group: auto is plain training
    strict = ResidualVQ(8, 2, 16, sync=True)
    with pytest.raises(ValueError, match="sync=True, which needs an initialised"):
        strict(x)
    assert not bool(strict.initialized)  # nothing ran before the error
    strict.eval()
    assert strict(x).indices.shape == (2, 2, 12)  # eval never syncs
    with pytest.raises(TypeError, match="sync to be None, True or False, got 'yes'"):
        ResidualVQ(8, 2, 16, sync="yes")


@pytest.mark.parametrize("world", [2, 4])
def test_balanced_gradient_under_ddp_equals_one_process_on_the_whole_batch(world, request):
    results = request.getfixturevalue({2: "two_ranks", 4: "four_ranks"}[world])
    torch.manual_seed(0)
    ref = _balanced_grads(torch.nn.Linear(4, 3), balancer_batch(world))
    for r, res in enumerate(results):
        for got, want in zip(res["balancer_ddp"]["grads"], ref, strict=True):
            # without the world-size factor the balanced part is 1/world of this
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=f"rank {r}")
