"""The public API's defaults and state_dict layout versions, pinned.

A default is behaviour users get without asking for it, and a layout version decides which
files an installed copy loads: a change to either must be made on purpose (with the docs and
the changelog), never by accident. Each case also *uses* the block with its defaults.
"""

import inspect

import pytest
import torch

import rvq_blocks
from rvq_blocks import (
    ComplexSTFTLoss,
    ISTFTHead,
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    ResidualVQ,
    RMSScaleLoss,
    ScaledTanhHead,
)

STFT = {"fft_sizes": (512, 1024, 2048), "hop_sizes": None, "floor": 1e-05, "log_weight": 1.0,
        "mag_weight": 1.0}
MEL = {"window_lengths": (32, 64, 128, 256, 512, 1024, 2048),
       "n_mels": (5, 10, 20, 40, 80, 160, 320), "f_min": 0.0, "f_max": None, "floor": 1e-05,
       "log_weight": 1.0, "mag_weight": 0.0}
CSTFT = {"resolutions": ((512, 128), (1024, 256), (2048, 512)), "compression": 0.3,
         "complex_weight": 0.3, "eps": 1e-08}
RMS = {"remove_mean": True, "domain": "linear", "dc_weight": 0.0, "eps": 1e-08,
       "reduction": "mean"}
FACTORY = {"device": None, "dtype": None}

DEFAULTS = {
    "ResidualVQ": {
        "num_quantizers": 8, "codebook_size": 1024, "codebook_dim": None, "use_cosine": False,
        "ema": True, "decay": 0.99, "eps": 1e-05, "commitment_weight": 0.25,
        "kmeans_init": True, "kmeans_iters": 10, "kmeans_samples": None,
        "dead_code_threshold": 0.1, "dead_code_patience": 4.0, "quantizer_dropout": 0.0,
        "gradient_estimator": "ste", "beam_size": 1, "joint_refine": False,
        "channel_last": False, "sync": None, **FACTORY},
    "LossBalancer": {"balance_grads": True, "total_norm": 1.0, "ema_decay": 0.999,
                     "per_batch_item": True, "eps": 1e-12, "nonfinite": "raise",
                     "reduce_fn": None, **FACTORY},
    "ScaledTanhHead": {"init_scale": 1.0, "channels": None, "parametrization": "linear",
                       "learnable": True, **FACTORY},
    "ISTFTHead": {"max_magnitude": 100.0},
    "RMSScaleLoss": RMS,
    "rms_scale_loss": {"mask": None, **RMS},
    "per_example_rms": {"mask": None, "remove_mean": True, "eps": 1e-08},
    "MultiResolutionSTFTLoss": {**STFT, **FACTORY},
    "multi_resolution_stft_loss": STFT,
    "MultiScaleMelLoss": {**MEL, **FACTORY},
    "multi_scale_mel_loss": MEL,
    "mel_filterbank": {"f_min": 0.0, "f_max": None, "mel_scale": "htk", "norm": "sum",
                       **FACTORY},
    "ComplexSTFTLoss": CSTFT,
    "complex_stft_loss": CSTFT,
    "scaled_tanh": {"scale": 1.0},
}
VERSIONS = {"ResidualVQ": 2, "LossBalancer": 1, "ScaledTanhHead": 1, "ISTFTHead": 1,
            "RMSScaleLoss": 1, "MultiResolutionSTFTLoss": 1, "MultiScaleMelLoss": 1,
            "ComplexSTFTLoss": 1}


def _use(name: str) -> object:
    """Call or build ``name`` with its defaults (and the fewest required arguments)."""
    audio = torch.randn(1, 1, 4096)
    return {
        "ResidualVQ": lambda: ResidualVQ(8),
        "LossBalancer": lambda: LossBalancer({"a": 1.0}),
        "ScaledTanhHead": lambda: ScaledTanhHead(),
        "ISTFTHead": lambda: ISTFTHead(8, 64, 16),
        "RMSScaleLoss": lambda: RMSScaleLoss()(audio, audio),
        "rms_scale_loss": lambda: rvq_blocks.rms_scale_loss(audio, 0.5 * audio),
        "per_example_rms": lambda: rvq_blocks.per_example_rms(audio),
        "MultiResolutionSTFTLoss": lambda: MultiResolutionSTFTLoss()(audio, audio),
        "multi_resolution_stft_loss": lambda: rvq_blocks.multi_resolution_stft_loss(audio, audio),
        "MultiScaleMelLoss": lambda: MultiScaleMelLoss(16000)(audio, audio),
        "multi_scale_mel_loss": lambda: rvq_blocks.multi_scale_mel_loss(audio, audio, 16000),
        "mel_filterbank": lambda: rvq_blocks.mel_filterbank(257, 40, 16000),
        "ComplexSTFTLoss": lambda: ComplexSTFTLoss()(audio, audio),
        "complex_stft_loss": lambda: rvq_blocks.complex_stft_loss(audio, audio),
        "scaled_tanh": lambda: rvq_blocks.scaled_tanh(audio),
    }[name]()


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_are_pinned(name):
    obj = getattr(rvq_blocks, name)
    params = inspect.signature(obj).parameters
    assert {k: p.default for k, p in params.items() if p.default is not p.empty} \
        == DEFAULTS[name]
    assert _use(name) is not None


def test_every_public_callable_with_defaults_is_pinned():
    with_defaults = set()
    for name in rvq_blocks.__all__:
        obj = getattr(rvq_blocks, name)
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            continue
        if any(p.default is not p.empty for p in params) and not name.endswith(("Output",
                                                                                "Usage")):
            with_defaults.add(name)
    assert with_defaults == set(DEFAULTS)


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_state_dict_layout_versions_are_pinned(name):
    module = _use(name) if name in ("ResidualVQ", "LossBalancer", "ScaledTanhHead",
                                    "ISTFTHead") else getattr(rvq_blocks, name)(
        **({"sample_rate": 16000} if name == "MultiScaleMelLoss" else {}))
    assert module.state_dict()._metadata[""]["version"] == VERSIONS[name]
