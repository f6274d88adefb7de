"""Image features of a clean data set split, cached on disk by content."""

from __future__ import annotations

from collections.abc import Callable

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


# Spread extraction: (rank, size) of this process, and how every rank's rows [n_r, ...] reach every rank.
Part = tuple[int, int]
GatherRows = Callable[[Tensor], list[Tensor]]


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
    part: Part = (0, 1),
    gather: GatherRows | None = None,
) -> tuple[Tensor, Tensor]:
    """Features [N,D] (float32, CPU) and labels [N] for every item of ``dataset``, in item order.

    Spread over ``part = (rank, size)`` processes, each computes every ``size``-th batch of one fixed
    batch plan (so each feature is computed in the same batch whatever the number of processes) and
    ``gather`` brings every rank's rows to every rank.
    """
    if key is not None and (hit := cache.load("features", key)) is not None:
        return hit["features"], hit["labels"]
    rank, size = part
    plan = [list(range(i, min(i + batch_size, len(dataset)))) for i in range(0, len(dataset), batch_size)]
    mine = plan[rank::size]
    loader = DataLoader(dataset, batch_sampler=mine, num_workers=workers)
    chunks = []
    for images, _, _ in tqdm(loader, desc=desc, leave=False, mininterval=1.0, disable=rank != 0):
        with runtime.autocast():
            chunks.append(classifier.features(images.to(runtime.device)).float().cpu())
    width = chunks[0].shape[1] if chunks else classifier.features(dataset[0][0][None].to(runtime.device)).shape[1]
    rows = torch.cat(chunks) if chunks else torch.zeros(0, width)
    features = _in_plan_order(gather(rows) if gather else [rows], plan, size)
    labels = torch.tensor(dataset.labels, dtype=torch.long)
    if key is not None and rank == 0:
        cache.save("features", key, {"features": features, "labels": labels})
    return features, labels


def _in_plan_order(per_rank: list[Tensor], plan: list[list[int]], size: int) -> Tensor:
    """Rank r's rows are batches r, r+size, ... of ``plan`` in order: put every batch back in its place."""
    batches: list[Tensor | None] = [None] * len(plan)
    for rank, rows in enumerate(per_rank):
        sizes = [len(plan[b]) for b in range(rank, len(plan), size)]
        for b, chunk in zip(range(rank, len(plan), size), torch.split(rows, sizes)):
            batches[b] = chunk
    return torch.cat([b for b in batches if b is not None])
