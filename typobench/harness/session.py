"""A session: what a run loads once -- runtime, model, data, head, classifier, cache -- and the one
evaluation path every command goes through.

    session = Session.open(RunConfig(model="toyclip", dataset="cifar10-sample", limit=200))
    predictions = session.evaluate(suite.stages, BatchStore(out_dir, session.run_key(suite.stages, suite)))

``run`` (one suite), ``sweep`` (a suite per grid point), ``neurons`` (the run's session in memory, or one
reopened from results.json), ``search-text``, ``stroop`` and the Python API all hold a ``Session``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from typobench.core.cache import TensorCache, content_key, default_cache_dir
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import ImageDataset, load_dataset, sample_hash
from typobench.harness.config import RunConfig, limit_dataset
from typobench.harness.evaluation import evaluate
from typobench.harness.resume import BatchStore
from typobench.harness.world import World
from typobench.heads.build import build_linear_probe_head, build_zeroshot_head
from typobench.models import LoadedModel, load_model
from typobench.models.classifier import ImageClassifier
from typobench.stages.base import RunContext, Stage


@dataclass
class Session:
    """A model with its head on a data set, loaded once. The head is built on first use (a Stroop
    session needs none); ``dataset`` is None for a session without data."""

    config: RunConfig
    runtime: Runtime
    model: LoadedModel
    dataset: ImageDataset | None
    cache: TensorCache
    world: World = field(default_factory=World)
    _classifier: ImageClassifier | None = field(default=None, repr=False)
    _head_info: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, config: RunConfig, *, data: bool = True, world: World | None = None) -> Session:
        """Validate ``config``, then load the runtime, the model and (with ``data``) the limited data set.

        ``world``: the processes the evaluation is spread over (default: from torchrun's or SLURM's
        environment; one process without them). Each rank uses its own GPU on CUDA.
        """
        config.validate()
        world = world or World.from_env()
        runtime = Runtime.create(world.device(config.device), config.precision)
        world.join(runtime.device.type)
        model = load_model(config.model, config.pretrained, device=runtime.device, seed=config.seed)
        return cls.of(config, runtime, model, load_data(config, model) if data else None, world=world)

    @classmethod
    def of(cls, config: RunConfig, runtime: Runtime, model: LoadedModel, dataset: ImageDataset | None, *,
           world: World | None = None) -> Session:
        """A session over what is already loaded (the Python API keeps models and data between calls)."""
        return cls(config, runtime, model, dataset, TensorCache(config.cache_dir or default_cache_dir()),
                   world or World())

    # -- the head ---------------------------------------------------------------------------------

    @property
    def data(self) -> ImageDataset:
        if self.dataset is None:
            raise UsageError("this session was opened without a data set: open it with data=True")
        return self.dataset

    @property
    def classifier(self) -> ImageClassifier:
        """The config's head on the image tower, in eval mode; built (from the cache) on first use."""
        if self._classifier is None and self.config.head == "zeroshot":
            # Rank 0 builds the class embeddings first and caches them; the other ranks read them back.
            if not self.world.leader:
                self.world.barrier()
            self._classifier, self._head_info = self.zeroshot_classifier(self.data.classnames, self.data.templates)
            if self.world.leader:
                self.world.barrier()
        elif self._classifier is None:  # every rank extracts its share of the probe's features
            self._classifier, self._head_info = self._linear_probe_classifier()
        return self._classifier

    @property
    def head_info(self) -> dict[str, Any]:
        self.classifier  # noqa: B018 -- built on first use
        return self._head_info

    def zeroshot_classifier(self, classnames: Sequence[str],
                            templates: Sequence[str]) -> tuple[ImageClassifier, dict[str, Any]]:
        """A zero-shot classifier over ``classnames`` with ``templates`` (class embeddings cached)."""
        head, info = build_zeroshot_head(self.model, list(classnames), list(templates), self.cache)
        return self._wrap(head), info

    def _linear_probe_classifier(self) -> tuple[ImageClassifier, dict[str, Any]]:
        config = self.config
        train_set = load_dataset(config.dataset, root=config.data_root, split="train",
                                 transform=self.model.pixel_transform(), download=config.download,
                                 classnames_file=config.classnames_file)
        train_set = limit_dataset(train_set, config.probe_train_limit, config.seed)
        head, info = build_linear_probe_head(self.model, train_set, self.runtime, self.cache,
                                             batch_size=config.batch_size, workers=config.workers, seed=config.seed,
                                             part=(self.world.rank, self.world.size), gather=self.world.gather_rows)
        return self._wrap(head), info

    def _wrap(self, head) -> ImageClassifier:
        model = self.model
        return ImageClassifier(model.model, model.mean, model.std, head).to(self.runtime.device).eval()

    @property
    def context(self) -> RunContext:
        """What every stage may use."""
        return RunContext(classifier=self.classifier, classnames=list(self.data.classnames), runtime=self.runtime,
                          seed=self.config.seed)

    # -- identity ---------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What determines the numbers apart from the stages: the options, the weights, the samples."""
        samples = sample_hash(self.dataset.sample_ids) if self.dataset is not None else None
        return {"config": self.config.semantic(), "model": self.model.fingerprint(), "samples": samples}

    def run_key(self, stages: Sequence[Stage], suite_sha256: str | None) -> str:
        """The content key of running ``stages`` (of a suite with this sha256) in this session."""
        return content_key(**self.identity(), stages=[s.describe() for s in stages], suite=suite_sha256)

    def describe_data(self) -> dict[str, Any]:
        """The data identity recorded in every result: name, split, root, n, limit, sample hash, classes."""
        data = self.data
        return {**data.describe(), "n": len(data), "limit": self.config.limit,
                "sample_hash": sample_hash(data.sample_ids), "classnames": list(data.classnames)}

    def describe_config(self) -> dict[str, Any]:
        return {**asdict(self.config), "device_resolved": str(self.runtime.device)}

    # -- the evaluation path ----------------------------------------------------------------------

    def evaluate(self, stages: Sequence[Stage], store: BatchStore, *, progress: bool = False,
                 on_start: Callable[[int, int], None] | None = None) -> pd.DataFrame:
        """Predictions of every stage on every sample (one row per sample and stage), resumable in ``store``;
        ``on_start(done, total)`` is told how many batches were finished earlier."""
        return evaluate(self.data, stages, self.context, store, batch_size=self.config.batch_size,
                        workers=self.config.workers, progress=progress, on_start=on_start,
                        flush_seconds=self.config.checkpoint_seconds, world=self.world)


def load_data(config: RunConfig, model: LoadedModel) -> ImageDataset:
    """The config's data set through the model's resize and crop, limited to ``config.limit`` items."""
    dataset = load_dataset(config.dataset, root=config.data_root, split=config.split,
                           transform=model.pixel_transform(), download=config.download,
                           classnames_file=config.classnames_file)
    return limit_dataset(dataset, config.limit, config.seed)


__all__ = ["Session", "load_data"]
