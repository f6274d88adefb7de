"""Attack suites: declarative TOML files (in ``attacks/``) that state every parameter of a protocol.

A suite is a list of stages (see ``typobench.stages.base``). Results record the suite's content hash,
so a changed suite can never be mistaken for the published one.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.defenses import Defense, parse_defenses
from typobench.stages.base import Stage, check_sources
from typobench.suites.fields import Table
from typobench.suites.files import resolve_suite_path
from typobench.suites.kinds import STAGE_SCHEMAS
from typobench.suites.head_option import HeadProtocol, parse_head_table
from typobench.suites.neurons_option import check_neuron_stages, parse_neurons_table
from typobench.suites.schema import defaults_tables, expand_defaults

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITE_FIELDS = ("name", "description", "reference", "protocol_version", "datasets", "defaults", "stage", "neurons", "head",
                "defense")


@dataclass
class Suite:
    name: str
    description: str
    reference: str
    protocol_version: int
    datasets: list[str]
    stages: list[Stage]
    path: str | None
    sha256: str
    # The [neurons] table (NeuronsConfig options): analyse the run's failures by neurons when it finishes.
    neurons: dict[str, Any] | None = None
    # The [defense] table (or [[defense]] tables), in order: part of the model the suite is run on.
    defenses: list[Defense] = field(default_factory=list)
    # The [head] table: the zero-shot templates and temperature a published protocol fixes.
    head: HeadProtocol | None = None

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "path": self.path, "sha256": self.sha256,
               "protocol_version": self.protocol_version, "description": self.description,
               "reference": self.reference, "datasets": self.datasets, "neurons": self.neurons}
        if self.head is not None:
            out["head"] = self.head.describe()
        return {**out, "defenses": [d.spec for d in self.defenses]} if self.defenses else out

    def check(self, classnames: list[str]) -> None:
        for stage in self.stages:
            stage.check(classnames, f"suite {self.name}")


def read_suite(name_or_path: str) -> Suite:
    """The built :class:`Suite` of a name (``typobench list suites``) or ``.toml`` path (the editable text of a
    suite, to override before building, is ``typobench.api.load_suite``'s ``SuiteSpec``)."""
    path = resolve_suite_path(name_or_path)
    data = path.read_bytes()
    return parse_suite(data, where=f"suite {path.name}", path=str(path))


# `--suite none` means clean images only: for a command that always runs a Suite (defend, benchmark), this one.
CLEAN_ONLY = b'name = "none"\ndescription = "clean images only"\n\n[[stage]]\nname = "clean"\nkind = "clean"\n'


def read_suite_or_clean(name_or_path: str | None) -> Suite:
    """The suite named by --suite; None (``--suite none``) is clean images only."""
    return parse_suite(CLEAN_ONLY, where="suite none") if name_or_path is None else read_suite(name_or_path)


def parse_suite(data: bytes, where: str = "suite", path: str | None = None) -> Suite:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not valid TOML ({exc}); fix the file") from exc
    top = Table(raw, "", where)
    name = top.str("name")
    if not name.strip():
        raise top.error("name", "must be a non-empty name")
    where = f"suite {name}"
    top.where = where
    defaults = top.table("defaults", {})
    for key in list(defaults.data):
        defaults.table(key)  # each [defaults.X] must be a table
    defaults.finish(defaults_tables(STAGE_SCHEMAS.values()))
    top.list("stage")
    # [defaults.X] are copied into the stages that read them: builders see each stage whole.
    expanded = expand_defaults(raw, STAGE_SCHEMAS)
    stages = [_build_stage(Table(entry, f"stage[{i}]", where)) for i, entry in enumerate(expanded["stage"])]
    suite = Suite(
        name=name,
        description=top.str("description", ""),
        reference=top.str("reference", ""),
        protocol_version=top.number("protocol_version", 1, integer=True, minimum=1),
        datasets=list(top.raw("datasets", [])),
        stages=stages,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        neurons=parse_neurons_table(top.table("neurons")) if top.has("neurons") else None,
        defenses=_parse_defense_tables(top.raw("defense", None), where, Path(path).parent if path else None),
        head=parse_head_table(top.table("head")) if top.has("head") else None,
    )
    if suite.neurons is not None:
        check_neuron_stages(suite.neurons, [s.name for s in stages], where)
    top.finish(SUITE_FIELDS)
    try:
        check_sources(stages)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc
    return suite


def _parse_defense_tables(value: Any, where: str, base_dir: Path | None) -> list[Defense]:
    """``[defense]`` (one table) or ``[[defense]]`` (several, applied in order); their relative file names are
    read from ``base_dir``, the suite file's folder."""
    if value is None:
        return []
    tables = [value] if isinstance(value, dict) else value
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"{where}: defense must be a table [defense] or tables [[defense]], got {value!r}")
    return parse_defenses(tables, f"{where}: defense", base_dir)


def _build_stage(table: Table) -> Stage:
    name = table.str("name")
    if not name.strip():  # a stage is referred to by name (source, mask_stage, predictions.csv)
        raise table.error("name", "must be a non-empty name")
    kind = table.str("kind")
    if kind not in STAGE_SCHEMAS:
        raise table.error("kind", str(STAGE_SCHEMAS.unknown(kind)))
    source = table.str("source", "clean")
    return STAGE_SCHEMAS.get(kind).build(table, name, source)
