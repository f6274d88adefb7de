"""Scoring a Stroop test: logits -> which stimuli were named by their ink, by their word, or neither.

Scoring is separate from the model: ``score_stroop(stimuli, logits, classnames)`` turns any logits
``[N, C]`` into outcomes and metrics; ``evaluate_stroop`` classifies every stimulus with one
pixels -> logits callable per prompt and scores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.core.metrics import rate
from typobench.core.runtime import Runtime
from typobench.models.classifier import ImageClassifier
from typobench.typographic.stroop.design import KINDS, StroopDesign, StroopStimulus, stroop_stimuli
from typobench.typographic.stroop.render import render_stimuli

OUTCOMES = ("ink", "word", "other")  # named the ink (correct), named the word (incongruent only), else
METRIC_NAMES = ("congruent_accuracy", "incongruent_accuracy", "word_named", "neutral_accuracy")
# The files a StroopResult is written to (``typobench stroop``) and read back from (leaderboard entries).
STROOP_JSON = "stroop.json"
STROOP_CSV = "stroop.csv"

# A classifier: pixels [N, 3, H, W] in [0, 1] -> logits [N, C] over the palette.
Classify = Callable[[Tensor], Tensor]


def score_stroop(stimuli: Sequence[StroopStimulus], logits: Tensor | np.ndarray, classnames: Sequence[str]) -> dict[str, Any]:
    """Predictions, probabilities, outcomes and metrics for one prompt from logits ``[N, C]``.

    Classes are ``classnames`` (the palette order). Returns ``{pred, probs, outcome, metrics}``:
    ``pred`` [N] class indices, ``probs`` [N, C] softmax, ``outcome`` [N] in ink/word/other.
    """
    logits = torch.as_tensor(logits).detach().float().cpu()
    if logits.shape != (len(stimuli), len(classnames)):
        raise ValueError(f"logits {tuple(logits.shape)} must be [{len(stimuli)}, {len(classnames)}] (stimuli x colours)")
    index = {name: i for i, name in enumerate(classnames)}
    probs = torch.softmax(logits, dim=1).numpy()
    pred = logits.argmax(dim=1).numpy()
    ink = np.array([index[s.ink] for s in stimuli], dtype=np.int64)
    word = np.array([index[s.word_colour] if s.word_colour is not None else -1 for s in stimuli], dtype=np.int64)
    kinds = np.array([s.kind for s in stimuli])
    named_ink = pred == ink
    named_word = (pred == word) & (word >= 0)
    outcome = np.where(named_ink, "ink", np.where(named_word, "word", "other"))
    return {"pred": pred, "probs": probs, "outcome": outcome,
            "metrics": stroop_metrics(kinds, named_ink, named_word)}


def stroop_metrics(kinds: np.ndarray, named_ink: np.ndarray, named_word: np.ndarray) -> dict[str, dict]:
    """The four rates (value, Wilson 95% CI, n) from per-stimulus booleans."""
    kinds = np.asarray(kinds)
    named_ink, named_word = np.asarray(named_ink, dtype=bool), np.asarray(named_word, dtype=bool)
    incongruent = kinds == "incongruent"
    return {
        "congruent_accuracy": rate(named_ink[kinds == "congruent"]),
        "incongruent_accuracy": rate(named_ink[incongruent]),
        "word_named": rate(named_word[incongruent]),
        "neutral_accuracy": rate(named_ink[kinds == "neutral"]),
    }



@dataclass
class PromptResult:
    """Scores of every stimulus under one prompt."""

    prompt: str
    pred: np.ndarray
    probs: np.ndarray
    outcome: np.ndarray
    metrics: dict[str, dict]
    by_condition: list[dict[str, Any]] = field(default_factory=list)
    head: dict[str, Any] = field(default_factory=dict)


@dataclass
class StroopResult:
    """Everything a Stroop run measured; ``frame()`` and ``to_dict()`` are what gets written."""

    design: StroopDesign
    stimuli: list[StroopStimulus]
    image_size: tuple[int, int]
    prompts: list[PromptResult]
    model: dict[str, Any] | None = None

    @property
    def metrics(self) -> list[dict[str, dict]]:
        return [p.metrics for p in self.prompts]

    def frame(self) -> pd.DataFrame:
        """One row per stimulus x prompt."""
        names = self.design.classnames
        index = {name: i for i, name in enumerate(names)}
        ink = np.array([index[s.ink] for s in self.stimuli], dtype=np.int64)
        word = np.array([index.get(s.word_colour, -1) if s.word_colour else -1 for s in self.stimuli], dtype=np.int64)
        rows = np.arange(len(self.stimuli))
        frames = []
        for i, p in enumerate(self.prompts):
            p_word = np.where(word >= 0, p.probs[rows, np.maximum(word, 0)], np.nan)
            frames.append(pd.DataFrame({
                "prompt_index": i,
                "prompt": p.prompt,
                "font": [s.font for s in self.stimuli],
                "size": [s.size for s in self.stimuli],
                "ink": [s.ink for s in self.stimuli],
                "word": [s.word for s in self.stimuli],
                "kind": [s.kind for s in self.stimuli],
                "pred": [names[k] for k in p.pred],
                "p_ink": p.probs[rows, ink],
                "p_word": p_word,
                "outcome": p.outcome,
            }))
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **self.design.to_dict(),
            "image_size": list(self.image_size),
            "n_stimuli_per_prompt": len(self.stimuli),
            "counts": {kind: sum(s.kind == kind for s in self.stimuli) for kind in KINDS},
            "prompts": [p.prompt for p in self.prompts],
            "results": [
                {"index": i, "prompt": p.prompt, "metrics": p.metrics, "by_condition": p.by_condition, "head": p.head}
                for i, p in enumerate(self.prompts)
            ],
        }


def _shared_tower(classifiers: Sequence[Classify]) -> bool:
    """True when every classifier is an ImageClassifier over one image tower and normalisation."""
    if not classifiers or not all(isinstance(c, ImageClassifier) for c in classifiers):
        return False
    first = classifiers[0]
    return all(c.clip_model is first.clip_model and torch.equal(c.mean, first.mean) and torch.equal(c.std, first.std)
               for c in classifiers)


@torch.no_grad()
def classify_stimuli(
    stimuli: Sequence[StroopStimulus],
    design: StroopDesign,
    image_size: Sequence[int],
    classifiers: Sequence[Classify],
    *,
    runtime: Runtime,
    batch_size: int = 64,
) -> list[Tensor]:
    """Logits ``[N, C]`` of every stimulus under each classifier, rendering batch by batch on ``runtime``.

    When all classifiers share one image tower (the zero-shot case), images are encoded once per
    batch and only the heads differ per prompt.
    """
    if batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer, got {batch_size}")
    for c in classifiers:
        if isinstance(c, nn.Module):
            c.eval()
    shared = _shared_tower(classifiers)
    outputs: list[list[Tensor]] = [[] for _ in classifiers]
    for start in range(0, len(stimuli), batch_size):
        pixels = render_stimuli(stimuli[start:start + batch_size], design, image_size).to(runtime.device)
        with runtime.autocast():
            if shared:
                features = classifiers[0].features(pixels)  # type: ignore[union-attr]
                logits = [c.head(features) for c in classifiers]  # type: ignore[union-attr]
            else:
                logits = [c(pixels) for c in classifiers]
        for out, batch in zip(outputs, logits):
            out.append(batch.float().cpu())
    n_classes = len(design.palette)
    return [torch.cat(out) if out else torch.zeros(0, n_classes) for out in outputs]


def _by_condition(stimuli: Sequence[StroopStimulus], scored: dict[str, Any], classnames: Sequence[str]) -> list[dict[str, Any]]:
    """The four rates per font x size (only worth reporting when there is more than one)."""
    conditions = list(dict.fromkeys((s.font, s.size) for s in stimuli))
    if len(conditions) < 2:
        return []
    index = {name: i for i, name in enumerate(classnames)}
    pred = scored["pred"]
    out = []
    for font, size in conditions:
        members = np.array([s.font == font and s.size == size for s in stimuli])
        subset = [s for s, m in zip(stimuli, members) if m]
        ink = np.array([index[s.ink] for s in subset])
        word = np.array([index[s.word_colour] if s.word_colour else -1 for s in subset])
        p = pred[members]
        out.append({"font": font, "size": size,
                    **stroop_metrics(np.array([s.kind for s in subset]), p == ink, (p == word) & (word >= 0))})
    return out


def evaluate_stroop(
    design: StroopDesign,
    image_size: Sequence[int],
    prompts: Sequence[str],
    classifiers: Sequence[Classify],
    *,
    runtime: Runtime,
    batch_size: int = 64,
    heads: Sequence[dict[str, Any]] | None = None,
    model: dict[str, Any] | None = None,
) -> StroopResult:
    """Score every stimulus of ``design`` with one classifier (pixels ``[N, 3, H, W]`` -> logits ``[N, C]``
    over the palette) per prompt. ``heads`` (one per prompt) and ``model`` are recorded as given."""
    if len(prompts) != len(classifiers):
        raise ValueError(f"{len(prompts)} prompts but {len(classifiers)} classifiers: give one classifier per prompt")
    stimuli = stroop_stimuli(design)
    size = (int(image_size[0]), int(image_size[1]))
    all_logits = classify_stimuli(stimuli, design, size, classifiers, runtime=runtime, batch_size=batch_size)
    results = []
    for i, (prompt, logits) in enumerate(zip(prompts, all_logits)):
        scored = score_stroop(stimuli, logits, design.classnames)
        results.append(PromptResult(prompt, scored["pred"], scored["probs"], scored["outcome"], scored["metrics"],
                                    _by_condition(stimuli, scored, design.classnames),
                                    dict(heads[i]) if heads is not None else {}))
    return StroopResult(design, stimuli, size, results, model)
