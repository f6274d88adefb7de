"""``cifar10-sample``: 1,000 CIFAR-10 test images (100 per class) bundled in the package.

The pixels are stored decoded (uint8 ``[N, 32, 32, 3]``) so that the tool runs offline with no data
root and the sample does not depend on the JPEG decoder of the machine that reads it. It is drawn from
the JPEG conversion of CIFAR-10 (``cifar10-jpeg``), not the official pickles, hence the name; the draw
is recorded in the npz's ``metadata`` and in ``datasets/cifar10-sample.json`` and reproduced by
``datasets/build_cifar10_sample.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from typobench.data.base import ArrayLoader, ImageDataset, PixelTransform
from typobench.data.classnames import CIFAR10_CLASSNAMES
from typobench.data.templates import CIFAR_TEMPLATES

SAMPLE_FILE = "cifar10_sample.npz"
SAMPLE_NAME = "cifar10-sample"


@dataclass(frozen=True)
class BundledSample:
    images: np.ndarray  # uint8 [N, H, W, 3], read-only
    labels: np.ndarray  # int64 [N]
    source_files: tuple[str, ...]  # e.g. "test/cat/0001.jpg", relative to the cifar10-jpeg root
    metadata: dict[str, Any]


def images_sha256(images: np.ndarray) -> str:
    """SHA-256 of the raw C-order bytes of the image array (the npz itself can't hold its own hash)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


@lru_cache(maxsize=1)
def read_bundled_sample() -> BundledSample:
    """Read and check the bundled npz once per process (3 MB; cached, arrays made read-only)."""
    resource = resources.files("typobench.data").joinpath(SAMPLE_FILE)
    with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
        images = np.array(npz["images"])
        labels = np.array(npz["labels"], dtype=np.int64)
        source_files = tuple(str(s) for s in npz["source_files"])
        metadata = json.loads(str(npz["metadata"]))
    if not (len(images) == len(labels) == len(source_files)) or images.dtype != np.uint8:
        raise RuntimeError(f"corrupt package data {SAMPLE_FILE}: {images.shape} {images.dtype}, {len(labels)} labels")
    if images_sha256(images) != metadata.get("images_sha256"):
        raise RuntimeError(f"corrupt package data {SAMPLE_FILE}: image bytes do not match the recorded sha256")
    images.setflags(write=False)
    labels.setflags(write=False)
    return BundledSample(images=images, labels=labels, source_files=source_files, metadata=metadata)


def load_cifar10_sample(split: str, transform: PixelTransform) -> ImageDataset:
    """The bundled sample; ids are the source files (``"test/cat/0001.jpg"``), same as ``cifar10-jpeg``'s."""
    sample = read_bundled_sample()
    meta = sample.metadata
    return ImageDataset(
        name=SAMPLE_NAME,
        split=split,
        classnames=CIFAR10_CLASSNAMES,
        templates=CIFAR_TEMPLATES,
        labels=sample.labels.tolist(),
        sample_ids=sample.source_files,
        loader=ArrayLoader(sample.images),
        transform=transform,
        root=None,
        extra={
            "bundled": f"typobench/data/{SAMPLE_FILE}",
            "drawn_from": f"{meta['source']['name']} {meta['source']['split']}, seed {meta['seed']}, "
            f"{meta['per_class']} per class",
        },
    )
