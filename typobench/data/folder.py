"""ImageFolder-layout data sets (``<root>/<class>/**/<image>``): ``folder`` and ``cifar10-jpeg``.

We scan the folders ourselves rather than use ``torchvision.datasets.ImageFolder`` because the
label of a folder is not always its sorted position: ``cifar10-jpeg`` and ``imagenet`` map folder
names to fixed, standard indices even when some class folders are missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typobench.core.errors import UsageError

from typobench.data.base import FileLoader, ImageDataset, PixelTransform
from typobench.data.classnames import CIFAR10_CLASSNAMES, folder_to_classname
from typobench.data.templates import CIFAR_TEMPLATES, GENERIC_TEMPLATES

# Same set as torchvision's IMG_EXTENSIONS; compared case-insensitively (ImageNet uses ".JPEG").
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class FolderItems:
    """What a scan found: file paths relative to the scanned folder, their labels, and class folders."""

    relpaths: list[str]
    labels: list[int]
    class_folders: list[str]


def list_class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder`` (ImageFolder's class order)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def scan_image_folder(
    folder: Path,
    label_of: Callable[[str], int | None] | None = None,
    *,
    what: str,
) -> FolderItems:
    """List the images under ``folder/<class>/`` (recursively, sorted) with their labels.

    ``label_of(class_folder)`` gives a folder's label; ``None`` means "unknown folder" and is a
    ``UsageError``. Without it, labels are the sorted positions of the class folders (ImageFolder).
    ``what`` describes the expected layout for error messages.
    """
    class_folders = list_class_folders(folder)
    if not class_folders:
        raise UsageError(f"{folder} has no class sub-folders; expected {what}")
    relpaths: list[str] = []
    labels: list[int] = []
    for position, class_folder in enumerate(class_folders):
        label = position if label_of is None else label_of(class_folder)
        if label is None:
            raise UsageError(f"unexpected class folder {folder / class_folder}; expected {what}")
        found: list[str] = []
        # followlinks: data folders are often assembled from symlinks to a central copy.
        for dirpath, dirnames, filenames in os.walk(folder / class_folder, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(folder).as_posix()
            found.extend(f"{rel_dir}/{name}" for name in filenames if is_image_file(name))
        found.sort()
        relpaths.extend(found)
        labels.extend([label] * len(found))
    if not relpaths:
        raise UsageError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}; expected {what}")
    return FolderItems(relpaths=relpaths, labels=labels, class_folders=class_folders)


def resolve_split_folder(root: Path, split: str, *, name: str, layout: str, how_to_get: str) -> Path:
    """The folder of ``split`` under ``root``: ``root/<split>``, or ``root`` itself if it is named ``<split>``.

    Accepting a root named after the split lets users point straight at e.g. ``.../cifar10-jpeg/test``;
    requiring the name to match means pointing at ``train/`` can never be silently used as ``test``.
    """
    check_root_exists(root, name=name, layout=layout, how_to_get=how_to_get)
    candidate = root / split
    if candidate.is_dir():
        return candidate
    if root.name == split:
        return root
    raise UsageError(
        f"data set '{name}' expects --data-root to be {layout}, but {root} has no '{split}/' folder; {how_to_get}"
    )


def check_root_exists(root: Path, *, name: str, layout: str, how_to_get: str) -> None:
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(f"data set '{name}' expects --data-root to be {layout}, but {root} {state}; {how_to_get}")


def folder_dataset(
    *,
    name: str,
    root: Path,
    split: str,
    image_folder: Path,
    items: FolderItems,
    classnames: list[str],
    templates: tuple[str, ...],
    transform: PixelTransform,
    id_prefix: str = "",
) -> ImageDataset:
    """Build an :class:`ImageDataset` over scanned files; ids are ``id_prefix + relative path``."""
    return ImageDataset(
        name=name,
        split=split,
        classnames=classnames,
        templates=templates,
        labels=items.labels,
        sample_ids=[id_prefix + p for p in items.relpaths],
        loader=FileLoader(image_folder, items.relpaths),
        transform=transform,
        root=root,
    )


# --- entries -------------------------------------------------------------------------------------

FOLDER_LAYOUT = "an ImageFolder (<class>/<image> sub-folders), or train/ and test/ folders that each hold one"
FOLDER_HOW = "point --data-root at a folder with one sub-folder of images per class"
# A root whose sub-folders all have these names is a split layout (root/<split>/<class>/...).
SPLIT_FOLDER_NAMES = frozenset({"train", "test", "val", "valid", "validation"})


def load_folder(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """Any ImageFolder; names = folder names with ``_`` -> space.

    Two layouts, told apart by whether *every* sub-folder of ``root`` is named like a split:

    * flat, ``root/<class>/...``: one evaluation set, so only split ``test`` is accepted (a linear probe
      asking for ``train`` must not silently train on the images it is then scored on); labels are
      the sorted positions of the class folders; ids are ``"<class>/<file>"``.
    * split, ``root/<split>/<class>/...``: labels index the sorted *union* of the class folders of all
      splits, so train and test agree on labels even if a split lacks a class; ids are
      ``"<split>/<class>/<file>"``.
    """
    check_root_exists(root, name="folder", layout=FOLDER_LAYOUT, how_to_get=FOLDER_HOW)
    subfolders = list_class_folders(root)
    if subfolders and set(subfolders) <= SPLIT_FOLDER_NAMES:
        if split not in subfolders:
            raise UsageError(
                f"data set 'folder': {root} has split folders {', '.join(subfolders)} but no '{split}/'; "
                f"pass --split {' or '.join(subfolders)}"
            )
        classes = sorted({c for s in subfolders for c in list_class_folders(root / s)})
        index = {c: i for i, c in enumerate(classes)}
        image_folder, id_prefix = root / split, f"{split}/"
        items = scan_image_folder(image_folder, index.get, what=FOLDER_LAYOUT)
    else:
        if split != "test":
            raise UsageError(
                f"data set 'folder': {root} is a single ImageFolder, used as split 'test'; for a '{split}' split "
                f"arrange it as {root}/{split}/<class>/ and {root}/test/<class>/"
            )
        image_folder, id_prefix = root, ""
        items = scan_image_folder(root, what=FOLDER_LAYOUT)
        classes = items.class_folders
    return folder_dataset(
        name="folder",
        root=root,
        split=split,
        image_folder=image_folder,
        items=items,
        classnames=[folder_to_classname(c) for c in classes],
        templates=GENERIC_TEMPLATES,
        transform=transform,
        id_prefix=id_prefix,
    )


CIFAR10_JPEG_LAYOUT = "the folder that holds train/ and test/ (each with the 10 CIFAR-10 <class>/*.jpg folders)"
CIFAR10_JPEG_HOW = (
    "get a JPEG conversion of CIFAR-10 in ImageFolder layout (e.g. ../shared/data/cifar10-jpeg), "
    "or use 'cifar10-sample' (bundled) or 'cifar10' (--download)"
)


def load_cifar10_jpeg(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """CIFAR-10 as JPEG files: ``root/<split>/<class>/*.jpg``; ids like ``"test/cat/0001.jpg"``.

    Folder names map to torchvision's CIFAR-10 indices, so a partial copy keeps standard labels.
    Ids carry the split so they are the same whether --data-root is the parent or the split folder.
    """
    split_folder = resolve_split_folder(
        root, split, name="cifar10-jpeg", layout=CIFAR10_JPEG_LAYOUT, how_to_get=CIFAR10_JPEG_HOW
    )
    index = {name: i for i, name in enumerate(CIFAR10_CLASSNAMES)}
    items = scan_image_folder(split_folder, index.get, what=CIFAR10_JPEG_LAYOUT)
    return folder_dataset(
        name="cifar10-jpeg",
        root=root,
        split=split,
        image_folder=split_folder,
        items=items,
        classnames=list(CIFAR10_CLASSNAMES),
        templates=CIFAR_TEMPLATES,
        transform=transform,
        id_prefix=f"{split}/",
    )
