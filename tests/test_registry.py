"""One registry pattern (``typobench.core.registry.Registry``) for every kind: each registry in the package is one,
an unknown name is one line with the close matches, a name is registered once, a kind declares what it must."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from typobench.core.errors import UsageError
from typobench.core.registry import Registry

PACKAGE = Path(__file__).resolve().parents[1] / "typobench"

# module -> the registries it holds
REGISTRIES = {
    "typobench.models.builtin": ("BUILTIN_MODELS",),
    "typobench.data.registry": ("DATASETS",),
    "typobench.heads.registry": ("HEADS",),
    "typobench.defenses.registry": ("DEFENSES",),
    "typobench.suites.kinds": ("STAGE_SCHEMAS",),
    "typobench.suites.worst_case_schema": ("ATTACK_KINDS",),
    "typobench.typographic.placement": ("PLACEMENTS",),
    "typobench.typographic.fonts": ("FONTS",),
    "typobench.neurons.featurevis.param": ("IMAGES",),
    "typobench.neurons.proof.scoring": ("TAILS",),
    "typobench.leaderboard.board_kinds": ("BOARD_KINDS",),
    "typobench.leaderboard.column_kinds": ("COLUMN_KINDS",),
}
# A module-level name that reads like a registry must be one (not a dict keyed by kind name).
REGISTRY_LIKE = re.compile(r"^_?[A-Z_]*(KINDS|SCHEMAS|REGISTRY|BUILTINS|PLACEMENTS|FONTS|DEFENSES|DATASETS|HEADS|MODELS)$")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_assignments(path: Path) -> list[tuple[str, ast.expr]]:
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and node.value is not None:
            found += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            found.append((node.target.id, node.value))
    return found


def _makes_a_registry(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", None)) == "Registry"


def test_every_registry_in_the_package_is_a_registry_and_listed_here():
    made = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, value in _module_level_assignments(path):
            if _makes_a_registry(value):
                made.setdefault(_module_name(path), []).append(name)
    assert {module: tuple(names) for module, names in made.items()} == REGISTRIES
    for module, names in REGISTRIES.items():
        for name in names:
            registry = getattr(importlib.import_module(module), name)
            assert isinstance(registry, Registry) and len(registry) >= 2, f"{module}.{name}"


def _is_a_dict(value: ast.expr) -> bool:
    return isinstance(value, (ast.Dict, ast.DictComp)) or (isinstance(value, ast.Call)
                                                           and getattr(value.func, "id", None) == "dict")


def test_no_registry_in_another_style():
    """A table of kinds by name is a Registry (``register``, ``names``, ``get`` with close matches), never a dict
    (tuples of names, the choices of an option, are no registry)."""
    other = [f"{_module_name(path)}.{name}" for path in sorted(PACKAGE.rglob("*.py"))
             for name, value in _module_level_assignments(path) if REGISTRY_LIKE.match(name) and _is_a_dict(value)]
    assert other == []


def _one_line(error: pytest.ExceptionInfo[UsageError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_an_unknown_data_set_suggests_the_close_one():
    from typobench.data import dataset_entry

    with pytest.raises(UsageError) as error:
        dataset_entry("cifar10-sampel")
    message = _one_line(error)
    assert message.startswith("unknown data set 'cifar10-sampel': did you mean cifar10-sample, ")
    assert message.endswith("? see `typobench list datasets`")


def test_an_unknown_model_suggests_the_close_one():
    from typobench.models import load_model
    from typobench.models.builtin import BUILTIN_MODELS, get_builtin_model

    with pytest.raises(UsageError) as error:
        load_model("toyclp")  # refused before anything loads
    assert "unknown model 'toyclp': did you mean toyclip" in _one_line(error)
    with pytest.raises(UsageError) as error:
        BUILTIN_MODELS.get("tiny-vt")
    assert "unknown built-in model 'tiny-vt': did you mean tiny-vit" in _one_line(error)
    assert get_builtin_model("ViT-B-32") is None  # an open_clip name is no built-in, and no error


def test_an_unknown_head_suggests_the_close_one():
    from typobench.heads import HEADS

    with pytest.raises(UsageError) as error:
        HEADS.get("zeroshoot")
    assert _one_line(error) == "unknown head kind 'zeroshoot': did you mean zeroshot? known: zeroshot, linear-probe"


def test_an_unknown_defense_suggests_the_close_one():
    from typobench.defenses import create_defense

    with pytest.raises(UsageError) as error:
        create_defense("inptu:blur=1")
    assert _one_line(error) == ("--defense 'inptu:blur=1': field 'kind': unknown defense kind 'inptu': did you mean "
                                "input? see `typobench list defenses`")


def test_an_unknown_stage_or_attack_kind_suggests_the_close_one():
    from typobench.suites import parse_suite

    suite = b'name = "t"\n[[stage]]\nname = "clean"\nkind = "clean"\n[[stage]]\nname = "w"\nkind = "blnk"\n'
    with pytest.raises(UsageError) as error:
        parse_suite(suite, "suite t")
    assert "stage[1].kind: unknown stage kind 'blnk': did you mean blank?" in _one_line(error)
    suite = suite.replace(b'kind = "blnk"', b'kind = "worst-case"\n[[stage.attack]]\nkind = "sqare"')
    with pytest.raises(UsageError) as error:
        parse_suite(suite, "suite t")
    assert "stage[1].attack[0].kind: unknown attack kind 'sqare': did you mean square?" in _one_line(error)


def test_an_unknown_placement_or_font_suggests_the_close_one():
    from typobench.typographic import create_placement, resolve_font

    with pytest.raises(UsageError) as error:
        create_placement("randm")
    assert "unknown placement 'randm': did you mean random" in _one_line(error)
    with pytest.raises(UsageError) as error:
        resolve_font("serf")
    assert "unknown font 'serf': did you mean serif" in _one_line(error)


@pytest.mark.parametrize("module, name", [(m, n) for m, names in REGISTRIES.items() for n in names])
def test_a_name_is_registered_once(module, name):
    registry = getattr(importlib.import_module(module), name)
    first, item = next(registry.items())
    before = registry.names()
    with pytest.raises(ValueError, match=f"'{re.escape(first)}' is already registered"):
        registry.add(first, item)
    assert registry.names() == before


def test_the_public_register_functions_refuse_a_name_twice():
    from typobench.data import dataset_entry, register_dataset
    from typobench.models import register_builtin
    from typobench.models.builtin import get_builtin_model

    with pytest.raises(ValueError, match="already registered"):
        register_dataset(dataset_entry("cifar10-sample"))
    with pytest.raises(ValueError, match="already registered"):
        register_builtin(get_builtin_model("toyclip"))


def test_a_kind_that_does_not_declare_what_its_base_class_asks_for_is_refused():
    from typobench.defenses import DEFENSES, Defense
    from typobench.heads import HEADS, Head

    class Unsummarised(Defense):
        kind, fields = "unsummarised", ()

        @classmethod
        def from_fields(cls, spec, fields):
            return cls(spec)

        def parameters(self):
            return {}

    with pytest.raises(TypeError, match="defense kind 'unsummarised' does not set summary"):
        DEFENSES.add(Unsummarised.kind, Unsummarised)
    assert "unsummarised" not in DEFENSES

    class Unsaid(Head):
        kind, prompts = "unsaid", False

    with pytest.raises(TypeError, match="head kind 'unsaid' does not set leader_builds_first, called"):
        HEADS.add(Unsaid.kind, Unsaid)
    for registry, base in ((DEFENSES, Defense), (HEADS, Head)):
        assert all(hasattr(kind, attribute) for kind in registry.values() for attribute in base.DECLARED)


def test_every_defense_kind_carries_its_own_summary():
    from typobench.defenses import DEFENSES, list_defenses

    listed = list_defenses()
    assert [d["kind"] for d in listed] == DEFENSES.names() == ["ablate", "prompt", "interpolate", "input", "project"]
    assert all(d["summary"] == DEFENSES.get(d["kind"]).summary and d["summary"] for d in listed)


def test_a_new_stage_kind_is_one_module_found_by_its_name(tmp_path, monkeypatch) -> None:
    """A ``<kind>_schema.py`` module in typobench.suites (here: in a folder added to the package's path) holding a
    stage class and its SCHEMA is a kind a suite can name, with no line added anywhere else."""
    import importlib.util
    import sys

    import typobench.suites as suites_package
    from typobench.suites import kinds

    (tmp_path / "echo_schema.py").write_text(
        "from typobench.stages.base import Stage\n"
        "from typobench.suites.schema import StageSchema\n\n"
        "class EchoStage(Stage):\n    kind = 'echo'\n\n"
        "def build(table, name, source):\n    SCHEMA.finish(table)\n    return EchoStage(name)\n\n"
        "SCHEMA = StageSchema(kind='echo', build=build)\n")
    monkeypatch.setattr(suites_package, "__path__", [*suites_package.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "typobench.suites.echo_schema", raising=False)
    spec = importlib.util.spec_from_file_location("typobench.suites.kinds", kinds.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)  # a fresh copy of the registry module: the package's own stays as it was
    sys.modules.pop("typobench.suites.echo_schema", None)
    assert "echo" in fresh.STAGE_SCHEMAS.names() and "echo" not in kinds.STAGE_SCHEMAS.names()


def test_every_schema_module_is_a_registered_stage_kind() -> None:
    import importlib

    from typobench.suites import kinds

    found = {importlib.import_module(f"typobench.suites.{m}").SCHEMA.kind for m in kinds.schema_modules()}
    assert len(found) >= 7 and set(kinds.STAGE_SCHEMAS.names()) == {"clean", "blank"} | found
