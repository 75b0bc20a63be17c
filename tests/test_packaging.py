"""What a user installing the package gets: declared dependencies equal the imports of src/,
a quiet and light import, full metadata. (The wheel itself is built, checked and installed
into a fresh environment by `make package-check`, .ci/package_check.py.)"""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rvq_blocks"


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _imported_distributions() -> set[str]:
    names = set()
    for path in SRC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "rvq_blocks"}


def test_declared_dependencies_are_exactly_what_src_imports():
    declared = {re.split(r"[<>=!~;\[ ]", d)[0].lower().replace("-", "_")
                for d in _pyproject()["project"]["dependencies"]}
    assert declared == _imported_distributions()


def test_import_is_quiet_and_does_not_load_dynamo():
    """`import rvq_blocks` must not pay for torch._dynamo (about 1 s on torch 2.13): every
    `torch.compiler.disable` in the package goes through the lazy rvq_blocks._compile.eager.
    The measured time is in benchmarks/bench_import_time.py."""
    code = ("import sys, torch; before = set(sys.modules); import rvq_blocks; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('torch.')))")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    loaded = ast.literal_eval(proc.stdout.strip())
    assert not [m for m in loaded if m.startswith("torch._dynamo")], loaded


def test_metadata_license_and_typing_marker():
    project = _pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert (SRC / "py.typed").exists()
    classifiers = set(project["classifiers"])
    assert {"Typing :: Typed", "Programming Language :: Python :: 3.10"} <= classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert project["authors"] and {"Homepage", "Documentation", "Issues"} <= set(project["urls"])
    floor = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert floor == "torch>=2.4"  # the oldest torch the suite passes on (docs/faq.md)
