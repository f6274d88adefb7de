"""The defenses boards: version 2 (the APGD-CE/APGD-T/Square cascade) and version 1 (PGD-10) kept checkable;
a defended model is its own entry, its clean cost comes from the bare entry, and its attack record is shown."""

from __future__ import annotations

import hashlib
import json

import pytest

from typobench.core.errors import UsageError
from typobench.leaderboard.attack_record import attack_note, run_attack_record
from typobench.leaderboard.attack_record_checks import check_attack_record
from typobench.leaderboard.boards import (
    column_label,
    load_boards,
    published_suite,
    published_suite_file,
    published_suite_sha256,
)
from typobench.leaderboard.clean_cost import fill_clean_costs
from typobench.leaderboard.entry_fields import EntryError
from typobench.leaderboard.rows import format_value, model_text
from typobench.leaderboard.scoring import headline_values, rescore_suite
from typobench.leaderboard.validate import Validator, ValidEntry, entry_files

from conftest import PROJECT_ROOT
from test_leaderboard import boards_toml, fake_run, submit, validate_cli

BOARD = "cifar10-sample.defend.zeroshot"
BOARD_V1 = "cifar10-sample.defend-v1.zeroshot"
STAGES = ("clean", "random-wrong-label", "control-word", "adaptive-linf-2", "transfer-linf-2")
STAGES_V1 = ("clean", "random-wrong-label", "control-word", "pgd-linf-2", "pgd-linf-2-transfer")
# sha256 of the version-1 defend suite every version-1 entry was scored with: the kept file must not change
SHA256_V1 = "5bb3c781a075bfa4d2f89e97fd8b685a36191e9afddea6a80428aa834eff2e93"
ENTRIES = PROJECT_ROOT / "leaderboards" / "entries"


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


def test_the_defend_board_is_version_2_with_the_cascade_columns():
    board = load_boards().board(BOARD)
    suite = published_suite(board)
    assert board.suite_file is None and published_suite_file(board).name == "defend.toml"
    assert suite.protocol_version == 2 and tuple(s.name for s in suite.stages) == STAGES
    adaptive, transfer = board.column("adaptive_accuracy"), board.column("transfer_accuracy")
    assert (adaptive.stage, transfer.stage) == ("adaptive-linf-2", "transfer-linf-2")
    assert column_label(board, adaptive) == "AutoAttack-style adaptive (APGD-CE+APGD-T+Square, L∞ 2/255)"
    cascade = next(s for s in suite.stages if s.name == "adaptive-linf-2").describe()
    assert cascade["kind"] == "worst-case" and [a["name"] for a in cascade["attacks"]] == ["apgd-ce", "apgd-t", "square"]
    assert {c.stage for c in board.columns if c.stage} <= set(STAGES)


def test_version_1_is_kept_byte_identical_on_its_own_board():
    boards = load_boards()
    board = boards.board(BOARD_V1)
    path = published_suite_file(board)
    assert board.suite == "defend" and board.suite_file == "defend-v1" and path.name == "defend-v1.toml"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256_V1 == published_suite_sha256(board)
    assert "version 1" in board.title and "superseded" in board.title
    assert published_suite(board).protocol_version == 1
    assert tuple(s.name for s in published_suite(board).stages) == STAGES_V1
    assert (board.column("pgd_adaptive").stage, board.column("pgd_transfer").stage) == STAGES_V1[3:]
    # a run of either file finds its own board; an unknown hash the current one (whose check then says why)
    assert boards.find("cifar10-sample", "defend", "zeroshot", SHA256_V1).id == BOARD_V1
    assert boards.find("cifar10-sample", "defend", "zeroshot", published_suite_sha256(boards.board(BOARD))).id == BOARD
    assert boards.find("cifar10-sample", "defend", "zeroshot", "0" * 64).id == BOARD


def test_the_version_1_entries_validate_with_their_numbers_unchanged():
    boards = load_boards()
    validator = Validator(boards)
    files = [p for p in entry_files(ENTRIES) if p.parent.name == BOARD_V1]
    assert {p.stem for p in files} >= {"toyclip", "toyclip_jpeg-75", "toyclip_blur-1", "tiny-rn"}
    checked = {p.stem: validator.validate_file(p) for p in files}
    jpeg = {s["name"]: s["accuracy"] for s in checked["toyclip_jpeg-75"].stages}
    assert jpeg["pgd-linf-2"] == 0.345 and jpeg["pgd-linf-2-transfer"] == 0.385  # as recorded under version 1
    assert all(e.entry["suite"] == {"name": "defend", "sha256": SHA256_V1, "protocol_version": 1}
               for e in checked.values())
    # on the version-2 board the same entry is refused, and the message names the board it belongs to
    moved = {**checked["toyclip"].entry, "board": BOARD}
    with pytest.raises(EntryError, match=f"attacks/defend-v1.toml, the suite of board {BOARD_V1}: submit it there"):
        validator.validate(moved)


def test_two_boards_of_one_suite_need_distinct_files_and_the_file_must_be_the_suite(tmp_path):
    text = boards_toml()
    first = text.index("[[board]]")
    board = text[first:text.index("[[board]]", first + 1)]
    (tmp_path / "boards.toml").write_text(text + board.replace('id = "synthetic.', 'id = "other.'))
    with pytest.raises(UsageError, match="two boards for .* give a kept version of a suite its own suite_file"):
        load_boards(tmp_path)
    kept = board.replace('id = "synthetic.', 'id = "kept.').replace('head = ', 'suite_file = "defend-v1"\nhead = ')
    (tmp_path / "boards.toml").write_text(text + kept)
    with pytest.raises(UsageError, match="defend-v1.toml is suite 'defend', not 'random-wrong-label'"):
        published_suite(load_boards(tmp_path).board("kept.random-wrong-label.zeroshot"))


def _attacked_run(out_dir, flags: list[str]):
    """``fake_run`` as a run that attacked through a JPEG defense with a differentiable approximation records it."""
    fake_run(out_dir)
    results = json.loads((out_dir / "results.json").read_text())
    results["defenses"] = [{"kind": "input", "spec": "input:jpeg=75", "backward": "jpeg-approx"}]
    results["defense_provenance"] = [{"spec": "input:jpeg=75", "provenance": "not chosen from data", "selections": []}]
    results["attack_checks"] = {"samples": 16, "stages": {}, "flags": flags}
    (out_dir / "results.json").write_text(json.dumps(results))
    return out_dir


def test_an_entry_carries_and_shows_its_backward_pass_and_attack_flags(tmp_path, capsys):
    root = tmp_path / "leaderboards"
    root.mkdir()
    (root / "boards.toml").write_text(boards_toml())
    path = submit(_attacked_run(tmp_path / "flagged", ["adaptive-linf-2: not_converged"]), root,
                  model_name="fake+jpeg")
    entry = json.loads(path.read_text())
    assert entry["attack"] == {"checked_samples": 16, "flags": ["adaptive-linf-2: not_converged"],
                               "backward": ["input:jpeg=75: jpeg-approx"]}
    text = model_text(entry["model"], entry)
    assert "backward input:jpeg=75: jpeg-approx" in text and "unreliable: attack flags adaptive-linf-2: not_converged" in text
    clean = run_attack_record({"attack_checks": {"samples": 64, "flags": []}})
    assert attack_note({"attack": clean}) == "no attack flags on 64 re-attacked samples"
    assert run_attack_record({"stages": []}) is None and attack_note({}) == ""
    entry["attack"]["flags"] = "none"  # stated in the wrong form: one line naming the field
    path.write_text(json.dumps(entry))
    code, _, err = validate_cli(capsys, root, path)
    assert code == 1 and "attack.flags" in err and "list of strings" in err
    with pytest.raises(EntryError, match="attack.checked_samples"):
        check_attack_record({"checked_samples": -1, "flags": [], "backward": []})
