"""The ``paste`` stage (Fort 2021's transfer test): cut the perturbed sticker out of one image and
paste it, pixel for pixel at the same place, onto another image.

The donor of sample i is sample (i + shift) mod N of the same batch (batches are fixed, so the
pairing is reproducible). Targets are the donor's attack targets: does the perturbed sticker carry
its attack to a new image?
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from typobench.stages.base import Batch, RunContext, Stage, StageOutput


class PasteStage(Stage):
    kind = "paste"

    def __init__(self, name: str, source: str, donor_stage: str, mask_stage: str, shift: int = 1):
        super().__init__(name, source)
        self.donor_stage = donor_stage
        self.mask_stage = mask_stage
        self.shift = shift

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "donor_stage": self.donor_stage, "mask_stage": self.mask_stage,
                "shift": self.shift}

    def requires(self) -> list[str]:
        return [self.source, self.donor_stage, self.mask_stage]

    def apply(self, images: Tensor, batch: Batch, ctx: RunContext) -> StageOutput:
        n = images.shape[0]
        donor = (torch.arange(n, device=images.device) + self.shift) % n
        mask = batch.outputs[self.mask_stage].mask[donor]
        donor_output = batch.outputs[self.donor_stage]
        pasted = torch.where(mask, donor_output.images[donor], images)
        targets = None if donor_output.targets is None else donor_output.targets[donor]
        if targets is not None:
            # A donor whose target is this image's own label is no attack on it.
            targets = torch.where(targets == batch.labels, torch.full_like(targets, -1), targets)
        columns = {"donor": [batch.sample_ids[j] for j in donor.tolist()]}
        return StageOutput(pasted, targets=targets, mask=mask, columns=columns)
