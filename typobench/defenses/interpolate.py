"""The ``interpolate`` defense (PAINT, Ilharco et al. 2022): weights ``(1-alpha) A + alpha B`` of two checkpoints
of one architecture, A the loaded model and B a safetensors file of the same state dict.

The whole CLIP model is interpolated (image and text towers), so a zero-shot head is built from the
interpolated text tower. The defended model is a copy; its fingerprint is that of the interpolated weights.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256
from typobench.defenses.base import Defense
from typobench.defenses.spec import SpecFields
from typobench.models import LoadedModel


def read_state(path: Path, where: str) -> dict[str, Tensor]:
    """A safetensors state dict, or a one-line UsageError naming the file (never unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path.suffix != ".safetensors" or not path.is_file():
        raise UsageError(f"{where}: field 'checkpoint': '{path}' is not a .safetensors file: pass one that exists")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UsageError(f"{where}: field 'checkpoint': {path} cannot be read ({exc})") from None
    return {key.removeprefix("module."): value for key, value in state.items()}


def interpolate_state(a: dict[str, Tensor], b: dict[str, Tensor], alpha: float, where: str) -> dict[str, Tensor]:
    """``(1-alpha) a + alpha b`` for every floating tensor (alpha 0 gives ``a``, 1 gives ``b``, exactly);
    other tensors (integer buffers) must be equal. Keys and shapes must match."""
    missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if missing or extra:
        first = (missing or extra)[0]
        raise UsageError(f"{where}: field 'checkpoint': not a checkpoint of the same architecture ({len(missing)} "
                         f"weights missing, {len(extra)} extra, e.g. '{first}'): pass weights of the loaded model's kind")
    out = {}
    for key, weight in a.items():
        other = b[key].to(weight.device)
        if other.shape != weight.shape:
            raise UsageError(f"{where}: field 'checkpoint': weight '{key}' has shape {tuple(other.shape)}, the model's "
                             f"is {tuple(weight.shape)}: pass weights of the same architecture")
        if weight.is_floating_point():
            out[key] = ((1 - alpha) * weight.float() + alpha * other.float()).to(weight.dtype)
        elif torch.equal(weight, other.to(weight.dtype)):
            out[key] = weight
        else:
            raise UsageError(f"{where}: field 'checkpoint': non-float weight '{key}' differs between the two "
                             "checkpoints, so they cannot be interpolated")
    return out


class InterpolateDefense(Defense):
    """``interpolate:checkpoint=B.safetensors,alpha=0.5``."""

    kind = "interpolate"
    fields = ("checkpoint", "alpha")
    summary = "weights (1-alpha)*model + alpha*checkpoint (PAINT): checkpoint=B.safetensors,alpha=0.5"

    def __init__(self, spec: str, checkpoint: Path, alpha: float, where: str):
        super().__init__(spec)
        self.checkpoint, self.alpha, self.where = checkpoint, alpha, where

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> InterpolateDefense:
        checkpoint = fields.path("checkpoint")
        if checkpoint.suffix != ".safetensors" or not checkpoint.is_file():
            raise fields.error("checkpoint", f"'{checkpoint}' is not an existing .safetensors file: pass one")
        alpha = fields.number("alpha", minimum=0.0, maximum=1.0)
        fields.finish(cls.fields)
        return cls(spec, checkpoint, alpha, fields.where)

    def provenance_unknown(self) -> bool:
        # The checkpoint was fine-tuned on images this file cannot name: they may include the scored ones.
        return True

    def parameters(self) -> dict[str, Any]:
        return {"checkpoint": str(self.checkpoint), "alpha": self.alpha}

    def transform_model(self, model: LoadedModel, record: dict[str, Any]) -> LoadedModel:
        state = interpolate_state(model.model.state_dict(), read_state(self.checkpoint, self.where), self.alpha,
                                  self.where)
        clone = copy.deepcopy(model.model)
        clone.load_state_dict(state, strict=True)
        defended = dataclasses.replace(model, model=clone.eval(), _fingerprint=None)
        record.update(checkpoint_sha256=file_sha256(self.checkpoint), weights_sha256=defended.fingerprint(),
                      base_weights_sha256=model.fingerprint())
        return defended


__all__ = ["InterpolateDefense", "interpolate_state", "read_state"]
