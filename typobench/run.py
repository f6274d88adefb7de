"""``typobench run``: load a model, a data set and a head, run the stages, write the results."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .cache import TensorCache, content_key, default_cache_dir
from .classifier import ImageClassifier
from .data import ImageDataset, load_dataset, sample_hash, stratified_subset
from .errors import UsageError
from .evaluation import evaluate
from .heads import HEAD_KINDS
from .heads.build import build_linear_probe_head, build_zeroshot_head
from .models import LoadedModel, load_model
from .pictures import save_example_grid, save_stage_accuracy
from .resume import BatchStore
from .results import RESULTS_FILE, environment, read_results, summarise_stages, utc_now, write_results
from .runtime import Runtime
from .stages import CleanStage, RunContext
from .suites import Suite, load_suite

DEFAULT_MODEL = "toyclip"
DEFAULT_DATASET = "cifar10-sample"
DEFAULT_SUITE = "default"
# `typobench run` with no --dataset and no --limit evaluates this many images of the bundled sample
# (20 per class), so that the built-in demo takes about a minute on 2 CPU cores.
DEFAULT_DEMO_LIMIT = 200

# Options that change where or how fast a run happens, but not its numbers.
_NON_SEMANTIC = ("out", "workers", "cache_dir", "device", "overwrite", "neurons")


@dataclass
class RunConfig:
    """Every option of a run. The resolved config is recorded in results.json."""

    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    split: str = "test"
    download: bool = False
    classnames_file: str | None = None
    head: str = "zeroshot"
    suite: str | None = DEFAULT_SUITE
    limit: int | None = None
    probe_train_limit: int | None = None
    batch_size: int = 64
    workers: int = 0
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    out: str | None = None
    cache_dir: str | None = None
    overwrite: bool = False
    # Run the suite's [neurons] analysis (if it has one) after the attack run.
    neurons: bool = True

    def validate(self) -> None:
        if self.head not in HEAD_KINDS:
            raise UsageError(f"--head '{self.head}' is unknown: use one of {', '.join(HEAD_KINDS)}")
        for option in ("batch_size", "limit", "probe_train_limit"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise UsageError(f"--{option.replace('_', '-')} must be a positive integer, got {value}")
        if self.workers < 0:
            raise UsageError(f"--workers must be >= 0, got {self.workers}")

    def semantic(self) -> dict[str, Any]:
        """The options that determine the numbers (used for the resume guard)."""
        return {k: v for k, v in asdict(self).items() if k not in _NON_SEMANTIC}


@dataclass
class RunOutcome:
    out_dir: Path
    results: dict[str, Any]
    predictions: pd.DataFrame | None = None
    resumed_complete: bool = False
    notes: list[str] = field(default_factory=list)
    neurons: Any = None  # the NeuronsOutcome of the suite's [neurons] analysis, when it ran


def limit_dataset(dataset: ImageDataset, limit: int | None, seed: int) -> ImageDataset:
    """A deterministic class-stratified subset of ``limit`` items (all items when limit is None)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.subset(stratified_subset(dataset.labels, limit, seed))


def default_out_dir(config: RunConfig, config_hash: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{config.model}-{config.dataset}-{config.head}")
    return Path("runs") / f"{slug}-{config_hash[:10]}"


def build_classifier(config: RunConfig, loaded: LoadedModel, dataset: ImageDataset, runtime: Runtime,
                     cache: TensorCache) -> tuple[ImageClassifier, dict[str, Any]]:
    """The head the config asks for, on top of the loaded image tower, in eval mode."""
    if config.head == "zeroshot":
        head, info = build_zeroshot_head(loaded, dataset.classnames, dataset.templates, cache)
    else:
        train_set = load_dataset(config.dataset, root=config.data_root, split="train",
                                 transform=loaded.pixel_transform(), download=config.download,
                                 classnames_file=config.classnames_file)
        train_set = limit_dataset(train_set, config.probe_train_limit, config.seed)
        head, info = build_linear_probe_head(loaded, train_set, runtime, cache, batch_size=config.batch_size,
                                             workers=config.workers, seed=config.seed)
    classifier = ImageClassifier(loaded.model, loaded.mean, loaded.std, head).to(runtime.device).eval()
    return classifier, info


def load_inputs(config: RunConfig) -> tuple[Runtime, LoadedModel, ImageDataset]:
    """Runtime, model and the (limited) data set of a config: what every command loads first."""
    config.validate()
    runtime = Runtime.create(config.device, config.precision)
    loaded = load_model(config.model, config.pretrained, device=runtime.device, seed=config.seed)
    dataset = load_dataset(config.dataset, root=config.data_root, split=config.split,
                           transform=loaded.pixel_transform(), download=config.download,
                           classnames_file=config.classnames_file)
    return runtime, loaded, limit_dataset(dataset, config.limit, config.seed)


def build_context(config: RunConfig, runtime: Runtime, loaded: LoadedModel,
                  dataset: ImageDataset) -> tuple[RunContext, dict[str, Any]]:
    """The classifier with the config's head (cached by content), wrapped for stages."""
    cache = TensorCache(config.cache_dir or default_cache_dir())
    classifier, head_info = build_classifier(config, loaded, dataset, runtime, cache)
    ctx = RunContext(classifier=classifier, classnames=list(dataset.classnames), runtime=runtime, seed=config.seed)
    return ctx, head_info


def execute(config: RunConfig, *, progress: bool = True) -> RunOutcome:
    """Run the config's suite (only ``clean`` when ``suite`` is None) and write the results."""
    started = time.perf_counter()
    config.validate()
    suite = load_suite(config.suite) if config.suite else None
    stages = suite.stages if suite else [CleanStage()]
    runtime, loaded, dataset = load_inputs(config)
    if suite:
        suite.check(dataset.classnames)
    stage_info = [stage.describe() for stage in stages]
    config_hash = content_key(config=config.semantic(), model=loaded.fingerprint(),
                              samples=sample_hash(dataset.sample_ids), stages=stage_info,
                              suite=suite.sha256 if suite else None)
    out_dir = Path(config.out) if config.out else default_out_dir(config, config_hash)
    if (finished := _finished_run(out_dir, config_hash, config.overwrite)) is not None:
        outcome = RunOutcome(out_dir, finished, resumed_complete=True)
        outcome.neurons = _suite_neurons(suite, config, outcome, progress)
        return outcome

    ctx, head_info = build_context(config, runtime, loaded, dataset)
    store = BatchStore(out_dir, config_hash)
    predictions = evaluate(dataset, stages, ctx, store, batch_size=config.batch_size, workers=config.workers,
                           progress=progress)
    results = {
        "created": utc_now(),
        "versions": environment(),
        "config_hash": config_hash,
        "seed": config.seed,
        "config": {**{k: v for k, v in vars(config).items()}, "device_resolved": str(runtime.device)},
        "model": loaded.describe(),
        "dataset": {**dataset.describe(), "n": len(dataset), "limit": config.limit,
                    "sample_hash": sample_hash(dataset.sample_ids), "classnames": list(dataset.classnames)},
        "head": head_info,
        "suite": suite.describe() if suite else None,
        "stages": summarise_stages(predictions, stage_info, dataset.classnames),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    save_pictures(out_dir, store, results, predictions)
    write_results(out_dir, results, predictions)
    store.clear()
    outcome = RunOutcome(out_dir, results, predictions)
    outcome.neurons = _suite_neurons(suite, config, outcome, progress)
    return outcome


def _suite_neurons(suite: Suite | None, config: RunConfig, outcome: RunOutcome, progress: bool) -> Any:
    """The suite's [neurons] analysis of the finished run; skipped when an identical one is already there."""
    if suite is None or suite.neurons is None or not config.neurons:
        return None
    from .neurons.analysis import analyze
    from .neurons.report import JSON_FILE
    from .suites.neurons_option import neurons_config

    neurons = neurons_config(suite.neurons, str(outcome.out_dir), device=config.device, cache_dir=config.cache_dir,
                             batch_size=config.batch_size)
    previous = outcome.out_dir / JSON_FILE
    if previous.exists():
        report = json.loads(previous.read_text())
        same_run = report.get("run", {}).get("config_hash") == outcome.results.get("config_hash")
        if same_run and neurons.same_method(report.get("config", {})):
            outcome.notes.append(f"neurons: {previous} already holds this analysis, not re-run")
            return None
    return analyze(neurons, progress=progress)


def save_pictures(out_dir: Path, store: BatchStore, results: dict[str, Any], predictions: pd.DataFrame) -> None:
    """examples.png (a few images through every stage) and stages.png (accuracy per stage)."""
    examples, sample_ids = store.load_examples()
    examples = {stage["name"]: examples[stage["name"]] for stage in results["stages"] if stage["name"] in examples}
    classnames = results["dataset"]["classnames"]
    if sample_ids:
        save_example_grid(out_dir / "examples.png", examples, sample_ids, predictions, classnames)
    title = f"{results['model']['label']} on {results['dataset']['name']} ({results['head']['kind']})"
    save_stage_accuracy(out_dir / "stages.png", results["stages"], title=title)
    results["pictures"] = ["examples.png", "stages.png"] if sample_ids else ["stages.png"]


def _finished_run(out_dir: Path, config_hash: str, overwrite: bool) -> dict[str, Any] | None:
    """The results of an identical finished run in ``out_dir``, if there is one."""
    if not (out_dir / RESULTS_FILE).exists() or overwrite:
        return None
    previous = read_results(out_dir)
    if previous.get("config_hash") == config_hash:
        return previous
    raise UsageError(f"{out_dir} already holds results of a different configuration: "
                     "pass another --out, or --overwrite to replace them")
