"""Every layer a feature visualization can read, named as the neurons analysis names them.

The analysed layers come from :func:`typobench.models.units.find_layers` (``layer4``; the MLP hidden units
``resblocks.{i}.mlp`` of every ViT block). A ResNet's lower stages ``layer1``..``layer3`` are added under their
module names, with the same kind, so that facets can be fitted below the analysed layer.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from typobench.core.errors import UsageError
from typobench.models.units import NeuronLayer, NeuronSpace, conv_channels, find_layers, image_tower

RESNET_STAGES = ("layer1", "layer2", "layer3")


def tower_layers(model: nn.Module) -> dict[str, NeuronLayer]:
    """``{name: layer}``, lowest first: ResNet ``layer1``..``layer4``; ViT ``resblocks.{i}.mlp`` of every block."""
    visual = image_tower(model)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    analysed = find_layers(model, vit_blocks=len(blocks) if blocks is not None else 1)
    layers: dict[str, NeuronLayer] = {}
    if all(hasattr(visual, name) for name in RESNET_STAGES):  # a ResNet tower: its earlier stages too
        paths = {module: path for path, module in model.named_modules()}
        for name in RESNET_STAGES:
            stage = getattr(visual, name)
            layers[name] = NeuronLayer(name, paths[stage], stage, "resnet-channel", conv_channels(stage), 1)
    layers.update((layer.name, layer) for layer in analysed.layers)
    return layers


def layer_space(model: nn.Module, names: Iterable[str]) -> NeuronSpace:
    """The named layers as one :class:`NeuronSpace` (what :func:`~typobench.models.units.capture` records)."""
    layers = tower_layers(model)
    chosen = []
    for name in dict.fromkeys(names):
        if name not in layers:
            raise UsageError(f"layer '{name}' is not in this tower: use one of {', '.join(layers)}")
        chosen.append(layers[name])
    return NeuronSpace(chosen)


def facet_layer(model: nn.Module) -> str:
    """The default layer a facet is fitted on: one below the analysed layer (``layer3``; the second-to-last
    ViT block, or the only one)."""
    names = list(tower_layers(model))
    return names[-2] if len(names) > 1 else names[-1]


def input_side(model: nn.Module) -> int:
    """The tower's input side in pixels (square inputs)."""
    size = getattr(image_tower(model), "image_size", None)
    if size is None:
        raise UsageError("the image tower has no image_size: pass size= explicitly")
    return int(size[0] if isinstance(size, (tuple, list)) else size)
