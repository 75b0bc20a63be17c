"""Any length: one dynamic compile serves every length; encode/decode export (torch.export,
ONNX) with a dynamic T."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from rvq_blocks import ResidualVQ

LENGTHS = (7, 13, 50, 64, 101, 250, 400, 1000)  # B*T from 14 to 2000 vectors


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _trained_rvq() -> ResidualVQ:
    torch.manual_seed(0)
    rvq = ResidualVQ(16, 4, 64)
    for _ in range(3):
        rvq(torch.randn(2, 16, 100))
    return rvq.eval()


class _Encode(nn.Module):
    def __init__(self, rvq: ResidualVQ) -> None:
        super().__init__()
        self.rvq = rvq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rvq.encode(x)


class _Decode(_Encode):
    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.rvq.decode(codes)


def test_dynamic_compile_serves_eight_lengths_with_no_recompile():
    rvq = _trained_rvq()
    counts = {"frames": 0}

    def backend(gm, example_inputs):
        counts["frames"] += 1
        return gm.forward

    enc = torch.compile(rvq.encode, backend=backend, dynamic=True, fullgraph=True)
    dec = torch.compile(rvq.decode, backend=backend, dynamic=True, fullgraph=True)
    fwd = torch.compile(rvq, backend=backend, dynamic=True, fullgraph=True)
    for t in LENGTHS:
        x = torch.randn(2, 16, t)
        codes = enc(x)
        assert torch.equal(codes, rvq.encode(x)), t
        assert torch.equal(dec(codes), rvq.decode(codes)), t
        assert torch.equal(fwd(x).indices, codes), t
    assert counts["frames"] == 3  # one graph each for encode, decode and forward


def test_export_of_encode_and_decode_with_a_dynamic_time_axis():
    rvq = _trained_rvq()
    t_dim = torch.export.Dim("T", min=2, max=100_000)
    x = torch.randn(2, 16, 50)
    enc = torch.export.export(_Encode(rvq), (x,), dynamic_shapes={"x": {2: t_dim}})
    codes = rvq.encode(x)
    dec = torch.export.export(_Decode(rvq), (codes,), dynamic_shapes={"codes": {2: t_dim}})
    for t in (3, 50, 500, 5000):  # up to 100x the traced length
        x = torch.randn(2, 16, t)
        ref = rvq.encode(x)
        got = enc.module()(x)
        assert torch.equal(got, ref), t
        assert torch.equal(dec.module()(got), rvq.decode(ref)), t


def test_onnx_export_runs_at_ten_times_the_traced_length(tmp_path):
    """ONNX (dynamo exporter, onnxruntime): codes and latents match eager at 10x the length."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
        pytest.skip("this torch has no dynamo ONNX exporter (torch >= 2.5)")
    rvq = _trained_rvq()
    t_dim = torch.export.Dim("T", min=2, max=100_000)
    x = torch.randn(2, 16, 50)
    codes = rvq.encode(x)
    torch.onnx.export(_Encode(rvq).eval(), (x,), tmp_path / "encode.onnx",
                      dynamic_shapes={"x": {2: t_dim}}, dynamo=True, verbose=False)
    torch.onnx.export(_Decode(rvq).eval(), (codes,), tmp_path / "decode.onnx",
                      dynamic_shapes={"codes": {2: t_dim}}, dynamo=True, verbose=False)
    enc = ort.InferenceSession(str(tmp_path / "encode.onnx"))
    dec = ort.InferenceSession(str(tmp_path / "decode.onnx"))
    x_long = torch.randn(2, 16, 500)  # B*T = 1000, past any row block of the traced graph
    ref = rvq.encode(x_long)
    got = enc.run(None, {enc.get_inputs()[0].name: x_long.numpy()})[0]
    assert torch.equal(torch.from_numpy(got), ref)
    latents = dec.run(None, {dec.get_inputs()[0].name: ref.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(latents), rvq.decode(ref), rtol=0, atol=1e-6)
