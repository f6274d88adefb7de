"""``imagenet-robustbench``: RobustBench's 5,000-image ImageNet list, shipped as a manifest, restricts a val folder."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import torchvision.transforms as T
from PIL import Image

from typobench.core.errors import UsageError
from typobench.data import dataset_entry, imagenet_wnids, list_datasets, load_dataset
from typobench.data.robustbench import MANIFEST, MANIFEST_SHA256, robustbench_imagenet_ids
from typobench.shipped import shipped_datasets_dir

from conftest import PROJECT_ROOT

TRANSFORM = T.Compose([T.Resize(16), T.CenterCrop(16), T.ToTensor()])


def _write(folder: Path, relpath: str, value: int) -> None:
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (value, value, value)).save(path, format="JPEG")


def test_manifest_is_robustbench_list_shipped_from_top_level_datasets() -> None:
    shipped = shipped_datasets_dir() / MANIFEST
    assert shipped.resolve() == (PROJECT_ROOT / "datasets" / MANIFEST).resolve()
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == MANIFEST_SHA256
    ids = robustbench_imagenet_ids()
    assert len(ids) == len(set(ids)) == 5000
    assert ids[0] == "n09468604/ILSVRC2012_val_00015253.JPEG"  # RobustBench's order, not sorted
    wnids = set(imagenet_wnids())
    assert all(i.split("/")[0] in wnids and i.split("/")[1].startswith("ILSVRC2012_val_") for i in ids)
    assert (PROJECT_ROOT / "datasets" / "robustbench" / "LICENSE").read_text().startswith(
        "The code of the RobustBench benchmark is released under the MIT license.")
    assert 'datasets/robustbench/*' in (PROJECT_ROOT / "pyproject.toml").read_text()


def test_val_folder_is_restricted_to_the_listed_ids(tmp_path: Path, caplog) -> None:
    ids = robustbench_imagenet_ids()
    val = tmp_path / "val"
    listed = [ids[3], ids[0], ids[1]]
    for n, relpath in enumerate(listed):
        _write(val, relpath, 40 * n)
    _write(val, "n01440764/ILSVRC2012_val_99999999.JPEG", 200)  # a val image RobustBench does not use
    assert "n01440764/ILSVRC2012_val_99999999.JPEG" not in ids
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("imagenet-robustbench", root=tmp_path, split="test", transform=TRANSFORM)
    assert ds.name == "imagenet-robustbench" and ds.split == "val"
    assert ds.sample_ids == [f"val/{i}" for i in ids[:2] + ids[3:4]]  # the list's order
    index = {w: n for n, w in enumerate(imagenet_wnids())}
    assert ds.labels == [index[i.split("/")[0]] for i in ids[:2] + ids[3:4]]
    assert len(ds.classnames) == 1000 and len(ds.templates) == 80
    pixels, label, position = ds[2]
    assert pixels.shape == (3, 16, 16) and (label, position) == (index[ids[3].split("/")[0]], 2)
    assert "3 of RobustBench's 5000 images" in caplog.text and ids[2] in caplog.text


def test_folder_without_listed_images_is_one_line_error(tmp_path: Path) -> None:
    _write(tmp_path / "val", "n01440764/ILSVRC2012_val_99999999.JPEG", 10)
    with pytest.raises(UsageError) as info:
        load_dataset("imagenet-robustbench", root=tmp_path, split="val", transform=TRANSFORM)
    assert "found none of RobustBench's 5,000" in str(info.value) and "\n" not in str(info.value)


def test_registered_with_how_to_get() -> None:
    assert "imagenet-robustbench" in list_datasets()
    entry = dataset_entry("imagenet-robustbench")
    assert entry.needs_root and entry.splits == ("val",) and "datasets/robustbench" in entry.how_to_get
    with pytest.raises(UsageError, match="needs --data-root"):
        load_dataset("imagenet-robustbench", transform=TRANSFORM)
