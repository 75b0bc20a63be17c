"""Griffe extension for the docs build: render the docstrings' reST-isms as Markdown.

The library's docstrings are Google style with a few habits from Sphinx that mkdocstrings
would show literally. This extension rewrites the docstring text before it is parsed (the
source files are not touched):

* ``:class:`~rvq_blocks.X``` and the other roles become inline code ```X```;
* an ``Example:`` header becomes ``Examples:``, so ``>>>`` doctests render as Python code;
* the ``name: text`` lines of a ``Buffers:`` section become a bullet list.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc):`(~?)([^`]+)`")
SECTION = re.compile(r"^(\s*)([A-Z][A-Za-z ]*):\s*$")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def rewrite(text: str) -> str:
    text = ROLE.sub(_role, text)
    out: list[str] = []
    section = None
    for line in text.splitlines():
        header = SECTION.match(line)
        if header:
            section = header.group(2)
            if section == "Example":
                line = f"{header.group(1)}Examples:"
        elif section == "Buffers" and re.match(r"^\s+[a-z_]+: ", line):
            indent = len(line) - len(line.lstrip())
            line = f"{line[:indent]}- {line[indent:]}"
        out.append(line)
    return "\n".join(out)


class DocstringMarkup(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
