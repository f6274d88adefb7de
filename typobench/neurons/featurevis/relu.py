"""Redirected ReLU gradients (Lucid's ``redirected_relu_grad``): dead units still get a gradient to climb.

A unit that is off on the starting image (its ReLU below zero at every position, as most of a small ResNet's
``layer4`` channels are on the near-grey start of a Fourier image) has zero gradient, so the optimiser never
moves it. Lucid's renderer therefore replaces every ReLU's gradient while it optimises: for an image whose
ordinary ReLU gradient is zero everywhere in that ReLU's output, the gradient passes through as if the ReLU
were the identity, except where it would push an input that is already negative further down. Forward
values are unchanged; an image with any ordinary gradient gets exactly the ordinary one.

:func:`redirected_relus` swaps every ``nn.ReLU`` of a model for :class:`RedirectedReLU` inside a ``with``
block (open_clip's ModifiedResNet uses only ``nn.ReLU`` modules; a ViT has none, and is left as it is).
The backward pass is written in differentiable operations, so faceted objectives can differentiate it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class _Redirected(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # ``grad`` is d loss / d output, the loss being minimised: grad > 0 pushes the input down.
        x, = ctx.saved_tensors
        zero = torch.zeros_like(grad)
        ordinary = torch.where(x > 0, grad, zero)
        redirected = torch.where((x < 0) & (grad > 0), zero, grad)
        alive = ordinary.flatten(1).abs().amax(1) > 0  # per image: has this ReLU any ordinary gradient?
        return torch.where(alive.view(-1, *[1] * (grad.dim() - 1)), ordinary, redirected)


class RedirectedReLU(nn.Module):
    """``max(x, 0)`` forward; the redirected gradient backward (module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        return _Redirected.apply(x)


@contextmanager
def redirected_relus(model: nn.Module) -> Iterator[int]:
    """Every ``nn.ReLU`` of ``model`` is a :class:`RedirectedReLU` inside the block (yields how many);
    the originals are put back on exit, whatever happens inside."""
    swapped = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if type(child) is nn.ReLU]
    try:
        for parent, name, _ in swapped:
            setattr(parent, name, RedirectedReLU())
        yield len(swapped)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


__all__ = ["RedirectedReLU", "redirected_relus"]
