"""The data set type every entry returns, and the image loaders behind it.

An :class:`ImageDataset` is a list of items (label + stable sample id) and a *loader* that turns an
item's source index into an RGB ``PIL.Image`` on demand. Images are decoded one at a time in
``__getitem__`` so that a 50,000-image folder never sits decoded in memory; loaders are small
picklable objects (not closures) so that a ``torch.utils.data.DataLoader`` can ship the data set to
worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import PIL.Image
import torch
from torch.utils.data import Dataset

from typobench.core.errors import UsageError

from typobench.data.sampling import sample_hash

PixelTransform = Callable[[PIL.Image.Image], torch.Tensor]
"""The model's resize/crop + ``ToTensor`` (no ``Normalize``): PIL image -> ``[3, H, W]`` float in [0, 1]."""


class ImageReadError(UsageError):
    """An image file could not be opened or decoded; the message names the file.

    A ``UsageError`` because the fix is on the user's side (remove or replace the file).
    """


def read_rgb(path: str | os.PathLike) -> PIL.Image.Image:
    """Open ``path`` and fully decode it to an RGB image, or raise :class:`ImageReadError` naming it.

    ``Image.open`` only reads the header, so a truncated JPEG would otherwise fail later (or inside a
    DataLoader worker) with a message that does not say which file; ``convert`` forces the decode here.
    """
    try:
        with PIL.Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}; remove or replace this file") from exc


class ImageLoader(Protocol):
    """Turns a source index into an RGB image. Must be picklable (DataLoader workers)."""

    def __call__(self, index: int) -> PIL.Image.Image: ...


class FileLoader:
    """Loads ``root / relpaths[index]`` from disk (ImageFolder-style data sets)."""

    def __init__(self, root: Path, relpaths: Sequence[str]) -> None:
        self.root = Path(root)
        self.relpaths = list(relpaths)

    def __call__(self, index: int) -> PIL.Image.Image:
        return read_rgb(self.root / self.relpaths[index])


class ArrayLoader:
    """Wraps a uint8 ``[N, H, W, 3]`` array already in memory (torchvision CIFAR, the bundled sample).

    These arrays are raw pixels, not compressed files, so holding them is the format itself rather
    than a decode of the whole data set.
    """

    def __init__(self, images: np.ndarray) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [N, H, W, 3] images, got {images.dtype} {images.shape}")
        self.images = images

    def __call__(self, index: int) -> PIL.Image.Image:
        return PIL.Image.fromarray(self.images[index])


class ImageDataset(Dataset):
    """A labelled image data set for zero-shot evaluation.

    Attributes:
        name: registry name, e.g. ``"cifar10-jpeg"``.
        split: the split actually loaded, e.g. ``"test"`` or ``"val"``.
        classnames: class names, index = label.
        templates: zero-shot prompt templates with ``"{}"`` where the class name goes.
        labels: label of each item, in item order.
        sample_ids: a stable, unique id per item (e.g. ``"test/cat/0001.jpg"``), in item order.
        root: the data root it was loaded from, or ``None`` for bundled data.
        text_targets: for typographic-attack data sets, the class index of the word written in each
            image (``-1`` where none), in item order; ``None`` for ordinary data sets.

    ``ds[i]`` returns ``(pixels, label, i)`` where ``pixels = transform(image)``; ``i`` is the position in
    *this* data set (so it indexes ``labels`` and ``sample_ids`` even after :meth:`subset`).
    """

    def __init__(
        self,
        *,
        name: str,
        split: str,
        classnames: Sequence[str],
        templates: Sequence[str],
        labels: Sequence[int],
        sample_ids: Sequence[str],
        loader: ImageLoader,
        transform: PixelTransform,
        root: str | os.PathLike | None = None,
        source_indices: Sequence[int] | None = None,
        extra: dict[str, Any] | None = None,
        text_targets: Sequence[int] | None = None,
    ) -> None:
        if len(labels) != len(sample_ids):
            raise ValueError(f"{len(labels)} labels but {len(sample_ids)} sample ids")
        if text_targets is not None:
            if len(text_targets) != len(labels):
                raise ValueError(f"{len(text_targets)} text targets but {len(labels)} labels")
            bad = [t for t in text_targets if not -1 <= int(t) < len(classnames)]
            if bad:
                raise ValueError(f"text target {bad[0]} out of range for {len(classnames)} classes (-1 = no text)")
        if source_indices is not None and len(source_indices) != len(labels):
            raise ValueError(f"{len(source_indices)} source indices but {len(labels)} labels")
        self.name = name
        self.split = split
        self.classnames = list(classnames)
        self.templates = list(templates)
        self.labels = [int(y) for y in labels]
        self.sample_ids = list(sample_ids)
        self.root = None if root is None else str(root)
        self.transform = transform
        self._loader = loader
        # Position in this data set -> index understood by the loader; identity unless this is a subset.
        self._source = list(range(len(self.labels))) if source_indices is None else [int(j) for j in source_indices]
        self.extra = dict(extra or {})
        # Class index of the word written in each image (-1 where none); None for ordinary data sets.
        self.text_targets: list[int] | None = None if text_targets is None else [int(t) for t in text_targets]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> PIL.Image.Image:
        """The untransformed RGB image of item ``i`` (e.g. to draw on before the model's transform)."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for {self.name} with {len(self)} items")
        return self._loader(self._source[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        i = int(i)
        return self.transform(self.image(i)), self.labels[i], i

    def subset(self, indices: Sequence[int]) -> ImageDataset:
        """A data set with the same metadata restricted to ``indices`` (in the order given)."""
        indices = [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < len(self):
                raise IndexError(f"subset index {i} out of range for {self.name} with {len(self)} items")
        return ImageDataset(
            name=self.name,
            split=self.split,
            classnames=self.classnames,
            templates=self.templates,
            labels=[self.labels[i] for i in indices],
            sample_ids=[self.sample_ids[i] for i in indices],
            loader=self._loader,
            transform=self.transform,
            root=self.root,
            source_indices=[self._source[i] for i in indices],
            extra=self.extra,
            text_targets=None if self.text_targets is None else [self.text_targets[i] for i in indices],
        )

    def with_transform(self, transform: PixelTransform) -> ImageDataset:
        """The same items and metadata with another pixel transform (e.g. another model's preprocess)."""
        return ImageDataset(
            name=self.name,
            split=self.split,
            classnames=self.classnames,
            templates=self.templates,
            labels=self.labels,
            sample_ids=self.sample_ids,
            loader=self._loader,
            transform=transform,
            root=self.root,
            source_indices=self._source,
            extra=self.extra,
            text_targets=self.text_targets,
        )

    def describe(self) -> dict[str, Any]:
        """What was evaluated, for ``results.json``: name, split, n, root, classes and the ids' hash.

        ``has_text_targets`` appears (always ``True``) only for data sets that carry :attr:`text_targets`.
        """
        info: dict[str, Any] = {
            "name": self.name,
            "split": self.split,
            "n": len(self),
            "root": self.root,
            "num_classes": len(self.classnames),
            "sample_hash": sample_hash(self.sample_ids),
        }
        if self.text_targets is not None:
            info["has_text_targets"] = True
        info.update(self.extra)
        return info

    def __repr__(self) -> str:
        return f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, classes={len(self.classnames)})"


def stack_images(dataset: Dataset, indices: Iterable[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Items ``indices`` (default: every item, in order) of ``dataset`` through its transform, stacked:
    images ``[N, 3, H, W]`` and labels ``[N]`` (int64); ``torch.zeros(0)`` for both when there are none."""
    positions = range(len(dataset)) if indices is None else [int(i) for i in indices]
    if not len(positions):
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    images = torch.stack([dataset[i][0] for i in positions])
    return images, torch.tensor([dataset.labels[i] for i in positions], dtype=torch.long)
