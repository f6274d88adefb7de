"""Every attention head of a ViT under the microscope (``typobench heads``): what it writes into the image
embedding, which texts that resembles, and what removing it does to clean and typographic accuracy.

For each head h of every block, over n images (the clean images a run scored, and the same images as its
attack stage drew them: the *typographic* images):

* Direct contribution (the TextSpan decomposition, :func:`typobench.models.attention_heads.direct_contributions`):
  c_ih [D], the head's write into the class token that reaches the raw image embedding f_i [D] unchanged.
  Reported: ``mean_norm`` = mean_i |c_ih| and ``share`` = mean_i (c_ih . f_i) / |f_i|^2, the fraction of the
  embedding along itself that the head writes. The heads' shares and the rest's (embeddings, biases, MLPs,
  ln_post's bias) sum to 1 exactly, image by image.
* Text basis (TextSpan's greedy basis, :func:`typobench.neurons.heads.cards.text_spans`): over the clean
  images, the centred c_h [n, D] read against a lexicon of texts (the class names, the neuron cards' words
  and short image descriptions, ``typobench/data/heads_lexicon.txt``), each embedded by the model's own
  text tower. Each pick with the share of the head's variance it explained when picked. The same over the
  typographic images (``text_basis_typographic``): what the head writes when text is on the image.
* Top images: the clean and the typographic images with the largest c_ih . t_1 (t_1: the first text).
* Ablation: the head's output replaced at the class token's row only (``positions=cls``, as greedy selection
  ablates: :func:`typobench.defenses.ablate.unit_edit` with ``cls_only``), by 0 or by its mean class-token
  output over the same clean images (not a selection: nothing is chosen on these images, so no selection
  bias), and the classifier's accuracy recomputed on the clean and on the typographic images. The change
  from the unablated classifier is a paired difference over the same images with a percentile bootstrap
  95% interval (:func:`typobench.core.metrics.paired_difference_by_id`), one head at a time; the intervals
  are per head, not corrected for the number of heads.

``heads.json`` (``survey_report``; floats that are not finite are written as null)::

    {"format": "typobench-heads", "version": 1,
     "run": {"dir", "model", "dataset", "split", "suite", "stage"},
     "images": {"n", "sample_hash", "how"},
     "options": {"ablation", "images", "text_spans", "top_images", "lexicon"},
     "method": {"direct", "text_basis", "top_images", "ablation"},
     "lexicon": {"n", "descriptions", "source"},
     "base": {"clean": {"accuracy", "agrees_with_run"}, "typographic": {...}},
     "embedding": {"mean_norm", "rest_share", "rest_mean_norm", "max_residual"},
     "heads": [{"name": "resblocks.3.attn:2", "block": 3, "index": 2,
                "direct": {"clean": {"mean_norm", "share"}, "typographic": {"mean_norm", "share"}},
                "text_basis": [{"text", "explained_variance"}, ...], "text_basis_typographic": [...],
                "top_images": {"clean": [{"position", "sample_id", "class", "along", "file"}], "typographic": [...]},
                "ablation": {"clean": {"accuracy", "delta": {"value", "ci95", "n"}}, "typographic": {...}}}]}

``heads_predictions.csv``: one row per image and image kind (``sample_id, images, label, base`` and one
column per head: its prediction with the head ablated), from which every accuracy and change re-derives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.core.metrics import paired_difference_by_id
from typobench.core.options import option
from typobench.defenses.ablate import unit_edit
from typobench.models.units import NeuronSpace, as_pixels, edits, parse_neuron
from typobench.neurons.cards.card import DEFAULT_WORDS, vocabulary
from typobench.neurons.heads.blame import embeddings_and_terms
from typobench.neurons.heads.cards import text_spans

SURVEY_FORMAT = "typobench-heads"
HEADS_JSON = "heads.json"
PREDICTIONS_CSV = "heads_predictions.csv"
ABLATIONS = ("zero", "mean")
IMAGE_KINDS = ("clean", "typographic")
LEXICON_FILE = "heads_lexicon.txt"
SURVEY = "survey"

METHOD = {
    "direct": "direct contribution c_ih of head h to the raw image embedding f_i (TextSpan decomposition: its "
              "class-token write through out_proj, ln_post linearised with the whole residual's scale, and proj); "
              "mean_norm = mean |c_ih|, share = mean (c_ih . f_i) / |f_i|^2 (heads and rest sum to 1)",
    "text_basis": "TextSpan greedy basis of the head's centred clean contributions over the lexicon's text embeddings "
                  "(the model's text tower, template '{}'); explained_variance: the share of the head's variance the "
                  "text explained when picked; text_basis_typographic: the same on the typographic images",
    "top_images": "the images with the largest c_ih . t_1, t_1 the head's first text direction on the clean images",
    "ablation": "{ablation} ablation of the head's output at the class token's row only (positions=cls){means}; "
                "accuracy change = ablated - unablated on the same images, paired percentile bootstrap 95% interval "
                "(2000 draws), per head, not corrected for the number of heads",
}
MEANS_TEXT = (", to its mean class-token output over the same clean images (nothing is selected on them, so "
              "no selection bias)")


@dataclass
class HeadSurveyOptions:
    """What ``typobench heads`` measures (its method flags, declared once)."""

    stage: str | None = option(None, "the run's attack stage whose images are the typographic images (default: its "
                                     "only attack stage)", metavar="NAME", group=SURVEY)
    ablation: str = option("mean", "what a head's class-token output is replaced by: 'mean' (its mean over the clean "
                                   "images) or 'zero'", choices=ABLATIONS, group=SURVEY)
    images: int = option(0, "at most N of the run's images, class-stratified (0: every image the run scored)",
                         minimum=0, metavar="N", group=SURVEY)
    text_spans: int = option(5, "text directions per head (TextSpan's greedy basis)", minimum=1, metavar="K",
                             group=SURVEY)
    top_images: int = option(6, "clean and typographic images shown per head (largest contribution along its first "
                                "text direction)", minimum=0, metavar="K", group=SURVEY)
    lexicon: str | None = option(None, "descriptions to read heads against, one a line ('#' comments; the class "
                                       "names and the cards' words are always added; default: the built-in "
                                       "heads_lexicon.txt)", metavar="FILE", group=SURVEY)
    atlas: bool = option(True, "skip the atlas (atlas/heads.html, every head in a table, and one page per head)",
                         group=SURVEY)


def descriptions(path: str | Path | None = None) -> list[str]:
    """The lexicon's descriptions: ``path`` (one a line, ``#`` comments), else the built-in file."""
    if path is None:
        text = files("typobench.data").joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    elif not Path(path).is_file():
        raise UsageError(f"--lexicon '{path}' not found: pass a text file with one description per line")
    else:
        text = Path(path).read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise UsageError(f"--lexicon '{path}' holds no description: write one per line")
    return lines


def lexicon_pool(classnames: Sequence[str], described: Sequence[str]) -> list[str]:
    """The texts a head is read against: class names, the cards' words, then the descriptions (deduplicated)."""
    return vocabulary(classnames, [*DEFAULT_WORDS, *described])


def finite(value: Any) -> float | None:
    """A float, or None when missing or not finite (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(float(value)) else None


@dataclass
class Terms:
    """Direct terms over n images: ``heads`` [n, U, D], ``rest`` [n, D] (everything else), ``embedding``
    [n, D] (the tower's output) and ``cls_mean`` [U, d_head] (each head's mean class-token output)."""

    heads: Tensor
    rest: Tensor
    embedding: Tensor
    cls_mean: Tensor


@torch.no_grad()
def head_terms(classifier: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 64) -> Terms:
    """:class:`Terms` of ``images`` [n, 3, H, W] (uint8 or [0, 1] floats) under ``classifier`` (an ImageClassifier)."""
    if not len(images):
        raise UsageError("no images to survey the heads on")
    device = next(classifier.parameters()).device
    heads, rest, embedding, sums = [], [], [], 0.0
    for start in range(0, len(images), batch_size):
        terms = embeddings_and_terms(classifier, space, as_pixels(images[start:start + batch_size]).to(device))
        heads.append(terms.heads.cpu())
        rest.append(terms.rest().cpu())
        embedding.append(terms.embedding.float().cpu())
        sums = sums + torch.cat([terms.outputs[layer.name][:, 0].float().sum(0) for layer in space.layers]).cpu()
    return Terms(torch.cat(heads), torch.cat(rest), torch.cat(embedding), sums / len(images))


def direct_records(terms: Terms) -> tuple[list[dict[str, float | None]], dict[str, float | None]]:
    """Per head ``{mean_norm, share}`` and the embedding's ``{mean_norm, rest_share, rest_mean_norm,
    max_residual}`` (max_residual: the largest |sum of the terms - embedding| / |embedding|, ~0)."""
    f = terms.embedding.double()
    squared = (f * f).sum(-1).clamp_min(1e-30)  # [n]
    shares = torch.einsum("nud,nd->nu", terms.heads.double(), f) / squared[:, None]
    norms = terms.heads.double().norm(dim=-1)
    residual = (terms.heads.double().sum(1) + terms.rest.double() - f).norm(dim=-1) / squared.sqrt()
    heads = [{"mean_norm": finite(norms[:, u].mean()), "share": finite(shares[:, u].mean())}
             for u in range(terms.heads.shape[1])]
    summary = {"mean_norm": finite(f.norm(dim=-1).mean()),
               "rest_share": finite(((terms.rest.double() * f).sum(-1) / squared).mean()),
               "rest_mean_norm": finite(terms.rest.double().norm(dim=-1).mean()),
               "max_residual": finite(residual.max())}
    return heads, summary


def text_bases(contributions: Tensor, texts: Tensor, pool: Sequence[str], k: int) -> list[list[dict[str, Any]]]:
    """Per head of ``contributions`` [n, U, D], its TextSpan basis over ``texts`` [V, D] (named by ``pool``)."""
    if len(pool) != len(texts):
        raise UsageError(f"{len(pool)} lexicon texts but {len(texts)} text embeddings: embed every text once")
    return [[{"text": pool[i], "explained_variance": finite(share)} for i, share in text_spans(contributions[:, u], texts, k)]
            for u in range(contributions.shape[1])]


def top_along(contributions: Tensor, direction: Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` rows of ``contributions`` [n, D] with the largest projection on ``direction`` [D], largest first."""
    along = contributions.double() @ F.normalize(direction.double(), dim=0)
    order = torch.argsort(along, descending=True, stable=True)[:k]
    return [(int(i), float(along[i])) for i in order]


@torch.no_grad()
def predictions(classifier: nn.Module, images: Tensor, batch_size: int = 64,
                autocast: Callable[[], AbstractContextManager] = nullcontext) -> Tensor:
    """The classifier's predicted class [n] on ``images``."""
    device = next(classifier.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        with autocast():
            out.append(classifier(as_pixels(images[start:start + batch_size]).to(device)).float().argmax(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def head_ablation(classifier: nn.Module, space: NeuronSpace, unit: int,
                  values: Tensor | None = None) -> AbstractContextManager:
    """For the block: head ``unit`` of ``space`` replaced at the class token's row only by 0 (``values`` None) or
    by ``values[unit]`` (``values`` [U, d_head]); the other tokens' rows are left alone."""
    return unit_edit(classifier, space, edits(space, [unit], values), cls_only=True)


def ablated_predictions(classifier: nn.Module, space: NeuronSpace, unit: int, values: Tensor | None,
                        images: Tensor, batch_size: int = 64,
                        autocast: Callable[[], AbstractContextManager] = nullcontext) -> Tensor:
    """Predictions [n] under :func:`head_ablation`."""
    with head_ablation(classifier, space, unit, values):
        return predictions(classifier, images, batch_size, autocast)


@dataclass
class HeadSurvey:
    """The survey: ``heads`` (one JSON record per head, in the space's order; top images without files),
    ``embedding`` and ``base`` (unablated accuracies) summaries, and ``predictions``
    ``{"base" or head name: {"clean": [n], "typographic": [n]}}``."""

    heads: list[dict[str, Any]]
    embedding: dict[str, Any]
    base: dict[str, dict[str, Any]]
    predictions: dict[str, dict[str, Tensor]] = field(default_factory=dict)


@dataclass
class SurveyImages:
    """The surveyed images: ``clean`` and ``typographic`` [n, 3, H, W], ``labels`` [n], ``sample_ids`` and
    ``classnames``."""

    clean: Tensor
    typographic: Tensor
    labels: Tensor
    sample_ids: list[str]
    classnames: list[str]

    def of(self, images: str) -> Tensor:
        return self.clean if images == IMAGE_KINDS[0] else self.typographic


def _accuracy_change(ablated: Tensor, base: Tensor, data: SurveyImages) -> dict[str, Any]:
    ids = data.sample_ids
    correct = {name: dict(zip(ids, (p == data.labels).double().tolist())) for name, p in (("a", ablated), ("b", base))}
    delta = paired_difference_by_id(correct["a"], correct["b"], ids)
    return {"accuracy": finite((ablated == data.labels).double().mean()),
            "delta": {**delta, "value": finite(delta["value"]), "ci95": [finite(v) for v in delta["ci95"]]}}


def survey_heads(classifier: nn.Module, space: NeuronSpace, data: SurveyImages, texts: Tensor, pool: Sequence[str],
                 *, ablation: str = "mean", spans: int = 5, top_k: int = 6, batch_size: int = 64,
                 autocast: Callable[[], AbstractContextManager] = nullcontext,
                 log: Callable[[str], None] = lambda message: None) -> HeadSurvey:
    """Direct contributions, text bases, top images and class-token ablations of every head of ``space``
    (module docstring). ``texts`` [V, D]: the text embeddings of ``pool``."""
    if ablation not in ABLATIONS or not len(data.clean) == len(data.typographic) == len(data.labels) == len(data.sample_ids):
        raise UsageError(f"--ablation must be one of {', '.join(ABLATIONS)} and every image needs its typographic "
                         f"twin, label and id: got {ablation!r}")
    terms = {images: head_terms(classifier, space, data.of(images), batch_size) for images in IMAGE_KINDS}
    direct = {images: direct_records(terms[images]) for images in IMAGE_KINDS}
    bases, typo_bases = (text_bases(terms[images].heads, texts, pool, spans) for images in IMAGE_KINDS)
    values = terms["clean"].cls_mean if ablation == "mean" else None
    base = {images: predictions(classifier, data.of(images), batch_size, autocast) for images in IMAGE_KINDS}
    survey = HeadSurvey([], direct["clean"][1], {images: {"accuracy": finite((base[images] == data.labels).double().mean())}
                                                  for images in IMAGE_KINDS}, {"base": base})
    for unit, name in enumerate(space.names):
        layer, index = parse_neuron(name)
        record: dict[str, Any] = {"name": name, "block": space.locate(unit)[0].block, "index": index,
                                  "direct": {images: direct[images][0][unit] for images in IMAGE_KINDS},
                                  "text_basis": bases[unit], "text_basis_typographic": typo_bases[unit],
                                  "top_images": {}, "ablation": {}}
        first = pool.index(bases[unit][0]["text"]) if bases[unit] else None
        for images in IMAGE_KINDS:
            if first is not None and top_k:
                record["top_images"][images] = [
                    {"position": i, "sample_id": data.sample_ids[i], "class": data.classnames[int(data.labels[i])],
                     "along": finite(value)} for i, value in top_along(terms[images].heads[:, unit], texts[first], top_k)]
            ablated = ablated_predictions(classifier, space, unit, values, data.of(images), batch_size, autocast)
            survey.predictions.setdefault(name, {})[images] = ablated
            record["ablation"][images] = _accuracy_change(ablated, base[images], data)
        survey.heads.append(record)
        log(f"{name}: typographic {_points(record['ablation']['typographic']['delta']['value'])}, clean "
            f"{_points(record['ablation']['clean']['delta']['value'])} points")
    return survey


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def survey_report(survey: HeadSurvey, *, run: dict[str, Any], images: dict[str, Any], options: HeadSurveyOptions,
                  lexicon: dict[str, Any]) -> dict[str, Any]:
    """heads.json (module docstring) from ``survey`` and what the caller knows: the run, the images, the lexicon."""
    means = MEANS_TEXT if options.ablation == "mean" else ""
    method = {**METHOD, "ablation": METHOD["ablation"].format(ablation=options.ablation, means=means)}
    chosen = {k: v for k, v in asdict(options).items() if k not in ("stage", "atlas")}
    return {"format": SURVEY_FORMAT, "version": 1, "run": run, "images": images, "options": chosen, "method": method,
            "lexicon": lexicon, "base": survey.base, "embedding": survey.embedding, "heads": survey.heads}


def prediction_rows(survey: HeadSurvey, data: SurveyImages) -> list[dict[str, Any]]:
    """heads_predictions.csv's rows: per image and image kind, the label, the unablated and each ablated prediction."""
    names = [name for name in survey.predictions if name != "base"]
    rows = []
    for images in IMAGE_KINDS:
        columns = {name: survey.predictions[name][images].tolist() for name in ["base", *names]}
        for i, sample_id in enumerate(data.sample_ids):
            rows.append({"sample_id": sample_id, "images": images, "label": int(data.labels[i]),
                         **{name: columns[name][i] for name in columns}})
    return rows


__all__ = ["ABLATIONS", "HEADS_JSON", "HeadSurvey", "HeadSurveyOptions", "IMAGE_KINDS", "PREDICTIONS_CSV", "LEXICON_FILE", "SURVEY", "SURVEY_FORMAT",
           "SurveyImages", "Terms", "ablated_predictions", "descriptions", "direct_records",
           "finite", "head_ablation", "head_terms", "lexicon_pool", "prediction_rows", "predictions", "survey_heads", "survey_report",
           "text_bases", "top_along"]
