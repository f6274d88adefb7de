"""The batch loop: stream the data set once, run every stage on each batch, record predictions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from typobench.data import ImageDataset
from typobench.harness.columns import Columns, stack_columns
from typobench.harness.legibility import legibility_columns
from typobench.harness.resume import BatchStore, Examples
from typobench.harness.twoway import two_way_columns, written_classes
from typobench.harness.world import World
from typobench.stages.base import Batch, RunContext, Stage, StageOutput, check_sources, score


def batch_plan(n: int, batch_size: int) -> list[list[int]]:
    """Item indices of every batch, in order: fixed for a given n and batch size."""
    return [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]


def prediction_rows(stage: Stage, batch: Batch, logits: Tensor, output: StageOutput) -> dict[str, Any]:
    """Columns of one row per sample: id, label, prediction, top-5, probability of the label, stage columns."""
    k = min(5, logits.shape[1])
    top = logits.topk(k, dim=-1).indices.cpu().numpy()
    n = len(batch.sample_ids)
    columns: dict[str, Any] = {
        "stage": [stage.name] * n,
        "sample_id": batch.sample_ids,
        "index": batch.indices,
        "label": batch.labels.cpu().numpy(),
        "pred": top[:, 0],
        "top5": [" ".join(map(str, row)) for row in top.tolist()],
        "p_label": logits.softmax(dim=-1).gather(1, batch.labels.view(-1, 1)).squeeze(1).cpu().numpy(),
        # -1 = no target; every stage has the column so the long table stays numeric.
        "target": np.full(n, -1) if output.targets is None else output.targets.cpu().numpy(),
    }
    columns.update(output.columns)
    return columns


def apply_stage(stage: Stage, batch: Batch, ctx: RunContext) -> StageOutput:
    """``stage`` applied to the images of its source (an earlier stage's output, else the clean batch);
    the output is also kept in ``batch.outputs`` for the stages that read it."""
    source = batch.outputs[stage.source].images if stage.source in batch.outputs else batch.images
    output = batch.outputs[stage.name] = stage.apply(source, batch, ctx)
    return output


def run_stages_on_batch(stages: Sequence[Stage], batch: Batch, ctx: RunContext) -> dict[str, Any]:
    """Every stage applied to ``batch`` and scored: prediction columns, one row per sample and stage
    (stage after stage)."""
    rows = []
    for stage in stages:
        output = apply_stage(stage, batch, ctx)
        logits = score(ctx.classifier, output.images, ctx.runtime)
        rows.append({**prediction_rows(stage, batch, logits, output), **reading_columns(batch, logits, output, ctx)})
    return stack_columns(rows)


def reading_columns(batch: Batch, logits: Tensor, output: StageOutput, ctx: RunContext) -> dict[str, Any]:
    """SCAM's two-way columns where a word is written (``harness.twoway``), and the OCR's reading of the
    stage's text when the run asks for legibility (``harness.legibility``)."""
    texts = output.columns.get("text")
    written = written_classes(texts, batch.text_targets, ctx.classnames)
    columns = {} if written is None else two_way_columns(logits, batch.labels, written, output.mask)
    if ctx.extras.get("legibility") and texts is not None and output.mask is not None:
        columns.update(legibility_columns(output.images, output.mask, texts))
    return columns


def text_targets(dataset: ImageDataset, indices: Sequence[int], device: torch.device) -> torch.Tensor | None:
    """The written-text class of each item (real-world typographic sets), or None for other data sets."""
    written = getattr(dataset, "text_targets", None)
    if written is None:
        return None
    return torch.tensor([written[i] for i in indices], device=device)


def make_batch(dataset: ImageDataset, images: Tensor, labels: Tensor, indices: list[int],
               device: torch.device) -> Batch:
    """A loaded batch on the run's device, with its sample ids and written-text targets."""
    return Batch(
        images=images.to(device, non_blocking=True),
        labels=labels.to(device, non_blocking=True).long(),
        indices=indices,
        sample_ids=[dataset.sample_ids[i] for i in indices],
        text_targets=text_targets(dataset, indices, device),
    )


def predict_stages(
    dataset: ImageDataset,
    stages: Sequence[Stage],
    ctx: RunContext,
    store: BatchStore,
    *,
    batch_size: int,
    workers: int = 0,
    progress: bool = True,
    examples: int = 6,
    flush_seconds: float = 15.0,
    on_start: Callable[[int, int], None] | None = None,
    world: World = World(),
) -> pd.DataFrame | None:
    """Predictions of every stage on every item of ``dataset`` (long format, one row per sample and stage).

    Finished batches are saved in ``store`` at least every ``flush_seconds`` and whenever the loop
    stops (an exception or Ctrl-C included); batches already there are skipped. Saving in groups
    rather than per batch keeps file writes off the hot path of small models.
    ``examples`` samples spread evenly over the data set are kept through every stage for a picture.

    Spread over ``world``, each rank evaluates every ``size``-th unfinished batch. Whole batches of one
    fixed plan: PGD's generator and paste's pairs are per batch, so the numbers do not depend on the
    number of processes. Rank 0 returns every rank's predictions (read back from the store); the
    others return None.
    """
    check_sources(stages)
    plan = batch_plan(len(dataset), batch_size)
    done = open_store(store, world)
    if on_start is not None:
        on_start(len(done), len(plan))
    todo = world.shard([i for i in range(len(plan)) if i not in done])
    bar = tqdm(total=len(dataset), initial=sum(len(plan[i]) for i in done), desc="evaluate", unit="img",
               disable=not (progress and world.leader), mininterval=1.0)
    try:
        finished = _evaluate_batches(dataset, stages, ctx, store, plan, todo, bar, examples=examples,
                                     workers=workers, flush_seconds=flush_seconds, world_size=world.size)
    finally:
        bar.close()
    world.barrier()  # every rank's batches are on disk
    if done or world.distributed:  # earlier or other ranks' batches are on disk only
        return store.load_all() if world.leader else None
    return pd.concat(finished, ignore_index=True) if finished else store.load_all()


def open_store(store: BatchStore, world: World) -> set[int]:
    """Rank 0 opens (verifies, repairs) the store and records the attempt; then every rank reads it."""
    done = world.leader_does(lambda: store.open(world.size))
    attempt = int(world.broadcast_text(str(store.attempt)))
    return done if world.leader else store.open_shared(attempt, world.rank)


def _evaluate_batches(dataset: ImageDataset, stages: Sequence[Stage], ctx: RunContext, store: BatchStore,
                      plan: list[list[int]], todo: list[int], bar, *, examples: int, workers: int,
                      flush_seconds: float, world_size: int) -> list[pd.DataFrame]:
    """Run the stages on the batches ``todo`` of ``plan``; finished ones reach ``store`` whatever happens."""
    example_positions = {round(i * (len(dataset) - 1) / max(examples - 1, 1)) for i in range(examples)}
    loader = DataLoader(dataset, batch_sampler=[plan[i] for i in todo], num_workers=workers)
    pending: dict[int, Columns] = {}
    examples: dict[int, Examples] = {}
    finished: list[pd.DataFrame] = []
    last_flush = time.monotonic()

    def flush() -> None:
        finished.append(store.save(pending))
        if examples:
            store.save_examples(examples)
        pending.clear()
        examples.clear()

    try:
        for batch_no, (images, labels, indices) in zip(todo, loader):
            batch = make_batch(dataset, images, labels, indices.tolist(), ctx.runtime.device)
            pending[batch_no] = run_stages_on_batch(stages, batch, ctx)
            keep = [row for row, i in enumerate(batch.indices) if i in example_positions]
            if keep:
                examples[batch_no] = ({name: out.images[keep] for name, out in batch.outputs.items()},
                                      [batch.sample_ids[row] for row in keep])
            if time.monotonic() - last_flush > flush_seconds:
                flush()
                last_flush = time.monotonic()
            # Ranks share the batches evenly: rank 0's progress stands for all of them.
            bar.update(min(len(batch.indices) * world_size, bar.total - bar.n))
    finally:
        # Whatever happened, finished batches reach the disk before the loop is left.
        if pending:
            flush()
    return finished


__all__ = ["batch_plan", "make_batch", "open_store", "predict_stages", "prediction_rows", "run_stages_on_batch"]
