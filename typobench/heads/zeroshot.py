"""Zero-shot head: class embeddings from prompt templates, scored with the model's own temperature."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.heads.base import Head


def average_class_embeddings(
    encode_texts: Callable[[list[str]], Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 256,
) -> Tensor:
    """Class embeddings [C, D] from any text encoder ``encode_texts(texts) -> [n, D]``: every template per
    class encoded, normalised, averaged, renormalised (the OpenAI / clip_benchmark convention).

    Templates use ``{}`` for the class name. Gradients flow through when the encoder keeps them (a learned
    prompt prefix is trained through this very function, so prefixed and plain weights are built alike).
    """
    texts = [template.format(name) for name in classnames for template in templates]
    chunks = [F.normalize(encode_texts(texts[start:start + batch_size]).float(), dim=-1)
              for start in range(0, len(texts), batch_size)]
    per_text = torch.cat(chunks).view(len(classnames), len(templates), -1)
    return F.normalize(per_text.mean(dim=1), dim=-1)


@torch.no_grad()
def zeroshot_class_embeddings(
    clip_model: nn.Module,
    tokenizer: Callable[[list[str]], Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 256,
) -> Tensor:
    """Class embeddings [C, D] of ``clip_model``'s own text tower (see :func:`average_class_embeddings`).

    Texts are encoded in batches across classes, on the model's device.
    """
    device = next(clip_model.parameters()).device
    return average_class_embeddings(lambda texts: clip_model.encode_text(tokenizer(texts).to(device)),
                                    classnames, templates, batch_size=batch_size)


def zeroshot_logits(features: Tensor, class_embeddings: Tensor, logit_scale: float,
                    logit_bias: float | None = None) -> Tensor:
    """Logits [N, C] = scale · cos(features [N, D], class embeddings [C, D]) + bias."""
    weights = class_embeddings.to(features.dtype)
    logits = logit_scale * F.normalize(features, dim=-1) @ weights.T
    return logits if logit_bias is None else logits + logit_bias


class ZeroShotHead(Head):
    """``forward(features [N,D]) -> logits [N,C]`` = scale · cos(features, class embeddings) + bias.

    ``logit_scale`` is the model's own (``clip_model.logit_scale.exp()``), never a hard-coded 100:
    attack gradients depend on the temperature. SigLIP models also carry a ``logit_bias``.
    """

    kind = "zeroshot"
    prompts = True
    leader_builds_first = True  # rank 0 caches the class embeddings, the other ranks read them back
    called = "zero-shot"

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
        return zeroshot_logits(features, self.class_embeddings, self.logit_scale, self.logit_bias)
