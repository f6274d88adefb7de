"""Attack-text search: which written word best hijacks the model towards each class?

The brute-force search Goh et al. used to find "rifle", "pizza", "iPod": write each candidate text on a
sample of images (in the style and placement of a suite's text stage) and rank candidates by targeted
success rate. One forward pass per candidate scores every target class at once.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.cache import content_key
from typobench.core.errors import UsageError, unknown_name_error
from typobench.core.options import option
from typobench.harness.config import default_out_dir
from typobench.harness.results import envelope
from typobench.harness.session import Session
from typobench.core.metrics import wilson_interval
from typobench.stages.base import Batch, RunContext, score
from typobench.stages.text import TextStage, WordChoice
from typobench.suites import Suite


@dataclass
class SearchOptions:
    """What ``typobench search-text`` takes besides a run's options (its own flags, declared once)."""

    stage: str | None = option(None, "text stage of --suite to copy the style from (default: first)")
    targets: list[str] | None = option(None, "target class name (repeatable); default: every class", flag="--target",
                                       metavar="TARGET", repeat=True)
    words: str | None = option(None, "text file with extra candidate words, one per line")
    top_k: int = option(10, "candidates kept per target in the printed table", minimum=1)


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


def read_words(path: str | Path | None) -> list[str]:
    """Extra candidate words from a text file, one per line (none when ``path`` is None)."""
    if path is None:
        return []
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--words file '{path}' not found: pass a text file with one word per line")
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_targets(targets: Sequence[str] | None, classnames: Sequence[str], dataset_name: str) -> None:
    for target in targets or []:
        if target not in classnames:
            raise unknown_name_error(f"target class of {dataset_name}", target, list(classnames),
                                     f"the class names of {dataset_name}")


@torch.no_grad()
def load_sample(session: Session) -> tuple[Tensor, Tensor]:
    """The session's (small) data set in memory, [N,3,H,W] and [N]: every candidate is written on the same images."""
    images, labels = [], []
    loader = DataLoader(session.data, batch_size=session.config.batch_size, num_workers=session.config.workers)
    for batch_images, batch_labels, _ in loader:
        images.append(batch_images)
        labels.append(batch_labels)
    device = session.runtime.device
    return torch.cat(images).to(device), torch.cat(labels).long().to(device)


@dataclass
class TextSearch:
    """A finished search: every candidate x target (``table``), the best per target (``ranked``), where written."""

    table: pd.DataFrame
    ranked: pd.DataFrame
    out_dir: Path


def run_text_search(session: Session, stage: TextStage, *, targets: Sequence[str] | None = None,
                    extra_words: Sequence[str] = (), top_k: int = 10, out_dir: str | Path | None = None,
                    progress: bool = True) -> TextSearch:
    """Rank every candidate text (class names, short forms, ``extra_words``) written in ``stage``'s style on
    the session's data; write search_text.csv (all), search_text_top.csv (``top_k`` per target) and
    search_text.json (the result envelope) to ``out_dir``."""
    data = session.data
    check_targets(targets, data.classnames, data.name)
    images, labels = load_sample(session)
    candidates = candidate_texts(data.classnames, extra_words)
    keep = None if targets is None else [data.classnames.index(t) for t in targets]
    world = session.world  # spread over processes: each scores its share of the candidates
    table = search_texts(session.context, images, labels, list(data.sample_ids), world.shard(candidates), stage,
                         batch_size=session.config.batch_size, keep_targets=keep,
                         progress=progress and world.leader)
    table = _gathered(table, candidates, world)
    ranked = rank_for_targets(table, targets, top_k)
    key = content_key(**session.identity(), stage=stage.describe(), words=list(extra_words), targets=targets)
    out = Path(out_dir) if out_dir else default_out_dir("search-text", [], key)
    if world.leader:
        _write(session, stage, table, ranked, out, key, len(candidates), targets, top_k)
    return TextSearch(table, ranked, out)


def _gathered(table: pd.DataFrame, candidates: Sequence[str], world) -> pd.DataFrame:
    """Every rank's rows, in candidate order (each rank scored ``candidates[rank::size]``)."""
    if not world.distributed:
        return table
    parts = [pd.read_csv(io.StringIO(text), keep_default_na=False) for text in world.gather_text(table.to_csv(index=False))]
    order = {text: i for i, text in enumerate(candidates)}
    merged = pd.concat(parts, ignore_index=True)
    merged["text"] = merged["text"].astype(str)
    return merged.sort_values("text", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _write(session: Session, stage: TextStage, table: pd.DataFrame, ranked: pd.DataFrame, out: Path, key: str,
           n_candidates: int, targets: Sequence[str] | None, top_k: int) -> None:
    """search_text.csv, search_text_top.csv and search_text.json (the result envelope)."""
    write_text_atomic(out / "search_text.csv", table.to_csv(index=False))
    write_text_atomic(out / "search_text_top.csv", ranked.to_csv(index=False))
    write_json_atomic(out / "search_text.json", {
        **envelope("search-text", config=session.describe_config(), config_hash=key, seed=session.config.seed,
                   model=session.model.describe(), dataset=session.describe_data()),
        "head": session.head_info, "style_from": {"suite": session.config.suite, "stage": stage.describe()},
        "candidates": n_candidates, "targets": list(targets) if targets else None, "top_k": top_k,
    })


__all__ = ["SearchOptions", "TextSearch", "candidate_texts", "check_targets", "load_sample", "rank_for_targets", "read_words",
           "run_text_search", "search_texts", "short_forms", "template_stage"]
