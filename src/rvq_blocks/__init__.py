"""rvq_blocks: correct, fast, tested building blocks for neural audio codecs.

Shape letters used throughout: B batch, C audio channels, S samples, D latent dim,
T frames, Q quantizers, K codebook size, N flattened vectors.
"""

from .balancer import LossBalancer
from .complex_stft import ComplexSTFTLoss, complex_stft_loss
from .istft_head import ISTFTHead, istft_same, stft_same
from .outputs import CodebookUsage, RVQOutput
from .residual_vq import ResidualVQ
from .rms_loss import RMSScaleLoss, per_example_rms, rms_scale_loss
from .scaled_tanh import ScaledTanhHead, scaled_tanh
from .spectral import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    mel_filterbank,
    multi_resolution_stft_loss,
    multi_scale_mel_loss,
)

__version__ = "0.2.0.dev0"

__all__ = [
    "CodebookUsage",
    "ComplexSTFTLoss",
    "ISTFTHead",
    "LossBalancer",
    "MultiResolutionSTFTLoss",
    "MultiScaleMelLoss",
    "RMSScaleLoss",
    "RVQOutput",
    "ResidualVQ",
    "ScaledTanhHead",
    "__version__",
    "complex_stft_loss",
    "istft_same",
    "mel_filterbank",
    "multi_resolution_stft_loss",
    "multi_scale_mel_loss",
    "per_example_rms",
    "rms_scale_loss",
    "scaled_tanh",
    "stft_same",
]
