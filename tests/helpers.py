"""Small builders shared by tests (not fixtures: plain functions with explicit arguments)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import torch

from typobench.data import ImageDataset
from typobench.data.base import ArrayLoader


def synthetic_dataset(n: int = 40, classes: int = 4, side: int = 32, seed: int = 0, name: str = "synthetic") -> ImageDataset:
    """An in-memory data set of random uint8 images; class c has a brighter channel c % 3."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 120, size=(n, side, side, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, :, :, label % 3] += 120
    from torchvision.transforms import functional as F

    return ImageDataset(
        name=name, split="test", classnames=[f"class{c}" for c in range(classes)], templates=["a photo of a {}."],
        labels=labels.tolist(), sample_ids=[f"s{i:04d}" for i in range(n)], loader=ArrayLoader(images),
        transform=lambda image: F.to_tensor(image.resize((64, 64))),
    )


def images_batch(n: int = 4, side: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


# -- headless Chromium (the leaderboard page and the atlas) ---------------------------------------------


def chromium() -> str:
    for name in (os.environ.get("TYPOBENCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    message = "the HTML test needs Chromium (Debian: apt-get install chromium); set TYPOBENCH_CHROMIUM to its path"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def sample_run(model: str, tmp, suite: str = "default") -> dict[str, dict]:
    """``suite`` run with ``model`` on 300 bundled CIFAR-10 test images: each stage's results by name."""
    from typobench.harness.config import RunConfig
    from typobench.harness.results import read_results
    from typobench.harness.run import execute

    config = RunConfig(model=model, dataset="cifar10-sample", suite=suite, limit=300, batch_size=100,
                       out=str(tmp / "run"), cache_dir=str(tmp / "cache"), device="cpu", seed=0)
    outcome = execute(config, progress=False)
    return {stage["name"]: stage for stage in read_results(outcome.out_dir)["stages"]}
