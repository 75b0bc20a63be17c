"""Input checks shared by the public blocks; each builds a message naming expected and actual."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor


def check_float_tensor(name: str, x: object, owner: str) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        if isinstance(x, np.ndarray):  # the usual slip when audio comes from soundfile/librosa
            raise TypeError(f"{owner} expected {name} to be a torch.Tensor, got a numpy array "
                            f"of shape {x.shape} and dtype {x.dtype}; convert it with "
                            f"torch.from_numpy({name})")
        raise TypeError(f"{owner} expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner} expected {name} with a floating-point dtype, got {x.dtype}")
    return x


def check_latents(x: object, dim: int, owner: str, channel_last: bool = False) -> Tensor:
    """Check a latent batch of shape ``(B, D, T)`` (or ``(B, T, D)``) and return it."""
    x = check_float_tensor("x", x, owner)
    layout = f"(B, T, {dim})" if channel_last else f"(B, {dim}, T)"
    if x.ndim != 3:
        raise ValueError(f"{owner} expected x of shape {layout}, got {tuple(x.shape)}")
    d, t = (x.shape[2], x.shape[1]) if channel_last else (x.shape[1], x.shape[2])
    if d != dim:
        raise ValueError(
            f"{owner} expected x of shape {layout} with dim={dim}, got {tuple(x.shape)}"
        )
    if t == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{owner} expected a non-empty batch and time axis, got x of shape {tuple(x.shape)}"
        )
    return x


def check_mask(mask: object, batch: int, time: int, owner: str) -> Tensor:
    """Check a ``(B, T)`` validity mask (True or 1 = real frame) and return it as float."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{owner} expected mask to be a torch.Tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != (batch, time):
        raise ValueError(
            f"{owner} expected mask of shape (B, T) = ({batch}, {time}), got {tuple(mask.shape)}"
        )
    if mask.is_complex():
        raise TypeError(f"{owner} expected a bool or real mask, got {mask.dtype}")
    return mask.to(torch.float32)


def check_positive_int(name: str, value: object, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner} expected {name} to be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{owner} expected {name} >= 1, got {value}")
    return value


def check_range(name: str, value: float, low: float, high: float, owner: str,
                low_open: bool = False, high_open: bool = False) -> float:
    """Raise ``ValueError`` unless ``low <= value <= high`` (ends open where asked); NaN and
    non-numbers never pass."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} expected {name} to be a number, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{owner} expected {name} to be a number, got NaN")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{owner} expected {name} in {lb}{low}, {high}{hb}, got {value}")
    return float(value)


def check_state_version(local_metadata: Mapping[str, Any], current: int, prefix: str, owner: str,
                        error_msgs: list[str]) -> int:
    """The state_dict layout version of a module's entries (1 when unrecorded, as in files
    written before versioning); a version newer than ``current`` is reported in
    ``error_msgs`` (``load_state_dict`` then raises, naming it)."""
    version = local_metadata.get("version")
    version = 1 if version is None else int(version)
    if version > current:
        error_msgs.append(f"{owner} at {prefix or '<root>'!r}: state_dict layout version "
                          f"{version} is newer than the {current} this rvq_blocks reads; "
                          f"upgrade rvq_blocks to load it")
    return version
