"""Uniform adapters around rvq_blocks, the peer residual quantizers and a plain "floor".

Every loader returns ``(build, why)``: ``build`` is ``None`` when the implementation cannot be
imported here, and ``why`` then says why, so a benchmark can report it and go on.

``build(dim, num_quantizers, codebook_size, codebook_dim=None, **opts)`` returns an adapter:

* ``forward_train(x) -> (quantized, aux_loss)``   training-mode forward, x is (B, D, T)
* ``train_step(x)``                               forward + backward of quantized.sum() + aux_loss
* ``encode(x) -> (B, Q, T) int64`` / ``decode(codes) -> (B, D, T)``   eval mode, no grad
* ``learns_by_gradient``                          codebooks learned by an optimizer (DAC)
* ``prime(x)``                                    put the codebooks in their post-init state
                                                  cheaply, when k-means is timed separately
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Loader = tuple[Callable[..., "Adapter"] | None, str]


class Adapter:
    """One implementation behind the calls every benchmark makes (see the module docstring)."""

    name = "?"
    learns_by_gradient = False

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def train_step(self, x: Tensor) -> None:
        """One training forward + backward, gradients flowing to x as to an encoder output."""
        self.module.train()
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        quantized, aux = self.forward_train(x)
        (quantized.sum() + aux).backward()

    def prime(self, x: Tensor) -> None:
        """Only EnCodec needs this (see EncodecAdapter.prime)."""

    def parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (empty for codebooks updated by EMA)."""
        return [p for p in self.module.parameters() if p.requires_grad]


# --------------------------------------------------------------------------------------- floor
class Floor(nn.Module):
    """The minimum work of a greedy RVQ: per stage one addmm distance, argmin, gather, subtract.

    With ``codebook_dim`` each stage projects down and up again (DAC-style factorized codes) and
    the projections receive gradients through a straight-through estimator.
    """

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int,
                 codebook_dim: int | None = None) -> None:
        super().__init__()
        cdim = codebook_dim or dim
        self.factorized = codebook_dim is not None and codebook_dim != dim
        self.register_buffer("codebooks", torch.randn(num_quantizers, codebook_size, cdim))
        if self.factorized:
            self.w_in = nn.Parameter(torch.randn(num_quantizers, cdim, dim) / dim**0.5)
            self.w_out = nn.Parameter(torch.randn(num_quantizers, dim, cdim) / cdim**0.5)

    def _stages(self, flat: Tensor,
                keep_codes: bool) -> tuple[Tensor, Tensor, list[Tensor], Tensor | float]:
        residual, quantized, codes, aux = flat.detach(), 0.0, [], 0.0
        norms = self.codebooks.pow(2).sum(-1)
        for q, codebook in enumerate(self.codebooks):
            z = residual @ self.w_in[q].t() if self.factorized else residual
            dist = torch.addmm(norms[q], z.detach(), codebook.t(), alpha=-2.0)
            idx = dist.argmin(dim=1)
            code = codebook.index_select(0, idx)
            if self.factorized:
                aux = aux + F.mse_loss(z, code)
                code = (z + (code - z).detach()) @ self.w_out[q].t()
            residual = residual - code.detach()
            quantized = quantized + code
            if keep_codes:
                codes.append(idx)
        return quantized, residual, codes, aux

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, d, t = x.shape
        flat = x.transpose(1, 2).reshape(-1, d)
        quantized, _, _, aux = self._stages(flat, keep_codes=False)
        if self.factorized:  # identity gradient to the input, projections learn through codes
            quantized = quantized + (flat - flat.detach())
        else:
            aux = F.mse_loss(flat, quantized.detach())
            quantized = flat + (quantized - flat).detach()
        return quantized.view(b, t, d).transpose(1, 2), aux

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        b, d, t = x.shape
        _, _, codes, _ = self._stages(x.transpose(1, 2).reshape(-1, d), keep_codes=True)
        return torch.stack(codes, 0).view(-1, b, t).transpose(0, 1)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        b, nq, t = codes.shape
        out = 0.0
        for q in range(nq):
            code = self.codebooks[q].index_select(0, codes[:, q].reshape(-1))
            out = out + (code @ self.w_out[q].t() if self.factorized else code)
        return out.view(b, t, -1).transpose(1, 2)


class FloorAdapter(Adapter):
    """The floor."""

    name = "floor"

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.module(x)

    def encode(self, x: Tensor) -> Tensor:
        return self.module.encode(x)

    def decode(self, codes: Tensor) -> Tensor:
        return self.module.decode(codes)


def load_floor() -> Loader:
    """The floor's builder (always available)."""
    def build(dim, num_quantizers, codebook_size, codebook_dim=None, **_):
        return FloorAdapter(Floor(dim, num_quantizers, codebook_size, codebook_dim))

    return build, ""


# ---------------------------------------------------------------------------------- rvq_blocks
class RvqBlocksAdapter(Adapter):
    """``rvq_blocks.ResidualVQ``."""

    name = "rvq_blocks"

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.module(x)
        return out.quantized, out.loss

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        self.module.eval()
        return self.module.encode(x)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        self.module.eval()
        return self.module.decode(codes)


def rvq_blocks_options() -> set[str]:
    """Constructor keywords of rvq_blocks.ResidualVQ (empty when it does not import)."""
    try:
        from rvq_blocks import ResidualVQ
    except Exception:  # any import failure is reported, not raised
        return set()
    return set(inspect.signature(ResidualVQ.__init__).parameters) - {"self"}


def load_rvq_blocks() -> Loader:
    """The builder of ``rvq_blocks.ResidualVQ`` with the training machinery on."""
    try:
        from rvq_blocks import ResidualVQ
    except Exception as exc:
        return None, f"rvq_blocks.ResidualVQ does not import: {exc!r}"
    accepted = rvq_blocks_options()

    def build(dim, num_quantizers, codebook_size, codebook_dim=None, **opts):
        opts = {"ema": True, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 10,
                "dead_code_threshold": 0.1, **opts}
        unknown = set(opts) - accepted
        if unknown:
            raise TypeError(f"ResidualVQ does not accept {sorted(unknown)}")
        return RvqBlocksAdapter(ResidualVQ(dim, num_quantizers, codebook_size,
                                           codebook_dim=codebook_dim, **opts))

    return build, ""


# ------------------------------------------------------------------ vector-quantize-pytorch
class VqpAdapter(Adapter):
    """vector-quantize-pytorch's ``ResidualVQ`` (channel-last inside)."""

    name = "vector-quantize-pytorch"

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        quantized, _, losses = self.module(x.transpose(1, 2))
        return quantized.transpose(1, 2), losses.sum()

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        self.module.eval()
        _, indices, _ = self.module(x.transpose(1, 2))
        return indices.transpose(1, 2)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.module.get_output_from_indices(codes.transpose(1, 2)).transpose(1, 2)


def load_vqp() -> Loader:
    """The builder of vector-quantize-pytorch's ``ResidualVQ``, or why it is missing."""
    try:
        from vector_quantize_pytorch import ResidualVQ
    except Exception as exc:
        return None, f"vector-quantize-pytorch does not import: {exc!r}"

    def build(dim, num_quantizers, codebook_size, codebook_dim=None, *, kmeans_init=True,
              kmeans_iters=10, decay=0.99, dead_code=2.0, **opts):
        module = ResidualVQ(dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size,
                            codebook_dim=codebook_dim, kmeans_init=kmeans_init,
                            kmeans_iters=kmeans_iters, decay=decay,
                            threshold_ema_dead_code=dead_code, **opts)
        return VqpAdapter(module)

    return build, ""


# ------------------------------------------------------------------------------ EnCodec 0.1.1
@contextlib.contextmanager
def _stub_modules(**stubs: types.ModuleType) -> Iterator[None]:
    """Temporarily place stub modules in sys.modules (only where the real one is absent)."""
    added = [name for name in stubs if name not in sys.modules]
    for name in added:
        sys.modules[name] = stubs[name]
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


class EncodecAdapter(Adapter):
    """EnCodec's ``ResidualVectorQuantization`` (codes ``(Q, B, T)`` inside)."""

    name = "EnCodec"

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        quantized, _, losses = self.module(x)
        return quantized, losses.mean()

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        self.module.eval()
        return self.module.encode(x).transpose(0, 1)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        self.module.eval()
        return self.module.decode(codes.transpose(0, 1))

    @torch.no_grad()
    def prime(self, x: Tensor) -> None:
        """Seed each codebook from the data without k-means (k-means is timed separately)."""
        residual = x
        for layer in self.module.layers:
            book = layer._codebook
            z = layer.project_in(residual.transpose(1, 2)).reshape(-1, book.embed.shape[1])
            seeds = z[torch.randint(0, z.shape[0], (book.codebook_size,))]
            book.embed.copy_(seeds)
            book.embed_avg.copy_(seeds)
            book.cluster_size.fill_(z.shape[0] / book.codebook_size)
            book.inited.fill_(1.0)
            residual = residual - layer.decode(layer.encode(residual))


def load_encodec() -> Loader:
    """The builder of EnCodec 0.1.1's quantizer, or why it is missing."""
    torchaudio_ok = importlib.util.find_spec("torchaudio") is not None
    stub = types.ModuleType("torchaudio")  # encodec/utils.py imports it; the quantizer never does
    try:
        ctx = contextlib.nullcontext() if torchaudio_ok else _stub_modules(torchaudio=stub)
        with ctx:
            from encodec.quantization import core_vq
    except Exception as exc:
        return None, f"encodec does not import: {exc!r}"

    def build(dim, num_quantizers, codebook_size, codebook_dim=None, *, kmeans_init=True,
              kmeans_iters=50, decay=0.99, dead_code=2, **_):
        module = core_vq.ResidualVectorQuantization(
            num_quantizers=num_quantizers, dim=dim, codebook_size=codebook_size,
            codebook_dim=codebook_dim, decay=decay, kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters, threshold_ema_dead_code=dead_code)
        return EncodecAdapter(module)

    return build, ""


def encodec_kmeans_seconds(adapter: EncodecAdapter, x: Tensor, iters: int, total_iters: int,
                           max_vectors: int = 2048) -> float:
    """Estimated seconds of EnCodec's k-means init on x: ``iters`` iterations of the first
    codebook on at most ``max_vectors`` vectors, scaled linearly to all vectors, ``total_iters``
    iterations and every stage (each iteration costs the same on every stage)."""
    import time

    from encodec.quantization import core_vq

    layer = adapter.module.layers[0]
    with torch.no_grad():
        z = layer.project_in(x.transpose(1, 2)).reshape(-1, layer._codebook.embed.shape[1])
        n = z.shape[0]
        z = z[:max_vectors]
        t0 = time.perf_counter()
        core_vq.kmeans(z, layer._codebook.codebook_size, iters)
        sec = time.perf_counter() - t0
    return sec * (n / z.shape[0]) * (total_iters / iters) * len(adapter.module.layers)


# -------------------------------------------------------------------------------- DAC 1.0.0
class DacAdapter(Adapter):
    """DAC's ``ResidualVectorQuantize`` (codebooks learned by gradient)."""

    name = "DAC"
    learns_by_gradient = True

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z_q, _, _, commitment, codebook = self.module(x)
        return z_q, 0.25 * commitment + 1.0 * codebook  # DAC's loss weights

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        self.module.eval()
        return self.module(x)[1]

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        return self.module.from_codes(codes)[0]


def _module_from_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dac() -> Loader:
    """Load dac/nn/quantize.py from its file without running the dac package __init__
    (which needs audiotools)."""
    try:
        spec = importlib.util.find_spec("dac")
        if spec is None or not spec.submodule_search_locations:
            return None, "descript-audio-codec is not installed"
        nn_dir = Path(next(iter(spec.submodule_search_locations))) / "nn"
        layers = _module_from_file("_dac_nn_layers", nn_dir / "layers.py")
        pkg, sub = types.ModuleType("dac"), types.ModuleType("dac.nn")
        pkg.__path__, sub.__path__ = [], []
        with _stub_modules(**{"dac": pkg, "dac.nn": sub, "dac.nn.layers": layers}):
            quantize = _module_from_file("_dac_nn_quantize", nn_dir / "quantize.py")
    except Exception as exc:
        return None, f"dac/nn/quantize.py does not load: {exc!r}"

    def build(dim, num_quantizers, codebook_size, codebook_dim=None, **_):
        import warnings

        with warnings.catch_warnings():  # torch.nn.utils.weight_norm is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            module = quantize.ResidualVectorQuantize(
                input_dim=dim, n_codebooks=num_quantizers, codebook_size=codebook_size,
                codebook_dim=codebook_dim or dim, quantizer_dropout=0.0)
        return DacAdapter(module)

    return build, ""


LOADERS = {
    "floor": load_floor,
    "rvq_blocks": load_rvq_blocks,
    "vector-quantize-pytorch": load_vqp,
    "EnCodec": load_encodec,
    "DAC": load_dac,
}


def load_all(names: Collection[str] | None = None) -> dict[str, Loader]:
    """Name -> (build or None, reason). Warnings from the peers' imports are silenced."""
    import warnings

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, loader in LOADERS.items():
            if names is None or name in names:
                out[name] = loader()
    return out
