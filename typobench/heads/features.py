"""Image features of a clean data set split, cached on disk by content."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from typobench.core.cache import TensorCache, content_key
from typobench.models.classifier import ImageClassifier
from typobench.data import ImageDataset, sample_hash
from typobench.core.runtime import Runtime


def features_cache_key(model_fingerprint: str, dataset: ImageDataset, transform_repr: str, view: str = "clean") -> str:
    """Everything that determines the features: model, data set (name, split, root), transform, sample ids, view.

    ``view`` names what was done to the images ("clean" here); attacked images never share a key
    with clean ones.
    """
    return content_key(
        kind="features",
        model=model_fingerprint,
        dataset=dataset.name,
        split=dataset.split,
        root=dataset.root,
        transform=transform_repr,
        samples=sample_hash(dataset.sample_ids),
        view=view,
    )


@torch.no_grad()
def extract_features(
    classifier: ImageClassifier,
    dataset: ImageDataset,
    runtime: Runtime,
    *,
    key: str | None,
    cache: TensorCache,
    batch_size: int = 128,
    workers: int = 0,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Features [N,D] (float32, CPU) and labels [N] for every item of ``dataset``, in item order."""
    if key is not None and (hit := cache.load("features", key)) is not None:
        return hit["features"], hit["labels"]
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    chunks, labels = [], []
    for images, batch_labels, _ in tqdm(loader, desc=desc, leave=False, mininterval=1.0):
        with runtime.autocast():
            chunks.append(classifier.features(images.to(runtime.device)).float().cpu())
        labels.append(batch_labels)
    features, label_tensor = torch.cat(chunks), torch.cat(labels).long()
    if key is not None:
        cache.save("features", key, {"features": features, "labels": label_tensor})
    return features, label_tensor
