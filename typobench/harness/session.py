"""A session: what a run loads once -- runtime, model, data, head, classifier, cache -- and the one
evaluation path every command goes through.

    session = Session.open(RunConfig(model="toyclip", dataset="cifar10-sample", limit=200))
    predictions = session.predict_stages(suite.stages, BatchStore(out_dir, session.run_key(suite.stages, suite)))

``run`` (one suite), ``sweep`` (a suite per grid point), ``neurons`` (the run's session in memory, or one
reopened from results.json), ``search-text``, ``stroop`` and the Python API all hold a ``Session``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
from torch import nn

from typobench.core.cache import TensorCache, content_key, default_cache_dir
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime, compute_record
from typobench.data import ImageDataset, sample_hash
from typobench.defenses import BuildContext, Defended, Defense, Prompts, build_defended, parse_defenses, zeroshot_head
from typobench.defenses.registry import create_defense
from typobench.harness.config import RunConfig, load_data, load_split
from typobench.harness.defense_support import request_images
from typobench.harness.evaluation import predict_stages
from typobench.harness.provenance import check_provenance
from typobench.harness.resume import BatchStore
from typobench.harness.world import World
from typobench.heads import HEADS, Head
from typobench.heads.build import build_linear_probe_head, build_zeroshot_head
from typobench.models import LoadedModel, load_model
from typobench.models.loading import convolutions_channels_last
from typobench.models.classifier import ImageClassifier
from typobench.stages.base import RunContext, Stage
from typobench.suites.head_option import HeadProtocol


@dataclass
class Session:
    """A model with its head on a data set, loaded once. The head is built on first use (a Stroop
    session needs none); ``dataset`` is None for a session without data. ``defenses`` (parsed from
    ``config.defenses``, plus any added by :meth:`with_defenses`) are part of the model under test: the
    ``classifier`` is the defended one."""

    config: RunConfig
    runtime: Runtime
    model: LoadedModel
    dataset: ImageDataset | None
    cache: TensorCache
    world: World = field(default_factory=World)
    defenses: list[Defense] = field(default_factory=list)
    # A suite's [head] table: the zero-shot templates and temperature its protocol fixes (None: the data set's
    # templates and the model's own temperature).
    protocol: HeadProtocol | None = None
    _classifier: nn.Module | None = field(default=None, repr=False)
    _head_info: dict[str, Any] = field(default_factory=dict, repr=False)
    _defended: Defended | None = field(default=None, repr=False)
    _undefended: Session | None = field(default=None, repr=False)
    _provenance: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, config: RunConfig, *, data: bool = True, world: World | None = None) -> Session:
        """Validate ``config``, then load the runtime, the model and (with ``data``) the limited data set.

        ``world``: the processes the evaluation is spread over (default: from torchrun's or SLURM's
        environment; one process without them). Each rank uses its own GPU on CUDA.
        """
        config.validate()
        defenses = parse_defenses(config.defenses)  # a bad spec fails before the model loads
        world = world or World.from_env()
        runtime = Runtime.create(world.device(config.device), config.precision)
        world.join(runtime.device.type)
        model = load_model(config.model, config.pretrained, device=runtime.device, seed=config.seed,
                           vision_tower=config.vision_tower)
        if config.precision != "fp32":
            # fp32 stays contiguous: its per-sample logits are the pinned reference, and channels-last kernels
            # sum in another order. Reduced precision already differs from fp32, and gains most from it.
            convolutions_channels_last(model.model)
        return cls.of(config, runtime, model, load_data(config, model) if data else None, world=world,
                      defenses=defenses)

    @classmethod
    def of(cls, config: RunConfig, runtime: Runtime, model: LoadedModel, dataset: ImageDataset | None, *,
           world: World | None = None, defenses: Sequence[Defense] | None = None) -> Session:
        """A session over what is already loaded (the Python API keeps models and data between calls)."""
        defenses = list(defenses) if defenses is not None else parse_defenses(config.defenses)
        session = cls(config, runtime, model, dataset, TensorCache(config.cache_dir or default_cache_dir()),
                      world or World(), defenses)
        session._check_defenses()  # before anything is built or scored
        return session

    def with_defenses(self, defenses: Sequence[Defense | str | Mapping[str, Any]]) -> Session:
        """This session with ``defenses`` (parsed ones, specs or tables) added after its own: the model, data
        and cache are shared (nothing is loaded again); the defended classifier is built on first use."""
        added = [d if isinstance(d, Defense) else create_defense(d) for d in defenses]
        if not added:
            return self
        session = replace(self, defenses=[*self.defenses, *added], _classifier=None, _head_info={}, _defended=None,
                          _undefended=self.undefended(), _provenance=None)
        session._check_defenses()  # every path that adds a defense (suite tables, defend rows, the API) passes here
        return session

    def with_head_protocol(self, protocol: HeadProtocol | None) -> Session:
        """This session with the zero-shot head ``protocol`` fixes (itself for None); a head without prompts
        cannot take one."""
        if protocol is None:
            return self
        if not self.head_kind.prompts:
            raise UsageError(f"the suite fixes zero-shot prompts ([head] table), but --head {self.config.head} has "
                             "none: run it with --head zeroshot")
        return replace(self, protocol=protocol, _classifier=None, _head_info={}, _defended=None, _undefended=None)

    def _check_defenses(self) -> None:
        if self.defenses and self.dataset is not None:
            self.provenance()

    def provenance(self) -> list[dict[str, Any]]:
        """What each defense was chosen on (results.json's ``defense_provenance``), checked against the scored
        data and model once: a defense chosen on the images it is scored on, or for another model, is refused."""
        if self._provenance is None:
            self._provenance = check_provenance(self.defenses, self.model, self.data)
        return self._provenance

    def undefended(self) -> Session:
        """The same session without any defense (itself when it has none): the model transfer attacks use."""
        if not self.defenses:
            return self
        if self._undefended is None:
            self._undefended = replace(self, defenses=[], _classifier=None, _head_info={}, _defended=None,
                                       _provenance=None)
        return self._undefended

    # -- the head ---------------------------------------------------------------------------------

    @property
    def data(self) -> ImageDataset:
        if self.dataset is None:
            raise UsageError("this session was opened without a data set: open it with data=True")
        return self.dataset

    @property
    def head_kind(self) -> type[Head]:
        """The class of the config's head, which declares what a session does differently for its kind."""
        return HEADS.get(self.config.head)

    @property
    def classifier(self) -> nn.Module:
        """The config's head on the image tower with the session's defenses, in eval mode; built (from the
        cache) on first use."""
        if self._classifier is None and self.head_kind.leader_builds_first:
            # Rank 0 builds the head first and caches it (class embeddings); the other ranks read it back.
            if not self.world.leader:
                self.world.barrier()
            self._classifier, self._head_info = self._build_classifier()
            if self.world.leader:
                self.world.barrier()
        elif self._classifier is None:  # every rank builds its share (the probe's features) together
            self._classifier, self._head_info = self._build_classifier()
        return self._classifier

    def _build_classifier(self) -> tuple[nn.Module, dict[str, Any]]:
        if self.defenses:
            return self.defended.classifier, self.defended.head_info
        head, info = self.build_head(self.model, self._prompts())
        return self._wrap(head), info

    def _prompts(self) -> Prompts | None:
        """The data set's templates for a head made from zero-shot prompts; None for a head without prompts."""
        if not self.head_kind.prompts:
            return None
        protocol = self.protocol or HeadProtocol()
        return Prompts(tuple(protocol.templates or self.data.templates), logit_scale=protocol.logit_scale)

    def build_head(self, model: LoadedModel, prompts: Prompts | None) -> tuple[nn.Module, dict[str, Any]]:
        """The config's head on ``model`` (the session's, or its defended weights): made from ``prompts`` (class
        embeddings cached), or a probe fitted on the train split's features."""
        if self.head_kind.prompts:
            return zeroshot_head(model, self.data.classnames, prompts, self.cache)
        return self._linear_probe_head(model)

    @property
    def defended(self) -> Defended:
        """The session's defenses applied to its model and head (built once; see ``defenses.build``)."""
        if self._defended is None:
            if self.dataset is not None:
                self.provenance()  # the last gate: a session built by hand (not through of/with_defenses) stops here too
            context = BuildContext(self.runtime, self.config.batch_size,
                                   lambda request: request_images(self.config, self.model, request))
            self._defended = build_defended(self.model, self.defenses, head=self.build_head, ctx=context,
                                            prompts=self._prompts())
        return self._defended

    def defense_records(self) -> list[dict[str, Any]]:
        """One record per defense (results.json's ``defenses``); empty without defenses."""
        return self.defended.records if self.defenses else []

    @property
    def head_info(self) -> dict[str, Any]:
        self.classifier  # noqa: B018 -- built on first use
        return self._head_info

    def zeroshot_classifier(self, classnames: Sequence[str],
                            templates: Sequence[str]) -> tuple[ImageClassifier, dict[str, Any]]:
        """A zero-shot classifier over ``classnames`` with ``templates`` (class embeddings cached)."""
        head, info = build_zeroshot_head(self.model, list(classnames), list(templates), self.cache)
        return self._wrap(head), info

    def _linear_probe_head(self, model: LoadedModel) -> tuple[nn.Module, dict[str, Any]]:
        """A probe trained on ``model``'s features (the session's model, or its defended weights)."""
        config = self.config
        train_set = load_split(config, model, "train", limit=config.probe_train_limit)
        return build_linear_probe_head(model, train_set, self.runtime, self.cache, batch_size=config.batch_size,
                                       workers=config.workers, seed=config.seed, part=(self.world.rank, self.world.size),
                                       gather=self.world.gather_rows)

    def _wrap(self, head) -> ImageClassifier:
        return ImageClassifier.of(self.model, head, self.runtime.device)

    @property
    def context(self) -> RunContext:
        """What every stage may use."""
        undefended = (lambda: self.undefended().classifier) if self.defenses else None
        return RunContext(classifier=self.classifier, classnames=list(self.data.classnames), runtime=self.runtime,
                          seed=self.config.seed, undefended=undefended,
                          extras={"legibility": True} if self.config.legibility else {})

    # -- identity ---------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What determines the numbers apart from the stages: the options, the weights, the samples."""
        samples = sample_hash(self.dataset.sample_ids) if self.dataset is not None else None
        identity = {"config": self.config.semantic(), "model": self.model.fingerprint(), "samples": samples}
        # Only a defended session says so: the keys of undefended runs stay what they were.
        return {**identity, "defenses": self.defense_records()} if self.defenses else identity

    def run_key(self, stages: Sequence[Stage], suite_sha256: str | None) -> str:
        """The content key of running ``stages`` (of a suite with this sha256) in this session."""
        return content_key(**self.identity(), stages=[s.describe() for s in stages], suite=suite_sha256)

    def describe_data(self) -> dict[str, Any]:
        """The data identity recorded in every result: name, split, root, n, limit, sample hash, classes."""
        data = self.data
        return {**data.describe(), "n": len(data), "limit": self.config.limit,
                "sample_hash": sample_hash(data.sample_ids), "classnames": list(data.classnames)}

    def describe_config(self) -> dict[str, Any]:
        # "compute": the thread count and flags the numbers were computed with (a resumed run adopts them).
        return {**asdict(self.config), "device_resolved": str(self.runtime.device),
                "compute": compute_record(self.config.precision)}

    # -- the evaluation path ----------------------------------------------------------------------

    def predict_stages(self, stages: Sequence[Stage], store: BatchStore, *, progress: bool = False,
                       on_start: Callable[[int, int], None] | None = None) -> pd.DataFrame:
        """Predictions of every stage on every sample (one row per sample and stage), resumable in ``store``;
        ``on_start(done, total)`` is told how many batches were finished earlier."""
        return predict_stages(self.data, stages, self.context, store, batch_size=self.config.batch_size,
                              workers=self.config.workers, progress=progress, on_start=on_start,
                              flush_seconds=self.config.checkpoint_seconds, world=self.world)


__all__ = ["Session", "load_data"]
