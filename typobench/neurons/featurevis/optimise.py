"""The optimisation loop: an image that maximises an objective, seeded and deterministic on CPU.

Every step: the parameterised image [B, 3, H, W] in [0, 1] (at the model's input size), transformed at
random (:mod:`.transforms`), goes through the classifier's ``forward`` (normalisation inside it), the
objective reads the hooked layers, and Adam takes one step on the image parameters only (gradients are
taken with ``torch.autograd.grad``, so the model's own ``.grad`` is never touched). All randomness (the
initial spectrum or pixels, every transformation) comes from one ``torch.Generator`` seeded with ``seed``.
With ``redirect_relu`` (default) the ReLUs pass Lucid's redirected gradient while optimising (:mod:`.relu`),
so that a unit that is off on the starting image still moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from typobench.core.errors import UsageError
from typobench.neurons.featurevis.layers import input_side, layer_space
from typobench.neurons.featurevis.objectives import Captured, Objective
from typobench.neurons.featurevis.param import make_image
from typobench.neurons.featurevis.relu import redirected_relus
from typobench.neurons.featurevis.transforms import Robustness, transform
from typobench.models.units import capture


@dataclass(frozen=True)
class Settings:
    """``steps`` of Adam at learning rate ``lr`` on ``batch`` images of the ``param`` parameterisation;
    ``redirect_relu``: ReLUs pass the redirected gradient while optimising (:mod:`.relu`)."""

    steps: int = 256
    lr: float = 0.05
    batch: int = 1
    param: str = "fourier"
    robustness: Robustness = field(default_factory=Robustness)
    seed: int = 0
    redirect_relu: bool = True

    def describe(self) -> dict:
        return {"steps": self.steps, "lr": self.lr, "batch": self.batch, "param": self.param, "seed": self.seed,
                "robustness": self.robustness.describe(), "redirect_relu": self.redirect_relu}


@dataclass
class Visualization:
    """``images`` [B, 3, H, W] in [0, 1]; ``history`` [steps]: the batch-mean objective (under the random
    transformations) at each step; ``final`` [B]: the objective on the final images, untransformed."""

    images: Tensor
    history: list[float]
    final: Tensor
    objective: str
    settings: Settings

    def describe(self) -> dict:
        return {"objective": self.objective, "final": self.final.tolist(), "first_step": self.history[:1],
                "last_step": self.history[-1:], **self.settings.describe()}


@contextmanager
def twice_differentiable() -> Iterator[None]:
    """Attention by the plain math kernel: the fused CPU kernels have no double backward, which faceted
    objectives need (they differentiate an attribution); the math kernel computes the same values."""
    with sdpa_kernel([SDPBackend.MATH]):
        yield


def objective_values(model: nn.Module, objective: Objective, images: Tensor) -> Tensor:
    """[B]: the objective on ``images`` [B, 3, H, W] in [0, 1], as they are (no transformation)."""
    space = layer_space(model, objective.layers)
    device = next(model.parameters()).device
    with torch.enable_grad(), twice_differentiable(), capture(space) as store:  # facet objectives differentiate inside
        model(images.to(device).requires_grad_(True))  # the graph a facet differentiates needs a leaf
        score = objective(Captured({l.name: l for l in space.layers}, store))
    return score.detach().cpu()


def visualize(model: nn.Module, objective: Objective, settings: Settings = Settings(),
              side: int | None = None) -> Visualization:
    """Optimise ``settings.batch`` images of side ``side`` (default: the tower's input size) to maximise
    ``objective`` through ``model`` (an ``ImageClassifier``: [0,1] pixels in)."""
    if settings.steps < 1 or settings.batch < 1:
        raise UsageError(f"feature visualization needs steps >= 1 and batch >= 1, got {settings.steps}, {settings.batch}")
    side = side or input_side(model)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(settings.seed)
    image = make_image(settings.param, settings.batch, side, generator).to(device)
    params = list(image.parameters())
    optimizer = torch.optim.Adam(params, lr=settings.lr)
    space = layer_space(model, objective.layers)
    layers = {l.name: l for l in space.layers}
    history = []
    with redirected_relus(model) if settings.redirect_relu else nullcontext():
        for _ in range(settings.steps):
            pixels = transform(image(), settings.robustness, generator)
            with twice_differentiable(), capture(space) as store:
                model(pixels)
                score = objective(Captured(layers, store)).mean()
            grads = torch.autograd.grad(-score, params)
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()
            history.append(float(score.detach()))
    with torch.no_grad():
        final_images = image().detach().cpu()
    return Visualization(final_images, history, objective_values(model, objective, final_images), objective.name, settings)
