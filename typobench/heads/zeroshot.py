"""Zero-shot head: class embeddings from prompt templates, scored with the model's own temperature."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def zeroshot_class_embeddings(
    clip_model: nn.Module,
    tokenizer: Callable[[list[str]], Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 256,
) -> Tensor:
    """Class embeddings [C, D]: encode every template per class, normalise, average, renormalise.

    This is the OpenAI / clip_benchmark convention. Templates use ``{}`` for the class name.
    Texts are encoded in batches across classes, on the model's device.
    """
    device = next(clip_model.parameters()).device
    texts = [template.format(name) for name in classnames for template in templates]
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[start:start + batch_size]).to(device)
        chunks.append(F.normalize(clip_model.encode_text(tokens).float(), dim=-1))
    per_text = torch.cat(chunks).view(len(classnames), len(templates), -1)
    return F.normalize(per_text.mean(dim=1), dim=-1)


class ZeroShotHead(nn.Module):
    """``forward(features [N,D]) -> logits [N,C]`` = scale · cos(features, class embeddings) + bias.

    ``logit_scale`` is the model's own (``clip_model.logit_scale.exp()``), never a hard-coded 100:
    attack gradients depend on the temperature. SigLIP models also carry a ``logit_bias``.
    """

    def __init__(self, class_embeddings: Tensor, logit_scale: float, logit_bias: float | None = None):
        super().__init__()
        self.register_buffer("class_embeddings", class_embeddings.float())
        self.logit_scale = float(logit_scale)
        self.logit_bias = None if logit_bias is None else float(logit_bias)

    @classmethod
    def from_clip(cls, clip_model: nn.Module, class_embeddings: Tensor) -> "ZeroShotHead":
        bias = getattr(clip_model, "logit_bias", None)
        return cls(
            class_embeddings,
            logit_scale=clip_model.logit_scale.exp().item(),
            logit_bias=None if bias is None else bias.item(),
        )

    def forward(self, features: Tensor) -> Tensor:
        weights = self.class_embeddings.to(features.dtype)
        logits = self.logit_scale * F.normalize(features, dim=-1) @ weights.T
        return logits if self.logit_bias is None else logits + self.logit_bias
