"""The quantizers and models of ``bench_codebook_usage``.

Quantizers (``VARIANTS``): ``rvq_blocks.ResidualVQ`` with its defaults and with one option
each, :class:`SimVQ` (defined here) and vector-quantize-pytorch's ``ResidualVQ`` behind
:class:`VqtorchRVQ`; all take ``(B, D, T)`` latents and return :class:`QuantOut` fields.
Models (``MODELS``): ``a``, the Telugu example codec; ``b``, :class:`ConvAE`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rvq_blocks import ResidualVQ

# name -> (implementation, ResidualVQ options). Options apply on top of ResidualVQ's defaults.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ours": ("rvq_blocks", {}),
    "ema_false": ("rvq_blocks", {"ema": False}),
    "cosine": ("rvq_blocks", {"use_cosine": True}),
    "codebook_dim8": ("rvq_blocks", {"codebook_dim": 8}),
    "rotation": ("rvq_blocks", {"gradient_estimator": "rotation"}),
    # what two of the defaults buy: the idle-count revival rule, and k-means over batches
    "patience_off": ("rvq_blocks", {"dead_code_patience": 0.0}),
    "first_batch_init": ("rvq_blocks", {"kmeans_samples": 1}),
    "simvq": ("simvq (defined here)", {}),
    "vqtorch": ("vector-quantize-pytorch", {"kmeans_init": True, "kmeans_iters": 10,
                                            "decay": 0.99, "threshold_ema_dead_code": 2}),
}
MODELS = {
    "a": "Telugu codec (examples/telugu_codec as train.py builds it: frame architecture, "
         "12 x 1024 codes, 64-d latents at 50 Hz; center_latents=False)",
    "b": "plain strided Conv1d autoencoder (hop 240, 66.7 Hz, 32-d latents, 8 x 256 codes)",
}


class QuantOut(NamedTuple):
    """The fields of ``RVQOutput`` a codec forward and this benchmark read."""

    quantized: Tensor
    indices: Tensor
    loss: Tensor


# ----------------------------------------------------------------------------- quantizers


class SimVQ(nn.Module):
    """Residual SimVQ: stage ``k``'s codebook is ``W_k(C_k)``, ``C_k`` a frozen Gaussian
    ``(K, D)`` matrix and ``W_k`` a learned ``D x D`` linear map (arXiv 2411.02038).

    Trained by gradient: codebook loss ``mse(code, residual.detach())`` (reaches ``W_k``, so
    every code moves with every update) plus ``beta * mse(residual, code.detach())``, averaged
    over stages; residuals from detached codes and one straight-through estimator on the sum,
    as ``ResidualVQ``. Call signature and ``encode``/``decode`` mimic ``ResidualVQ``
    (``(B, D, T)`` latents, ``(B, Q, T)`` codes).
    """

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int,
                 beta: float = 0.25) -> None:
        super().__init__()
        self.num_quantizers, self.codebook_size, self.beta = num_quantizers, codebook_size, beta
        self.register_buffer("frozen", torch.randn(num_quantizers, codebook_size, dim)
                             * dim ** -0.5)
        self.proj = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(num_quantizers))

    def codebooks(self) -> list[Tensor]:
        """Every stage's codebook, ``W_k(C_k)``, ``(K, D)`` each."""
        return [p(c) for p, c in zip(self.proj, self.frozen, strict=True)]

    @staticmethod
    def _nearest(r: Tensor, cb: Tensor) -> Tensor:
        d = r.pow(2).sum(1, keepdim=True) - 2 * r @ cb.t() + cb.pow(2).sum(1)[None]
        return d.argmin(1)

    def forward(self, x: Tensor, n_quantizers: int | None = None, **_: Any) -> QuantOut:
        b, d, t = x.shape
        z = x.transpose(1, 2).reshape(-1, d)
        residual, total, losses, cols = z, torch.zeros_like(z), [], []
        for cb in self.codebooks()[: n_quantizers or self.num_quantizers]:
            idx = self._nearest(residual.detach(), cb.detach())
            code = cb[idx]
            losses.append(F.mse_loss(code, residual.detach())
                          + self.beta * F.mse_loss(residual, code.detach()))
            total = total + code
            residual = residual - code.detach()
            cols.append(idx)
        quantized = z + (total - z).detach()  # straight-through on the sum
        quantized = quantized.reshape(b, t, d).transpose(1, 2)
        indices = torch.stack(cols, 1).reshape(b, t, -1).permute(0, 2, 1)
        return QuantOut(quantized, indices, torch.stack(losses).mean())

    @torch.no_grad()
    def encode(self, x: Tensor, n_quantizers: int | None = None) -> Tensor:
        return self.forward(x, n_quantizers).indices

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        cbs = self.codebooks()
        return sum(cbs[k][codes[:, k]] for k in range(codes.shape[1])).transpose(1, 2)


class VqtorchRVQ(nn.Module):
    """vector-quantize-pytorch's ``ResidualVQ`` behind ``ResidualVQ``'s channel-first calls."""

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int, **opts: Any) -> None:
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ as PeerRVQ

        self.rvq = PeerRVQ(dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size,
                           **opts)

    def forward(self, x: Tensor, n_quantizers: int | None = None, **_: Any) -> QuantOut:
        quantized, indices, losses = self.rvq(x.transpose(1, 2))  # (B, T, D), (B, T, Q), (Q,)
        return QuantOut(quantized.transpose(1, 2), indices.transpose(1, 2), losses.sum())

    @torch.no_grad()
    def encode(self, x: Tensor, n_quantizers: int | None = None) -> Tensor:
        was = self.training
        self.eval()  # eval: no EMA update, no dead-code expiry
        _, indices, _ = self.rvq(x.transpose(1, 2))
        self.train(was)
        return indices.transpose(1, 2)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.rvq.get_output_from_indices(codes.transpose(1, 2)).transpose(1, 2)


def build_quantizer(variant: str, dim: int, num_quantizers: int, codebook_size: int,
                    base: dict[str, Any]) -> nn.Module:
    """The quantizer of ``variant``; ``base`` (the model's own ResidualVQ settings) applies to
    the ``rvq_blocks`` variants, under the variant's options."""
    impl, opts = VARIANTS[variant]
    if impl == "rvq_blocks":
        return ResidualVQ(dim, num_quantizers, codebook_size, **{**base, **opts})
    if impl.startswith("simvq"):
        return SimVQ(dim, num_quantizers, codebook_size)
    return VqtorchRVQ(dim, num_quantizers, codebook_size, **opts)


def unavailable(variant: str) -> str:
    """Why ``variant`` cannot run here ('' when it can)."""
    impl, opts = VARIANTS[variant]
    if impl == "rvq_blocks":
        accepted = set(inspect.signature(ResidualVQ.__init__).parameters)
        missing = sorted(set(opts) - accepted)
        return f"ResidualVQ does not accept {missing}" if missing else ""
    if impl == "vector-quantize-pytorch":
        try:
            import vector_quantize_pytorch  # noqa: F401
        except Exception as exc:  # reported, not raised
            return f"vector-quantize-pytorch does not import: {exc!r}"
    return ""


# ----------------------------------------------------------------------------- models


class ConvAE(nn.Module):
    """Model (b): ``Conv1d`` stack, strides ``(2, 4, 5, 6)`` (hop 240), LeakyReLU, a
    ``ResidualVQ`` on ``latent_dim`` channels, mirrored ``ConvTranspose1d`` decoder, linear
    output (clamped to [-1, 1] only by ``decode``). Same calls as ``TeluguCodec``."""

    def __init__(self, channels: int = 16, latent_dim: int = 32, num_quantizers: int = 8,
                 codebook_size: int = 256, strides: tuple[int, ...] = (2, 4, 5, 6),
                 sample_rate: int = 16000) -> None:
        super().__init__()
        self.hop_length = math.prod(strides)
        self.sample_rate = sample_rate
        self.latent_dim, self.num_quantizers = latent_dim, num_quantizers
        self.codebook_size = codebook_size
        c = channels
        enc: list[nn.Module] = [nn.Conv1d(1, c, 7, padding=3), nn.LeakyReLU(0.1)]
        for s in strides:
            enc += [nn.Conv1d(c, 2 * c, 2 * s, stride=s, padding=math.ceil(s / 2)),
                    nn.LeakyReLU(0.1)]
            c *= 2
        enc.append(nn.Conv1d(c, latent_dim, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        self.quantizer = ResidualVQ(latent_dim, num_quantizers, codebook_size)
        dec: list[nn.Module] = [nn.Conv1d(latent_dim, c, 3, padding=1), nn.LeakyReLU(0.1)]
        for s in reversed(strides):
            dec += [nn.ConvTranspose1d(c, c // 2, 2 * s, stride=s, padding=math.ceil(s / 2),
                                       output_padding=s % 2), nn.LeakyReLU(0.1)]
            c //= 2
        dec.append(nn.Conv1d(c, 1, 7, padding=3))
        self.decoder = nn.Sequential(*dec)

    def forward(self, wav: Tensor) -> tuple[Tensor, QuantOut]:
        out = self.quantizer(self.encoder(wav))
        return self.decoder(out.quantized), out

    @torch.no_grad()
    def encode(self, wav: Tensor) -> Tensor:
        return self.quantizer.encode(self.encoder(wav))

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.decoder(self.quantizer.decode(codes)).clamp(-1.0, 1.0)


class Spec(NamedTuple):
    """What the loop needs to know of a model, read from the built model."""

    sample_rate: int
    hop_length: int
    latent_dim: int
    num_quantizers: int
    codebook_size: int
    quantizer_options: dict[str, Any]  # passed to every ResidualVQ variant (the model's own)
    config: dict[str, Any]

    def segment(self, seconds: float) -> int:
        """Samples of a crop of about ``seconds``, a whole number of frames."""
        return int(round(seconds * self.sample_rate / self.hop_length)) * self.hop_length


def _conv_ae(quick: bool) -> tuple[nn.Module, Spec]:
    kw = {"channels": 4, "latent_dim": 8, "num_quantizers": 2, "codebook_size": 16} \
        if quick else {}
    m = ConvAE(**kw)
    cfg = {"channels": 4 if quick else 16, "strides": [2, 4, 5, 6],
           "latent_dim": m.latent_dim, "num_quantizers": m.num_quantizers,
           "codebook_size": m.codebook_size, "sample_rate": m.sample_rate}
    return m, Spec(m.sample_rate, m.hop_length, m.latent_dim, m.num_quantizers,
                   m.codebook_size, {}, cfg)


def _telugu_codec(quick: bool) -> tuple[nn.Module, Spec]:
    from examples.telugu_codec.model import CodecConfig, TeluguCodec

    names = {f.name for f in dataclasses.fields(CodecConfig)}
    over: dict[str, Any] = {"center_latents": False, "arch": "frame"}  # as train.py builds it
    if quick:
        over.update(channels=4, num_quantizers=2, codebook_size=16, enc_width=8, enc_blocks=1,
                    dec_width=8, dec_blocks=1)
    cfg = CodecConfig(**{k: v for k, v in over.items() if k in names})
    m = TeluguCodec(cfg)
    base = {k: getattr(cfg, k) for k in ("codebook_dim", "quantizer_dropout")
            if getattr(cfg, k, None) not in (None, 0.0)}
    as_dict = cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg)
    return m, Spec(cfg.sample_rate, m.hop_length, cfg.latent_dim, cfg.num_quantizers,
                   cfg.codebook_size, base, json.loads(json.dumps(as_dict, default=str)))


def build_model(key: str, quick: bool) -> tuple[nn.Module, Spec]:
    """Model ``key`` of :data:`MODELS` (tiny sizes when ``quick``) and its :class:`Spec`."""
    return _conv_ae(quick) if key == "b" else _telugu_codec(quick)


def model_forward(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(y, vq_loss)`` of a training forward, called as the example's ``train.py`` does."""
    out = model(x)
    y, vq = out[0], out[1]
    return y, vq.loss
