"""Score a fixed set of images many times under different ablations, cheaply.

An ablation only changes what happens *after* the neuron layer, so the images are run once up to it
(the prefix: ``layer4``'s output for a ResNet; the residual stream entering the MLP and the MLP's
hidden units of the first selected block for a ViT) and every ablation re-runs only the tail:

* ResNet: ``head(visual.attnpool(edited layer4 output))``;
* ViT: ``x_mid + ls_2(c_proj(edited hidden units))``, the later blocks (with their own ablations hooked),
  the tower's pooling and projection, then the head.

The tail is checked against the full model on the first batch (same logits up to float rounding);
on any other model, or if the check fails, every ablation runs the full model with hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from typobench.core.registry import Registry
from typobench.models.units import NeuronLayer, NeuronSpace, ablate, apply_edit, as_pixels, capture, edits, image_tower, mean_over_positions


class _Tail:
    @staticmethod
    def fits(visual: nn.Module, layer: NeuronLayer) -> bool:
        """Whether this tail can run the rest of ``visual`` from ``layer``."""
        raise NotImplementedError

    def __init__(self, model: nn.Module, space: NeuronSpace):
        self.model = model
        self.space = space
        self.visual = image_tower(model)
        self.head = getattr(model, "head", None)

    def prefix(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(full logits, what the tail needs, every unit's activation averaged over positions)."""
        raise NotImplementedError

    def run(self, cache: dict[str, Tensor], units: Sequence[int], values: Tensor | None) -> Tensor:
        raise NotImplementedError


class _ResNetTail(_Tail):
    @staticmethod
    def fits(visual: nn.Module, layer: NeuronLayer) -> bool:
        return hasattr(visual, "attnpool")

    def prefix(self, x):
        with capture(self.space) as store:
            logits = self.model(x)
        return logits, {"layer4": store["layer4"]}, mean_over_positions(self.space, store)

    def run(self, cache, units, values):
        layer = self.space.layers[0]
        out = cache["layer4"]
        edit = edits(self.space, units, values).get(layer.name)
        if edit is not None:
            out = apply_edit(layer, out, *edit)
        return self.head(self.visual.attnpool(out))


class _ViTTail(_Tail):
    @staticmethod
    def fits(visual: nn.Module, layer: NeuronLayer) -> bool:
        return layer.block is not None and hasattr(visual, "_pool")

    def __init__(self, model, space):
        super().__init__(model, space)
        self.first = space.layers[0]
        self.blocks = self.visual.transformer.resblocks
        self.block = self.blocks[self.first.block]
        children = list(self.block.mlp.children())
        self.after_act = children[children.index(self.first.module) + 1:]
        self.batch_first = self.first.batch_dim == 0

    def prefix(self, x):
        store_mid: dict[str, Tensor] = {}
        handle = self.block.ln_2.register_forward_pre_hook(lambda m, inputs: store_mid.__setitem__("x_mid", inputs[0]))
        try:
            with capture(self.space) as store:
                logits = self.model(x)
        finally:
            handle.remove()
        cache = {"x_mid": store_mid["x_mid"], self.first.name: store[self.first.name]}
        return logits, cache, mean_over_positions(self.space, store)

    def run(self, cache, units, values):
        hidden = cache[self.first.name]
        edit = edits(self.space, units, values).get(self.first.name)
        if edit is not None:
            hidden = apply_edit(self.first, hidden, *edit)
        for module in self.after_act:
            hidden = module(hidden)
        x = cache["x_mid"] + self.block.ls_2(hidden)
        with ablate(self.space, units, values):  # later selected blocks edit themselves as they run
            for block in self.blocks[self.first.block + 1:]:
                x = block(x)
        if not self.batch_first:
            x = x.transpose(0, 1)
        pooled, _ = self.visual._pool(x)
        if getattr(self.visual, "proj", None) is not None:
            pooled = pooled @ self.visual.proj
        return self.head(pooled)


# The fast tail of each layer kind (``NeuronLayer.kind``) and what its tower must have for it.
TAILS: Registry[type[_Tail]] = Registry("layer kind with a fast tail")
TAILS.add("resnet-channel", _ResNetTail)
TAILS.add("vit-mlp-hidden", _ViTTail)


def _make_tail(model: nn.Module, space: NeuronSpace) -> _Tail | None:
    """The fast tail for the space's first layer, or None (the full model is run instead)."""
    if getattr(model, "head", None) is None or getattr(model, "clip_model", None) is None:
        return None
    first = space.layers[0]
    tail = TAILS.get(first.kind) if first.kind in TAILS else None
    return tail(model, space) if tail is not None and tail.fits(image_tower(model), first) else None


class Scorer:
    """Logits of fixed ``images`` under any ablation. ``base_logits`` [N, C] and ``acts`` [N, U] (every
    unit averaged over positions) come from the one unedited pass; ``fast`` says whether the tail is used."""

    def __init__(self, model: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 64):
        self.model = model
        self.space = space
        self.images = images
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.tail = _make_tail(model, space)
        self.caches: list[dict[str, Tensor]] = []
        logits, acts = [], []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = as_pixels(images[start:start + batch_size]).to(self.device)
                if self.tail is not None:
                    full, cache, unit_acts = self.tail.prefix(x)
                    if not self.caches and not self._agrees(self.tail.run(cache, (), None), full):
                        self.tail = None
                    else:
                        self.caches.append(cache)
                if self.tail is None:
                    with capture(space) as store:
                        full = model(x)
                    unit_acts = mean_over_positions(space, store)
                acts.append(unit_acts.cpu())
                logits.append(full.float().cpu())
        if self.tail is None:
            self.caches = []
        self.base_logits = torch.cat(logits) if logits else torch.zeros(0, 0)
        self.acts = torch.cat(acts) if acts else torch.zeros(0, space.total)

    @property
    def fast(self) -> bool:
        return self.tail is not None

    @staticmethod
    def _agrees(tail: Tensor, full: Tensor) -> bool:
        scale = float(full.abs().max()) or 1.0
        return tail.shape == full.shape and torch.allclose(tail.float(), full.float(), rtol=1e-4, atol=1e-4 * scale)

    @torch.no_grad()
    def logits(self, units: Sequence[int] = (), values: Tensor | None = None) -> Tensor:
        if not len(units):
            return self.base_logits
        out = []
        if self.tail is not None:
            for cache in self.caches:
                out.append(self.tail.run(cache, units, values).float().cpu())
        else:
            with ablate(self.space, units, values):
                for start in range(0, len(self.images), self.batch_size):
                    x = as_pixels(self.images[start:start + self.batch_size]).to(self.device)
                    out.append(self.model(x).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 0)


__all__ = ["Scorer"]
