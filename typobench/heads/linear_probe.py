"""Linear-probe head: multinomial logistic regression on L2-normalised image features.

Protocol (documented in the README): fit on the train split with weight decay chosen from a
log-spaced sweep by accuracy on a stratified held-out validation split, then refit on
train+val with the chosen weight decay. Full-batch L-BFGS, deterministic on CPU; the full-batch loss is
summed over chunks of rows, so ImageNet-sized feature sets fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from typobench.heads.base import Head

DEFAULT_WEIGHT_DECAYS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# Rows per step of the loss: bounds the [rows, C] logits, their softmax and gradient (3 x 64 Ki x 1,000
# classes x 4 bytes = 0.75 GiB) whatever the number of training images.
CHUNK_ROWS = 65_536


class LinearProbeHead(Head):
    """``forward(features [N,D]) -> logits [N,C]`` = normalise(features) @ weight.T + bias."""

    kind = "linear-probe"
    prompts = False  # fitted on the train split's features
    leader_builds_first = False  # every rank extracts its share of the features
    called = "--head linear-probe"

    def __init__(self, weight: Tensor, bias: Tensor):
        super().__init__()
        self.register_buffer("weight", weight.float())
        self.register_buffer("bias", bias.float())

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(features, dim=-1) @ self.weight.to(features.dtype).T + self.bias.to(features.dtype)


def fit_logistic_regression(
    features: Tensor, labels: Tensor, num_classes: int, weight_decay: float, *, max_iter: int = 300,
    rows: Tensor | None = None, chunk_rows: int = CHUNK_ROWS,
) -> tuple[Tensor, Tensor]:
    """Fit weight [C,D] and bias [C] to minimise cross-entropy + weight_decay/2 · ||weight||².

    ``features`` [N,D] are L2-normalised here; ``labels`` [N] int64. ``rows`` [M] (default: all N) picks
    the rows fitted, without copying them. The loss is summed over chunks of ``chunk_rows`` rows, each
    normalised when it is used, so memory beyond ``features`` is bounded by the chunk, not by N: ImageNet's
    1.28 M train features fit. Up to ``chunk_rows`` rows it is one chunk: the full-batch loss as written.
    """
    index = torch.arange(len(features)) if rows is None else rows
    chunks = list(torch.split(index, chunk_rows))
    weight = torch.zeros(num_classes, features.shape[1], dtype=torch.float32, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float32, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9, history_size=20)

    def closure() -> Tensor:
        optimizer.zero_grad()
        total = torch.zeros(())
        for number, chunk in enumerate(chunks):
            x = _normalised(features, chunk)
            # Each chunk's mean weighted by its share of the rows: the mean over all rows (x 1.0 for one chunk).
            loss = F.cross_entropy(x @ weight.T + bias, labels[chunk]) * (len(chunk) / len(index))
            if number == 0:
                loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
            loss.backward()  # frees this chunk's [rows, C] logits before the next chunk
            total = total + loss.detach()
        return total

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def predict(features: Tensor, rows: Tensor, weight: Tensor, bias: Tensor, *, chunk_rows: int = CHUNK_ROWS) -> Tensor:
    """Predicted classes [M] of ``features[rows]`` ([N,D] features, [M] rows) under a fitted probe."""
    return torch.cat([(_normalised(features, chunk) @ weight.T + bias).argmax(1)
                      for chunk in torch.split(rows, chunk_rows)] or [torch.zeros(0, dtype=torch.long)])


def _normalised(features: Tensor, rows: Tensor) -> Tensor:
    """L2-normalised float32 features [len(rows), D] of ``rows``."""
    return F.normalize(features[rows].float(), dim=-1)


def _stratified_split(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for cls in labels.unique(sorted=True):
        members = (labels == cls).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = int(round(len(members) * val_fraction)) if len(members) > 1 else 0
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values


@dataclass
class ProbeReport:
    """What the sweep found, recorded in results.json."""

    weight_decay: float
    val_accuracy: dict[str, float] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0
    protocol: str = "logistic regression on L2-normalised features; wd by held-out val accuracy; refit on train+val"

    def to_dict(self) -> dict:
        return {
            "weight_decay": self.weight_decay,
            "val_accuracy": self.val_accuracy,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "protocol": self.protocol,
        }


def train_linear_probe(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 300,
) -> tuple[LinearProbeHead, ProbeReport]:
    """Sweep weight decay on a held-out split, refit on everything, return the head and the report.

    ``features`` [N,D], ``labels`` [N]. No copy of the features is made: peak memory is ``features`` plus
    a chunk of rows at a time (see ``fit_logistic_regression``); ``max_iter`` L-BFGS iterations per fit.
    """
    labels = labels.long()
    train_idx, val_idx = _stratified_split(labels, val_fraction, seed)
    scores: dict[str, float] = {}
    if len(val_idx) > 0 and len(weight_decays) > 1:
        for wd in weight_decays:
            weight, bias = fit_logistic_regression(features, labels, num_classes, wd, max_iter=max_iter,
                                                   rows=train_idx)
            scores[f"{wd:g}"] = (predict(features, val_idx, weight, bias) == labels[val_idx]).float().mean().item()
        # Ties go to the larger weight decay: the simpler model.
        best = max(weight_decays, key=lambda wd: (scores[f"{wd:g}"], wd))
    else:
        best = weight_decays[len(weight_decays) // 2]
    weight, bias = fit_logistic_regression(features, labels, num_classes, best, max_iter=max_iter)
    report = ProbeReport(best, scores, n_train=len(train_idx), n_val=len(val_idx))
    return LinearProbeHead(weight, bias), report
