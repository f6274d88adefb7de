"""The official CIFAR-10/100 releases through torchvision (pickled uint8 batches).

torchvision only touches the network when ``download=True``; without it we check the root first so
the user gets one line saying what to pass instead of torchvision's RuntimeError.
"""

from __future__ import annotations

from pathlib import Path

from typobench.core.errors import UsageError

from typobench.data.base import ArrayLoader, ImageDataset, PixelTransform
from typobench.data.classnames import CIFAR10_CLASSNAMES, CIFAR100_CLASSNAMES
from typobench.data.templates import CIFAR_TEMPLATES

_BASE_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _torchvision_class(name: str):  # noqa: ANN202 - torchvision types are not worth importing eagerly
    from torchvision.datasets import CIFAR10, CIFAR100  # lazy: keep `typobench.data` import light

    return {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]


def how_to_get(name: str) -> str:
    return f"pass --download to fetch it into --data-root, or --data-root <folder that holds {_BASE_FOLDER[name]}/>"


def load_cifar(name: str, root: Path, split: str, transform: PixelTransform, download: bool) -> ImageDataset:
    """``name`` is ``"cifar10"`` or ``"cifar100"``; ``root`` holds (or will hold) torchvision's batch folder.

    Ids are ``"<name>:<split>:<index in the official split>"``.
    """
    base = _BASE_FOLDER[name]
    if root.name == base:  # pointed at the batch folder itself: torchvision wants its parent
        root = root.parent
    if not download and not (root / base).is_dir():
        raise UsageError(f"data set '{name}' not found: {root} has no {base}/ folder; {how_to_get(name)}")
    try:
        tv = _torchvision_class(name)(root=str(root), train=split == "train", download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
        raise UsageError(f"data set '{name}' under {root / base} is incomplete or corrupt ({exc}); {how_to_get(name)}") from exc
    classnames = CIFAR10_CLASSNAMES if name == "cifar10" else CIFAR100_CLASSNAMES
    official = [c.replace("_", " ") for c in tv.classes]
    if official != list(classnames):
        raise UsageError(f"{root / base} lists classes {official[:3]}..., not {name}'s; is --data-root the right folder?")
    labels = [int(t) for t in tv.targets]
    return ImageDataset(
        name=name,
        split=split,
        classnames=classnames,
        templates=CIFAR_TEMPLATES,
        labels=labels,
        sample_ids=[f"{name}:{split}:{i}" for i in range(len(labels))],
        loader=ArrayLoader(tv.data),
        transform=transform,
        root=root,
    )
