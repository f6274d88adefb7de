"""Linear-probe head: multinomial logistic regression on L2-normalised image features.

Protocol (documented in the README): fit on the train split with weight decay chosen from a
log-spaced sweep by accuracy on a stratified held-out validation split, then refit on
train+val with the chosen weight decay. Full-batch L-BFGS, deterministic on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_WEIGHT_DECAYS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class LinearProbeHead(nn.Module):
    """``forward(features [N,D]) -> logits [N,C]`` = normalise(features) @ weight.T + bias."""

    def __init__(self, weight: Tensor, bias: Tensor):
        super().__init__()
        self.register_buffer("weight", weight.float())
        self.register_buffer("bias", bias.float())

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(features, dim=-1) @ self.weight.to(features.dtype).T + self.bias.to(features.dtype)


def fit_logistic_regression(
    features: Tensor, labels: Tensor, num_classes: int, weight_decay: float, *, max_iter: int = 300
) -> tuple[Tensor, Tensor]:
    """Fit weight [C,D] and bias [C] to minimise cross-entropy + weight_decay/2 · ||weight||².

    ``features`` [N,D] are L2-normalised here; ``labels`` [N] int64.
    """
    x = F.normalize(features.float(), dim=-1)
    weight = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9, history_size=20)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


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
) -> tuple[LinearProbeHead, ProbeReport]:
    """Sweep weight decay on a held-out split, refit on everything, return the head and the report."""
    labels = labels.long()
    train_idx, val_idx = _stratified_split(labels, val_fraction, seed)
    scores: dict[str, float] = {}
    if len(val_idx) > 0 and len(weight_decays) > 1:
        for wd in weight_decays:
            weight, bias = fit_logistic_regression(features[train_idx], labels[train_idx], num_classes, wd)
            logits = F.normalize(features[val_idx].float(), dim=-1) @ weight.T + bias
            scores[f"{wd:g}"] = (logits.argmax(1) == labels[val_idx]).float().mean().item()
        # Ties go to the larger weight decay: the simpler model.
        best = max(weight_decays, key=lambda wd: (scores[f"{wd:g}"], wd))
    else:
        best = weight_decays[len(weight_decays) // 2]
    weight, bias = fit_logistic_regression(features, labels, num_classes, best)
    report = ProbeReport(best, scores, n_train=len(train_idx), n_val=len(val_idx))
    return LinearProbeHead(weight, bias), report
