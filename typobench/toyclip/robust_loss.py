"""The robust fine-tuning objectives of ``typobench.toyclip.robust``: FARE and TeCoA, their inner attacks, and the
training photos (a train/validation split of CIFAR-10 train, batches a pure function of seed and step).

* FARE (Schlarmann et al. 2024, "Robust CLIP"): ``max_{||d||_inf <= eps} ||f(x + d) - f_orig(x)||_2^2``, averaged
  over the batch, with ``f`` the image tower being trained and ``f_orig`` the frozen original one (unnormalised
  embeddings, as in the paper). The inner maximisation is L-inf PGD (sign steps, random start, projection by
  ``typobench.adversarial.common.project``).
* TeCoA (Mao et al. 2023, "Understanding zero-shot adversarial robustness"): the cross-entropy of the zero-shot
  logits ``scale * <f(x + d) / |f(x + d)|, t_k>`` against the true class, with ``t_k`` the frozen class text
  embeddings and ``d`` found by the project's own ``typobench.adversarial.pgd`` on those logits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from typobench.adversarial.common import project
from typobench.adversarial.pgd import PGDConfig, pgd

LOSSES = ("fare", "tecoa")


def fare_loss(embedding: Tensor, original: Tensor) -> Tensor:
    """FARE's objective: the squared L2 distance between ``[N, D]`` embeddings, summed over D, mean over N."""
    return (embedding.float() - original.float()).pow(2).sum(dim=1).mean()


def zero_shot_logits(embedding: Tensor, class_text: Tensor, scale: float) -> Tensor:
    """``[N, K]`` logits: ``scale`` x cosine similarity of ``[N, D]`` image embeddings and ``[D, K]`` unit texts."""
    return scale * F.normalize(embedding.float(), dim=1) @ class_text


def tecoa_loss(embedding: Tensor, class_text: Tensor, labels: Tensor, scale: float) -> Tensor:
    """TeCoA's objective: cross-entropy of the zero-shot logits against ``labels``, mean over the batch."""
    return F.cross_entropy(zero_shot_logits(embedding, class_text, scale), labels)


def fare_attack(encode: Callable[[Tensor], Tensor], x0: Tensor, original: Tensor, eps: float, step_size: float,
                steps: int, generator: torch.Generator) -> Tensor:
    """L-inf PGD maximising ``||encode(x) - original||^2`` per image from a uniform random start; the last iterate."""
    x = project(x0 + (torch.rand(x0.shape, generator=generator) * 2 - 1) * eps, x0, eps, "linf")
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        objective = (encode(x).float() - original).pow(2).sum()
        (grad,) = torch.autograd.grad(objective, x)
        x = project(x.detach() + step_size * grad.sign(), x0, eps, "linf")
    return x.detach()


def tecoa_attack(logits: Callable[[Tensor], Tensor], x0: Tensor, labels: Tensor, eps: float, step_size: float,
                 steps: int, generator: torch.Generator) -> Tensor:
    """The project's L-inf PGD (cross-entropy, random start) on the zero-shot logits; its best iterate."""
    return pgd(logits, x0, labels, PGDConfig(eps=eps, step_size=step_size, steps=steps), generator=generator).adv


def split_indices(n: int, validation: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed split of ``n`` training photos: (train, validation) indices, validation = ``validation`` photos
    drawn by ``seed`` (the validation images choose the recipe; no CIFAR-10 *test* image is used in training)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[validation:]), np.sort(order[:validation])


def upsample(images: np.ndarray, size: int = 64) -> np.ndarray:
    """uint8 ``[N, h, w, 3]`` resized to ``size`` px with PIL bicubic (as the model's own preprocessing does)."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    return out


class TrainPhotos:
    """Photos at the model's size (uint8 ``[N, S, S, 3]``) with labels; ``batch(step)`` depends only on the seed
    and the step (random photos, random horizontal flips), so a resumed run sees the batches a whole run sees."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
        self.images, self.labels, self.seed = images, np.asarray(labels, dtype=np.int64), seed

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, step: int, size: int) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self.labels), size=size)
        flip = rng.random(size) < 0.5
        images = self.images[idx].copy()
        images[flip] = images[flip, :, ::-1]
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        return x.contiguous(), torch.from_numpy(self.labels[idx])

    def ordered(self, limit: int) -> tuple[Tensor, Tensor]:
        """The first ``limit`` photos, unflipped (the validation images)."""
        x = torch.from_numpy(self.images[:limit]).permute(0, 3, 1, 2).float().div_(255.0)
        return x.contiguous(), torch.from_numpy(self.labels[:limit])
