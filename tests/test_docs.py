"""Every ```python block in README.md and docs/*.md runs as written; every ```bash block
names real scripts, flags and make targets."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def _blocks():
    for page in PAGES:
        for i, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8"))):
            yield pytest.param(match.group(1), id=f"{page.relative_to(ROOT)}#{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_doc_snippet_runs(code):
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_snippet__"})


def _commands(block: str) -> list[str]:
    return [c for c in (line.split("#")[0].strip() for line in block.splitlines()) if c]


def test_readme_installs_with_pip_then_gives_the_two_commands():
    """As the package page: `pip install rvq-blocks` first, then the repository's two commands."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first, second = (m.group(1) for m in list(BASH.finditer(text))[:2])
    assert _commands(first) == ["pip install rvq-blocks"]
    assert _commands(second) == ["make demo", "make test"]
    assert text.index("pip install rvq-blocks") < text.index("make demo")


def test_readme_links_leaving_the_repository_are_absolute():
    """On the package index the README has no repository around it: every link to a file of
    the repository is an absolute GitHub link, to a file that exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [u for u in links if not u.startswith(("https://", "http://", "#"))]
    assert not relative, relative
    base = "https://github.com/rvq-blocks/rvq_blocks/blob/main/"
    ours = [u[len(base):] for u in links if u.startswith(base)]
    assert len(ours) >= 8
    for path in ours:
        assert (ROOT / path.split("#")[0]).is_file(), path



def _shell_commands():
    for page in PAGES:
        for match in BASH.finditer(page.read_text(encoding="utf-8")):
            for line in match.group(1).replace("\\\n", " ").splitlines():
                for part in line.split("#")[0].split("&&"):
                    if part.strip():
                        yield str(page.relative_to(ROOT)), shlex.split(part)


def _script_of(words: list[str]) -> tuple[pathlib.Path, list[str]] | None:
    """The repository file a documented command runs, if it runs one of ours, and the words
    given to it."""
    for i, w in enumerate(words):
        if w.endswith(".py") and (ROOT / w).is_file():
            return ROOT / w, words[i + 1:]
        if w == "-m" and i + 1 < len(words) and words[i + 1].startswith("examples."):
            return ROOT / (words[i + 1].replace(".", "/") + ".py"), words[i + 2:]
    return None


def _flag_source(script: pathlib.Path) -> str:
    """The script's source and that of the sibling modules it imports that define flags (the
    training script's command line lives in flags.py)."""
    source = script.read_text(encoding="utf-8")
    for name in re.findall(r"^from \.(\w+) import", source, re.M):
        sibling = script.with_name(f"{name}.py")
        if sibling.is_file() and "add_argument(" in (text := sibling.read_text(encoding="utf-8")):
            source += text
    return source


def test_documented_shell_commands_name_real_scripts_flags_and_make_targets():
    """The ```bash blocks cannot all run in the suite (they train for minutes or install
    packages); each one that runs a script of the repository must name a file that exists and
    only flags that script defines, and each `make` target must exist."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    checked = 0
    for page, words in _shell_commands():
        if words[0] == "make":
            for target in (w for w in words[1:] if "=" not in w):
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (page, target)
            checked += 1
            continue
        found = _script_of(words)
        if found is None:
            continue
        script, after = found
        assert script.is_file(), (page, words)
        source = _flag_source(script)
        for flag in (w.split("=")[0] for w in after if w.startswith("--")):
            assert f'"{flag}"' in source, f"{page}: {script.name} has no flag {flag}"
        checked += 1
    assert checked >= 10


def test_built_site_shows_every_image_it_links(tmp_path):
    """`mkdocs build --strict` succeeds and every <img> of every built page resolves to a file
    (the plots of the benchmark and walk-through pages included)."""
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = 0
    for page in site.glob("**/*.html"):
        for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', page.read_text(encoding="utf-8")):
            if src.startswith(("http:", "https:", "data:")):
                continue
            assert (page.parent / src).resolve().is_file(), f"{page.relative_to(site)}: {src}"
            shown += 1
    assert shown >= 15
    assert (site / "telugu_codec" / "index.html").exists()
