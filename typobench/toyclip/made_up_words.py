"""Made-up words written on toyclip's training photos: word-like scraps of text and near misses of class names.

On a photo they are always captioned with the photo's class, so the model learns that only a class
name itself is read, not any letter sequence that looks like one.
"""

from __future__ import annotations

import numpy as np

from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.toyclip.draws import pick
from typobench.toyclip.vocabulary import CONTROL_WORDS, STROOP_NEUTRAL

# Never made up: a made-up word must not be read as a class name or be a word held out of training.
_NOT_SCRAPS = frozenset((*CIFAR10_CLASSNAMES, *CONTROL_WORDS, STROOP_NEUTRAL))
_VOWELS, _CONSONANTS = "aeiou", "bcdfghjklmnprstvwz"
_LETTERS = _VOWELS + _CONSONANTS


def near_miss(word: str, rng: np.random.Generator) -> str:
    """``word`` with one or two edits (substitute, drop, add or swap letters); never a class name, a
    control word or Stroop's neutral word, and never ``word`` itself. It may be another real word ("cat"
    -> "car"): like every made-up word on a photo, it is captioned with the photo's class."""
    while True:
        letters = list(word)
        for _ in range(int(rng.integers(1, 3))):
            edit, at = int(rng.integers(4)), int(rng.integers(len(letters)))
            if edit == 0:
                letters[at] = pick(_LETTERS, rng)
            elif edit == 1 and len(letters) > 3:
                del letters[at]
            elif edit == 2:
                letters.insert(at, pick(_LETTERS, rng))
            elif at + 1 < len(letters):
                letters[at], letters[at + 1] = letters[at + 1], letters[at]
        text = "".join(letters)
        if text != word and text not in _NOT_SCRAPS:
            return text


def random_string(rng: np.random.Generator) -> str:
    """A made-up word: 1-3 syllables (consonant, vowel, sometimes a closing consonant: word-like, as
    "lomar" or "tibendo") 70% of the time, else 3-10 random letters; first letter capitalised 20% of
    the time. Never a class name, a control word or Stroop's neutral word."""
    while True:
        if rng.random() < 0.7:
            parts = []
            for _ in range(int(rng.integers(1, 4))):
                parts.append(pick(_CONSONANTS, rng) + pick(_VOWELS, rng))
                if rng.random() < 0.4:
                    parts.append(pick(_CONSONANTS, rng))
            text = "".join(parts)
        else:
            text = "".join(chr(ord("a") + int(i)) for i in rng.integers(0, 26, size=int(rng.integers(3, 11))))
        if len(text) >= 3 and text not in _NOT_SCRAPS:
            return text.capitalize() if rng.random() < 0.2 else text

