"""Attack-text search: which written word best hijacks the model towards each class?

The brute-force search Goh et al. used to find "rifle", "pizza", "iPod": write each candidate text on a
sample of images (in the style and placement of a suite's text stage) and rank candidates by targeted
success rate. One forward pass per candidate scores every target class at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .errors import UsageError, unknown_name_error
from .metrics import wilson_interval
from .stages import Batch, RunContext, score
from .suites import Suite, TextStage, WordChoice


def short_forms(classname: str) -> list[str]:
    """Shorter ways a class is written: the head noun of a multi-word name ("great white shark" -> "shark")."""
    words = classname.split()
    return [words[-1]] if len(words) > 1 else []


def candidate_texts(classnames: Sequence[str], extra_words: Iterable[str] = ()) -> list[str]:
    """Class names, their short forms, then extra words; duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for name in classnames:
        seen.setdefault(name)
    for name in classnames:
        for short in short_forms(name):
            seen.setdefault(short)
    for word in extra_words:
        word = word.strip()
        if word:
            seen.setdefault(word)
    return list(seen)


def template_stage(suite: Suite, stage_name: str | None = None) -> TextStage:
    """The text stage whose style and placement every candidate is written with."""
    stages = [s for s in suite.stages if isinstance(s, TextStage)]
    if not stages:
        raise UsageError(f"suite {suite.name} has no text stage to take a style from: pick another --suite")
    if stage_name is None:
        return stages[0]
    for stage in stages:
        if stage.name == stage_name:
            return stage
    raise unknown_name_error(f"text stage of suite {suite.name}", stage_name, [s.name for s in stages],
                             "typobench list suites")


@torch.no_grad()
def search_texts(
    ctx: RunContext,
    images: Tensor,
    labels: Tensor,
    sample_ids: list[str],
    candidates: Sequence[str],
    stage: TextStage,
    *,
    batch_size: int = 64,
    keep_targets: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Targeted success of every candidate towards every class: a long table
    ``text, target, success, ci_low, ci_high, n, pixel_fraction`` (rows for all targets).

    ``images`` [N,3,H,W] in [0,1] (the sample, already at the model's size) and ``labels`` [N].
    Images already predicted as a target when clean, or labelled with it, do not count for it.
    ``keep_targets`` limits the rows to those class indices (all classes are still scored).
    """
    k = len(ctx.classnames)
    clean_pred = torch.cat([score(ctx.classifier, images[i:i + batch_size], ctx.runtime).argmax(1)
                            for i in range(0, len(images), batch_size)])
    # eligible[t] = number of images that can be flipped to t.
    onehot_label = torch.nn.functional.one_hot(labels, k).bool()
    onehot_clean = torch.nn.functional.one_hot(clean_pred, k).bool()
    eligible_mask = ~(onehot_label | onehot_clean)  # [N, K]
    eligible = eligible_mask.sum(0)
    rows = []
    for text in tqdm(candidates, desc="candidates", disable=not progress, mininterval=1.0):
        fixed = TextStage(stage.name, "clean", WordChoice("fixed", text=text), stage.style, stage.placement)
        hits = torch.zeros(k, dtype=torch.long)
        fractions = []
        for i in range(0, len(images), batch_size):
            batch = Batch(images[i:i + batch_size], labels[i:i + batch_size], list(range(i, i + len(images[i:i + batch_size]))),
                          sample_ids[i:i + batch_size])
            output = fixed.apply(batch.images, batch, ctx)
            pred = score(ctx.classifier, output.images, ctx.runtime).argmax(1)
            flipped = torch.nn.functional.one_hot(pred, k).bool() & eligible_mask[i:i + batch_size]
            hits += flipped.sum(0).cpu()
            fractions += output.columns["pixel_fraction"]
        mean_fraction = float(np.mean(fractions))
        for target in (range(k) if keep_targets is None else keep_targets):
            n = int(eligible[target])
            lo, hi = wilson_interval(int(hits[target]), n)
            rows.append((text, ctx.classnames[target], int(hits[target]) / n if n else float("nan"), lo, hi, n,
                         mean_fraction))
    return pd.DataFrame(rows, columns=["text", "target", "success", "ci_low", "ci_high", "n", "pixel_fraction"])


def rank_for_targets(table: pd.DataFrame, targets: Sequence[str] | None, top_k: int) -> pd.DataFrame:
    """The ``top_k`` candidates per target (all targets when ``targets`` is None), best first."""
    if targets is not None:
        table = table[table["target"].isin(targets)]
    ranked = table.sort_values(["target", "success", "text"], ascending=[True, False, True])
    return ranked.groupby("target", sort=False).head(top_k).reset_index(drop=True)


__all__ = ["candidate_texts", "rank_for_targets", "search_texts", "short_forms", "template_stage"]
