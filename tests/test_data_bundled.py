"""The bundled ``cifar10-sample``: offline, 100 per class, matching its manifest and its source."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T

from typobench.data import CIFAR_TEMPLATES, load_dataset, sample_hash, stratified_subset
from typobench.data.bundled import images_sha256, read_bundled_sample

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = PROJECT_ROOT / "datasets" / "cifar10-sample.json"
TRANSFORM = T.Compose([T.Resize(48), T.CenterCrop(48), T.ToTensor()])


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def test_loads_without_root_with_100_per_class(manifest: dict) -> None:
    ds = load_dataset("cifar10-sample", transform=TRANSFORM)
    assert len(ds) == 1000 and ds.split == "test" and ds.root is None
    assert Counter(ds.labels) == {c: 100 for c in range(10)}
    assert ds.templates == list(CIFAR_TEMPLATES)
    assert ds.sample_ids == [item["id"] for item in manifest["items"]]
    assert ds.labels == [item["label"] for item in manifest["items"]]
    assert ds.describe()["sample_hash"] == manifest["sample_hash"] == sample_hash(ds.sample_ids)
    pixels, label, index = ds[999]
    assert pixels.shape == (3, 48, 48) and 0 <= pixels.min() and pixels.max() <= 1
    assert (label, index) == (9, 999)


def test_ids_name_their_class(manifest: dict) -> None:
    for item in manifest["items"]:
        split, folder, _ = item["id"].split("/")
        assert split == "test" and manifest["classnames"].index(folder) == item["label"]


def test_npz_matches_manifest_and_is_small(manifest: dict) -> None:
    data = resources.files("typobench.data").joinpath("cifar10_sample.npz").read_bytes()
    assert len(data) < 4 * 1024 * 1024
    assert manifest["npz"] == {"path": "typobench/data/cifar10_sample.npz", "bytes": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()}
    sample = read_bundled_sample()
    assert sample.images.shape == (1000, 32, 32, 3) and sample.images.dtype == np.uint8
    assert images_sha256(sample.images) == manifest["images_sha256"]
    for key in ("seed", "per_class", "n", "source", "draw", "sample_hash", "images_sha256"):
        assert sample.metadata[key] == manifest[key], key
    assert manifest["source"]["name"] == "cifar10-jpeg" and manifest["per_class"] == 100


def test_sample_is_the_recorded_draw_from_cifar10_jpeg(cifar10_jpeg_root: Path, manifest: dict) -> None:
    source = load_dataset("cifar10-jpeg", root=cifar10_jpeg_root, split="test", transform=T.ToTensor())
    assert sample_hash(source.sample_ids) == manifest["source"]["sample_hash"]
    drawn = source.subset(stratified_subset(source.labels, 1000, manifest["seed"]))
    bundled = load_dataset("cifar10-sample", transform=T.ToTensor())
    assert drawn.sample_ids == bundled.sample_ids and drawn.labels == bundled.labels
    for i in (0, 321, 999):  # same pixels as decoding the source file
        assert torch.equal(drawn[i][0], bundled[i][0])
