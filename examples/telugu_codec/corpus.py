"""Build a Telugu speech corpus by synthesis, and fetch real recorded speech for evaluation.

:func:`build_default_corpus` speaks the shipped Telugu sentences (and random Telugu words)
with two synthesizers and many voice settings:

- festival with the festvox-te-nsk diphone voice (16 kHz), its pitch targets scaled and its
  durations stretched (``Duration_Stretch``); one ``festival -b`` process per batch;
- espeak-ng ``-v te`` with variants (``te+f1`` ... ``te+m7``, ``te+klatt``, ``te+croak``), pitch
  ``-p`` and speed ``-s`` (22.05 kHz, resampled to 16 kHz with soxr).

The held-out set is the held-out sentences (a hash rule, see :mod:`.texts`) spoken by
held-out voice settings that never occur in training; ``manifest.json`` lists both. Every
clip is trimmed of leading and trailing silence and brought to -20 dBFS RMS (one gain per
clip, lowered where the peak would pass 0.99; the manifest records it). With only one
synthesizer installed the corpus is built from that one, with a warning.

Run ``python -m examples.telugu_codec.corpus --cache_dir DIR`` to build it from the shell.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .data import normalization_gain
from .texts import TEXT_DIR, load_sentences, random_words, split_sentences

__all__ = ["build_default_corpus", "fetch_real_speech"]

SAMPLE_RATE = 16000
TARGET_DBFS = -20.0
HELDOUT_SHARE = 0.1
CORPUS_FORMAT = "rvq_blocks-telugu-tts-corpus"
CORPUS_VERSION = 1
INSTALL_HINT = "apt-get install -y festival festvox-te-nsk espeak-ng"

# Voice settings. Held-out settings never occur in training.
FESTIVAL_TRAIN = [{"f0_scale": f, "duration_stretch": d}
                  for f in (0.8, 0.9, 1.0, 1.12, 1.25, 1.4) for d in (0.9, 1.0, 1.15, 1.3)]
FESTIVAL_HELDOUT = [{"f0_scale": 1.06, "duration_stretch": 1.08},
                    {"f0_scale": 1.33, "duration_stretch": 0.95}]
ESPEAK_VARIANTS = ("te", "te+f1", "te+f2", "te+f3", "te+f5", "te+m1", "te+m2", "te+m3",
                   "te+m4", "te+m6", "te+m7", "te+klatt", "te+croak")
ESPEAK_PITCH = (25, 35, 45, 55, 65, 75)
ESPEAK_SPEED = (130, 150, 170, 190)
ESPEAK_HELDOUT = [{"variant": "te+f4", "pitch": 50, "speed": 155},
                  {"variant": "te+m5", "pitch": 40, "speed": 165}]
# Seconds of speech per character of text, measured on the shipped sentences.
_SECONDS_PER_CHAR = {"festival": 0.060, "espeak": 0.070}

_FESTIVAL_PRELUDE = """(voice_telugu_NSK_diphone)
(Parameter.set 'Int_Method 'General)
(Parameter.set 'Int_Target_Method 'General)
(set! nsk_f0_scale 1.0)
(define (nsk_scaled_targ utt syl)
  (mapcar (lambda (p) (list (car p) (* nsk_f0_scale (cadr p)))) (telugu_NSK_targ_func1 utt syl)))
(set! int_general_params (list (list 'targ_func nsk_scaled_targ)))
(define (nsk_say txt f0 stretch out)
  (set! nsk_f0_scale f0)
  (Parameter.set 'Duration_Stretch stretch)
  (let ((utt (eval (list 'Utterance 'Text txt))))
    (utt.synth utt)
    (utt.save.wave utt out 'riff)))
"""


def voice_name(engine: str, settings: dict) -> str:
    """A readable name for one voice setting, e.g. ``"espeak te+f3 p45 s150"``."""
    if engine == "festival":
        return f"festival-nsk f0x{settings['f0_scale']:.2f} dur{settings['duration_stretch']:.2f}"
    return f"espeak {settings['variant']} p{settings['pitch']} s{settings['speed']}"


def available_engines(log: Callable[[str], object] = print) -> list[str]:
    """The synthesizers that work here: a subset of ``["festival", "espeak"]``.

    Raises:
        RuntimeError: If neither works; the message says what to install.
    """
    engines = []
    if shutil.which("festival"):
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.scm"
            probe.write_text("(voice_telugu_NSK_diphone)\n")
            result = subprocess.run(["festival", "-b", str(probe)], capture_output=True,
                                    text=True, timeout=60)
        if result.returncode == 0 and "error" not in (result.stdout + result.stderr).lower():
            engines.append("festival")
        else:
            log("festival is installed but the Telugu voice is not: apt-get install -y "
                "festvox-te-nsk")
    if shutil.which("espeak-ng"):
        engines.append("espeak")
    if not engines:
        raise RuntimeError(f"no Telugu speech synthesizer found: {INSTALL_HINT}")
    if len(engines) == 1:
        log(f"warning: only {engines[0]} is available; building the corpus from it alone "
            f"(for more voices: {INSTALL_HINT})")
    return engines


def _plan(engines: list[str], minutes: float, seed: int) -> list[dict]:
    """Clips to synthesize, in order: held-out first, then train; about 15 % over target."""
    rng = np.random.default_rng(seed)
    train_sentences, heldout_sentences = split_sentences(load_sentences())
    total = minutes * 60.0
    targets = {"heldout": total * HELDOUT_SHARE, "train": total * (1 - HELDOUT_SHARE)}
    held_voices = [(e, s) for e in engines
                   for s in (FESTIVAL_HELDOUT if e == "festival" else ESPEAK_HELDOUT)]

    def estimate(engine: str, settings: dict, text: str) -> float:
        scale = (settings["duration_stretch"] if engine == "festival"
                 else 175.0 / settings["speed"])
        return len(text) * _SECONDS_PER_CHAR[engine] * scale + 0.3

    plan: list[dict] = []
    seconds = 0.0
    round_ = 0
    while seconds < 1.15 * targets["heldout"]:
        for i, sentence in enumerate(heldout_sentences):
            engine, settings = held_voices[(i + round_) % len(held_voices)]
            plan.append({"split": "heldout", "engine": engine, "settings": settings,
                         "text": sentence.text, "sentence_id": sentence.id})
            seconds += estimate(engine, settings, sentence.text)
            if seconds >= 1.15 * targets["heldout"]:
                break
        round_ += 1
    seconds = 0.0
    order: list = []
    while seconds < 1.15 * targets["train"]:
        if not order:
            order = [train_sentences[i] for i in rng.permutation(len(train_sentences))]
        engine = engines[int(rng.integers(len(engines)))]
        if engine == "festival":
            settings = FESTIVAL_TRAIN[int(rng.integers(len(FESTIVAL_TRAIN)))]
        else:
            settings = {"variant": ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))],
                        "pitch": int(rng.choice(ESPEAK_PITCH)),
                        "speed": int(rng.choice(ESPEAK_SPEED))}
        if rng.random() < 0.08:
            text, sentence_id = random_words(rng, int(rng.integers(4, 10))), "random_words"
        else:
            sentence = order.pop()
            text, sentence_id = sentence.text, sentence.id
        plan.append({"split": "train", "engine": engine, "settings": settings, "text": text,
                     "sentence_id": sentence_id})
        seconds += estimate(engine, settings, text)
    for index, item in enumerate(plan):
        item["index"] = index
        item["voice"] = voice_name(item["engine"], item["settings"])
        item["path"] = f"{item['split']}/{index:05d}_{item['engine']}.wav"
    return plan


def _trim(audio: np.ndarray, rate: int, *, floor_db: float = -45.0,
          pad_s: float = 0.08) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``floor_db`` below the loudest frame."""
    hop = rate // 100
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)  # (frames, 10 ms)
    if frames.size == 0:
        return audio
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(level > max(level.max() + floor_db, -70.0))
    if active.size == 0:
        return audio[:0]
    pad = int(pad_s * rate)
    return audio[max(0, active[0] * hop - pad): min(audio.size, (active[-1] + 1) * hop + pad)]


def _finish(raw: Path, item: dict, out_dir: Path) -> dict | None:
    import soundfile as sf
    import soxr

    audio, rate = sf.read(str(raw), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    audio = _trim(audio, SAMPLE_RATE)
    if audio.size < 0.3 * SAMPLE_RATE:
        return None
    gain, limited = normalization_gain(audio, TARGET_DBFS)
    sf.write(str(out_dir / item["path"]), (audio * gain).astype(np.float32), SAMPLE_RATE,
             subtype="PCM_16")
    return {**item, "duration": round(audio.size / SAMPLE_RATE, 3),
            "gain_db": round(20 * np.log10(gain), 2), "peak_limited": limited}


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _run_festival(items: list[dict], raw_dir: Path, out_dir: Path) -> list[dict | None]:
    script = raw_dir / f"batch{items[0]['index']}.scm"
    lines = [_FESTIVAL_PRELUDE]
    for item in items:
        s = item["settings"]
        raw = raw_dir / f"{item['index']:05d}.wav"
        lines.append(f"(nsk_say {_scheme_string(item['text'])} {s['f0_scale']} "
                     f"{s['duration_stretch']} {_scheme_string(str(raw))})")
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"festival failed ({result.returncode}): {result.stderr[-500:]}")
    return [_finish(raw_dir / f"{it['index']:05d}.wav", it, out_dir)
            if (raw_dir / f"{it['index']:05d}.wav").exists() else None for it in items]


def _run_espeak(items: list[dict], raw_dir: Path, out_dir: Path) -> list[dict | None]:
    done = []
    for item in items:
        s, raw = item["settings"], raw_dir / f"{item['index']:05d}.wav"
        subprocess.run(["espeak-ng", "-v", s["variant"], "-p", str(s["pitch"]), "-s",
                        str(s["speed"]), "-w", str(raw), "--stdin"], input=item["text"],
                       capture_output=True, text=True, check=True, timeout=60)
        done.append(_finish(raw, item, out_dir))
    return done


def _synthesize(plan: list[dict], out_dir: Path, log: Callable[[str], object]) -> list[dict]:
    """Run the plan on 2 worker threads (each driving its synthesizer processes)."""
    for split in ("train", "heldout"):
        (out_dir / split).mkdir(parents=True)
    jobs = []
    for engine, runner in (("festival", _run_festival), ("espeak", _run_espeak)):
        items = [it for it in plan if it["engine"] == engine]
        for chunk in np.array_split(np.arange(len(items)), 4 if items else 0):
            if chunk.size:
                jobs.append((runner, [items[i] for i in chunk]))
    with tempfile.TemporaryDirectory(prefix="telugu-tts-") as raw, \
            ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(runner, items, Path(raw), out_dir) for runner, items in jobs]
        results = [r for f in futures for r in f.result()]
    kept = sorted((r for r in results if r is not None), key=lambda r: r["index"])
    if len(kept) < 0.95 * len(plan):
        raise RuntimeError(f"synthesis produced only {len(kept)} of {len(plan)} clips")
    if len(kept) < len(plan):
        log(f"{len(plan) - len(kept)} clips came out empty and were dropped")
    return kept


def _texts_digest() -> str:
    digest = hashlib.sha1()
    for path in sorted(TEXT_DIR.glob("*.txt")) + [TEXT_DIR / "__init__.py"]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _load_manifest(directory: Path) -> dict | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _replace_dir(tmp: Path, final: Path, fmt: str) -> None:
    """Move the finished ``tmp`` to ``final``, replacing an earlier build of the same kind."""
    old = None
    if final.exists():
        manifest = _load_manifest(final)
        if any(final.iterdir()) and (manifest is None or manifest.get("format") != fmt):
            raise FileExistsError(f"{final} exists and is not a {fmt} directory; choose an "
                                  "empty or new directory")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _reusable(directory: Path, params: dict) -> dict | None:
    manifest = _load_manifest(directory)
    if manifest is None or manifest.get("params") != params:
        return None
    if not all((directory / f["path"]).is_file() for f in manifest.get("files", [])):
        return None
    return manifest


def _summary(manifest: dict) -> str:
    s = manifest["summary"]
    return (f"{s['files']['train']} train + {s['files']['heldout']} held-out files, "
            f"{s['minutes']['train']:.1f} + {s['minutes']['heldout']:.1f} min, "
            f"{s['voices']['train']} train voices + {s['voices']['heldout']} held-out voices")


def _corpus_manifest(made: list[dict], out_dir: Path, params: dict, minutes: float,
                     start: float) -> dict:
    """Keep the synthesized clips in their planned order until each split reaches its share
    (deleting the rest from ``out_dir``) and describe them."""
    files, used = [], {"train": 0.0, "heldout": 0.0}
    for item in made:
        share = HELDOUT_SHARE if item["split"] == "heldout" else 1 - HELDOUT_SHARE
        if used[item["split"]] >= share * minutes * 60:
            (out_dir / item["path"]).unlink()
            continue
        used[item["split"]] += item["duration"]
        files.append({k: v for k, v in item.items() if k != "index"})
    voices = {split: sorted({f["voice"] for f in files if f["split"] == split})
              for split in ("train", "heldout")}
    return {
        "format": CORPUS_FORMAT, "params": params,
        "heldout_rule": "held-out sentences (sha1 of the text % 10 == 0, see texts/) "
                        "spoken by held-out voice settings that never occur in training",
        "voices": voices,
        "summary": {
            "files": {s: sum(f["split"] == s for f in files) for s in used},
            "minutes": {s: round(v / 60, 2) for s, v in used.items()},
            "voices": {s: len(v) for s, v in voices.items()},
            "peak_limited": sum(f["peak_limited"] for f in files),
            "build_seconds": round(time.perf_counter() - start, 1)},
        "files": files}


def build_default_corpus(cache_dir: Path, *, minutes: float = 40.0, seed: int = 0,
                         log: Callable[[str], object] = print) -> Path:
    """Build (or reuse) the default synthetic Telugu corpus in ``cache_dir``.

    ``cache_dir`` ends up holding ``train/`` and ``heldout/`` (16 kHz mono 16-bit WAV) and
    ``manifest.json`` (parameters, the held-out rule and voices, and per file: split,
    engine, voice, settings, text, sentence id, duration, gain, whether the peak limited
    the gain). A corpus with the same parameters is reused as it is. The build goes to a
    temporary sibling directory that is renamed into place at the end, so an interrupted
    build never leaves a corpus that looks complete. About 10 s for 40 minutes on 2 cores.

    Args:
        cache_dir: Directory of the corpus: new, empty, or an earlier corpus (replaced).
        minutes: Total audio to produce (10 % of it held out), ``> 0``.
        seed: Seed of the voice and sentence choices.
        log: Receives progress lines and warnings.

    Returns:
        ``cache_dir``.

    Raises:
        RuntimeError: If no synthesizer is installed (the message says what to install) or
            synthesis fails.
        FileExistsError: If ``cache_dir`` holds something other than a corpus.
        ValueError: If ``minutes`` is not positive.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    cache_dir = Path(cache_dir)
    start = time.perf_counter()
    engines = available_engines(log)
    params = {"version": CORPUS_VERSION, "minutes": float(minutes), "seed": int(seed),
              "engines": engines, "texts": _texts_digest(), "sample_rate": SAMPLE_RATE,
              "target_dbfs": TARGET_DBFS}
    manifest = _reusable(cache_dir, params)
    if manifest is not None:
        log(f"reusing the corpus in {cache_dir}: {_summary(manifest)}")
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.building-", dir=cache_dir.parent))
    try:
        plan = _plan(engines, minutes, seed)
        log(f"synthesizing {len(plan)} clips with {' and '.join(engines)} into {cache_dir}")
        made = _synthesize(plan, tmp, log)
        manifest = _corpus_manifest(made, tmp, params, minutes, start)
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                           encoding="utf-8")
        _replace_dir(tmp, cache_dir, CORPUS_FORMAT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"built {cache_dir} in {time.perf_counter() - start:.1f} s: {_summary(manifest)}")
    return cache_dir


REAL_SPEECH_PACKAGE = "asterisk-core-sounds-en-g722"  # held out: never trained on
# The same prompts read by four other studio voices (about 107 min): training speech.
TRAINING_SPEECH_PACKAGES = tuple(f"asterisk-core-sounds-{lang}-g722"
                                 for lang in ("es", "fr", "it", "ru"))
REAL_SPEECH_FORMAT = "rvq_blocks-real-speech"
REAL_SPEECH_VERSION = 2


def fetch_real_speech(cache_dir: Path, *, log: Callable[[str], object] = print,
                      deb: Path | None = None, package: str = REAL_SPEECH_PACKAGE) -> Path:
    """Fetch about 25 minutes of recorded studio prompts as 16 kHz WAV (cached).

    Downloads the Debian package ``package`` (default ``asterisk-core-sounds-en-g722``, the
    English prompts held out for evaluation; :data:`TRAINING_SPEECH_PACKAGES` are the Spanish,
    French, Italian and Russian ones used for training; all CC-BY-SA-3.0) with
    ``apt-get download`` (no root needed) into a temporary directory, unpacks it with
    ``dpkg -x`` and decodes every ``.g722`` file with the ``g722`` package (PyPI). The
    ``silence/`` prompts, near-silent clips (below -50 dBFS RMS) and clips shorter than
    0.5 s are left out; levels are kept as recorded. ``cache_dir`` gets the WAV files, in
    the package's subdirectories, and a ``manifest.json``; a complete earlier fetch is
    reused.

    Args:
        cache_dir: Directory for the decoded speech: new, empty, or an earlier fetch.
        log: Receives progress lines.
        deb: A ``.deb`` of the package downloaded elsewhere, used instead of ``apt-get``.

    Returns:
        ``cache_dir``.

    Raises:
        RuntimeError: If the download or unpacking fails; the message says what to do.
        ImportError: If the ``g722`` package is missing.
    """
    cache_dir = Path(cache_dir)
    manifest = _load_manifest(cache_dir)
    if (manifest and manifest.get("format") == REAL_SPEECH_FORMAT
            and manifest.get("version") == REAL_SPEECH_VERSION
            and str(manifest.get("package", "")).startswith(f"{package}_")
            and all((cache_dir / f["path"]).is_file() for f in manifest["files"])):
        log(f"reusing real speech in {cache_dir}: {len(manifest['files'])} files, "
            f"{manifest['minutes']:.1f} min")
        return cache_dir
    try:
        import G722  # noqa: F401 - the PyPI package "g722"
    except ImportError as err:
        raise ImportError("decoding G.722 needs the g722 package: pip install g722") from err

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.building-", dir=cache_dir.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="real-speech-") as work:
            deb = deb if deb is not None else _download_deb(package, Path(work))
            files, short = _decode_prompts(_unpack_g722(deb, Path(work) / "unpacked"), tmp)
        manifest = {"format": REAL_SPEECH_FORMAT, "version": REAL_SPEECH_VERSION,
                    "package": deb.name,
                    "license": "CC-BY-SA-3.0 (Asterisk core sound prompts, Digium)",
                    "left_out": f"{short} clips: silence/, under -50 dBFS RMS or under 0.5 s",
                    "minutes": round(sum(f["duration"] for f in files) / 60, 2),
                    "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _replace_dir(tmp, cache_dir, REAL_SPEECH_FORMAT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"real speech in {cache_dir}: {len(files)} files, {manifest['minutes']:.1f} min "
        f"({short} silent or short clips left out)")
    return cache_dir


def _download_deb(package: str, work: Path) -> Path:
    """``apt-get download package`` into ``work``; the ``.deb`` it wrote."""
    try:
        result = subprocess.run(["apt-get", "download", package], cwd=work,
                                capture_output=True, text=True, timeout=300)
        error = result.stderr.strip()[-400:] if result.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as err:
        error = str(err)
    debs = sorted(work.glob(f"{package}_*.deb"))
    if error or not debs:
        raise RuntimeError(
            f"`apt-get download {package}` failed: {error or 'no .deb'}."
            " On Debian/Ubuntu run `apt-get update` (as root) and retry; elsewhere"
            f" download the .deb from https://packages.debian.org/{package} and pass"
            " deb=PATH, or evaluate on any directory of WAV/FLAC speech instead.")
    return debs[-1]


def _unpack_g722(deb: Path, unpacked: Path) -> list[Path]:
    """``dpkg -x deb unpacked``; the ``.g722`` files it holds, sorted."""
    result = subprocess.run(["dpkg", "-x", str(deb), str(unpacked)],
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"dpkg -x {deb} failed: {result.stderr.strip()[-400:]}"
                           " (dpkg is needed to unpack it)")
    sources = sorted(unpacked.rglob("*.g722"))
    if not sources:
        raise RuntimeError(f"{deb} holds no .g722 files")
    return sources


def _decode_prompts(sources: list[Path], out_dir: Path) -> tuple[list[dict], int]:
    """Decode G.722 prompts to 16 kHz WAV under ``out_dir`` (paths relative to their common
    folder), leaving out ``silence/``, near-silent and short ones; returns the manifest's
    file entries and how many were left out."""
    import G722
    import soundfile as sf

    root = Path(os.path.commonpath([p.parent for p in sources]))
    files, short = [], 0
    for source in sources:
        rel = source.relative_to(root).with_suffix(".wav")
        audio = np.frombuffer(G722.G722(SAMPLE_RATE, 64000).decode(source.read_bytes()),
                              dtype=np.int16)
        rms = np.sqrt(np.mean((audio / 32768.0) ** 2)) if audio.size else 0.0
        if (audio.size < 0.5 * SAMPLE_RATE or rms < 10 ** (-50 / 20)
                or rel.parts[0] == "silence"):
            short += 1
            continue
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(out_dir / rel), audio, SAMPLE_RATE, subtype="PCM_16")
        files.append({"path": rel.as_posix(), "duration": round(audio.size / SAMPLE_RATE, 3)})
    return files, short


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the synthetic Telugu speech corpus.")
    parser.add_argument("--cache_dir", type=Path, required=True, help="corpus directory")
    parser.add_argument("--minutes", type=float, default=40.0, help="total minutes of audio")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real_speech", type=Path, default=None,
                        help="also fetch the recorded English prompts into this directory")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = build_default_corpus(args.cache_dir, minutes=args.minutes, seed=args.seed)
    manifest = _load_manifest(path)
    print(f"corpus: {path} ({time.perf_counter() - start:.1f} s wall)")
    print(f"  {_summary(manifest)}")
    for split in ("train", "heldout"):
        print(f"  {split} voices: {', '.join(manifest['voices'][split])}")
    if args.real_speech is not None:
        fetch_real_speech(args.real_speech)


if __name__ == "__main__":
    main()
