"""Cards of the blamed attention heads: the neuron card (written-word facet, multimodal test) applied to
the head, with its dataset examples chosen along its main text direction and its TextSpan text directions.

* Written words: the cards' text facet (:func:`typobench.neurons.cards.card.word_activations`) with a head's
  activation, the norm of its output vector averaged over tokens.
* Text directions (Gandelsman et al.'s TextSpan): over the clean reference images, the head's direct
  contributions to the image embedding C [n, D] (centred over images) and a text pool (the class names
  and the vocabulary words, as normalised text embeddings T [V, D]). Greedily, pick the text t whose
  direction explains most of C's variance (``|C t|^2 / |C|^2``), then project t out of C and out of
  every text of the pool (renormalised), and repeat k = 5 times. Each pick is reported with the share
  of the head's variance it explained when picked.
* Dataset examples: the reference images with the largest direct contribution along the *first* text
  direction (``c_i . t_1``), i.e. the images on which the head writes its main text most strongly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.models.attention_heads import headwise_attention
from typobench.models.units import NeuronSpace
from typobench.neurons.cards.blamed import draw_cards
from typobench.neurons.cards.card import vocabulary
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.reference import Reference

TEXT_SPANS = 5
TOP_IMAGES_BY = "the head's direct contribution along its first TextSpan text direction (c_i . t_1)"


def text_spans(contributions: Tensor, texts: Tensor, k: int = TEXT_SPANS) -> list[tuple[int, float]]:
    """TextSpan's greedy text directions of one head: ``contributions`` [n, D], ``texts`` [V, D] -> up to
    ``k`` (text index, share of the head's total variance explained when picked), best first."""
    if contributions.shape[-1] != texts.shape[-1]:
        raise UsageError(f"head contributions have {contributions.shape[-1]} dimensions, text embeddings "
                         f"{texts.shape[-1]}: use the text tower of the same model")
    c = contributions.double() - contributions.double().mean(0)
    total = float(c.pow(2).sum())
    pool = F.normalize(texts.double(), dim=1)
    alive = pool.norm(dim=1) > 0.5
    picks: list[tuple[int, float]] = []
    for _ in range(min(k, len(pool))):
        explained = (c @ pool.T).pow(2).sum(0)
        explained[~alive] = -1.0
        best = int(explained.argmax())
        if explained[best] < 0:
            break
        picks.append((best, float(explained[best]) / total if total > 0 else 0.0))
        u = pool[best].clone()
        c = c - (c @ u).unsqueeze(1) * u
        residue = pool - (pool @ u).unsqueeze(1) * u
        alive &= residue.norm(dim=1) > 1e-6  # a text inside the span already picked has nothing left to say
        alive[best] = False
        pool = F.normalize(residue, dim=1)
    return picks


def draw_head_cards(config: NeuronsConfig, model: nn.Module, space: NeuronSpace, reference: Reference,
                    contributions: Tensor, classnames: list[str], side: int, analyses: list[dict[str, Any]],
                    vocab_words: list[str], embed_texts: Callable[[list[str]], Tensor],
                    log: Callable[[str], None], n_images: int = 6) -> dict[str, Any]:
    """The cards of the heads the scopes blamed (see :func:`typobench.neurons.cards.blamed.draw_cards`),
    each with ``text_directions`` and its dataset examples along the first one. ``contributions``
    [n, U, D]: the heads' direct contributions on the reference images."""
    with headwise_attention(model, space):
        cards = draw_cards(config, model, space, reference, classnames, side, analyses, vocab_words, log)
    pool = vocabulary(classnames, vocab_words)
    texts = embed_texts(pool).float().cpu() if cards["neurons"] else torch.zeros(0, contributions.shape[-1])
    for fact, fact_dict, unit in cards["_render"]["facts"]:
        spans = text_spans(contributions[:, unit], texts)
        if spans:
            along = contributions[:, unit].double() @ F.normalize(texts[spans[0][0]].double(), dim=0)
            top = torch.argsort(along, descending=True, stable=True)[:n_images]
            fact.top_images = [int(i) for i in top]
            fact.top_image_acts = [float(along[i]) for i in top]
        fact_dict.update(top_images=fact.top_images, top_image_acts=fact.top_image_acts,
                         text_directions=[{"text": pool[i], "explained_variance": share} for i, share in spans])
    return {**cards, "top_images_by": TOP_IMAGES_BY, "text_pool": len(pool), "text_spans": TEXT_SPANS}


__all__ = ["TEXT_SPANS", "TOP_IMAGES_BY", "draw_head_cards", "text_spans"]
