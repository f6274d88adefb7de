"""The layout keeps its promises: layers import only downwards, no import cycle (not even inside a
function), every module imports in a fresh interpreter, modules and functions stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "typobench"
# Lowest first. A module may import its own layer and the ones before it, never a later one.
LAYERS = [
    ("core",),
    ("typographic", "data", "models", "heads", "shipped", "adversarial"),
    ("stages", "defenses"),
    ("suites",),
    ("harness",),
    ("experiments", "neurons", "leaderboard", "toyclip"),
    ("api", "commands", "cli", "__main__"),
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """typobench modules that ``name`` imports anywhere in its file (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{package}.{base}".rstrip(".")
            # `from pkg import module` imports the module; `from module import name` the module itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else "__init__"
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    return -1


# The same rule inside typobench.neurons, by subpackage (or top-level module), lowest first.
NEURONS_LAYERS = [
    ("blame",),
    ("proof", "probes"),
    ("cards",),
    ("featurevis",),
    ("heads", "microscope"),
    ("report",),
    ("atlas",),
    ("analysis", "after_run", "microscope_run", "heads_run"),
]


def _neurons_layer(name: str) -> int:
    parts = name.split(".")
    for index, members in enumerate(NEURONS_LAYERS):
        if len(parts) > 2 and parts[2] in members:
            return index
    return -1


NEURONS_MODULES = [name for name in MODULES if name.startswith("typobench.neurons.")]


def test_every_neurons_module_belongs_to_a_neurons_layer():
    assert NEURONS_MODULES and [name for name in NEURONS_MODULES if _neurons_layer(name) < 0] == []


def test_neurons_layers_import_only_downwards():
    edges = [(name, target) for name in NEURONS_MODULES for target in GRAPH[name] if target.startswith("typobench.neurons.")]
    assert len(edges) > 20  # the checker sees the real imports (blame -> replay, analysis -> everything, ...)
    assert ("typobench.neurons.analysis", "typobench.neurons.blame.replay") in edges
    upward = [f"{name} -> {target}" for name, target in edges if _neurons_layer(target) > _neurons_layer(name)]
    assert upward == []


def test_every_module_belongs_to_a_layer():
    assert [name for name in MODULES if name != "typobench" and _layer(name) < 0] == []


def test_layers_import_only_downwards():
    upward = [f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
              if name != "typobench" and _layer(target) > _layer(name)]
    assert upward == []


def test_no_import_cycle():
    try:
        order = list(TopologicalSorter(GRAPH).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) == set(MODULES)


def test_every_module_imports_in_a_fresh_interpreter_in_dependency_order():
    # typobench.__main__ is the `python -m typobench` script: importing it runs the command line.
    order = [name for name in TopologicalSorter(GRAPH).static_order() if name != "typobench.__main__"]
    script = "import importlib\nfor name in %r:\n    importlib.import_module(name)\n" % order
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_modules_are_small():
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_functions_are_short():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The checker itself: an import hidden in a function body, or relative, is an edge like any other."""
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from typobench.harness import session\n\n\ndef g():\n    from ..suites import edit\n")
    assert _imports("typobench.core.fake", source) == {"typobench.harness.session", "typobench.suites.edit"}


# What a kind does differently is a method or a declared capability of its class, not a string switch elsewhere.
# Modules allowed to compare kind strings, with how many comparisons (all paid down: a registry module alone).
KIND_SWITCHES_LEFT: dict[str, int] = {}


def _kind_switches(path: Path) -> int:
    """Comparisons of a ``kind`` (or ``head``) value with string constants in a module."""
    def names_a_kind(node: ast.AST) -> bool:
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        return name in ("kind", "head")

    def is_strings(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str)
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(is_strings(e) for e in node.elts)

    count = 0
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(names_a_kind(s) for s in sides) and any(is_strings(s) for s in sides):
                count += 1
    return count


def test_no_new_string_switch_on_kinds_outside_registries():
    found = {name: n for name, path in MODULES.items()
             if not name.rsplit(".", 1)[-1].endswith(("registry", "kinds", "_schema")) and (n := _kind_switches(path))}
    grown = {name: n for name, n in found.items() if n > KIND_SWITCHES_LEFT.get(name, 0)}
    assert grown == {}, "declare the behaviour on the kind's class (a method or capability) instead"


# -- options declared once (typobench.core.options) ---------------------------------------------------------

COMMANDS = {name: path for name, path in MODULES.items() if name.startswith("typobench.commands.")}


def _declared_flags(command: str) -> dict[str, str]:
    """The flags of the options every command shares (RunConfig's), and in ``neurons`` NeuronsConfig's too
    (other commands may have a --stage or --top-k of their own meaning)."""
    from typobench.core.options import declared
    from typobench.harness.config import RunConfig
    from typobench.suites.neurons_option import NeuronsConfig

    configs = (RunConfig, NeuronsConfig) if command.endswith("neurons_cmd") else (RunConfig,)
    return {item.flag: f"{config.__name__}.{item.name}" for config in configs for item in declared(config)}


def _calls(path: Path, function: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == function or getattr(node.func, "id", None) == function)]


# The flags a command still writes by hand (``add_argument``), each with why. Every other flag comes from a
# declared option (``typobench.core.options``): positional arguments (FILE, BOARD, RESULTS_DIR, TOPIC) and the
# subcommand wiring are argparse's own.
HAND_FLAGS = {
    # read by list_cmd's own printer (print_models): no library keyword, default or check to declare it beside
    "typobench.commands.list_cmd": {"--name"},
}


def test_no_command_writes_a_flag_by_hand_beyond_the_listed_ones():
    """A command's flag comes from its declaration (``add_arguments``), never from a second ``add_argument`` that
    could drift from it (another default, another help, no check). A new hand-written flag fails here: declare it
    (``option(...)`` in a dataclass beside the code that reads it), or list it in HAND_FLAGS with the reason; a
    flag of RunConfig or NeuronsConfig is never written by hand."""
    hand: dict[str, set[str]] = {}
    again = []
    for name, path in COMMANDS.items():
        declared = _declared_flags(name)
        for call in _calls(path, "add_argument"):
            flags = [a.value for a in call.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
            if flags:
                hand.setdefault(name, set()).update(flags)
            again += [f"{name}: {flag} (declared as {declared[flag]})" for flag in flags if flag in declared]
    assert again == []
    assert hand == HAND_FLAGS  # (both ways: a flag since declared leaves the list too, so it stays true)


def test_commands_build_declared_configs_from_the_parsed_flags_not_by_hand():
    by_hand = [f"{name}:{call.lineno}" for name, path in COMMANDS.items() for config in ("RunConfig", "NeuronsConfig", "StroopConfig")
               for call in _calls(path, config) if call.keywords]
    assert by_hand == []


# The model-organism recipe scripts (``python -m typobench.toyclip.train`` and the others): the same rule, each
# script's options declared in a dataclass beside the code that reads it (or RunConfig's, passed on to its runs).
TOYCLIP_SCRIPTS = {name: path for name, path in MODULES.items()
                   if name.startswith("typobench.toyclip.") and "build_parser" in path.read_text()}
TOYCLIP_HAND_FLAGS = {
    # fractions such as 2/255: a declared float option parses its flag with float(), which refuses "2/255"
    "typobench.toyclip.robust": {"--eps", "--attack-step-size"},
    # RunConfig's --precision also takes fp16, which this script never offered; add_arguments can change a
    # declared option's default and help for one command, not narrow its choices
    "typobench.toyclip.robust_measure": {"--precision"},
}


def test_no_toyclip_script_writes_a_flag_by_hand_beyond_the_listed_ones():
    assert set(TOYCLIP_SCRIPTS) == {f"typobench.toyclip.{n}" for n in ("train", "measure", "robust", "robust_measure")}
    hand: dict[str, set[str]] = {}
    for name, path in TOYCLIP_SCRIPTS.items():
        for call in _calls(path, "add_argument"):
            flags = [a.value for a in call.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
            if flags:
                hand.setdefault(name, set()).update(flags)
        assert _calls(path, "add_arguments"), f"{name} declares no option"
    assert hand == TOYCLIP_HAND_FLAGS
