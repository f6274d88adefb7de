"""Learning the ``project`` defense (after Materzynska et al. 2022, "Disentangling visual and written concepts
in CLIP"): a linear projection of the image embedding that removes spelling and keeps the class.

On *train* images two sets of image embeddings (L2-normalised) are made: the photos, and the true class names
written alone on white (the ``words-alone`` suite's blank and text stages, drawn as a run draws them).
``S_words`` is the between-class scatter of the written words' embeddings, ``S_photos`` that of the photos'
(plus ``ridge`` x its mean eigenvalue, so that it can be inverted). The ``rank`` directions v that maximise
``v' S_words v / v' S_photos v`` (a generalised eigenproblem) carry the written class most and the photo's class
least; the projection ``P = I - Q Q'`` (Q an orthonormal basis of those directions) removes them. Closed form,
deterministic from the seed that draws the words. Materzynska et al. learn their projection by gradient
descent with other losses; this is the closed-form variant of the same idea, not their code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from typobench.core.atomic import write_bytes_atomic
from typobench.core.errors import UsageError
from typobench.data import ImageDataset, sample_hash
from typobench.defenses.greedy import zeroshot_classifier
from typobench.defenses.prefix import dataset_tensors
from typobench.models import LoadedModel
from typobench.stages.base import Batch, RunContext, Stage
from typobench.core.runtime import Runtime
from typobench.core.options import option

FILE_FORMAT = "typobench-projection"
_CHUNK = 128


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0 (the photos' scatter is inverted), got {value}"


@dataclass
class ProjectionOptions:
    """How the projection is learned (``typobench defense train-projection``'s flags, declared once)."""

    rank: int = option(4, "directions removed (fewer than the classes)", minimum=1, group="projection")
    ridge: float = option(0.1, "added to the photos' scatter, times its mean eigenvalue", check=_positive,
                          group="projection")


SUITE, BLANK, TEXT = "words-alone", "white", "words-alone"


@dataclass
class ProjectionStages:
    """The stages of --suite (default: words-alone) whose images the projection is learned from (the command's
    flags, declared once; read with the suite before anything is loaded)."""

    blank_stage: str = option(BLANK, "the blank stage")
    text_stage: str = option(TEXT, "the text stage writing on it")


@dataclass
class ProjectionResult:
    """``projection`` [D, D] (symmetric, idempotent), the removed ``directions`` [D, k] (orthonormal), metadata."""

    projection: Tensor
    directions: Tensor
    metadata: dict[str, str] = field(default_factory=dict)


def between_class_scatter(features: Tensor, labels: Tensor, classes: int) -> Tensor:
    """[D, D]: sum over classes of (class mean - overall mean)(...)' of L2-normalised ``features`` [N, D]."""
    features = torch.nn.functional.normalize(features.double(), dim=-1)
    centre = features.mean(0)
    means = [features[labels == c].mean(0) - centre for c in range(classes) if bool((labels == c).any())]
    stacked = torch.stack(means)
    return stacked.T @ stacked


def spelling_directions(words: Tensor, word_labels: Tensor, photos: Tensor, photo_labels: Tensor, classes: int,
                        rank: int, ridge: float = 0.1) -> Tensor:
    """[D, rank] orthonormal: the directions with the most written-class scatter per unit of photo-class scatter."""
    s_words = between_class_scatter(words, word_labels, classes)
    s_photos = between_class_scatter(photos, photo_labels, classes)
    dim = s_photos.shape[0]
    s_photos = s_photos + ridge * max(float(torch.trace(s_photos)) / dim, 1e-12) * torch.eye(dim, dtype=s_photos.dtype)
    chol = torch.linalg.cholesky(s_photos)
    inv = torch.linalg.inv(chol)  # S_photos^-1/2 in the Cholesky sense: maximise u' L^-1 S_w L^-T u
    values, vectors = torch.linalg.eigh(inv @ s_words @ inv.T)
    top = inv.T @ vectors[:, torch.argsort(values, descending=True)[:rank]]
    q, _ = torch.linalg.qr(top)
    return q.float()


def words_alone_images(blank: Stage, text: Stage, images: Tensor, labels: Tensor, sample_ids: list[str],
                       classnames: list[str], seed: int, classifier: Any) -> Tensor:
    """``text`` drawn on ``blank``'s output for each image, as a run's stages of those names with ``seed`` draw them."""
    if text.source != blank.name:
        raise UsageError(f"stage '{text.name}' reads '{text.source}', not '{blank.name}': name a text stage that "
                         "writes on the blank stage (the words-alone suite's 'words-alone' on 'white')")
    text.check(classnames, "train-projection")
    context = RunContext(classifier=classifier, classnames=classnames, runtime=Runtime(images.device), seed=seed)
    chunks = []
    for start in range(0, len(images), _CHUNK):
        end = min(start + _CHUNK, len(images))
        batch = Batch(images[start:end], labels[start:end], list(range(start, end)), sample_ids[start:end])
        white = blank.apply(batch.images, batch, context).images
        chunks.append(text.apply(white, batch, context).images.detach())
    return torch.cat(chunks)


@torch.no_grad()
def learn_projection(loaded: LoadedModel, dataset: ImageDataset, *, blank: Stage, text: Stage, rank: int,
                     seed: int = 0, ridge: float = 0.1) -> ProjectionResult:
    """The projection learned on every image of ``dataset`` (train images: never the scored ones)."""
    classes = len(dataset.classnames)
    if not 1 <= rank < classes:
        raise UsageError(f"--rank {rank}: the written words' class means span at most {classes - 1} directions "
                         f"for {classes} classes: use 1 <= rank <= {classes - 1}")
    images, labels = dataset_tensors(dataset)
    classifier = zeroshot_classifier(loaded, dataset.classnames, dataset.templates)
    device = loaded.device
    written = words_alone_images(blank, text, images.to(device), labels.to(device), list(dataset.sample_ids),
                                 list(dataset.classnames), seed, classifier)
    embed = lambda pixels: torch.cat([classifier.features(pixels[s:s + _CHUNK].to(device)).float().cpu()
                                      for s in range(0, len(pixels), _CHUNK)])
    words, photos = embed(written), embed(images)
    q = spelling_directions(words, labels, photos, labels, classes, rank, ridge)
    projection = torch.eye(q.shape[0]) - q @ q.T
    kept = lambda scatter: float(torch.trace(projection.double() @ scatter @ projection.double()) / torch.trace(scatter))
    metadata = {
        "format": FILE_FORMAT, "model_fingerprint": loaded.fingerprint(), "model_label": loaded.spec.label,
        "dataset": dataset.name, "split": dataset.split, "train_count": str(len(dataset)),
        "train_sample_hash": sample_hash(dataset.sample_ids), "sample_ids": json.dumps(list(dataset.sample_ids)),
        "rank": str(rank), "ridge": repr(ridge), "seed": str(seed), "blank_stage": json.dumps(blank.describe()),
        "text_stage": json.dumps(text.describe(), sort_keys=True),
        "words_scatter_kept": repr(kept(between_class_scatter(words, labels, classes))),
        "photos_scatter_kept": repr(kept(between_class_scatter(photos, labels, classes))),
    }
    return ProjectionResult(projection.contiguous(), q.contiguous(), metadata)


def save_projection(path: str | Path, result: ProjectionResult) -> Path:
    path = Path(path)
    tensors = {"projection": result.projection.float().contiguous(), "directions": result.directions.float().contiguous()}
    write_bytes_atomic(path, safetensors_bytes(tensors, metadata={k: str(v) for k, v in result.metadata.items()}))
    return path


def load_projection(path: Path, where: str) -> ProjectionResult:
    """A projection file, or a one-line UsageError naming the field 'file'."""
    if not path.is_file():
        raise UsageError(f"{where}: field 'file': '{path}' not found: learn one with `typobench defense train-projection`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{where}: field 'file': '{path}' is not a safetensors file ({exc}): pass a file written by "
                         "`typobench defense train-projection`") from None
    if metadata.get("format") != FILE_FORMAT or "projection" not in tensors:
        raise UsageError(f"{where}: field 'file': '{path}' is not a typobench projection: pass a file written by "
                         "`typobench defense train-projection`")
    return ProjectionResult(tensors["projection"].float(), tensors.get("directions", torch.zeros(0)), metadata)


__all__ = ["BLANK", "FILE_FORMAT", "SUITE", "TEXT", "ProjectionOptions", "ProjectionResult", "ProjectionStages",
           "between_class_scatter", "learn_projection", "load_projection", "save_projection", "spelling_directions",
           "words_alone_images"]
