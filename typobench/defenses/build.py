"""Composing defenses into the model under test: weights first, then prompts, then the forward pass.

Each stage of building takes the defenses in the order given; wrappers (``input``, ``ablate``) each see
the classifier defended by the ones before them (mean ablation values are measured through it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from typobench.core.cache import TensorCache, content_key
from typobench.core.errors import UsageError
from typobench.core.hashing import bytes_sha256
from typobench.defenses.base import BuildContext, Defense, Prompts
from typobench.defenses.classifier import DefendedClassifier
from typobench.defenses.prefix import prefixed_zeroshot_weights
from typobench.defenses.prefix_pt import load_any_prefix
from typobench.heads.build import build_zeroshot_head, cached_zeroshot_head
from typobench.heads.zeroshot import ZeroShotHead
from typobench.models import LoadedModel
from typobench.models.classifier import ImageClassifier

# (model after the weight defenses, prompts after the prompt defenses; None for a head without prompts)
#   -> (head module, head info)
HeadBuilder = Callable[[LoadedModel, Prompts | None], tuple[nn.Module, dict[str, Any]]]


@dataclass
class Defended:
    """The model under test: ``classifier`` (pixels in [0,1] -> logits), the ``model`` whose weights it runs
    (the loaded one unless a defense changed them), the head's info, and one record per defense (its spec,
    parameters and what building resolved: results.json's ``defenses``)."""

    classifier: DefendedClassifier
    model: LoadedModel
    head_info: dict[str, Any]
    records: list[dict[str, Any]]


def build_defended(model: LoadedModel, defenses: Sequence[Defense], *, prompts: Prompts | None, head: HeadBuilder,
                   ctx: BuildContext) -> Defended:
    """``defenses`` applied to ``model`` and its head, in order (``prompts`` None: the head has no prompts,
    e.g. a linear probe, and a prompt defense is refused)."""
    records = [defense.describe() for defense in defenses]
    for defense, record in zip(defenses, records):
        model = defense.transform_model(model, record)
    for defense, record in zip(defenses, records):
        if defense.changes_prompts and prompts is None:
            raise UsageError(f"--defense '{defense.spec}' changes zero-shot prompts, and this head has none: use "
                             "--head zeroshot")
        if prompts is not None:
            prompts = defense.transform_prompts(prompts, record)
    head_module, head_info = head(model, prompts)
    base = ImageClassifier.of(model, head_module, ctx.runtime.device)
    classifier = DefendedClassifier(base)
    for defense, record in zip(defenses, records):
        classifier = defense.wrap(classifier, ctx, record)
    return Defended(classifier.eval(), model, head_info, records)


# Where files lay when a defense was built: their content is in the records' *_sha256 fields instead.
PATH_KEYS = ("spec", "checkpoint", "file", "neurons_json", "learned_prefix", "run_dir")


def defense_fingerprint(records: Sequence[dict[str, Any]]) -> str:
    """The content key of defenses built into a model (their records, without where files lay): the defended
    model's identity beside the weights' (leaderboard entries)."""
    def content(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: content(v) for k, v in value.items() if k not in PATH_KEYS}
        return [content(v) for v in value] if isinstance(value, list) else value

    # Plain canonical JSON, not the cache's content_key: an entry's identity must not move with the code version.
    return bytes_sha256(json.dumps([content(record) for record in records], sort_keys=True, default=str).encode())


def zeroshot_head(model: LoadedModel, classnames: Sequence[str], prompts: Prompts,
                  cache: TensorCache) -> tuple[ZeroShotHead, dict[str, Any]]:
    """The zero-shot head of ``prompts``: plain templates through ``heads.build`` (cached), or with a learned
    prefix before the class name (class embeddings cached by the prefix file's content too)."""
    head, info = _zeroshot_head(model, classnames, prompts, cache)
    if prompts.logit_scale is not None:  # a protocol's fixed temperature (FARE: 100), not the model's learned one
        head.logit_scale = float(prompts.logit_scale)
        info = {**info, "logit_scale": head.logit_scale, "logit_scale_from": "suite"}
    return head, info


def _zeroshot_head(model: LoadedModel, classnames: Sequence[str], prompts: Prompts,
                   cache: TensorCache) -> tuple[ZeroShotHead, dict[str, Any]]:
    if prompts.learned_prefix is None:
        return build_zeroshot_head(model, list(classnames), list(prompts.templates), cache)
    key = content_key(kind="zeroshot-learned-prefix", model=model.fingerprint(), classnames=list(classnames),
                      templates=list(prompts.templates), prefix=prompts.learned_prefix_sha256)

    @torch.no_grad()
    def compute() -> torch.Tensor:
        prefix = load_any_prefix(prompts.learned_prefix, expect_model=model).prefix.to(model.device)
        return prefixed_zeroshot_weights(model, classnames, prompts.templates, prefix)

    return cached_zeroshot_head(model, cache, key, compute, prompts.templates,
                                learned_prefix=str(prompts.learned_prefix),
                                learned_prefix_sha256=prompts.learned_prefix_sha256)


__all__ = ["Defended", "HeadBuilder", "PATH_KEYS", "build_defended", "defense_fingerprint", "zeroshot_head"]
