"""Every option of a run, validated once, with the built-in defaults of ``typobench run``."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.options import check, option
from typobench.defenses import list_defenses
from typobench.harness.legibility import require_ocr
from typobench.data import ImageDataset, load_dataset, stratified_subset
from typobench.heads import HEADS
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


MODEL, DATA, RUNTIME = "model", "data", "runtime"
DEFENSE_LEAD = "a defense, part of the model under test (repeat: applied in order, before a suite's [defense] tables)"


def defense_help(lead: str = DEFENSE_LEAD) -> str:
    """The --defense help: ``lead`` (what a spec is to this command), then every defense kind's summary."""
    return (lead + ": KIND:KEY=VALUE,KEY=VALUE with lists joined by '+'. "
            + "; ".join(f"{d['kind']}: {d['summary']}" for d in list_defenses())
            + ". Attack stages attack through the defenses (adaptive), or with attack_on = \"undefended\" make "
              "the images without them (transfer)")


@dataclass
class RunConfig:
    """Every option of a run, each declared once: the flags of ``typobench run`` (and the commands that share
    them), the keyword arguments and the checks follow from here. The resolved config is recorded in results.json."""

    model: str = option(DEFAULT_MODEL, "built-in name, open_clip NAME or NAME:TAG (ViT-B-32:openai), or "
                                       "hf-hub:org/repo; see `typobench list models`", group=MODEL)
    pretrained: str | None = option(None, "open_clip pretrained tag or a local checkpoint (.safetensors/.pt) for "
                                          "--model NAME", group=MODEL)
    vision_tower: str | None = option(None, "the image tower's weights alone (.safetensors/.pt, e.g. a FARE or TeCoA "
                                            "release), loaded into the model's visual module over --pretrained; keys "
                                            "with or without a visual. prefix", metavar="PATH", group=MODEL)
    dataset: str = option(DEFAULT_DATASET, "data set name (cifar10-sample is bundled); see `typobench list datasets`",
                          group=DATA)
    data_root: str | None = option(None, "where the data set lives on disk", group=DATA)
    split: str = option("test", "split to evaluate", group=DATA)
    download: bool = option(False, "allow torchvision to download the data set (the entries `typobench list "
                                   "datasets` says can be)", group=DATA)
    classnames_file: str | None = option(None, "text file with one class name per line (folder data sets)",
                                         flag="--classnames", group=DATA)
    head: str = option("zeroshot", "zero-shot prompts or a logistic-regression linear probe on the train split",
                       choices=tuple(HEADS.names()), group=MODEL)
    suite: str | None = option(DEFAULT_SUITE, "attack suite: a name from `typobench list suites` or a .toml path; "
                                              "'none' for the clean stage only", group=MODEL)
    limit: int | None = option(None, "evaluate a deterministic class-stratified subset of N images", minimum=1,
                               shown="all", group=DATA)
    # Leave out the ``holdout`` images that ``limit=holdout`` would draw (a validation set on which recipes,
    # units or defenses were chosen) before drawing ``limit`` from the rest.
    holdout: int | None = option(None, "leave out the N images that --limit N would draw (the validation images a "
                                       "recipe, units or a defense were chosen on) and evaluate the rest (or --limit "
                                       "of the rest)", minimum=1, metavar="N", group=DATA)
    probe_train_limit: int | None = option(None, "train the linear probe on a stratified subset of this many train "
                                                 "images", minimum=1, group=MODEL)
    batch_size: int = option(64, "images per forward pass", minimum=1, group=RUNTIME)
    workers: int = option(0, "data loader worker processes", minimum=0, group=RUNTIME)
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps", group=RUNTIME)
    precision: str = option("fp32", "autocast precision (weights stay fp32)", choices=("fp32", "bf16", "fp16"),
                            group=RUNTIME)
    seed: int = option(0, "seed for subsets, placements, attacks, random models", group=RUNTIME)
    out: str | None = option(None, "output folder (default: runs/<model>-<dataset>-<head>-<hash>)")
    cache_dir: str | None = option(None, "cache for zero-shot weights and probe features (default: $TYPOBENCH_CACHE "
                                         "or ~/.cache/typobench)", group=RUNTIME)
    overwrite: bool = option(False, "replace finished results of another configuration")
    # Run the suite's [neurons] analysis (if it has one) after the attack run.
    neurons: bool = option(True, "skip the suite's [neurons] analysis (see `typobench neurons --help`); run it later "
                                 "with `typobench neurons --from OUT`")
    # Finished batches reach the disk at least this often (and whenever the run stops): what a kill can cost.
    checkpoint_seconds: float = option(15.0, "save finished batches at least this often, so an interrupted run "
                                             "resumes from there", minimum=0, flag="--checkpoint-every",
                                       metavar="SECONDS", group=RUNTIME)
    # Defense specs (``typobench.defenses``), applied in order: part of the model under test.
    defenses: list[str] = option(help=defense_help, factory=list, flag="--defense", metavar="SPEC", repeat=True,
                                 group=MODEL)
    # Samples the attack-failure checks (``harness.attack_checks``) re-attack with twice the budget; 0: none.
    attack_checks: int = option(64, "re-attack the first N samples with twice the iterations and restarts, run "
                                    "eps-0.5 PGD on them, and flag attacks that did not converge or met masked "
                                    "gradients (results.json's attack_checks; 0: off)", minimum=0, metavar="N",
                                group=RUNTIME)
    # Read each written text with an OCR model (``harness.legibility``): columns ocr_text, ocr_legible.
    legibility: bool = option(False, "read each written text with an OCR model (rapidocr-onnxruntime, the ocr extra): "
                                     "columns ocr_text, ocr_legible and the accuracy on the legible samples (costs "
                                     "time)", group=RUNTIME)

    def __post_init__(self) -> None:
        if self.suite == "none":  # the clean stage only
            self.suite = None
        # Absolute, so that a run reopened from results.json elsewhere (neurons, mean ablation of its images)
        # finds its data wherever the command that reopens it is started from.
        if self.data_root:
            self.data_root = os.path.abspath(os.path.expanduser(self.data_root))
        if self.vision_tower:
            self.vision_tower = os.path.abspath(os.path.expanduser(self.vision_tower))

    def validate(self) -> None:
        check(self)
        if self.legibility:
            require_ocr()

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


def load_split(config: RunConfig, model: LoadedModel, split: str | None = None, *, limit: int | None = None,
               download: bool | None = None) -> ImageDataset:
    """``split`` (default ``config.split``) of the config's data set through the model's resize and crop: all of
    it, or ``limit`` items (class-stratified with ``config.seed``); ``download`` defaults to ``config.download``."""
    dataset = load_dataset(config.dataset, root=config.data_root, split=config.split if split is None else split,
                           transform=model.pixel_transform(),
                           download=config.download if download is None else download,
                           classnames_file=config.classnames_file)
    return limit_dataset(dataset, limit, config.seed)


def load_data(config: RunConfig, model: LoadedModel) -> ImageDataset:
    """The config's data set through the model's resize and crop, limited to ``config.limit`` items."""
    dataset = load_split(config, model)
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
    raise UsageError(f"{where} has {len(dataset.classnames)} class{only}: {HEADS.get(head).called} needs at least 2 "
                     "classes to choose between; give each class its own sub-folder of images (at least 2 of them)")


def _named(dataset: ImageDataset) -> str:
    return f"{dataset.name} {dataset.split}" + (f" ({dataset.root})" if dataset.root else "")


@dataclass
class Quiet:
    """``--quiet``, which every command that shows progress has: declared once, each command restating (``helps=``)
    what it leaves out when that is not progress bars."""

    quiet: bool = option(False, "no progress bars")


def default_out_dir(prefix: str, parts: list[str], key: str) -> Path:
    """``runs/<prefix>-<parts joined>-<key[:10]>`` with only file-name-safe characters."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([prefix, *parts] if prefix else parts))
    return Path("runs") / f"{slug}-{key[:10]}"


__all__ = ["DEFAULT_DATASET", "DEFAULT_DEMO_LIMIT", "DEFAULT_MODEL", "DEFAULT_SUITE", "Quiet", "RunConfig",
           "default_out_dir",
           "limit_dataset", "load_data", "load_split"]
