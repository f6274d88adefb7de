"""FARE's / clip_benchmark's zero-shot data sets: tiny fixtures in torchvision's own layouts, read without a network,
with clip_benchmark's class names and templates. Where torchvision checks md5 sums of the real archives (STL-10,
Flowers-102) the check is patched out, as test_data_torchvision.py does for CIFAR; PCAM needs h5py (not installed
here), so only its registry entry, names and error are tested."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torchvision.datasets as tvd
import torchvision.transforms as T
from PIL import Image

from typobench.core.errors import UsageError
from typobench.data import dataset_entry, list_datasets, load_dataset
from typobench.data.zeroshot import SETS, classnames_of, templates_of

TRANSFORM = T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor()])
ALL = ("cifar100", "stl10", "caltech101", "oxford-pets", "flowers102", "food101", "dtd", "eurosat", "fgvc-aircraft",
       "stanford-cars", "pcam")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _jpeg(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 12), (value, 255 - value, 7)).save(path, format="JPEG")


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_every_set_is_registered_with_how_to_get_and_templates() -> None:
    assert set(ALL) <= set(list_datasets())
    for name in ALL:
        entry = dataset_entry(name)
        assert entry.needs_root and "--data-root" in entry.how_to_get, name
        if name not in ("cifar100", "caltech101"):
            assert all("{}" in t and "{c}" not in t for t in templates_of(name)), name
    assert not dataset_entry("stanford-cars").downloadable and "Kaggle" in dataset_entry("stanford-cars").how_to_get
    assert dataset_entry("eurosat").splits == ("test",) and dataset_entry("fgvc-aircraft").splits[0] == "test"
    # clip_benchmark's names where it ships them; None where it reads them from the data.
    counts = {s.name: len(classnames_of(s.name) or ()) for s in SETS}
    assert counts == {"stl10": 0, "oxford-pets": 37, "flowers102": 102, "food101": 0, "dtd": 0, "eurosat": 10,
                      "fgvc-aircraft": 0, "stanford-cars": 0, "pcam": 2}
    assert classnames_of("caltech101")[:3] == ("background", "off-center face", "centered face")


@pytest.mark.parametrize("name", [n for n in ALL if n != "cifar100"])
def test_missing_folder_is_one_line_usage_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_dataset(name, root=tmp_path, transform=TRANSFORM)
    assert "not found" in str(info.value) and "--data-root" in str(info.value) and "\n" not in str(info.value)


def test_oxford_pets(tmp_path: Path) -> None:
    base = tmp_path / "oxford-iiit-pet"
    for n, image_id in enumerate(["Abyssinian_1", "yorkshire_terrier_3"]):
        _jpeg(base / "images" / f"{image_id}.jpg", 60 * n)
    _lines(base / "annotations" / "test.txt", ["Abyssinian_1 1 1 1", "yorkshire_terrier_3 37 2 25"])
    ds = load_dataset("oxford-pets", root=tmp_path, transform=TRANSFORM)
    assert ds.labels == [0, 36] and ds.sample_ids == ["oxford-iiit-pet/images/Abyssinian_1.jpg",
                                                      "oxford-iiit-pet/images/yorkshire_terrier_3.jpg"]
    assert ds.classnames[0] == "Abyssinian" and len(ds.classnames) == 37
    assert ds.templates == ["a photo of a {}, a type of pet."]
    pixels, label, index = ds[1]
    assert pixels.shape == (3, 8, 8) and (label, index) == (36, 1)


def test_food101_names_from_the_data_underscores_replaced(tmp_path: Path) -> None:
    base = tmp_path / "food-101"
    _jpeg(base / "images" / "apple_pie" / "1.jpg", 10)
    _jpeg(base / "images" / "baby_back_ribs" / "7.jpg", 20)
    (base / "meta").mkdir(parents=True)
    (base / "meta" / "test.json").write_text(json.dumps({"apple_pie": ["apple_pie/1"], "baby_back_ribs": ["baby_back_ribs/7"]}))
    ds = load_dataset("food101", root=base, transform=TRANSFORM)  # the data set's own folder works too
    assert ds.classnames == ["apple pie", "baby back ribs"] and ds.labels == [0, 1]
    assert ds.templates == ["a photo of {}, a type of food."]


def test_dtd_partition_one(tmp_path: Path) -> None:
    data = tmp_path / "dtd" / "dtd"
    for cls in ("banded", "zigzagged"):
        _jpeg(data / "images" / cls / f"{cls}_0001.jpg", 30)
    _lines(data / "labels" / "test1.txt", ["banded/banded_0001.jpg", "zigzagged/zigzagged_0001.jpg"])
    _lines(data / "labels" / "val1.txt", ["banded/banded_0001.jpg"])
    ds = load_dataset("dtd", root=tmp_path, transform=TRANSFORM)
    assert ds.classnames == ["banded", "zigzagged"] and ds.labels == [0, 1] and len(ds.templates) == 8
    assert len(load_dataset("dtd", root=tmp_path, split="val", transform=TRANSFORM)) == 1


def test_eurosat_all_images_with_clip_benchmark_names(tmp_path: Path) -> None:
    folders = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
               "Residential", "River", "SeaLake"]
    for n, folder in enumerate(folders):
        _jpeg(tmp_path / "eurosat" / "2750" / folder / f"{folder}_1.jpg", 20 * n)
    ds = load_dataset("eurosat", root=tmp_path, transform=TRANSFORM)
    assert ds.labels == list(range(10)) and ds.classnames[2] == "brushland or shrubland"
    assert ds.sample_ids[9] == "eurosat/2750/SeaLake/SeaLake_1.jpg" and ds.classnames[9] == "lake or sea"
    with pytest.raises(UsageError, match="no split 'train'"):
        load_dataset("eurosat", root=tmp_path, split="train", transform=TRANSFORM)


def test_fgvc_aircraft_variants(tmp_path: Path) -> None:
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    _lines(data / "variants.txt", ["707-320", "A340-500", "Boeing 717"])
    _jpeg(data / "images" / "0001.jpg", 10)
    _jpeg(data / "images" / "0002.jpg", 90)
    _lines(data / "images_variant_test.txt", ["0001 Boeing 717", "0002 707-320"])
    ds = load_dataset("fgvc-aircraft", root=tmp_path, transform=TRANSFORM)
    assert ds.classnames == ["707-320", "A340-500", "Boeing 717"] and ds.labels == [2, 0]
    assert ds.templates[0] == "a photo of a {}, a type of aircraft."


def test_stanford_cars_from_mat_files(tmp_path: Path) -> None:
    base = tmp_path / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    scipy.io.savemat(base / "devkit" / "cars_meta.mat",
                     {"class_names": np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012"], dtype=object)})
    annotations = np.array([("00001.jpg", 2), ("00002.jpg", 1)], dtype=[("fname", object), ("class", np.int64)])
    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", {"annotations": annotations})
    _jpeg(base / "cars_test" / "00001.jpg", 5)
    _jpeg(base / "cars_test" / "00002.jpg", 50)
    ds = load_dataset("stanford-cars", root=tmp_path, transform=TRANSFORM)
    assert ds.classnames == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"] and ds.labels == [1, 0]
    assert ds.sample_ids == ["stanford_cars/cars_test/00001.jpg", "stanford_cars/cars_test/00002.jpg"]
    with pytest.raises(UsageError, match="cannot be downloaded"):
        load_dataset("stanford-cars", root=tmp_path, transform=TRANSFORM, download=True)


def test_flowers102_with_md5_check_patched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "flowers-102"
    for image_id in (1, 2, 3):
        _jpeg(base / "jpg" / f"image_{image_id:05d}.jpg", 40 * image_id)
    scipy.io.savemat(base / "imagelabels.mat", {"labels": np.array([[1, 102, 5]])})
    scipy.io.savemat(base / "setid.mat", {"trnid": np.array([[1]]), "valid": np.array([[2]]), "tstid": np.array([[3, 2]])})
    monkeypatch.setattr(tvd.Flowers102, "_check_integrity", lambda self: True)  # the real files' md5 sums
    ds = load_dataset("flowers102", root=tmp_path, transform=TRANSFORM)
    assert ds.labels == [4, 101] and ds.classnames[0] == "pink primrose" and len(ds.classnames) == 102


def test_stl10_binary_with_md5_check_patched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "stl10_binary"
    base.mkdir()
    images = np.zeros((2, 3, 96, 96), dtype=np.uint8)
    images[1, 0] = 200  # the second image is red: checks the channel order survives the layout change
    images.transpose(0, 1, 3, 2).tofile(base / "test_X.bin")  # STL-10 stores column-major planes
    np.array([1, 10], dtype=np.uint8).tofile(base / "test_y.bin")
    _lines(base / "class_names.txt", ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"])
    monkeypatch.setattr(tvd.STL10, "_check_integrity", lambda self: True)
    ds = load_dataset("stl10", root=tmp_path, transform=T.ToTensor())
    assert ds.labels == [0, 9] and ds.classnames[9] == "truck" and ds.sample_ids == ["stl10:test:0", "stl10:test:1"]
    red, _, _ = ds[1]
    assert red.shape == (3, 96, 96) and float(red[0].mean()) == pytest.approx(200 / 255) and float(red[1].max()) == 0


def test_caltech101_keeps_the_background_class(tmp_path: Path) -> None:
    folder = tmp_path / "caltech101" / "101_ObjectCategories"
    categories = ["BACKGROUND_Google", "Faces", "Faces_easy"] + [f"cat{n:03d}" for n in range(99)]
    for category in categories:
        (folder / category).mkdir(parents=True)
    _jpeg(folder / "BACKGROUND_Google" / "image_0001.jpg", 1)
    _jpeg(folder / "Faces_easy" / "image_0001.jpg", 2)
    ds = load_dataset("caltech101", root=tmp_path, transform=TRANSFORM)
    assert ds.labels == [0, 2] and ds.classnames[2] == "centered face" and len(ds.classnames) == 102
    (folder / "cat000").rmdir()
    with pytest.raises(UsageError, match="101 category folders, not Caltech-101's 102"):
        load_dataset("caltech101", root=tmp_path, transform=TRANSFORM)


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None, reason="tests the message for a missing h5py")
def test_pcam_without_h5py_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pcam").mkdir()
    with pytest.raises(UsageError, match="h5py") as info:
        load_dataset("pcam", root=tmp_path, transform=TRANSFORM)
    assert "\n" not in str(info.value)
    assert classnames_of("pcam") == ("lymph node", "lymph node containing metastatic tumor tissue")
