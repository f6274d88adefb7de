"""Every option of a run, validated once, with the built-in defaults of ``typobench run``."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.harness.legibility import require_ocr
from typobench.data import ImageDataset, load_dataset, stratified_subset
from typobench.heads import HEAD_KINDS
from typobench.models import LoadedModel

log = logging.getLogger("typobench")

DEFAULT_MODEL = "toyclip"
DEFAULT_DATASET = "cifar10-sample"
DEFAULT_SUITE = "default"
# `typobench run` with no --dataset and no --limit evaluates this many images of the bundled sample
# (20 per class), so that the built-in demo takes about a minute on 2 CPU cores.
DEFAULT_DEMO_LIMIT = 200

# Options that change where or how fast a run happens, but not its numbers.
# ``attack_checks`` only decides how many samples the attack-failure checks re-attack; the predictions do not
# depend on it.
_NON_SEMANTIC = ("out", "workers", "cache_dir", "device", "overwrite", "neurons", "checkpoint_seconds",
                 "attack_checks")
# Options that joined the run's key after runs were recorded: in the key only when set.
_ONLY_WHEN_SET = ("defenses", "holdout", "vision_tower", "legibility")


@dataclass
class RunConfig:
    """Every option of a run. The resolved config is recorded in results.json."""

    model: str = DEFAULT_MODEL
    pretrained: str | None = None
    # The image tower's weights alone (FARE, TeCoA), loaded into the model's ``visual`` over ``pretrained``.
    vision_tower: str | None = None
    dataset: str = DEFAULT_DATASET
    data_root: str | None = None
    split: str = "test"
    download: bool = False
    classnames_file: str | None = None
    head: str = "zeroshot"
    suite: str | None = DEFAULT_SUITE
    limit: int | None = None
    # Leave out the ``holdout`` images that ``limit=holdout`` would draw (a validation set on which recipes,
    # units or defenses were chosen) before drawing ``limit`` from the rest.
    holdout: int | None = None
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
    # Finished batches reach the disk at least this often (and whenever the run stops): what a kill can cost.
    checkpoint_seconds: float = 15.0
    # Defense specs (``typobench.defenses``), applied in order: part of the model under test.
    defenses: list[str] = field(default_factory=list)
    # Samples the attack-failure checks (``harness.attack_checks``) re-attack with twice the budget; 0: none.
    attack_checks: int = 64
    # Read each written text with an OCR model (``harness.legibility``): columns ocr_text, ocr_legible.
    legibility: bool = False

    def __post_init__(self) -> None:
        # Absolute, so that a run reopened from results.json elsewhere (neurons, mean ablation of its images)
        # finds its data wherever the command that reopens it is started from.
        if self.data_root:
            self.data_root = os.path.abspath(os.path.expanduser(self.data_root))
        if self.vision_tower:
            self.vision_tower = os.path.abspath(os.path.expanduser(self.vision_tower))

    def validate(self) -> None:
        if self.head not in HEAD_KINDS:
            raise UsageError(f"--head '{self.head}' is unknown: use one of {', '.join(HEAD_KINDS)}")
        for option in ("batch_size", "limit", "holdout", "probe_train_limit"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise UsageError(f"--{option.replace('_', '-')} must be a positive integer, got {value}")
        if self.attack_checks < 0:
            raise UsageError(f"--attack-checks must be >= 0 samples (0 turns the checks off), got {self.attack_checks}")
        if self.workers < 0:
            raise UsageError(f"--workers must be >= 0, got {self.workers}")
        if self.legibility:
            require_ocr()
        if not self.checkpoint_seconds >= 0:
            raise UsageError(f"--checkpoint-every must be >= 0 seconds, got {self.checkpoint_seconds}")

    def semantic(self) -> dict[str, Any]:
        """The options that determine the numbers, apart from the suite (hashed by its content). Defenses
        and a holdout appear only when there are some, so that the keys of earlier runs stay what they were."""
        excluded = (*_NON_SEMANTIC, *_ONLY_WHEN_SET, "suite")  # the suite is keyed by its content
        out = {k: v for k, v in asdict(self).items() if k not in excluded}
        out.update({k: getattr(self, k) for k in _ONLY_WHEN_SET if getattr(self, k)})
        return out

    @classmethod
    def from_record(cls, recorded: dict[str, Any]) -> RunConfig:
        """The config recorded in a results.json (keys this version does not know are ignored)."""
        return cls(**{k: v for k, v in recorded.items() if k in cls.__dataclass_fields__})


def limit_dataset(dataset: ImageDataset, limit: int | None, seed: int, holdout: int | None = None) -> ImageDataset:
    """A deterministic class-stratified subset of ``limit`` items (all items when limit is None), drawn from
    the items left when the ``holdout`` items that ``limit=holdout`` would draw are removed."""
    if holdout is not None:
        if holdout >= len(dataset):
            raise UsageError(f"--holdout {holdout} leaves no image to evaluate: {_named(dataset)} has {len(dataset)}; "
                             f"pass a --holdout below {len(dataset)}")
        held = set(stratified_subset(dataset.labels, holdout, seed))
        dataset = dataset.subset([i for i in range(len(dataset)) if i not in held])
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.subset(stratified_subset(dataset.labels, limit, seed))


def load_data(config: RunConfig, model: LoadedModel) -> ImageDataset:
    """The config's data set through the model's resize and crop, limited to ``config.limit`` items."""
    dataset = load_dataset(config.dataset, root=config.data_root, split=config.split,
                           transform=model.pixel_transform(), download=config.download,
                           classnames_file=config.classnames_file)
    _check_classes(dataset, config.head)
    limited = limit_dataset(dataset, config.limit, config.seed, config.holdout)
    if config.limit is not None and config.limit > len(limited):
        # Not an error (a limit is an upper bound), but the run is not the size that was asked for.
        log.warning("--limit %d: %s has %d images%s, all of them are used", config.limit, _named(dataset),
                    len(limited), f" left after --holdout {config.holdout}" if config.holdout else "")
    return limited


def _check_classes(dataset: ImageDataset, head: str) -> None:
    """A classifier over one class is right on every image whatever it sees: refuse it."""
    if len(dataset.classnames) >= 2:
        return
    where = dataset.root or dataset.name
    only = f" ({dataset.classnames[0]})" if dataset.classnames else ""
    need = "zero-shot needs" if head == "zeroshot" else f"--head {head} needs"
    raise UsageError(f"{where} has {len(dataset.classnames)} class{only}: {need} at least 2 classes to choose "
                     "between; give each class its own sub-folder of images (at least 2 of them)")


def _named(dataset: ImageDataset) -> str:
    return f"{dataset.name} {dataset.split}" + (f" ({dataset.root})" if dataset.root else "")


def default_out_dir(prefix: str, parts: list[str], key: str) -> Path:
    """``runs/<prefix>-<parts joined>-<key[:10]>`` with only file-name-safe characters."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([prefix, *parts] if prefix else parts))
    return Path("runs") / f"{slug}-{key[:10]}"


__all__ = ["DEFAULT_DATASET", "DEFAULT_DEMO_LIMIT", "DEFAULT_MODEL", "DEFAULT_SUITE", "RunConfig", "default_out_dir",
           "limit_dataset", "load_data"]
