"""The ``project`` defense: its closed-form learning removes the written class's directions and keeps the photos',
the defended embedding is projected, and the file's provenance is checked."""

from __future__ import annotations

import pytest
import torch

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import load_dataset
from typobench.defenses import BuildContext, create_defense
from typobench.defenses.classifier import DefendedClassifier
from typobench.defenses.greedy import zeroshot_classifier
from typobench.defenses.projection import between_class_scatter, load_projection, spelling_directions
from typobench.harness.provenance import check_provenance
from typobench.models import load_model


def _clusters(axes, n=60, classes=3, dim=8, seed=0):
    """Features whose class is coded along ``axes`` (one axis per class), plus small noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    features = 0.05 * torch.randn(n, dim, generator=generator) + torch.ones(dim)
    for c, axis in enumerate(axes):
        features[labels == c, axis] += 1.0
    return features, labels


def test_spelling_directions_are_the_words_class_axes_not_the_photos():
    words, labels = _clusters([0, 1, 2])
    photos, photo_labels = _clusters([3, 4, 5], seed=1)
    q = spelling_directions(words, labels, photos, photo_labels, 3, rank=2)
    assert torch.allclose(q.T @ q, torch.eye(2), atol=1e-5)
    assert q[:3].norm() > 0.95 and q[3:6].norm() < 0.1  # the written axes, not the photos'
    projection = torch.eye(8) - q @ q.T
    kept = lambda f, y: float(torch.trace(projection.double() @ between_class_scatter(f, y, 3) @ projection.double())
                              / torch.trace(between_class_scatter(f, y, 3)))
    assert kept(words, labels) < 0.2 and kept(photos, photo_labels) > 0.9


def test_train_projection_removes_its_directions_and_the_defense_projects_the_embedding(tmp_path, capsys):
    out = tmp_path / "p.safetensors"
    assert main(["defense", "train-projection", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--split", "test",
                 "--limit", "20", "--rank", "3", "--device", "cpu", "--out", str(out)]) == 0
    assert "removed  3 directions" in capsys.readouterr().out
    result = load_projection(out, "test")
    p, q = result.projection, result.directions
    assert q.shape[1] == 3 and torch.allclose(p @ q, torch.zeros_like(q), atol=1e-5)  # the directions are removed
    assert torch.allclose(p @ p, p, atol=1e-5) and torch.allclose(p, p.T, atol=1e-6)
    assert float(result.metadata["words_scatter_kept"]) < float(result.metadata["photos_scatter_kept"])
    loaded = load_model("tiny-rn", device="cpu")
    defense = create_defense(f"project:file={out}")
    base = zeroshot_classifier(loaded, ["cat", "dog", "car"], ["a photo of a {}."])
    defended = defense.wrap(DefendedClassifier(base), BuildContext(Runtime(torch.device("cpu")), 4), {})
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(defended.features(pixels), base.features(pixels) @ p, atol=1e-5)
        assert torch.allclose((defended.features(pixels) @ q), torch.zeros(2, 3), atol=1e-5)
    data = load_dataset("cifar10-sample", split="test", transform=loaded.pixel_transform())
    with pytest.raises(UsageError, match="projection were chosen on 20 of the images"):
        check_provenance([defense], loaded, data)
    with pytest.raises(UsageError, match="chosen for model tiny-rn"):
        check_provenance([defense], load_model("tiny-rn", device="cpu", seed=1), data)
    with pytest.raises(UsageError, match=r"field 'file'.*not found"):
        create_defense(f"project:file={tmp_path / 'missing.safetensors'}")
    assert main(["defense", "train-projection", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--rank", "10",
                 "--split", "test", "--limit", "20", "--out", str(tmp_path / "q.safetensors")]) == 2
    assert "1 <= rank <= 9" in capsys.readouterr().err
