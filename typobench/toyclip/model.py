"""The organisms' models: open_clip's ``typobench-toyclip`` (ResNet) or ``typobench-toyclip-vit`` (ViT), created
untrained, fed, quickly measured and saved."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor

import typobench.models.builtin  # noqa: F401  registers typobench-* configs with open_clip
from typobench.data import load_dataset, stack_images
from typobench.data.templates import CIFAR_TEMPLATES
from typobench.models.loading import file_sha256, tensors_sha256

OPEN_CLIP_NAME = "typobench-toyclip"
# The organisms the training code makes: builtin name -> open_clip config (typobench/models/configs).
ORGANISMS: dict[str, str] = {"toyclip": "typobench-toyclip", "toyclip-vit": "typobench-toyclip-vit"}


def create_model(seed: int, open_clip_name: str = OPEN_CLIP_NAME) -> torch.nn.Module:
    """The untrained open_clip model ``open_clip_name``, its initial weights drawn from ``seed``."""
    torch.manual_seed(seed)
    return open_clip.create_model(open_clip_name, pretrained=None)


def is_vision_transformer(model: torch.nn.Module) -> bool:
    """Whether the image tower is open_clip's ``VisionTransformer`` (else a convolutional tower)."""
    return isinstance(model.visual, open_clip.transformer.VisionTransformer)


@torch.no_grad()
def class_text_embeddings(model: torch.nn.Module, tokenizer: Callable, classnames: list[str]) -> Tensor:
    """``[D, K]`` unit class embeddings: the mean of the 18 CIFAR templates' unit text embeddings, renormalised
    (the zero-shot head of ``typobench run``)."""
    weights = []
    for name in classnames:
        emb = model.encode_text(tokenizer([t.format(name) for t in CIFAR_TEMPLATES]), normalize=True).mean(0)
        weights.append(emb / emb.norm())
    return torch.stack(weights, 1)


@torch.no_grad()
def quick_zeroshot_accuracy(model: torch.nn.Module, limit: int = 500) -> float:
    """Clean zero-shot accuracy (18 CIFAR templates) on the first ``limit`` images of the bundled sample."""
    was_training = model.training
    model.eval()
    # Every organism shares the text tower's config, so one tokenizer serves them all.
    tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)

    def transform(image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB").resize((64, 64), Image.BICUBIC)
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)

    ds = load_dataset("cifar10-sample", transform=transform)
    classifier = class_text_embeddings(model, tokenizer, ds.classnames)
    # Spread over the classes: the sample is stored class by class.
    order = np.random.default_rng(0).permutation(len(ds))[:limit]
    correct = 0
    for start in range(0, len(order), 250):
        idx = order[start:start + 250]
        x, y = stack_images(ds, idx)
        feats = model.encode_image(normalise(x, model), normalize=True)
        pred = (feats @ classifier).argmax(1)
        correct += int((pred == y).sum())
    model.train(was_training)
    return correct / len(order)


def normalise(images: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """``images`` ``[B, 3, H, W]`` in [0, 1], standardised with the model's preprocessing mean and std."""
    cfg = getattr(model.visual, "preprocess_cfg", {})
    mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1)
    return (images - mean) / std


def save_weights(model: torch.nn.Module, path: Path, recipe: dict[str, Any], fp32: bool = False) -> tuple[str, str]:
    """Write the state dict as safetensors (fp16 unless ``fp32``) with ``recipe`` as metadata.

    Returns the file's sha256 and the *tensors'* sha256 (names, dtypes, shapes and bytes, in name order):
    the file's hash also covers the metadata (wall time, machine), the tensors' only what training made.
    """
    dtype = torch.float32 if fp32 else torch.float16
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}
    state.update({k: v.detach().contiguous() for k, v in model.state_dict().items() if not v.is_floating_point()})
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"typobench_recipe": json.dumps(recipe, sort_keys=True)})
    os.replace(tmp, path)
    return file_sha256(path), tensors_sha256(state)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters: open_clip's rule, no decay on gains, biases, norms and
    the logit scale (frozen parameters are left out)."""
    def exclude(n: str, p: torch.Tensor) -> bool:
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]
