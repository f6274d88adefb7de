"""Which neurons, and how to read and edit them: layer selection, activation capture, ablation hooks.

Neurons are the units of one or more *layers* of the image tower:

* open_clip ``ModifiedResNet`` (RN50, RN50x4, ..., ``tiny-rn``, ``toyclip``): the channels of the last
  residual stage's output, ``visual.layer4`` (before attention pooling) -- the layer Goh et al. (2021)
  studied. A channel's *positions* are its H x W spatial cells.
* open_clip ``VisionTransformer``: the hidden units of the MLP of the last ``vit_blocks`` transformer
  blocks (default 1: only the last block), read after the activation (the output of ``mlp.gelu``, the
  input of ``mlp.c_proj``). A unit's *positions* are the tokens (class token included). The last
  block is the ViT counterpart of ``layer4``: the last place where per-unit nonlinear features exist
  before the pooled embedding is formed.

* Attention heads of a ViT (:mod:`typobench.models.attention_heads`): a unit is one head's output, a
  ``d_head`` vector per token (``unit_size`` > 1); its scalar activation is that vector's L2 norm.

A neuron is named ``layer:index`` everywhere, e.g. ``layer4:517`` or ``resblocks.11.mlp:2047``.
Several layers form a :class:`NeuronSpace`, which numbers all their units with one global index
(layer order, then unit order) so that baselines can draw from every unit at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError


@dataclass(frozen=True)
class NeuronLayer:
    """One hooked module. ``module`` outputs the units: [N, C, H, W] (``unit_dim`` 1, ResNet) or
    [N, L, D] / [L, N, D] (``unit_dim`` -1, ViT; ``batch_dim`` says which), or vector units
    [N, L, U, unit_size] (``unit_dim`` 2, attention heads: the vector is the last dimension)."""

    name: str
    module_path: str
    module: nn.Module
    kind: str
    units: int
    unit_dim: int
    batch_dim: int = 0
    block: int | None = None
    unit_size: int = 1

    def _positions(self, output: Tensor) -> Tensor:
        """Scalar units' [N, C, H, W] / [N, L, U] / [L, N, U] as [N, P, U]."""
        if self.unit_dim == 1:
            return output.flatten(2).transpose(1, 2)
        if self.batch_dim != 0:
            output = output.transpose(0, 1)
        return output.reshape(output.shape[0], -1, output.shape[-1])

    def per_position(self, output: Tensor) -> Tensor:
        """The module's output as [N, P, U]: batch, positions, units (a vector unit: its L2 norm)."""
        return self._positions(output.norm(dim=-1) if self.unit_size > 1 else output)

    def grad_times_act(self, output: Tensor, grad: Tensor) -> Tensor:
        """[N, U]: sum over positions (and a vector unit's components) of activation x gradient."""
        if self.unit_size > 1:
            return self._positions((output * grad).sum(-1)).sum(1)
        return (self.per_position(output) * self.per_position(grad)).sum(1)

    def unit_shape(self, output: Tensor) -> list[int]:
        """A shape that broadcasts a [U] vector along the unit dimension of ``output``."""
        shape = [1] * output.dim()
        shape[self.unit_dim] = output.shape[self.unit_dim]
        return shape

    def describe(self) -> dict:
        out = {"name": self.name, "module": self.module_path, "kind": self.kind, "units": self.units}
        return out if self.unit_size == 1 else {**out, "unit_size": self.unit_size}


def neuron_name(layer: str, index: int) -> str:
    return f"{layer}:{int(index)}"


def parse_neuron(name: str) -> tuple[str, int]:
    layer, sep, index = name.rpartition(":")
    if not sep or not layer or not index.isdigit():
        raise UsageError(f"neuron '{name}' is not LAYER:INDEX (e.g. layer4:12)")
    return layer, int(index)


class NeuronSpace:
    """The units of some layers under one global index: ``names[i]`` is ``layer:index``."""

    def __init__(self, layers: Sequence[NeuronLayer]):
        if not layers:
            raise UsageError("no neuron layers selected")
        self.layers = list(layers)
        self.offsets = []
        total = 0
        for layer in self.layers:
            self.offsets.append(total)
            total += layer.units
        self.total = total
        self.names = [neuron_name(layer.name, i) for layer in self.layers for i in range(layer.units)]
        self._index = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return self.total

    def index(self, name: str) -> int:
        if name not in self._index:
            parse_neuron(name)
            raise UsageError(f"neuron '{name}' is not in layers {', '.join(l.name for l in self.layers)}")
        return self._index[name]

    def locate(self, global_index: int) -> tuple[NeuronLayer, int]:
        for layer, offset in zip(self.layers, self.offsets):
            if offset <= global_index < offset + layer.units:
                return layer, global_index - offset
        raise IndexError(global_index)

    def split(self, indices: Sequence[int]) -> dict[str, list[int]]:
        """Global indices -> ``{layer name: local indices}``."""
        out: dict[str, list[int]] = {layer.name: [] for layer in self.layers}
        for g in indices:
            layer, local = self.locate(int(g))
            out[layer.name].append(local)
        return out

    def describe(self) -> list[dict]:
        return [layer.describe() for layer in self.layers]


def image_tower(model: nn.Module) -> nn.Module:
    """``visual`` of an ImageClassifier / CLIP model, or the module itself if it is the tower."""
    model = getattr(model, "clip_model", model)
    return getattr(model, "visual", model)


def path_of(root: nn.Module, target: nn.Module) -> str:
    """``target``'s dotted name under ``root`` ('?' when it is not there)."""
    for name, module in root.named_modules():
        if module is target:
            return name
    return "?"


def find_layers(model: nn.Module, vit_blocks: int = 1) -> NeuronSpace:
    """The neuron layers of ``model``'s image tower (see the module docstring)."""
    if vit_blocks < 1:
        raise UsageError(f"--vit-blocks must be >= 1, got {vit_blocks}")
    visual = image_tower(model)
    if isinstance(getattr(visual, "layer4", None), nn.Module):
        layer4 = visual.layer4
        units = conv_channels(layer4)
        return NeuronSpace([NeuronLayer("layer4", path_of(model, layer4), layer4, "resnet-channel", units, 1)])
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is not None and len(blocks) and hasattr(blocks[-1], "mlp"):
        batch_first = bool(getattr(visual.transformer, "batch_first", True))
        count = min(vit_blocks, len(blocks))
        layers = []
        for i in range(len(blocks) - count, len(blocks)):
            mlp = blocks[i].mlp
            act = getattr(mlp, "gelu", None) or mlp[1]
            units = mlp.c_fc.out_features if hasattr(mlp, "c_fc") else mlp[0].out_features
            layers.append(NeuronLayer(f"resblocks.{i}.mlp", path_of(model, act), act, "vit-mlp-hidden", units, -1,
                                      0 if batch_first else 1, block=i))
        return NeuronSpace(layers)
    raise UsageError(f"the image tower is a {type(visual).__name__}: neurons supports open_clip ModifiedResNet "
                     "(layer4 channels) and VisionTransformer (last-block MLP units) towers")


def conv_channels(layer: nn.Module) -> int:
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    # The stage's output width: the last bottleneck's expansion conv (``conv3``) sets it.
    last = getattr(layer[-1], "conv3", None) if isinstance(layer, nn.Sequential) else None
    return int((last or convs[-1]).out_channels)


@contextmanager
def _forward_hooks(hooks: Iterable[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Register ``(module, hook)`` forward hooks for the block; removed on exit, whatever happens inside."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def capture(space: NeuronSpace) -> Iterator[dict[str, Tensor]]:
    """Record each layer's output (graph kept) in the yielded dict, keyed by layer name."""
    store: dict[str, Tensor] = {}

    def hook_for(layer: NeuronLayer):
        def hook(module, inputs, output):
            store[layer.name] = output
        return hook

    with _forward_hooks((layer.module, hook_for(layer)) for layer in space.layers):
        yield store


def edits(space: NeuronSpace, indices: Sequence[int], values: Tensor | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """``{layer name: (keep [U], fill [U] or [U, unit_size])}`` for the layers that have chosen units: an
    edited output is ``output * keep + fill * (1 - keep)`` (keep 0 on the chosen units; fill 0, or their
    ``values``: [total], or [total, unit_size] for vector units such as attention heads)."""
    per_layer = space.split(indices)
    out = {}
    for layer, offset in zip(space.layers, space.offsets):
        local = per_layer[layer.name]
        if not local:
            continue
        keep = torch.ones(layer.units)
        keep[local] = 0.0
        fill = torch.zeros(layer.units, *(values.shape[1:] if values is not None else ()))
        if values is not None:
            fill[local] = values[offset:offset + layer.units][local].float().cpu()
        out[layer.name] = (keep, fill)
    return out


def apply_edit(layer: NeuronLayer, output: Tensor, keep: Tensor, fill: Tensor) -> Tensor:
    shape = layer.unit_shape(output)
    k = keep.to(output.device, output.dtype).view(shape)
    # A vector unit's fill [U, unit_size] runs along the output's last dimension.
    f = fill.to(output.device, output.dtype).view(shape if fill.dim() == 1 else [*shape[:-1], fill.shape[-1]])
    return output * k + f * (1 - k)


@contextmanager
def ablate(space: NeuronSpace, indices: Sequence[int], values: Tensor | None = None) -> Iterator[None]:
    """Replace the chosen units (global indices) at every position by 0, or by ``values[g]`` ([total], or
    [total, unit_size] for vector units).

    The hooks are removed on exit, whatever happens inside the block.
    """
    by_name = {layer.name: layer for layer in space.layers}

    def hook_for(layer: NeuronLayer, keep: Tensor, fill: Tensor):
        def hook(module, inputs, output):
            return apply_edit(layer, output, keep, fill)
        return hook

    chosen = edits(space, indices, values).items()
    with _forward_hooks((by_name[name].module, hook_for(by_name[name], keep, fill)) for name, (keep, fill) in chosen):
        yield


def mean_over_positions(space: NeuronSpace, outputs: Mapping[str, Tensor]) -> Tensor:
    """[N, total]: every unit's activation averaged over its positions."""
    return torch.cat([layer.per_position(outputs[layer.name]).float().mean(1) for layer in space.layers], dim=1)


def as_pixels(images: Tensor) -> Tensor:
    """Float [0,1] pixels; uint8 images (a lossless store of decoded 8-bit images) are divided by 255.
    Float64 stays float64 (exact checks on a double model); other floats become float32."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images if images.dtype == torch.float64 else images.float()


@torch.no_grad()
def unit_activations(model: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 64) -> tuple[Tensor, Tensor]:
    """(activations [N, total] averaged over positions, logits [N, C]) in fp32, on CPU."""
    acts, logits = [], []
    device = next(model.parameters()).device
    for start in range(0, len(images), batch_size):
        chunk = as_pixels(images[start:start + batch_size]).to(device)
        with capture(space) as store:
            out = model(chunk).float()
        acts.append(mean_over_positions(space, store).cpu())
        logits.append(out.cpu())
    if not acts:
        return torch.zeros(0, space.total), torch.zeros(0, 0)
    return torch.cat(acts), torch.cat(logits)


__all__ = [
    "NeuronLayer",
    "NeuronSpace",
    "ablate",
    "apply_edit",
    "as_pixels",
    "capture",
    "edits",
    "find_layers",
    "image_tower",
    "mean_over_positions",
    "neuron_name",
    "parse_neuron",
    "path_of",
    "unit_activations",
]
