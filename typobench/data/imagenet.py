"""ImageNet-1k: the validation set in wnid-folder layout, and a flat folder of ``<wnid>_<name>.JPEG`` files.

Labels are always the *standard* 1k indices (position of the wnid in sorted order), never the
positions of whichever folders happen to be present, so a partial copy still scores correctly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from typobench.core.errors import UsageError

from typobench.data.base import FileLoader, ImageDataset, PixelTransform
from typobench.data.classnames import imagenet_classnames, imagenet_wnid_to_index
from typobench.data.folder import check_root_exists, folder_dataset, is_image_file, scan_image_folder
from typobench.data.templates import openai_imagenet_templates

_WNID = re.compile(r"n\d{8}")

IMAGENET_LAYOUT = "the folder that holds val/<wnid>/*.JPEG (or that val folder itself)"
IMAGENET_HOW = (
    "download ILSVRC2012 from image-net.org and sort the validation images into wnid folders "
    "(e.g. with the PyTorch examples' valprep.sh)"
)


def resolve_imagenet_split(root: Path, split: str) -> Path:
    """``root/<split>``; or ``root`` itself if it is named ``<split>`` or, for val, holds wnid folders.

    The val folder is often called something else (``ILSVRC2012_img_val``), and wnid folders cannot be
    mistaken for a split folder, so a root full of wnid folders is taken as val. Train must be explicit.
    """
    check_root_exists(root, name="imagenet", layout=IMAGENET_LAYOUT, how_to_get=IMAGENET_HOW)
    if (root / split).is_dir():
        return root / split
    if root.name == split:
        return root
    with os.scandir(root) as entries:
        children = [(e.name, e.is_dir()) for e in entries]
    if split == "val" and any(is_dir and _WNID.fullmatch(name) for name, is_dir in children):
        return root
    flat = any(not is_dir and _WNID.match(name) and is_image_file(name) for name, is_dir in children)
    hint = "it holds <wnid>_*.JPEG files: use data set 'imagenet-sample' for a flat folder" if flat else IMAGENET_HOW
    raise UsageError(
        f"data set 'imagenet' expects --data-root to be {IMAGENET_LAYOUT}, but {root} has no '{split}/' folder "
        f"and no wnid folders; {hint}"
    )


def load_imagenet(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """ImageNet in ImageFolder layout; ids like ``"val/n01440764/ILSVRC2012_val_00000293.JPEG"``."""
    folder = resolve_imagenet_split(root, split)
    index = imagenet_wnid_to_index()
    items = scan_image_folder(folder, index.get, what=f"{IMAGENET_LAYOUT} with ImageNet-1k wnid folder names")
    return folder_dataset(
        name="imagenet",
        root=root,
        split=split,
        image_folder=folder,
        items=items,
        classnames=list(imagenet_classnames()),
        templates=openai_imagenet_templates(),
        transform=transform,
        id_prefix=f"{split}/",
    )


SAMPLE_LAYOUT = "a flat folder of <wnid>_<name>.JPEG ImageNet images"
SAMPLE_HOW = "typobench does not ship ImageNet images (research-only terms); use your own copy, e.g. ../shared/data/imagenet-sample"


def load_imagenet_sample(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """A flat folder of ``<wnid>_<anything>.<ext>`` images; label = standard index of the wnid; id = file name."""
    check_root_exists(root, name="imagenet-sample", layout=SAMPLE_LAYOUT, how_to_get=SAMPLE_HOW)
    index = imagenet_wnid_to_index()
    with os.scandir(root) as entries:
        names = sorted(e.name for e in entries if e.is_file() and is_image_file(e.name))
    if not names:
        raise UsageError(f"data set 'imagenet-sample' expects --data-root to be {SAMPLE_LAYOUT}, but {root} has no images; {SAMPLE_HOW}")
    labels: list[int] = []
    for name in names:
        wnid = name.split("_", 1)[0].split(".", 1)[0]
        if wnid not in index:
            raise UsageError(
                f"{root / name} does not start with an ImageNet-1k wnid; 'imagenet-sample' expects {SAMPLE_LAYOUT}"
            )
        labels.append(index[wnid])
    return ImageDataset(
        name="imagenet-sample",
        split=split,
        classnames=imagenet_classnames(),
        templates=openai_imagenet_templates(),
        labels=labels,
        sample_ids=names,
        loader=FileLoader(root, names),
        transform=transform,
        root=root,
    )
