"""The zero-shot data sets of FARE's and clip_benchmark's evaluations, read (and downloaded) by torchvision.

Each is read exactly as clip_benchmark 1.6.2 reads it (same torchvision class, split and class-name source), so
that accuracies compare: class names and templates are clip_benchmark's (``zeroshot_metadata.json``); where
clip_benchmark takes the names from the data (Food-101, DTD, FGVC Aircraft, Stanford Cars, STL-10), so do we.
Nothing touches the network unless ``download=True``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from typobench.core.errors import UsageError

from typobench.data.base import ArrayLoader, FileLoader, ImageDataset, ImageReadError, PixelTransform
from typobench.data.folder import scan_image_folder


@lru_cache(maxsize=1)
def zeroshot_metadata() -> dict[str, Any]:
    """clip_benchmark's class names (None: from the data) and templates per data set, with ``{}`` for the name."""
    text = resources.files("typobench.data").joinpath("zeroshot_metadata.json").read_text(encoding="utf-8")
    return json.loads(text)["datasets"]


def classnames_of(name: str) -> tuple[str, ...] | None:
    """The shipped class names of ``name`` (None where clip_benchmark reads them from the data)."""
    names = zeroshot_metadata()[name]["classnames"]
    return None if names is None else tuple(names)


def templates_of(name: str) -> tuple[str, ...]:
    return tuple(t.replace("{c}", "{}") for t in zeroshot_metadata()[name]["templates"])


@dataclass(frozen=True)
class TorchvisionSet:
    """One data set read through ``torchvision.datasets.<tv_class>`` from ``--data-root/<folder>``."""

    name: str
    title: str
    tv_class: str
    folder: str  # what torchvision reads under its root: the folder --data-root must hold
    splits: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # fixed keyword arguments, as clip_benchmark passes them
    split_arg: bool = True  # False: the class has no split (EuroSAT: clip_benchmark evaluates every image)
    downloadable: bool = True
    clean: Callable[[str], str] = str  # clip_benchmark's clean-up of the names the data gives
    source: str = ""  # where the files come from when torchvision cannot fetch them

    def how_to_get(self) -> str:
        get = "pass --download to fetch it into --data-root" if self.downloadable else self.source
        return f"{get}, or --data-root <folder that holds {self.folder}/> (torchvision's layout)"


def _underscores(name: str) -> str:
    return name.replace("_", " ")


SETS: tuple[TorchvisionSet, ...] = (
    TorchvisionSet("stl10", "STL-10", "STL10", "stl10_binary", ("test", "train")),
    TorchvisionSet("oxford-pets", "Oxford-IIIT Pets", "OxfordIIITPet", "oxford-iiit-pet", ("test", "trainval"),
                   extra={"target_types": "category"}),
    TorchvisionSet("flowers102", "Oxford Flowers-102", "Flowers102", "flowers-102", ("test", "train", "val")),
    TorchvisionSet("food101", "Food-101", "Food101", "food-101", ("test", "train"), clean=_underscores),
    TorchvisionSet("dtd", "Describable Textures (DTD), partition 1", "DTD", "dtd", ("test", "train", "val")),
    TorchvisionSet("eurosat", "EuroSAT RGB (all 27,000 images, as clip_benchmark)", "EuroSAT", "eurosat", ("test",),
                   split_arg=False),
    TorchvisionSet("fgvc-aircraft", "FGVC Aircraft (variants)", "FGVCAircraft", "fgvc-aircraft-2013b",
                   ("test", "train", "val", "trainval"), extra={"annotation_level": "variant"}),
    TorchvisionSet("stanford-cars", "Stanford Cars", "StanfordCars", "stanford_cars", ("test", "train"),
                   downloadable=False,
                   source="torchvision can no longer download it (the original URL is gone): get the files from a "
                          "mirror (e.g. Kaggle's 'stanford-cars-dataset' plus cars_test_annos_withlabels.mat)"),
    TorchvisionSet("pcam", "PatchCamelyon (needs h5py)", "PCAM", "pcam", ("test", "train", "val")),
)


class TorchvisionLoader:
    """Item ``index`` of a torchvision data set as an RGB image (for data not stored as one file per image)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __call__(self, index: int) -> PIL.Image.Image:
        try:
            return self.dataset[index][0].convert("RGB")
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"cannot read item {index} of {self.dataset.root}: {exc}; check the files") from exc


def _open(spec: TorchvisionSet, root: Path, split: str, download: bool) -> Any:
    """torchvision's data set, or a one-line UsageError naming the folder and how to get it."""
    import torchvision.datasets as tvd  # lazy: keep `typobench.data` import light

    if root.name == spec.folder:  # pointed at the data set's own folder: torchvision wants its parent
        root = root.parent
    if not download and not (root / spec.folder).is_dir():
        raise UsageError(f"data set '{spec.name}' not found: {root} has no {spec.folder}/ folder; {spec.how_to_get()}")
    kwargs = {**spec.extra, **({"split": split} if spec.split_arg else {})}
    try:
        return getattr(tvd, spec.tv_class)(root=str(root), download=download, **kwargs)
    except (RuntimeError, OSError, KeyError, ValueError) as exc:  # torchvision: "Dataset not found or corrupted."
        raise UsageError(f"data set '{spec.name}' under {root / spec.folder} is incomplete or unreadable "
                         f"({type(exc).__name__}: {exc}); {spec.how_to_get()}") from exc


def _pcam_labels(tv: Any) -> list[int]:
    targets = tv._base_folder / tv._FILES[tv._split]["targets"][0]
    with tv.h5py.File(targets) as handle:  # [N, 1, 1, 1] uint8
        return [int(v) for v in np.asarray(handle["y"]).reshape(-1)]


def _items(tv: Any) -> tuple[list[str] | None, list[int]]:
    """Image files (None: not one file per image) and labels, from torchvision's own lists (its private
    attributes: iterating the data set would decode every image; tests pin them for the installed version)."""
    if hasattr(tv, "_samples"):  # StanfordCars
        return [str(p) for p, _ in tv._samples], [int(t) for _, t in tv._samples]
    if hasattr(tv, "samples"):  # EuroSAT (an ImageFolder)
        return [str(p) for p, _ in tv.samples], [int(t) for _, t in tv.samples]
    files = getattr(tv, "_image_files", None) or getattr(tv, "_images", None)
    if files is not None and hasattr(tv, "_labels"):  # Flowers102, Food101, DTD, FGVCAircraft, OxfordIIITPet
        return [str(p) for p in files], [int(t) for t in tv._labels]
    if getattr(tv, "labels", None) is not None:  # STL10: uint8 arrays in memory
        return None, [int(t) for t in tv.labels]
    if hasattr(tv, "h5py"):  # PCAM: images in an HDF5 file
        return None, _pcam_labels(tv)
    raise RuntimeError(f"torchvision's {type(tv).__name__} has none of the item lists typobench reads: "
                       "this torchvision version is not supported for it")


def _classnames(spec: TorchvisionSet, tv: Any, labels: list[int]) -> tuple[str, ...]:
    # torchvision derives some class lists from the split's files (Pets, DTD): the shipped names, where there are
    # any, are the full list; a label beyond them means the folder is another data set.
    names = classnames_of(spec.name) or tuple(spec.clean(str(c)) for c in tv.classes)
    top = max(labels, default=-1)
    if top >= len(names):
        raise UsageError(f"data set '{spec.name}' under {tv.root} has label {top}, beyond the {len(names)} classes "
                         f"of {spec.title}; is --data-root the right folder?")
    return names


def load_torchvision_set(spec: TorchvisionSet, root: Path, split: str, transform: PixelTransform,
                         download: bool) -> ImageDataset:
    """``spec``'s ``split`` under ``root``; ids are file paths relative to ``root``, or ``<name>:<split>:<i>``."""
    tv = _open(spec, root, split, download)
    files, labels = _items(tv)
    base = Path(tv.root)
    if files is not None:
        relpaths = [os.path.relpath(p, base) for p in files]
        loader: Any = FileLoader(base, relpaths)
        ids = relpaths
    else:
        loader = ArrayLoader(np.ascontiguousarray(tv.data.transpose(0, 2, 3, 1))) if spec.name == "stl10" \
            else TorchvisionLoader(tv)
        ids = [f"{spec.name}:{split}:{i}" for i in range(len(labels))]
    return ImageDataset(name=spec.name, split=split, classnames=_classnames(spec, tv, labels),
                        templates=templates_of(spec.name), labels=labels, sample_ids=ids, loader=loader,
                        transform=transform, root=root)


# --- Caltech-101 as clip_benchmark reads it: 102 classes, its background class kept ------------------------

CALTECH_FOLDER = "caltech101"
CALTECH_HOW = ("pass --download to fetch it into --data-root, or --data-root <folder that holds "
               "caltech101/101_ObjectCategories/> (torchvision's layout)")


def load_caltech101(root: Path, split: str, transform: PixelTransform, download: bool) -> ImageDataset:
    """Every image of Caltech-101 (no official split; clip_benchmark evaluates all), BACKGROUND_Google included as
    class 0 as in clip_benchmark's copy of torchvision's class (torchvision's own drops it)."""
    if root.name == CALTECH_FOLDER:
        root = root.parent
    if download:
        import torchvision.datasets as tvd  # its download and archive check; the reading is ours (see above)

        tvd.Caltech101(root=str(root), download=True)
    folder = root / CALTECH_FOLDER / "101_ObjectCategories"
    if not folder.is_dir():
        raise UsageError(f"data set 'caltech101' not found: {root} has no {CALTECH_FOLDER}/101_ObjectCategories/; "
                         f"{CALTECH_HOW}")
    items = scan_image_folder(folder, what="101_ObjectCategories/<category>/image_*.jpg")
    names = classnames_of("caltech101") or ()
    if len(items.class_folders) != len(names):
        raise UsageError(f"{folder} has {len(items.class_folders)} category folders, not Caltech-101's "
                         f"{len(names)} (BACKGROUND_Google included); {CALTECH_HOW}")
    return ImageDataset(name="caltech101", split=split, classnames=names, templates=templates_of("caltech101"),
                        labels=items.labels, sample_ids=items.relpaths, loader=FileLoader(folder, items.relpaths),
                        transform=transform, root=root)
