"""RobustBench's ImageNet evaluation set: the 5,000 ImageNet-1k validation images RobustBench reports on.

The id list is RobustBench's own package data (``helper_files/imagenet_test_image_ids.txt`` of robustbench
1.1.1, MIT), shipped byte-identical in the top-level ``datasets/robustbench/`` (citation and license in
``datasets/README.md``); the images come from the user's ImageNet val folder, in the ``imagenet`` layout.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path

from typobench.core.errors import UsageError
from typobench.shipped import shipped_datasets_dir

from typobench.data.base import FileLoader, ImageDataset, PixelTransform
from typobench.data.classnames import imagenet_classnames, imagenet_wnid_to_index
from typobench.data.imagenet import IMAGENET_HOW, IMAGENET_LAYOUT, resolve_imagenet_split
from typobench.data.templates import openai_imagenet_templates

NAME = "imagenet-robustbench"
MANIFEST = "robustbench/imagenet_test_image_ids.txt"
# The file in the robustbench 1.1.1 wheel (its RECORD lists the same hash): a changed list is another protocol.
MANIFEST_SHA256 = "d4121626d07722a0126c35b1563042e46a546f1a05ce705f2cdc635896d58574"
MANIFEST_COUNT = 5000
HOW = f"{IMAGENET_HOW}; the 5,000 images RobustBench evaluates are listed in datasets/{MANIFEST}"

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def robustbench_imagenet_ids() -> tuple[str, ...]:
    """RobustBench's 5,000 ``<wnid>/ILSVRC2012_val_<n>.JPEG`` ids, in its order; checked against the hash."""
    data = (shipped_datasets_dir() / MANIFEST).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    ids = tuple(line.strip() for line in data.decode("utf-8").splitlines() if line.strip())
    if digest != MANIFEST_SHA256 or len(set(ids)) != MANIFEST_COUNT:
        raise RuntimeError(f"corrupt package data datasets/{MANIFEST}: sha256 {digest[:12]}..., "
                           f"{len(set(ids))} distinct ids; reinstall typobench")
    return ids


def load_imagenet_robustbench(root: Path, split: str, transform: PixelTransform) -> ImageDataset:
    """The ImageNet val images under ``root`` that RobustBench's list names, in its order; ids ``val/<id>``.

    A partial copy gives the listed images it holds (with a warning: the numbers are then not RobustBench's)."""
    folder = resolve_imagenet_split(root, split)
    ids = robustbench_imagenet_ids()
    present = [i for i in ids if (folder / i).is_file()]
    have = set(present)
    absent = [i for i in ids if i not in have]
    if not present:
        raise UsageError(f"data set '{NAME}' found none of RobustBench's {MANIFEST_COUNT:,} ImageNet val images "
                         f"under {folder} (e.g. {folder / ids[0]}); --data-root must be {IMAGENET_LAYOUT}; {HOW}")
    if absent:
        log.warning("%s: %d of RobustBench's %d images are under %s (first absent: %s); scores are over those",
                    NAME, len(present), len(ids), folder, absent[0])
    index = imagenet_wnid_to_index()
    return ImageDataset(
        name=NAME,
        split=split,
        classnames=imagenet_classnames(),
        templates=openai_imagenet_templates(),
        labels=[index[i.split("/", 1)[0]] for i in present],
        sample_ids=[f"{split}/{i}" for i in present],
        loader=FileLoader(folder, present),
        transform=transform,
        root=root,
    )
