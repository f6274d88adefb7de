"""Feature visualizations of named neurons, one image per neuron, optimised together in one batch.

Each neuron's objective is its *channel* (the unit averaged over positions: the activation the neurons
analysis blames and ablates); with a facet, the faceted objective
(:func:`~typobench.neurons.featurevis.facets.faceted`). The neurons share one batch: image i is scored by
neuron i (:func:`~typobench.neurons.featurevis.objectives.per_image`); the images do not interact (the
model is in eval mode, Adam updates each parameter on its own), but the random transformations are drawn
for the whole batch, so an image depends on the seed *and* on the list of neurons it was made with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.models.units import parse_neuron
from typobench.neurons.featurevis.facets import Facet, faceted
from typobench.neurons.featurevis.layers import tower_layers
from typobench.neurons.featurevis.objectives import Objective, channel, per_image
from typobench.neurons.featurevis.optimise import Settings, objective_values, visualize


@dataclass
class NeuronImages:
    """``images`` [K, 3, S, S] in [0, 1], image i for ``neurons[i]``; ``activations`` [K]: each neuron's
    channel activation on its own final image (untransformed); ``history`` [steps]: the batch-mean
    objective during the optimisation; ``objective``: how it prints."""

    neurons: list[str]
    images: Tensor
    activations: Tensor
    history: list[float]
    objective: str


def check_neurons(model: nn.Module, neurons: Sequence[str]) -> list[str]:
    """The names, checked: ``layer:index`` of a layer of this tower, index inside it, no name twice."""
    layers = tower_layers(model)
    names = list(neurons)
    if not names:
        raise UsageError("no neuron to visualise: name at least one, e.g. layer4:12")
    if len(set(names)) != len(names):
        raise UsageError(f"a neuron is named twice in {', '.join(names)}: name each once")
    for name in names:
        layer, index = parse_neuron(name)
        if layer not in layers:
            raise UsageError(f"neuron '{name}': layer '{layer}' is not in this tower: use one of {', '.join(layers)}")
        if not 0 <= index < layers[layer].units:
            raise UsageError(f"neuron '{name}': {layer} has {layers[layer].units} units (0..{layers[layer].units - 1})")
    return names


def channels(neurons: Sequence[str]) -> Objective:
    """Image i scored by neuron i's channel objective."""
    return per_image([channel(name) for name in neurons])


def visualize_neurons(model: nn.Module, neurons: Sequence[str], settings: Settings, facet: Facet | None = None,
                      strength: float = 1.0) -> NeuronImages:
    """One feature visualization per neuron (``settings.batch`` is replaced by the number of neurons),
    through ``facet`` with ``strength`` when given."""
    names = check_neurons(model, neurons)
    plain = channels(names)
    objective = faceted(plain, facet, strength) if facet is not None else plain
    result = visualize(model, objective, replace(settings, batch=len(names)))
    return NeuronImages(names, result.images, objective_values(model, plain, result.images), result.history, objective.name)


@torch.no_grad()
def class_probabilities(model: nn.Module, images: Tensor) -> Tensor:
    """[B, C]: the classifier's softmax over its classes for ``images`` [B, 3, S, S] in [0, 1]."""
    device = next(model.parameters()).device
    return torch.softmax(model(images.to(device)).float(), dim=1).cpu()


__all__ = ["NeuronImages", "channels", "check_neurons", "class_probabilities", "visualize_neurons"]
