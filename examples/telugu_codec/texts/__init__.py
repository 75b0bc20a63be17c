"""Telugu text for the example corpus: sentences shipped as UTF-8 files, and random words.

The ``*.txt`` files beside this module hold one sentence per line, grouped by kind:
everyday speech, questions, numbers (dates, prices, phone numbers, written both in digits
and in words), names of people and places, and general text (news, announcements,
recipes, proverbs, stories).

The held-out split is a fixed hash rule on the sentence text (:func:`is_heldout`), so it
does not depend on file order and does not move when sentences are added: a held-out
sentence is never used for training.

Example:
    >>> from examples.telugu_codec.texts import load_sentences, split_sentences
    >>> train, heldout = split_sentences(load_sentences())
    >>> len(train) > 5 * len(heldout) > 0
    True
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "HELDOUT_MODULUS",
    "Sentence",
    "is_heldout",
    "load_sentences",
    "random_words",
    "split_sentences",
]

TEXT_DIR = Path(__file__).resolve().parent
HELDOUT_MODULUS = 10
"""A sentence is held out when ``sha1(text) % HELDOUT_MODULUS == 0`` (about 10 %)."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of the shipped text.

    Args:
        id: ``"<file stem>:<line number>"``, for example ``"questions:12"``.
        text: The sentence, NFC-normalised.
    """

    id: str
    text: str


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def is_heldout(text: str) -> bool:
    """Whether ``text`` belongs to the held-out set (a fixed rule on its NFC form)."""
    return _hash(unicodedata.normalize("NFC", text.strip())) % HELDOUT_MODULUS == 0


def load_sentences(text_dir: Path | None = None) -> list[Sentence]:
    """Every non-empty line of every ``*.txt`` file in ``text_dir``, sorted by file name.

    Args:
        text_dir: Directory of UTF-8 text files; the shipped texts by default.

    Returns:
        The sentences in file order; exact duplicates keep their first occurrence.

    Raises:
        FileNotFoundError: If ``text_dir`` holds no ``*.txt`` file.
    """
    text_dir = TEXT_DIR if text_dir is None else Path(text_dir)
    files = sorted(text_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no *.txt sentence files in {text_dir}")
    seen: set[str] = set()
    sentences = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = unicodedata.normalize("NFC", line.strip())
            if text and not text.startswith("#") and text not in seen:
                seen.add(text)
                sentences.append(Sentence(f"{path.stem}:{number}", text))
    return sentences


def split_sentences(sentences: list[Sentence]) -> tuple[list[Sentence], list[Sentence]]:
    """Split into ``(train, heldout)`` with :func:`is_heldout`; order is kept."""
    heldout = [s for s in sentences if is_heldout(s.text)]
    train = [s for s in sentences if not is_heldout(s.text)]
    return train, heldout


# Telugu letters for random words. Consonants are listed with rough frequency weights.
_CONSONANTS = {
    "క": 6, "గ": 4, "చ": 4, "జ": 2, "ట": 3, "డ": 3, "ణ": 1, "త": 6, "ద": 4, "న": 7,
    "ప": 5, "బ": 2, "మ": 6, "య": 3, "ర": 7, "ల": 6, "వ": 5, "శ": 1, "ష": 1, "స": 4,
    "హ": 1, "ళ": 2, "ఖ": 1, "ఘ": 0.5, "ఛ": 0.5, "ఠ": 0.5, "ఢ": 0.5, "థ": 1, "ధ": 1,
    "భ": 1, "ఫ": 0.5,
}
_VOWEL_SIGNS = {"": 8, "ా": 6, "ి": 5, "ీ": 2, "ు": 8, "ూ": 1.5, "ె": 2, "ే": 2,
                "ొ": 1.5, "ో": 1.5, "ై": 1, "ౌ": 0.3}
_INITIAL_VOWELS = ["అ", "ఆ", "ఇ", "ఈ", "ఉ", "ఊ", "ఎ", "ఏ", "ఒ", "ఓ", "ఐ"]
_FINAL_SIGNS = ["ు", "ి", "ా", "ం", "ే", "ొ"]  # Telugu words end in a vowel (or anusvara)
_CLUSTER_SECOND = ["క", "ట", "త", "ద", "న", "ప", "మ", "య", "ర", "ల", "వ", "స"]
_VIRAMA = "్"
_ANUSVARA = "ం"


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _syllable(rng: np.random.Generator, *, first: bool, last: bool) -> str:
    if first and rng.random() < 0.15:
        return _INITIAL_VOWELS[rng.integers(len(_INITIAL_VOWELS))]
    onset = _choice(rng, _CONSONANTS)
    if not first and rng.random() < 0.2:  # geminate or cluster: క్క, న్ద, స్త, ...
        second = onset if rng.random() < 0.5 else _CLUSTER_SECOND[rng.integers(12)]
        onset = onset + _VIRAMA + second
    if last:
        return onset + _FINAL_SIGNS[rng.integers(len(_FINAL_SIGNS))]
    syllable = onset + _choice(rng, _VOWEL_SIGNS)
    if rng.random() < 0.08:
        syllable += _ANUSVARA
    return syllable


def random_words(rng: np.random.Generator, num_words: int) -> str:
    """A line of ``num_words`` random, pronounceable Telugu pseudo-words.

    Words are 2 to 4 syllables of consonant + vowel sign, with occasional initial vowels,
    geminates and clusters (``క్క``, ``స్త``) and the anusvara; every word ends in a vowel,
    as Telugu words do. They widen the phone coverage beyond the shipped sentences.

    Args:
        rng: Source of randomness; the same generator state gives the same line.
        num_words: Number of words, at least 1.

    Returns:
        The words joined by spaces, with a full stop at the end.

    Raises:
        ValueError: If ``num_words`` is less than 1.
    """
    if num_words < 1:
        raise ValueError(f"num_words must be at least 1, got {num_words}")
    words = []
    for _ in range(num_words):
        n = int(rng.integers(2, 5))
        words.append("".join(_syllable(rng, first=i == 0, last=i == n - 1) for i in range(n)))
    return " ".join(words) + "."
