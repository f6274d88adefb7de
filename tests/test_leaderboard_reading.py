"""The reading columns of the defenses: SCAM's two-way rate, OCR legibility and the reading cost, carried by an
entry as per-stage columns (``leaderboard.stage_columns``) and re-scored by the run's own summariser."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from typobench.cli import main
from typobench.harness.results import read_predictions, summarise_stages
from typobench.leaderboard import Validator, entry_from_run, entry_path, load_boards, write_entry
from typobench.leaderboard.boards import label_hash
from typobench.leaderboard.clean_cost import fill_clean_costs
from typobench.leaderboard.entry import suite_predictions_table
from typobench.leaderboard.scoring import predictions_frame

from conftest import PROJECT_ROOT

NEEDS_OCR = importlib.util.find_spec("rapidocr_onnxruntime") is None and os.environ.get("CI") != "true"
ocr = pytest.mark.skipif(NEEDS_OCR, reason="the ocr extra (rapidocr-onnxruntime) is not installed")
BOARD = "cifar10-sample.defend-reading.zeroshot"
N = 12


def _run_frame(margins: list[float | None], legible: list[bool | None], preds: list[int]) -> pd.DataFrame:
    """One text stage of a run's predictions.csv with SCAM margins and OCR verdicts (None: not scored/read)."""
    n = len(margins)
    return pd.DataFrame({
        "stage": "random-wrong-label", "sample_id": [f"s{i}" for i in range(n)], "label": [i % 3 for i in range(n)],
        "pred": preds, "target": [(i + 1) % 3 for i in range(n)],
        "two_way_margin": [np.nan if m is None else m for m in margins],
        "ocr_legible": ["" if r is None else str(r) for r in legible],
    })


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from([-2.0, -0.5, 0.0, 0.25, 3.0])),
                          st.one_of(st.none(), st.booleans()), st.integers(0, 2)), min_size=1, max_size=25))
def test_an_entry_table_re_scores_to_the_runs_two_way_and_legibility(rows):
    """Whatever the margins (ties included) and OCR verdicts, the entry's compact columns give the run's numbers."""
    margins, legible, preds = map(list, zip(*rows))
    run = _run_frame(margins, legible, preds)
    table = suite_predictions_table(run, ["random-wrong-label"])
    again = predictions_frame(table)
    info = [{"name": "random-wrong-label"}]
    original, rescored = summarise_stages(run, info, ["a", "b", "c"])[0], summarise_stages(again, info, ["a", "b", "c"])[0]
    assert ("two_way" in original) == ("two_way" in rescored) == any(m is not None for m in margins)
    if "two_way" in original:
        assert rescored["two_way"]["label_over_word"] == original["two_way"]["label_over_word"]
    assert rescored.get("legibility") == original.get("legibility")
    assert ("legibility" in original) == any(r is not None for r in legible)


def _board_root(tmp_path: Path, run: Path) -> Path:
    """A leaderboards folder holding only the shipped defend-reading board, pinned to ``run``'s samples."""
    boards = (PROJECT_ROOT / "leaderboards" / "boards.toml").read_text()
    start = boards.index(f'id = "{BOARD}"')
    head, block = boards[:boards.rindex("[[board]]", 0, start)], boards[boards.rindex("[[board]]", 0, start):]
    block = block[:block.index("[[board]]", 10)]
    head = head[:head.index("[[headline]]")]
    clean = read_predictions(run).query("stage == 'clean'")
    results = json.loads((run / "results.json").read_text())
    block = block.replace("n = 200", f"n = {N}")
    block = block.replace("758eee14b485278d2f7bc0aaf0d7408e8302d96298c6e7086a9d83d77012398d", results["dataset"]["sample_hash"])
    block = block.replace("58ca4bf8e75b0e74c7581aeaef70ba1fa812091a799de8304f66c9b3c1c753af",
                          label_hash(clean["sample_id"].astype(str).tolist(), clean["label"].astype(int).tolist()))
    root = tmp_path / "leaderboards"
    root.mkdir(exist_ok=True)
    (root / "boards.toml").write_text(head.replace('headline_sort = "typographic_accuracy"', "") + block)
    return root


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert main(["run", "--model", "tiny-vit", "--dataset", "cifar10-sample", "--suite", "defend-reading",
                 "--limit", str(N), "--batch-size", str(N), "--quiet", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """tiny-vit through defend-reading with the OCR: bare, with a prompt defense; and bare without the OCR."""
    tmp = tmp_path_factory.mktemp("reading")
    bare = _run(tmp, "bare", "--legibility")
    defended = _run(tmp, "defended", "--legibility", "--defense", "input:blur=2")
    unread = _run(tmp, "unread")
    return bare, defended, unread


@ocr
def test_defend_reading_entries_carry_two_way_legibility_and_reading_cost(tmp_path, runs):
    bare, defended, _ = runs
    root = _board_root(tmp_path, bare)
    boards = load_boards(root)
    valid = []
    for run, label in ((bare, None), (defended, "tiny-vit+blur-2")):
        board, entry = entry_from_run(run, boards, submitter="t", date="2025-02-03T00:00:00+00:00",
                                      **({"model_name": label} if label else {}))
        path = entry_path(root / "entries", board.id, entry["model"]["label"])
        valid.append(Validator(boards).validate(entry, path=path))
        write_entry(path, entry)
        results = json.loads((run / "results.json").read_text())
        stated = {s["name"]: s for s in entry["metrics"]["stages"]}["random-wrong-label"]
        stage = {s["name"]: s for s in results["stages"]}["random-wrong-label"]
        assert stated["label_over_word"] == stage["two_way"]["label_over_word"]
        assert stated["legible"] == stage["legibility"]["legible"]
        assert stated["accuracy_legible"] == stage["legibility"]["accuracy_legible"]
        for column in board.columns:  # every per-sample column averages to its cell
            values = column.measure.per_sample(column, entry["predictions"])
            if values:
                assert np.mean(list(values.values())) == pytest.approx(entry["metrics"]["headline"][column.key]["value"])
    fill_clean_costs(valid)
    table = {v.model["label"]: v for v in valid}
    words = {label: {s["name"]: s for s in v.stages}["words-alone"]["accuracy"] for label, v in table.items()}
    cost = table["tiny-vit+blur-2"].headline["reading_cost"]
    assert cost["value"] == pytest.approx(words["tiny-vit"] - words["tiny-vit+blur-2"])
    assert table["tiny-vit"].headline["reading_cost"]["value"] == 0.0


@ocr
def test_an_entry_without_the_ocr_is_refused_by_a_board_that_reads_legibility(tmp_path, runs, capsys):
    _, _, unread = runs
    root = _board_root(tmp_path, unread)
    assert main(["submit", str(unread), "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "predictions.stages[random-wrong-label].legible" in err and "--legibility" in err


@ocr
def test_a_flipped_two_way_outcome_is_caught_by_re_scoring(tmp_path, runs):
    bare = runs[0]
    root = _board_root(tmp_path, bare)
    boards = load_boards(root)
    _, entry = entry_from_run(bare, boards, submitter="t", date="2025-02-03T00:00:00+00:00")
    wins = entry["predictions"]["stages"]["random-wrong-label"]["label_wins"]
    i = next(i for i, w in enumerate(wins) if w >= 0)
    wins[i] = 1 - wins[i]
    with pytest.raises(Exception, match=r"metrics\.stages\[random-wrong-label\]\.label_over_word"):
        Validator(boards).validate(entry)
