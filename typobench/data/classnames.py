"""Class names that are known without any data on disk (so they can be listed offline)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from typobench.core.errors import UsageError

# torchvision's CIFAR10 order (= ImageFolder's alphabetical order of the JPEG conversion's folders).
CIFAR10_CLASSNAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# torchvision's CIFAR100 fine-label order, underscores replaced by spaces as clip_benchmark does.
CIFAR100_CLASSNAMES: tuple[str, ...] = (
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
)  # fmt: skip


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet ids in sorted order; position = standard class index.

    Shipped as package data (``imagenet_wnids.txt``): ids only, no images.
    """
    text = resources.files("typobench.data").joinpath("imagenet_wnids.txt").read_text(encoding="utf-8")
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(wnids) != 1000 or list(wnids) != sorted(wnids):
        raise RuntimeError(f"corrupt package data imagenet_wnids.txt: {len(wnids)} ids, sorted={list(wnids) == sorted(wnids)}")
    return wnids


@lru_cache(maxsize=1)
def imagenet_wnid_to_index() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(imagenet_wnids())}


@lru_cache(maxsize=1)
def imagenet_classnames() -> tuple[str, ...]:
    """open_clip's 1,000 cleaned-up ImageNet class names (CLIP's), in standard index order."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # lazy: open_clip is slow to import

    return tuple(IMAGENET_CLASSNAMES)


def folder_to_classname(folder: str) -> str:
    """``"maple_tree"`` -> ``"maple tree"``: folder names often use underscores for spaces."""
    return folder.replace("_", " ").strip()


def read_classnames_file(path: str | Path, expected: int | None = None) -> list[str]:
    """Read one class name per line (blank lines and ``#`` comments skipped); check the count."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read class names file {path}: {exc.strerror or exc}") from exc
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if expected is not None and len(names) != expected:
        raise UsageError(
            f"class names file {path} has {len(names)} names but the data set has {expected} classes; "
            "give one name per line, in the order of the sorted class folders"
        )
    return names
