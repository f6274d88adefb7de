"""Build a head for a loaded model, reusing the on-disk cache keyed by content."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from typobench.core.cache import TensorCache, content_key
from typobench.models.classifier import ImageClassifier
from typobench.data import ImageDataset, sample_hash
from typobench.heads.features import GatherRows, Part, extract_features, features_cache_key
from typobench.models import LoadedModel
from typobench.core.runtime import Runtime
from typobench.heads.linear_probe import train_linear_probe
from typobench.heads.zeroshot import ZeroShotHead, zeroshot_class_embeddings


def build_zeroshot_head(
    loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[str], cache: TensorCache
) -> tuple[ZeroShotHead, dict[str, Any]]:
    """Class embeddings from cache when model weights, class names, templates and code all match."""
    key = content_key(kind="zeroshot", model=loaded.fingerprint(), classnames=list(classnames), templates=list(templates))
    return cached_zeroshot_head(
        loaded, cache, key, lambda: zeroshot_class_embeddings(loaded.model, loaded.tokenizer, classnames, templates),
        templates)


def cached_zeroshot_head(loaded: LoadedModel, cache: TensorCache, key: str, compute: Callable[[], Tensor],
                         templates: Sequence[str], **info: Any) -> tuple[ZeroShotHead, dict[str, Any]]:
    """The zero-shot head of the class embeddings [C, D] cached under ``key`` (``compute()`` and saved there
    on a miss), and its info (``info`` after the templates: what else the key holds)."""
    hit = cache.load("zeroshot", key)
    if hit is not None:
        embeddings = hit["class_embeddings"].to(loaded.device)
    else:
        embeddings = compute()
        cache.save("zeroshot", key, {"class_embeddings": embeddings})
    head = ZeroShotHead.from_clip(loaded.model, embeddings)
    return head, {"kind": "zeroshot", "templates": list(templates), **info, "logit_scale": head.logit_scale,
                  "logit_bias": head.logit_bias, "cache_key": key, "cached": hit is not None}


def build_linear_probe_head(
    loaded: LoadedModel,
    train_set: ImageDataset,
    runtime: Runtime,
    cache: TensorCache,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    part: Part = (0, 1),
    gather: GatherRows | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fit a logistic-regression probe on (cached) clean features of ``train_set``; the extraction may be
    spread over processes (``part``, ``gather``: see ``extract_features``), the fit is the same on each."""
    extractor = ImageClassifier.of(loaded, device=runtime.device)
    key = features_cache_key(loaded.fingerprint(), train_set, repr(loaded.pixel_transform()))
    features, labels = extract_features(
        extractor, train_set, runtime, key=key, cache=cache, batch_size=batch_size, workers=workers,
        desc="probe features", part=part, gather=gather,
    )
    head, report = train_linear_probe(features, labels, len(train_set.classnames), seed=seed)
    info = {
        "kind": "linear-probe",
        **report.to_dict(),
        "train_split": train_set.split,
        "train_sample_hash": sample_hash(train_set.sample_ids),
        "features_cache_key": key,
    }
    return head.to(runtime.device), info
