"""Residual vector quantization (SoundStream, arXiv:2107.03312, Algorithm 1) done right."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from typing_extensions import override

from . import _codebook as cb
from . import _dist
from . import _vq_ops as ops
from ._checks import (
    Migration,
    VersionedModule,
    added_buffer,
    check_latents,
    check_mask,
    check_positive_int,
    check_range,
)
from ._compile import eager
from .outputs import CodebookUsage, RVQOutput


class _Stages(NamedTuple):
    """What the greedy residual loop returns (flat vectors, ``n`` stages)."""

    total: Tensor  # (N, D) sum of the chosen codes (gradient to the projections only)
    indices: Tensor  # (N, n)
    commitment_loss: Tensor  # (n,)
    codebook_loss: Tensor  # (n,)
    counts: Tensor  # (n, K) weighted code counts
    inputs: list[Tensor]  # n x (N, Dc) detached stage inputs


_OWNER = "ResidualVQ"


class ResidualVQ(VersionedModule):
    """A stack of vector quantizers, each coding what the previous ones left over.

    Stage ``k`` picks the code nearest to the residual ``r_k = x - (c_1 + ... + c_{k-1})``;
    ``quantized`` is the sum of the chosen codes with one straight-through estimator on the
    sum (gradient ``I``, or the rotation-trick estimate). Residuals come from detached codes,
    so every stage's commitment loss reaches the encoder, and the losses are averaged over the
    stages that ran. Codebooks start from k-means over the first training batches and learn
    by EMA or by gradient; unused codes are revived. Lookups, k-means and EMA run in float32
    (float64 for float64 input) even under autocast; masked and non-finite vectors never reach
    the losses or the codebooks. Why, and how init and revival decide: ``docs/residual_vq.md``.

    Args:
        dim: Latent dimension ``D``.
        num_quantizers: Number of stages ``Q``.
        codebook_size: Codes per stage ``K``.
        codebook_dim: Look codes up in this dimension through per-stage linear projections.
        use_cosine: Choose codes by cosine similarity (L2-normalised lookup).
        ema: Learn codebooks by EMA; ``False``: parameters trained by the codebook loss.
        decay: EMA decay of the code statistics.
        eps: Laplace-smoothing constant of the EMA cluster sizes.
        commitment_weight: Weight of the commitment loss inside ``loss``.
        kmeans_init: Initialise codebooks by k-means on the first training batches.
        kmeans_iters: Lloyd iterations of that k-means.
        kmeans_samples: Vectors gathered before the k-means init commits (``2 * K``).
        dead_code_threshold: Revive codes used under this fraction of ``1 / K`` (0: off).
        dead_code_patience: Revive codes unchosen this many times their usage share (0: off).
        quantizer_dropout: Probability that a training batch runs only ``n ~ U{1..Q}`` stages.
        gradient_estimator: ``"ste"`` (straight-through) or ``"rotation"`` (rotation trick).
        beam_size: Beam width of ``encode`` and eval-mode ``forward`` (1: greedy).
        joint_refine: EMA target ``x - sum_{j != k} c_j``; needs ``ema`` and no projections.
        channel_last: Inputs and ``quantized`` are ``(B, T, D)`` instead of ``(B, D, T)``.
        sync: Same codebooks on every rank (``None``: auto; ``True``: require a process group).
        device: Device of the codebooks, buffers and projections.
        dtype: Dtype of the codebooks, buffers and projections.

    Shape:
        - Input ``x``: ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``); ``mask``: ``(B, T)``.
        - Output: :class:`~rvq_blocks.RVQOutput`, ``quantized`` like ``x``,
          ``indices`` ``(B, n, T)`` int64.

    Example:
        >>> rvq = ResidualVQ(dim=64, num_quantizers=4, codebook_size=256)
        >>> out = rvq(torch.randn(2, 64, 50))
        >>> out.quantized.shape, out.indices.shape
        (torch.Size([2, 64, 50]), torch.Size([2, 4, 50]))
    """

    _version = 2  # 2: adds ``unused_for`` (0.1.0 files load with zeros)
    _state_migrations: ClassVar[Mapping[int, Migration]] = {
        1: added_buffer("unused_for", "cluster_size")}
    codebook: Tensor
    embed_sum: Tensor  # registered only with ema=True
    cluster_size: Tensor
    unused_for: Tensor
    initialized: Tensor

    if TYPE_CHECKING:
        def __call__(self, x: Tensor, mask: Tensor | None = None,
                     n_quantizers: int | None = None) -> RVQOutput: ...

    def __init__(self, dim: int, num_quantizers: int = 8, codebook_size: int = 1024, *,
                 codebook_dim: int | None = None, use_cosine: bool = False, ema: bool = True,
                 decay: float = 0.99, eps: float = 1e-5, commitment_weight: float = 0.25,
                 kmeans_init: bool = True, kmeans_iters: int = 10,
                 kmeans_samples: int | None = None, dead_code_threshold: float = 0.1,
                 dead_code_patience: float = 4.0, quantizer_dropout: float = 0.0,
                 gradient_estimator: Literal["ste", "rotation"] = "ste", beam_size: int = 1,
                 joint_refine: bool = False, channel_last: bool = False,
                 sync: bool | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim, _OWNER)
        self.num_quantizers = check_positive_int("num_quantizers", num_quantizers, _OWNER)
        self.codebook_size = check_positive_int("codebook_size", codebook_size, _OWNER)
        self.codebook_dim = dim if codebook_dim is None else \
            check_positive_int("codebook_dim", codebook_dim, _OWNER)
        self._check_options(decay, eps, commitment_weight, dead_code_threshold,
                            quantizer_dropout, dead_code_patience, kmeans_iters, kmeans_samples,
                            gradient_estimator, beam_size, sync, joint_refine, ema)
        self.use_cosine, self.ema, self.channel_last = use_cosine, ema, channel_last
        self.kmeans_init, self.kmeans_iters = kmeans_init, kmeans_iters
        self.gradient_estimator, self.joint_refine = gradient_estimator, joint_refine
        self.sync = sync
        self._dropout_generator: torch.Generator | None = None  # shared by all ranks
        self._forced_indices: Tensor | None = None  # (N, n), set only by forced_codes
        self._needs_init: bool  # k-means init pending (a Python flag: no host read per step)
        self._pool: list[Tensor]  # valid latents gathered for the k-means init
        self._provisional: bool  # whether a provisional init from the pool has run
        self._rescale_usage: bool  # init_from_batch_: usage set at the first training step
        self._register_state(device, dtype)
        self.reset_parameters()

    def _check_options(self, decay: float, eps: float, commitment_weight: float,
                       dead_code_threshold: float, quantizer_dropout: float,
                       dead_code_patience: float, kmeans_iters: int, kmeans_samples: int | None,
                       gradient_estimator: str, beam_size: int, sync: bool | None,
                       joint_refine: bool, ema: bool) -> None:
        """Check the options after the sizes, in this order, and store the numeric ones."""
        self.decay = check_range("decay", decay, 0.0, 1.0, _OWNER, low_open=True, high_open=True)
        self.eps = check_range("eps", eps, 0.0, math.inf, _OWNER, low_open=True)
        self.commitment_weight = check_range("commitment_weight", commitment_weight, 0.0,
                                             math.inf, _OWNER)
        self.dead_code_threshold = check_range("dead_code_threshold", dead_code_threshold,
                                               0.0, 1.0, _OWNER, high_open=True)
        self.quantizer_dropout = check_range("quantizer_dropout", quantizer_dropout, 0.0, 1.0,
                                             _OWNER)
        self.dead_code_patience = check_range("dead_code_patience", dead_code_patience, 0.0,
                                              math.inf, _OWNER)
        if isinstance(kmeans_iters, bool) or not isinstance(kmeans_iters, int) \
                or kmeans_iters < 0:
            raise ValueError(f"{_OWNER} expected kmeans_iters to be an int >= 0, "
                             f"got {kmeans_iters!r}")
        self.kmeans_samples = 2 * self.codebook_size if kmeans_samples is None else \
            check_positive_int("kmeans_samples", kmeans_samples, _OWNER)
        if gradient_estimator not in ("ste", "rotation"):
            raise ValueError(f"{_OWNER} expected gradient_estimator 'ste' or 'rotation', "
                             f"got {gradient_estimator!r}")
        self.beam_size = check_positive_int("beam_size", beam_size, _OWNER)
        if sync is not None and not isinstance(sync, bool):
            raise TypeError(f"{_OWNER} expected sync to be None, True or False, got {sync!r}")
        if joint_refine and (not ema or self.codebook_dim != self.dim):
            raise ValueError(f"{_OWNER}: joint_refine needs ema=True and codebook_dim == dim, "
                             f"got ema={ema}, codebook_dim={self.codebook_dim}, dim={self.dim}")

    def _register_state(self, device: torch.device | str | None,
                        dtype: torch.dtype | None) -> None:
        """The codebook (a parameter when learned), its buffers and the projections, empty."""
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        shape = (self.num_quantizers, self.codebook_size, self.codebook_dim)
        if self.ema:
            self.register_buffer("codebook", torch.empty(shape, **factory))
            self.register_buffer("embed_sum", torch.empty(shape, **factory))
        else:
            self.codebook = nn.Parameter(torch.empty(shape, **factory))
        self.register_buffer("cluster_size", torch.empty(shape[:2], **factory))
        self.register_buffer("unused_for", torch.empty(shape[:2], **factory))
        self.register_buffer("initialized", torch.empty((), dtype=torch.bool, device=device))
        self.project_in: nn.ModuleList | None = None
        self.project_out: nn.ModuleList | None = None
        if self.codebook_dim != self.dim:
            q, d, cdim = self.num_quantizers, self.dim, self.codebook_dim
            self.project_in = nn.ModuleList(nn.Linear(d, cdim, **factory) for _ in range(q))
            self.project_out = nn.ModuleList(nn.Linear(cdim, d, **factory) for _ in range(q))

    # ------------------------------------------------------------------ state
    def reset_parameters(self) -> None:
        """Random codebooks (unit-variance codes), uniform usage, data-dependent init pending."""
        self._needs_init = self.kmeans_init
        self._pool, self._provisional, self._rescale_usage = [], False, False
        with torch.no_grad():
            if self.codebook.device.type == "meta":
                return
            nn.init.normal_(self.codebook)
            self.cluster_size.fill_(1.0)
            self.unused_for.zero_()
            if self.ema:
                self.embed_sum.copy_(self.codebook)
            self.initialized.fill_(not self.kmeans_init)
            for linears in (self.project_in, self.project_out):
                for lin in cast("list[nn.Linear]", list(linears or ())):
                    lin.reset_parameters()

    @override
    def _after_load(self, state_dict: Mapping[str, Any], prefix: str) -> None:
        key = prefix + "initialized"
        if key in state_dict:
            self._needs_init = not bool(state_dict[key])
            self._pool, self._provisional = [], False

    def _state(self, n: int | None = None) -> cb.State:
        """Views of the codebook state of the first ``n`` stages (all with ``None``)."""
        return cb.State(self.codebook.data[:n], self.cluster_size[:n], self.unused_for[:n],
                        self.embed_sum[:n] if self.ema else None)

    @contextlib.contextmanager
    def forced_codes(self, codes: Tensor) -> Iterator[None]:
        """Within the block, ``forward`` uses ``codes`` instead of searching for codes.

        The losses and outputs then are smooth functions of the input, which is what finite
        differences (``torch.autograd.gradcheck``) need; :mod:`rvq_blocks.testing` uses it.

        Args:
            codes: ``(B, n, T)`` integer codes for the inputs that follow.
        """
        self._forced_indices = rearrange(codes, "b n t -> (b t) n")
        try:
            yield
        finally:
            self._forced_indices = None

    @override
    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_quantizers={self.num_quantizers}, "
                f"codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
                f"ema={self.ema}, use_cosine={self.use_cosine}")

    # ------------------------------------------------------------------ helpers
    def bits_per_frame(self, n_quantizers: int | None = None) -> float:
        """Bits needed per frame: ``n * log2(codebook_size)``."""
        return self._n(n_quantizers) * math.log2(self.codebook_size)

    def bitrate(self, frame_rate: float, n_quantizers: int | None = None) -> float:
        """Bits per second at ``frame_rate`` frames per second."""
        return frame_rate * self.bits_per_frame(n_quantizers)

    def _n(self, n_quantizers: int | None) -> int:
        if n_quantizers is None:
            return self.num_quantizers
        check_positive_int("n_quantizers", n_quantizers, _OWNER)
        if n_quantizers > self.num_quantizers:
            raise ValueError(f"{_OWNER} expected n_quantizers <= {self.num_quantizers}, "
                             f"got {n_quantizers}")
        return n_quantizers

    def _flatten(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Check ``x`` and flatten it: float ``(N, D)`` vectors, ``(N,)`` bool finite rows and
        ``(N,)`` weights (1 = counted, 0 = masked out or non-finite)."""
        x = check_latents(x, self.dim, _OWNER, self.channel_last)
        z = x if self.channel_last else x.transpose(1, 2)  # (B, T, D)
        b, t, _ = z.shape
        compute = torch.promote_types(torch.promote_types(x.dtype, self.codebook.dtype),
                                      torch.float32)
        z = z.reshape(b * t, self.dim).to(compute)  # (N, D)
        finite = torch.isfinite(z).all(dim=-1)  # (N,)
        weight = finite.to(compute)
        if mask is not None:
            weight = weight * check_mask(mask, b, t, _OWNER).reshape(-1).ne(0).to(compute)
        return z, finite, weight

    def _batch_time(self, x: Tensor) -> tuple[int, int]:
        return (x.shape[0], x.shape[1]) if self.channel_last else (x.shape[0], x.shape[2])

    def _unflatten(self, v: Tensor, b: int, t: int) -> Tensor:
        v = v.reshape(b, t, -1)  # (B, T, D)
        return v if self.channel_last else v.transpose(1, 2)  # (B, D, T)

    def _to_code_space(self, k: int, r: Tensor) -> Tensor:
        return r if self.project_in is None else _linear(self.project_in[k], r)

    def _from_code_space(self, k: int, c: Tensor) -> Tensor:
        return c if self.project_out is None else _linear(self.project_out[k], c)

    def _code_vectors(self, k: int, dtype: torch.dtype) -> Tensor:
        """``(K, D)``: what each code of stage ``k`` adds to the reconstruction."""
        return self._from_code_space(k, self.codebook[k].to(dtype))

    def _assign(self, z: Tensor, n: int) -> Tensor | None:
        """Beam-search indices ``(N, n)`` in eval with ``beam_size > 1``, else ``None`` (greedy)."""
        if self._forced_indices is not None:
            return self._forced_indices[:, :n]
        if self.beam_size == 1 or self.training:
            return None
        with torch.no_grad():
            return ops.beam_search(z.detach(), [self._code_vectors(k, z.dtype)
                                                for k in range(n)], self.beam_size)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, mask: Tensor | None = None,
                n_quantizers: int | None = None) -> RVQOutput:
        """Quantize ``x``; in training also update the codebooks (EMA, revival, init).

        Args:
            x: Latents, ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``), any float dtype.
            mask: Optional ``(B, T)``, true/non-zero on real frames. Padding is still
                quantized but excluded from losses, statistics, k-means and EMA updates.
            n_quantizers: Run only the first ``n`` stages (fixed lower bitrate). In training
                with ``quantizer_dropout`` a random ``n`` is drawn when this is ``None``.

        Returns:
            :class:`~rvq_blocks.RVQOutput`.

        Raises:
            TypeError: If ``x`` is not a floating-point tensor or ``mask`` not a tensor.
            ValueError: If ``x`` is not ``(B, D, T)`` with ``D == dim`` and ``B, T >= 1``,
                or ``mask`` is not ``(B, T)``; in training with ``sync=True`` when no
                ``torch.distributed`` process group is initialised.
        """
        x = check_latents(x, self.dim, _OWNER, self.channel_last)  # before x.device is read
        n = self._n(n_quantizers)
        synced = self.training and _dist.is_active(self.sync, _OWNER)
        if self.training and n_quantizers is None and self.quantizer_dropout > 0:
            # One draw per batch on the CPU RNG (a graph break under torch.compile); across
            # ranks from one generator seeded alike, so every rank runs the same stages.
            gen = self._shared_generator() if synced else None
            drop, pick = torch.rand(2, generator=gen).tolist()  # one host read per step
            if drop < self.quantizer_dropout:
                n = min(1 + int(pick * self.num_quantizers), self.num_quantizers)
        with torch.autocast(x.device.type, enabled=False):
            z, finite, weight = self._flatten(x, mask)
            if self.training and self._needs_init:
                self._gather_and_init(z, weight, synced)
            out = self._quantize(z, finite, weight, n, mask is not None, synced)
        b, t = self._batch_time(x)
        quantized = self._unflatten(out[0].to(x.dtype), b, t)
        indices = out[1].t().reshape(n, b, t).transpose(0, 1)  # (B, n, T)
        return RVQOutput(quantized, indices, *out[2:])

    def _shared_generator(self) -> torch.Generator:
        if self._dropout_generator is None:
            self._dropout_generator = _dist.shared_generator(self.codebook.device)
        return self._dropout_generator

    def _stages(self, z: Tensor, weight: Tensor, n: int, assigned: Tensor | None = None,
                fit: Callable[[int, Tensor], Tensor] | None = None) -> _Stages:
        """The greedy residual loop behind ``forward``, ``encode`` and the k-means init.

        Stage ``k`` codes ``r_k`` with the code ``assigned[:, k]`` (beam search, forced codes)
        or the nearest one; ``fit(k, ze)`` (k-means init) first fits the stage's codes to its
        inputs. Residuals are built from detached codes, so every stage's commitment loss
        reaches the input.

        Shape:
            - ``z``: ``(N, D)``; ``weight``: ``(N,)``; ``assigned``: ``(N, n)``.
        """
        valid = weight > 0  # (N,)
        denom = weight.sum().clamp_min(1.0) * self.codebook_dim
        residual, total = z, torch.zeros_like(z)  # total: grads to projections only
        idx_l: list[Tensor] = []
        commit: list[Tensor] = []
        codebook_loss: list[Tensor] = []
        counts: list[Tensor] = []
        inputs: list[Tensor] = []
        for k in range(n):
            ze = self._to_code_space(k, residual)  # (N, Dc)
            codes = self.codebook[k].to(z.dtype) if fit is None else fit(k, ze.detach())
            idx = ops.nearest(ze.detach(), codes, self.use_cosine) if assigned is None \
                else assigned[:, k]
            chosen = F.embedding(idx, codes)  # (N, Dc); carries codebook grads if learned
            codebook_loss.append(z.new_zeros(()) if self.ema else
                                 _masked_mse(chosen - ze.detach(), valid, denom))
            if self.project_out is None:
                step = chosen.detach()  # (N, D)
                residual = residual - step
                commit.append(_masked_mse(residual, valid, denom))  # r_k - c_k = r_{k+1}
            else:
                commit.append(_masked_mse(ze - chosen.detach(), valid, denom))
                # Projections learn from the reconstruction through their own straight-through
                # path, fed by the detached residual so the encoder still sees exactly I.
                ze_free = self._to_code_space(k, residual.detach())
                step = self._from_code_space(k, ze_free + (chosen - ze_free).detach())
                residual = residual - step.detach()
            total = total + step
            idx_l.append(idx)
            counts.append(ops.weighted_counts(idx, weight, self.codebook_size))
            inputs.append(ze.detach())
        return _Stages(total, torch.stack(idx_l, dim=1), torch.stack(commit),
                       torch.stack(codebook_loss), torch.stack(counts), inputs)

    def _quantize(self, raw: Tensor, finite: Tensor, weight: Tensor, n: int,
                  masked: bool, synced: bool) -> tuple[Tensor, ...]:
        """Flat vectors ``(N, D)`` to ``(quantized, indices (N, n), loss, commit, codebook,
        perplexity, codes_used)``; in training, also the codebook update."""
        # Non-finite rows are zeroed (gradient 0 there) so no NaN reaches a loss, a gradient of
        # the codebooks or projections, or the EMA state; ``raw`` re-adds them to the output.
        z = torch.where(finite[:, None], raw, 0.0)
        st = self._stages(z, weight, n, assigned=self._assign(z, n))
        total = st.total
        if self.gradient_estimator == "rotation":
            # (the estimator sends no gradient to the codes); NaN where raw is not finite:
            # non-finite rows stay visible in the output
            quantized = torch.where(torch.isfinite(raw), ops.rotation_trick(z, total),
                                    torch.nan)
            if self.project_out is not None:
                quantized = quantized + (total - total.detach())
        else:
            quantized = total + (raw - raw.detach())  # value: exactly the sum of codes
        if self.training:
            self._update_codebooks(z, total, st.inputs,
                                   list(st.indices.unbind(1)), st.counts, weight, masked, synced)
        loss = st.codebook_loss.mean() + self.commitment_weight * st.commitment_loss.mean()
        return (quantized, st.indices, loss, st.commitment_loss, st.codebook_loss,
                ops.perplexity(st.counts), (st.counts > 0).to(z.dtype).mean(dim=-1))

    # ------------------------------------------------------------------ codebook learning
    @torch.no_grad()
    def _update_codebooks(self, z: Tensor, total: Tensor, stage_inputs: list[Tensor],
                          all_idx: list[Tensor], counts: Tensor, weight: Tensor,
                          masked: bool, synced: bool) -> None:
        """EMA step and dead-code revival of the ``n`` stages that ran (``rvq_blocks._codebook``),
        with ``synced`` from statistics summed over the ranks (one ``all_reduce``)."""
        n = len(all_idx)
        stats = cb.batch_stats(counts, stage_inputs, all_idx, weight,
                               self.codebook.data if self.ema else None,
                               z - total if self.joint_refine else None, masked)
        if synced:  # the one collective of a training step
            stats = cb.all_reduce_stats(stats)
        if self._rescale_usage:  # after init_from_batch_: one step's worth of data
            full = self._state()
            cb.set_usage_(full.cluster_size, full.embed_sum, full.codebook, full.cluster_size,
                          stats.coded)
            self._rescale_usage = False
        state = self._state(n)
        has_data = cb.ema_step_(state, stats, self.decay, self.eps)
        cb.revive_dead_(state, has_data, self.dead_code_threshold, self.dead_code_patience,
                        synced, lambda dead, draws: self._revive(n, dead, draws, stage_inputs,
                                                                 all_idx, weight, synced))

    def _revive(self, n: int, dead: Tensor, draws: Tensor, stage_inputs: list[Tensor],
                all_idx: list[Tensor], weight: Tensor, synced: bool) -> None:
        """Revive the ``dead`` ``(n, K)`` codes from this batch (synced: from all ranks'
        batches, on rank 0)."""
        if synced:
            got = cb.gather_batch(stage_inputs, all_idx, weight)
            if got is None:
                return
            stage_inputs, all_idx, weight = got
        state = self._state(n)
        cb.revive_(state.codebook, state.cluster_size, state.embed_sum, state.unused_for, dead,
                   stage_inputs, all_idx, weight, draws)

    # ------------------------------------------------------------------ k-means init
    @eager  # data-dependent sizes; runs only over the first training steps
    def _gather_and_init(self, z: Tensor, weight: Tensor, synced: bool) -> None:
        """Pool this batch's valid vectors and run the k-means init when ``cb.gather_`` says
        so; the init is final once ``kmeans_samples`` vectors are pooled."""
        got = cb.gather_(self._pool, z, weight, self.kmeans_samples, self.codebook_size,
                         self._provisional, synced)
        if got.rows is None:
            return
        self._init(got.rows, tuple(z.shape), synced, got.flow)
        self._provisional = True
        if got.done:
            self._init_done()

    def _init_done(self) -> None:
        self._pool = []
        self.initialized.fill_(True)
        self._needs_init = False

    @torch.no_grad()
    def init_from_batch_(self, x: Tensor, mask: Tensor | None = None) -> None:
        """Data-dependent init now: k-means on each stage's residuals of ``x``, stage by stage.

        Training initialises by itself (see ``kmeans_samples``); call this to initialise from
        chosen latents instead, e.g. several batches concatenated. Non-finite and masked
        vectors are left out; at most ``max(kmeans_samples, 8 * codebook_size)`` random
        vectors are used. The EMA usage is rescaled to the first training step's batch. Reads
        tensor values (a host sync), once. Under ``torch.distributed`` (see ``sync``) every
        rank must call it: k-means runs on rank 0 over all ranks' vectors and is broadcast.

        Args:
            x: Latents, ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``).
            mask: Optional ``(B, T)`` validity mask.

        Raises:
            ValueError: If no finite, unmasked vector is left to initialise from.
        """
        x = check_latents(x, self.dim, _OWNER, self.channel_last)  # before x.device is read
        with torch.autocast(x.device.type, enabled=False):
            z, _, weight = self._flatten(x, mask)
            rows = z[weight > 0]  # (M, D); the usage is rescaled at the first training step
            self._init(rows, tuple(x.shape), _dist.is_active(self.sync, _OWNER), rows.shape[0])
        self._rescale_usage = True
        self._init_done()

    def _init(self, data: Tensor, shape: tuple[int, ...], synced: bool, flow: float) -> None:
        """k-means init from the valid rows ``data`` ``(M, D)`` of an input of ``shape``;
        synced, on rank 0 over all ranks' rows, then broadcast (raises on every rank if no
        rank had a row)."""
        if not synced:
            self._init_kmeans(data, shape, flow)
        elif not cb.share_init_(self._state(), data, self.kmeans_samples, self.codebook_size,
                                lambda rows: self._init_kmeans(rows, shape, flow)):
            raise ValueError(f"{_OWNER}.init_from_batch_ needs at least one finite, unmasked "
                             f"vector on some rank, got none (x of shape {shape} here)")

    def _init_kmeans(self, data: Tensor, shape: tuple[int, ...], flow: float) -> None:
        """Stage-by-stage k-means on the valid rows ``data`` ``(M, D)`` through the greedy
        loop; the EMA usage starts at ``flow`` vectors per stage (one step's worth)."""
        if data.shape[0] == 0:
            raise ValueError(f"{_OWNER}.init_from_batch_ needs at least one finite, "
                             f"unmasked vector, got none in x of shape {shape}")
        cap = cb.kmeans_cap(self.kmeans_samples, self.codebook_size)
        if data.shape[0] > cap:  # k-means cost grows with vectors x codes: subsample
            data = data[torch.randperm(data.shape[0], device=data.device)[:cap]]

        def fit(k: int, ze: Tensor) -> Tensor:
            codes = cb.fit_stage(ze, self.codebook_size, self.kmeans_iters, self.use_cosine)
            self.codebook.data[k] = codes.to(self.codebook.dtype)
            return codes

        weight = torch.ones(data.shape[0], dtype=data.dtype, device=data.device)
        stages = self._stages(data, weight, self.num_quantizers, fit=fit)
        state = self._state()
        cb.set_usage_(state.cluster_size, state.embed_sum, state.codebook,
                      stages.counts.to(state.cluster_size.dtype), flow)
        self.unused_for.zero_()

    # ------------------------------------------------------------------ codes
    @torch.no_grad()
    def encode(self, x: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Codes of ``x`` as in eval-mode ``forward``; no losses, no state change.

        Args:
            x: Latents, ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``).
            n_quantizers: Use only the first ``n`` stages (lower bitrate).

        Returns:
            ``(B, n, T)`` int64 indices.
        """
        x = check_latents(x, self.dim, _OWNER, self.channel_last)  # before x.device is read
        n = self._n(n_quantizers)
        with torch.autocast(x.device.type, enabled=False):
            z, finite, _ = self._flatten(x, None)
            z = torch.where(finite[:, None], z, 0.0)  # as in forward: non-finite rows coded as 0
            weight = torch.ones_like(z[:, 0])
            idx = self._stages(z, weight, n, assigned=self._assign(z, n)).indices  # (N, n)
        b, t = self._batch_time(x)
        return idx.t().reshape(n, b, t).transpose(0, 1)  # (B, n, T)

    def decode(self, indices: Tensor) -> Tensor:
        """Latents from codes: the sum of the chosen codes of the first ``n`` stages.

        Args:
            indices: ``(B, n, T)`` integer codes, ``1 <= n <= num_quantizers``.

        Returns:
            ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``), in the codebook dtype.

        Raises:
            TypeError: If ``indices`` is not an integer tensor.
            ValueError: On a wrong shape or a code outside ``[0, codebook_size)`` (this check
                reads the values: one host sync, skipped under ``torch.compile``/export, where
                the lookup's own index check raises instead).
        """
        if not isinstance(indices, Tensor) or indices.is_floating_point() or \
                indices.is_complex() or indices.dtype == torch.bool:
            got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
            raise TypeError(f"{_OWNER}.decode expected integer indices, got {got}")
        if indices.ndim != 3 or not 1 <= indices.shape[1] <= self.num_quantizers \
                or indices.shape[2] == 0 or indices.shape[0] == 0:
            raise ValueError(f"{_OWNER}.decode expected indices of shape (B, n, T) with "
                             f"B, T >= 1 and 1 <= n <= {self.num_quantizers}, "
                             f"got {tuple(indices.shape)}")
        if not ops.tracing():  # a host sync; compiled and exported graphs index-check instead
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= self.codebook_size:
                raise ValueError(f"{_OWNER}.decode expected codes in [0, {self.codebook_size}), "
                                 f"got values in [{lo}, {hi}]")
        b, n, t = indices.shape
        flat = indices.transpose(1, 2).reshape(b * t, n).long()  # (N, n)
        with torch.autocast(indices.device.type, enabled=False):
            total = torch.zeros(b * t, self.dim, dtype=self.codebook.dtype,
                                device=self.codebook.device)
            for k in range(n):
                total = total + self._from_code_space(k, F.embedding(flat[:, k],
                                                                     self.codebook[k]))
        return self._unflatten(total, b, t)

    # ------------------------------------------------------------------ statistics
    @torch.no_grad()
    def codebook_usage(self) -> CodebookUsage:
        """Long-run usage per stage from the EMA usage counts (no batch needed)."""
        share = cb.usage_share(self.cluster_size)
        floor = (self.dead_code_threshold or 0.01) / self.codebook_size
        alive = share >= floor
        return CodebookUsage(ops.perplexity(self.cluster_size), alive.float().mean(-1),
                             (~alive).sum(-1))


def _linear(layer: nn.Module, v: Tensor) -> Tensor:
    """``layer(v)`` of an ``nn.Linear`` in ``v``'s dtype (float64 input meets float32
    projections)."""
    layer = cast(nn.Linear, layer)
    bias = None if layer.bias is None else layer.bias.to(v.dtype)
    return F.linear(v, layer.weight.to(v.dtype), bias)


def _masked_mse(diff: Tensor, valid: Tensor, denom: Tensor) -> Tensor:
    """Mean squared ``diff`` over the valid rows of ``(N, D)`` (excluded rows count 0)."""
    return torch.where(valid, diff.square().sum(dim=-1), 0.0).sum() / denom
