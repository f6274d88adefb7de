"""`typobench leaderboard compare`: a board's entries side by side, each column minus a reference, paired by image.
Checked on the shipped entries: the per-sample values of every column kind average to the re-scored column, and a
paired difference of clean accuracy is exactly minus the defenses board's clean-cost column (two paths, one number)."""

from __future__ import annotations

import pandas as pd
import pytest

from typobench.cli import main
from typobench.leaderboard.boards import load_boards
from typobench.leaderboard.clean_cost import fill_clean_costs
from typobench.leaderboard.compare import paired_difference, run_comparison
from typobench.leaderboard.validate import entry_files, validate_paths

from conftest import PROJECT_ROOT

DEFEND = "cifar10-sample.defend.zeroshot"


@pytest.fixture(scope="module")
def shipped():
    boards = load_boards(PROJECT_ROOT / "leaderboards")
    valid, invalid = validate_paths(entry_files(PROJECT_ROOT / "leaderboards" / "entries"), boards)
    assert not invalid
    return valid


def test_per_sample_values_average_to_every_rescored_column(shipped) -> None:
    checked = 0
    for entry in shipped:
        for column in entry.board.columns:
            values = column.measure.per_sample(column, entry.entry["predictions"])
            cell = entry.headline[column.key]
            if values is None or cell.get("value") is None:
                continue
            assert sum(values.values()) / len(values) == pytest.approx(cell["value"], abs=1e-12), (entry.path, column.key)
            if cell.get("n") is not None:
                assert len(values) == cell["n"], (entry.path, column.key)
            checked += 1
    assert checked > 60  # accuracy, targeted-success and lift columns of every suite board


def test_paired_clean_difference_is_minus_the_clean_cost(shipped) -> None:
    entries = [e for e in shipped if e.board.id == DEFEND]
    fill_clean_costs(entries)
    by_label = {e.model["label"]: e for e in entries}
    clean = next(c for c in by_label["toyclip"].board.columns if c.key == "clean_accuracy")
    for label in ("toyclip+blur-1", "toyclip+ablate-blamed-20"):
        cost = by_label[label].headline["clean_cost"]
        diff = paired_difference(clean, by_label[label], by_label["toyclip"])
        assert diff["value"] == pytest.approx(-cost["value"], abs=1e-12)
        assert diff["ci95"] == pytest.approx([-cost["ci95"][1], -cost["ci95"][0]], abs=1e-9)
        assert diff["n"] == cost["n"] == 200


def test_compare_writes_one_row_per_model_and_column(tmp_path) -> None:
    frame, text, files = run_comparison(DEFEND, ["toyclip", "toyclip+blur-1"], root=PROJECT_ROOT / "leaderboards",
                                        out=tmp_path)
    assert [f.name for f in files] == ["compare.md", "compare.csv", "compare.png"] and all(f.stat().st_size for f in files)
    table = pd.read_csv(files[1])
    assert len(table) == 2 * 6  # every column but the clean cost, which is itself a comparison
    blur = table[(table.model == "toyclip+blur-1") & (table.column == "clean_accuracy")].iloc[0]
    assert blur.minus_reference == pytest.approx(0.59 - 0.71) and blur.minus_hi < 0  # blur costs clean accuracy
    assert table[table.model == "toyclip"].minus_reference.isna().all()  # the reference has no difference
    assert "L∞ 2/255" in text and "{eps}" not in text


@pytest.mark.parametrize("argv, named", [
    (["cifar10-sample.defend.zeroshot", "--models", "toyclip", "toyclip+blurr"], "toyclip+blurr"),
    (["cifar10-sample.defnd.zeroshot"], "cifar10-sample.defnd.zeroshot"),
    (["cifar10-sample.defend.zeroshot", "--models", "toyclip"], "at least two"),
])
def test_bad_input_is_one_line_and_exit_2(argv, named, capsys) -> None:
    assert main(["leaderboard", "compare", *argv, "--root", str(PROJECT_ROOT / "leaderboards")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


# README's findings (toyclip vs its FARE and TeCoA fine-tunes), one folder per board, with one column on which the
# README claims a paired difference of known sign for toyclip-fare: (column, sign of the paired interval).
PUBLISHED_FINDINGS = {
    "robust-clip": ("robust_linf_2", +1),
    "tecoa2023": ("apgd_linf_1", +1),
    "fort2021-cifar10": ("final_accuracy", +1),
    "true-label-sticker": ("sticker_lift", -1),
}


@pytest.mark.parametrize("suite", sorted(PUBLISHED_FINDINGS))
def test_the_published_robust_findings_are_what_the_entries_give_today(tmp_path, suite: str) -> None:
    """Each published finding is `leaderboard compare` on the shipped entries: re-derived here, it must equal the
    committed table number for number, and the README's claimed direction must hold with its interval."""
    published = PROJECT_ROOT / "leaderboards" / "findings" / suite
    frame, text, _ = run_comparison(f"cifar10-sample.{suite}.zeroshot", ["toyclip", "toyclip-fare", "toyclip-tecoa"],
                                    "toyclip", root=PROJECT_ROOT / "leaderboards", out=tmp_path)
    assert (published / "compare.md").read_text(encoding="utf-8") == text
    assert (tmp_path / "compare.csv").read_text(encoding="utf-8") == (published / "compare.csv").read_text(encoding="utf-8")
    column, sign = PUBLISHED_FINDINGS[suite]
    fare = frame[(frame.model == "toyclip-fare") & (frame.column == column)].iloc[0]
    assert (fare.minus_lo > 0) if sign > 0 else (fare.minus_hi < 0)
