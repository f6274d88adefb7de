"""The microscope on a run: inside ``typobench neurons --microscope K`` (:func:`microscope_for_analysis`), or on
a run a neurons analysis already explained (:func:`microscope_of_run`, which reads its neurons.json).

Natural images for the excitation ratio: the analysis's clean reference images (their activations are
already computed), or ``natural`` images of the run's data set: its *whole* split (not the run's
``--limit`` subset), a class-stratified draw with the analysis's seed, streamed in batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.data import stack_images, stratified_subset
from typobench.harness.config import load_split
from typobench.models.units import NeuronSpace, find_layers, unit_activations
from typobench.neurons.cards.card import DEFAULT_WORDS, read_vocab
from typobench.neurons.microscope.core import Microscope, MicroscopeInputs, MicroscopeSettings, blame_order, run_microscope
from typobench.neurons.microscope.output import MICROSCOPE_JSON
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.reference import Reference
from typobench.neurons.blame.replay import RunReplay, load_run
from typobench.neurons.report import JSON_FILE, write_microscope


def natural_activations(replay: RunReplay, model: nn.Module, space: NeuronSpace, n: int, seed: int,
                        batch_size: int = 64) -> tuple[Tensor, dict[str, Any]]:
    """([n, U] every unit's activation averaged over positions, a description) on ``n`` images of the run's
    data set (its whole split, class-stratified with ``seed``; all of it when it has fewer)."""
    config = replay.config
    dataset = load_split(config, replay.session.model, download=False)
    positions = stratified_subset(dataset.labels, n, seed)
    chunks = []
    for start in range(0, len(positions), batch_size):
        images, _ = stack_images(dataset, positions[start:start + batch_size])
        chunks.append(unit_activations(model, space, images, batch_size)[0])
    acts = torch.cat(chunks) if chunks else torch.zeros(0, space.total)
    return acts, {"source": "data set", "dataset": config.dataset, "split": config.split, "n": len(positions)}


def microscope_inputs(replay: RunReplay, model: nn.Module, space: NeuronSpace, reference: Reference,
                      vocab_words: Sequence[str], settings: MicroscopeSettings, batch_size: int) -> MicroscopeInputs:
    """What the microscope needs from a run, its analysed ``space`` and its clean ``reference``."""
    if settings.natural:
        acts, natural = natural_activations(replay, model, space, settings.natural, settings.seed, batch_size)
    else:
        acts, natural = reference.acts, {"source": "reference images", "n": len(reference.positions)}
    loaded = replay.session.model
    return MicroscopeInputs(model, space, replay.classnames, replay.side, reference.images, acts, natural,
                            loaded.model, loaded.tokenizer, list(vocab_words), batch_size)


def settings_of(config: NeuronsConfig, seed: int) -> MicroscopeSettings:
    """The microscope settings of a neurons analysis (``--microscope``, ``--fv-steps``, ``--fv-natural``)."""
    return MicroscopeSettings(neurons=config.microscope, steps=config.fv_steps, natural=config.fv_natural, seed=seed)


def overview(microscope: Microscope) -> dict[str, Any]:
    """What neurons.json records of the microscope: where it is, its settings and its figures."""
    return {"file": MICROSCOPE_JSON, "settings": microscope.record["settings"],
            "summary": microscope.record["summary"]}


def microscope_for_analysis(config: NeuronsConfig, replay: RunReplay, model: nn.Module, space: NeuronSpace,
                            reference: Reference, analyses: Sequence[dict[str, Any]], vocab_words: Sequence[str],
                            seed: int, log: Callable[[str], None]) -> Microscope | None:
    """The microscope of a neurons analysis that has just blamed its neurons (None with ``--microscope 0``)."""
    if not config.microscope:
        return None
    settings = settings_of(config, seed)
    inputs = microscope_inputs(replay, model, space, reference, vocab_words, settings, config.batch_size)
    log(f"microscope: natural images: {inputs.natural['n']} ({inputs.natural['source']})")
    return run_microscope(inputs, blame_order(analyses), settings, log)


def microscope_of_run(run_dir: str | Path, *, neurons: int = 20, steps: int = 256, natural: int = 0,
                      analysis_dir: str | Path | None = None, out: str | Path | None = None, device: str = "auto",
                      cache_dir: str | None = None, batch_size: int = 64,
                      log: Callable[[str], None] | None = None) -> tuple[Microscope, Path]:
    """The microscope of a run already explained by ``typobench neurons`` (its neurons.json in
    ``analysis_dir``, default the run's folder): the same neurons, reference images, seed and word list,
    without redoing the blame and ablations. Writes microscope.json and microscope/*.png to ``out``
    (default: where neurons.json is; neurons.md is left as it is) and returns (the microscope, that folder)."""
    where = Path(analysis_dir or run_dir)
    if not (where / JSON_FILE).is_file():
        raise UsageError(f"{where} has no {JSON_FILE}: run `typobench neurons --from {run_dir}` first (or add "
                         "--microscope K to it)")
    report = json.loads((where / JSON_FILE).read_text())
    recorded = report.get("config", {})
    seed = int(recorded.get("seed") or 0)
    vocab_words = read_vocab(recorded["vocab"]) if recorded.get("vocab") else list(DEFAULT_WORDS)
    settings = MicroscopeSettings(neurons=neurons, steps=steps, natural=natural, seed=seed)
    settings.validate()
    replay = load_run(run_dir, device=device, cache_dir=cache_dir)
    model = replay.classifier
    space = find_layers(model, int(recorded.get("vit_blocks", 1)))
    reference = Reference.of(replay, model, space, limit=int(recorded.get("ref_limit", 500)), seed=seed,
                             batch_size=batch_size)
    inputs = microscope_inputs(replay, model, space, reference, vocab_words, settings, batch_size)
    microscope = run_microscope(inputs, blame_order(report.get("analyses", [])), settings, log)
    out_dir = Path(out or where)
    write_microscope(out_dir, microscope)
    return microscope, out_dir


__all__ = ["microscope_for_analysis", "microscope_inputs", "microscope_of_run", "natural_activations", "overview",
           "settings_of"]
