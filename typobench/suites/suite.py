"""Attack suites: declarative TOML files (in ``attacks/``) that state every parameter of a protocol.

A suite is a list of stages (see ``typobench.stages``). Results record the suite's content hash,
so a changed suite can never be mistaken for the published one.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError, unknown_name_error
from ..stages import CleanStage, Stage
from .fields import Table
from .neurons_option import check_neuron_stages, parse_neurons_table
from .paste_stage import build_paste_stage
from .pgd_stage import build_pgd_stage
from .text_stage import build_text_stage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

StageBuilder = Callable[[Table, str, str, dict], Stage]


def _build_clean(table: Table, name: str, source: str, defaults: dict) -> Stage:
    table.raw("name"), table.raw("kind"), table.raw("source", None)
    table.finish(["name", "kind"])
    return CleanStage(name)


STAGE_BUILDERS: dict[str, StageBuilder] = {
    "clean": _build_clean,
    "text": build_text_stage,
    "pgd": build_pgd_stage,
    "paste": build_paste_stage,
}
SUITE_FIELDS = ("name", "description", "reference", "protocol_version", "datasets", "defaults", "stage", "neurons")


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

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256,
                "protocol_version": self.protocol_version, "description": self.description,
                "reference": self.reference, "datasets": self.datasets, "neurons": self.neurons}

    def check(self, classnames: list[str]) -> None:
        for stage in self.stages:
            stage.check(classnames, f"suite {self.name}")


def suites_dir() -> Path:
    """``$TYPOBENCH_SUITES_DIR``, else the ``attacks/`` folder of the typobench checkout."""
    env = os.environ.get("TYPOBENCH_SUITES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "attacks"


def list_suites() -> list[str]:
    folder = suites_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def resolve_suite_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UsageError(f"suite file '{name_or_path}' not found: pass an existing .toml file or a name "
                             "from `typobench list suites`")
        return candidate
    path = suites_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise unknown_name_error("suite", name_or_path, list_suites(), "typobench list suites")
    return path


def load_suite(name_or_path: str) -> Suite:
    path = resolve_suite_path(name_or_path)
    data = path.read_bytes()
    return parse_suite(data, where=f"suite {path.name}", path=str(path))


def parse_suite(data: bytes, where: str = "suite", path: str | None = None) -> Suite:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not valid TOML ({exc}); fix the file") from exc
    top = Table(raw, "", where)
    name = top.str("name")
    where = f"suite {name}"
    top.where = where
    defaults_table = top.table("defaults", {})
    defaults = {key: defaults_table.raw(key) for key in list(defaults_table.data)}
    defaults_table.finish(["style", "placement", "pgd"])
    stages = [_build_stage(Table(entry, f"stage[{i}]", where), defaults)
              for i, entry in enumerate(top.list("stage"))]
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
    )
    if suite.neurons is not None:
        check_neuron_stages(suite.neurons, [s.name for s in stages], where)
    top.finish(SUITE_FIELDS)
    from ..evaluation import check_stage_sources

    try:
        check_stage_sources(stages)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc
    return suite


def _build_stage(table: Table, defaults: dict) -> Stage:
    name = table.str("name")
    kind = table.str("kind")
    if kind not in STAGE_BUILDERS:
        raise unknown_name_error(f"stage kind in {table.where} {table.path}", kind, STAGE_BUILDERS,
                                 "the README's suite format")
    source = table.str("source", "clean")
    return STAGE_BUILDERS[kind](table, name, source, defaults)
