"""What a defense is: a change to the model under test, at one of three places.

* the weights (``transform_model``: ``interpolate`` returns another ``LoadedModel``);
* the zero-shot prompts (``transform_prompts``: ``prompt`` rewrites templates or adds a prefix);
* the classifier's forward pass (``wrap``: ``input`` transforms pixels, ``ablate`` edits units), each
  wrapper seeing the classifier already defended by the ones before it.

A defended classifier takes [0,1] pixels like every classifier, so stages and PGD differentiate through
it (adaptive attacks). Building needs images only for mean ablation: the harness answers
:class:`ImageRequest` through :class:`BuildContext`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor

from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.defenses.provenance import Selection
from typobench.defenses.spec import SpecFields
from typobench.models import LoadedModel


@dataclass(frozen=True)
class ImageRequest:
    """Clean images a defense needs (mean ablation): ``source`` "neurons" (the reference images of the
    analysis in ``neurons_json``) or "split" (a class-stratified subset of ``n`` images of ``split`` of the
    session's data set)."""

    source: str
    n: int
    split: str | None = None
    neurons_json: Path | None = None


# request -> (images [n,3,H,W] in [0,1], where they came from: JSON-ready)
ImageProvider = Callable[[ImageRequest], tuple[Tensor, dict[str, Any]]]


@dataclass
class BuildContext:
    """What building a wrapper may use: the runtime, the batch size, and clean images on request."""

    runtime: Runtime
    batch_size: int
    images: ImageProvider | None = None

    def request(self, request: ImageRequest, where: str) -> tuple[Tensor, dict[str, Any]]:
        if self.images is None:
            raise UsageError(f"{where}: mean ablation needs clean images, and none can be loaded here: "
                             "use mode=zero, or build the defense in a session")
        return self.images(request)


@dataclass(frozen=True)
class Prompts:
    """The zero-shot prompts: ``templates`` (``{}`` = the class name) and, optionally, a learned prefix file."""

    templates: tuple[str, ...]
    learned_prefix: Path | None = None
    learned_prefix_sha256: str | None = None
    logit_scale: float | None = None  # the logits' temperature; None: the model's own (a suite's [head] sets it)

    def with_templates(self, templates: tuple[str, ...]) -> Prompts:
        return replace(self, templates=templates)


class Defense(ABC):
    """One defense as parsed from its spec; ``spec`` is its command-line form (what results record). Every kind
    sets the class attributes in ``DECLARED`` (checked when it is registered, ``defenses.registry``)."""

    DECLARED: ClassVar[tuple[str, ...]] = ("kind", "fields", "summary")

    kind: ClassVar[str]  # the name a spec starts with (``KIND:KEY=VALUE,...``)
    fields: ClassVar[tuple[str, ...]]  # the keys its spec accepts
    summary: ClassVar[str]  # one line for `typobench list defenses` and the --defense help
    # A randomised defense draws anew per EOT draw (``typobench.core.draws``): attack it with EOT.
    randomised: bool = False
    # Changes the zero-shot prompts (``transform_prompts``): refused on a head without prompts.
    changes_prompts: ClassVar[bool] = False

    def __init__(self, spec: str):
        self.spec = spec

    @classmethod
    @abstractmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> Defense:
        """The defense of ``spec`` from its checked ``fields``."""

    # Each step may add what it resolved (a file's sha256, the units, where mean images came from) to
    # ``record``, this defense's entry in results.json: a defense parsed once can be built in many sessions.

    def transform_model(self, model: LoadedModel, record: dict[str, Any]) -> LoadedModel:
        return model

    def transform_prompts(self, prompts: Prompts, record: dict[str, Any]) -> Prompts:
        return prompts

    def wrap(self, classifier: Any, ctx: BuildContext, record: dict[str, Any]) -> Any:
        """``classifier`` (a ``DefendedClassifier``) with this defense's step added."""
        return classifier

    # Provenance: each kind states what it was chosen on; the harness checks it against the scored images
    # wherever a defense is applied to a session (``harness.provenance``), so no command can skip it.

    def selections(self) -> list[Selection]:
        """The images this defense was chosen on (none: nothing was chosen from data, e.g. a fixed blur)."""
        return []

    def provenance_unknown(self) -> bool:
        """True when the defense carries a choice that cannot be traced to any images (units written out)."""
        return False

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The defense's own parameters, JSON-ready."""

    def describe(self) -> dict[str, Any]:
        """Kind, spec and parameters (building adds what it resolved)."""
        return {"kind": self.kind, "spec": self.spec, **self.parameters()}


__all__ = ["BuildContext", "Defense", "ImageProvider", "ImageRequest", "Prompts"]
