"""The registry of generated blocks and values, and the code that fills them into the pages.

A page is hand-written Markdown. Two kinds of markers in it say what is generated:

* a *region*, a block of lines between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``
  (a table, a figure, a command), written by the function registered for ``NAME`` with
  :func:`region` or :func:`section`;
* a *value*, a figure inside a sentence, between ``<!-- v:GROUP.KEY -->`` and ``<!-- /v -->``,
  taken from the dictionary the function registered for ``GROUP`` with :func:`values` returns.

Everything outside the markers is left as written. A value marker must not start a line: at the
start of a line Markdown reads an HTML comment as a block of its own and splits the paragraph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
IMG = DOCS / "img"

MISSING_NOTE = "*`{file}` is not in `benchmarks/results/`: run its benchmark, then `make report`.*"
MISSING_VALUE = "-"

BLOCK = re.compile(r"<!-- report:([\w.-]+) -->\n.*?<!-- /report:\1 -->", re.S)
VALUE = re.compile(r"<!-- v:(\w+)\.(\w+) -->(.*?)<!-- /v -->")
MARKER_LINE = re.compile(r"^<!-- /?report:[\w.-]+ -->\n", re.M)
VALUE_MARK = re.compile(r"<!-- v:\w+\.\w+ -->|<!-- /v -->")


class Figures:
    """Plots for the regions: :meth:`png` returns an image line and may draw the image.

    Args:
        img_dir: Where the images are written (``docs/img``).
        draw: Whether :meth:`png` draws and saves the images or only links them.
    """

    def __init__(self, img_dir: Path, draw: bool) -> None:
        self.img_dir, self.draw = img_dir, draw
        self.written: list[Path] = []

    def png(self, name: str, draw: Callable[..., None], alt: str,
            size: tuple[float, float] = (8.0, 3.4), ncols: int = 1) -> str:
        """The Markdown line showing ``img/<name>.png``; when drawing, the image too.

        Args:
            name: The file name without ``.png``.
            draw: Called with the ``ncols`` axes of a new figure.
            alt: The image's alternative text.
            size: The figure size in inches.
            ncols: The number of axes side by side.

        Returns:
            ``![alt](img/<name>.png)``.
        """
        if self.draw:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, ncols, figsize=size, squeeze=False)
            draw(*axes[0])
            fig.tight_layout()
            self.img_dir.mkdir(parents=True, exist_ok=True)
            path = self.img_dir / f"{name}.png"
            fig.savefig(path, dpi=110, metadata={"Software": None})
            plt.close(fig)
            self.written.append(path)
        return f"![{alt}](img/{name}.png)"


RegionFn = Callable[[dict[str, dict], Figures], str]
SectionFn = Callable[[dict, Figures], str]
ValuesFn = Callable[[dict], dict[str, str]]


@dataclass(frozen=True)
class Region:
    """A generated block of ``page`` (relative to the repository root) named ``name``."""

    page: str
    name: str
    files: tuple[str, ...]
    fn: RegionFn


@dataclass(frozen=True)
class Values:
    """The values ``GROUP.KEY`` of ``page``, computed from the results file ``file``."""

    page: str
    group: str
    file: str
    fn: ValuesFn


REGIONS: list[Region] = []
VALUES: list[Values] = []


def region(page: str, name: str, reads: Sequence[str]) -> Callable[[RegionFn], RegionFn]:
    """Register ``fn(results, fig)`` as the block ``name`` of ``page``.

    Args:
        page: The page, relative to the repository root (``docs/telugu_codec.md``).
        name: The region's name in its markers.
        reads: The results files it reads; ``fn`` gets every loaded file and handles the
            missing ones itself.
    """
    def register(fn: RegionFn) -> RegionFn:
        REGIONS.append(Region(page, name, tuple(reads), fn))
        return fn
    return register


def section(page: str, name: str, file: str,
            optional: bool = False) -> Callable[[SectionFn], SectionFn]:
    """Register ``fn(data, fig)`` as the block ``name`` of ``page``, from one results file.

    Args:
        page: The page, relative to the repository root.
        name: The region's name in its markers.
        file: The results file whose parsed JSON ``fn`` gets.
        optional: While the file is missing, leave the block empty instead of a note saying so
            (for results that need an input the repository does not hold).
    """
    def register(fn: SectionFn) -> SectionFn:
        def render(results: dict[str, dict], fig: Figures) -> str:
            if file in results:
                return fn(results[file], fig)
            return "" if optional else MISSING_NOTE.format(file=file)

        REGIONS.append(Region(page, name, (file,), render))
        return fn
    return register


def values(page: str, group: str, file: str) -> Callable[[ValuesFn], ValuesFn]:
    """Register ``fn(data) -> {key: text}`` as the values ``group.*`` of ``page``.

    While ``file`` is missing, every value of the group reads ``-``.
    """
    def register(fn: ValuesFn) -> ValuesFn:
        VALUES.append(Values(page, group, file, fn))
        return fn
    return register


def _fill_blocks(text: str, page: str, results: dict[str, dict], fig: Figures) -> str:
    for r in (r for r in REGIONS if r.page == page):
        begin, end = f"<!-- report:{r.name} -->", f"<!-- /report:{r.name} -->"
        found = re.search(re.escape(begin) + r"\n.*?" + re.escape(end), text, re.S)
        if not found:
            raise ValueError(f"{page}: no `{begin}` ... `{end}` block for region {r.name!r}")
        body = re.sub(r"\n{3,}", "\n\n", r.fn(results, fig).strip("\n"))
        text = f"{text[:found.start()]}{begin}\n{body}\n{end}{text[found.end():]}"
    names = {r.name for r in REGIONS if r.page == page}
    for m in BLOCK.finditer(text):
        if m.group(1) not in names:
            raise ValueError(f"{page}: no region {m.group(1)!r} is registered for this page")
    return text


def _fill_values(text: str, page: str, results: dict[str, dict]) -> str:
    split = re.search(r"[^\n]\n {0,3}<!-- v:(\w+\.\w+) -->", text)
    if split:
        raise ValueError(f"{page}: `<!-- v:{split.group(1)} -->` starts a line inside a "
                         "paragraph, which splits it; move it after a word")
    groups = {v.group: v for v in VALUES if v.page == page}
    computed: dict[str, dict[str, str] | None] = {}

    def one(m: re.Match[str]) -> str:
        group, key = m.group(1), m.group(2)
        if group not in groups:
            raise ValueError(f"{page}: no values group {group!r} for `<!-- v:{group}.{key} -->`")
        if group not in computed:
            v = groups[group]
            computed[group] = v.fn(results[v.file]) if v.file in results else None
        found = computed[group]
        if found is None:
            value = MISSING_VALUE
        elif key in found:
            value = found[key]
        else:
            raise ValueError(f"{page}: the values group {group!r} has no {key!r}")
        return f"<!-- v:{group}.{key} -->{value}<!-- /v -->"

    return VALUE.sub(one, text)


def fill_regions(text: str, page: str, results: dict[str, dict], fig: Figures) -> str:
    """``text`` with every region and value of ``page`` regenerated.

    Raises:
        ValueError: A registered region has no marker pair in ``text``, or a marker names a
            region, values group or key that is not registered for ``page`` (the page and the
            registry have drifted apart).
    """
    return _fill_values(_fill_blocks(text, page, results, fig), page, results)


def strip_markers(text: str) -> str:
    """``text`` without the region marker lines and the value markers: the page as read."""
    return VALUE_MARK.sub("", MARKER_LINE.sub("", text))


def pages() -> list[str]:
    """Every page holding a region or a value, in registration order."""
    return list(dict.fromkeys([r.page for r in REGIONS] + [v.page for v in VALUES]))


def files_read(page: str | None = None) -> set[str]:
    """The results files that the regions and values of ``page`` (or of every page) read."""
    read = {f for r in REGIONS if page in (None, r.page) for f in r.files}
    return read | {v.file for v in VALUES if page in (None, v.page)}


def load_results(results_dir: Path) -> dict[str, dict]:
    """Every ``*.json`` of ``results_dir``, parsed, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))}


def re_images(markdown: str) -> list[str]:
    """The image paths a page shows, relative to the page."""
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


def render_pages(results_dir: Path = RESULTS, root: Path = ROOT, draw: bool = False,
                 img_dir: Path = IMG, only: Iterable[str] | None = None) -> dict[str, str]:
    """Every page with its regions and values filled, by path relative to ``root``.

    Args:
        results_dir: Where the results files are.
        root: The tree the pages are read from; a page missing there is read from the
            repository instead.
        draw: Whether to draw the plots into ``img_dir`` as well.
        img_dir: Where the plots go.
        only: Render only the pages that read one of these results (file names without
            ``.json``).

    Returns:
        ``{page: text}``.
    """
    results = load_results(results_dir)
    fig = Figures(img_dir, draw)
    keep = set(only or [])
    out = {}
    for page in pages():
        if keep and not {f.removesuffix(".json") for f in files_read(page)} & keep:
            continue
        path = root / page if (root / page).exists() else ROOT / page
        out[page] = fill_regions(path.read_text(encoding="utf-8"), page, results, fig)
    return out


def render(results_dir: Path = RESULTS, draw: bool = False, img_dir: Path = IMG,
           only: Iterable[str] | None = None) -> dict[str, str]:
    """The pages under ``docs/`` as :func:`render_pages` fills them, by name within ``docs/``."""
    return {page.removeprefix("docs/"): text for page, text in
            render_pages(results_dir, ROOT, draw, img_dir, only).items()
            if page.startswith("docs/")}
