"""Sparse linear probe (Goh et al. 2021): which few neurons of the analysed layer name each class.

A multinomial logistic regression on the layer's activations (averaged over positions, standardised with
the training images' mean and std) with an L1 penalty on the weights:

    minimise over W [C, U], b [C]:   mean cross-entropy(x W^T + b, y) + lam * sum |W|

solved by FISTA (accelerated proximal gradient: a gradient step on the cross-entropy, then soft-
thresholding, with an adaptive restart), step 1/L with L = ||[x, 1]||_2^2 / (2n) -- the softmax's
Hessian is at most 1/2 -- so no line search and no randomness: deterministic on CPU. ``lam`` is swept
down a geometric path from ``lam_max`` (the smallest penalty with W = 0) with warm starts, until the
probe uses about ``per_class`` neurons per class (non-zero weights per row of W, averaged over
classes; Goh et al.'s ImageNet probe used ~3), then bisected between the two path points that bracket
the target. The sparse probe is scored against the full probe (the linear-probe head's protocol:
L2 weight decay chosen on a validation split of the training images) on held-out images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.data import sample_hash, stratified_subset
from typobench.heads.linear_probe import train_linear_probe
from typobench.models.units import NeuronSpace, unit_activations
from typobench.neurons.blame.replay import RunReplay

JSON_FILE = "sparse_probe.json"
CSV_FILE = "sparse_probe.csv"
CSV_COLUMNS = ["class", "neuron", "layer", "unit", "weight"]

PATH_RATIO = 0.8  # each path step multiplies lam by this
PATH_STEPS = 60  # at most; lam then is lam_max * 0.8^60 ~ 1.5e-6 lam_max
BISECT_STEPS = 8
BISECT_TOLERANCE = 0.25  # neurons per class: close enough to the target to stop bisecting
# Activations (images x units) up to this size are fitted with one intra-op thread: the solvers issue
# thousands of small products, and with several threads each one pays the thread pool's synchronisation,
# which outweighs the work (a 20 x 256 path: 4 s on one thread, 81 s on two on a loaded two-core machine).
SMALL_PROBLEM = 1 << 21
METHOD = ("L1-penalised multinomial logistic regression on the layer's activations (averaged over positions, "
          "standardised with the train images' statistics), by FISTA with soft-thresholding; the penalty is swept "
          f"down from lam_max (W = 0) by x{PATH_RATIO} per step with warm starts until the probe uses the target "
          "number of neurons per class (non-zero weights per class, averaged over classes), then bisected; the "
          "path point closest to the target is the sparse probe")


@dataclass
class L1Fit:
    """One probe of the path: weight [C, U] and bias [C] at penalty ``lam``, with its sparsity."""

    lam: float
    weight: Tensor
    bias: Tensor
    iterations: int

    @property
    def per_class(self) -> float:
        """Non-zero weights per class, averaged over classes."""
        return float((self.weight != 0).sum(1).double().mean())

    @property
    def neurons_used(self) -> int:
        """Neurons with a non-zero weight for at least one class."""
        return int((self.weight != 0).any(0).sum())

    def predict(self, x: Tensor) -> Tensor:
        return (x.to(self.weight.dtype) @ self.weight.T + self.bias).argmax(1)


@dataclass
class SparsePath:
    """The fits of the path, in the order they were made (decreasing ``lam``, then the bisection), and
    the one chosen: the fit whose neurons per class is closest to ``target`` (ties: the sparser)."""

    target: float
    lam_max: float
    fits: list[L1Fit] = field(default_factory=list)

    @property
    def chosen(self) -> L1Fit:
        return min(self.fits, key=lambda f: (abs(f.per_class - self.target), f.per_class))


@contextmanager
def _threads_for(x: Tensor) -> Iterator[None]:
    """One intra-op thread while fitting a small problem (see SMALL_PROBLEM); the setting is restored."""
    if x.numel() > SMALL_PROBLEM:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def standardise(train: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """``train`` [n, U] and each of ``others`` [m, U] standardised with the mean and std of ``train``
    (float64; a constant unit gets std 1, so it stays 0)."""
    train = train.double()
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return tuple((x.double() - mean) / std for x in (train, *others))


def _with_bias(x: Tensor) -> Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)


def lipschitz(x: Tensor) -> float:
    """The mean cross-entropy's gradient is L-Lipschitz in (W, b) with L = sigma_max([x, 1])^2 / (2n)."""
    return float(torch.linalg.matrix_norm(_with_bias(x), ord=2)) ** 2 / (2 * len(x))


def _gradient(x: Tensor, onehot: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """The mean cross-entropy's gradient in weight [C, U] and in bias [C]."""
    residual = (torch.softmax(x @ weight.T + bias, 1) - onehot) / len(x)
    return residual.T @ x, residual.sum(0)


def soft_threshold(values: Tensor, threshold: float) -> Tensor:
    """The proximal map of ``threshold * |.|_1``: shrink towards 0 by ``threshold``, exactly 0 inside it."""
    return values.sign() * (values.abs() - threshold).clamp_min(0)


def prior_bias(labels: Tensor, num_classes: int) -> Tensor:
    """The optimal bias when W = 0: log class frequencies (absent classes get a large negative bias)."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    return torch.log(counts.clamp_min(0.5) / len(labels))


def lam_max(x: Tensor, labels: Tensor, num_classes: int) -> float:
    """The smallest L1 penalty at which W = 0 is optimal: the largest |gradient| at (0, prior bias)."""
    onehot = F.one_hot(labels, num_classes).to(x.dtype)
    grad_w, _ = _gradient(x, onehot, torch.zeros(num_classes, x.shape[1], dtype=x.dtype),
                             prior_bias(labels, num_classes))
    return float(grad_w.abs().max())


def fista_l1(x: Tensor, labels: Tensor, num_classes: int, lam: float, *, init: tuple[Tensor, Tensor] | None = None,
             max_iter: int = 2000, tol: float = 1e-6, step: float | None = None) -> L1Fit:
    """The L1-penalised multinomial logistic regression of standardised ``x`` [n, U] on ``labels`` [n] at
    penalty ``lam``, by FISTA with gradient-based restart; ``init`` (weight, bias): a warm start.

    Stops when no weight or bias moved more than ``tol`` (relative to the largest weight, at least 1).
    """
    x = x.double()
    onehot = F.one_hot(labels, num_classes).to(x.dtype)
    step = step or 1.0 / lipschitz(x)
    if init is None:
        weight, bias = torch.zeros(num_classes, x.shape[1], dtype=x.dtype), prior_bias(labels, num_classes)
    else:
        weight, bias = init[0].double().clone(), init[1].double().clone()
    look_w, look_b, momentum = weight, bias, 1.0
    for iteration in range(1, max_iter + 1):
        grad_w, grad_b = _gradient(x, onehot, look_w, look_b)
        new_w = soft_threshold(look_w - step * grad_w, step * lam)
        new_b = look_b - step * grad_b
        moved = max(float((new_w - weight).abs().max()), float((new_b - bias).abs().max()))
        # Restart the momentum when it points uphill (O'Donoghue & Candes): keeps FISTA monotone-ish.
        uphill = float(((look_w - new_w) * (new_w - weight)).sum() + ((look_b - new_b) * (new_b - bias)).sum()) > 0
        next_momentum = 1.0 if uphill else (1 + math.sqrt(1 + 4 * momentum ** 2)) / 2
        beta = 0.0 if uphill else (momentum - 1) / next_momentum
        look_w, look_b = new_w + beta * (new_w - weight), new_b + beta * (new_b - bias)
        weight, bias, momentum = new_w, new_b, next_momentum
        if moved <= tol * max(1.0, float(weight.abs().max())):
            break
    return L1Fit(lam, weight, bias, iteration)


def l1_path(x: Tensor, labels: Tensor, num_classes: int, per_class: float = 3.0, *, ratio: float = PATH_RATIO,
            steps: int = PATH_STEPS, max_iter: int = 2000) -> SparsePath:
    """Fits from ``lam_max`` down by ``ratio`` (warm-started) until ``per_class`` neurons per class are
    used, then bisected (in log lam) between the last fit below the target and the first at or above it."""
    with _threads_for(x):
        return _l1_path(x, labels, num_classes, per_class, ratio, steps, max_iter)


def _l1_path(x: Tensor, labels: Tensor, num_classes: int, per_class: float, ratio: float, steps: int,
             max_iter: int) -> SparsePath:
    x = x.double()
    top = lam_max(x, labels, num_classes)
    path = SparsePath(per_class, top)
    step = 1.0 / lipschitz(x)
    fit = fista_l1(x, labels, num_classes, top, max_iter=max_iter, step=step)
    path.fits.append(fit)
    for k in range(1, steps + 1):
        fit = fista_l1(x, labels, num_classes, top * ratio ** k, init=(fit.weight, fit.bias), max_iter=max_iter,
                       step=step)
        path.fits.append(fit)
        if fit.per_class >= per_class:
            break
    above, below = path.fits[-1], path.fits[-2]
    for _ in range(BISECT_STEPS if above.per_class >= per_class else 0):
        if abs(path.chosen.per_class - per_class) <= BISECT_TOLERANCE:
            break
        lam = math.sqrt(above.lam * below.lam)
        fit = fista_l1(x, labels, num_classes, lam, init=(below.weight, below.bias), max_iter=max_iter, step=step)
        path.fits.append(fit)
        above, below = (fit, below) if fit.per_class >= per_class else (above, fit)
    return path


def accuracy(predicted: Tensor, labels: Tensor) -> float | None:
    return float((predicted == labels).double().mean()) if len(labels) else None


def weight_table(fit: L1Fit, names: list[str], classnames: list[str]) -> list[dict[str, Any]]:
    """The non-zero weights of ``fit``: one row per (neuron, class), by class then decreasing |weight|."""
    rows = []
    for c, row in enumerate(fit.weight):
        used = torch.nonzero(row).view(-1).tolist()
        for unit in sorted(used, key=lambda u: (-abs(float(row[u])), u)):
            rows.append({"class": classnames[c], "neuron": names[unit], "unit": unit, "weight": float(row[unit])})
    return rows


@dataclass
class ProbeComparison:
    """The sparse probe path and the full probe, both fitted on ``x_train`` [n, U] (standardised) and scored on
    ``x_test`` [m, U] (standardised with the training statistics)."""

    path: SparsePath
    full_accuracy: float | None
    full_weight_decay: float
    chance: float | None  # always predicting the training images' majority class
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    def scores(self, fit: L1Fit) -> dict[str, Any]:
        """A fit's penalty, sparsity and accuracy on both image sets."""
        return {"lam": fit.lam, "per_class": fit.per_class, "neurons_used": fit.neurons_used,
                "iterations": fit.iterations, "train_accuracy": accuracy(fit.predict(self.x_train), self.y_train),
                "held_out_accuracy": accuracy(fit.predict(self.x_test), self.y_test)}

    @property
    def sparse_accuracy(self) -> float | None:
        return accuracy(self.path.chosen.predict(self.x_test), self.y_test)


def compare_probes(train: Tensor, train_labels: Tensor, held_out: Tensor, held_out_labels: Tensor, num_classes: int,
                   *, per_class: float = 3.0, seed: int = 0) -> ProbeComparison:
    """Both probes fitted on ``train`` [n, U] activations and scored on ``held_out`` [m, U] (raw activations:
    standardised here with the training images' statistics)."""
    x_train, x_test = standardise(train, held_out)
    path = l1_path(x_train, train_labels, num_classes, per_class)
    with _threads_for(x_train), torch.no_grad():
        head, report = train_linear_probe(x_train.float(), train_labels, num_classes, seed=seed)
        full = head(x_test.float()).argmax(1)
    majority = int(torch.bincount(train_labels, minlength=num_classes).argmax())
    return ProbeComparison(path, accuracy(full, held_out_labels), report.weight_decay,
                           accuracy(torch.full_like(held_out_labels, majority), held_out_labels),
                           x_train, train_labels, x_test, held_out_labels)


def probe_split(labels: Sequence[int], limit: int, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) positions into ``labels``: ``limit`` images chosen class-stratified with ``seed``,
    then split into class-stratified halves. Disjoint by construction."""
    chosen = stratified_subset(labels, limit, seed)
    if len(chosen) < 4:
        raise UsageError(f"--probe-images: the run has {len(chosen)} clean images, too few to train and score a "
                         "sparse probe: run on at least 4 images")
    halves = stratified_subset([labels[i] for i in chosen], len(chosen) // 2, seed + 1)
    train = [chosen[i] for i in halves]
    taken = set(train)
    held_out = [i for i in chosen if i not in taken]
    return train, held_out


def layer_activations(replay: RunReplay, model: nn.Module, space: NeuronSpace, positions: Sequence[int],
                      batch_size: int) -> Tensor:
    """[n, U]: the units' activations (averaged over positions) on the run's clean images at ``positions``,
    a chunk of images at a time."""
    chunks = [unit_activations(model, space, replay.clean_images(positions[i:i + batch_size], batch_size),
                               batch_size)[0] for i in range(0, len(positions), batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros(0, space.total)


def sparse_probe(replay: RunReplay, model: nn.Module, space: NeuronSpace, *, limit: int, per_class: float, seed: int,
                 batch_size: int) -> dict[str, Any]:
    """The sparse and the full probe of the run's clean images (train half / held-out half), as
    sparse_probe.json records them (``weights``: the sparse probe's non-zero weights)."""
    labels_all = [int(v) for v in replay.dataset.labels]
    train, held_out = probe_split(labels_all, limit, seed)
    acts = {name: layer_activations(replay, model, space, rows, batch_size)
            for name, rows in (("train", train), ("held_out", held_out))}
    labels = {name: torch.tensor([labels_all[i] for i in rows]) for name, rows in (("train", train),
                                                                                   ("held_out", held_out))}
    classnames = replay.classnames
    result = compare_probes(acts["train"], labels["train"], acts["held_out"], labels["held_out"], len(classnames),
                            per_class=per_class, seed=seed)
    ids = replay.dataset.sample_ids
    data = replay.dataset.describe()
    images = {"source": f"clean images of the run's data set {data['name']} (split {data['split']})",
              "how": f"{len(train) + len(held_out)} images chosen class-stratified (seed {seed}), split into "
                     "class-stratified halves: the probes are fitted on the train half and scored on the held-out half",
              "disjoint": not set(train) & set(held_out),
              **{name: {"n": len(rows), "sample_hash": sample_hash([ids[i] for i in rows])}
                 for name, rows in (("train", train), ("held_out", held_out))}}
    return describe(result, [layer.name for layer in space.layers], space.names, classnames, images)


def describe(result: ProbeComparison, layers: list[str], names: list[str], classnames: list[str],
             images: dict[str, Any]) -> dict[str, Any]:
    """sparse_probe.json: the images, the chosen sparse probe, the full probe, the path and the weights."""
    chosen = result.path.chosen
    counts = (chosen.weight != 0).sum(1).tolist()
    return {
        "method": METHOD, "layers": layers, "n_neurons": len(names), "n_classes": len(classnames), "images": images,
        "target_per_class": result.path.target, "lam_max": result.path.lam_max,
        "sparse": {**result.scores(chosen), "neurons_per_class": dict(zip(classnames, counts))},
        "full": {"held_out_accuracy": result.full_accuracy, "weight_decay": result.full_weight_decay,
                 "protocol": "the linear-probe head's: L2 logistic regression on the standardised activations, "
                             "weight decay chosen on a validation split of the train half"},
        "chance": result.chance,
        "path": [result.scores(fit) for fit in sorted(result.path.fits, key=lambda f: -f.lam)],
        "weights": weight_table(chosen, names, classnames),
    }


def write_sparse_probe(out_dir: Path, probe: dict[str, Any]) -> list[str]:
    """sparse_probe.json (everything) and sparse_probe.csv (the non-zero weights) in ``out_dir``."""
    rows = [{**row, "layer": row["neuron"].rpartition(":")[0]} for row in probe["weights"]]
    write_text_atomic(Path(out_dir) / CSV_FILE, pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(index=False))
    write_json_atomic(Path(out_dir) / JSON_FILE, probe)
    return [JSON_FILE, CSV_FILE]


def summary(probe: dict[str, Any]) -> dict[str, Any]:
    """What neurons.json records of the probe (the weights and the path are in sparse_probe.json)."""
    return {k: v for k, v in probe.items() if k not in ("weights", "path")} | {"files": [JSON_FILE, CSV_FILE]}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown_section(probe: dict[str, Any]) -> list[str]:
    """neurons.md's section on the sparse probe."""
    sparse, images = probe["sparse"], probe["images"]
    return ["## Sparse linear probe", "",
            (f"{images['how']} ({images['train']['n']} train, {images['held_out']['n']} held-out; "
             f"{images['source']}). At {sparse['per_class']:.2f} neurons per class (target "
             f"{probe['target_per_class']:g}; {sparse['neurons_used']} of {probe['n_neurons']} neurons used), "
             f"held-out accuracy {_pct(sparse['held_out_accuracy'])}, vs {_pct(probe['full']['held_out_accuracy'])} "
             f"for the full probe and {_pct(probe['chance'])} for the majority class. Weights: `{CSV_FILE}`."), ""]


__all__ = ["CSV_FILE", "JSON_FILE", "L1Fit", "ProbeComparison", "SparsePath", "accuracy", "compare_probes", "fista_l1", "l1_path", "lam_max",
           "lipschitz", "prior_bias", "soft_threshold", "standardise", "weight_table", "describe", "layer_activations",
           "markdown_section", "probe_split", "sparse_probe", "summary", "write_sparse_probe"]
