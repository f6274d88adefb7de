"""A finished ``typobench run`` held with the session that can regenerate its attacked images.

Two ways to get one: ``replay_outcome`` takes the run just made in this process (its session already
holds the model, data and head: nothing is loaded again); ``load_run`` reopens a run from its folder
(results.json holds the whole config: the session is reopened from it and checked against the recorded
weight hash, sample hash and suite hash).

Stages are deterministic per sample (seed + sample id + stage name), so the attacked image of any sample
is regenerated exactly by applying the suite's stages again -- only to the samples we need. Stages whose
randomness or pairing depends on the batch (PGD seeds its generator from the batch's first sample,
``paste`` pairs samples inside a batch) are replayed on the run's original batches that hold the wanted
samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.data import ImageDataset, sample_hash, stack_images
from typobench.harness.config import RunConfig
from typobench.harness.evaluation import apply_stage, batch_plan, make_batch
from typobench.harness.results import PREDICTIONS_FILE, RESULTS_FILE, read_predictions, read_results
from typobench.harness.run import RunOutcome
from typobench.harness.session import Session
from typobench.harness.world import World
from typobench.models.classifier import ImageClassifier
from typobench.stages.base import Batch, CleanStage, Stage, score
from typobench.suites import Suite, read_suite

# Stages whose output for a sample does not depend on the other samples of its batch.
PER_SAMPLE_KINDS = ("clean", "text")


@dataclass
class RunReplay:
    """A finished run (its folder, results.json, predictions, suite and stages) and the session it ran in."""

    run_dir: Path
    results: dict[str, Any]
    predictions: pd.DataFrame
    suite: Suite | None
    stages: list[Stage]
    session: Session

    @property
    def config(self) -> RunConfig:
        return self.session.config

    @property
    def dataset(self) -> ImageDataset:
        return self.session.data

    @property
    def classifier(self) -> ImageClassifier:
        return self.session.classifier

    @property
    def classnames(self) -> list[str]:
        return list(self.dataset.classnames)

    @property
    def side(self) -> int:
        """The model's input side in pixels (square images)."""
        return int(self.session.model.image_size[-1])

    def closure(self, stage_name: str) -> list[Stage]:
        """The stages needed to produce ``stage_name``'s images, in run order."""
        by_name = {s.name: s for s in self.stages}
        needed: set[str] = set()
        todo = [stage_name]
        while todo:
            name = todo.pop()
            if name in needed or name not in by_name:
                continue
            needed.add(name)
            todo.extend(by_name[name].requires())
        return [s for s in self.stages if s.name in needed]

    def _batch(self, positions: Sequence[int]) -> Batch:
        return make_batch(self.dataset, *stack_images(self.dataset, positions), list(positions),
                          self.session.runtime.device)

    def clean_images(self, positions: Sequence[int], batch_size: int = 64) -> Tensor:
        """Clean images [n, 3, H, W] as uint8 when the pixels are exact 8-bit values (lossless), else float."""
        chunks = []
        for start in range(0, len(positions), batch_size):
            chunks.append(stack_images(self.dataset, positions[start:start + batch_size])[0])
        if not chunks:
            return torch.zeros(0, 3, self.side, self.side, dtype=torch.uint8)
        images = torch.cat(chunks)
        quantised = (images * 255).round()
        if (quantised - images * 255).abs().max() < 1e-3:
            return quantised.to(torch.uint8)
        return images

    def _replay_batches(self, stage_name: str, wanted: list[int], batch_size: int) -> list[list[int]]:
        """The batches to replay: any grouping for per-sample stages, else the run's own batches."""
        if all(s.kind in PER_SAMPLE_KINDS for s in self.closure(stage_name)):
            return [wanted[i:i + batch_size] for i in range(0, len(wanted), batch_size)]
        wanted_set = set(wanted)
        return [b for b in batch_plan(len(self.dataset), self.config.batch_size) if wanted_set & set(b)]

    def regenerate(self, stage_name: str, positions: Sequence[int], batch_size: int = 64) -> tuple[Tensor, Tensor]:
        """(attacked images [n, 3, H, W] float on CPU, targets [n] with -1 = none) for ``positions``, in order."""
        stages = self.closure(stage_name)
        wanted = list(dict.fromkeys(int(p) for p in positions))
        wanted_set = set(wanted)
        ctx = self.session.context
        found: dict[int, tuple[Tensor, int]] = {}
        for positions_of_batch in self._replay_batches(stage_name, wanted, batch_size):
            batch = self._batch(positions_of_batch)
            for stage in stages:
                apply_stage(stage, batch, ctx)
            output = batch.outputs.get(stage_name)
            if output is None:  # a suite without an explicit clean stage
                output = CleanStage().apply(batch.images, batch, ctx)
            for row, position in enumerate(positions_of_batch):
                if position in wanted_set:
                    target = -1 if output.targets is None else int(output.targets[row])
                    found[position] = (output.images[row].detach().float().cpu(), target)
        if not len(positions):
            return torch.zeros(0, 3, self.side, self.side), torch.zeros(0, dtype=torch.long)
        images = torch.stack([found[int(p)][0] for p in positions])
        targets = torch.tensor([found[int(p)][1] for p in positions], dtype=torch.long)
        return images, targets

    def predict(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """Predictions [n] as the run scored them (its precision)."""
        preds = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size].to(self.session.runtime.device)
            preds.append(score(self.classifier, chunk, self.session.runtime).argmax(1).cpu())
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def replay_outcome(outcome: RunOutcome) -> RunReplay:
    """The run ``typobench run`` just made (or read back) in this process, with the session it holds."""
    if outcome.session is None:
        raise UsageError(f"the run in {outcome.out_dir} holds no session to replay it: "
                         "analyse it from its folder with `typobench neurons --from`")
    suite = outcome.suite
    stages = suite.stages if suite else [CleanStage()]
    return RunReplay(Path(outcome.out_dir), outcome.results, outcome.predictions, suite, stages, outcome.session)


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` if it holds a finished run (results.json and predictions.csv), else a one-line UsageError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"--from '{run_dir}' is not a folder: pass the output folder of a finished `typobench run`")
    for name in (RESULTS_FILE, PREDICTIONS_FILE):
        if not (run_dir / name).is_file():
            raise UsageError(f"--from '{run_dir}' has no {name}: pass the output folder of a finished `typobench run`")
    return run_dir


def load_run(run_dir: str | Path, *, device: str = "auto", cache_dir: str | None = None) -> RunReplay:
    """A finished run reopened from its folder: the session of its recorded config, checked against results.json."""
    run_dir = check_run_dir(run_dir)
    results = read_results(run_dir)
    # The replay uses the data already there: fetching it again could bring other samples.
    config = replace(RunConfig.from_record(results.get("config", {})), device=device, download=False)
    if cache_dir:
        config.cache_dir = cache_dir
    suite = _recorded_suite(config, results)
    # One process: under torchrun, rank 0 alone analyses a finished run (the analysis is not spread).
    session = Session.open(config, world=World())
    if suite is not None:  # as run_suite does: the suite's [defense] tables come after the command line's
        session = session.with_defenses(suite.defenses)
    _check_session(session, results, run_dir)
    stages = suite.stages if suite else [CleanStage()]
    return RunReplay(run_dir, results, read_predictions(run_dir), suite, stages, session)


def _recorded_suite(config: RunConfig, results: dict[str, Any]) -> Suite | None:
    """The run's suite, found by its name or recorded path, with the recorded sha256."""
    recorded = results.get("suite")
    if not config.suite:
        return None
    candidates = [config.suite] + ([recorded["path"]] if recorded and recorded.get("path") else [])
    suite = None
    for candidate in candidates:
        try:
            suite = read_suite(candidate)
            break
        except UsageError:
            continue
    if suite is None:
        raise UsageError(f"the run's suite '{config.suite}' cannot be found any more: its attacked images cannot be "
                         "regenerated; restore the suite file or rerun the attack")
    if recorded and recorded.get("sha256") and suite.sha256 != recorded["sha256"]:
        raise UsageError(f"suite '{config.suite}' changed since the run (sha256 differs): its attacked images cannot "
                         "be regenerated exactly; restore the suite file or rerun the attack")
    return suite


def _check_session(session: Session, results: dict[str, Any], run_dir: Path) -> None:
    """The reopened session must hold the run's weights and samples, or its predictions cannot be reproduced."""
    config = session.config
    recorded_weights = results.get("model", {}).get("weights_sha256")
    if recorded_weights and session.model.fingerprint() != recorded_weights:
        raise UsageError(f"model '{config.model}' now has other weights than in the run ({run_dir}): "
                         "its predictions cannot be reproduced; rerun the attack with this model")
    recorded_samples = results.get("dataset", {}).get("sample_hash")
    if recorded_samples and sample_hash(session.data.sample_ids) != recorded_samples:
        raise UsageError(f"data set '{config.dataset}' at {config.data_root} no longer holds the run's samples "
                         "(sample hash differs): point the run at the same data")


__all__ = ["PER_SAMPLE_KINDS", "RunReplay", "check_run_dir", "load_run", "replay_outcome"]
