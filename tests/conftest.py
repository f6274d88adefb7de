"""Shared fixtures. Real-data tests skip on a user's machine without ../shared/data, but fail under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TYPOBENCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = f"real-data test needs {path} (set TYPOBENCH_SHARED_DATA to the shared data folder)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (``cifar10-jpeg/``, ``imagenet-sample/``)."""
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def cifar10_jpeg_root(shared_data: Path) -> Path:
    return _require(shared_data / "cifar10-jpeg")


@pytest.fixture(scope="session")
def imagenet_sample_root(shared_data: Path) -> Path:
    return _require(shared_data / "imagenet-sample")
