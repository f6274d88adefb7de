"""``cifar10-jpeg`` on the shared CIFAR-10 JPEG folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torchvision.transforms as T

from typobench.data import CIFAR10_CLASSNAMES, CIFAR_TEMPLATES, load_dataset
from typobench.core.errors import UsageError

TRANSFORM = T.Compose([T.Resize(40), T.CenterCrop(40), T.ToTensor()])


def test_test_split_labels_match_folders(cifar10_jpeg_root: Path) -> None:
    ds = load_dataset("cifar10-jpeg", root=cifar10_jpeg_root, split="test", transform=TRANSFORM)
    assert len(ds) == 10_000 and ds.split == "test" and ds.name == "cifar10-jpeg"
    assert ds.classnames == list(CIFAR10_CLASSNAMES) and ds.templates == list(CIFAR_TEMPLATES)
    assert Counter(ds.labels) == {c: 1000 for c in range(10)}
    for sample_id, label in zip(ds.sample_ids[::997], ds.labels[::997]):
        split, folder, _ = sample_id.split("/")
        assert split == "test" and CIFAR10_CLASSNAMES.index(folder) == label
    assert len(set(ds.sample_ids)) == len(ds)


def test_pixels_follow_the_transform(cifar10_jpeg_root: Path) -> None:
    ds = load_dataset("cifar10-jpeg", root=cifar10_jpeg_root, transform=TRANSFORM)
    for i in (0, 4321, 9999):
        pixels, label, index = ds[i]
        assert pixels.shape == (3, 40, 40)
        assert 0.0 <= pixels.min().item() and pixels.max().item() <= 1.0 and pixels.std() > 0
        assert label == ds.labels[i] and index == i
    assert ds.image(0).size == (32, 32)


def test_split_folder_as_root_gives_the_same_ids(cifar10_jpeg_root: Path) -> None:
    parent = load_dataset("cifar10-jpeg", root=cifar10_jpeg_root, split="test", transform=TRANSFORM)
    direct = load_dataset("cifar10-jpeg", root=cifar10_jpeg_root / "test", split="test", transform=TRANSFORM)
    assert direct.sample_ids == parent.sample_ids and direct.labels == parent.labels


def test_wrong_split_folder_is_refused(cifar10_jpeg_root: Path) -> None:
    # Pointing at train/ while asking for test must not silently evaluate on train.
    with pytest.raises(UsageError, match="has no 'test/' folder") as info:
        load_dataset("cifar10-jpeg", root=cifar10_jpeg_root / "train", split="test", transform=TRANSFORM)
    assert "\n" not in str(info.value)


def test_partial_copy_keeps_standard_labels(tmp_path: Path, cifar10_jpeg_root: Path) -> None:
    (tmp_path / "test" / "truck").mkdir(parents=True)
    (tmp_path / "test" / "truck" / "0000.jpg").symlink_to(cifar10_jpeg_root / "test" / "truck" / "0000.jpg")
    ds = load_dataset("cifar10-jpeg", root=tmp_path, transform=TRANSFORM)
    assert ds.labels == [9] and ds.sample_ids == ["test/truck/0000.jpg"]
    (tmp_path / "test" / "unicorn").mkdir()
    with pytest.raises(UsageError, match="unicorn"):
        load_dataset("cifar10-jpeg", root=tmp_path, transform=TRANSFORM)
