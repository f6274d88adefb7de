"""Published real-photo typographic attack data sets, loaded from a local copy: ``materzynska``,
``paint``, ``rta100`` and ``scam``.

All four are scored in *union-label* mode (:mod:`.union_labels`): the classes are the sorted union
of the true labels and the attack words, ``labels`` index the true object and ``text_targets`` the
word written in the image (``-1`` where nothing is written). Sample ids are paths relative to
``--data-root`` (POSIX ``/``), items are sorted by id. Nothing is ever downloaded.

On-disk layouts (what each loader expects, and how sure we are):

``materzynska`` -- Materzynska, Torralba & Bau, "Disentangling visual and written concepts in CLIP",
    CVPR 2022; data: the Google Drive folder linked from github.com/joaanna/disentangling_spelling_in_clip.
    The repository README documents one JSON file mapping image file name to its annotation,
    ``{"IMG_2934.JPG": {"true object": "cup", "typographic attack label": "good"}, ...}`` (180 photos,
    20 objects, 8 attack words; an empty attack label = a photo without an attack, text target -1).
    *Assumed* (not confirmed from the release itself): the README calls the file ``annotation.json``
    while third-party loaders (Defense-Prefix, dyslexify) open ``annotations.json``, so either name
    is accepted, in ``--data-root`` or in ``--data-root/typographic_attack_dataset/``; each image is
    looked up next to the JSON file, then in an ``images/`` folder beside it (Defense-Prefix's layout,
    which also has a ``classes.json`` that we do not need).

``paint`` -- Ilharco et al., "Patching open-vocabulary models by interpolating weights", NeurIPS 2022;
    data: ``typographic_attack_data.zip`` in github.com/mlfoundations/patching. The README documents
    the annotation as the file name, ``label=dog_text=cat.png`` = a photo of a dog with "cat" written
    on it. *Assumed*: the folder nesting inside the zip (Defense-Prefix reads
    ``typographic_real_data_from_PAINT/typographic_attacks/``), so ``--data-root`` is searched
    recursively for ``label=<object>_text=<word>.<image extension>`` files (hidden entries and
    ``__MACOSX`` skipped); other images are ignored, but a ``label=...`` image that does not parse is an
    error. ``_text=`` is the separator, so labels may contain underscores (-> spaces).

``rta100`` -- Azuma & Matsui, "Defense-Prefix for Preventing Typographic Attacks on CLIP",
    ICCV 2023 workshops; data: ``rta100.zip`` in github.com/azuma164/Defense-Prefix. The README
    documents the same file-name annotation as PAINT (``label=dog_text=cat.png``), and the same
    recursive search is used (Defense-Prefix reads ``ours/data/``, the SCAM code ``RTA100/``).

``scam`` -- Westerhoff et al., "SCAM: A Real-World Typographic Robustness Evaluation for Multimodal
    Foundation Models", 2025; data: ``images.zip`` in huggingface.co/datasets/BLISS-e-V/SCAM (code:
    github.com/Bliss-e-V/SCAM). Confirmed: the release is a zipped Hugging Face *imagefolder* whose
    rows have ``type`` (``SCAM`` / ``SynthSCAM`` / ``NoSCAM``), ``object_label``, ``attack_word``,
    ``postit_area_pct`` and ``id`` (e.g. ``SCAM_img_0001``), with images like
    ``images/train/NoSCAM_img_0001.jpg`` before zipping. *Assumed*: the imagefolder metadata file is
    ``metadata.csv`` or ``metadata.jsonl`` (the two names the ``datasets`` imagefolder builder reads)
    with a ``file_name`` column relative to that file's folder; ``--data-root`` is searched
    recursively for exactly one such file. The split picks the variant: ``scam`` (default; alias
    ``test``), ``synthscam`` or ``noscam``; a row's variant is its ``type`` column, else its
    ``id``/file-name prefix. The classes are the union over *all* variants in the metadata, so the
    three splits share one class list and their accuracies compare directly. NoSCAM photos have the
    post-it removed, so nothing is written: their text target is -1 (the paired attack word is still
    a class).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from typobench.core.errors import UsageError

from typobench.data.base import ImageDataset, PixelTransform
from typobench.data.folder import check_root_exists, is_image_file
from typobench.data.registry import DatasetEntry, register_dataset
from typobench.data.union_labels import AttackItem, normalize_label, union_dataset


def walk_files(root: Path) -> Iterable[tuple[Path, str]]:
    """``(absolute folder, file name)`` under ``root``, sorted, skipping hidden entries and ``__MACOSX``."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for filename in sorted(filenames):
            if not filename.startswith("."):
                yield Path(dirpath), filename


def relative_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# --- Materzynska et al. 2022 ---------------------------------------------------------------------

MATERZYNSKA_LAYOUT = (
    "the Materzynska et al. typographic attack folder: annotation.json (or annotations.json) mapping "
    'each image file name to {"true object": ..., "typographic attack label": ...}, with the images next '
    "to it or in images/ (also accepted one level down, in typographic_attack_dataset/)"
)
MATERZYNSKA_HOW = (
    "Materzynska et al., 'Disentangling visual and written concepts in CLIP' (CVPR 2022): download the "
    "data set's Google Drive folder linked from https://github.com/joaanna/disentangling_spelling_in_clip"
)
MATERZYNSKA_FILES = ("annotation.json", "annotations.json")
MATERZYNSKA_TRUE = "true object"
MATERZYNSKA_ATTACK = "typographic attack label"


def find_materzynska_annotation(root: Path) -> Path:
    for folder in (root, root / "typographic_attack_dataset"):
        for filename in MATERZYNSKA_FILES:
            if (folder / filename).is_file():
                return folder / filename
    raise UsageError(
        f"data set 'materzynska' expects --data-root to be {MATERZYNSKA_LAYOUT}, but {root} has no "
        f"{' or '.join(MATERZYNSKA_FILES)}; {MATERZYNSKA_HOW}"
    )


def load_materzynska(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """Materzynska et al. 2022: one JSON annotation file (see the module docstring)."""
    check_root_exists(root, name="materzynska", layout=MATERZYNSKA_LAYOUT, how_to_get=MATERZYNSKA_HOW)
    annotation = find_materzynska_annotation(root)
    expected = f'expected {{"<image file>": {{"{MATERZYNSKA_TRUE}": "<object>", "{MATERZYNSKA_ATTACK}": "<word or empty>"}}, ...}}'
    try:
        entries = json.loads(annotation.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {annotation}: {exc}; {expected}") from exc
    if not isinstance(entries, dict) or not entries:
        raise UsageError(f"{annotation} is not a non-empty JSON object; {expected}")
    items: list[AttackItem] = []
    for filename, entry in entries.items():
        where = f"{annotation}, entry {filename!r}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} is not an object; {expected}")
        label = entry.get(MATERZYNSKA_TRUE)
        if not isinstance(label, str) or not normalize_label(label):
            raise UsageError(f"{where} has no non-empty {MATERZYNSKA_TRUE!r} field; {expected}")
        text = entry.get(MATERZYNSKA_ATTACK, "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise UsageError(f"{where}: {MATERZYNSKA_ATTACK!r} must be a string (empty = no attack); {expected}")
        candidates = (annotation.parent / filename, annotation.parent / "images" / filename)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise UsageError(
                f"{where}: image not found at {candidates[0]} or {candidates[1]}; expected the images next to "
                f"{annotation.name} or in images/ beside it"
            )
        items.append(AttackItem(relative_id(path, root), normalize_label(label), normalize_label(text)))
    return union_dataset(name="materzynska", root=root, split=split, items=items, transform=transform)


# --- PAINT (Ilharco et al. 2022) and RTA-100 (Azuma & Matsui 2023): label=<object>_text=<word>.<ext> ----

FILENAME_PATTERN = "label=<object>_text=<word>.<ext>"
FILENAME_RE = re.compile(r"^label=(?P<label>.+?)_text=(?P<text>.*)$")

PAINT_LAYOUT = f"a folder (searched recursively) of {FILENAME_PATTERN} images, e.g. label=dog_text=cat.png"
PAINT_HOW = (
    "Ilharco et al., 'Patching open-vocabulary models by interpolating weights' (NeurIPS 2022): unzip "
    "typographic_attack_data.zip from https://github.com/mlfoundations/patching"
)
RTA100_LAYOUT = PAINT_LAYOUT
RTA100_HOW = (
    "Azuma & Matsui, 'Defense-Prefix for Preventing Typographic Attacks on CLIP' (ICCV 2023 workshops), "
    "RTA-100: unzip rta100.zip from https://github.com/azuma164/Defense-Prefix"
)


def parse_attack_filename(filename: str) -> tuple[str, str] | None:
    """``"label=dog_text=hot_dog.png"`` -> ``("dog", "hot dog")``; ``None`` if it does not parse."""
    match = FILENAME_RE.match(PurePosixPath(filename).stem)
    if match is None:
        return None
    label, text = normalize_label(match["label"]), normalize_label(match["text"])
    return (label, text) if label else None


def load_filename_annotated(
    name: str, root: Path, split: str, transform: PixelTransform, *, layout: str, how_to_get: str
) -> ImageDataset:
    """PAINT / RTA-100: every ``label=..._text=...`` image under ``root`` (see the module docstring)."""
    check_root_exists(root, name=name, layout=layout, how_to_get=how_to_get)
    items: list[AttackItem] = []
    ignored = 0
    for folder, filename in walk_files(root):
        if not is_image_file(filename):
            continue
        if not filename.startswith("label="):
            ignored += 1
            continue
        parsed = parse_attack_filename(filename)
        if parsed is None:
            raise UsageError(
                f"cannot read the annotation in file name {folder / filename}: expected {FILENAME_PATTERN}, "
                "e.g. label=dog_text=cat.png"
            )
        items.append(AttackItem(relative_id(folder / filename, root), *parsed))
    if not items:
        others = f" ({ignored} other images ignored)" if ignored else ""
        raise UsageError(
            f"data set '{name}' expects --data-root to be {layout}, but no such file was found under {root}"
            f"{others}; {how_to_get}"
        )
    return union_dataset(name=name, root=root, split=split, items=items, transform=transform)


# --- SCAM (2025) ---------------------------------------------------------------------------------

SCAM_VARIANTS = MappingProxyType({"scam": "SCAM", "synthscam": "SynthSCAM", "noscam": "NoSCAM"})
SCAM_METADATA_FILES = ("metadata.csv", "metadata.jsonl")
SCAM_REQUIRED = ("file_name", "object_label", "attack_word")
SCAM_LAYOUT = (
    "the unzipped images.zip of the Hugging Face data set BLISS-e-V/SCAM: an imagefolder whose "
    "metadata.csv (or metadata.jsonl) has columns file_name, type (SCAM/SynthSCAM/NoSCAM), object_label, "
    "attack_word, with the images at file_name relative to it"
)
SCAM_HOW = (
    "Westerhoff et al., 'SCAM: A Real-World Typographic Robustness Evaluation for Multimodal Foundation "
    "Models' (2025): download and unzip images.zip from https://huggingface.co/datasets/BLISS-e-V/SCAM "
    "(code: https://github.com/Bliss-e-V/SCAM)"
)


def find_scam_metadata(root: Path) -> Path:
    found = [folder / f for folder, f in walk_files(root) if f in SCAM_METADATA_FILES]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"data set 'scam' expects --data-root to be {SCAM_LAYOUT}, but no "
            f"{' or '.join(SCAM_METADATA_FILES)} was found under {root}; {SCAM_HOW}"
        )
    raise UsageError(
        f"data set 'scam' found {len(found)} metadata files under {root} "
        f"({', '.join(relative_id(p, root) for p in found[:4])}); point --data-root at the folder holding the one to use"
    )


def read_scam_rows(metadata: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a metadata.csv / metadata.jsonl file."""
    try:
        with open(metadata, encoding="utf-8", newline="") as handle:
            if metadata.suffix == ".csv":
                return [(n + 2, dict(row)) for n, row in enumerate(csv.DictReader(handle))]
            rows = []
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise UsageError(f"{metadata}, line {n}: expected one JSON object per line")
                rows.append((n, row))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {metadata}: {exc}; expected {SCAM_LAYOUT}") from exc


def scam_variant(row: dict[str, Any]) -> str | None:
    """A row's variant (``"scam"`` ...): its ``type`` column, else the prefix of its ``id`` / file name."""
    kind = str(row.get("type") or "").strip()
    if kind:
        return next((k for k, v in SCAM_VARIANTS.items() if v.lower() == kind.lower()), None)
    stem = str(row.get("id") or PurePosixPath(str(row.get("file_name", ""))).name)
    # Longest prefix first: "SynthSCAM_..." and "NoSCAM_..." do not start with "SCAM_", but be explicit.
    for key, prefix in sorted(SCAM_VARIANTS.items(), key=lambda kv: -len(kv[1])):
        if stem.lower().startswith(prefix.lower() + "_"):
            return key
    return None


def load_scam(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """SCAM: one variant (the split) of the imagefolder metadata (see the module docstring)."""
    check_root_exists(root, name="scam", layout=SCAM_LAYOUT, how_to_get=SCAM_HOW)
    metadata = find_scam_metadata(root)
    rows = read_scam_rows(metadata)
    if not rows:
        raise UsageError(f"{metadata} has no rows; expected {SCAM_LAYOUT}")
    all_items: list[AttackItem] = []
    selected: list[AttackItem] = []
    for line, row in rows:
        where = f"{metadata}, line {line}"
        values = {}
        for field in SCAM_REQUIRED:
            value = row.get(field)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{where}: missing or empty field {field!r}; expected {SCAM_LAYOUT}")
            values[field] = value.strip()
        variant = scam_variant(row)
        if variant is None:
            raise UsageError(
                f"{where}: cannot tell the variant of {values['file_name']!r}: field 'type' must be one of "
                f"{', '.join(SCAM_VARIANTS.values())} (or the id/file name must start with one)"
            )
        path = metadata.parent / values["file_name"]
        if ".." in PurePosixPath(values["file_name"].replace("\\", "/")).parts:
            raise UsageError(f"{where}: file_name {values['file_name']!r} must stay inside {metadata.parent}")
        label, word = normalize_label(values["object_label"]), normalize_label(values["attack_word"])
        item = AttackItem(relative_id(path, root), label, word)
        all_items.append(item)
        if variant == split:
            if not path.is_file():
                raise UsageError(f"{where}: image {path} not found; file_name must be relative to {metadata.parent}")
            # NoSCAM: the post-it was removed, so nothing is written (the attack word stays a class).
            selected.append(item if variant != "noscam" else AttackItem(item.relpath, label, ""))
    if not selected:
        raise UsageError(
            f"{metadata} has no {SCAM_VARIANTS[split]} rows for split '{split}'; "
            f"choose from {', '.join(sorted({v for _, r in rows if (v := scam_variant(r))}))}"
        )
    return union_dataset(
        name="scam", root=root, split=split, items=selected, transform=transform, vocabulary=all_items
    )


# --- the entries ---------------------------------------------------------------------------------

register_dataset(
    DatasetEntry(
        name="materzynska",
        description="Materzynska et al. 2022: 180 real photos with hand-written attack words; union-label mode",
        needs_root=True,
        splits=("test",),
        how_to_get=f"--data-root must be {MATERZYNSKA_LAYOUT}; {MATERZYNSKA_HOW}",
        builder=lambda r: load_materzynska(r.root, r.split, r.transform),  # type: ignore[arg-type]
    )
)

register_dataset(
    DatasetEntry(
        name="paint",
        description="PAINT typographic attacks (Ilharco et al. 2022), label=X_text=Y photos; union-label mode",
        needs_root=True,
        splits=("test",),
        how_to_get=f"--data-root must be {PAINT_LAYOUT}; {PAINT_HOW}",
        builder=lambda r: load_filename_annotated(
            "paint", r.root, r.split, r.transform, layout=PAINT_LAYOUT, how_to_get=PAINT_HOW  # type: ignore[arg-type]
        ),
    )
)

register_dataset(
    DatasetEntry(
        name="rta100",
        description="RTA-100 (Azuma & Matsui 2023): 1,000 real photos, label=X_text=Y; union-label mode",
        needs_root=True,
        splits=("test",),
        how_to_get=f"--data-root must be {RTA100_LAYOUT}; {RTA100_HOW}",
        builder=lambda r: load_filename_annotated(
            "rta100", r.root, r.split, r.transform, layout=RTA100_LAYOUT, how_to_get=RTA100_HOW  # type: ignore[arg-type]
        ),
    )
)

register_dataset(
    DatasetEntry(
        name="scam",
        description="SCAM (2025) post-it attacks; split = variant scam (real), synthscam, noscam; union-label mode",
        needs_root=True,
        splits=tuple(SCAM_VARIANTS),
        how_to_get=f"--data-root must be {SCAM_LAYOUT}; {SCAM_HOW}",
        builder=lambda r: load_scam(r.root, r.split, r.transform),  # type: ignore[arg-type]
        split_aliases=MappingProxyType({"test": "scam", "SCAM": "scam", "SynthSCAM": "synthscam", "NoSCAM": "noscam"}),
    )
)
