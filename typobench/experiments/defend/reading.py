"""The reading cost of a defense: how much can the defended model still read?

A defense that "wins" against typographic attacks by blinding the model to text shows it here. Two scores
per ``typobench defend`` row, each through the row's defenses:

* ``words_alone``: accuracy on the ``words-alone`` suite's text stage (each image replaced by white, its
  true class name written on it) -- on the scored data set's classes and head;
* ``word_retrieval``: top-1 word retrieval over a fixed lexicon (``typobench/data/lexicon_en.txt``, a few
  hundred common English words): each word is written alone on white in the ``words-alone`` style and
  scored against the zero-shot text embeddings of every lexicon word (the data set's templates, through
  the row's prompt defenses), i.e. the ``words-alone`` suite on a data set whose classes are the lexicon.
  Chance is 1 / (number of words).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import PIL.Image

from typobench.core.errors import UsageError
from typobench.data import ImageDataset
from typobench.harness.run import run_suite
from typobench.harness.session import Session
from typobench.suites import Suite, read_suite

READING_SUITE = "words-alone"
READING_STAGE = "words-alone"
READING_DIR = "reading"
LEXICON_FILE = "lexicon_en.txt"


def lexicon(limit: int | None = None) -> list[str]:
    """The shipped lexicon (its first ``limit`` words when given)."""
    text = files("typobench.data").joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    words = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if limit is not None and not 2 <= limit <= len(words):
        raise UsageError(f"--lexicon-words {limit}: the lexicon has {len(words)} words; give 2 to {len(words)}")
    return words[:limit] if limit else words


class WhiteLoader:
    """A small white image per item (the ``words-alone`` suite paints every image white anyway)."""

    def __call__(self, index: int) -> PIL.Image.Image:
        return PIL.Image.new("RGB", (32, 32), "white")


def lexicon_dataset(words: list[str], templates: list[str], transform) -> ImageDataset:
    """One item per word, labelled by its own index: the classes are the words."""
    return ImageDataset(name=f"lexicon-en-{len(words)}", split="words", classnames=words, templates=templates,
                        labels=list(range(len(words))), sample_ids=[f"lexicon/{w}" for w in words],
                        loader=WhiteLoader(), transform=transform)


def lexicon_session(session: Session, words: list[str]) -> Session:
    """``session``'s model and defenses on the lexicon data set, with a zero-shot head over the words."""
    data = lexicon_dataset(words, list(session.data.templates), session.model.pixel_transform())
    bare = replace(session.undefended(), config=replace(session.config, head="zeroshot", limit=None, holdout=None),
                   dataset=data, _classifier=None, _head_info={}, _defended=None, _undefended=None,
                   _provenance=None)
    return bare.with_defenses(list(session.defenses))


@dataclass
class Reading:
    """The two reading sessions of a row: its own (the data set) and the lexicon's."""

    session: Session
    lexicon: Session
    words: int


def plan_reading(session: Session, lexicon_words: int | None) -> Reading:
    words = lexicon(lexicon_words)
    return Reading(session, lexicon_session(session, words), len(words))


def reading_suite() -> Suite:
    return read_suite(READING_SUITE)


def run_reading(reading: Reading, row_dir: Path, *, progress: bool, overwrite: bool) -> dict[str, Any]:
    """``words_alone`` and ``word_retrieval`` (``{value, ci95, n}`` each) and the lexicon's size."""
    suite = reading_suite()
    out: dict[str, Any] = {"lexicon_words": reading.words}
    for key, session in (("words_alone", reading.session), ("word_retrieval", reading.lexicon)):
        outcome = run_suite(session, suite, row_dir / READING_DIR / key, progress=progress, pictures=False,
                            overwrite=overwrite)
        stage = next(s for s in outcome.results["stages"] if s["name"] == READING_STAGE)
        out[key] = {"value": stage["accuracy"], "ci95": stage["ci95"], "n": stage["n"]}
    return out


__all__ = ["LEXICON_FILE", "Reading", "lexicon", "lexicon_dataset", "lexicon_session", "plan_reading", "run_reading"]
