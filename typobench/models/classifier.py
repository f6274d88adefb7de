"""An image classifier on [0,1] pixels: normalise, image tower, head. Attacks differentiate through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class ImageClassifier(nn.Module):
    """``forward(pixels)``: pixels [N,3,H,W] in [0,1] at the model's input size -> logits [N,C].

    Normalisation with the pretrained tag's mean/std happens here, not in the data pipeline,
    so that attacks work in pixel space (RobustBench convention).
    """

    def __init__(self, clip_model: nn.Module, mean: Sequence[float], std: Sequence[float], head: nn.Module):
        super().__init__()
        self.clip_model = clip_model
        self.head = head
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def of(cls, loaded: Any, head: nn.Module | None = None, device: torch.device | str | None = None) -> ImageClassifier:
        """``loaded``'s image tower (a ``LoadedModel``: ``model``, ``mean``, ``std``) under ``head`` (default
        ``nn.Identity()``: the image features), on ``device`` (default the model's own), in eval mode."""
        classifier = cls(loaded.model, loaded.mean, loaded.std, nn.Identity() if head is None else head)
        return classifier.to(loaded.device if device is None else device).eval()

    def normalize(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean.to(pixels.dtype)) / self.std.to(pixels.dtype)

    def features(self, pixels: Tensor) -> Tensor:
        """Image embeddings [N,D], not L2-normalised (each head decides)."""
        return self.clip_model.encode_image(self.normalize(pixels))

    def forward(self, pixels: Tensor) -> Tensor:
        return self.head(self.features(pixels))
