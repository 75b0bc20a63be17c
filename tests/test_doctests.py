"""The ``Example:`` blocks in the public docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import rvq_blocks

MODULES = sorted(m.name for m in pkgutil.iter_modules(rvq_blocks.__path__, "rvq_blocks."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
