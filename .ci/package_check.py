"""Build the wheel and sdist, check them, install the wheel into a fresh virtual environment
outside the repository and run the README snippet and the gradient checks there.

Run by `make package-check` (part of `make test`):

    python .ci/package_check.py --torch torch==2.13.0 --torch-index URL

It prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tests/", "benchmarks/", "examples/", "docs/")
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def run(cmd: list[str], **kwargs: object) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return str(proc.stdout)


def check_contents(wheel: Path, sdist: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    bad = [n for n in names if n.startswith(FORBIDDEN) or "/tests/" in n]
    assert not bad, f"wheel holds {bad}"
    assert "rvq_blocks/py.typed" in names, "wheel lacks rvq_blocks/py.typed"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "wheel lacks LICENSE"
    assert all(n.startswith(("rvq_blocks/", "rvq_blocks-")) for n in names), names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for field in ("License-Expression: MIT", "Classifier: Typing :: Typed", "Project-URL: ",
                  "Requires-Dist: torch>="):
        assert field in metadata, f"METADATA lacks {field!r}"
    with tarfile.open(sdist) as tar:
        members = [m.split("/", 1)[1] for m in tar.getnames() if "/" in m]
    bad = [n for n in members if n.startswith(FORBIDDEN)]
    assert not bad, f"sdist holds {bad}"
    for need in ("LICENSE", "src/rvq_blocks/py.typed", "pyproject.toml", "README.md"):
        assert need in members, f"sdist lacks {need}"
    print(f"ok  contents: wheel {len(names)} files, sdist {len(members)} files; LICENSE, "
          f"py.typed present; no tests/benchmarks/examples/docs")


def main() -> None:
    parser = argparse.ArgumentParser(description="Build, check and install-test the package.")
    parser.add_argument("--torch", default="torch==2.13.0", help="torch requirement installed "
                        "into the fresh venv before the wheel")
    parser.add_argument("--torch-index", default="", help="extra index for torch (a CPU index)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rvq_blocks_pkg_") as tmp_name:
        tmp = Path(tmp_name)
        dist = tmp / "dist"
        run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
        wheel = next(dist.glob("*.whl"))
        sdist = next(dist.glob("*.tar.gz"))
        print(f"ok  built {wheel.name} and {sdist.name}")
        run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
        print("ok  twine check --strict")
        check_contents(wheel, sdist)

        env_dir = tmp / "venv"
        run([args.python, "-m", "venv", str(env_dir)])
        py = str(env_dir / "bin" / "python")
        pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        index = (["--retries", "1", "--extra-index-url", args.torch_index]
                 if args.torch_index else [])
        run([*pip, *index, args.torch])
        run([*pip, str(wheel)])
        print(f"ok  installed {args.torch} then the wheel into a fresh venv outside the "
              f"repository")
        work = tmp / "work"  # not the repository: the installed copy is what gets imported
        work.mkdir()
        where = run([py, "-W", "error", "-c", "import rvq_blocks; print(rvq_blocks.__file__)"],
                    cwd=work).strip()
        assert where.startswith(str(env_dir)), f"imported {where}, not the installed wheel"
        print("ok  import rvq_blocks from the venv, no warning (-W error)")
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        for i, code in enumerate(SNIPPET.findall(readme)):
            script = work / f"readme_{i}.py"
            script.write_text(code, encoding="utf-8")
            run([py, "-W", "error::DeprecationWarning", str(script)], cwd=work)
            print(f"ok  README python block {i} runs on the installed wheel")
        out = run([py, "-m", "rvq_blocks.gradcheck"], cwd=work)
        print(f"ok  python -m rvq_blocks.gradcheck: {out.strip().splitlines()[-1]}")
        helptext = run([str(env_dir / "bin" / "rvq-blocks-gradcheck"), "--help"], cwd=work)
        assert helptext.startswith("usage: rvq-blocks-gradcheck"), helptext
        print("ok  rvq-blocks-gradcheck --help")
    print(f"package check passed in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
