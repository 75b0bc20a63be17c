"""Bounded waveform output head ``y = tanh(scale * x)`` with a learnable input gain."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typing_extensions import override

from ._checks import (
    VersionedModule,
    check_audio,
    check_choice,
    check_float_tensor,
    check_positive,
    check_positive_int,
    check_range,
)

__all__ = ["ScaledTanhHead", "scaled_tanh"]

_OWNER = "ScaledTanhHead"
_PARAMETRIZATIONS = ("linear", "exp", "softplus")

Parametrization = Literal["linear", "exp", "softplus"]
_MIN_LINEAR_SCALE = 1e-4  # "linear" never crosses zero (a negative scale flips the waveform)


def scaled_tanh(x: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """Functional form of :class:`ScaledTanhHead`: ``tanh(scale * x)``.

    The scale multiplies the input *before* the tanh, so the output always stays inside
    ``(-1, 1)`` whatever the scale; ``scale * tanh(x)`` would instead let a scale above 1
    push the waveform out of range.

    Args:
        x: Pre-activation waveform.
        scale: A number, a 0-d tensor, or a ``(C,)`` tensor of per-channel scales.

    Returns:
        ``tanh(scale * x)``, same shape as ``x``, strictly inside ``(-1, 1)`` (values that
        round to +/-1 in ``x``'s dtype are clamped to the nearest value below 1).

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``scale`` is ``(C,)`` and ``x`` is not ``(B, C, S)``.

    Shape:
        - ``x``: any shape; ``(B, C, S)`` when ``scale`` is ``(C,)``.
        - Output: same as ``x``.

    Example:
        >>> import torch
        >>> scaled_tanh(torch.zeros(2, 1, 4), 3.0).abs().max().item()
        0.0
    """
    check_float_tensor("x", x, "scaled_tanh")
    if isinstance(scale, Tensor):
        scale = scale.to(x.dtype)  # the output keeps the input's dtype
    if isinstance(scale, Tensor) and scale.ndim == 1:
        c = scale.shape[0]
        check_audio("x", x, f"scaled_tanh with a per-channel scale of shape ({c},)",
                    channels=c, mono=False)
        scale = scale[:, None]  # (C, 1), broadcast over (B, C, S)
    # tanh rounds to +/-1 beyond |scale * x| ~ 9 in float32: clamp to the largest value below
    # 1 so the output stays strictly inside (-1, 1) (the true gradient there is < 1e-7)
    bound = 1.0 - torch.finfo(x.dtype).eps / 2
    return torch.tanh(scale * x).clamp(-bound, bound)


class ScaledTanhHead(VersionedModule):
    """Output head ``y = tanh(scale * x)`` with a learnable scale applied before the tanh.

    The scale starts at ``init_scale`` (1.0 by default, so the head is exactly ``tanh`` at
    initialisation and a random decoder is not amplified). Because the scale sits inside the
    tanh, the output never leaves ``(-1, 1)``; the scale only sets how hard the head
    compresses large pre-activations. No well-known codec learns this gain (DAC and SNAC use
    a fixed tanh, EnCodec and Mimi none, BigVGAN-v2 a clamp), so log :meth:`saturation` and
    compare against a fixed ``tanh`` before relying on it.

    Args:
        init_scale: Initial value of the scale, ``> 0``.
        channels: If given, learn one scale per audio channel ``C`` and require inputs of
            shape ``(B, C, S)``; otherwise one scalar scale for any input shape.
        parametrization: How the stored parameter ``raw_scale`` maps to the scale.
            ``"linear"``: ``scale = max(raw_scale, 1e-4)``: the optimiser cannot push it
            through zero and flip the output's sign (below the floor it gets no gradient).
            ``"exp"``: ``scale = exp(raw_scale)``; ``"softplus"``: ``scale =
            softplus(raw_scale)``. The last two keep the scale strictly positive.
        learnable: If ``False`` the scale is a persistent buffer, not a parameter: the head
            is a fixed ``tanh(init_scale * x)`` with the same ``state_dict`` keys.
        device: Factory argument, as in ``torch.nn``.
        dtype: Factory argument, as in ``torch.nn``.

    Raises:
        ValueError: If ``init_scale`` is not a finite number ``> 0``, ``channels < 1``, or the
            parametrization is unknown; in ``forward``, if the input is not ``(B, C, S)``
            while ``channels`` is set.
        TypeError: If ``init_scale`` is not a number or ``channels`` not an int; in
            ``forward``, if the input is not a floating-point tensor.

    Shape:
        - Input: ``(B, C, S)`` (any shape when ``channels`` is ``None``).
        - Output: same as the input, values in ``(-1, 1)``.

    Buffers:
        raw_scale: ``()`` or ``(C,)``, the unconstrained scale (a parameter when learnable).

    Example:
        >>> import torch
        >>> head = ScaledTanhHead(channels=2, parametrization="exp")
        >>> x = torch.randn(4, 2, 100)
        >>> torch.allclose(head(x), torch.tanh(x))
        True
        >>> head.scale
        tensor([1., 1.])
    """

    _version = 1

    def __init__(
        self,
        init_scale: float = 1.0,
        *,
        channels: int | None = None,
        parametrization: Parametrization = "linear",
        learnable: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.init_scale = check_positive("init_scale", init_scale, _OWNER)
        self.channels = None if channels is None else check_positive_int("channels", channels,
                                                                         _OWNER)
        self.parametrization = check_choice("parametrization", parametrization,
                                            _PARAMETRIZATIONS, _OWNER)
        self.learnable = learnable
        shape = () if channels is None else (channels,)
        raw = torch.empty(shape, device=device, dtype=dtype)
        if learnable:
            self.raw_scale = nn.Parameter(raw)
        else:
            self.register_buffer("raw_scale", raw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set the scale back to ``init_scale``."""
        s = self.init_scale
        if self.parametrization == "exp":
            raw = math.log(s)
        elif self.parametrization == "softplus":
            # inverse of softplus; for large s, log(expm1(s)) ~ s and expm1 overflows
            raw = s if s > 20.0 else math.log(math.expm1(s))
        else:
            raw = s
        with torch.no_grad():
            self.raw_scale.fill_(raw)

    def _scale(self) -> Tensor:
        if self.parametrization == "exp":
            return self.raw_scale.exp()
        if self.parametrization == "softplus":
            return F.softplus(self.raw_scale)
        return self.raw_scale.clamp_min(_MIN_LINEAR_SCALE)

    @property
    def scale(self) -> Tensor:
        """The current scale, detached: ``()`` or ``(C,)``, ready to log."""
        return self._scale().detach()

    if TYPE_CHECKING:  # nn.Module.__call__ is untyped: give head(x) forward's signature
        def __call__(self, x: Tensor) -> Tensor: ...

    @override
    def forward(self, x: Tensor) -> Tensor:
        """Apply ``tanh(scale * x)``.

        Args:
            x: Pre-activation waveform, ``(B, C, S)``.

        Returns:
            The bounded waveform, same shape as ``x``.
        """
        if self.channels is None:
            check_float_tensor("x", x, _OWNER)
        else:
            check_audio("x", x, _OWNER, channels=self.channels, mono=False)
        return scaled_tanh(x, self._scale())

    @staticmethod
    def saturation(y: Tensor, threshold: float = 0.99) -> Tensor:
        """Fraction of samples with ``|y| > threshold``, as a 0-d tensor (no device sync).

        A tanh head spending many samples near +/-1 is clipping: its gradient there is close
        to zero and loud passages are compressed. Log this next to the training loss. It
        works on any waveform, so the same number can be read off a fixed ``tanh`` or a
        clamp head for comparison.

        Args:
            y: Output waveform.
            threshold: Magnitude above which a sample counts as saturated, in ``(0, 1)``.

        Returns:
            A 0-d float tensor in ``[0, 1]``.

        Raises:
            TypeError: If ``y`` is not a floating-point tensor.
            ValueError: If ``threshold`` is not in ``(0, 1)``.
        """
        owner = "ScaledTanhHead.saturation"
        check_float_tensor("y", y, owner)
        check_range("threshold", threshold, 0, 1, owner, low_open=True, high_open=True)
        return (y.detach().abs() > threshold).float().mean()

    @override
    def extra_repr(self) -> str:
        return (f"init_scale={self.init_scale}, channels={self.channels}, "
                f"parametrization={self.parametrization!r}, learnable={self.learnable}")
