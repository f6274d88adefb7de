"""Distillation from a reading organism: the image tower learns to embed each training image where a frozen
teacher organism embeds it.

Why: toyclip (ResNet) reads, and a ViT of this machine's budget trained alone barely does
(``TOYCLIP_VIT_CARD.md``). The teacher's text tower and logit scale are copied into the student and frozen, so
both image towers answer to the same texts and the teacher's image embeddings are targets the contrastive
loss agrees with; the student is pulled toward the teacher on every image, including the written words it has
not yet learned to see.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from typobench.models import load_model
from typobench.toyclip.model import normalise

# open_clip CLIP's text tower (and its temperature): the parameters the student takes from the teacher and freezes.
TEXT_TOWER = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection", "logit_scale")


def is_text_tower(name: str) -> bool:
    return name.startswith(TEXT_TOWER)


class Teacher:
    """A frozen organism (eval mode, no gradients) whose unit image embeddings are the student's targets."""

    def __init__(self, name: str, weight: float, bf16: bool) -> None:
        loaded = load_model(name, device="cpu")
        self.name, self.weight, self.bf16 = name, weight, bf16
        self.weights_sha256 = loaded.checkpoint_sha256
        self.model = loaded.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def record(self) -> dict[str, Any]:
        """What the recipe records of the teacher."""
        return {"from": self.name, "weight": self.weight, "weights_sha256": self.weights_sha256,
                "loss": "weight * (1 - cos(student image embedding, teacher image embedding)), mean over the batch",
                "frozen": "text tower and logit scale copied from the teacher"}

    def adopt_text_tower(self, student: torch.nn.Module) -> list[str]:
        """Copy the teacher's text tower and logit scale into ``student`` and freeze them; the names copied.

        A ``ValueError`` names the first parameter whose shape differs (the towers must share a text config).
        """
        mine = dict(student.named_parameters())
        theirs = dict(self.model.named_parameters())
        names = sorted(n for n in mine if is_text_tower(n))
        with torch.no_grad():
            for name in names:
                if name not in theirs or theirs[name].shape != mine[name].shape:
                    raise ValueError(f"teacher {self.name} has no text-tower parameter {name} of shape "
                                     f"{tuple(mine[name].shape)}: distil from an organism with the same text config")
                mine[name].copy_(theirs[name])
                mine[name].requires_grad_(False)
        return names

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, 3, H, W]`` in [0, 1] -> the teacher's unit image embeddings ``[B, D]`` (fp32)."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            features = self.model.encode_image(normalise(images, self.model), normalize=True)
        return features.float()

    def loss(self, student_features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """``weight`` x mean cosine distance between ``student_features`` ``[B, D]`` (unit) and the teacher's."""
        target = self.embed(images)
        return self.weight * (1.0 - F.cosine_similarity(student_features, target, dim=1)).mean()
