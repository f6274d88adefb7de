"""The data set registry (:class:`~typobench.core.registry.Registry`): named entries, each with a builder.

``list_datasets()`` names them, ``dataset_entry(name)`` describes one, ``load_dataset(name, ...)``
checks the arguments the same way for every entry and calls its builder. Adding a data set is one
``register_dataset(DatasetEntry(...))`` call, not another branch in an if/elif chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from typobench.core.errors import UsageError
from typobench.core.registry import Registry

from typobench.data import bundled, cifar, folder, imagenet, robustbench, zeroshot
from typobench.data.base import ImageDataset, PixelTransform
from typobench.data.classnames import read_classnames_file

LIST_COMMAND = "typobench list datasets"


@dataclass(frozen=True)
class LoadRequest:
    """Arguments checked by :func:`load_dataset` and handed to an entry's builder."""

    root: Path | None  # None only for entries with needs_root=False
    split: str  # canonical split name (aliases resolved)
    transform: PixelTransform
    download: bool


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set.

    Attributes:
        name: registry name, used in results (``cifar10-jpeg`` is never reported as ``cifar10``).
        description: one line for ``typobench list datasets``.
        needs_root: whether ``--data-root`` is required.
        splits: accepted split names; ``None`` = any name (only recorded, e.g. ``folder``).
        how_to_get: one line telling the user how to obtain the data / what ``--data-root`` must be.
        builder: makes the :class:`ImageDataset` from a checked :class:`LoadRequest`.
        downloadable: whether ``download=True`` is supported (torchvision entries only).
        split_aliases: other accepted split names, e.g. ImageNet's ``test`` -> ``val``.
    """

    name: str
    description: str
    needs_root: bool
    splits: tuple[str, ...] | None
    how_to_get: str
    builder: Callable[[LoadRequest], ImageDataset] = field(repr=False, compare=False)
    downloadable: bool = False
    split_aliases: Mapping[str, str] = field(default_factory=dict)

    def resolve_split(self, split: str) -> str:
        """The canonical split for ``split``, or a ``UsageError`` listing the valid ones."""
        split = self.split_aliases.get(split, split)
        if self.splits is not None and split not in self.splits:
            aliases = "".join(f", {a} (= {c})" for a, c in self.split_aliases.items())
            raise UsageError(f"data set '{self.name}' has no split '{split}'; choose from {', '.join(self.splits)}{aliases}")
        return split


DATASETS: Registry[DatasetEntry] = Registry("data set", LIST_COMMAND)


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add ``entry`` to the registry (names are unique)."""
    return DATASETS.add(entry.name, entry)


def list_datasets() -> list[str]:
    """Registered data set names, sorted."""
    return sorted(DATASETS.names())


def dataset_entry(name: str) -> DatasetEntry:
    """The entry called ``name``; an unknown name is a ``UsageError`` suggesting close matches."""
    return DATASETS.get(name)


def load_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    split: str = "test",
    transform: PixelTransform,
    download: bool = False,
    classnames_file: str | Path | None = None,
) -> ImageDataset:
    """Load the registered data set ``name``, streaming images through ``transform``.

    ``root`` is ignored by entries that need none (``cifar10-sample``). ``download=True`` is only
    accepted by the torchvision entries and is the only way anything is fetched from the network.
    ``classnames_file`` (one name per line, label order) replaces the entry's class names; the count
    must match.
    """
    entry = dataset_entry(name)
    canonical_split = entry.resolve_split(split)
    if download and not entry.downloadable:
        raise UsageError(f"data set '{name}' cannot be downloaded by typobench; {entry.how_to_get}")
    root_path: Path | None = None
    if entry.needs_root:
        if root is None:
            raise UsageError(f"data set '{name}' needs --data-root; {entry.how_to_get}")
        root_path = Path(root).expanduser()
    if not callable(transform):
        raise TypeError(f"transform must be a callable PIL image -> tensor, got {type(transform).__name__}")
    dataset = entry.builder(LoadRequest(root=root_path, split=canonical_split, transform=transform, download=download))
    if classnames_file is not None:
        dataset.classnames = read_classnames_file(classnames_file, expected=len(dataset.classnames))
    return dataset


# --- the entries ---------------------------------------------------------------------------------

for _name in ("cifar10", "cifar100"):
    register_dataset(
        DatasetEntry(
            name=_name,
            description=f"official {'CIFAR-10' if _name == 'cifar10' else 'CIFAR-100'} (torchvision pickles), 32x32",
            needs_root=True,
            splits=("test", "train"),
            how_to_get=cifar.how_to_get(_name),
            builder=lambda r, _n=_name: cifar.load_cifar(_n, r.root, r.split, r.transform, r.download),  # type: ignore[arg-type]
            downloadable=True,
        )
    )

register_dataset(
    DatasetEntry(
        name="cifar10-jpeg",
        description="CIFAR-10 as JPEG files in ImageFolder layout (train/, test/); pixels differ slightly from cifar10",
        needs_root=True,
        splits=("test", "train"),
        how_to_get=f"--data-root must be {folder.CIFAR10_JPEG_LAYOUT}; {folder.CIFAR10_JPEG_HOW}",
        builder=lambda r: folder.load_cifar10_jpeg(r.root, r.split, r.transform),  # type: ignore[arg-type]
    )
)

register_dataset(
    DatasetEntry(
        name="cifar10-sample",
        description="1,000 CIFAR-10 test images (100 per class) from the JPEG conversion, bundled: no data root needed",
        needs_root=False,
        splits=("test",),
        how_to_get="bundled with typobench (typobench/data/cifar10_sample.npz); nothing to get",
        builder=lambda r: bundled.load_cifar10_sample(r.split, r.transform),
    )
)

register_dataset(
    DatasetEntry(
        name="imagenet",
        description="ImageNet-1k in wnid-folder layout, standard 1k labels even for a partial copy; split test = val",
        needs_root=True,
        splits=("val", "train"),
        how_to_get=f"--data-root must be {imagenet.IMAGENET_LAYOUT}; {imagenet.IMAGENET_HOW}",
        builder=lambda r: imagenet.load_imagenet(r.root, r.split, r.transform),  # type: ignore[arg-type]
        # ImageNet's test labels are not public; CLIP benchmarks (e.g. clip_benchmark) report on val.
        split_aliases=MappingProxyType({"test": "val"}),
    )
)

register_dataset(
    DatasetEntry(
        name=robustbench.NAME,
        description="RobustBench's ImageNet evaluation set: 5,000 listed val images (ids shipped; Croce et al. 2021)",
        needs_root=True,
        splits=("val",),
        how_to_get=f"--data-root must be {imagenet.IMAGENET_LAYOUT}; {robustbench.HOW}",
        builder=lambda r: robustbench.load_imagenet_robustbench(r.root, r.split, r.transform),  # type: ignore[arg-type]
        split_aliases=MappingProxyType({"test": "val"}),  # as imagenet: RobustBench's ImageNet "test" set is val
    )
)

register_dataset(
    DatasetEntry(
        name="imagenet-sample",
        description="a flat folder of <wnid>_<name>.JPEG ImageNet images (e.g. one per class), standard 1k labels",
        needs_root=True,
        splits=("test",),
        how_to_get=f"--data-root must be {imagenet.SAMPLE_LAYOUT}; {imagenet.SAMPLE_HOW}",
        builder=lambda r: imagenet.load_imagenet_sample(r.root, r.split, r.transform),  # type: ignore[arg-type]
    )
)

register_dataset(
    DatasetEntry(
        name="folder",
        description="any ImageFolder (<class>/<image>, or <split>/<class>/<image>); names from folders or --classnames-file",
        needs_root=True,
        splits=None,  # flat folder: test only; split layout: whichever split folders exist
        how_to_get=f"--data-root must be {folder.FOLDER_LAYOUT}; {folder.FOLDER_HOW}",
        builder=lambda r: folder.load_folder(r.root, r.split, r.transform),  # type: ignore[arg-type]
    )
)

# FARE's / clip_benchmark's zero-shot data sets (CIFAR-100 is above), read as clip_benchmark reads them.
for _set in zeroshot.SETS:
    register_dataset(
        DatasetEntry(
            name=_set.name,
            description=f"{_set.title} via torchvision; class names and templates as clip_benchmark",
            needs_root=True,
            splits=_set.splits,
            how_to_get=_set.how_to_get(),
            builder=lambda r, _s=_set: zeroshot.load_torchvision_set(_s, r.root, r.split, r.transform, r.download),  # type: ignore[arg-type]
            downloadable=_set.downloadable,
        )
    )

register_dataset(
    DatasetEntry(
        name="caltech101",
        description="Caltech-101, all 9,146 images, 102 classes with BACKGROUND_Google (as clip_benchmark)",
        needs_root=True,
        splits=("test",),
        how_to_get=zeroshot.CALTECH_HOW,
        builder=lambda r: zeroshot.load_caltech101(r.root, r.split, r.transform, r.download),  # type: ignore[arg-type]
        downloadable=True,
    )
)
