"""Text feature visualization: which words a neuron *means* in the joint space, and whether it also *reads* them.

Text side (Goh et al. 2021, "if we fix a neuron on the vision side, we can search for the text that
maximizes the logit"). A unit's contribution to the image embedding is its gradient x activation,

    d[u] = mean over images x of  sum over positions p of  act[u, p](x) * d f(x) / d act[u, p]     [D]

with f the classifier's raw image embedding (``ImageClassifier.features``, before any normalisation): the
first-order share of f that flows through u (exact when everything after the layer is linear, as for
a ResNet's channels feeding a linear projection). A word's text-side score is the cosine between d[u]
and the word's text embedding (the model's text tower, ``{}`` template by default, through
:func:`typobench.heads.zeroshot.zeroshot_class_embeddings`).

Pixel side: the written-word facet of the neuron cards (:func:`typobench.neurons.cards.card.word_activations`
and :func:`~typobench.neurons.cards.card.text_z`): how much the unit fires on the word rendered as an image.

Agreement between the two word rankings over the same vocabulary (Spearman rank correlation, and the
overlap of the two top-k lists) is a multimodality measure: a unit that reads a word and writes it into
the joint space agrees with itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.heads.zeroshot import zeroshot_class_embeddings
from typobench.models.units import NeuronSpace, as_pixels, capture


def _contributions(model: nn.Module, space: NeuronSpace, pixels: Tensor) -> Tensor:
    """[U, D]: gradient x activation of every embedding dimension over every unit, summed over the batch."""
    with torch.enable_grad(), capture(space) as store:
        embedding = model.features(pixels.requires_grad_(True)).float()
        outputs = [store[layer.name] for layer in space.layers]
        columns = []
        for d in range(embedding.shape[1]):
            grads = torch.autograd.grad(embedding[:, d].sum(), outputs, retain_graph=True)
            per_layer = [layer.per_position(o * g).sum(1) for layer, o, g in zip(space.layers, outputs, grads)]
            columns.append(torch.cat(per_layer, dim=1).sum(0).detach().float().cpu())
    return torch.stack(columns, dim=1)


def neuron_directions(model: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 32) -> Tensor:
    """[U, D]: each unit's mean contribution to the raw image embedding over ``images`` [N, 3, S, S] (module
    docstring). ``model`` has ``features(pixels) -> [N, D]`` (an ``ImageClassifier``)."""
    if not hasattr(model, "features"):
        raise UsageError("text feature visualization needs an ImageClassifier (a model with features(pixels))")
    if len(images) == 0:
        raise UsageError("no images to read the neurons' directions on: pass at least one reference image")
    device = next(model.parameters()).device
    total = None
    for start in range(0, len(images), batch_size):
        part = _contributions(model, space, as_pixels(images[start:start + batch_size]).to(device))
        total = part if total is None else total + part
    return total / len(images)


def word_embeddings(clip_model: nn.Module, tokenizer: Callable[[list[str]], Tensor], words: Sequence[str],
                    templates: Sequence[str] = ("{}",)) -> Tensor:
    """[V, D]: each word's L2-normalised text embedding (averaged over ``templates``)."""
    return zeroshot_class_embeddings(clip_model, tokenizer, list(words), list(templates)).cpu()


def text_side_scores(directions: Tensor, embeddings: Tensor) -> Tensor:
    """[V, U]: cosine between each unit's direction (``directions`` [U, D]) and each word (``embeddings`` [V, D])."""
    if directions.shape[1] != embeddings.shape[1]:
        raise UsageError(f"neuron directions have {directions.shape[1]} dimensions, word embeddings "
                         f"{embeddings.shape[1]}: use the text tower of the same model")
    return F.normalize(embeddings.float(), dim=1) @ F.normalize(directions.float(), dim=1).T


def top_words(scores: Tensor, words: Sequence[str], unit: int, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` best words of ``unit`` under ``scores`` [V, U], best first, with their scores."""
    order = torch.argsort(scores[:, unit], descending=True)[:k]
    return [(words[int(i)], float(scores[i, unit])) for i in order]


def _ranks(values: Tensor) -> Tensor:
    """[V, U] -> the rank of each value within its column (0 = lowest; ties broken by order)."""
    return torch.argsort(torch.argsort(values, dim=0), dim=0).float()


@dataclass
class Agreement:
    """Per unit [U]: ``spearman`` rank correlation of the two word scores over the vocabulary, ``overlap``
    the fraction of the text side's top ``k`` words that are also in the pixel side's top ``k``."""

    spearman: Tensor
    overlap: Tensor
    k: int


def agreement(text_side: Tensor, pixel_side: Tensor, k: int = 10) -> Agreement:
    """How far each unit's text-side ranking ([V, U]) agrees with its pixel-side ranking ([V, U]: the cards'
    written-word responses, e.g. ``text_z(word_activations(...))``) over the same V words."""
    if text_side.shape != pixel_side.shape:
        raise UsageError(f"text-side scores {tuple(text_side.shape)} and pixel-side scores {tuple(pixel_side.shape)} "
                         "must cover the same words and units")
    k = min(k, text_side.shape[0])
    a = _ranks(text_side)
    b = _ranks(pixel_side)
    a, b = a - a.mean(0), b - b.mean(0)
    spearman = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-12)
    top_a = torch.topk(text_side, k, dim=0).indices
    top_b = torch.topk(pixel_side, k, dim=0).indices
    overlap = torch.tensor([len(set(top_a[:, u].tolist()) & set(top_b[:, u].tolist())) / k
                            for u in range(text_side.shape[1])])
    return Agreement(spearman, overlap, k)
