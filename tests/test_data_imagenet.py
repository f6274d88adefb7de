"""``imagenet`` (wnid folders) and ``imagenet-sample`` (flat <wnid>_<name>.JPEG files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torchvision.transforms as T
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
from PIL import Image

from typobench.data import imagenet_wnids, load_dataset, openai_imagenet_templates
from typobench.core.errors import UsageError

TRANSFORM = T.Compose([T.Resize(24), T.CenterCrop(24), T.ToTensor()])


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 8), (value, value, value)).save(path, format="JPEG")


def test_shipped_wnids_match_the_shared_sample(imagenet_sample_root: Path) -> None:
    names = sorted(os.listdir(imagenet_sample_root))
    assert [n.split("_", 1)[0] for n in names] == list(imagenet_wnids())


def test_imagenet_sample_labels_and_metadata(imagenet_sample_root: Path) -> None:
    ds = load_dataset("imagenet-sample", root=imagenet_sample_root, transform=TRANSFORM)
    assert len(ds) == 1000 and ds.split == "test"
    first = ds.sample_ids.index("n01440764_tench.JPEG")
    assert ds.labels[first] == 0
    last = next(i for i, s in enumerate(ds.sample_ids) if s.startswith("n15075141_"))
    assert ds.labels[last] == 999
    assert ds.classnames == list(IMAGENET_CLASSNAMES)
    assert ds.templates == list(openai_imagenet_templates()) and len(ds.templates) == 80
    pixels, label, index = ds[last]
    assert pixels.shape == (3, 24, 24) and 0 <= pixels.min() and pixels.max() <= 1
    assert (label, index) == (999, last)


def test_imagenet_sample_partial_folder_and_unknown_wnid(tmp_path: Path) -> None:
    write_image(tmp_path / "n04590129_window_shade.JPEG", 100)
    write_image(tmp_path / "n01443537_goldfish.JPEG", 50)
    ds = load_dataset("imagenet-sample", root=tmp_path, transform=TRANSFORM)
    assert ds.sample_ids == ["n01443537_goldfish.JPEG", "n04590129_window_shade.JPEG"]
    assert ds.labels == [1, imagenet_wnids().index("n04590129")]
    write_image(tmp_path / "n99999999_nothing.JPEG", 0)
    with pytest.raises(UsageError, match="n99999999_nothing.JPEG"):
        load_dataset("imagenet-sample", root=tmp_path, transform=TRANSFORM)


@pytest.fixture()
def partial_imagenet(tmp_path: Path) -> Path:
    """val/ with 3 of the 1000 wnid folders; their standard indices are 2, 500 and 999."""
    wnids = imagenet_wnids()
    for k, index in enumerate((999, 2, 500)):
        for j in range(2):
            write_image(tmp_path / "val" / wnids[index] / f"ILSVRC2012_val_{k}{j}.JPEG", 40 * k + j)
    return tmp_path


def test_imagenet_partial_folders_get_standard_indices(partial_imagenet: Path) -> None:
    ds = load_dataset("imagenet", root=partial_imagenet, transform=TRANSFORM)  # default split test = val
    assert ds.split == "val" and len(ds.classnames) == 1000
    assert ds.labels == [2, 2, 500, 500, 999, 999]  # standard indices, not 0..2
    wnids = imagenet_wnids()
    assert ds.sample_ids[0] == f"val/{wnids[2]}/ILSVRC2012_val_10.JPEG"
    assert ds[5][1] == 999 and ds[5][0].shape == (3, 24, 24)
    direct = load_dataset("imagenet", root=partial_imagenet / "val", split="val", transform=TRANSFORM)
    assert direct.sample_ids == ds.sample_ids and direct.labels == ds.labels


def test_imagenet_refuses_unknown_folders_and_flat_folders(partial_imagenet: Path, imagenet_sample_root: Path) -> None:
    (partial_imagenet / "val" / "holiday_photos").mkdir()
    write_image(partial_imagenet / "val" / "holiday_photos" / "x.jpg", 1)
    with pytest.raises(UsageError, match="holiday_photos"):
        load_dataset("imagenet", root=partial_imagenet, transform=TRANSFORM)
    with pytest.raises(UsageError, match="imagenet-sample"):
        load_dataset("imagenet", root=imagenet_sample_root, transform=TRANSFORM)
    with pytest.raises(UsageError, match="no 'train/' folder"):
        load_dataset("imagenet", root=partial_imagenet, split="train", transform=TRANSFORM)
