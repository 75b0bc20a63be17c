"""Rate-distortion of residual VQ on i.i.d. Gaussian vectors: rvq_blocks against its peers.

Each implementation is trained for a fixed step budget on minibatches drawn from 20,000 training
vectors and evaluated on 5,000 held-out vectors (eval-mode encode + decode). Printed per config:
reconstruction SNR next to the Shannon bound 6.02 * Q * log2(K) / D dB, codes in use and
perplexity per quantizer, and the held-out encode time.

    python -m benchmarks.bench_rate_distortion --out benchmarks/results/rate_distortion.json
    python -m benchmarks.bench_rate_distortion --quick          # seconds-long smoke run
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks._common import run_meta, write_json
from benchmarks._peers import (
    Adapter,
    Loader,
    encodec_kmeans_seconds,
    load_all,
    rvq_blocks_options,
)

# rvq_blocks option variants, reported separately. A variant whose keywords the installed
# ResidualVQ constructor does not accept is listed as skipped.
VARIANTS: list[tuple[str, dict]] = [
    ("default", {}),
    ("beam_size=4", {"beam_size": 4}),
    ("joint_refine", {"joint_refine": True}),
    ("use_cosine", {"use_cosine": True}),
    ("use_cosine + beam_size=4", {"use_cosine": True, "beam_size": 4}),
]

CONFIGS = {
    "d8": {"dim": 8, "num_quantizers": 4, "codebook_size": 256},
    "d128": {"dim": 128, "num_quantizers": 8, "codebook_size": 1024},
}
QUICK_CONFIGS = {
    "quick-d8": {"dim": 8, "num_quantizers": 2, "codebook_size": 64},
    "quick-d32": {"dim": 32, "num_quantizers": 2, "codebook_size": 128},
}
PEERS = ["vector-quantize-pytorch", "EnCodec", "DAC"]
DAC_LR = 1e-3  # Adam learning rate for implementations that learn codebooks by gradient


def shannon_bound_db(dim: int, num_quantizers: int, codebook_size: int) -> float:
    """The rate-distortion bound of a unit Gaussian at ``Q * log2(K) / D`` bits a dimension."""
    return 6.02 * num_quantizers * math.log2(codebook_size) / dim


def code_stats(codes: torch.Tensor, codebook_size: int) -> tuple[list[float], list[float]]:
    """Fraction of codes in use and perplexity, per quantizer, of (1, Q, N) codes."""
    used, perplexity = [], []
    for row in codes[0]:
        hist = torch.bincount(row, minlength=codebook_size).double()
        p = hist / hist.sum()
        entropy = -(p[p > 0] * p[p > 0].log()).sum()
        used.append(float((hist > 0).double().mean()))
        perplexity.append(float(entropy.exp()))
    return used, perplexity


def train_and_eval(build: Callable[..., Adapter], cfg: dict[str, int], opts: dict[str, Any],
                   train: torch.Tensor, test: torch.Tensor,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Train one implementation for ``args.steps`` minibatches; its held-out figures."""
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)  # same minibatches for everyone
    adapter = build(cfg["dim"], cfg["num_quantizers"], cfg["codebook_size"], **opts)
    params = adapter.parameters()
    opt = torch.optim.Adam(params, lr=DAC_LR) if params else None
    t0 = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(0, train.shape[1], (min(args.batch, train.shape[1]),), generator=gen)
        x = train[:, idx].unsqueeze(0)
        adapter.module.train()
        if opt is None:
            with torch.no_grad():
                adapter.forward_train(x)
            continue
        quantized, aux = adapter.forward_train(x)
        loss = F.mse_loss(quantized, x) + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0

    x = test.unsqueeze(0)
    codes = adapter.encode(x)
    encode_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        adapter.encode(x)
        encode_times.append(time.perf_counter() - t0)
    recon = adapter.decode(codes)
    snr = 10 * math.log10(float(x.pow(2).sum() / (x - recon).pow(2).sum()))
    used, perplexity = code_stats(codes, cfg["codebook_size"])
    return {"snr_db": snr, "codes_used": used, "perplexity": perplexity,
            "encode_ms": 1e3 * sorted(encode_times)[1], "train_s": train_s}


def candidates(loaded: dict[str, Loader], accepted: set[str], cfg: dict[str, int],
               args: argparse.Namespace) -> Iterator[tuple[str, str, Callable[..., Adapter] | None,
                                                          dict[str, Any], str]]:
    """(implementation, variant, build or None, options, reason) in report order."""
    build, why = loaded["rvq_blocks"]
    for variant, opts in VARIANTS:
        if "rvq_blocks" not in args.impls or (args.variants and variant not in args.variants):
            continue
        missing = sorted(set(opts) - accepted)
        if build is None:
            yield "rvq_blocks", variant, None, opts, why
        elif missing:
            yield "rvq_blocks", variant, None, opts, f"ResidualVQ does not accept {missing}"
        else:
            yield "rvq_blocks", variant, build, opts, ""
    for name in PEERS:
        if name not in args.impls:
            continue
        build, why = loaded[name]
        if build is not None and name == "EnCodec":
            est = encodec_kmeans_estimate(build, cfg, args.batch)
            if est > args.max_kmeans_s:
                build, why = None, (f"k-means init would take ~{est:.0f} s here (it builds a "
                                    "vectors x codes x dim tensor); raise --max-kmeans-s to run")
        yield name, "defaults", build, {}, why


def encodec_kmeans_estimate(build: Callable[..., Adapter], cfg: dict[str, int],
                            batch: int) -> float:
    """Estimated seconds of EnCodec's k-means init on one ``batch`` of this config."""
    adapter = build(cfg["dim"], cfg["num_quantizers"], cfg["codebook_size"])
    x = torch.randn(1, cfg["dim"], batch)
    return encodec_kmeans_seconds(adapter, x, iters=1, total_iters=50)


def fmt_list(values: list[float], spec: str) -> str:
    """``values`` formatted with ``spec``, space-separated."""
    return " ".join(format(v, spec) for v in values)


def run_config(key: str, loaded: dict[str, Loader], accepted: set[str],
               args: argparse.Namespace) -> dict[str, Any]:
    """Every candidate on config ``key``: its JSON entry, rows printed as they come."""
    cfg = {**CONFIGS, **QUICK_CONFIGS}[key]
    bound = shannon_bound_db(**cfg)
    gen = torch.Generator().manual_seed(args.seed)
    train = torch.randn(cfg["dim"], args.n_train, generator=gen)
    test = torch.randn(cfg["dim"], args.n_test, generator=gen)
    print(f"\n== {key}: dim {cfg['dim']}, {cfg['num_quantizers']} x "
          f"{cfg['codebook_size']} codes, Shannon bound {bound:.2f} dB ==")
    print(f"{'implementation':<26}{'variant':<28}{'SNR dB':>7}{'enc ms':>8}{'train s':>8}"
          "  codes used per quantizer | perplexity per quantizer")
    rows = []
    for name, variant, build, opts, why in candidates(loaded, accepted, cfg, args):
        row = {"implementation": name, "variant": variant, "options": opts}
        if build is None:
            row["skipped"] = why
            print(f"{name:<26}{variant:<28}  skipped: {why}")
        else:
            try:
                row.update(train_and_eval(build, cfg, opts, train, test, args))
            except Exception as exc:  # report and go on
                row["skipped"] = f"failed: {exc!r}"
                print(f"{name:<26}{variant:<28}  failed: {exc!r}")
            else:
                print(f"{name:<26}{variant:<28}{row['snr_db']:>7.2f}{row['encode_ms']:>8.1f}"
                      f"{row['train_s']:>8.1f}  {fmt_list(row['codes_used'], '.2f')} | "
                      f"{fmt_list(row['perplexity'], '.0f')}")
        rows.append(row)
    return {**cfg, "bound_db": bound, "results": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with ``--quick`` applied and the comma lists split."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4096, help="training vectors per step")
    ap.add_argument("--configs", default="d8,d128", help=f"comma list of {sorted(CONFIGS)}")
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-test", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-kmeans-s", type=float, default=120.0,
                    help="skip a peer whose estimated k-means init exceeds this")
    ap.add_argument("--impls", default=",".join(["rvq_blocks", *PEERS]))
    ap.add_argument("--variants", default="", help="comma list of rvq_blocks variants (all)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: few steps, small data")
    ap.add_argument("--out", type=Path, help="write results as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.n_train, args.n_test = 5, 512, 2048, 512
        args.configs = ",".join(QUICK_CONFIGS)
    args.impls = args.impls.split(",")
    args.variants = [v for v in args.variants.split(",") if v]
    return args


def main(argv: list[str] | None = None) -> None:
    """Train and evaluate every implementation on every selected config."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = load_all(["rvq_blocks", *PEERS])
    accepted = rvq_blocks_options()
    meta = run_meta(threads=args.threads, steps=args.steps, batch=args.batch,
                    n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    print("rate-distortion on i.i.d. N(0, 1) vectors | " + ", ".join(
        f"{k} {v}" for k, v in meta.items()))
    results = {"meta": meta, "configs": {key: run_config(key, loaded, accepted, args)
                                         for key in args.configs.split(",")}}
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
