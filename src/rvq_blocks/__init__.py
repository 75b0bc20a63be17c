"""rvq_blocks: correct, fast, tested building blocks for neural audio codecs.

Shape letters used throughout: B batch, C audio channels, S samples, D latent dim,
T frames, Q quantizers, K codebook size, N flattened vectors.
"""

from .outputs import CodebookUsage, RVQOutput
from .residual_vq import ResidualVQ

__version__ = "0.1.0"

__all__ = [
    "CodebookUsage",
    "RVQOutput",
    "ResidualVQ",
    "__version__",
]
