"""Union-label mode, shared by the real-photo typographic attack data sets (:mod:`.realworld`).

The classes are the sorted union of the true labels and the attack words (normalised: lower-case,
stripped, ``_`` -> space, runs of spaces collapsed), the only template is ``"a photo of a {}."``,
``labels`` index the true object and ``text_targets`` index the word written in the image (``-1``
where nothing is written). A word that is both a true label and an attack word is one class.
Sample ids are paths relative to the data root (POSIX ``/``), items are sorted by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from typobench.data.base import FileLoader, ImageDataset, PixelTransform

UNION_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
NO_TEXT = -1


def normalize_label(text: str) -> str:
    """``" Golden_Retriever "`` -> ``"golden retriever"``: lower-case, ``_`` -> space, whitespace collapsed."""
    return " ".join(text.replace("_", " ").lower().split())


@dataclass(frozen=True)
class AttackItem:
    """One photo: its path relative to the data root, true object, and written word (``""`` = none)."""

    relpath: str
    label: str
    text: str


def union_dataset(
    *,
    name: str,
    root: Path,
    split: str,
    items: list[AttackItem],
    transform: PixelTransform,
    vocabulary: Iterable[AttackItem] | None = None,
) -> ImageDataset:
    """An :class:`ImageDataset` in union-label mode over ``items`` (sorted by path).

    ``vocabulary`` (default: ``items``) are the items whose labels and words make up the classes.
    """
    items = sorted(items, key=lambda it: it.relpath)
    vocabulary = items if vocabulary is None else list(vocabulary)
    classes = sorted({it.label for it in vocabulary} | {it.text for it in vocabulary if it.text})
    index = {c: i for i, c in enumerate(classes)}
    relpaths = [it.relpath for it in items]
    return ImageDataset(
        name=name,
        split=split,
        classnames=classes,
        templates=UNION_TEMPLATES,
        labels=[index[it.label] for it in items],
        sample_ids=relpaths,
        loader=FileLoader(root, relpaths),
        transform=transform,
        root=root,
        text_targets=[index[it.text] if it.text else NO_TEXT for it in items],
    )
