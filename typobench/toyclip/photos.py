"""CIFAR-10 training photos held in memory, the photos of toyclip's training mixture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from typobench.data import load_dataset
from typobench.data.classnames import CIFAR10_CLASSNAMES


class PhotoBank:
    """CIFAR-10 training photos in memory: uint8 ``[N, 32, 32, 3]`` and labels."""

    def __init__(self, images: np.ndarray, labels: Sequence[int], source: str = "") -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.source = source

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def load(cls, dataset: str = "cifar10-jpeg", root: str | Path | None = None, split: str = "train",
             download: bool = False, limit: int | None = None) -> PhotoBank:
        """Decode a CIFAR-10 split (``cifar10-jpeg`` ImageFolder or torchvision ``cifar10``) into memory."""
        ds = load_dataset(dataset, root=root, split=split, transform=lambda im: im, download=download)
        if list(ds.classnames) != list(CIFAR10_CLASSNAMES):
            raise ValueError(f"{dataset} classes {ds.classnames[:3]}... are not CIFAR-10's")
        n = len(ds) if limit is None else min(limit, len(ds))
        first = np.asarray(ds[0][0].convert("RGB"))
        images = np.empty((n, *first.shape), dtype=np.uint8)
        for i in range(n):
            images[i] = np.asarray(ds[i][0].convert("RGB"))
        return cls(images, ds.labels[:n], source=f"{dataset}:{split}")
