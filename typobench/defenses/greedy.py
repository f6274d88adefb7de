"""Greedy unit selection under a clean budget (Dyslexify, Hufe et al. ICLR 2026).

On a selection split (train images, never the scored ones): units -- ResNet ``layer4`` channels or ViT
attention heads -- are ablated one at a time, each step adding the unit whose ablation (with the ones
already chosen) gives the highest accuracy on the same images with a wrong class name written on them
(ties: the higher mean log-probability of the true class). Selection stops when no unit raises that score,
when ``max_units`` are chosen, or before a unit whose addition drops clean accuracy on the selection images
by more than ``budget`` points below the unablated model's. For heads, ``positions="cls"`` ablates only the
class token's row of each head's output (the paper's CLS-path ablation); ``"all"`` every token's.

The result is a JSON file ``ablate:file=greedy.json`` loads, with its provenance: the data set, split, sample
ids and their hash, the model fingerprint and the options, so the harness refuses to score it on the
images it was chosen on, or on another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.atomic import write_json_atomic
from typobench.core.options import NO_DEFAULT_SHOWN, option
from typobench.core.errors import UsageError
from typobench.data import ImageDataset, sample_hash
from typobench.defenses.ablate import tower_layers, unit_edit  # the defense's own edit: selected = scored
from typobench.defenses.greedy_file import GREEDY_FORMAT, POSITIONS
from typobench.defenses.prefix import dataset_tensors, typographic_images
from typobench.heads.zeroshot import ZeroShotHead, zeroshot_class_embeddings
from typobench.models import LoadedModel
from typobench.models.attention_heads import HEAD_KIND
from typobench.models.classifier import ImageClassifier
from typobench.models.units import NeuronSpace, as_pixels, edits
from typobench.stages.base import Stage


@dataclass
class GreedyResult:
    """The chosen units in order, one record per step (the unit, its scores), and why selection stopped."""

    units: list[str]
    steps: list[dict[str, Any]]
    base: dict[str, float]
    stopped: str
    positions: str
    pool_layers: list[str] = field(default_factory=list)  # the layers chosen among: random baselines draw from them
    metadata: dict[str, Any] = field(default_factory=dict)


SELECTION = "selection"


@dataclass
class GreedyOptions:
    """How the greedy selection chooses (``typobench defense select-greedy``'s selection flags, declared once)."""

    budget: float = option(1.0, "largest clean-accuracy drop allowed on the selection images, in points",
                           minimum=0, group=SELECTION)
    max_units: int = option(20, "most units to choose", minimum=1, group=SELECTION)
    positions: str = option("all", "heads only: 'all' (the default) ablates every token's row, 'cls' the class "
                                   "token's path only, as in the paper", choices=POSITIONS, shown=NO_DEFAULT_SHOWN,
                            group=SELECTION)
    candidates: list[str] | None = option(None, "units to choose among, joined by '+' (default: every unit)",
                                          metavar="A+B", separator="+", group=SELECTION)


@torch.no_grad()
def _score(classifier: nn.Module, pixels: Tensor, labels: Tensor, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean log-probability of the true class) of ``classifier`` on ``pixels``."""
    device = next(classifier.parameters()).device
    correct, log_prob = 0.0, 0.0
    for start in range(0, len(pixels), batch_size):
        logits = classifier(as_pixels(pixels[start:start + batch_size]).to(device)).float()
        target = labels[start:start + batch_size].to(device)
        correct += float((logits.argmax(-1) == target).sum())
        log_prob += float(logits.log_softmax(-1).gather(1, target[:, None]).sum())
    return correct / len(pixels), log_prob / len(pixels)


def greedy_select(classifier: nn.Module, space: NeuronSpace, clean: Tensor, written: Tensor, labels: Tensor, *,
                  budget: float = 1.0, max_units: int = 20, positions: str = "all",
                  candidates: Sequence[str] | None = None, batch_size: int = 64) -> GreedyResult:
    """Units of ``space`` chosen greedily on ``written`` (typographic) and ``clean`` images [N,3,H,W] with
    ``labels`` [N]; ``budget`` in accuracy points on ``clean``; ``candidates`` limits the pool (unit names)."""
    if budget < 0 or max_units < 1 or positions not in POSITIONS \
            or not len(clean) == len(written) == len(labels):
        raise UsageError(f"greedy selection needs budget >= 0, max units >= 1, positions in {POSITIONS} and as many "
                         f"clean as written images: got {budget}, {max_units}, {positions!r}")
    names = space.names
    try:
        pool = [space.index(c) for c in candidates] if candidates is not None else list(range(len(space)))
    except UsageError as exc:
        raise UsageError(f"--candidates: {exc}: name units of these layers") from None

    def score(indices: list[int], pixels: Tensor) -> tuple[float, float]:
        with unit_edit(classifier, space, edits(space, indices), cls_only=positions == "cls"):
            return _score(classifier, pixels, labels, batch_size)

    base_clean, current = score([], clean), score([], written)
    base = {"clean_accuracy": base_clean[0], "typographic_accuracy": current[0]}
    chosen: list[int] = []
    steps: list[dict[str, Any]] = []
    stopped = f"max units ({max_units})" if max_units < len(pool) else "every candidate chosen"
    while len(chosen) < max_units and len(chosen) < len(pool):
        scored = [(score(chosen + [g], written), g) for g in pool if g not in chosen]
        best, unit = max(scored, key=lambda item: (item[0], -item[1]))  # ties: the lower index
        if best <= current:
            stopped = "no unit raises the typographic score"
            break
        clean_acc = score(chosen + [unit], clean)[0]
        if (base_clean[0] - clean_acc) * 100 > budget:
            stopped = f"clean budget ({budget} points): {names[unit]} would drop clean accuracy to {clean_acc:.4f}"
            break
        chosen.append(unit)
        steps.append({"unit": names[unit], "typographic_accuracy": best[0], "typographic_log_prob": best[1],
                      "gain": best[0] - current[0], "clean_accuracy": clean_acc,
                      "runner_up": max((s for s in scored if s[1] != unit), default=(None, None))[0]})
        current = best
    pool_layers = [layer for layer, units in space.split(pool).items() if units]
    return GreedyResult([names[i] for i in chosen], steps, base, stopped, positions, pool_layers)


def save_greedy(path: str | Path, result: GreedyResult, selection: dict[str, Any], config: dict[str, Any]) -> Path:
    """The file ``ablate:file=PATH`` loads: units, steps, and provenance (``selection`` holds ``dataset``,
    ``split``, ``n``, ``sample_hash``, ``sample_ids``, ``model_label``, ``model_fingerprint``)."""
    path = Path(path)
    write_json_atomic(path, {"format": GREEDY_FORMAT, "version": 1, "units": result.units, "positions": result.positions,
                             "pool_layers": result.pool_layers, "steps": result.steps, "base": result.base,
                             "stopped": result.stopped,
                             "selection": selection, "config": config})
    return path




def zeroshot_classifier(loaded: LoadedModel, classnames: Sequence[str], templates: Sequence[str]) -> ImageClassifier:
    """The undefended zero-shot classifier of ``loaded`` ([0,1] pixels -> logits)."""
    with torch.no_grad():
        weights = zeroshot_class_embeddings(loaded.model, loaded.tokenizer, list(classnames), list(templates))
    head = ZeroShotHead.from_clip(loaded.model, weights)
    return ImageClassifier.of(loaded, head)


def selection_space(model: nn.Module) -> NeuronSpace:
    """What greedy selection chooses among: a ViT's attention heads (every block), a ResNet's layer4 channels."""
    layers = tower_layers(model)
    heads = [layer for layer in layers if layer.kind == HEAD_KIND]
    return NeuronSpace(heads or layers)


def describe_selection(loaded: LoadedModel, dataset: ImageDataset) -> dict[str, Any]:
    """The provenance a selection records: the data set, split, its sample ids and hash, the model."""
    return {"dataset": dataset.name, "split": dataset.split, "n": len(dataset), "sample_hash": sample_hash(dataset.sample_ids),
            "sample_ids": list(dataset.sample_ids), "model_label": loaded.spec.label,
            "model_fingerprint": loaded.fingerprint()}


def select_on_dataset(loaded: LoadedModel, dataset: ImageDataset, *, attack: Stage, seed: int = 0,
                      batch_size: int = 64, **options: Any) -> tuple[GreedyResult, dict[str, Any]]:
    """:func:`greedy_select` on every image of ``dataset`` with ``attack`` (a text stage) drawn on them as a run
    with ``seed`` draws it; returns the result and its provenance (``describe_selection``)."""
    images, labels = dataset_tensors(dataset)
    classifier = zeroshot_classifier(loaded, dataset.classnames, dataset.templates)
    written = typographic_images(attack, classifier, images.to(loaded.device), labels.to(loaded.device),
                                 dataset.sample_ids, dataset.classnames, seed).cpu()
    result = greedy_select(classifier, selection_space(loaded.model), images, written, labels,
                           batch_size=batch_size, **options)
    return result, describe_selection(loaded, dataset)


__all__ = ["GreedyResult", "describe_selection", "greedy_select", "save_greedy", "select_on_dataset", "selection_space",
           "zeroshot_classifier"]
