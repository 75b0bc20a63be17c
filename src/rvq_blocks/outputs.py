"""Typed outputs of the quantizers."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class RVQOutput(NamedTuple):
    """What :class:`~rvq_blocks.ResidualVQ` returns from ``forward``.

    The number and order of fields never change with the options.

    Attributes:
        quantized: Quantized latents, ``(B, D, T)`` (``(B, T, D)`` with ``channel_last``).
            Their value is the sum of the chosen codes; their gradient with respect to the
            input is the identity (straight-through), or the rotation-trick estimate.
        indices: Chosen codes, ``(B, n, T)`` int64, ``n`` the number of stages that ran
            (``num_quantizers`` unless quantizer dropout drew fewer in training).
        loss: Scalar VQ loss to add to the training loss:
            ``mean(codebook_loss) + commitment_weight * mean(commitment_loss)``, averaged over
            the ``n`` stages that ran, so its scale does not grow with ``num_quantizers``.
        commitment_loss: ``(n,)`` per-stage ``mse(residual, code.detach())`` (unweighted);
            its gradient reaches the encoder.
        codebook_loss: ``(n,)`` per-stage ``mse(code, residual.detach())``; its gradient
            trains learned codebooks. Zeros with EMA codebooks, which do not learn by gradient.
        perplexity: ``(n,)`` per-stage perplexity of the code histogram of this batch
            (``exp`` of its entropy; ``codebook_size`` means perfectly uniform use).
        codes_used: ``(n,)`` per-stage fraction of the codebook chosen at least once in
            this batch.
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    perplexity: Tensor
    codes_used: Tensor


class CodebookUsage(NamedTuple):
    """Long-run codebook usage read from the EMA usage counts (``ResidualVQ.codebook_usage``).

    Attributes:
        perplexity: ``(Q,)`` perplexity of the EMA usage distribution per stage.
        codes_used: ``(Q,)`` fraction of codes whose EMA usage is above the dead-code threshold
            (above 1% of uniform when revival is off).
        dead_codes: ``(Q,)`` number of codes below that threshold.
    """

    perplexity: Tensor
    codes_used: Tensor
    dead_codes: Tensor
