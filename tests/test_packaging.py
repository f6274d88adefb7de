"""typobench works from a wheel installed anywhere: suites and boards ship in the package (importlib.resources),
a user's suite folders come first, writing commands never write into an installed package, and the wheel holds
every suite, board, entry, table and the toyclip weights (and not the sweep scripts under attacks/)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import time
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.leaderboard.boards import BOARDS_FILE, ENTRIES_DIR, TABLES_DIR, leaderboards_dir, load_boards, writable_folder
from typobench.shipped import in_source_checkout, shipped_leaderboards_dir, shipped_suites_dir
from typobench.suites import find_suites, list_suites, published_suite_path, resolve_suite_path
from typobench.suites.files import SUITES_ENV

from conftest import PROJECT_ROOT

ATTACKS = PROJECT_ROOT / "attacks"
LEADERBOARDS = PROJECT_ROOT / "leaderboards"
PACKAGE = PROJECT_ROOT / "typobench"
WHEEL_BUILD_LIMIT_S = 60  # measured: ~20 s on 2 shared CPU cores


def _files(folder: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.glob(pattern))}


@pytest.fixture(autouse=True)
def _no_user_folders(monkeypatch):
    monkeypatch.delenv(SUITES_ENV, raising=False)
    monkeypatch.delenv("TYPOBENCH_LEADERBOARDS_DIR", raising=False)


# -- the shipped copies are the checkout's files, found through importlib.resources ----------------------


def test_shipped_folders_are_the_checkouts_files_through_importlib_resources():
    resources = files("typobench.shipped")
    assert shipped_suites_dir() == Path(str(resources / "suites")).resolve() == ATTACKS.resolve()
    assert shipped_leaderboards_dir() == Path(str(resources / "leaderboards")).resolve() == LEADERBOARDS.resolve()
    attacks = _files(ATTACKS, "*.toml")
    assert len(attacks) >= 9 and _files(shipped_suites_dir(), "*.toml") == attacks
    for pattern in (BOARDS_FILE, f"{ENTRIES_DIR}/*/*.json", f"{TABLES_DIR}/*"):
        assert _files(shipped_leaderboards_dir(), pattern) == _files(LEADERBOARDS, pattern) != {}
    assert {name: found.origin for name, found in find_suites().items()} == {Path(n).stem: "shipped" for n in attacks}
    assert leaderboards_dir() == shipped_leaderboards_dir()


def _string_constants(tree: ast.AST) -> set[str]:
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_module_finds_suites_or_boards_through_file_parents():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses_file = any(isinstance(node, ast.Name) and node.id == "__file__" for node in ast.walk(tree))
        if path.parent.name in ("suites", "leaderboard"):
            assert not uses_file, f"{path} locates files through __file__: use typobench.shipped"
        elif uses_file:
            named = _string_constants(tree) & {"attacks", "leaderboards"}
            assert not named, f"{path} derives {named} from __file__: use typobench.shipped"


# -- a user's own suite folders ---------------------------------------------------------------------------


def _user_folders(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    suite = (ATTACKS / "random-wrong-label.toml").read_text(encoding="utf-8")
    for path in (first / "default.toml", first / "mine.toml", second / "mine.toml", second / "other.toml"):
        path.write_text(suite)  # second/mine.toml is hidden by first/mine.toml
    monkeypatch.setenv(SUITES_ENV, f"{first}{os.pathsep}{second}")
    return first, second


def test_user_suite_folders_come_before_the_shipped_suites(tmp_path, monkeypatch):
    first, second = _user_folders(tmp_path, monkeypatch)
    suites = find_suites()
    assert resolve_suite_path("default") == first / "default.toml" and suites["default"].shadows_shipped
    assert resolve_suite_path("mine") == first / "mine.toml" and not suites["mine"].shadows_shipped
    assert suites["other"].origin == str(second) and suites["control-word"].origin == "shipped"
    assert set(list_suites()) == {p.stem for p in ATTACKS.glob("*.toml")} | {"mine", "other"}
    # A board's protocol is the shipped suite, whatever a user's folder holds under its name.
    assert published_suite_path("default") == shipped_suites_dir() / "default.toml"


def test_list_suites_shows_where_each_suite_comes_from(tmp_path, monkeypatch, capsys):
    first, second = _user_folders(tmp_path, monkeypatch)
    (second / "broken.toml").write_text("x = [")
    assert main(["list", "suites"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert f"{first} (shadows the shipped one)" in lines["default"]
    assert str(first) in lines["mine"] and "shadows" not in lines["mine"]
    assert str(second) in lines["other"] and "invalid" in lines["broken"]
    assert all(" shipped " in lines[p.stem] for p in ATTACKS.glob("*.toml") if p.stem != "default")


def test_a_missing_user_suite_folder_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(SUITES_ENV, str(tmp_path / "missing"))
    assert main(["list", "suites"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and SUITES_ENV in err and "missing" in err


# -- writing commands never write into an installed package ----------------------------------------------


@pytest.fixture
def installed_boards(tmp_path, monkeypatch) -> Path:
    """The shipped leaderboards as an installed package holds them: a folder outside any source checkout."""
    shipped = tmp_path / "site-packages" / "typobench" / "shipped" / "leaderboards"
    shipped.mkdir(parents=True)
    shutil.copy(LEADERBOARDS / BOARDS_FILE, shipped / BOARDS_FILE)
    monkeypatch.setattr("typobench.leaderboard.boards.shipped_leaderboards_dir", lambda: shipped)
    return shipped


def test_writing_commands_refuse_the_installed_shipped_copy(tmp_path, installed_boards, capsys):
    assert not in_source_checkout(installed_boards) and in_source_checkout(LEADERBOARDS)
    for argv in (["leaderboard", "build"], ["submit", str(tmp_path / "run")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "read-only" in err and "--out" in err and "--root" in err, err
    assert sorted(p.name for p in installed_boards.iterdir()) == [BOARDS_FILE]
    with pytest.raises(UsageError, match="read-only"):
        writable_folder(load_boards(), ENTRIES_DIR, None, "--out")


def test_writing_commands_write_where_told_with_installed_boards(tmp_path, installed_boards, capsys):
    assert main(["leaderboard", "build", "--out", str(tmp_path / "tables")]) == 0, capsys.readouterr().err
    assert (tmp_path / "tables" / "leaderboards.md").is_file()
    copy = tmp_path / "copy"
    shutil.copytree(installed_boards, copy)
    assert writable_folder(load_boards(copy), ENTRIES_DIR, None, "--out") == copy / ENTRIES_DIR


def test_the_checkouts_leaderboards_stay_writable():
    assert writable_folder(load_boards(), ENTRIES_DIR, None, "--out") == LEADERBOARDS.resolve() / ENTRIES_DIR


# -- the wheel ---------------------------------------------------------------------------------------------


def test_the_wheel_holds_every_suite_board_entry_table_and_the_weights(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.monotonic()
    subprocess.run(["bash", str(PROJECT_ROOT / ".ci" / "build-wheel"), str(tmp_path)], check=True, env=env,
                   capture_output=True, timeout=10 * WHEEL_BUILD_LIMIT_S)
    if time.monotonic() - start > WHEEL_BUILD_LIMIT_S:
        pytest.skip(f"building the wheel took over {WHEEL_BUILD_LIMIT_S} s here (.ci/wheel-check still checks it)")
    (wheel,) = tmp_path.glob("typobench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = "typobench/shipped/"
        expected = {f"{shipped}suites/{p.name}": p for p in ATTACKS.glob("*.toml")}
        expected |= {f"{shipped}leaderboards/{p.relative_to(LEADERBOARDS)}": p
                     for pattern in (BOARDS_FILE, f"{ENTRIES_DIR}/*/*.json", f"{TABLES_DIR}/*")
                     for p in LEADERBOARDS.glob(pattern)}
        expected |= {str(p.relative_to(PROJECT_ROOT)): p for p in PACKAGE.rglob("*.safetensors")}
        # Data set manifests (RobustBench's ImageNet ids and its license) through the datasets/ link.
        expected |= {f"{shipped}datasets/robustbench/{p.name}": p for p in (PROJECT_ROOT / "datasets" / "robustbench").iterdir()}
        assert any("toyclip" in name for name in expected) and len(expected) > 30
        assert set(expected) <= names, sorted(set(expected) - names)
        for name, source in expected.items():  # real copies (links followed), byte for byte
            assert archive.read(name) == source.read_bytes(), name
    assert not [name for name in names if name.startswith(f"{shipped}suites/") and not name.endswith(".toml")]
