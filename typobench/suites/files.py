"""Where suites come from: a user's own suite folders (``$TYPOBENCH_SUITES_DIR``), then the shipped suites."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from typobench.core.errors import UsageError, unknown_name_error
from typobench.shipped import shipped_suites_dir

SUITES_ENV = "TYPOBENCH_SUITES_DIR"
SHIPPED = "shipped"


@dataclass(frozen=True)
class SuiteFile:
    """A suite found by name: its file, and where it comes from (:data:`SHIPPED` or the user's folder)."""

    name: str
    path: Path
    origin: str
    shadows_shipped: bool = False  # a user's suite named like a shipped one, which it hides


def user_suite_dirs() -> list[Path]:
    """The folders of ``$TYPOBENCH_SUITES_DIR`` (``os.pathsep``-separated), in search order."""
    folders = [Path(part) for part in os.environ.get(SUITES_ENV, "").split(os.pathsep) if part]
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"${SUITES_ENV} names '{folder}', which is not a folder: fix or unset ${SUITES_ENV}")
    return folders


def _suite_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml"))


def find_suites() -> dict[str, SuiteFile]:
    """Every suite by name, sorted; the user's folders are searched first, so their suites win."""
    shipped_folder = shipped_suites_dir()
    shipped = {path.stem for path in _suite_files(shipped_folder)}
    found: dict[str, SuiteFile] = {}
    for folder in [*user_suite_dirs(), shipped_folder]:
        origin = SHIPPED if folder == shipped_folder else str(folder)
        for path in _suite_files(folder):
            if path.stem not in found:
                shadows = origin != SHIPPED and path.stem in shipped
                found[path.stem] = SuiteFile(path.stem, path, origin, shadows)
    return dict(sorted(found.items()))


def list_suites() -> list[str]:
    return list(find_suites())


def resolve_suite_path(name_or_path: str) -> Path:
    """A suite file given by path (``*.toml`` or an existing file), else by name (see :func:`find_suites`)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UsageError(f"suite file '{name_or_path}' not found: pass an existing .toml file or a name "
                             "from `typobench list suites`")
        return candidate
    suites = find_suites()
    if name_or_path not in suites:
        raise unknown_name_error("suite", name_or_path, list(suites), "typobench list suites")
    return suites[name_or_path].path


def published_suite_path(name: str) -> Path:
    """The suite a leaderboard board publishes: the shipped one, so that a user's suite of the same name
    never changes a board's protocol; a user's suite only for boards of one's own (``--root``)."""
    shipped = shipped_suites_dir() / f"{name}.toml"
    if shipped.is_file():
        return shipped
    return resolve_suite_path(name)
