"""Mutation testing of ``src/rvq_blocks``: do the tests notice when the code is wrong?

    python .ci/mutants.py                        # every module in MODULES, report on stdout
    python .ci/mutants.py --modules rms_loss     # some modules
    python .ci/mutants.py --out mutants.json     # keep every mutant's outcome

``make mutants`` runs it. Each *mutant* is the library with one small change (an operator
swapped, a comparison loosened, a constant moved by one, a ``.detach()`` dropped, a call
statement deleted; never an error message, a docstring or an axis
``dim=`` argument). A mutant is *killed* when at least one test fails on it, and *survives*
when every test that runs the changed line still passes. Survivors are either gaps in the
tests or *equivalent* mutants (changes no test could see, because the behaviour is the same);
the equivalent ones are listed in ``EQUIVALENT`` with the reason, and in docs/reliability.md.

How it stays fast on two cores:

1. A snapshot of ``src/`` and ``tests/`` is taken first, so the working tree may change
   while the run goes on.
2. One coverage run of the library tests records which test executes which line.
3. The parent process imports torch and pytest once; each mutant runs in a forked child that
   serves the mutated module source through an import hook and runs, with ``-x``, only the
   tests covering the changed line, fastest first.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["residual_vq", "_vq_ops", "_codebook", "balancer", "rms_loss", "scaled_tanh",
           "spectral", "_checks", "complex_stft", "istft_head", "_dist"]
# Library tests; compile, export and multi-process tests are left out (minutes each, and they
# run the same lines as the eager tests listed here).
TESTS = ["test_api.py", "test_vq_ops.py", "test_codebook.py", "test_residual_vq.py",
         "test_balancer.py", "test_rms_loss.py", "test_scaled_tanh.py", "test_spectral.py",
         "test_istft_head.py", "test_state_dict.py", "test_precision.py", "test_fuzz.py",
         "test_testing.py", "test_gradcheck_cli.py"]
# Lines no test above runs in-process (the multi-rank paths) are checked with these.
UNCOVERED_TESTS = ["test_distributed.py"]
# Modules whose code also decides what happens on several ranks: a mutant that survives the
# in-process tests gets a second run with these (pytest arguments), before it counts as alive.
MULTI_RANK = {"balancer": ["tests/test_distributed.py", "-k", "balancer or balanced"],
              "_dist": ["tests/test_distributed.py"],
              "residual_vq": ["tests/test_distributed.py"],
              "_codebook": ["tests/test_distributed.py"]}

# (module, line text stripped, mutation description) -> why no test can tell it apart.
# docs/reliability.md lists them with the run's figures.
_BLOCK = ("_BLOCK_ELEMENTS = 1 << 19  # distance-block size (2 MiB of float32): stays in cache "
          "for argmin")
_SAME_ARGMIN = "a block size: every row-block size gives the same argmin (tested)"
_NO_GRAD = "the tensor only feeds index choices or no-grad updates: no gradient either way"
_TIE = "differs only when two floats are exactly equal (probability 0 for these values)"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("_vq_ops", _BLOCK, "1 -> 2"): _SAME_ARGMIN,
    ("_vq_ops", _BLOCK, "19 -> 20"): _SAME_ARGMIN,
    ("_vq_ops", "rows = max(1, _BLOCK_ELEMENTS // codebook.shape[0])", "1 -> 2"): _SAME_ARGMIN,
    ("_vq_ops", "rows = max(1, _BLOCK_ELEMENTS // codebook.shape[0])", "FloorDiv -> Mult"):
        _SAME_ARGMIN,
    ("_vq_ops", "return blocks[0] if len(blocks) == 1 else torch.cat(blocks)", "1 -> 2"):
        "torch.cat of one block is that block",
    ("_vq_ops", "def perplexity(counts: Tensor, eps: float = 1e-12) -> Tensor:",
     "1e-12 -> 1.000000000001"): "the floor only guards an all-zero row (perplexity 1 either "
                                 "way); usage totals are counts of vectors, >= 1 otherwise",
    ("_vq_ops", "centroids = z[start].clone()", "drop .clone()"):
        "advanced indexing already returns a copy",
    ("_vq_ops", "degenerate = z_norm <= eps", "LtE -> Lt"): _TIE,
    ("_vq_ops", "paths = torch.zeros(n, 1, 0, dtype=torch.long, device=z.device)  # (N, b, q)",
     "1 -> 2"): "the first stage's paths have no entries; only their (empty) gather is read",
    ("_vq_ops", "error = residual.pow(2).sum(dim=-1)  # (N, b)", "2 -> 3"):
        "before the first stage every candidate of a vector shares this error: any function of "
        "it adds the same constant and leaves the ranking unchanged",
    ("residual_vq", "alive = share >= floor", "GtE -> Gt"): _TIE,
    ("residual_vq", "if drop < self.quantizer_dropout:", "Lt -> LtE"): _TIE,
    ("residual_vq", "return ops.beam_search(z.detach(), [self._code_vectors(k, z.dtype)",
     "drop .detach()"): _NO_GRAD,
    ("residual_vq", "codes = self.codebook[k].to(z.dtype) if fit is None else "
     "fit(k, ze.detach())", "drop .detach()"): _NO_GRAD,
    ("residual_vq", "idx = ops.nearest(ze.detach(), codes, self.use_cosine) if assigned is None "
     "\\", "drop .detach()"): _NO_GRAD,
    ("residual_vq", "inputs.append(ze.detach())", "drop .detach()"): _NO_GRAD,
    ("_codebook", "if threshold <= 0 and patience <= 0:", "LtE -> Lt"):
        "an early exit: with both rules at 0 no code is dead anyway",
    ("_codebook", "if embed_sum is None or sums is None:", "and <-> or"):
        "both are None (learned codes) or both are set (EMA): they never differ",
    ("_codebook", "return counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-12)",
     "1e-12 -> 1.000000000001"): "usage totals are counts of vectors: 0 (all shares 0 either "
                                 "way) or >= 1",
    ("balancer", "return self.norm_ema_sum / self.norm_ema_weight.clamp_min(1e-30)",
     "1e-30 -> 1.0"): "the EMA weight is 0 before the first step (the average is then 0 either "
                      "way) and >= 1 after it",
    ("balancer", "if self.per_batch_item and g.ndim > 0:", "Gt -> GtE"):
        "for a 0-d gradient the per-item branch gives |g|, the same as its norm",
    ("balancer", "return torch.stack(out).detach()  # (L,)", "drop .detach()"):
        "gradient norms of gradients taken without create_graph: nothing to detach",
    ("balancer", "scales = (self.total_norm * w / w.sum() / (self.eps + avg.to(w))).detach()  "
     "# (L,)", "drop .detach()"): "weights and norm averages carry no graph",
    ("balancer", "vals = torch.stack([losses[k].detach().reshape(()).to(dtype) for k in "
     "self.names])  # (L,)", "drop .detach()"): "loss values are only read (finite check, logs)",
    ("balancer", "extra_vals = [extra[k].detach().reshape(()).to(dtype) for k in extra]",
     "drop .detach()"): "loss values are only read (finite check, logs)",
    ("balancer", "packed = torch.cat([torch.where(torch.isfinite(norms), norms, 0.0)."
     "to(any_bad),", "0.0 -> 1.0"): "a non-finite norm skips or raises the whole step; the "
                                    "placeholder is never used",
    ("scaled_tanh", "bound = 1.0 - torch.finfo(x.dtype).eps / 2", "2 -> 3"):
        "1 - eps/3 rounds to the same float as 1 - eps/2: the largest one below 1",
    ("scaled_tanh", "raw = s if s > 20.0 else math.log(math.expm1(s))", "Gt -> GtE"):
        "above 20, log(expm1(s)) equals s in double precision",
    ("scaled_tanh", "raw = s if s > 20.0 else math.log(math.expm1(s))", "20.0 -> 21.0"):
        "above 20, log(expm1(s)) equals s in double precision",
    ("scaled_tanh", "return (y.detach().abs() > threshold).float().mean()", "Gt -> GtE"): _TIE,
    ("scaled_tanh", "return (y.detach().abs() > threshold).float().mean()", "drop .detach()"):
        "a comparison carries no gradient",
    ("spectral", "return torch.where(f >= _SLANEY_BREAK_HZ, log_part, f / _SLANEY_HZ_STEP)",
     "GtE -> Gt"): "the Slaney scale is continuous: both branches agree at the break",
    ("spectral", "return torch.where(m >= _SLANEY_BREAK_MEL, log_part, m * _SLANEY_HZ_STEP)",
     "GtE -> Gt"): "the Slaney scale is continuous: both branches agree at the break",
    ("spectral", "fb[nearest[empty], torch.nonzero(empty).flatten()] = 1.0", "1.0 -> 2.0"):
        "the band is normalised to sum 1 on the next line",
    ("istft_head", "if n_fft % 2 or hop_length > n_fft or (n_fft - hop_length) % 2:",
     "Sub -> Add"): "n_fft + hop and n_fft - hop have the same parity",
    ("spectral", "fb = fb / fb.sum(0, keepdim=True)", "True -> False"):
        "(F, M) / (M,) broadcasts exactly as (F, M) / (1, M)",
    ("spectral", "@functools.lru_cache(maxsize=64)", "64 -> 65"):
        "a cache size: what is cached is the same",
}

SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
            ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
            ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
            ast.In: ast.NotIn, ast.NotIn: ast.In}
DROP_METHODS = {"detach", "clone"}
# Methods whose first positional argument is an axis (not mutated, like ``dim=``).
AXIS_METHODS = {"sum", "mean", "norm", "amax", "amin", "argmin", "argmax", "softmax",
                "log_softmax", "logsumexp", "cumsum", "unsqueeze", "squeeze", "flatten", "var",
                "std", "max", "min", "all", "any", "unfold"}


@dataclass
class Mutant:
    module: str
    index: int
    line: int
    text: str
    what: str
    status: str = ""        # killed | timeout | survived | equivalent
    seconds: float = 0.0
    tests_run: int = 0


# ----------------------------------------------------------------------------- mutation
def _skip_ranges(tree: ast.Module) -> set[int]:
    """Ids of nodes never mutated: docstrings, error messages, annotations, ``__all__``."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            mark(first)
        if isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert)):
            mark(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "warn":
            mark(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for a in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                mark(a.annotation)
            mark(node.args.vararg)
            mark(node.args.kwarg)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            mark(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mark(node)
        if isinstance(node, ast.keyword) and node.arg in ("dim", "strict"):
            mark(node)  # an axis: a wrong one is a shape error, or the same axis (-1 of 2-D);
            # zip(strict=...) only guards lengths that are equal by construction
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in AXIS_METHODS and node.args:
            mark(node.args[0])
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "shape":
            mark(node.slice)  # ``x.shape[-1]`` is ``x.shape[1]`` on 2-D state
    return skip


def _points(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Every (node, description) that can be mutated, in a fixed order."""
    skip = _skip_ranges(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAP_BIN:
            yield node, f"{type(node.op).__name__} -> {SWAP_BIN[type(node.op)].__name__}"
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and type(node.ops[0]) in SWAP_CMP:
            yield node, f"{type(node.ops[0]).__name__} -> {SWAP_CMP[type(node.ops[0])].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "and <-> or"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            yield node, f"drop {type(node.op).__name__}"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            yield node, f"{node.value!r} -> {node.value + 1!r}"
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield node, f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in DROP_METHODS and not node.args:
            yield node, f"drop .{node.func.attr}()"
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            yield node, "delete call statement"


def mutate(source: str, index: int) -> str:
    """Source of the module with mutation point ``index`` applied."""
    tree = ast.parse(source)
    node, _ = list(_points(tree))[index]
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        node.op = SWAP_BIN[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops = [SWAP_CMP[type(node.ops[0])]()]
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.UnaryOp):
        _replace(tree, node, node.operand)
    elif isinstance(node, ast.Constant):
        node.value = (not node.value) if type(node.value) is bool else node.value + 1
    elif isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Attribute)
        _replace(tree, node, node.func.value)
    elif isinstance(node, ast.Expr):
        _replace(tree, node, ast.Pass())
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                setattr(parent, field, [new if v is old else v for v in value])
                return
    raise AssertionError("node not found")


def mutants_of(module: str, src_dir: Path) -> list[Mutant]:
    source = (src_dir / "rvq_blocks" / f"{module}.py").read_text()
    lines = source.splitlines()
    return [Mutant(module, i, node.lineno, lines[node.lineno - 1].strip(), what)
            for i, (node, what) in enumerate(_points(ast.parse(source)))]


# ----------------------------------------------------------------------------- coverage
def coverage_map(snap: Path) -> tuple[dict[str, dict[int, list[str]]], dict[str, float]]:
    """Which tests run which library line, and how long each test takes (a child process)."""
    out = snap / "coverage_map.json"
    code = f"""
import json, sys, time, coverage, pytest
cov = coverage.Coverage(data_file=None, source=["rvq_blocks"])
durations = {{}}
class Ctx:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        cov.switch_context(item.nodeid); t = time.perf_counter(); yield
        durations[item.nodeid] = time.perf_counter() - t
cov.start()
rc = pytest.main(["-q", "-p", "no:cacheprovider", *{[f"tests/{t}" for t in TESTS]!r}],
                 plugins=[Ctx()])
cov.stop()
data, lines = cov.get_data(), {{}}
for f in data.measured_files():
    if "/rvq_blocks/" in f:
        name = f.rsplit("/", 1)[1][:-3]
        lines[name] = {{ln: sorted(c for c in ctx if c) for ln, ctx in
                       data.contexts_by_lineno(f).items()}}
json.dump({{"rc": int(rc), "lines": lines, "durations": durations}}, open({str(out)!r}, "w"))
"""
    env = {**os.environ, "PYTHONPATH": f"{snap / 'src'}{os.pathsep}{snap}"}
    with open(snap / "coverage_map.log", "w") as log:
        subprocess.run([sys.executable, "-c", code], env=env, stdout=log, stderr=log, check=False)
    data = json.loads(out.read_text())
    if data["rc"] != 0:
        raise SystemExit(f"the unmutated tests fail (pytest exit {data['rc']}); fix them first")
    lines = {m: {int(k): v for k, v in d.items()} for m, d in data["lines"].items()}
    return lines, data["durations"]


# ----------------------------------------------------------------------------- running
def start(m: Mutant, snap: Path, tests: list[str]) -> int:
    """Fork a child that serves the mutant and runs ``tests`` with ``-x``; its pid."""
    source = mutate((snap / "src" / "rvq_blocks" / f"{m.module}.py").read_text(), m.index)
    m.tests_run = len(tests)
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: a copy of the package holding the mutant, first on the path (spawned
        # processes of the distributed tests inherit sys.path and PYTHONPATH)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        where = snap / "mutant" / str(os.getpid())
        shutil.copytree(snap / "src" / "rvq_blocks", where / "rvq_blocks")
        (where / "rvq_blocks" / f"{m.module}.py").write_text(source)
        sys.path.insert(0, str(where))
        os.environ["PYTHONPATH"] = os.pathsep.join([str(where), str(snap / "src"), str(snap)])
        import pytest

        rc = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(snap), *tests])
        os._exit(int(rc))
    except BaseException:  # noqa: BLE001
        os._exit(99)


def run_all(todo: list[tuple[Mutant, list[str], float]], snap: Path, jobs: int) -> None:
    """Run the mutants ``jobs`` at a time; each gets its time budget, then it is killed."""
    running: dict[int, tuple[Mutant, float, float]] = {}
    queue = list(todo)
    while queue or running:
        while queue and len(running) < jobs:
            m, tests, budget = queue.pop(0)
            running[start(m, snap, tests)] = (m, time.monotonic(), budget)
        time.sleep(0.02)
        for pid, (m, t0, budget) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() - t0 > budget:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                m.status = "timeout"
            elif done:
                m.status = "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
            else:
                continue
            m.seconds = time.monotonic() - t0
            del running[pid]
            shutil.rmtree(snap / "mutant" / str(pid), ignore_errors=True)
            if m.status == "survived":
                print(f"  survived  {m.module}.py:{m.line}: {m.what:28s} | {m.text}", flush=True)


def _function_spans(source: str) -> list[tuple[int, int, int]]:
    """``(def line, first body line, last line)`` of every function, sorted."""
    spans = []
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([n.lineno, *(d.lineno for d in n.decorator_list)])
            spans.append((first, n.body[0].lineno, n.end_lineno or n.lineno))
    return sorted(spans)


def _covering(lines: dict[int, list[str]], spans: list[tuple[int, int, int]],
              line: int) -> set[str]:
    """Tests that run ``line``. A line that runs only at import (a default argument in a
    signature, a module constant) gets the tests that run the body of its function, or any
    line of the module; a body line no test runs gets none (see ``UNCOVERED_TESTS``)."""
    if lines.get(line):
        return set(lines[line])
    inside = [(a, b, c) for a, b, c in spans if a <= line <= c]
    if not inside:  # module level
        return {t for tests in lines.values() for t in tests}
    start, body, end = max(inside)
    if line >= body:
        return set()
    return {t for ln, tests in lines.items() if body <= ln <= end for t in tests}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modules", nargs="*", default=MODULES)
    p.add_argument("--out", type=Path, default=None, help="JSON file for every mutant's outcome")
    p.add_argument("--limit", type=int, default=0, help="at most this many mutants per module")
    p.add_argument("--rerun", type=Path, default=None,
                   help="only the mutants that survived in this --out file")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run at once")
    args = p.parse_args(argv)

    snap = Path(tempfile.mkdtemp(prefix="rvq_mutants_"))
    for part in ("src", "tests", "examples"):
        shutil.copytree(ROOT / part, snap / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", snap / "pyproject.toml")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path[:0] = [str(snap / "src"), str(snap)]
    os.chdir(snap)
    t0 = time.perf_counter()
    lines, durations = coverage_map(snap)
    print(f"coverage map: {len(durations)} tests, {time.perf_counter() - t0:.0f} s", flush=True)

    import pytest  # noqa: F401  (imported once here, inherited by every forked child)
    import torch  # noqa: F401

    results: list[Mutant] = []
    spans = {m: _function_spans((snap / "src" / "rvq_blocks" / f"{m}.py").read_text())
             for m in args.modules}
    per_module: dict[str, list[Mutant]] = {}
    todo: list[tuple[Mutant, list[str], float]] = []
    for module in args.modules:
        muts = mutants_of(module, snap / "src")[: args.limit or None]
        if args.rerun:
            again = {(r["module"], r["text"], r["what"]) for r in json.loads(args.rerun.read_text())
                     if r["status"] == "survived"}
            muts = [m for m in muts if (m.module, m.text, m.what) in again]
        per_module[module] = muts
        for m in muts:
            covering = sorted(_covering(lines.get(module, {}), spans[module], m.line),
                              key=lambda t: durations.get(t, 1e9))
            if (m.module, m.text, m.what) in EQUIVALENT:
                m.status = "equivalent"
            elif covering:
                todo.append((m, covering, 3 * sum(durations.get(t, 1.0) for t in covering) + 30))
            else:  # lines that only run on several ranks
                todo.append((m, [f"tests/{t}" for t in UNCOVERED_TESTS], 600))
            results.append(m)
    print(f"{len(results)} mutants, {len(todo)} to run, {args.jobs} at a time", flush=True)
    run_all(todo, snap, args.jobs)
    again = [(m, MULTI_RANK[m.module], 600.0) for m, _, _ in todo
             if m.status == "survived" and m.module in MULTI_RANK]
    if again:
        print(f"{len(again)} survivors run again with the multi-rank tests", flush=True)
        for m, _, _ in again:
            m.status = ""
        run_all(again, snap, args.jobs)
    for module, muts in per_module.items():
        print(summary(module, muts), flush=True)
    print(summary("all", results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(m) for m in results], indent=1) + "\n")
    shutil.rmtree(snap, ignore_errors=True)
    return 0


def summary(name: str, muts: list[Mutant]) -> str:
    n = {s: sum(m.status == s for m in muts) for s in
         ("killed", "timeout", "survived", "equivalent")}
    live = len(muts) - n["equivalent"]
    score = (n["killed"] + n["timeout"]) / live if live else 1.0
    return (f"{name}: {len(muts)} mutants, {n['killed'] + n['timeout']} killed "
            f"({n['timeout']} by timeout), {n['survived']} survived, "
            f"{n['equivalent']} equivalent: score {100 * score:.1f}%")


if __name__ == "__main__":
    sys.exit(main())
