"""Checks shared by the public blocks: inputs, options and state_dict layout versions.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (wrong value or
shape) with a message naming the owner, what was expected and what was given.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn
from typing_extensions import override

_T = TypeVar("_T")

# upgrades a module's entries ``prefix + name`` in a state_dict, in place, by one layout version
Migration = Callable[[dict[str, Any], str], None]


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


def check_latents(x: object, dim: int, owner: str, channel_last: bool) -> Tensor:
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


def check_audio(name: str, x: object, owner: str, *, channels: int | None = None,
                mono: bool = True) -> Tensor:
    """Check a waveform batch and return it as ``(B, C, S)``.

    Empty batch and time axes pass (see :func:`check_audio_pair` for losses that need
    samples); an empty channel axis does not.

    Args:
        name: The argument's name in messages.
        x: The value to check.
        owner: The public function or class named in messages.
        channels: The number of channels ``C`` required, or ``None`` for any.
        mono: Whether a 2-D ``(B, S)`` input is accepted, as mono ``(B, 1, S)``.

    Returns:
        ``x``, with a channel axis added to a 2-D input.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``x`` has another number of dimensions or channels.

    Shape:
        - ``x``: ``(B, C, S)``, or ``(B, S)`` with ``mono``.
        - Output: ``(B, C, S)``.
    """
    x = check_float_tensor(name, x, owner)
    shape = tuple(x.shape)
    c = "C" if channels is None else str(channels)
    layout = f"(B, {c}, S) or (B, S)" if mono else f"(B, {c}, S)"
    if mono and x.ndim == 2:
        x = x[:, None, :]  # (B, S) -> (B, 1, S)
    if x.ndim != 3 or (channels is not None and x.shape[1] != channels):
        raise ValueError(f"{owner} expected {name} of shape {layout}, got {shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{owner} expected {name} with C >= 1 channels, got shape {shape}")
    return x


def check_audio_pair(pred: object, target: object, owner: str, *, min_samples: int = 1,
                     why: str = "") -> tuple[Tensor, Tensor]:
    """Check a prediction and its reference waveform; return both as ``(B, C, S)``.

    Args:
        pred: Predicted waveform.
        target: Reference waveform, the same shape as ``pred``.
        owner: The public function or class named in messages.
        min_samples: The fewest samples ``S`` accepted (at least 1).
        why: Said after the sample count in the message, e.g. ``" (half the window + 1)"``.

    Returns:
        ``pred`` and ``target`` as ``(B, C, S)``, dtypes unchanged.

    Raises:
        TypeError: If either is not a floating-point tensor.
        ValueError: If the shapes differ or are not ``(B, C, S)``/``(B, S)``, or the batch,
            channel or time axis is empty or shorter than ``min_samples``.

    Shape:
        - ``pred``, ``target``: ``(B, C, S)`` or ``(B, S)``.
        - Output: two ``(B, C, S)``.
    """
    p, t = check_audio("pred", pred, owner), check_audio("target", target, owner)
    shape = tuple(cast(Tensor, pred).shape)  # both are tensors once check_audio passed
    target_shape = tuple(cast(Tensor, target).shape)
    if shape != target_shape:
        raise ValueError(f"{owner} expected pred and target of the same shape, got "
                         f"{shape} and {target_shape}")
    if p.shape[0] == 0 or p.shape[-1] == 0:
        raise ValueError(f"{owner} expected a non-empty batch and time axis, got pred of shape "
                         f"{shape}")
    if p.shape[-1] < min_samples:
        raise ValueError(f"{owner} expected at least {min_samples} samples{why}, got pred of "
                         f"shape {shape}")
    return p, t


def check_mask(mask: object, batch: int, time: int, owner: str, *, time_axis: str = "T",
               dtype: torch.dtype = torch.float32,
               device: torch.device | None = None) -> Tensor:
    """Check a ``(B, T)`` validity mask (True or 1 = real frame) and return it as ``dtype``.

    Args:
        mask: The value to check.
        batch: The batch size ``B`` required.
        time: The length ``T`` required.
        owner: The public function or class named in messages.
        time_axis: The time axis's letter in messages (``"S"`` for a mask over samples).
        dtype: The floating-point dtype of the result.
        device: The device of the result (``None``: the mask's).

    Returns:
        The mask, converted.

    Raises:
        TypeError: If ``mask`` is not a tensor, or is complex.
        ValueError: If its shape is not ``(batch, time)``.

    Shape:
        - ``mask``: ``(B, T)``; output: ``(B, T)``.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"{owner} expected mask to be a torch.Tensor, got {type(mask).__name__}")
    if tuple(mask.shape) != (batch, time):
        raise ValueError(f"{owner} expected mask of shape (B, {time_axis}) = ({batch}, {time}), "
                         f"got {tuple(mask.shape)}")
    if mask.is_complex():
        raise TypeError(f"{owner} expected a bool or real mask, got {mask.dtype}")
    return mask.to(device=device, dtype=dtype)


def check_positive_int(name: str, value: object, owner: str) -> int:
    """Raise ``TypeError`` unless ``value`` is an int (not a bool), ``ValueError`` unless
    it is ``>= 1``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner} expected {name} to be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{owner} expected {name} >= 1, got {value}")
    return value


def _check_real(name: str, value: object, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} expected {name} to be a number, got {type(value).__name__}")
    return float(value)


def check_range(name: str, value: float, low: float, high: float, owner: str,
                low_open: bool = False, high_open: bool = False) -> float:
    """Raise ``ValueError`` unless ``low <= value <= high`` (ends open where asked); NaN and
    non-numbers never pass."""
    v = _check_real(name, value, owner)
    if math.isnan(v):
        raise ValueError(f"{owner} expected {name} to be a number, got NaN")
    below = v <= low if low_open else v < low
    above = v >= high if high_open else v > high
    if below or above:
        lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
        raise ValueError(f"{owner} expected {name} in {lb}{low}, {high}{hb}, got {value}")
    return v


def check_positive(name: str, value: float, owner: str, *, allow_zero: bool = False) -> float:
    """Raise ``ValueError`` unless ``value`` is a finite number ``> 0`` (``>= 0`` with
    ``allow_zero``), ``TypeError`` if it is not a number; return it as a float."""
    v = _check_real(name, value, owner)
    if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
        raise ValueError(f"{owner} expected a finite {name} {'>=' if allow_zero else '>'} 0, "
                         f"got {value}")
    return v


def check_choice(name: str, value: _T, choices: Sequence[_T], owner: str) -> _T:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``; return it."""
    if value not in choices:
        raise ValueError(f"{owner} expected {name} in {tuple(choices)}, got {value!r}")
    return value


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


def upgrade_state(state_dict: dict[str, Any], prefix: str, local_metadata: Mapping[str, Any],
                  error_msgs: list[str], *, current: int, owner: str,
                  migrations: Mapping[int, Migration] | None = None) -> int:
    """Check the layout version of a module's state_dict entries and bring them up to date.

    The one place where a module's ``_load_from_state_dict`` reads its layout version:
    entries written at version ``v < current`` go through ``migrations[v]``,
    ``migrations[v + 1]``, ... (each, where present, rewrites the entries under ``prefix``
    in place from its version to the next); a version newer than ``current`` is reported in
    ``error_msgs``, and ``load_state_dict`` raises naming it.

    Args:
        state_dict: The entries being loaded (``load_state_dict``'s own copy).
        prefix: The module's key prefix, e.g. ``"quantizer."``.
        local_metadata: The module's metadata (``{"version": v}``, or empty before versions).
        error_msgs: ``load_state_dict``'s list of errors.
        current: The layout version this code writes (the module's ``_version``).
        owner: The class named in messages.
        migrations: Version -> upgrade from that version to the next.

    Returns:
        The version the entries were written at.
    """
    version = check_state_version(local_metadata, current, prefix, owner, error_msgs)
    for v in range(version, current):
        step = (migrations or {}).get(v)
        if step is not None:
            step(state_dict, prefix)
    return version


def added_buffer(name: str, like: str, fill: float = 0.0) -> Migration:
    """The upgrade past a layout that lacked the buffer ``name``: where a module's entries
    hold ``like``, ``name`` is added as a tensor of ``like``'s shape, dtype and device
    filled with ``fill``."""
    def upgrade(state_dict: dict[str, Any], prefix: str) -> None:
        if prefix + like in state_dict:
            state_dict[prefix + name] = torch.full_like(state_dict[prefix + like], fill)
    return upgrade


class VersionedModule(nn.Module):
    """A module whose state_dict layout is versioned (``_version``, which ``state_dict``
    records) and upgraded on load by :func:`upgrade_state`.

    Subclasses set ``_version`` and, once a layout changes, ``_state_migrations``: version
    ``v`` -> the upgrade of entries written at ``v`` to ``v + 1``.
    """

    _version: int = 1
    _state_migrations: ClassVar[Mapping[int, Migration]] = {}

    @override
    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              local_metadata: dict[str, Any], strict: bool,
                              missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        upgrade_state(state_dict, prefix, local_metadata, error_msgs, current=self._version,
                      owner=type(self).__name__, migrations=self._state_migrations)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._after_load(state_dict, prefix)

    def _after_load(self, state_dict: Mapping[str, Any], prefix: str) -> None:
        """Called once this module's entries are loaded (``prefix`` + name in ``state_dict``):
        for state kept outside buffers that follows from them."""
