"""The clean reference images of an analysis: activation statistics, mean-ablation values, the clean
accuracy an ablation costs, and the dataset examples of the cards."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from typobench.data import stratified_subset
from typobench.models.units import NeuronSpace
from typobench.neurons.blame.replay import RunReplay
from typobench.neurons.proof.scoring import Scorer


@dataclass
class Reference:
    """A class-stratified subset of the run's clean images: ``positions`` in the data set, ``images``
    [n, 3, H, W], ``labels`` [n], and ``scorer``, which holds their unedited logits [n, C] and unit
    activations [n, U] and scores them under any ablation; ``mean_values`` [U] is each unit's mean
    activation over them (what ``mean`` ablation sets it to)."""

    positions: list[int]
    images: Tensor
    labels: Tensor
    scorer: Scorer
    mean_values: Tensor

    @classmethod
    def of(cls, replay: RunReplay, model: nn.Module, space: NeuronSpace, *, limit: int, seed: int,
           batch_size: int) -> Reference:
        """At most ``limit`` clean images of the run (stratified by class with ``seed``), scored once."""
        positions = stratified_subset(replay.dataset.labels, limit, seed)
        images = replay.clean_images(positions, batch_size)
        labels = torch.tensor(replay.dataset.labels, dtype=torch.long)[positions]
        scorer = Scorer(model, space, images, batch_size)
        return cls(list(positions), images, labels, scorer, scorer.acts.mean(0))

    @property
    def acts(self) -> Tensor:
        """Unit activations [n, U], averaged over positions."""
        return self.scorer.acts

    @property
    def accuracy(self) -> float | None:
        if not len(self.labels):
            return None
        return float((self.scorer.base_logits.argmax(1) == self.labels).float().mean())


__all__ = ["Reference"]
