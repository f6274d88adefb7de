"""The ``project`` defense: the image embedding multiplied by a learned projection before the head
(``project:file=P.safetensors``, learned by ``typobench defense train-projection``: ``defenses.projection``).

A forward hook on the image tower replaces its output e by ``e P`` (P symmetric) on every forward pass of the
defended classifier, so the zero-shot head (or a probe) sees the projected embedding and attacks differentiate
through it. The file records the model it was learned for and the train images it was learned on: the harness
refuses it on another model and on those images.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256
from typobench.defenses.base import BuildContext, Defense
from typobench.defenses.classifier import EditStep
from typobench.defenses.projection import load_projection
from typobench.defenses.provenance import Selection
from typobench.defenses.spec import SpecFields
from typobench.models.units import image_tower


@contextmanager
def projected(model: nn.Module, projection: Tensor) -> Iterator[None]:
    """While active, the image tower of ``model`` outputs ``e @ projection``."""
    tower = image_tower(model)

    def hook(_module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
        return output @ projection.to(output.device, output.dtype)

    handle = tower.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class ProjectDefense(Defense):
    """``project:file=P.safetensors``."""

    kind = "project"
    fields = ("file",)
    summary = ("the image embedding times a learned projection that removes spelling (Materzynska et al. 2022): "
               "file=P.safetensors (from `typobench defense train-projection`)")

    def __init__(self, spec: str, path: Path, where: str):
        super().__init__(spec)
        self.path, self.where = path, where
        self.result = load_projection(path, where)

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> ProjectDefense:
        path = fields.path("file")
        if path.suffix != ".safetensors":
            raise fields.error("file", f"'{path}' is not a .safetensors file: pass the file `typobench defense "
                                       "train-projection` wrote")
        fields.finish(cls.fields)
        return cls(spec, path, fields.where)

    def parameters(self) -> dict[str, Any]:
        return {"file": str(self.path), "rank": int(self.result.metadata.get("rank", 0))}

    def selections(self) -> list[Selection]:
        meta = self.result.metadata
        ids = json.loads(meta["sample_ids"]) if meta.get("sample_ids") else None
        return [Selection("projection", str(self.path), dataset=meta.get("dataset"), split=meta.get("split"),
                          n=int(meta["train_count"]) if meta.get("train_count") else None,
                          sample_hash=meta.get("train_sample_hash"), sample_ids=frozenset(ids) if ids else None,
                          model_label=meta.get("model_label"), model_fingerprint=meta.get("model_fingerprint"))]

    def wrap(self, classifier: Any, ctx: BuildContext, record: dict[str, Any]) -> Any:
        projection = self.result.projection
        width = getattr(image_tower(classifier.clip_model), "output_dim", None)
        if width is not None and projection.shape != (width, width):
            raise UsageError(f"{self.where}: field 'file': the projection is {tuple(projection.shape)}, this model's "
                             f"image embedding has width {width}: learn one for this model")
        record["file_sha256"] = file_sha256(self.path)
        return classifier.then(EditStep(lambda: projected(classifier.clip_model, projection)))


__all__ = ["ProjectDefense", "projected"]
