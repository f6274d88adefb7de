"""How far a feature visualization excites its neuron beyond natural images.

For each neuron, the *channel* objective (the unit averaged over positions: the activation the neurons
analysis reads) is visualised, and its value on the final image is divided by the ``q``-th percentile
(default 99.9) of the same activation over natural images. A ratio above 1 means the visualization drives
the unit further than (almost) any natural image does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.neurons.featurevis.layers import layer_space
from typobench.neurons.featurevis.objectives import channel
from typobench.neurons.featurevis.optimise import Settings, visualize
from typobench.models.units import parse_neuron, unit_activations


@dataclass
class Excitation:
    """``ratio`` = ``visualized`` (the FV's activation) / ``natural`` (the q-th percentile on natural images)."""

    neuron: str
    visualized: float
    natural: float
    percentile: float
    ratio: float


def natural_percentiles(model: nn.Module, neurons: Sequence[str], images: Tensor, q: float = 99.9,
                        batch_size: int = 64) -> Tensor:
    """[len(neurons)]: the ``q``-th percentile of each neuron's activation (averaged over positions) over
    ``images`` [N, 3, S, S]."""
    if not 0 < q <= 100:
        raise UsageError(f"percentile must be in (0, 100], got {q}")
    space = layer_space(model, [parse_neuron(n)[0] for n in neurons])
    acts, _ = unit_activations(model, space, images, batch_size=batch_size)
    columns = acts[:, [space.index(n) for n in neurons]]
    return torch.quantile(columns, q / 100.0, dim=0)


def excitation_ratios(model: nn.Module, neurons: Sequence[str], natural_images: Tensor,
                      settings: Settings = Settings(), q: float = 99.9) -> list[Excitation]:
    """One :class:`Excitation` per neuron (``layer:index``), each visualised with ``settings``."""
    natural = natural_percentiles(model, neurons, natural_images, q)
    out = []
    for name, level in zip(neurons, natural.tolist()):
        value = float(visualize(model, channel(name), settings).final.max())
        out.append(Excitation(name, value, level, q, value / level if level > 0 else float("inf")))
    return out


def summary(excitations: Sequence[Excitation]) -> dict:
    """The median ratio, the share of neurons at or above 2x, and every row."""
    ratios = torch.tensor([e.ratio for e in excitations])
    return {"neurons": len(excitations), "median_ratio": float(ratios.median()) if len(ratios) else float("nan"),
            "share_at_least_2x": float((ratios >= 2).float().mean()) if len(ratios) else float("nan"),
            "rows": [asdict(e) for e in excitations]}
