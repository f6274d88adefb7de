"""What a feature visualization maximises: functions of the captured layer outputs, one value per image.

An :class:`Objective` maps the captured outputs of a batch to scores [B] (higher is better) and names
the layers it reads. Objectives add, subtract and scale (``neuron("layer4:3") - 0.5 * channel("layer4:9")``);
the optimiser maximises the batch mean.

* :func:`neuron`: one unit at one position (default: the centre cell of a ResNet map, the centre patch
  token of a ViT; an int indexes the layer's positions, ViT class token = 0);
* :func:`channel`: one unit averaged over all its positions (what the neurons analysis calls its activation);
* :func:`direction`: the projection of the units onto a vector [U], at a position or averaged;
* :func:`diversity`: minus the mean cosine similarity between the images' Gram matrices (Lucid's diversity
  term), which pushes a batch towards different ways of exciting the same objective;
* :func:`per_image`: image i of the batch scored by the i-th objective, to visualise several neurons in one
  batch (the images do not interact: the model is in eval mode and Adam updates each parameter on its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.models.units import NeuronLayer, parse_neuron


@dataclass
class Captured:
    """A batch's layer outputs as the hooks recorded them (graph kept), with the layers that produced them."""

    layers: Mapping[str, NeuronLayer]
    outputs: Mapping[str, Tensor]

    def units(self, name: str) -> Tensor:
        """[B, P, U]: the layer's units per position."""
        return self.layers[name].per_position(self.outputs[name])


@dataclass(frozen=True)
class Objective:
    """``score(captured) -> [B]``; ``layers``: the layer names it reads; ``name``: how it prints."""

    score: Callable[[Captured], Tensor]
    layers: tuple[str, ...]
    name: str

    def __call__(self, captured: Captured) -> Tensor:
        return self.score(captured)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(lambda c: self.score(c) + other.score(c), _union(self, other), f"{self.name} + {other.name}")

    def __sub__(self, other: "Objective") -> "Objective":
        return Objective(lambda c: self.score(c) - other.score(c), _union(self, other), f"{self.name} - {other.name}")

    def __mul__(self, factor: float) -> "Objective":
        factor = float(factor)
        return Objective(lambda c: factor * self.score(c), self.layers, f"{factor:g} * ({self.name})")

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0


def _union(a: Objective, b: Objective) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.layers + b.layers))


def centre_position(layer: NeuronLayer, output: Tensor) -> int:
    """The index (in ``per_position`` order) of the centre cell (ResNet) or centre patch token (ViT)."""
    if layer.unit_dim == 1:
        height, width = output.shape[-2:]
        return (height // 2) * width + width // 2
    tokens = layer.per_position(output).shape[1]
    side = math.isqrt(tokens - 1)
    if side * side != tokens - 1:
        raise UsageError(f"{layer.name} has {tokens} tokens, not a class token and a square grid: pass position=")
    return 1 + (side // 2) * side + side // 2


def _at(captured: Captured, layer: str, position: int | None) -> Tensor:
    """[B, U]: the layer's units at ``position`` (None: the centre)."""
    units = captured.units(layer)
    index = centre_position(captured.layers[layer], captured.outputs[layer]) if position is None else position
    if not -units.shape[1] <= index < units.shape[1]:
        raise UsageError(f"position {index} is outside {layer}'s {units.shape[1]} positions")
    return units[:, index]


def _unit(name: str, captured: Captured) -> tuple[str, int]:
    layer, index = parse_neuron(name)
    units = captured.layers[layer].units
    if index >= units:
        raise UsageError(f"neuron '{name}': {layer} has {units} units (0..{units - 1})")
    return layer, index


def neuron(name: str, position: int | None = None) -> Objective:
    """Unit ``layer:index`` at one position (None: the centre)."""
    layer, _ = parse_neuron(name)

    def score(c: Captured) -> Tensor:
        _, index = _unit(name, c)
        return _at(c, layer, position)[:, index]

    where = "centre" if position is None else f"position {position}"
    return Objective(score, (layer,), f"neuron {name} at {where}")


def channel(name: str) -> Objective:
    """Unit ``layer:index`` averaged over all its positions."""
    layer, _ = parse_neuron(name)

    def score(c: Captured) -> Tensor:
        _, index = _unit(name, c)
        return c.units(layer)[..., index].mean(1)

    return Objective(score, (layer,), f"channel {name}")


def direction(layer: str, vector: Tensor, position: int | None = None, *, averaged: bool = True) -> Objective:
    """The units of ``layer`` projected on ``vector`` [U]: averaged over positions (default), or at
    ``position`` (None with ``averaged=False``: the centre)."""
    vector = vector.detach().float().flatten()

    def score(c: Captured) -> Tensor:
        units = c.units(layer)
        if units.shape[-1] != vector.numel():
            raise UsageError(f"direction has {vector.numel()} values but {layer} has {units.shape[-1]} units")
        v = vector.to(units.device, units.dtype)
        return (units @ v).mean(1) if averaged else _at(c, layer, position) @ v

    return Objective(score, (layer,), f"direction on {layer}")


def diversity(layer: str) -> Objective:
    """Per image: minus its mean cosine similarity with the other images' Gram matrices [U, U] of ``layer``
    (0 for a batch of one). Weight it (``-`` is already applied): ``obj + 0.1 * diversity(layer)``."""

    def score(c: Captured) -> Tensor:
        units = c.units(layer)
        batch = units.shape[0]
        if batch < 2:
            return units.new_zeros(batch)
        gram = F.normalize((units.transpose(1, 2) @ units).flatten(1), dim=1)  # [B, U*U]
        similarity = gram @ gram.T
        others = similarity.sum(1) - similarity.diagonal()
        return -others / (batch - 1)

    return Objective(score, (layer,), f"diversity on {layer}")


def per_image(objectives: Sequence[Objective]) -> Objective:
    """Image i of a batch of ``len(objectives)`` scored by ``objectives[i]`` ([B]); the batch must have that many."""
    if not objectives:
        raise UsageError("no objective given: pass at least one neuron, channel or direction")
    parts = list(objectives)

    def score(c: Captured) -> Tensor:
        rows = [objective(c) for objective in parts]
        if rows[0].shape[0] != len(parts):
            raise UsageError(f"per-image objective of {len(parts)} objectives on a batch of {rows[0].shape[0]} "
                             "images: use a batch of one image per objective")
        return torch.stack([row[i] for i, row in enumerate(rows)])

    layers = tuple(dict.fromkeys(layer for objective in parts for layer in objective.layers))
    return Objective(score, layers, "per image: " + "; ".join(o.name for o in parts))


def sum_of(objectives: list[Objective]) -> Objective:
    """The sum of several objectives (an empty list is a usage error)."""
    if not objectives:
        raise UsageError("no objective given: pass at least one neuron, channel or direction")
    total = objectives[0]
    for other in objectives[1:]:
        total = total + other
    return total
