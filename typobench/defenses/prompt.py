"""The ``prompt`` defense: the zero-shot prompts changed, the model untouched.

* ``templates=T1+T2``: the data set's templates replaced (``{}`` = the class name);
* ``prefix=TEXT``: a fixed text just before the class name in every template (``a photo of a {}.`` ->
  ``a photo of a TEXT {}.``);
* ``prefix=FILE.safetensors``: a learned prefix token there (Defense-Prefix, ``defenses.prefix``), trained
  for these very weights;
* ``prefix=FILE.pt``: the authors' released learned tokens (``defenses.prefix_pt``): the width is checked
  against the text tower; nothing records what they were trained on, so their provenance is unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256
from typobench.defenses.base import Defense, Prompts
from typobench.defenses.prefix import load_prefix
from typobench.defenses.prefix_pt import RELEASED_SUFFIX, is_released
from typobench.defenses.provenance import Selection
from typobench.defenses.spec import SpecFields

LEARNED_SUFFIX = ".safetensors"
LEARNED_SUFFIXES = (LEARNED_SUFFIX, RELEASED_SUFFIX)


class PromptDefense(Defense):
    kind = "prompt"
    fields = ("templates", "prefix")
    summary = ("zero-shot prompts: templates=T1+T2 and/or prefix=TEXT (before the class name) or "
               "prefix=FILE.safetensors (a learned prefix) or prefix=FILE.pt (released Defense-Prefix tokens)")
    changes_prompts = True

    def __init__(self, spec: str, templates: tuple[str, ...] | None, prefix: str | None,
                 learned_prefix: Path | None):
        super().__init__(spec)
        self.templates, self.prefix, self.learned_prefix = templates, prefix, learned_prefix

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> PromptDefense:
        templates = fields.names("templates", None)
        for template in templates or ():
            if template.count("{}") != 1:
                raise fields.error("templates", f"template {template!r} must hold '{{}}' (the class name) exactly once")
        prefix = fields.text("prefix", None)
        if templates is None and prefix is None:
            raise fields.error("templates", "give templates=T1+T2, prefix=TEXT or prefix=FILE.safetensors|FILE.pt (or both)")
        learned = None
        if prefix is not None and prefix.endswith(LEARNED_SUFFIXES):
            learned = fields.resolve(prefix)
            if not learned.is_file():
                raise fields.error("prefix", f"learned prefix file '{learned}' not found: train one with "
                                             "`typobench defense train-prefix` (or pass a released Defense-Prefix .pt)")
        if prefix is not None and "{" in prefix:
            raise fields.error("prefix", f"{prefix!r} holds a brace: the prefix is plain text put before the class name")
        fields.finish(cls.fields)
        return cls(spec, tuple(templates) if templates else None, None if learned else prefix, learned)

    def parameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.templates is not None:
            out["templates"] = list(self.templates)
        if self.prefix is not None:
            out["prefix"] = self.prefix
        if self.learned_prefix is not None:
            out["learned_prefix"] = str(self.learned_prefix)
        return out

    def selections(self) -> list[Selection]:
        if self.learned_prefix is None or is_released(self.learned_prefix):
            return []  # written by hand, like a blur's sigma; or released by others (provenance_unknown)
        meta = load_prefix(self.learned_prefix).metadata
        count = meta.get("train_count")
        return [Selection("learned prefix", str(self.learned_prefix), dataset=meta.get("dataset"), split=meta.get("split"),
                          n=int(count) if count else None, sample_hash=meta.get("train_sample_hash"),
                          model_label=meta.get("model_label"), model_fingerprint=meta.get("model_fingerprint"))]

    def provenance_unknown(self) -> bool:
        # Released tokens were trained on images nobody recorded here: they may include the scored ones.
        return self.learned_prefix is not None and is_released(self.learned_prefix)

    def transform_prompts(self, prompts: Prompts, record: dict[str, Any]) -> Prompts:
        if prompts.learned_prefix is not None:
            raise UsageError(f"--defense '{self.spec}' comes after a learned prefix: put the learned prefix last among "
                             "the prompt defenses (it is applied to the final templates)")
        templates = self.templates or prompts.templates
        if self.prefix is not None:
            templates = tuple(template.replace("{}", f"{self.prefix} {{}}") for template in templates)
        prompts = prompts.with_templates(templates)
        if self.learned_prefix is not None:
            sha256 = file_sha256(self.learned_prefix)
            record["learned_prefix_sha256"] = sha256
            prompts = Prompts(templates, self.learned_prefix, sha256)
        record["templates_used"] = list(templates)
        return prompts


__all__ = ["PromptDefense"]
