"""``eager``: run a function outside ``torch.compile`` graphs, without importing dynamo early.

``@torch.compiler.disable`` imports ``torch._dynamo`` when the decorated module is loaded,
which adds over a second to ``import rvq_blocks``. ``eager`` is torch's own lazy form of the
same decorator (``torch._disable_dynamo``, what torch uses on its own functions): it imports
``torch._dynamo`` at the first call, and ``torch.compile`` never traces into the function
(a graph break; the function runs eagerly). Use it instead of ``torch.compiler.disable``
anywhere in the package; ``tests/test_packaging.py`` checks that the import stays lazy.
"""

from __future__ import annotations

from torch._compile import _disable_dynamo as eager

__all__ = ["eager"]
