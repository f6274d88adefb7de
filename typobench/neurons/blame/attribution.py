"""Blame: attribute a failure's logit difference to neurons (gradient x activation).

For an image whose prediction moved from class ``a`` to class ``b`` (a failure: ``a`` = the true
class y, ``b`` = the class t the attack produced), the attribution of unit ``u`` is

    attr_u = sum over positions p of  act[u, p] * d(logit_b - logit_a) / d act[u, p]

(the gradient x activation of Goh et al.'s appendix). It is computed for the attacked image and for
its clean image with the *same* pair (a, b); their difference ``attacked - clean`` isolates what the
attack added. If everything after the layer were linear and bias-free, the attributions of all
units would sum exactly to ``logit_b - logit_a``; with the real (nonlinear) head they are its
first-order decomposition.

Aggregation over a set of events (all failures of one attack text, one PGD target, or a stage)
ranks the units by the mean attribution and gives each its share of the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from typobench.suites.neurons_option import RANK_BY
from typobench.models.units import NeuronSpace, as_pixels, capture, mean_over_positions



@dataclass
class Attribution:
    """Per event: ``attr`` [N, U] (gradient x activation summed over positions), ``acts`` [N, U]
    (activations averaged over positions), ``margin`` [N] (logit_to - logit_from), ``logits`` [N, C]."""

    attr: Tensor
    acts: Tensor
    margin: Tensor
    logits: Tensor


def linearised_logits(model: nn.Module, x: Tensor) -> Tensor:
    """Logits with the head's L2 normalisation of the embedding treated as a constant (detached).

    Both typobench heads score ``normalize(f)``: a scale-invariant function of the embedding, whose
    gradient is orthogonal to f, so gradient x activation over a layer that f scales with sums to about 0
    (Euler's theorem) whatever the neurons do. The norm multiplies every logit alike; holding it fixed
    gives the same logits and gradients that decompose ``f . (w_to - w_from) / |f|`` over the neurons.
    Other models are called as they are.
    """
    features_of = getattr(model, "features", None)
    if features_of is None or getattr(model, "head", None) is None:
        return model(x)
    return linearised_head(model, features_of(x))


def linearised_head(model: nn.Module, f: Tensor) -> Tensor:
    """The logits [N, C] of ``model.head`` on image embeddings ``f`` [N, D], the L2 normalisation held
    fixed (see :func:`linearised_logits`): linear in ``f`` for both typobench heads."""
    head = model.head
    unit = f / f.norm(dim=-1, keepdim=True).detach().clamp_min(1e-12)
    if hasattr(head, "class_embeddings") and hasattr(head, "logit_scale"):
        logits = head.logit_scale * unit @ head.class_embeddings.to(unit.dtype).T
        return logits if getattr(head, "logit_bias", None) is None else logits + head.logit_bias
    if isinstance(getattr(head, "weight", None), Tensor) and isinstance(getattr(head, "bias", None), Tensor):
        return unit @ head.weight.to(unit.dtype).T + head.bias.to(unit.dtype)
    return head(f)


def attribute(model: nn.Module, space: NeuronSpace, images: Tensor, from_idx: Sequence[int] | Tensor,
              to_idx: Sequence[int] | Tensor, *, batch_size: int = 64, detach_norm: bool = True) -> Attribution:
    """Gradient x activation of ``logit_to - logit_from`` for every unit of ``space`` (no autocast).

    ``detach_norm``: see :func:`linearised_logits` (the logits themselves are unchanged).
    """
    from_idx = torch.as_tensor(from_idx, dtype=torch.long).view(-1)
    to_idx = torch.as_tensor(to_idx, dtype=torch.long).view(-1)
    if not (len(images) == len(from_idx) == len(to_idx)):
        raise ValueError(f"{len(images)} images, {len(from_idx)} from-classes, {len(to_idx)} to-classes")
    device = next(model.parameters()).device
    attrs, acts, margins, logits_all = [], [], [], []
    for start in range(0, len(images), batch_size):
        x = as_pixels(images[start:start + batch_size]).to(device).requires_grad_(True)
        a = from_idx[start:start + batch_size].to(device).view(-1, 1)
        b = to_idx[start:start + batch_size].to(device).view(-1, 1)
        with torch.enable_grad(), capture(space) as store:
            logits = linearised_logits(model, x) if detach_norm else model(x)
            margin = (logits.gather(1, b) - logits.gather(1, a)).squeeze(1)
            outputs = [store[layer.name] for layer in space.layers]
            grads = torch.autograd.grad(margin.sum(), outputs)
        parts = [layer.grad_times_act(out, grad).float() for layer, out, grad in zip(space.layers, outputs, grads)]
        attrs.append(torch.cat(parts, dim=1).detach().cpu())
        acts.append(mean_over_positions(space, {k: v.detach() for k, v in store.items()}).cpu())
        margins.append(margin.detach().float().cpu())
        logits_all.append(logits.detach().float().cpu())
    if not attrs:
        empty = torch.zeros(0, space.total)
        return Attribution(empty, empty.clone(), torch.zeros(0), torch.zeros(0, 0))
    return Attribution(torch.cat(attrs), torch.cat(acts), torch.cat(margins), torch.cat(logits_all))


def blame_table(attacked: Tensor, clean: Tensor | None, names: Sequence[str], *, rank_by: str = "added",
                per_event_k: int = 10) -> pd.DataFrame:
    """Every unit ranked by mean attribution over the events (rows of ``attacked``/``clean``).

    Ranking (``rank_by``): ``diff`` = mean of attacked - clean (what the attack changed); ``attacked`` =
    mean attacked attribution (to first order, what zero-ablating the unit removes from the margin);
    ``added`` (default) = min(mean attacked, mean diff): the unit pushes towards the attack's class in
    the attacked image *and* the attack added that push. ``diff`` alone also ranks units whose support
    for the true class the attack removed (e.g. occluded object evidence): ablating those cannot undo
    a failure, which is why ``added`` is the default.

    Columns: rank, neuron, mean_attr_attacked, mean_attr_clean, mean_attr_diff (attacked - clean),
    share (mean diff / its sum over all units -- with the normalisation held fixed the attributions
    sum to the logit margin, so this is the unit's share of the margin change the attack caused; for
    ``attacked`` ranking, the share of the attacked margin), share_abs (|same| / sum of |same|),
    in_event_topk (fraction of events in whose own top ``per_event_k`` of the ranking value the unit is).
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
    if rank_by != "attacked" and clean is None:
        raise ValueError(f"rank_by={rank_by!r} needs the clean attributions")
    att_mean = attacked.mean(0)
    nan = torch.full_like(att_mean, float("nan"))
    clean_mean = clean.mean(0) if clean is not None else nan
    diff_mean = att_mean - clean_mean if clean is not None else nan
    key = {"diff": diff_mean, "attacked": att_mean, "added": torch.minimum(att_mean, diff_mean)}[rank_by]
    per_event = {"diff": lambda: attacked - clean, "attacked": lambda: attacked,
                 "added": lambda: torch.minimum(attacked, attacked - clean)}[rank_by]()
    basis = att_mean if rank_by == "attacked" else diff_mean  # what the shares are shares of
    total = float(basis.sum())
    abs_total = float(basis.abs().sum())
    k = min(per_event_k, attacked.shape[1])
    counts = torch.zeros(attacked.shape[1])
    if len(per_event):
        counts.index_add_(0, per_event.topk(k, dim=1).indices.reshape(-1), torch.ones(len(per_event) * k))
    frame = pd.DataFrame({
        "neuron": list(names),
        "mean_attr_attacked": att_mean.numpy().astype(float),
        "mean_attr_clean": clean_mean.numpy().astype(float),
        "mean_attr_diff": diff_mean.numpy().astype(float),
        "share": (basis / total).numpy().astype(float) if total != 0 else np.full(len(names), np.nan),
        "share_abs": (basis.abs() / abs_total).numpy().astype(float) if abs_total > 0 else np.full(len(names), np.nan),
        "in_event_topk": (counts / max(len(per_event), 1)).numpy().astype(float),
        "_key": key.numpy().astype(float),
    })
    frame = frame.sort_values("_key", ascending=False, kind="stable").drop(columns="_key").reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def top_neurons(table: pd.DataFrame, k: int) -> list[str]:
    return table["neuron"].head(k).tolist()


__all__ = ["RANK_BY", "Attribution", "attribute", "blame_table", "linearised_head", "linearised_logits", "top_neurons"]
