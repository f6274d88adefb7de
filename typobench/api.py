"""The Python API for attack scripts: the machinery of ``typobench run`` and ``typobench sweep`` as functions.

    import typobench.api as tb

    model = tb.load_model("toyclip")
    data = tb.load_data("cifar10-sample", model, limit=200)
    suite = tb.load_suite("random-wrong-label")
    print(tb.evaluate(model, data, tb.override(suite, {"text.size": 12})))
    table = tb.sweep(model, data, suite, {"text.size": [8, 12, 16], "placement.copies": [1, 2]}, out="runs/x")

Neurons: ``visualize_neurons(model, ["layer4:12", "layer4:7"])`` optimises one feature visualization per
neuron (images and activations back); ``microscope("runs/x", 20)`` looks at the 20 most blamed neurons of a
run that ``typobench neurons`` explained (feature visualizations, excitation ratios, word views; see
:mod:`typobench.neurons.microscope.core`).

``evaluate`` returns one row per stage (accuracy and targeted success with Wilson 95% intervals and n,
mean fraction of pixels changed); ``sweep`` one row per grid point x stage, written with its plots to
``out`` and resumable. Parameter paths are documented in :mod:`typobench.suites.edit`.

A model and a data set are loaded once and kept: every call on the same data, head and batch size
runs in the same harness session (``typobench.harness.session.Session``), so the head is built once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import ImageDataset, load_dataset, stack_images
from typobench.experiments.sweep import expand_grid, plot_sweep, run_sweep, stages_frame
from typobench.harness.config import DEFAULT_DATASET, DEFAULT_MODEL, RunConfig, limit_dataset
from typobench.harness.run import evaluate_in_memory
from typobench.harness.run import run_suite as _run_suite
from typobench.harness.session import Session
from typobench.models import LoadedModel
from typobench.models import load_model as _load_model
from typobench.models.builtin import get_builtin_model
from typobench.models.classifier import ImageClassifier
from typobench.neurons.featurevis.facets import text_facet as fit_text_facet
from typobench.neurons.featurevis.optimise import Settings
from typobench.neurons.microscope.core import Microscope
from typobench.neurons.microscope_run import microscope_of_run
from typobench.neurons.microscope.views import class_probabilities, visualize_neurons as _visualize_neurons
from typobench.suites import edit
from typobench.suites.edit import SuiteSpec


@dataclass
class Model:
    """A loaded model (image tower + text tower) on its device; one session per data set, head and batch
    size is kept, so each head is built once."""

    name: str
    pretrained: str | None
    loaded: LoadedModel
    runtime: Runtime
    seed: int = 0
    cache_dir: str | None = None
    vision_tower: str | None = None
    _sessions: dict[tuple, Session] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return str(self.loaded.describe().get("label", self.name))


@dataclass
class Data:
    """An evaluation data set (already limited) and how it was loaded (the linear probe reloads its train split)."""

    dataset: ImageDataset
    name: str
    root: str | None = None
    split: str = "test"
    limit: int | None = None
    seed: int = 0
    download: bool = False
    holdout: int | None = None
    classnames_file: str | None = None

    @property
    def classnames(self) -> list[str]:
        return list(self.dataset.classnames)

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass
class SuiteResult:
    """``stages``: one row per stage; ``predictions``: one row per sample and stage (as predictions.csv)."""

    stages: pd.DataFrame
    predictions: pd.DataFrame


def load_model(name: str = DEFAULT_MODEL, pretrained: str | None = None, *, device: str = "auto",
               precision: str = "fp32", seed: int = 0, cache_dir: str | None = None,
               vision_tower: str | None = None) -> Model:
    """A model as ``--model``/``--pretrained`` take it: ``toyclip``, ``ViT-B-32:openai``, ``hf-hub:org/repo``, ...;
    ``vision_tower`` (as ``--vision-tower``): a file of the image tower's weights alone, e.g. FARE's or TeCoA's."""
    builtin = get_builtin_model(name)
    if builtin is not None and builtin.weights is not None and not Path(builtin.weights).is_file():
        raise UsageError(f"built-in model '{name}' has no weights in this installation ({builtin.weights} is "
                         "missing): train or install them, or use another model")
    runtime = Runtime.create(device, precision)
    tower = None if vision_tower is None else os.path.abspath(os.path.expanduser(vision_tower))
    loaded = _load_model(name, pretrained, device=runtime.device, seed=seed, vision_tower=tower)
    return Model(name, pretrained, loaded, runtime, seed, cache_dir, tower)


def load_data(name: str = DEFAULT_DATASET, model: Model | None = None, *, root: str | None = None,
              split: str = "test", limit: int | None = None, seed: int = 0, download: bool = False,
              classnames_file: str | None = None, holdout: int | None = None) -> Data:
    """A data set through ``model``'s resize/crop (needed: images reach each model at its input size);
    ``limit`` draws a deterministic class-stratified subset, after leaving out the ``holdout`` images that
    ``limit=holdout`` would draw."""
    if model is None:
        raise UsageError("load_data needs the model the images are for: load_data(name, model, ...)")
    for option, value in (("limit", limit), ("holdout", holdout)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be a positive integer, got {value}")
    dataset = load_dataset(name, root=root, split=split, transform=model.loaded.pixel_transform(),
                           download=download, classnames_file=classnames_file)
    return Data(limit_dataset(dataset, limit, seed, holdout), name, None if root is None else str(root), split, limit,
                seed, download, classnames_file, holdout)


def load_suite(name_or_path: str) -> SuiteSpec:
    """A suite by name (``typobench list suites``) or ``.toml`` path, ready to :func:`override`."""
    return edit.load_spec(name_or_path)


def suite_from_toml(text: str, source: str = "suite") -> SuiteSpec:
    """A suite written inline, in the format of ``attacks/*.toml``."""
    return edit.spec_from_bytes(text.encode("utf-8"), source)


def override(suite: SuiteSpec, params: Mapping[str, Any]) -> SuiteSpec:
    """The suite with parameters changed by path (``text.size``, ``placement.copies``, ``pgd.eps``,
    ``STAGE.pgd.steps``, ...); every value is checked like a suite file field."""
    return edit.override(suite, params)


def parameter_paths(suite: SuiteSpec) -> list[str]:
    """Every ``GROUP.KEY`` path that changes something in ``suite`` (aliases such as ``placement.copies`` last)."""
    groups = edit.parameter_paths(suite)
    paths = [f"{g}.{k}" for g in groups for k in edit.group_keys(g)]
    return paths + [f"{g}.{alias}" for (g, alias) in edit.KEY_ALIASES if g in groups]


def session(model: Model, data: Data, *, head: str = "zeroshot", batch_size: int = 64,
            probe_train_limit: int | None = None) -> Session:
    """The harness session of ``model`` on ``data`` with this head and batch size: made once, then reused."""
    key = (id(data.dataset), head, batch_size, probe_train_limit)
    if key not in model._sessions:
        if data.seed != model.seed:
            raise UsageError(f"the data subset was drawn with seed {data.seed} and the model loaded with seed "
                             f"{model.seed}: use one seed for both")
        config = RunConfig(model=model.name, pretrained=model.pretrained, vision_tower=model.vision_tower, dataset=data.name, data_root=data.root,
                           split=data.split, download=data.download, classnames_file=data.classnames_file,
                           head=head, suite=None, limit=data.limit, holdout=data.holdout,
                           probe_train_limit=probe_train_limit,
                           batch_size=batch_size, device=str(model.runtime.device),
                           precision=model.runtime.precision, seed=model.seed, cache_dir=model.cache_dir)
        config.validate()
        model._sessions[key] = Session.of(config, model.runtime, model.loaded, data.dataset)
    return model._sessions[key]


def run_suite(model: Model, data: Data, suite: SuiteSpec | str, *, head: str = "zeroshot", batch_size: int = 64,
              probe_train_limit: int | None = None, out: str | Path | None = None,
              progress: bool = False) -> SuiteResult:
    """Every stage of ``suite`` on ``data``: per-stage metrics and per-sample predictions. With ``out``
    the evaluation is resumable there (results.json, predictions.csv, suite.toml) and a finished one
    is read back; without, nothing is kept on disk."""
    spec = load_suite(suite) if isinstance(suite, str) else suite
    run_in = session(model, data, head=head, batch_size=batch_size, probe_train_limit=probe_train_limit)
    if out is None:
        outcome = evaluate_in_memory(run_in, spec.build())
    else:
        outcome = _run_suite(run_in, spec.build(), Path(out), progress=progress, pictures=False,
                             suite_text=spec.text)
    return SuiteResult(stages_frame(outcome.results["stages"]), outcome.predictions)


def evaluate(model: Model, data: Data, suite: SuiteSpec | str, *, head: str = "zeroshot", batch_size: int = 64,
             probe_train_limit: int | None = None, out: str | Path | None = None,
             progress: bool = False) -> pd.DataFrame:
    """One row per stage: ``stage, kind, source, accuracy, accuracy_ci_lo/hi, n, targeted_success,
    targeted_ci_lo/hi, targeted_n, pixel_fraction_mean``."""
    return run_suite(model, data, suite, head=head, batch_size=batch_size, probe_train_limit=probe_train_limit,
                     out=out, progress=progress).stages


def sweep(model: Model, data: Data, suite: SuiteSpec | str,
          grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], *, out: str | Path,
          head: str = "zeroshot", batch_size: int = 64, probe_train_limit: int | None = None,
          progress: bool = True, plots: bool = True) -> pd.DataFrame:
    """``suite`` at every point of ``grid``: ``{path: [values]}`` (every combination) or a list of
    ``{path: value}`` points. Writes ``sweep.csv``/``.parquet`` and plots to ``out``; a rerun skips
    finished points. Returns one row per point x stage, with a column per varied parameter."""
    spec = load_suite(suite) if isinstance(suite, str) else suite
    points = expand_grid(grid) if isinstance(grid, Mapping) else [dict(p) for p in grid]
    run_in = session(model, data, head=head, batch_size=batch_size, probe_train_limit=probe_train_limit)
    return run_sweep(run_in, spec, points, out, progress=progress, plots=plots).table


@dataclass
class Visualizations:
    """``images`` [K, 3, S, S] in [0, 1], image i for ``neurons[i]``; ``activations`` [K]: each neuron's
    activation (averaged over positions) on its image; ``history``: the objective during the optimisation;
    ``classes``: the class ``data``'s classifier gives each image (None without data); ``facet``: the
    text facet it went through (None: plain)."""

    neurons: list[str]
    images: torch.Tensor
    activations: list[float]
    history: list[float]
    classes: list[str] | None = None
    facet: dict[str, Any] | None = None


def visualize_neurons(model: Model, neurons: Sequence[str], *, data: Data | None = None, head: str = "zeroshot",
                      text_facet: bool = False, facet_images: int = 200, steps: int = 256, lr: float = 0.05,
                      seed: int = 0, batch_size: int = 64) -> Visualizations:
    """One feature visualization per neuron (``layer4:12``, ``resblocks.11.mlp:2047``; also a ResNet's
    ``layer1``..``layer3``), optimised together from ``seed``. With ``data``, each image is classified by
    its ``head``; with ``text_facet`` (needs ``data``), the images excite the neurons through the text facet
    fitted on ``facet_images`` of its photos."""
    if text_facet and data is None:
        raise UsageError("text_facet=True fits the facet on photos: pass data=load_data(...)")
    if data is not None:
        classifier = session(model, data, head=head, batch_size=batch_size).classifier
    else:
        classifier = ImageClassifier.of(model.loaded, device=model.runtime.device)
    facet = None
    if text_facet:
        count = min(facet_images, len(data))
        facet = fit_text_facet(classifier, stack_images(data.dataset, range(count))[0], seed=seed)
    made = _visualize_neurons(classifier, neurons, Settings(steps=steps, lr=lr, seed=seed), facet)
    classes = None
    if data is not None:
        classes = [data.classnames[int(i)] for i in class_probabilities(classifier, made.images).argmax(1)]
    return Visualizations(made.neurons, made.images, made.activations.tolist(), made.history, classes,
                          facet.describe() if facet is not None else None)


def microscope(run_dir: str | Path, neurons: int = 20, *, steps: int = 256, natural: int = 0,
               analysis_dir: str | Path | None = None, out: str | Path | None = None, device: str = "auto",
               cache_dir: str | None = None, batch_size: int = 64) -> Microscope:
    """The microscope of the ``neurons`` most blamed neurons of a run that ``typobench neurons`` explained
    (its neurons.json in ``analysis_dir``, default the run's folder): ``.record`` is microscope.json (see
    :mod:`typobench.neurons.microscope.core`), ``.images`` its feature visualizations; both are written to
    ``out`` (default: next to neurons.json). ``natural``: data-set images for the excitation ratio (0: the
    analysis's reference images)."""
    found, _ = microscope_of_run(run_dir, neurons=neurons, steps=steps, natural=natural, analysis_dir=analysis_dir,
                                 out=out, device=device, cache_dir=cache_dir, batch_size=batch_size)
    return found


__all__ = [
    "Data", "Model", "SuiteResult", "SuiteSpec", "Visualizations", "evaluate", "expand_grid", "load_data", "load_model",
    "load_suite", "microscope", "override", "parameter_paths", "plot_sweep", "run_suite", "session", "suite_from_toml",
    "sweep", "visualize_neurons",
]
