"""The neuron microscope: feature visualizations and word views of the neurons an analysis blamed.

For the ``K`` most blamed neurons (:func:`blame_order`) the microscope computes

* a **plain feature visualization** (the neuron's channel objective, Fourier image, robustness transforms;
  :mod:`.views`) and a **text-faceted** one (the same objective through the text facet: a logistic
  regression on the layer below that tells photos with a word of the analysis's word list written on them
  from the same photos clean, fitted on the run's clean reference images; class names are left out of the
  facet's words, so that the facet is not taught the names the test below looks for);
* the **excitation ratio**: the plain FV's channel activation over the ``percentile`` (99.9) of the neuron's
  activation on natural images (the reference images, or ``natural`` images of the run's data set);
* the **class the model assigns** to each FV, and whether it is the class the neuron **reads**: the class
  whose *written name* excites the neuron most (the highest pixel-side z among the class names, the cards'
  top written class word; :meth:`~.words.WordViews.reads`);
* the **text-side words** (the words whose text embedding the neuron's direction in the joint space points
  at) and the **pixel-side words** (the words that excite it written as images), with their agreement,
  for the blamed neurons *and* for as many random neurons of the same layers (seeded, never a blamed one).

``microscope.json`` (written next to neurons.json; PNGs under ``microscope/``). The schema is stable: an
atlas reads it. Floats that are not finite are written as null.

::

    {"settings": {"neurons": K asked, "found": k made, "steps", "lr", "param", "seed", "robustness": {...},
                  "percentile": 99.9, "natural": {"source": "reference images" | "data set", "n"},
                  "facet": {"name", "layer", "units", "train_accuracy", "facet_images", "other_images"},
                  "facet_strength", "direction_images", "words_k", "vocabulary": V, "reads": "<definition>"},
     "neurons": {"layer4:12": {                      # blame order
         "rank": 1, "plain_png": "microscope/layer4_12_plain.png", "facet_png": "microscope/layer4_12_facet.png",
         "excitation": {"plain", "facet", "natural", "percentile", "ratio", "facet_ratio"},
         "plain_class": "cat", "facet_class": "dog", "reads": "dog", "reads_z": 3.2,
         "plain_reads": false, "facet_reads": true, "read_probability": {"plain", "facet"},
         "text_words": [[word, cosine], ...], "pixel_words": [[word, z], ...],
         "agreement": {"spearman", "overlap", "k"}}},
     "random_neurons": {"layer4:301": {"agreement": {"spearman", "overlap", "k"}}},
     "summary": {"neurons", "median_ratio", "share_at_least_2x", "facet_median_ratio", "plain_reads_rate",
                 "facet_reads_rate", "plain_read_probability", "facet_read_probability",
                 "agreement_blamed": {"spearman", "overlap", "n"}, "agreement_random": {"spearman", "overlap", "n"}}}

``ratio``/``facet_ratio``: the plain/faceted FV's activation over ``natural``; ``read_probability``: the
softmax probability the model gives the read class on each FV; the summary's rates and means are over the
blamed neurons (``*_reads_rate`` over those with a read class), agreements are means over the neurons.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.models.units import NeuronSpace, as_pixels
from typobench.neurons.cards.card import renderable
from typobench.neurons.featurevis.facets import Facet, text_facet
from typobench.neurons.featurevis.optimise import Settings
from typobench.neurons.microscope.views import NeuronImages, class_probabilities, visualize_neurons
from typobench.neurons.microscope.words import WordViews, random_units, word_views

READS = ("the class whose written name excites the neuron most: the highest pixel-side z (the cards' text facet) "
         "among the class names")


@dataclass(frozen=True)
class MicroscopeSettings:
    """``neurons``: K, the most blamed neurons to look at (0: none); ``steps``, ``lr``: of each feature
    visualization; ``natural``: data-set images for the excitation ratio's percentile (0: the reference
    images); ``facet_images``: reference photos the text facet is fitted on; ``direction_images``:
    reference images the neurons' text-side directions are averaged over; ``words_k``: words per list and
    for the top-k overlap."""

    neurons: int = 0
    steps: int = 256
    lr: float = 0.05
    natural: int = 0
    percentile: float = 99.9
    facet_strength: float = 1.0
    facet_images: int = 200
    direction_images: int = 64
    words_k: int = 10
    seed: int = 0

    def fv(self) -> Settings:
        return Settings(steps=self.steps, lr=self.lr, seed=self.seed)

    def validate(self) -> None:
        for name in ("neurons", "natural"):
            if getattr(self, name) < 0:
                raise UsageError(f"microscope {name} must be >= 0, got {getattr(self, name)}")
        for name in ("steps", "facet_images", "direction_images", "words_k"):
            if getattr(self, name) < 1:
                raise UsageError(f"microscope {name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.percentile <= 100:
            raise UsageError(f"microscope lr must be > 0 and percentile in (0, 100], got {self.lr}, {self.percentile}")


@dataclass
class MicroscopeInputs:
    """What the microscope looks with: the classifier and its analysed ``space``; ``reference_images``
    [n, 3, S, S] (clean, uint8 or float); ``natural_acts`` [N, U]: every unit's activation (averaged over
    positions) on the natural images, described by ``natural``; the text tower and its tokenizer."""

    model: nn.Module
    space: NeuronSpace
    classnames: list[str]
    side: int
    reference_images: Tensor
    natural_acts: Tensor
    natural: dict[str, Any]
    clip_model: nn.Module
    tokenizer: Callable[[list[str]], Tensor]
    vocab_words: list[str]
    batch_size: int = 64


@dataclass
class Microscope:
    """``record``: microscope.json (module docstring); ``images``: PNG path (relative) -> [3, S, S]."""

    record: dict[str, Any]
    images: dict[str, Tensor] = field(default_factory=dict)


def blame_order(analyses: Sequence[dict[str, Any]]) -> list[str]:
    """Every neuron of the stage scopes' blame tables, most blamed first: rank 1 of every scope (in the
    analysis's order: stages, then event kinds), then rank 2, ...; each neuron once."""
    tables = [[row["neuron"] for row in entry.get("blame", [])] for entry in analyses]
    order: dict[str, None] = {}
    for rank in range(max((len(t) for t in tables), default=0)):
        for table in tables:
            if rank < len(table):
                order.setdefault(table[rank], None)
    return list(order)


def png_path(neuron: str, view: str) -> str:
    """``microscope/layer4_12_plain.png`` (view: plain or facet)."""
    layer, _, unit = neuron.rpartition(":")
    return f"microscope/{layer.replace(':', '_')}_{unit}_{view}.png"


def run_microscope(inputs: MicroscopeInputs, blamed: Sequence[str], settings: MicroscopeSettings,
                   log: Callable[[str], None] | None = None) -> Microscope:
    """The microscope of the first ``settings.neurons`` of ``blamed`` (blame order), see the module docstring."""
    settings.validate()
    log = log or (lambda message: None)
    space = inputs.space
    chosen = list(dict.fromkeys(blamed))[: settings.neurons]
    units = [space.index(name) for name in chosen]
    others = random_units(space, units, len(units), settings.seed)
    photos = as_pixels(inputs.reference_images)
    views = word_views(inputs.model, space, inputs.clip_model, inputs.tokenizer, inputs.classnames,
                       inputs.vocab_words, inputs.side, photos[: settings.direction_images],
                       batch_size=inputs.batch_size)
    log(f"microscope: word views of {space.total} neurons over {len(views.words)} words")
    random_rows = {space.names[u]: {"agreement": a} for u, a in zip(others, views.agreement(others, settings.words_k))}
    microscope = Microscope({"settings": {}, "neurons": {}, "random_neurons": random_rows})
    facet = None
    if chosen:
        facet = text_facet(inputs.model, photos[: settings.facet_images], _facet_words(inputs.vocab_words),
                           seed=settings.seed)
        log(f"microscope: text facet on {facet.layer} (train accuracy {facet.accuracy:.3f})")
        plain = visualize_neurons(inputs.model, chosen, settings.fv())
        log(f"microscope: {len(chosen)} plain feature visualizations ({settings.steps} steps)")
        through = visualize_neurons(inputs.model, chosen, settings.fv(), facet, settings.facet_strength)
        log(f"microscope: {len(chosen)} text-faceted feature visualizations")
        _fill_neurons(microscope, inputs, views, units, plain, through, settings)
    microscope.record["settings"] = _describe(settings, inputs, views, facet, len(chosen))
    microscope.record["summary"] = summarise(microscope.record["neurons"], random_rows)
    return microscope


def _facet_words(vocab_words: Sequence[str]) -> list[str]:
    words, _ = renderable(vocab_words)
    if not words:
        raise UsageError("the text facet needs words the card font can draw: pass a --vocab of ordinary words")
    return words


def natural_levels(natural_acts: Tensor, units: Sequence[int], percentile: float) -> Tensor:
    """[len(units)]: the ``percentile`` of each unit's activation over the natural images ([N, U])."""
    if len(natural_acts) == 0:
        raise UsageError("no natural image to compare the feature visualizations with: use more reference images")
    return torch.quantile(natural_acts[:, list(units)].float(), percentile / 100.0, dim=0)


def _fill_neurons(microscope: Microscope, inputs: MicroscopeInputs, views: WordViews, units: list[int],
                  plain: NeuronImages, through: NeuronImages, settings: MicroscopeSettings) -> None:
    """One entry (and two images) per blamed neuron, in blame order."""
    levels = natural_levels(inputs.natural_acts, units, settings.percentile).tolist()
    probabilities = {"plain": class_probabilities(inputs.model, plain.images),
                     "facet": class_probabilities(inputs.model, through.images)}
    agreements = views.agreement(units, settings.words_k)
    for i, (name, unit) in enumerate(zip(plain.neurons, units)):
        reads, reads_z = views.reads(unit, inputs.classnames)
        read_index = inputs.classnames.index(reads) if reads is not None else None
        activation = {"plain": float(plain.activations[i]), "facet": float(through.activations[i])}
        classes = {view: inputs.classnames[int(p[i].argmax())] for view, p in probabilities.items()}
        text_words, pixel_words = views.top(unit, settings.words_k)
        microscope.record["neurons"][name] = {
            "rank": i + 1, "plain_png": png_path(name, "plain"), "facet_png": png_path(name, "facet"),
            "excitation": {**activation, "natural": levels[i], "percentile": settings.percentile,
                           "ratio": _ratio(activation["plain"], levels[i]),
                           "facet_ratio": _ratio(activation["facet"], levels[i])},
            "plain_class": classes["plain"], "facet_class": classes["facet"], "reads": reads, "reads_z": reads_z,
            "plain_reads": reads is not None and classes["plain"] == reads,
            "facet_reads": reads is not None and classes["facet"] == reads,
            "read_probability": {view: (float(p[i, read_index]) if read_index is not None else None)
                                 for view, p in probabilities.items()},
            "text_words": text_words, "pixel_words": pixel_words, "agreement": agreements[i]}
        microscope.images[png_path(name, "plain")] = plain.images[i]
        microscope.images[png_path(name, "facet")] = through.images[i]


def _ratio(value: float, level: float) -> float | None:
    return value / level if level > 0 else None


def _describe(settings: MicroscopeSettings, inputs: MicroscopeInputs, views: WordViews, facet: Facet | None,
              found: int) -> dict[str, Any]:
    fv = settings.fv().describe()
    return {"neurons": settings.neurons, "found": found, **{k: fv[k] for k in ("steps", "lr", "param", "seed")},
            "robustness": fv["robustness"], "percentile": settings.percentile, "natural": inputs.natural,
            "facet": facet.describe() if facet is not None else None, "facet_strength": settings.facet_strength,
            "facet_words": "the word list without the class names", "direction_images": settings.direction_images,
            "words_k": settings.words_k, "vocabulary": len(views.words), "reads": READS}


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _agreement_mean(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"spearman": _mean([r["spearman"] for r in rows]), "overlap": _mean([r["overlap"] for r in rows]),
            "n": len(rows)}


def summarise(neurons: dict[str, dict[str, Any]], random_neurons: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The microscope's figures over the blamed neurons (module docstring)."""
    rows = list(neurons.values())
    ratios = [r["excitation"]["ratio"] for r in rows if r["excitation"]["ratio"] is not None]
    facet_ratios = [r["excitation"]["facet_ratio"] for r in rows if r["excitation"]["facet_ratio"] is not None]
    reading = [r for r in rows if r["reads"] is not None]
    return {
        "neurons": len(rows),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "share_at_least_2x": sum(r >= 2 for r in ratios) / len(ratios) if ratios else None,
        "facet_median_ratio": statistics.median(facet_ratios) if facet_ratios else None,
        "plain_reads_rate": _mean([float(r["plain_reads"]) for r in reading]),
        "facet_reads_rate": _mean([float(r["facet_reads"]) for r in reading]),
        "plain_read_probability": _mean([r["read_probability"]["plain"] for r in reading]),
        "facet_read_probability": _mean([r["read_probability"]["facet"] for r in reading]),
        "agreement_blamed": _agreement_mean([r["agreement"] for r in rows]),
        "agreement_random": _agreement_mean([r["agreement"] for r in random_neurons.values()]),
    }


__all__ = ["READS", "Microscope", "MicroscopeInputs", "MicroscopeSettings", "blame_order", "natural_levels",
           "png_path", "run_microscope", "summarise"]
