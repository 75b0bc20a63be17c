"""Several checkpoints side by side: SI-SNR, mel distance, PESQ-WB, STOI and band energy.

    python -m examples.telugu_codec.studies.checkpoints \\
        --label shipped examples/telugu_codec/pretrained --label gan C/gan/last.pt \\
        --out benchmarks/results/telugu_checkpoints.json

For comparing training variants on the same clips: each checkpoint codes the first
``--telugu_seconds`` of held-out synthetic Telugu and the first ``--english_seconds`` of the
recorded English prompts (code files' path: ``decode(encode(x))``), and the study records the
mean of each metric over the clips and, per band, the decoded energy against the input's
(``band_energy.BandSums``). Smaller and quicker than ``codec_quality``, which adds Opus and
Codec2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_model
from ..data import default_cache_dir, eval_subset, load_heldout, load_recorded_english
from ..metrics import all_metrics, mean_metrics
from ..model import TeluguCodec, pad_to_hop
from . import run_meta, write_json
from .band_energy import EDGES_HZ, BandSums

MODULE = "examples.telugu_codec.studies.checkpoints"


@torch.no_grad()
def score(model: TeluguCodec, clips: list) -> dict[str, Any]:
    """Mean SNR, SI-SNR, mel distance, PESQ-WB and STOI of ``clips`` through the codes, and
    per band the decoded energy against the input's (``codes_vs_input_db``)."""
    rows, bands = [], BandSums(model.cfg.sample_rate)
    for clip in clips:
        x = pad_to_hop(torch.from_numpy(clip.audio)[None, None].float(), model.hop_length)
        y = model.decode(model.encode(x))
        rows.append(all_metrics(clip.audio, y[0, 0, :len(clip.audio)].numpy()))
        bands.add("input", x)
        bands.add("codes", y)
    return {**mean_metrics(rows), "codes_vs_input_db": bands.db("codes", "input")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--label", nargs=2, action="append", required=True,
                   metavar=("NAME", "CHECKPOINT"), help="a name and a checkpoint (repeat)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--telugu_seconds", type=float, default=60.0)
    p.add_argument("--english_seconds", type=float, default=40.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    quiet = lambda *_: None  # noqa: E731
    sets = {"telugu": eval_subset(load_heldout(args.cache_dir, log=quiet),
                                  args.telugu_seconds, 16000),
            "english": eval_subset(load_recorded_english(args.cache_dir, log=quiet),
                                   args.english_seconds, 16000)}
    out = {"meta": {**run_meta(["-m", MODULE, *(argv if argv is not None else sys.argv[1:])],
                               args.threads), "edges_hz": list(EDGES_HZ),
                    "seconds": {k: round(sum(len(c.audio) for c in v) / 16000, 1)
                                for k, v in sets.items()}},
           "checkpoints": {}}
    for name, path in args.label:
        model = load_model(path)
        entry: dict = {"path": str(path)}
        for set_name, clips in sets.items():
            entry[set_name] = score(model, clips)
        out["checkpoints"][name] = entry
        print(name + ": " + " | ".join(
            f"{s}: SI-SNR {r['si_snr']:.2f} mel {r['mel_distance']:.3f} PESQ "
            f"{r.get('pesq_wb', float('nan')):.2f} STOI {r.get('stoi', float('nan')):.3f}"
            for s, r in ((s, entry[s]) for s in sets)), flush=True)
        write_json(args.out, out)  # after each checkpoint
    out["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
