"""Per-example loudness (RMS) matching loss for waveforms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn
from typing_extensions import override

from ._checks import check_audio, check_audio_pair, check_choice, check_mask, check_positive

__all__ = ["RMSScaleLoss", "rms_scale_loss", "per_example_rms"]

_DOMAINS = ("linear", "log", "db")
_REDUCTIONS = ("mean", "sum", "none")

Domain = Literal["linear", "log", "db"]
Reduction = Literal["mean", "sum", "none"]


def _mask_weights(mask: Tensor | None, x: Tensor, owner: str) -> Tensor:
    """The mask as weights ``(B, 1, S)`` in ``x``'s dtype (ones without a mask)."""
    b, _, s = x.shape
    if mask is None:
        return torch.ones(b, 1, s, device=x.device, dtype=x.dtype)
    w = check_mask(mask, b, s, owner, time_axis="S", dtype=x.dtype, device=x.device)
    return w[:, None, :]  # (B, 1, S)


def _stats(x: Tensor, w: Tensor, remove_mean: bool, eps: float) -> tuple[Tensor, Tensor]:
    """Per-example RMS ``(B,)`` and per-example-and-channel mean ``(B, C)``."""
    count = w.sum(-1).clamp_min(1.0)  # (B, 1) valid samples per example
    mean = (x * w).sum(-1) / count  # (B, C)
    centred = x - mean[..., None] if remove_mean else x  # (B, C, S)
    power = (centred.square() * w).sum((1, 2)) / (count[:, 0] * x.shape[1])  # (B,)
    return torch.sqrt(power + eps), mean


def per_example_rms(
    x: Tensor, mask: Tensor | None = None, *, remove_mean: bool = True, eps: float = 1e-8
) -> Tensor:
    """RMS of each example over channels and valid samples.

    Args:
        x: Waveforms; a ``(B, S)`` input is treated as mono ``(B, 1, S)``.
        mask: Validity mask, ``True``/1 on real samples, ``False``/0 on padding.
        remove_mean: Subtract each example's per-channel mean (DC) first, so the result is
            the standard deviation rather than ``sqrt(mean^2 + variance)``.
        eps: Added to the mean power inside the square root.

    Returns:
        ``sqrt(mean power + eps)`` per example (float32 for half-precision inputs).

    Raises:
        TypeError: If ``x`` is not a floating-point tensor or ``mask`` not a tensor.
        ValueError: If ``x`` is not ``(B, C, S)``/``(B, S)`` or ``mask`` is not ``(B, S)``.

    Shape:
        - ``x``: ``(B, C, S)`` or ``(B, S)``; ``mask``: ``(B, S)``.
        - Output: ``(B,)``.
    """
    x = check_audio("x", x, "per_example_rms")
    x = x.to(torch.promote_types(x.dtype, torch.float32))  # half precision: float32 sums
    return _stats(x, _mask_weights(mask, x, "per_example_rms"), remove_mean, eps)[0]


def rms_scale_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    *,
    remove_mean: bool = True,
    domain: Domain = "linear",
    dc_weight: float = 0.0,
    eps: float = 1e-8,
    reduction: Reduction = "mean",
) -> Tensor:
    """Squared difference of per-example loudness (RMS), averaged over the batch.

    For each example ``b`` the RMS is taken over its channels and valid samples,
    ``rms_b = sqrt(mean_{c,s} (x - mean_b,c)^2 + eps)``, and the loss is
    ``mean_b (f(rms_pred_b) - f(rms_target_b))^2`` with ``f`` the identity (``"linear"``),
    ``ln`` (``"log"``) or ``20 log10`` (``"db"``). It is zero exactly when every example's
    loudness matches; a batch whose *global* RMS matches while individual examples are too
    loud or too quiet is still penalised.

    Why the mean is removed by default: ``RMS^2 = mean^2 + variance``, so a plain RMS can be
    matched by a DC offset and a wrong waveform (a decoder outputting a constant ``-0.31``
    "matches" a quiet target). With ``remove_mean=True`` the loss compares standard
    deviations and a DC offset earns nothing. ``dc_weight > 0`` adds an explicit
    ``dc_weight * mean_{b,c} (mean_pred - mean_target)^2`` term that penalises the offset
    itself; it can be combined with either setting.

    Args:
        pred: Predicted waveform.
        target: Reference waveform, same shape as ``pred``.
        mask: Validity mask over samples (padding is excluded from means and RMS).
        remove_mean: Remove each example's per-channel mean before the RMS.
        domain: ``"linear"``, ``"log"`` (natural log of the RMS) or ``"db"`` (``20 log10``).
            The log domains weigh a 2x error the same on quiet and loud examples.
        dc_weight: Weight of the explicit DC-offset term, ``>= 0``.
        eps: Added to the mean power inside the square root, ``> 0``: exact silence gives
            a finite value (``sqrt(eps)``) and a finite gradient.
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for ``(B,)``. With a
            ``mask``, an example without valid samples counts 0 and ``"mean"`` averages over
            the examples that have some.

    Returns:
        A 0-d tensor, or ``(B,)`` with ``reduction="none"``; float32 for half-precision
        inputs (the sums run in float32), float64 for float64 inputs.

    Raises:
        TypeError: If an input is not a floating-point tensor (mask: not a tensor).
        ValueError: On mismatched or unsupported shapes, an invalid option value, or a
            ``mask`` with no valid sample at all (checked in eager mode: one host read).

    Shape:
        - ``pred``, ``target``: ``(B, C, S)``, or ``(B, S)`` treated as mono ``(B, 1, S)``.
        - ``mask``: ``(B, S)``, shared by all channels.
        - Output: ``()`` or ``(B,)``.

    Example:
        >>> import torch
        >>> x = torch.randn(3, 1, 800)
        >>> rms_scale_loss(x, -x).item()  # same loudness, different waveform
        0.0
        >>> bool(rms_scale_loss(0.5 * x, x) > 0)
        True
    """
    owner = "rms_scale_loss"
    _check_options(domain, dc_weight, eps, reduction, owner)
    p, t = check_audio_pair(pred, target, owner)
    # sums of squares in half precision lose digits (bf16 keeps ~3): compute in float32
    dtype = torch.promote_types(torch.promote_types(p.dtype, t.dtype), torch.float32)
    p, t = p.to(dtype), t.to(dtype)
    w = _mask_weights(mask, p, owner)
    rms_p, mean_p = _stats(p, w, remove_mean, eps)
    rms_t, mean_t = _stats(t, w, remove_mean, eps)
    loss = (_loudness(rms_p, domain) - _loudness(rms_t, domain)).square()  # (B,)
    loss = loss + dc_weight * (mean_p - mean_t).square().mean(1)  # 0 with dc_weight 0
    if mask is None:
        return _reduce(loss, reduction)
    # an example without a valid sample has no loudness: it counts 0, and "mean" averages
    # over the examples that have samples
    has_samples = w.flatten(1).sum(1) > 0  # (B,)
    if not torch.compiler.is_compiling() and not bool(has_samples.any()):  # host read
        raise ValueError(f"{owner} expected mask to mark at least one valid sample, got "
                         f"an all-zero mask of shape {tuple(mask.shape)}")
    loss = torch.where(has_samples, loss, 0.0)
    if reduction == "mean":
        return loss.sum() / has_samples.sum().clamp_min(1)
    return _reduce(loss, reduction)


def _loudness(rms: Tensor, domain: str) -> Tensor:
    """``rms`` in ``domain``: as is (``"linear"``), ``ln`` (``"log"``) or ``20 log10``."""
    if domain == "log":
        return rms.log()
    if domain == "db":
        return 20.0 * rms.log10()
    return rms


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_options(domain: str, dc_weight: float, eps: float, reduction: str,
                   owner: str) -> None:
    check_choice("domain", domain, _DOMAINS, owner)
    check_choice("reduction", reduction, _REDUCTIONS, owner)
    check_positive("dc_weight", dc_weight, owner, allow_zero=True)
    check_positive("eps", eps, owner)


class RMSScaleLoss(nn.Module):
    """Module form of :func:`rms_scale_loss`; stateless, options fixed at construction.

    Args:
        remove_mean: Remove each example's per-channel mean before the RMS (default; see
            :func:`rms_scale_loss` for why).
        domain: ``"linear"``, ``"log"`` or ``"db"``.
        dc_weight: Weight of the explicit DC-offset term, ``>= 0``.
        eps: Added inside the square root, ``> 0``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Raises:
        ValueError: If an option value is invalid (at construction), or on bad input shapes.
        TypeError: If an input is not a floating-point tensor.

    Shape:
        - ``pred``, ``target``: ``(B, C, S)`` or ``(B, S)``; ``mask``: ``(B, S)``.
        - Output: ``()``, or ``(B,)`` with ``reduction="none"``.

    Example:
        >>> import torch
        >>> loss_fn = RMSScaleLoss(domain="log")
        >>> x = torch.randn(2, 1, 400)
        >>> round(loss_fn(2 * x, x).item(), 4)  # (ln 2)^2
        0.4805
    """

    def __init__(
        self,
        *,
        remove_mean: bool = True,
        domain: Domain = "linear",
        dc_weight: float = 0.0,
        eps: float = 1e-8,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        _check_options(domain, dc_weight, eps, reduction, "RMSScaleLoss")
        self.remove_mean = remove_mean
        self.domain = domain
        self.dc_weight = float(dc_weight)
        self.eps = float(eps)
        self.reduction = reduction

    if TYPE_CHECKING:  # nn.Module.__call__ is untyped: give loss(...) forward's signature
        def __call__(self, pred: Tensor, target: Tensor,
                     mask: Tensor | None = None) -> Tensor: ...

    @override
    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`rms_scale_loss`."""
        return rms_scale_loss(pred, target, mask, remove_mean=self.remove_mean,
                              domain=self.domain, dc_weight=self.dc_weight, eps=self.eps,
                              reduction=self.reduction)

    @override
    def extra_repr(self) -> str:
        return (f"remove_mean={self.remove_mean}, domain={self.domain!r}, "
                f"dc_weight={self.dc_weight}, eps={self.eps}, reduction={self.reduction!r}")
