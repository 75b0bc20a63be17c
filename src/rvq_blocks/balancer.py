"""Loss balancer: weights as gradient fractions at the model output (EnCodec/AudioCraft)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from typing_extensions import override

from . import _dist
from ._checks import VersionedModule, check_choice, check_positive, check_range

__all__ = ["LossBalancer"]

_OWNER = "LossBalancer"


@dataclass(frozen=True)
class _Losses:
    """The loss values of the last ``backward``, read by :attr:`LossBalancer.metrics`."""

    values: Tensor  # (L,) weighted losses, in ``weights`` order
    extra_names: list[str]  # the unbalanced losses' names
    extra: list[Tensor]  # their 0-d values


@dataclass(frozen=True)
class _Skipped(_Losses):
    """A step that ran no backward: some loss or gradient was not finite."""

    nonfinite: tuple[str, ...]  # the offending losses (``"x (gradient)"``, ``"on another rank"``)


@dataclass(frozen=True)
class _Applied(_Losses):
    """A step whose combined gradient was backpropagated."""

    scales: Tensor  # (L,) the factor applied to each loss
    norms: Tensor | None  # (L,) gradient norms at the output, when it was given
    ema: Tensor  # (L,) the norm EMA after the step
    effective: Tensor  # () the effective loss returned


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise TypeError(f"{_OWNER} expected weights to be a mapping name -> weight, "
                        f"got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError(f"{_OWNER} expected at least one weight, got {{}}")
    for k, v in weights.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{_OWNER} expected str -> float weights, got {k!r}: {v!r}")
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{_OWNER} expected finite weights >= 0, got {k!r}: {v}")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{_OWNER} expected weights with a positive sum, got {dict(weights)}")
    return {k: float(v) for k, v in weights.items()}


class LossBalancer(VersionedModule):
    """Combine named losses into one backward, by fixed weights or by gradient fractions.

    With ``balance_grads=True`` (EnCodec/AudioCraft semantics), given the model output ``y``
    and losses ``l_i(y)``, :meth:`backward`:

    1. computes each ``g_i = d l_i / d y`` with ``torch.autograd.grad`` (through the loss
       graph only, not the model);
    2. measures ``n_i = mean_b ||g_i[b]||_2`` (``||g_i||_2`` with ``per_batch_item=False``),
       averages it across ranks, and updates a bias-corrected EMA ``avg_i``
       (``sum <- decay * sum + n_i``, ``weight <- decay * weight + 1``, ``avg_i = sum /
       weight``, so the first step uses ``n_i`` itself rather than a value shrunk towards 0);
    3. backpropagates ``G = sum_i total_norm * (w_i / sum_j w_j) * g_i / (eps + avg_i)``
       through the model in **one** backward, together with the ``unbalanced`` losses, which
       are added as they are.

    Each loss thus supplies on average a fraction ``w_i / sum_j w_j`` of a gradient of norm
    ``total_norm`` at ``y``, whatever its own scale: ``{"recon": 1, "percept": 3}`` means 25%
    of the gradient comes from ``recon`` even if ``percept`` is 1000x larger. Losses that do
    not depend on ``y`` (VQ commitment/codebook losses live in latent space) must go in
    ``unbalanced``. With ``balance_grads=False`` the total is the plain ``sum_i w_i l_i +
    sum unbalanced`` and one ``backward`` is run on it.

    Non-finite losses (or gradients at ``y``) never reach the parameters: ``backward`` raises
    a ``FloatingPointError`` naming them, or with ``nonfinite="skip"`` runs no backward,
    leaves the EMA untouched, counts the step in ``num_skipped`` and reports it in
    :attr:`metrics`. This check reads values, so ``backward`` synchronises once with the
    device. In ``eval()`` mode the EMA is frozen and used as is.

    Args:
        weights: Name -> weight ``>= 0``, positive sum. The names fix the set of losses that
            ``backward`` expects and the order of the buffers.
        balance_grads: Gradient balancing (``True``) or static weights (``False``).
        total_norm: Target norm of the balanced gradient at ``y``.
        ema_decay: Decay of the norm EMA, in ``[0, 1)``.
        per_batch_item: Norms per batch item, then averaged (``True``), or over the whole
            tensor.
        eps: Added to the EMA norm in the denominator.
        nonfinite: ``"raise"`` or ``"skip"`` on a non-finite loss or gradient.
        reduce_fn: Averages a ``(L + 1,)`` tensor across workers: the per-loss norms, then a
            flag that is 1 where this rank saw a non-finite value (after averaging, ``> 0``
            means some rank did, and every rank skips or raises). ``None``: mean over ranks
            with one ``all_reduce`` when ``torch.distributed`` is initialised, no collective
            otherwise. Every rank must call ``backward`` the same number of times. With
            this default and ``per_batch_item``, the balanced gradient at each rank's ``y``
            is multiplied by the number of ranks: it is a sum over batch items, and DDP
            averages parameter gradients over ranks, so the product is the gradient one
            process would get on the concatenated batch (and keeps its ratio to the
            ``unbalanced`` losses, which are means).
        device: Factory argument for the buffers.
        dtype: Factory argument for the EMA buffers.

    Raises:
        ValueError: On invalid options; in ``backward``, if the loss names differ from the
            weight names, a loss is not a scalar, or a balanced loss does not depend on ``y``.
        TypeError: If ``weights`` is not a mapping of names to numbers.
        FloatingPointError: In ``backward``, on a non-finite loss with ``nonfinite="raise"``.

    Shape:
        - ``losses``: 0-d tensors; ``output``: ``(B, ...)``, e.g. ``(B, C, S)``.

    Buffers:
        norm_ema_sum: ``(L,)`` decayed sums of the gradient norms, in ``weights`` order.
        norm_ema_weight: ``()`` decayed count (the bias correction).
        num_skipped: ``()`` int64, steps skipped for non-finite values.

    Example:
        >>> import torch
        >>> y = torch.zeros(2, 1, 8, requires_grad=True)
        >>> losses = {"a": (y - 1).abs().mean(), "b": 100 * (y + 1).abs().mean()}
        >>> balancer = LossBalancer({"a": 1.0, "b": 1.0})
        >>> _ = balancer.backward(losses, y)
        >>> bool(y.grad.abs().max() < 1e-6)  # the two pulls cancel despite the 100x scale
        True
        >>> round(balancer.metrics["b/share"], 3)
        0.5
    """

    _version = 1
    norm_ema_sum: Tensor
    norm_ema_weight: Tensor
    num_skipped: Tensor

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        balance_grads: bool = True,
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        eps: float = 1e-12,
        nonfinite: Literal["raise", "skip"] = "raise",
        reduce_fn: Callable[[Tensor], Tensor] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.weights = _check_weights(weights)
        self.names = tuple(self.weights)
        self.balance_grads = balance_grads
        self.total_norm = check_positive("total_norm", total_norm, _OWNER)
        self.ema_decay = check_range("ema_decay", ema_decay, 0, 1, _OWNER, high_open=True)
        self.per_batch_item = per_batch_item
        self.eps = check_positive("eps", eps, _OWNER)
        self.nonfinite = check_choice("nonfinite", nonfinite, ("raise", "skip"), _OWNER)
        self.reduce_fn = _dist.mean_over_ranks if reduce_fn is None else reduce_fn
        n = len(self.names)
        self.register_buffer("norm_ema_sum", torch.empty(n, device=device, dtype=dtype))
        self.register_buffer("norm_ema_weight", torch.empty((), device=device, dtype=dtype))
        self.register_buffer("num_skipped", torch.empty((), device=device, dtype=torch.long))
        self._last: _Skipped | _Applied | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Forget the norm averages and the skip count."""
        self.norm_ema_sum.zero_()
        self.norm_ema_weight.zero_()
        self.num_skipped.zero_()

    @property
    def ema_norms(self) -> Tensor:
        """``(L,)`` bias-corrected EMA of the gradient norms (zeros before the first step)."""
        return self.norm_ema_sum / self.norm_ema_weight.clamp_min(1e-30)

    def backward(self, losses: Mapping[str, Tensor], output: Tensor | None = None, *,
                 unbalanced: Mapping[str, Tensor] | None = None) -> Tensor:
        """Backpropagate the combined gradient and return the effective loss (detached).

        Args:
            losses: Name -> scalar loss; names must equal the weight names.
            output: The model output ``y`` the losses depend on. Required when balancing;
                optional in static mode, where it only enables the gradient-share metrics.
            unbalanced: Name -> scalar loss added with weight 1 and never rescaled (e.g.
                ``{"vq": rvq_out.loss}``).

        Returns:
            ``sum_i scale_i * l_i + sum unbalanced`` as a detached 0-d tensor (for logging),
            with ``scale_i`` the factor actually applied to loss ``i``.

        Raises:
            ValueError: See the class docstring.
            FloatingPointError: On a non-finite loss or gradient with ``nonfinite="raise"``.
        """
        extra = dict(unbalanced or {})
        self._check_losses(losses, output, extra)
        dtype = functools.reduce(torch.promote_types, [v.dtype for v in losses.values()],
                                 torch.float32)  # losses may differ in precision under autocast
        vals = torch.stack([losses[k].detach().reshape(()).to(dtype) for k in self.names])  # (L,)
        extra_vals = [extra[k].detach().reshape(()).to(dtype) for k in extra]
        grads = None if output is None else self._output_grads(losses, output)
        norms = None if grads is None else self._norms(grads)  # (L,)
        norms_avg, any_bad = self._reduce(vals, extra_vals, norms)
        if any_bad:
            return self._nonfinite(vals, extra_vals, norms, list(extra))
        w = vals.new_tensor([self.weights[k] for k in self.names])  # (L,)
        scales = w if norms_avg is None else self._balanced_scales(w, norms_avg)  # (L,)
        effective = (scales * vals).sum() + sum(extra_vals, vals.new_zeros(()))
        self._last = _Applied(vals, list(extra), extra_vals, scales=scales, norms=norms,
                              ema=self.ema_norms, effective=effective)
        self._backprop(losses, output, grads, scales, extra)
        return effective

    def _output_grads(self, losses: Mapping[str, Tensor], output: Tensor) -> list[Tensor]:
        """Each loss's gradient at ``output`` (zeros where it does not depend on it), through
        the loss graph only; ``output.grad`` is left as it was."""
        kept = output.grad if output.retains_grad else None
        raw = [torch.autograd.grad(losses[k], output, retain_graph=True, allow_unused=True)[0]
               if losses[k].requires_grad else None for k in self.names]
        if output.retains_grad:  # autograd.grad also fills a retained .grad: undo that
            output.grad = kept
        missing = [k for k, g in zip(self.names, raw, strict=True) if g is None]
        if self.balance_grads and missing:
            raise ValueError(f"{_OWNER}.backward: losses {missing} do not depend on output; "
                             f"pass them in unbalanced= instead")
        return [torch.zeros_like(output) if g is None else g for g in raw]

    def _norms(self, grads: list[Tensor]) -> Tensor:
        out = []
        for g in grads:
            if self.per_batch_item and g.ndim > 0:
                out.append(g.flatten(1).norm(dim=1).mean() if g.ndim > 1 else g.abs().mean())
            else:
                out.append(g.norm())
        return torch.stack(out).detach()  # (L,)

    def _reduce(self, vals: Tensor, extra_vals: list[Tensor],
                norms: Tensor | None) -> tuple[Tensor | None, bool]:
        """The norms averaged across ranks (``None`` unless balancing), and whether any rank
        saw a non-finite loss or norm (the one device sync of ``backward``)."""
        checks = [vals, *extra_vals] + ([norms] if norms is not None else [])
        finite = torch.isfinite(torch.cat([c.reshape(-1) for c in checks]).float())
        any_bad = (~finite.all()).to(self.norm_ema_sum.dtype)
        norms_avg = None
        if norms is not None and self.balance_grads:
            # One reduction carries the norms and a non-finite flag: every rank then takes the
            # same branch (all skip or raise together), so no rank is left alone in a collective.
            packed = torch.cat([torch.where(torch.isfinite(norms), norms, 0.0).to(any_bad),
                                any_bad[None]])  # (L + 1,)
            reduced = self.reduce_fn(packed)
            norms_avg, any_bad = reduced[:-1], reduced[-1]
        return norms_avg, bool(any_bad > 0)

    def _balanced_scales(self, w: Tensor, norms_avg: Tensor) -> Tensor:
        """``total_norm * w_i / sum w / (eps + avg_i)`` per loss, the EMA updated in training."""
        if self.training:
            self.norm_ema_sum.mul_(self.ema_decay).add_(norms_avg)
            self.norm_ema_weight.mul_(self.ema_decay).add_(1.0)
            avg = self.ema_norms
        else:
            avg = torch.where(self.norm_ema_weight > 0, self.ema_norms, norms_avg)
        scales = (self.total_norm * w / w.sum() / (self.eps + avg.to(w))).detach()  # (L,)
        # a loss whose gradient at y has always been zero has nothing to balance: scale 0,
        # not total_norm / eps (a 1e12 factor in the logs and in the returned loss value)
        scales = torch.where(avg.to(w) > 0, scales, 0.0)
        # DDP averages over ranks the gradients that one process would sum over items
        return scales * self._ranks()

    def _ranks(self) -> int:
        """Ranks whose per-item normalised gradients DDP averages (1 outside DDP)."""
        if self.per_batch_item and self.reduce_fn is _dist.mean_over_ranks:
            return _dist.world_size()
        return 1

    def _backprop(self, losses: Mapping[str, Tensor], output: Tensor | None,
                  grads: list[Tensor] | None, scales: Tensor, extra: dict[str, Tensor]) -> None:
        """One backward of the combined gradient at ``output`` (or of the weighted sum of the
        losses in static mode) together with the unbalanced losses."""
        live = [v.reshape(()) for v in extra.values() if v.requires_grad]
        extra_total = sum(live[1:], live[0]) if live else None
        if grads is not None and output is not None and self.balance_grads:
            g_total = sum(s * g for s, g in zip(scales, grads, strict=True))
            roots, seeds = [output], [g_total]
            if extra_total is not None:
                roots.append(extra_total)
                seeds.append(torch.ones_like(extra_total))
            torch.autograd.backward(roots, seeds)
        else:
            total = sum((self.weights[k] * losses[k].reshape(()) for k in self.names),
                        scales.new_zeros(()))
            torch.autograd.backward(total if extra_total is None else total + extra_total)

    def _check_losses(self, losses: Mapping[str, Tensor], output: Tensor | None,
                      extra: dict[str, Tensor]) -> None:
        if not isinstance(losses, Mapping):
            raise TypeError(f"{_OWNER}.backward expected losses to be a mapping name -> tensor, "
                            f"got {type(losses).__name__}")
        if set(losses) != set(self.names):
            raise ValueError(f"{_OWNER}.backward expected losses named {sorted(self.names)} "
                             f"(the weights), got {sorted(losses)}")
        clash = sorted(set(extra) & set(self.names))
        if clash:
            raise ValueError(f"{_OWNER}.backward: unbalanced losses {clash} are also weighted")
        for k, v in [*losses.items(), *extra.items()]:
            if not isinstance(v, Tensor) or v.numel() != 1:
                shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(f"{_OWNER}.backward expected loss {k!r} to be a scalar tensor, "
                                 f"got {shape}")
            if not v.is_floating_point():
                raise TypeError(f"{_OWNER}.backward expected loss {k!r} with a floating-point "
                                f"dtype, got {v.dtype}")
        if not any(v.requires_grad for v in [*losses.values(), *extra.values()]):
            raise ValueError(f"{_OWNER}.backward expected at least one loss that requires "
                             f"grad, got none (losses {sorted(losses)}, unbalanced "
                             f"{sorted(extra)})")
        if output is None:
            if self.balance_grads:
                raise ValueError(f"{_OWNER}.backward with balance_grads=True needs the model "
                                 f"output the losses depend on, got None")
        elif not isinstance(output, Tensor):
            raise TypeError(f"{_OWNER}.backward expected output to be a torch.Tensor, "
                            f"got {type(output).__name__}")
        elif not output.requires_grad:
            raise ValueError(f"{_OWNER}.backward expected an output that requires grad, got a "
                             f"tensor of shape {tuple(output.shape)} with requires_grad=False")

    def _nonfinite(self, vals: Tensor, extra_vals: list[Tensor], norms: Tensor | None,
                   extra_names: list[str]) -> Tensor:
        bad = [k for k, v in zip(self.names, vals.tolist(), strict=True) if not math.isfinite(v)]
        bad += [k for k, v in zip(extra_names, extra_vals, strict=True)
                if not math.isfinite(v.item())]
        if norms is not None:
            bad += [f"{k} (gradient)" for k, v, n in zip(self.names, vals.tolist(),
                                                         norms.tolist(), strict=True)
                    if math.isfinite(v) and not math.isfinite(n)]
        if not bad:
            bad = ["on another rank"]
        if self.nonfinite == "raise":
            raise FloatingPointError(f"{_OWNER}: non-finite loss {', '.join(bad)}; values "
                                     f"{dict(zip(self.names, vals.tolist(), strict=True))}")
        self.num_skipped.add_(1)
        self._last = _Skipped(vals, extra_names, extra_vals, nonfinite=tuple(bad))
        return vals.new_full((), float("nan"))

    @property
    def metrics(self) -> dict[str, float]:
        """Flat ``name/key -> float`` record of the last ``backward``, ready to log.

        Per weighted loss: ``value`` (raw loss), ``weight``, ``scale`` (factor applied),
        ``grad_norm`` (``n_i`` this step), ``ema_norm`` (``avg_i``, gradient mode only),
        ``share`` (fraction of the summed per-loss gradient norms at ``y`` after scaling,
        ``scale_i n_i / sum_j scale_j n_j``; it tends to ``w_i / sum w`` when balancing).
        ``grad_norm`` and ``share`` need ``output`` in static mode. Per unbalanced loss:
        ``value``. Global: ``total`` (effective loss), ``skipped`` (1.0 if the step was
        skipped), ``num_skipped``, and ``nonfinite/<name>`` = 1.0 for each offending loss.
        Reading it synchronises with the device.
        """
        last = self._last
        if last is None:
            return {}
        out: dict[str, float] = {}
        for k, v in zip(self.names, last.values.tolist(), strict=True):
            out[f"{k}/value"] = v
            out[f"{k}/weight"] = self.weights[k]
        for k, v in zip(last.extra_names, last.extra, strict=True):
            out[f"{k}/value"] = v.item()
        out["skipped"] = float(isinstance(last, _Skipped))
        out["num_skipped"] = float(self.num_skipped.item())
        if isinstance(last, _Skipped):
            out.update({f"nonfinite/{k}": 1.0 for k in last.nonfinite})
            return out
        scales, norms = last.scales, last.norms
        ema = last.ema.tolist()
        for i, k in enumerate(self.names):
            out[f"{k}/scale"] = scales[i].item()
            if self.balance_grads:
                out[f"{k}/ema_norm"] = ema[i]
        if norms is not None:
            contrib = scales.to(norms) * norms
            share = (contrib / contrib.sum().clamp_min(1e-30)).tolist()
            for i, k in enumerate(self.names):
                out[f"{k}/grad_norm"] = norms[i].item()
                out[f"{k}/share"] = share[i]
        out["total"] = last.effective.item()
        return out

    @override
    def get_extra_state(self) -> Any:
        return {"names": list(self.names)}

    @override
    def set_extra_state(self, state: Any) -> None:
        names = list(state.get("names", [])) if isinstance(state, dict) else []
        if names != list(self.names):
            raise ValueError(f"{_OWNER} state_dict holds losses {names}, this balancer has "
                             f"{list(self.names)}")

    @override
    def extra_repr(self) -> str:
        return (f"weights={self.weights}, balance_grads={self.balance_grads}, "
                f"total_norm={self.total_norm}, ema_decay={self.ema_decay}, "
                f"per_batch_item={self.per_batch_item}, nonfinite={self.nonfinite!r}")
