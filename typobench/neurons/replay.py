"""Reuse a finished ``typobench run`` without re-running it.

The run's results.json holds its whole config. From it we reload the same model (checked against the
recorded weight hash), the same data subset (checked against the recorded sample hash), the same head
and the same suite (checked against the recorded suite hash). Stages are deterministic per sample
(seed + sample id + stage name), so the attacked image of any sample is regenerated exactly by applying
the suite's stages again -- only to the samples we need. Stages whose randomness or pairing depends on
the batch (PGD seeds its generator from the batch's first sample, ``paste`` pairs samples inside a
batch) are replayed on the run's original batches that hold the wanted samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from ..cache import TensorCache, default_cache_dir
from ..classifier import ImageClassifier
from ..data import ImageDataset, load_dataset, sample_hash
from ..errors import UsageError
from ..evaluation import apply_stage, batch_plan, text_targets
from ..models import LoadedModel, load_model
from ..results import PREDICTIONS_FILE, RESULTS_FILE, read_predictions, read_results
from ..run import RunConfig, build_classifier, limit_dataset
from ..runtime import Runtime
from ..stages import Batch, CleanStage, RunContext, Stage, score
from ..suites import Suite, load_suite

PER_SAMPLE_KINDS = ("clean", "text")


@dataclass
class RunReplay:
    run_dir: Path
    results: dict[str, Any]
    predictions: pd.DataFrame
    config: RunConfig
    suite: Suite | None
    stages: list[Stage]
    loaded: LoadedModel
    dataset: ImageDataset
    classifier: ImageClassifier
    ctx: RunContext
    runtime: Runtime

    @property
    def classnames(self) -> list[str]:
        return list(self.dataset.classnames)

    @property
    def side(self) -> int:
        return int(self.loaded.image_size[-1])

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
        items = [self.dataset[i] for i in positions]
        device = self.runtime.device
        return Batch(
            images=torch.stack([item[0] for item in items]).to(device),
            labels=torch.tensor([int(item[1]) for item in items], device=device).long(),
            indices=list(positions),
            sample_ids=[self.dataset.sample_ids[i] for i in positions],
            text_targets=text_targets(self.dataset, positions, device),
        )

    def clean_images(self, positions: Sequence[int], batch_size: int = 64) -> Tensor:
        """Clean images [n, 3, H, W] as uint8 when the pixels are exact 8-bit values (lossless), else float."""
        chunks = []
        for start in range(0, len(positions), batch_size):
            chunks.append(torch.stack([self.dataset[i][0] for i in positions[start:start + batch_size]]))
        if not chunks:
            return torch.zeros(0, 3, self.side, self.side, dtype=torch.uint8)
        images = torch.cat(chunks)
        quantised = (images * 255).round()
        if (quantised - images * 255).abs().max() < 1e-3:
            return quantised.to(torch.uint8)
        return images

    def regenerate(self, stage_name: str, positions: Sequence[int], batch_size: int = 64) -> tuple[Tensor, Tensor]:
        """(attacked images [n, 3, H, W] float on CPU, targets [n] with -1 = none) for ``positions``, in order."""
        stages = self.closure(stage_name)
        wanted = list(dict.fromkeys(int(p) for p in positions))
        wanted_set = set(wanted)
        if all(s.kind in PER_SAMPLE_KINDS for s in stages):
            batches = [wanted[i:i + batch_size] for i in range(0, len(wanted), batch_size)]
        else:
            batches = [b for b in batch_plan(len(self.dataset), self.config.batch_size) if wanted_set & set(b)]
        found: dict[int, tuple[Tensor, int]] = {}
        for positions_of_batch in batches:
            batch = self._batch(positions_of_batch)
            for stage in stages:
                apply_stage(stage, batch, self.ctx)
            output = batch.outputs.get(stage_name)
            if output is None:  # a suite without an explicit clean stage
                output = CleanStage().apply(batch.images, batch, self.ctx)
            for row, position in enumerate(positions_of_batch):
                if position in wanted_set:
                    target = -1 if output.targets is None else int(output.targets[row])
                    found[position] = (output.images[row].detach().float().cpu(), target)
        images = torch.stack([found[p][0] for p in positions]) if len(positions) else torch.zeros(0, 3, self.side, self.side)
        targets = torch.tensor([found[p][1] for p in positions], dtype=torch.long)
        return images, targets

    def predict(self, images: Tensor, batch_size: int = 64) -> Tensor:
        """Predictions [n] as the run scored them (its precision)."""
        preds = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size].to(self.runtime.device)
            preds.append(score(self.classifier, chunk, self.runtime).argmax(1).cpu())
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def _config_from_results(results: dict[str, Any]) -> RunConfig:
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in results.get("config", {}).items() if k in names})


def _load_suite(config: RunConfig, results: dict[str, Any]) -> Suite | None:
    recorded = results.get("suite")
    if not config.suite:
        return None
    candidates = [config.suite] + ([recorded["path"]] if recorded and recorded.get("path") else [])
    suite = None
    for candidate in candidates:
        try:
            suite = load_suite(candidate)
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
    """Everything needed to regenerate a finished run's images, checked against its results.json."""
    run_dir = check_run_dir(run_dir)
    results = read_results(run_dir)
    predictions = read_predictions(run_dir)
    config = _config_from_results(results)
    config.device = device
    if cache_dir:
        config.cache_dir = cache_dir
    suite = _load_suite(config, results)
    stages = suite.stages if suite else [CleanStage()]
    runtime = Runtime.create(device, config.precision)
    loaded = load_model(config.model, config.pretrained, device=runtime.device, seed=config.seed)
    recorded_weights = results.get("model", {}).get("weights_sha256")
    if recorded_weights and loaded.fingerprint() != recorded_weights:
        raise UsageError(f"model '{config.model}' now has other weights than in the run ({run_dir}): "
                         "its predictions cannot be reproduced; rerun the attack with this model")
    dataset = load_dataset(config.dataset, root=config.data_root, split=config.split,
                           transform=loaded.pixel_transform(), download=False,
                           classnames_file=config.classnames_file)
    dataset = limit_dataset(dataset, config.limit, config.seed)
    recorded_samples = results.get("dataset", {}).get("sample_hash")
    if recorded_samples and sample_hash(dataset.sample_ids) != recorded_samples:
        raise UsageError(f"data set '{config.dataset}' at {config.data_root} no longer holds the run's samples "
                         "(sample hash differs): point the run at the same data")
    cache = TensorCache(config.cache_dir or default_cache_dir())
    classifier, _ = build_classifier(config, loaded, dataset, runtime, cache)
    ctx = RunContext(classifier=classifier, classnames=list(dataset.classnames), runtime=runtime, seed=config.seed)
    return RunReplay(run_dir, results, predictions, config, suite, stages, loaded, dataset, classifier, ctx, runtime)


__all__ = ["PER_SAMPLE_KINDS", "RunReplay", "check_run_dir", "load_run"]
