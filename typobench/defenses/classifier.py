"""The defended classifier: an ``ImageClassifier`` with defense steps in front of and inside its forward pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack

from torch import Tensor, nn


class DefenseStep(nn.Module):
    """One step of a defended forward pass: ``forward(pixels, stack) -> pixels`` may transform the pixels
    ([N,3,H,W] in [0,1]) and may enter context managers (hooks) on ``stack`` that last for this forward only."""

    def forward(self, pixels: Tensor, stack: ExitStack) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PixelStep(DefenseStep):
    """``transform(pixels [N,3,H,W]) -> pixels [N,3,H,W]``, in [0,1], before normalisation."""

    def __init__(self, transform: Callable[[Tensor], Tensor]):
        super().__init__()
        self.transform = transform

    def forward(self, pixels: Tensor, stack: ExitStack) -> Tensor:
        return self.transform(pixels)


class EditStep(DefenseStep):
    """Hooks that edit the tower's units while this forward runs (``edit()`` returns the context manager):
    registered per call, so the undefended classifier that shares the weights is never edited."""

    def __init__(self, edit: Callable[[], AbstractContextManager]):
        super().__init__()
        self.edit = edit

    def forward(self, pixels: Tensor, stack: ExitStack) -> Tensor:
        stack.enter_context(self.edit())
        return pixels


class DefendedClassifier(nn.Module):
    """``forward(pixels [N,3,H,W] in [0,1]) -> logits [N,C]``: the steps in order, then ``classifier``
    (normalise, image tower, head). Exposes ``clip_model``, ``head``, ``normalize`` and ``features`` like
    ``ImageClassifier``, so whatever reads a classifier's tower (neurons, features) reads this one."""

    def __init__(self, classifier: nn.Module, steps: Sequence[DefenseStep] = ()):
        super().__init__()
        self.classifier = classifier
        self.steps = nn.ModuleList(steps)

    def then(self, step: DefenseStep) -> DefendedClassifier:
        """This classifier with ``step`` added last (the modules are shared, not copied)."""
        return DefendedClassifier(self.classifier, [*self.steps, step])

    @property
    def clip_model(self) -> nn.Module:
        return self.classifier.clip_model

    @property
    def head(self) -> nn.Module:
        return self.classifier.head

    def normalize(self, pixels: Tensor) -> Tensor:
        return self.classifier.normalize(pixels)

    def features(self, pixels: Tensor) -> Tensor:
        """Image embeddings [N,D] of the defended pass."""
        with ExitStack() as stack:
            for step in self.steps:
                pixels = step(pixels, stack)
            return self.classifier.features(pixels)

    def forward(self, pixels: Tensor) -> Tensor:
        return self.classifier.head(self.features(pixels))


__all__ = ["DefendedClassifier", "DefenseStep", "EditStep", "PixelStep"]
