"""The data set registry: names, entries, argument checks and the user-facing errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from typobench.data import (
    CIFAR10_CLASSNAMES,
    CIFAR100_CLASSNAMES,
    CIFAR_TEMPLATES,
    dataset_entry,
    imagenet_classnames,
    imagenet_wnids,
    list_datasets,
    load_dataset,
    openai_imagenet_templates,
)
from typobench.core.errors import UsageError

ALL = {"cifar10", "cifar100", "cifar10-jpeg", "cifar10-sample", "imagenet", "imagenet-sample", "folder", "materzynska", "paint", "rta100", "scam",
       "imagenet-robustbench", "stl10", "caltech101", "oxford-pets", "flowers102", "food101", "dtd", "eurosat",
       "fgvc-aircraft", "stanford-cars", "pcam"}
# torchvision fetches these with --download (Stanford Cars' original URL is gone: torchvision cannot).
DOWNLOADABLE = {"cifar10", "cifar100", "stl10", "caltech101", "oxford-pets", "flowers102", "food101", "dtd", "eurosat",
                "fgvc-aircraft", "pcam"}


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def test_registry_lists_every_entry_sorted() -> None:
    names = list_datasets()
    assert set(names) == ALL
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(ALL))
def test_entries_describe_themselves(name: str) -> None:
    entry = dataset_entry(name)
    assert entry.name == name
    assert entry.description and "\n" not in entry.description
    assert entry.how_to_get and "\n" not in entry.how_to_get
    assert entry.needs_root is (name != "cifar10-sample")
    assert entry.downloadable is (name in DOWNLOADABLE)


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UsageError) as info:
        load_dataset("cifar-10", transform=to_tensor)
    message = str(info.value)
    assert "cifar-10" in message and "cifar10" in message and "typobench list datasets" in message
    with pytest.raises(UsageError, match="imagenet"):
        dataset_entry("imagnet")


@pytest.mark.parametrize("name", sorted(ALL - {"cifar10-sample"}))
def test_missing_root_is_one_line_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as info:
        load_dataset(name, transform=to_tensor)
    message = str(info.value)
    assert "\n" not in message
    assert "--data-root" in message and name in message


@pytest.mark.parametrize("name", ["cifar10-jpeg", "imagenet", "imagenet-sample", "folder", "cifar10"])
def test_nonexistent_root_is_one_line_usage_error(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UsageError) as info:
        load_dataset(name, root=missing, transform=to_tensor)
    message = str(info.value)
    assert "\n" not in message and str(missing) in message


def test_bad_split_and_bad_download_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="no split 'train'.*choose from test"):
        load_dataset("cifar10-sample", split="train", transform=to_tensor)
    with pytest.raises(UsageError, match="cannot be downloaded"):
        load_dataset("cifar10-sample", download=True, transform=to_tensor)
    assert dataset_entry("imagenet").resolve_split("test") == "val"


def test_classnames_file_with_wrong_count_is_usage_error(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("one\ntwo\n")
    with pytest.raises(UsageError, match="2 names but the data set has 10 classes"):
        load_dataset("cifar10-sample", transform=to_tensor, classnames_file=names)
    with pytest.raises(UsageError, match="cannot read class names file"):
        load_dataset("cifar10-sample", transform=to_tensor, classnames_file=tmp_path / "absent.txt")


def test_classnames_file_replaces_names(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("# my names\n" + "\n".join(f"thing {i}" for i in range(10)) + "\n\n")
    ds = load_dataset("cifar10-sample", transform=to_tensor, classnames_file=names)
    assert ds.classnames == [f"thing {i}" for i in range(10)]


def test_templates_and_classnames_tables() -> None:
    assert len(CIFAR_TEMPLATES) == 18 and len(set(CIFAR_TEMPLATES)) == 18
    assert CIFAR_TEMPLATES[0] == "a photo of a {}." and CIFAR_TEMPLATES[-1] == "a photo of the big {}."
    imagenet_templates = openai_imagenet_templates()
    assert len(imagenet_templates) == 80
    assert all(t.count("{}") == 1 for t in imagenet_templates)
    assert imagenet_templates[0].format("tench") == "a bad photo of a tench."
    assert len(CIFAR10_CLASSNAMES) == 10 and CIFAR10_CLASSNAMES[0] == "airplane"
    assert len(CIFAR100_CLASSNAMES) == 100 and len(set(CIFAR100_CLASSNAMES)) == 100
    assert list(CIFAR100_CLASSNAMES) == sorted(CIFAR100_CLASSNAMES)  # torchvision's order is alphabetical
    assert "aquarium fish" in CIFAR100_CLASSNAMES and not any("_" in c for c in CIFAR100_CLASSNAMES)
    assert len(imagenet_wnids()) == 1000 and imagenet_wnids()[0] == "n01440764"
    assert len(imagenet_classnames()) == 1000 and imagenet_classnames()[0] == "tench"
