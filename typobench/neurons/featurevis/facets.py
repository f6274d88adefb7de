"""Faceted feature visualization (Goh et al. 2021, appendix "Faceted Feature Visualization").

A *facet* is a logistic regression fitted on a lower layer's activations (averaged over positions) to
tell a facet image set from other images: here the **text facet**, photos with a word written on them
(typobench's own renderer) against the same photos clean, so that the only difference the regression can
use is the writing. Its weight vector w [U] (facet minus other) then steers a visualization: the faceted
objective is

    objective(x) + strength * sum over units u of  w[u] * attribution[u](x),
    attribution[u](x) = sum over positions p of  h[u, p] * d objective(x) / d h[u, p]

(h the facet layer's output), which rewards exciting the neuron *through* the facet's features. The
attribution is differentiated again by the optimiser (``create_graph``). The regression is
:func:`typobench.heads.linear_probe.fit_logistic_regression`, which L2-normalises the activations: w is
a direction in the layer's activation space, which is all the objective needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.heads.linear_probe import fit_logistic_regression, predict
from typobench.neurons.cards.card import DEFAULT_WORDS, WORD_FONT, renderable
from typobench.neurons.featurevis.layers import facet_layer, layer_space
from typobench.neurons.featurevis.objectives import Captured, Objective
from typobench.models.units import unit_activations
from typobench.typographic import TextStyle, build_canvas, composite, render_patch

WRITING_STYLES = (("black", "white"), ("white", "black"))  # (ink, sticker), alternated over the photos


@dataclass
class Facet:
    """``weight`` [U]: the regression's direction (facet minus other) on ``layer``; ``accuracy``: on the
    images it was fitted on; ``counts``: (facet images, other images)."""

    name: str
    layer: str
    weight: Tensor
    accuracy: float
    counts: tuple[int, int]

    def describe(self) -> dict:
        return {"name": self.name, "layer": self.layer, "units": int(self.weight.numel()),
                "train_accuracy": self.accuracy, "facet_images": self.counts[0], "other_images": self.counts[1]}


def written_on(photos: Tensor, words: Sequence[str], seed: int = 0) -> Tensor:
    """[N, 3, S, S] in [0,1]: photo i with ``words[i % len(words)]`` written on a sticker (20% of the side,
    black on white or white on black, alternating) at a seeded random position inside the image."""
    words, _ = renderable(words)
    if not words:
        raise UsageError("no word the card font can draw: pass words made of ordinary letters")
    side = int(photos.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    placements = []
    for i in range(len(photos)):
        ink, sticker = WRITING_STYLES[i % len(WRITING_STYLES)]
        patch = render_patch(TextStyle(words[i % len(words)], font=WORD_FONT, size=0.2, fill=ink, box=sticker), side)
        h, w = int(patch.shape[1]), int(patch.shape[2])
        x = int(torch.randint(max(1, side - w + 1), (1,), generator=generator))
        y = int(torch.randint(max(1, side - h + 1), (1,), generator=generator))
        placements.append([(patch, (x, y))])
    canvas = build_canvas(placements, (side, int(photos.shape[-2])))
    return composite(photos.float(), canvas)


def fit_facet(model: nn.Module, layer: str, facet_images: Tensor, other_images: Tensor, *, name: str,
              weight_decay: float = 1e-4, batch_size: int = 64) -> Facet:
    """Fit the facet's logistic regression on ``layer``'s activations (averaged over positions) of
    ``facet_images`` [N1, 3, S, S] (label 1) and ``other_images`` [N0, 3, S, S] (label 0)."""
    if len(facet_images) < 2 or len(other_images) < 2:
        raise UsageError(f"facet '{name}' needs at least 2 images of each set, got {len(facet_images)} and {len(other_images)}")
    space = layer_space(model, [layer])
    facet_acts, _ = unit_activations(model, space, facet_images, batch_size=batch_size)
    other_acts, _ = unit_activations(model, space, other_images, batch_size=batch_size)
    features = torch.cat([facet_acts, other_acts])
    labels = torch.cat([torch.ones(len(facet_acts)), torch.zeros(len(other_acts))]).long()
    weight, bias = fit_logistic_regression(features, labels, 2, weight_decay)
    predicted = predict(features, torch.arange(len(features)), weight, bias)
    accuracy = float((predicted == labels).float().mean())
    return Facet(name, layer, (weight[1] - weight[0]).detach(), accuracy, (len(facet_acts), len(other_acts)))


def text_facet(model: nn.Module, photos: Tensor, words: Sequence[str] = DEFAULT_WORDS, *,
               layer: str | None = None, seed: int = 0) -> Facet:
    """The text facet: ``photos`` [N, 3, S, S] with words written on them against the same photos clean,
    on ``layer`` (default: one below the analysed layer, :func:`~.layers.facet_layer`)."""
    return fit_facet(model, layer or facet_layer(model), written_on(photos, words, seed), photos, name="text")


def facet_attribution(objective: Objective, layer: str, captured: Captured) -> Tensor:
    """[B, U]: gradient x activation of ``objective`` over ``layer``'s units, summed over positions,
    differentiable (for the optimiser)."""
    output = captured.outputs[layer]
    score = objective(captured)
    grad, = torch.autograd.grad(score.sum(), output, create_graph=True)
    return captured.layers[layer].per_position(output * grad).sum(1)


def faceted(objective: Objective, facet: Facet, strength: float = 1.0) -> Objective:
    """``objective + strength * (facet weights . attribution over the facet layer)`` (module docstring)."""

    def score(c: Captured) -> Tensor:
        attribution = facet_attribution(objective, facet.layer, c)
        return objective(c) + strength * attribution @ facet.weight.to(attribution.device, attribution.dtype)

    layers = tuple(dict.fromkeys(objective.layers + (facet.layer,)))
    return Objective(score, layers, f"{objective.name} through the {facet.name} facet ({strength:g})")
