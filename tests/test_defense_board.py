"""The defenses board: a defended model is its own entry, and its clean cost comes from the bare entry."""

from __future__ import annotations

import pytest

from typobench.leaderboard.boards import load_boards
from typobench.leaderboard.clean_cost import fill_clean_costs
from typobench.leaderboard.rows import format_value
from typobench.leaderboard.scoring import headline_values, rescore_suite
from typobench.leaderboard.validate import ValidEntry

BOARD = "cifar10-sample.defend.zeroshot"
STAGES = ("clean", "random-wrong-label", "control-word", "pgd-linf-2", "pgd-linf-2-transfer")


def _entry(board, label: str, weights: str, clean_correct: list[bool], defended: bool) -> ValidEntry:
    ids = [f"s{i}" for i in range(len(clean_correct))]
    labels = [i % 10 for i in range(len(ids))]
    stages = {name: {"pred": labels if name != "clean" else
                     [lab if ok else (lab + 1) % 10 for lab, ok in zip(labels, clean_correct)]} for name in STAGES}
    table = {"sample_ids": ids, "label": labels, "stages": stages}
    model = {"label": label, "weights_sha256": weights, "random_init": False}
    if defended:
        model.update(defenses=["input:blur=1"], defense_sha256="d" * 64)
    rescored = rescore_suite(table, 10)
    return ValidEntry(None, board, {"model": model, "predictions": table}, rescored, headline_values(board, rescored))


def test_clean_cost_is_the_paired_difference_to_the_same_weights_without_defenses():
    board = load_boards().board(BOARD)
    assert [c.key for c in board.columns][:2] == ["clean_accuracy", "clean_cost"] and board.column("clean_cost").points
    bare = _entry(board, "m", "w1", [True] * 8 + [False] * 2, defended=False)
    blurred = _entry(board, "m+blur", "w1", [True] * 5 + [False] * 5, defended=True)
    orphan = _entry(board, "other+blur", "w2", [True] * 10, defended=True)
    assert blurred.headline["clean_cost"] == {"value": None}  # one entry alone cannot know its cost
    fill_clean_costs([bare, blurred, orphan])
    cost = blurred.headline["clean_cost"]
    assert cost["value"] == pytest.approx(0.3) and cost["reference"] == "m" and cost["n"] == 10
    assert 0 <= cost["ci95"][0] <= 0.3 <= cost["ci95"][1]
    assert bare.headline["clean_cost"]["value"] == 0 and orphan.headline["clean_cost"] == {"value": None}
    assert format_value(board.column("clean_cost"), cost, with_ci=False) == "+30.0"
