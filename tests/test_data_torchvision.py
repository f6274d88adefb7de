"""The torchvision ``cifar10``/``cifar100`` entries: no network unless download=True."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.cifar as tv_cifar
import torchvision.transforms as T

from typobench.data import CIFAR10_CLASSNAMES, CIFAR100_CLASSNAMES, load_dataset
from typobench.core.errors import UsageError

TRANSFORM = T.Compose([T.Resize(16), T.ToTensor()])


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and block) any attempt to download or open a socket."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args))
        raise AssertionError("network access attempted")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_data_without_download_is_usage_error(name: str, tmp_path: Path, no_network: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        load_dataset(name, root=tmp_path, transform=TRANSFORM)
    message = str(info.value)
    assert "--download" in message and "--data-root" in message and "\n" not in message
    assert no_network == []


def test_incomplete_data_without_download_is_usage_error(tmp_path: Path, no_network: list[str]) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"junk")
    with pytest.raises(UsageError, match="incomplete or corrupt"):
        load_dataset("cifar10", root=tmp_path, transform=TRANSFORM)
    assert no_network == []


def fake_release(root: Path, folder: str, batch: str, label_key: str, meta: str, meta_key: str,
                 names: tuple[str, ...], n: int) -> None:
    """Write a tiny pickle set in torchvision's layout (checksums are patched out by the test)."""
    base = root / folder
    base.mkdir(parents=True)
    data = np.arange(n * 3072, dtype=np.int64).reshape(n, 3072) % 256
    with open(base / batch, "wb") as f:
        pickle.dump({"data": data.astype(np.uint8), label_key: [i % len(names) for i in range(n)]}, f)
    with open(base / meta, "wb") as f:
        pickle.dump({meta_key: [c.replace(" ", "_") for c in names]}, f)


@pytest.mark.parametrize(
    ("name", "folder", "batch", "label_key", "meta", "meta_key", "names"),
    [
        ("cifar10", "cifar-10-batches-py", "test_batch", "labels", "batches.meta", "label_names", CIFAR10_CLASSNAMES),
        ("cifar100", "cifar-100-python", "test", "fine_labels", "meta", "fine_label_names", CIFAR100_CLASSNAMES),
    ],
)
def test_loads_torchvision_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str],
                                  name: str, folder: str, batch: str, label_key: str, meta: str, meta_key: str,
                                  names: tuple[str, ...]) -> None:
    fake_release(tmp_path, folder, batch, label_key, meta, meta_key, names, n=12)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    ds = load_dataset(name, root=tmp_path / folder, transform=TRANSFORM)  # the batch folder itself is accepted
    assert len(ds) == 12 and ds.labels == [i % len(names) for i in range(12)]
    assert ds.sample_ids[3] == f"{name}:test:3" and ds.classnames == list(names)
    assert ds.describe()["root"] == str(tmp_path)
    pixels, label, index = ds[3]
    assert pixels.shape == (3, 16, 16) and 0 <= pixels.min() and pixels.max() <= 1
    assert (label, index) == (3, 3)
    assert no_network == []
