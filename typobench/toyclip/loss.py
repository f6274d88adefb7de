"""A CLIP contrastive loss for batches in which many images share a caption (several positives per text).

CLIP's loss assumes image ``i`` matches only text ``i``. In toyclip's batches a class caption such as
"a photo of a cat." appears for dozens of images, and different templates name the same thing. With
the plain loss, identical captions would be pushed apart as negatives of each other's images. Here:

1. the batch's captions are deduplicated (each distinct text is encoded once),
2. every image has a *key* (what its caption names); text ``j`` is a positive for image ``i`` when
   the key of ``j``'s caption equals ``i``'s key, so an image can have several positive texts and a
   text several positive images,
3. both directions use cross-entropy against the uniform distribution over the positives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def dedupe_captions(captions: Sequence[str], keys: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """Distinct captions (first-seen order) and the positive mask ``[n_images, n_texts]`` (bool).

    ``positives[i, j]`` is true when the key of unique caption ``j`` equals image ``i``'s key. A caption
    must always name the same key (a ``ValueError`` otherwise).
    """
    if len(captions) != len(keys):
        raise ValueError(f"{len(captions)} captions but {len(keys)} keys")
    key_of: dict[str, str] = {}
    for caption, key in zip(captions, keys):
        if key_of.setdefault(caption, key) != key:
            raise ValueError(f"caption {caption!r} is given two keys: {key_of[caption]!r} and {key!r}")
    unique = list(key_of)
    key_ids: dict[str, int] = {}
    image_key = torch.tensor([key_ids.setdefault(k, len(key_ids)) for k in keys])
    text_key = torch.tensor([key_ids.setdefault(key_of[c], len(key_ids)) for c in unique])
    return unique, image_key[:, None] == text_key[None, :]


def multi_positive_contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    positives: torch.Tensor,
    logit_scale: torch.Tensor | float,
) -> torch.Tensor:
    """Symmetric InfoNCE with several positives: mean of the image->text and text->image losses.

    ``image_features`` ``[N, D]`` and ``text_features`` ``[T, D]`` are L2-normalised; ``positives`` is
    a bool ``[N, T]`` mask where every row and every column has at least one true entry. For image
    ``i`` the target distribution is uniform over its positive texts; for text ``j`` uniform over its
    positive images. With one distinct caption per image and the identity mask this is CLIP's loss.
    """
    if positives.shape != (image_features.shape[0], text_features.shape[0]):
        raise ValueError(f"positives {tuple(positives.shape)} must be [{image_features.shape[0]}, {text_features.shape[0]}]")
    if not bool(positives.any(1).all()) or not bool(positives.any(0).all()):
        raise ValueError("every image and every text needs at least one positive")
    logits = logit_scale * image_features @ text_features.t()
    target = positives.to(logits.dtype)
    image_to_text = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    text_to_image = -(target.t() / target.sum(0)[:, None] * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (image_to_text + text_to_image) / 2
