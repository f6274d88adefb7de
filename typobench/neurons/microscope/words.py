"""The microscope's word views of neurons: what a neuron *reads* (pixel side) and *means* (text side).

Over one vocabulary, the one the neuron cards draw (:func:`~typobench.neurons.cards.card.vocabulary`: the data
set's class names, then the analysis's word list; only words the card font can draw):

* pixel side ``pixel`` [V, U]: the cards' written-word facet, z_txt (:func:`~typobench.neurons.cards.card.text_z`
  of each unit's response to each word rendered alone, :func:`~typobench.neurons.cards.card.word_activations`);
* text side ``text`` [V, U]: the cosine between each unit's direction in the joint space (its mean
  contribution to the raw image embedding over reference images,
  :func:`~typobench.neurons.featurevis.textvis.neuron_directions`) and each word's text embedding (the
  model's text tower, ``{}`` template);
* agreement of the two columns of a unit over the V words: Spearman rank correlation and the overlap of
  the two top-k lists (:func:`~typobench.neurons.featurevis.textvis.agreement`).

The class a unit **reads** (:meth:`WordViews.reads`) is the class whose *written name* excites it most on
the pixel side: the highest z_txt among the class names (the cards' top written class word).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from typobench.models.units import NeuronSpace
from typobench.neurons.cards.card import renderable, text_z, vocabulary, word_activations
from typobench.neurons.featurevis.textvis import (agreement, neuron_directions, text_side_scores, top_words,
                                                  word_embeddings)


@dataclass
class WordViews:
    """``words`` [V]; ``pixel``, ``text`` [V, U] over every unit of the space; ``class_word`` [C]: each
    class name's row in ``words`` (-1: the font cannot draw it)."""

    words: list[str]
    pixel: Tensor
    text: Tensor
    class_word: list[int]

    def reads(self, unit: int, classnames: Sequence[str]) -> tuple[str | None, float | None]:
        """(the class whose written name has the highest pixel-side z for ``unit``, that z); (None, None)
        when no class name can be drawn."""
        drawable = [(c, row) for c, row in enumerate(self.class_word) if row >= 0]
        if not drawable:
            return None, None
        c, row = max(drawable, key=lambda pair: float(self.pixel[pair[1], unit]))
        return classnames[c], float(self.pixel[row, unit])

    def agreement(self, units: Sequence[int], k: int) -> list[dict]:
        """Per unit: ``{"spearman", "overlap", "k"}`` between its text-side and pixel-side word rankings."""
        if not units:
            return []
        index = list(units)
        found = agreement(self.text[:, index], self.pixel[:, index], k)
        return [{"spearman": float(found.spearman[i]), "overlap": float(found.overlap[i]), "k": found.k}
                for i in range(len(index))]

    def top(self, unit: int, k: int) -> tuple[list[list], list[list]]:
        """(text-side words, pixel-side words) of ``unit``, ``k`` each, best first, as ``[word, score]``."""
        text = [[w, s] for w, s in top_words(self.text, self.words, unit, k)]
        pixel = [[w, s] for w, s in top_words(self.pixel, self.words, unit, k)]
        return text, pixel


def word_views(model: nn.Module, space: NeuronSpace, clip_model: nn.Module, tokenizer: Callable[[list[str]], Tensor],
               classnames: Sequence[str], vocab_words: Sequence[str], side: int, direction_images: Tensor, *,
               batch_size: int = 64) -> WordViews:
    """Both word views of every unit of ``space`` (module docstring); ``direction_images`` [N, 3, S, S]:
    the images the units' directions are averaged over."""
    words, _ = renderable(vocabulary(classnames, vocab_words))
    lowered = {w.lower(): i for i, w in enumerate(words)}
    class_word = [lowered.get(c.strip().lower(), -1) for c in classnames]
    pixel = text_z(word_activations(model, space, words, side, batch_size=batch_size))
    directions = neuron_directions(model, space, direction_images, batch_size=min(batch_size, 32))
    text = text_side_scores(directions, word_embeddings(clip_model, tokenizer, words))
    return WordViews(words, pixel, text, class_word)


def random_units(space: NeuronSpace, exclude: Sequence[int], count: int, seed: int) -> list[int]:
    """``count`` units of ``space`` drawn at random (seeded) among those not in ``exclude``, in draw order."""
    excluded = set(int(u) for u in exclude)
    order = torch.randperm(space.total, generator=torch.Generator().manual_seed(seed)).tolist()
    return [u for u in order if u not in excluded][:count]


__all__ = ["WordViews", "random_units", "word_views"]
