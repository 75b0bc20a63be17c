"""Where the codec loses energy: output against input energy per frequency band.

    python -m examples.telugu_codec.studies.band_energy \\
        --checkpoint examples/telugu_codec/pretrained --out benchmarks/results/band_energy.json

For each band, ``10 log10(sum |Y|^2 / sum |X|^2)`` over the held-out clips (Hann STFT, n_fft
1024, hop 256): ``X`` the input, ``Y`` the decoded codes (``decode(encode(x))``) and, to tell the
quantizer from the rest, the autoencoder without quantization (``bypass``). For a frame-rate
model with an iSTFT head it also gives the energy of the spectrum the head *predicts* against
the input's (both on the head's own "same"-padded STFT grid): a predicted spectrum louder than
what the inverse STFT returns means the frames' phases disagree and cancel in the overlap-add.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from ..checkpoint import load_model
from ..data import default_cache_dir, eval_subset, load_heldout, load_recorded_english
from ..model import TeluguCodec, pad_to_hop
from . import run_meta, write_json

MODULE = "examples.telugu_codec.studies.band_energy"
EDGES_HZ = (0, 250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000)


def _band_power(spec: torch.Tensor, sample_rate: int, edges: tuple[int, ...]) -> list[float]:
    """Summed power of complex ``(bins, T)`` per band ``[edges[i], edges[i+1])``."""
    freqs = torch.linspace(0, sample_rate / 2, spec.shape[0])
    power = spec.abs().pow(2).sum(-1)
    return [float(power[(freqs >= lo) & (freqs < hi)].sum())
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


class BandSums:
    """Energy per band of :data:`EDGES_HZ`, summed over clips, for each named signal path."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.window = torch.hann_window(1024)
        self.sums: dict[str, list[float]] = {}

    def add_spectrum(self, name: str, spec: torch.Tensor) -> None:
        """Add a complex ``(bins, T)`` spectrum's band energies to path ``name``."""
        values = _band_power(spec, self.sample_rate, EDGES_HZ)
        old = self.sums.get(name, [0.0] * len(values))
        self.sums[name] = [a + b for a, b in zip(old, values, strict=True)]

    def add(self, name: str, wav: torch.Tensor) -> None:
        """Add a ``(1, 1, S)`` waveform's band energies (Hann STFT, n_fft 1024, hop 256)."""
        self.add_spectrum(name, torch.stft(wav[0, 0], 1024, 256, window=self.window,
                                           return_complex=True))

    def db(self, name: str, reference: str) -> list[float]:
        """Per band, ``10 log10`` of path ``name``'s energy over path ``reference``'s."""
        return [10 * math.log10(max(p, 1e-30) / max(q, 1e-30))
                for p, q in zip(self.sums[name], self.sums[reference], strict=True)]


@torch.no_grad()
def band_ratios(model: TeluguCodec, clips: list) -> dict[str, list[float]]:
    """Per band, dB of each path's energy against the input's, summed over ``clips``."""
    from rvq_blocks.istft_head import stft_same

    bands = BandSums(model.cfg.sample_rate)
    for clip in clips:
        x = pad_to_hop(torch.from_numpy(clip.audio)[None, None].float(), model.hop_length)
        h = model.decoder(model.encoder(x))
        bypass = model.head(h)  # what model(x, bypass=True) returns
        bands.add("input", x)
        bands.add("codes", model.decode(model.encode(x)))
        bands.add("bypass", bypass)
        if model.cfg.arch == "frame":
            head = model.head
            bands.add_spectrum("head_input", stft_same(x[:, 0], head.n_fft, head.hop_length)[0])
            bands.add_spectrum("head_predicted", head.spectrum(h)[0])
            bands.add_spectrum("head_output",
                               stft_same(bypass[:, 0], head.n_fft, head.hop_length)[0])
    out = {"codes_vs_input_db": bands.db("codes", "input"),
           "bypass_vs_input_db": bands.db("bypass", "input")}
    if "head_predicted" in bands.sums:
        out["head_predicted_vs_input_db"] = bands.db("head_predicted", "head_input")
        out["head_output_vs_input_db"] = bands.db("head_output", "head_input")
    return out


def main(argv: list[str] | None = None) -> int:
    """Score one checkpoint on held-out Telugu and recorded English; write the JSON."""
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache_dir", type=Path, default=default_cache_dir())
    p.add_argument("--seconds", type=float, default=60.0, help="audio per set")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.checkpoint)
    quiet = lambda *_: None  # noqa: E731
    sets = {"telugu": load_heldout(args.cache_dir, log=quiet),
            "english": load_recorded_english(args.cache_dir, log=quiet)}
    results = {"meta": {**run_meta(["-m", MODULE, *(argv if argv is not None else
                                                    sys.argv[1:])], args.threads),
                        "checkpoint": str(args.checkpoint), "edges_hz": list(EDGES_HZ),
                        "seconds_per_set": args.seconds, "config": model.cfg.to_dict()},
               "sets": {}}
    for name, clips in sets.items():
        chosen = eval_subset(clips, args.seconds, model.cfg.sample_rate)
        results["sets"][name] = {"clips": len(chosen), **band_ratios(model, chosen)}
        row = results["sets"][name]["codes_vs_input_db"]
        print(f"{name}: codes vs input, dB per band: "
              + " ".join(f"{lo}-{hi}:{v:+.1f}" for lo, hi, v in
                         zip(EDGES_HZ[:-1], EDGES_HZ[1:], row, strict=True)))
    results["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
