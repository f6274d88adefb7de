"""The generic ``folder`` data set on small generated images, and unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader

from typobench.data import GENERIC_TEMPLATES, ImageReadError, load_dataset
from typobench.core.errors import UsageError

TRANSFORM = T.Compose([T.Resize(20), T.CenterCrop(20), T.ToTensor()])


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 9), fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, 7)).save(path, format=fmt)


@pytest.fixture()
def tiny_folder(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    write_image(root / "golden_retriever" / "b.jpg", 10)
    write_image(root / "golden_retriever" / "a.png", 20)
    write_image(root / "golden_retriever" / "nested" / "c.JPEG", 30)
    write_image(root / "cat" / "x.jpg", 40, size=(30, 30))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    write_image(root / ".hidden" / "skip.jpg", 50)
    return root


def test_folder_labels_names_and_ids(tiny_folder: Path) -> None:
    ds = load_dataset("folder", root=tiny_folder, transform=TRANSFORM)
    assert ds.classnames == ["cat", "golden retriever"]  # sorted folders, underscores -> spaces
    assert ds.templates == list(GENERIC_TEMPLATES)
    assert ds.sample_ids == ["cat/x.jpg", "golden_retriever/a.png", "golden_retriever/b.jpg",
                             "golden_retriever/nested/c.JPEG"]
    assert ds.labels == [0, 1, 1, 1]
    pixels, label, index = ds[2]
    assert pixels.shape == (3, 20, 20) and pixels.dtype == torch.float32
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    assert (label, index) == (1, 2)
    assert abs(pixels[0].mean().item() - 10 / 255) < 0.03  # it is b.jpg's colour
    assert ds.describe()["n"] == 4 and ds.describe()["root"] == str(tiny_folder)


def test_subset_keeps_metadata_and_ids(tiny_folder: Path) -> None:
    ds = load_dataset("folder", root=tiny_folder, transform=TRANSFORM)
    sub = ds.subset([3, 0])
    assert sub.sample_ids == ["golden_retriever/nested/c.JPEG", "cat/x.jpg"]
    assert sub.labels == [1, 0] and sub.classnames == ds.classnames and sub.split == "test"
    assert torch.equal(sub[1][0], ds[0][0]) and sub[1][2] == 1
    assert sub.describe()["sample_hash"] != ds.describe()["sample_hash"]
    with pytest.raises(IndexError):
        ds.subset([4])


def test_flat_folder_refuses_a_train_split(tiny_folder: Path) -> None:
    # A linear probe asking for "train" must not train on the very images it is scored on.
    with pytest.raises(UsageError, match="single ImageFolder"):
        load_dataset("folder", root=tiny_folder, split="train", transform=TRANSFORM)


def test_split_layout_shares_labels_across_splits(tmp_path: Path) -> None:
    write_image(tmp_path / "train" / "ant" / "1.jpg", 1)
    write_image(tmp_path / "train" / "bee" / "2.jpg", 2)
    write_image(tmp_path / "train" / "cow" / "3.jpg", 3)
    write_image(tmp_path / "test" / "ant" / "4.jpg", 4)
    write_image(tmp_path / "test" / "cow" / "5.jpg", 5)  # no "bee" in test: cow must still be label 2
    train = load_dataset("folder", root=tmp_path, split="train", transform=TRANSFORM)
    test = load_dataset("folder", root=tmp_path, transform=TRANSFORM)
    assert train.classnames == test.classnames == ["ant", "bee", "cow"]
    assert train.labels == [0, 1, 2] and test.labels == [0, 2]
    assert test.sample_ids == ["test/ant/4.jpg", "test/cow/5.jpg"] and test.split == "test"
    with pytest.raises(UsageError, match="no 'val/'"):
        load_dataset("folder", root=tmp_path, split="val", transform=TRANSFORM)


def test_folder_with_classnames_file(tiny_folder: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("a house cat\na golden retriever dog\n")
    ds = load_dataset("folder", root=tiny_folder, transform=TRANSFORM, classnames_file=names)
    assert ds.classnames == ["a house cat", "a golden retriever dog"]
    assert ds.labels == [0, 1, 1, 1]


def test_dataloader_batches_with_workers(tiny_folder: Path) -> None:
    ds = load_dataset("folder", root=tiny_folder, transform=TRANSFORM)
    batches = list(DataLoader(ds, batch_size=3, num_workers=1))
    pixels, labels, indices = batches[0]
    assert pixels.shape == (3, 3, 20, 20)
    assert labels.tolist() == [0, 1, 1] and indices.tolist() == [0, 1, 2]


def test_empty_folder_is_usage_error(tmp_path: Path) -> None:
    (tmp_path / "only_class").mkdir()
    with pytest.raises(UsageError, match="no images"):
        load_dataset("folder", root=tmp_path, transform=TRANSFORM)
    with pytest.raises(UsageError, match="no class sub-folders"):
        load_dataset("folder", root=tmp_path / "only_class", transform=TRANSFORM)


def test_corrupt_jpeg_names_the_file(tiny_folder: Path) -> None:
    bad = tiny_folder / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    ds = load_dataset("folder", root=tiny_folder, transform=TRANSFORM)
    index = ds.sample_ids.index("cat/broken.jpg")
    with pytest.raises(ImageReadError) as info:
        ds[index]
    assert str(bad) in str(info.value)
    assert isinstance(info.value, UsageError)


def test_truncated_jpeg_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "photos" / "dog" / "full.jpg"
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    good.parent.mkdir(parents=True)
    Image.fromarray(noise).save(good, quality=95)
    truncated = good.with_name("cut.jpg")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ds = load_dataset("folder", root=tmp_path / "photos", transform=TRANSFORM)
    assert ds.sample_ids == ["dog/cut.jpg", "dog/full.jpg"]
    assert ds[1][0].shape == (3, 20, 20)
    with pytest.raises(ImageReadError, match="cut.jpg"):
        ds[0]
