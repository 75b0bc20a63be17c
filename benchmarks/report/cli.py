"""The command line: write the pages and plots, or check that the committed pages are current."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .registry import DOCS, RESULTS, files_read, load_results, render_pages


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Fill the generated blocks of the pages from benchmarks/results/*.json.")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--docs", type=Path, default=DOCS,
                        help="the docs folder; the other pages are read from the folder above")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--check", action="store_true",
                        help="compare with the pages in --docs instead of writing them")
    parser.add_argument("--only", nargs="*", help="pages whose blocks read these results")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the pages (and plots), or with ``--check`` compare them with the written ones.

    Args:
        argv: The arguments; ``sys.argv[1:]`` when ``None``.

    Returns:
        1 when ``--check`` found a page that differs from what the results give, else 0.
    """
    args = _parser().parse_args(argv)
    draw = not (args.no_plots or args.check)
    root = args.docs.resolve().parent  # the pages' paths are relative to it
    texts = render_pages(args.results, root, draw, args.docs / "img", args.only)
    stale = []
    for page, text in texts.items():
        path = root / page
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(page)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    read = files_read()
    for name in sorted(load_results(args.results)):
        if name not in read:
            print(f"note: results/{name} is read by no block of benchmarks.report")
    if stale:
        print("out of date (run `make report`): " + ", ".join(stale))
        return 1
    return 0
