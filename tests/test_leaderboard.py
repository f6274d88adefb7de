"""Leaderboards: submit (run -> entry), validate (re-scoring, tampered entries), build (tables, HTML page)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from typobench.cli import main
from typobench.data import sample_hash
from typobench.core.errors import UsageError
from typobench.leaderboard import (
    Validator,
    build,
    entry_from_run,
    entry_path,
    load_boards,
    model_slug,
    parse_entry_text,
    write_entry,
)
from typobench.leaderboard.boards import column_label, eps_text, label_hash, leaderboards_dir
from typobench.leaderboard.entry import dumps_entry
from typobench.leaderboard.rows import board_rows, model_text
from typobench.leaderboard.scoring import column_value, rescore_suite
from typobench.harness.results import summarise_stages, write_results
from typobench.experiments.stroop import write_stroop_outputs
from typobench.typographic.stroop import (
    GOH_PROMPT,
    STROOP_JSON,
    PromptResult,
    StroopResult,
    score_stroop,
    stroop_design,
    stroop_stimuli,
)
from typobench.suites import read_suite

from conftest import PROJECT_ROOT
from helpers import chromium, headless

N = 30
CLASSES = 10
SAMPLE_IDS = [f"test/s{i:03d}.jpg" for i in range(N)]
BOARD = "synthetic.random-wrong-label.zeroshot"
STROOP_BOARD = "stroop.stroop-goh2021.zeroshot"


def _stroop_sample_hash() -> str:
    return sample_hash([f"{s.font}|{s.size}|{s.ink}|{s.word}" for s in stroop_stimuli()])


def _stroop_label_hash() -> str:
    design = stroop_design()
    names = design.classnames
    stimuli = stroop_stimuli(design)
    return label_hash([f"{s.font}|{s.size}|{s.ink}|{s.word}" for s in stimuli], [names.index(s.ink) for s in stimuli],
                      [names.index(s.word_colour) if s.word_colour else -1 for s in stimuli])


def _labels() -> list[int]:
    return [i % CLASSES for i in range(N)]


def boards_toml(**values) -> str:
    """The test boards.toml; defaults: the synthetic data set of fake_run."""
    defaults = dict(board=BOARD, stroop_board=STROOP_BOARD, n=N, classes=CLASSES, hash=sample_hash(SAMPLE_IDS),
                    labels=label_hash(SAMPLE_IDS, _labels()), prompt=GOH_PROMPT, stroop_hash=_stroop_sample_hash(),
                    stroop_labels=_stroop_label_hash())
    return BOARDS_TOML.format(**{**defaults, **values})


BOARDS_TOML = """
protocol_version = 1
headline_sort = "typographic_accuracy"

[[headline]]
key = "typographic_accuracy"
label = "typographic accuracy"
board = "{board}"
column = "typographic_accuracy"

[[headline]]
key = "stroop_word_named"
label = "Stroop word-reading rate"
board = "{stroop_board}"
column = "word_named"

[[board]]
id = "{board}"
title = "Synthetic random wrong label"
suite = "random-wrong-label"
head = "zeroshot"
sort = "typographic_accuracy"
reproduce = "(synthetic)"
[board.dataset]
name = "synthetic"
split = "test"
n = {n}
num_classes = {classes}
seed = 0
sample_hash = "{hash}"
label_hash = "{labels}"
[[board.column]]
key = "clean_accuracy"
label = "clean accuracy"
kind = "accuracy"
stage = "clean"
[[board.column]]
key = "typographic_accuracy"
label = "typographic accuracy"
kind = "accuracy"
stage = "random-wrong-label"
[[board.column]]
key = "written_label_rate"
label = "predicts the written label"
kind = "targeted_success"
stage = "random-wrong-label"
higher_is_better = false
[[board.column]]
key = "lift"
label = "lift"
kind = "lift"
stage = "random-wrong-label"

[[board]]
id = "{stroop_board}"
kind = "stroop"
title = "Stroop"
suite = "stroop-goh2021"
head = "zeroshot"
prompt = "{prompt}"
sort = "word_named"
[board.dataset]
name = "stroop"
split = "goh2021"
n = 64
num_classes = 8
sample_hash = "{stroop_hash}"
label_hash = "{stroop_labels}"
[[board.column]]
key = "word_named"
label = "word-reading rate"
kind = "stroop"
metric = "word_named"
higher_is_better = false
"""


@pytest.fixture
def root(tmp_path) -> Path:
    """A leaderboards folder with a synthetic board (on the published random-wrong-label suite) and Stroop."""
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    (folder / "boards.toml").write_text(boards_toml())
    return folder


def fake_run(out_dir: Path, *, label: str = "fake-model", clean_acc: float = 0.6, attacked_acc: float = 0.3,
             seed: int = 0, limit: int | None = N) -> Path:
    """A finished run folder as `typobench run` writes it (results.json via the real writer and summariser)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % CLASSES
    targets = (labels + 1 + rng.integers(0, CLASSES - 1, N)) % CLASSES

    def preds(accuracy: float, wrong: np.ndarray) -> np.ndarray:
        right = rng.random(N) < accuracy
        return np.where(right, labels, wrong)

    clean = preds(clean_acc, (labels + 3) % CLASSES)
    attacked = preds(attacked_acc, np.where(rng.random(N) < 0.5, targets, (labels + 5) % CLASSES))
    rows = []
    for stage, pred, target in (("clean", clean, np.full(N, -1)), ("random-wrong-label", attacked, targets)):
        for i in range(N):
            rows.append({"stage": stage, "sample_id": SAMPLE_IDS[i], "index": i, "label": int(labels[i]),
                         "pred": int(pred[i]), "top5": "", "p_label": 0.5, "target": int(target[i]),
                         "text": "" if stage == "clean" else "word"})
    predictions = pd.DataFrame(rows)
    suite = read_suite("random-wrong-label")
    stage_info = [s.describe() for s in suite.stages]
    classnames = [f"class{c}" for c in range(CLASSES)]
    results = {
        "created": "2025-01-02T03:04:05+00:00",
        "versions": {"typobench": "0.1.0", "open_clip": "x", "torch": "y", "python": "3", "git_commit": None},
        "config_hash": "ab" * 32, "seed": 0, "config": {"precision": "fp32", "seed": 0},
        "model": {"name": label, "pretrained": None, "label": label, "checkpoint_sha256": None, "random_init": False,
                  "weights_sha256": f"{seed:064x}"},
        "dataset": {"name": "synthetic", "split": "test", "n": N, "num_classes": CLASSES, "limit": limit,
                    "sample_hash": sample_hash(SAMPLE_IDS), "classnames": classnames},
        "head": {"kind": "zeroshot"},
        "suite": suite.describe(),
        "stages": summarise_stages(predictions, stage_info, classnames),
    }
    write_results(out_dir, results, predictions)
    return out_dir


def fake_stroop_run(out_dir: Path, *, label: str = "fake-model", reads: float = 0.7, seed: int = 0) -> Path:
    """A finished `typobench stroop` folder: a classifier that names the word with probability ``reads``."""
    design = stroop_design()
    stimuli = stroop_stimuli(design)
    names = design.classnames
    rng = np.random.default_rng(seed)
    logits = np.zeros((len(stimuli), len(names)), dtype=np.float32)
    for i, s in enumerate(stimuli):
        pick = s.word_colour if (s.word_colour and rng.random() < reads) else s.ink
        logits[i, names.index(pick)] = 5.0
    scored = score_stroop(stimuli, logits, names)
    prompt = PromptResult(GOH_PROMPT, scored["pred"], scored["probs"], scored["outcome"], scored["metrics"])
    result = StroopResult(design, stimuli, (64, 64), [prompt],
                          model={"name": label, "pretrained": None, "label": label, "checkpoint_sha256": None,
                                 "random_init": False, "weights_sha256": f"{seed:064x}"})
    extra = {"created": "2025-01-02T03:04:05+00:00", "versions": {"typobench": "0.1.0"},
             "config_hash": "cd" * 32, "config": {"seed": 0, "precision": "fp32"}}
    # The pictures are not part of an entry; skip drawing them.
    import typobench.experiments.stroop.outputs as stroop_module

    original = stroop_module.stroop_figure_png
    stroop_module.stroop_figure_png = lambda *a, **k: b"png"
    try:
        write_stroop_outputs(result, out_dir, extra)
    finally:
        stroop_module.stroop_figure_png = original
    return out_dir


def submit(run_dir: Path, root: Path, **options) -> Path:
    """The entry of a run, validated and written where `typobench submit` puts it."""
    boards = load_boards(root)
    board, entry = entry_from_run(run_dir, boards, submitter="Test Submitter", date="2025-02-03T00:00:00+00:00",
                                  **options)
    path = entry_path(root / "entries", board.id, entry["model"]["label"])
    Validator(boards).validate(entry, path=path)
    write_entry(path, entry)
    return path


def validate_cli(capsys, root: Path, *files: Path) -> tuple[int, str, str]:
    code = main(["leaderboard", "validate", "--root", str(root), *map(str, files)])
    out, err = capsys.readouterr()
    return code, out, err


def _numbers_are_numbers(value, where="entry"):
    if isinstance(value, dict):
        for key, item in value.items():
            _numbers_are_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _numbers_are_numbers(item, f"{where}[{i}]")
    elif isinstance(value, str):
        assert not re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", value), f"{where} is a number stored as a string"


# -- submit and validate -----------------------------------------------------------------------------


def test_submit_builds_an_entry_that_re_scores_to_its_own_numbers(tmp_path, root):
    path = submit(fake_run(tmp_path / "run"), root)
    assert path == root / "entries" / BOARD / "fake-model.json"
    entry = json.loads(path.read_text())
    assert entry["board"] == BOARD and entry["entry_schema"] == 1 and entry["protocol_version"] == 1
    assert entry["suite"]["sha256"] == read_suite("random-wrong-label").sha256
    assert entry["dataset"]["sample_hash"] == sample_hash(SAMPLE_IDS)
    assert entry["submitted"] == {"by": "Test Submitter", "date": "2025-02-03T00:00:00+00:00"}
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    for stated, run_stage in zip(entry["metrics"]["stages"], results["stages"]):
        assert stated["accuracy"] == run_stage["accuracy"] and stated["ci95"] == run_stage["ci95"]
    headline = entry["metrics"]["headline"]
    assert headline["typographic_accuracy"]["value"] == results["stages"][1]["accuracy"]
    assert headline["lift"]["value"] == pytest.approx(results["stages"][1]["accuracy"] - results["stages"][0]["accuracy"])
    assert headline["written_label_rate"] == results["stages"][1]["targeted_success"]
    for part in ("metrics", "dataset", "run"):
        _numbers_are_numbers(entry[part], part)
    assert isinstance(entry["dataset"]["n"], int) and isinstance(entry["run"]["seed"], int)
    assert isinstance(headline["clean_accuracy"]["value"], float)
    valid = Validator(load_boards(root)).validate_file(path)
    assert valid.headline == entry["metrics"]["headline"]


def test_rescoring_reuses_the_run_summariser():
    run = fake_run(Path(tempfile.mkdtemp()) / "run")
    results = json.loads((run / "results.json").read_text())
    from typobench.leaderboard.entry import suite_predictions_table
    from typobench.harness.results import read_predictions

    table = suite_predictions_table(read_predictions(run), ["clean", "random-wrong-label"])
    rescored = rescore_suite(table, CLASSES)
    for mine, theirs in zip(rescored, results["stages"]):
        assert mine["accuracy"] == theirs["accuracy"] and mine["ci95"] == theirs["ci95"] and mine["n"] == theirs["n"]
        assert mine.get("targeted_success") == theirs.get("targeted_success")
    shutil.rmtree(run.parent)


def test_stroop_run_becomes_an_entry_with_the_word_reading_rate(tmp_path, root):
    run = fake_stroop_run(tmp_path / "stroop", reads=0.7)
    path = submit(run, root)
    assert path == root / "entries" / STROOP_BOARD / "fake-model.json"
    entry = json.loads(path.read_text())
    record = json.loads((run / STROOP_JSON).read_text())
    assert entry["metrics"]["headline"]["word_named"] == record["results"][0]["metrics"]["word_named"]
    assert entry["dataset"]["n"] == 64 and entry["head"]["prompt"] == GOH_PROMPT
    assert 0.3 < entry["metrics"]["headline"]["word_named"]["value"] < 1


def test_cli_submit_validate_build(tmp_path, root, capsys):
    run = fake_run(tmp_path / "run")
    assert main(["submit", str(run), "--root", str(root), "--submitter", "Ada"]) == 0
    out = capsys.readouterr().out
    assert f"entries/{BOARD}/fake-model.json" in out and "typographic accuracy (%)" in out
    # Submitting the same model again needs --overwrite.
    assert main(["submit", str(run), "--root", str(root), "--submitter", "Ada"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["submit", str(run), "--root", str(root), "--submitter", "Ada", "--overwrite"]) == 0
    capsys.readouterr()
    code, out, err = validate_cli(capsys, root)
    assert code == 0 and "1 entries valid" in out and err == ""
    assert main(["leaderboard", "build", "--root", str(root)]) == 0
    capsys.readouterr()
    tables = root / "tables"
    assert {p.name for p in tables.iterdir()} == {"leaderboards.md", "leaderboards.csv", "headline.csv", "index.html"}
    assert main(["leaderboard", "build", "--root", str(root), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    (tables / "leaderboards.md").write_text("stale\n")
    assert main(["leaderboard", "build", "--root", str(root), "--check"]) == 1
    assert "leaderboards.md is out of date" in capsys.readouterr().err


def test_submit_errors_are_one_line(tmp_path, root, capsys):
    assert main(["submit", str(tmp_path / "missing"), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
    (tmp_path / "empty").mkdir()
    assert main(["submit", str(tmp_path / "empty"), "--root", str(root)]) == 2
    assert "no results.json or stroop.json" in capsys.readouterr().err
    run = fake_run(tmp_path / "run")
    assert main(["submit", str(run), "--root", str(root), "--model-name", "../../etc/passwd"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model name '../../etc/passwd' is not allowed" in err
    assert not (tmp_path / "etc").exists()


def test_run_off_protocol_is_refused_by_submit(tmp_path, root, capsys):
    run = fake_run(tmp_path / "run")
    results = json.loads((run / "results.json").read_text())
    results["dataset"]["sample_hash"] = "0" * 64
    (run / "results.json").write_text(json.dumps(results))
    assert main(["submit", str(run), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset.sample_hash" in err and "not the sample of board" in err


# -- tampered entries ----------------------------------------------------------------------------------


def _tamper(path: Path, change) -> Path:
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(json.dumps(entry))
    return path


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(entry):
        target = entry
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


TAMPERED = [
    ("changed accuracy", _set("metrics", "stages", 0, "accuracy", 0.99),
     r"metrics\.stages\[clean\]\.accuracy: is 0\.99 but the submitted predictions give 0\.\d+"),
    ("changed CI", _set("metrics", "stages", 1, "ci95", [0.0, 1.0]),
     r"metrics\.stages\[random-wrong-label\]\.ci95\[0\]: is 0\.0 but the submitted predictions give"),
    ("changed headline only", _set("metrics", "headline", "typographic_accuracy", "value", 0.95),
     r"metrics\.headline\.typographic_accuracy\.value: is 0\.95 but the submitted predictions give"),
    ("changed targeted n", _set("metrics", "stages", 1, "targeted_success", "n", 3),
     r"metrics\.stages\[random-wrong-label\]\.targeted_success\.n: is 3 but the submitted predictions give \d+"),
    ("changed prediction", lambda e: e["predictions"]["stages"]["clean"]["pred"].__setitem__(
        0, (e["predictions"]["label"][0] + 1) % CLASSES if e["predictions"]["stages"]["clean"]["pred"][0]
        == e["predictions"]["label"][0] else e["predictions"]["label"][0]),
     r"metrics\.stages\[clean\]\.accuracy: is .* but the submitted predictions give"),
    ("accuracy as a string", _set("metrics", "stages", 0, "accuracy", "0.5"),
     r"metrics\.stages\[clean\]\.accuracy: must be a number or null, got the string '0\.5'"),
    ("changed suite hash", _set("suite", "sha256", "f" * 64),
     r"suite\.sha256: ffffffffffff\.\.\. is not the sha256 of the published suite attacks/random-wrong-label\.toml"),
    ("other suite", _set("suite", "name", "default"),
     r"suite\.name: is 'default' but board .*'s suite is 'random-wrong-label'"),
    ("path-traversal model name", _set("model", "label", "../../../etc/passwd"),
     r"model\.label: '\.\./\.\./\.\./etc/passwd' is not allowed"),
    ("absolute model name", _set("model", "name", "/etc/passwd"), r"model\.name: '/etc/passwd' is not allowed"),
    ("renamed model", _set("model", "label", "other-model"),
     r"model\.label: the entry of 'other-model' on board .* belongs in entries/.*/other-model\.json, not .*/fake-model\.json"),
    ("other sample", _set("dataset", "sample_hash", "0" * 64),
     r"dataset\.sample_hash: 000000000000\.\.\. is not the sample of board .*'s protocol"),
    ("dropped sample", lambda e: e["predictions"]["sample_ids"].pop(),
     r"predictions\.sample_ids: must list the n = 30 sample ids, got 29"),
    ("changed labels", lambda e: e["predictions"].__setitem__("label", e["predictions"]["stages"]["clean"]["pred"]),
     r"predictions\.label: the true labels hash to [0-9a-f]{12}\.\.\., not to board .*'s protocol"),
    ("renamed sample", lambda e: e["predictions"]["sample_ids"].__setitem__(0, "test/other.jpg"),
     r"dataset\.sample_hash: is .* but the submitted sample ids hash to"),
    ("class out of range", lambda e: e["predictions"]["stages"]["clean"]["pred"].__setitem__(2, 10),
     r"predictions\.stages\[clean\]\.pred\[2\]: must be an integer in \[0, 9\], got the number 10"),
    ("unknown field", _set("code", "import os"), r"code: is not a field of an entry"),
    ("missing field", lambda e: e.pop("predictions"), r"predictions: is missing"),
    ("unknown board", _set("board", "../x"), r"board: unknown board '\.\./x'"),
    ("bool as number", _set("metrics", "stages", 0, "n", True),
     r"metrics\.stages\[clean\]\.n: must be an integer, got a boolean"),
    ("schema", _set("entry_schema", 2), r"entry_schema: is 2 but the schema this typobench reads is 1"),
    ("other seed", _set("run", "seed", 1), r"run\.seed: is 1 but board .*'s protocol is 0"),
    ("empty submitter", _set("submitted", "by", " "), r"submitted\.by: is empty"),
]


@pytest.mark.parametrize("name,change,message", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_entry_is_rejected_with_the_field_named(tmp_path, root, capsys, name, change, message):
    path = _tamper(submit(fake_run(tmp_path / "run"), root), change)
    code, out, err = validate_cli(capsys, root, path)
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith(f"typobench: error: {path}: ")
    assert re.search(message, first), first
    assert err.splitlines()[1] == "0 valid, 1 invalid"


@pytest.mark.parametrize("text,message", [
    ('{"entry_schema": 1, "board": ', r"not valid JSON: Expecting value at line 1 column 30"),
    ("[1, 2]", r"an entry is a JSON object, got a list"),
    ('{"a": NaN}', r"not valid JSON: NaN is not a number"),
    ('{"a": 1, "a": 2}', r"key 'a' appears twice"),
    (b"\xff\xfe{}", r"not UTF-8 text"),
    ("", r"not valid JSON: Expecting value at line 1 column 1"),
])
def test_malformed_json_is_rejected(tmp_path, root, capsys, text, message):
    path = root / "entries" / BOARD / "fake-model.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, _, err = validate_cli(capsys, root, path)
    assert code == 1 and re.search(message, err.splitlines()[0]), err


def test_a_pickle_is_never_loaded(tmp_path, root, capsys):
    """An entry is JSON only: a pickle posing as an entry is malformed JSON, not code to run."""
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = root / "entries" / BOARD / "fake-model.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(Evil()))
    code, _, err = validate_cli(capsys, root, path)
    assert code == 1 and ("not UTF-8 text" in err or "not valid JSON" in err)
    assert not marker.exists()


def test_build_writes_nothing_when_an_entry_is_invalid(tmp_path, root, capsys):
    _tamper(submit(fake_run(tmp_path / "run"), root), _set("metrics", "stages", 0, "accuracy", 0.99))
    assert main(["leaderboard", "build", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "metrics.stages[clean].accuracy" in err and "nothing written" in err
    assert not (root / "tables").exists()


def test_model_slug_and_entry_path_stay_inside():
    assert model_slug("ViT-B-32:openai") == "ViT-B-32_openai"
    assert model_slug("hf-hub:timm/ViT-B-16-SigLIP") == "hf-hub_timm_ViT-B-16-SigLIP"
    for bad in ("../x", "a/../b", "/abs", ".hidden", "a//b", "a\nb", "", "a b"):
        with pytest.raises(UsageError, match="is not allowed"):
            model_slug(bad)
    with pytest.raises(UsageError, match="not a safe name"):
        entry_path("entries", "../boards", "x")


def test_local_checkpoint_path_is_not_recorded(tmp_path, root):
    run = fake_run(tmp_path / "run")
    results = json.loads((run / "results.json").read_text())
    results["model"].update(name="RN50", pretrained="/home/me/ckpt/rn50-finetuned.safetensors", checkpoint_sha256="e" * 64)
    (run / "results.json").write_text(json.dumps(results))
    entry = json.loads(submit(run, root).read_text())
    assert entry["model"]["tag"] == "rn50-finetuned.safetensors"
    assert entry["model"]["label"] == "RN50:rn50-finetuned.safetensors"
    assert "/home/me" not in json.dumps(entry)


# -- boards and tables -----------------------------------------------------------------------------------


def test_board_rows_follow_the_declared_column(tmp_path, root):
    for i, (clean, attacked) in enumerate(((0.9, 0.2), (0.5, 0.5), (0.7, 0.9))):
        submit(fake_run(tmp_path / f"run{i}", label=f"model-{i}", clean_acc=clean, attacked_acc=attacked, seed=i), root)
    outcome = build(root)
    assert not outcome.invalid and len(outcome.entries) == 3
    boards = load_boards(root)
    rows = board_rows(boards.board(BOARD), outcome.entries)
    values = [r.values["typographic_accuracy"]["value"] for r in rows]
    assert values == sorted(values, reverse=True) and [r.rank for r in rows][0] == 1
    markdown = (root / "tables" / "leaderboards.md").read_text()
    assert "| rank | model | clean accuracy (%) | typographic accuracy (%) |" in markdown
    csv = pd.read_csv(root / "tables" / "leaderboards.csv")
    assert pd.api.types.is_float_dtype(csv["value"]) and set(csv["column"]) >= {"clean_accuracy", "lift"}
    headline = pd.read_csv(root / "tables" / "headline.csv")
    assert list(headline["model"]) == [r.entry.model["label"] for r in rows]


def test_column_kinds_and_labels():
    stages = [{"name": "clean", "accuracy": 0.5, "ci95": [0.4, 0.6], "n": 10},
              {"name": "a", "accuracy": 0.25, "ci95": [0.1, 0.4], "n": 10,
               "targeted_success": {"value": 0.5, "ci95": [0.2, 0.8], "n": 8}},
              {"name": "b", "accuracy": 0.25, "ci95": [0.1, 0.4], "n": 10,
               "targeted_success": {"value": None, "ci95": [0.0, 1.0], "n": 0}},
              {"name": "c", "accuracy": 0.25, "ci95": [0.1, 0.4], "n": 10,
               "targeted_success": {"value": 0.25, "ci95": [0.1, 0.5], "n": 8}}]
    from typobench.leaderboard.boards import Column

    assert column_value(Column("k", "k", "lift", stage="a"), stages) == {"value": -0.25, "n": 10}
    assert column_value(Column("k", "k", "mean_targeted_success"), stages) == {"value": 0.375, "stages": 2}
    assert column_value(Column("k", "k", "targeted_success", stage="b"), stages)["value"] is None
    assert eps_text(2 / 255) == "2/255" and eps_text(0.5 / 255) == "0.5/255" and eps_text(0.3) == "0.3"
    boards = load_boards(leaderboards_dir())
    pgd = boards.board("cifar10-sample.default.zeroshot")
    assert column_label(pgd, pgd.column("pgd_accuracy")) == "PGD accuracy (L∞ 2/255)"


def test_bad_boards_file_is_one_line(tmp_path):
    (tmp_path / "boards.toml").write_text(boards_toml().replace('sort = "typographic_accuracy"\nreproduce', 'sort = "nope"\nreproduce'))
    with pytest.raises(UsageError, match=r"sort 'nope' is not one of its columns"):
        load_boards(tmp_path)
    with pytest.raises(UsageError, match="not found"):
        load_boards(tmp_path / "missing")


@pytest.mark.parametrize("old, new, message", [
    ('kind = "stroop"\ntitle', 'kind = "strop"\ntitle', r"board 'stroop\.[^']*': kind: 'strop' is not one of suite, stroop"),
    ('kind = "lift"', 'kind = "lfit"', r"column\[3\]\.kind: 'lfit' is not one of accuracy"),
    ('kind = "lift"\nstage = "random-wrong-label"', 'kind = "lift"', r"column\[3\]\.stage: column 'lift' \(lift\) needs"),
    ('metric = "word_named"', 'metric = "word"', r"column\[0\]\.metric: column 'word_named' needs 'metric' = one of"),
    ('reproduce = "(synthetic)"', 'reproduce = "(synthetic)"\nprompt = "x"', r"unknown field prompt: .*valid fields"),
    ('prompt = ', 'suite_file = "x"\nprompt = ', r"unknown field suite_file"),
    ('n = 64', 'n = "64"', r"dataset\.n: expected an integer, got '64'"),
    ('headline_sort', 'sort_headline', r"unknown field sort_headline: did you mean .*headline_sort\?"),
])
def test_boards_file_errors_name_the_field(tmp_path, old, new, message):
    """Board and column kinds are checked against their registries, and a kind's own fields belong to it."""
    assert old in boards_toml()
    (tmp_path / "boards.toml").write_text(boards_toml().replace(old, new, 1))
    with pytest.raises(UsageError, match=message):
        load_boards(tmp_path)


def test_board_kinds_are_classes_with_their_own_behaviour(root):
    from typobench.leaderboard.board_kinds import BOARD_KINDS, StroopBoard, SuiteBoard

    assert BOARD_KINDS.names() == ["suite", "stroop"]
    boards = load_boards(root)
    suite, stroop = boards.board(BOARD), boards.board(STROOP_BOARD)
    assert suite.kind == SuiteBoard() and stroop.kind == StroopBoard() and suite.kind != stroop.kind
    assert suite.kind.stage_names(suite) == ["clean", "random-wrong-label"] and stroop.kind.stage_names(stroop) == ["stroop"]
    assert boards.made_from(STROOP_JSON) is stroop and suite.kind.pins_seed and not stroop.kind.pins_seed


def test_entry_json_keeps_value_lists_on_one_line():
    text = dumps_entry({"a": {"b": [1, 2, 3], "c": [{"d": None}]}, "e": 0.1})
    assert '"b": [1, 2, 3]' in text and json.loads(text) == {"a": {"b": [1, 2, 3], "c": [{"d": None}]}, "e": 0.1}
    assert parse_entry_text(text.encode())["e"] == 0.1


# -- the seeded boards -----------------------------------------------------------------------------------


def test_seeded_entries_validate_and_published_tables_are_current(capsys):
    root = leaderboards_dir()
    entries = sorted((root / "entries").glob("*/*.json"))
    assert entries, "leaderboards/entries/ holds the seeded entries"
    assert main(["leaderboard", "validate", "--quiet"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["leaderboard", "build", "--check"]) == 0, capsys.readouterr().err
    boards = load_boards(root)
    seeded = {p.parent.name for p in entries}
    assert seeded <= set(boards.boards)


def test_entries_of_shipped_organisms_were_scored_with_the_weights_shipped_today():
    """Replacing an organism's weights leaves its entries describing other weights unless they are re-run:
    every entry of a built-in model with shipped weights must name the file's sha256."""
    from typobench.core.hashing import file_sha256
    from typobench.models.builtin import get_builtin_model

    checked = 0
    for path in sorted((leaderboards_dir() / "entries").glob("*/*.json")):
        model = json.loads(path.read_text())["model"]
        builtin = get_builtin_model(model["name"])
        if builtin is None or builtin.weights is None:
            continue
        assert model.get("pretrained") is None and model["checkpoint_sha256"] == file_sha256(builtin.weights), (
            f"{path.name} on {path.parent.name}: scored with other weights than the shipped {builtin.weights.name}: re-run it")
        checked += 1
    assert checked >= 40  # toyclip, toyclip-vit, toyclip-fare and toyclip-tecoa entries on every board


def test_real_run_round_trips_through_submit(tmp_path):
    """A real (tiny) run's predictions.csv re-scores to its results.json."""
    from typobench.harness.results import read_predictions
    from typobench.harness.config import RunConfig
    from typobench.harness.run import execute

    outcome = execute(RunConfig(model="tiny-vit", dataset="cifar10-sample", suite="random-wrong-label", limit=10,
                                batch_size=10, device="cpu", out=str(tmp_path / "run"),
                                cache_dir=str(tmp_path / "cache")), progress=False)
    results = outcome.results
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    clean = read_predictions(outcome.out_dir).query("stage == 'clean'")
    (folder / "boards.toml").write_text(boards_toml(
        board="cifar10-sample.random-wrong-label.zeroshot", n=10, hash=results["dataset"]["sample_hash"],
        labels=label_hash(clean["sample_id"].astype(str).tolist(), clean["label"].astype(int).tolist()))
        .replace('name = "synthetic"', 'name = "cifar10-sample"'))
    path = submit(outcome.out_dir, folder)
    entry = json.loads(path.read_text())
    assert entry["model"]["label"] == "tiny-vit" and entry["model"]["random_init"] is True
    assert [s["accuracy"] for s in entry["metrics"]["stages"]] == [s["accuracy"] for s in results["stages"]]


# -- the HTML page in a real browser -----------------------------------------------------------------------


class TableRows(HTMLParser):
    """Per table id: its attributes and the text of each body row's cells."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.html_attrs: dict[str, str] = {}
        self._table = None
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_attrs = attrs
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = {"attrs": attrs, "rows": []}
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table]["rows"].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _dom(browser: str, page: Path, fragment: str = "") -> TableRows:
    done = headless(browser, "--dump-dom", page.as_uri() + fragment)
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = TableRows()
    parsed.feed(done.stdout)
    return parsed


def test_html_page_renders_and_sorts_in_headless_chromium(tmp_path, root):
    browser = chromium()
    accuracies = ((0.9, 0.2), (0.5, 0.5), (0.7, 0.9), (0.3, 0.1))
    for i, (clean, attacked) in enumerate(accuracies):
        submit(fake_run(tmp_path / f"run{i}", label=f"model-{i}", clean_acc=clean, attacked_acc=attacked, seed=i), root)
    submit(fake_stroop_run(tmp_path / "stroop", label="model-1", reads=0.5, seed=1), root)
    assert not build(root).invalid
    page = root / "tables" / "index.html"
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page must load nothing over the network"

    # On load, the script sorts every table by its declared column and marks it.
    dom = _dom(browser, page)
    assert dom.html_attrs.get("data-ready") == "1", "the page's script did not run"
    board = dom.tables[BOARD]
    assert board["attrs"]["data-sorted"] == "typographic_accuracy:desc"
    rows = board["rows"]
    assert len(rows) == 4
    typographic = [float(r[3].split()[0]) for r in rows]
    assert typographic == sorted(typographic, reverse=True)
    assert [r[0] for r in rows][0] == "1"
    headline = dom.tables["headline"]
    assert len(headline["rows"]) == 4 and headline["attrs"]["data-sorted"] == "typographic_accuracy:desc"
    stroop_cells = [r[3] for r in headline["rows"]]
    assert sum(cell != "–" for cell in stroop_cells) == 1  # only model-1 has a Stroop entry

    # Clicking a header (driven through the page's #sort= hook, which clicks it) re-sorts the rows.
    dom = _dom(browser, page, f"#sort={BOARD}:clean_accuracy:asc")
    board = dom.tables[BOARD]
    assert board["attrs"]["data-sorted"] == "clean_accuracy:asc"
    clean = [float(r[2].split()[0]) for r in board["rows"]]
    assert clean == sorted(clean) and len(set(clean)) > 1
    dom = _dom(browser, page, f"#sort={BOARD}:model:desc")
    models = [r[1] for r in dom.tables[BOARD]["rows"]]
    assert models == sorted(models, reverse=True)

    # And it draws something: a screenshot that is not blank.
    shot = tmp_path / "page.png"
    done = headless(browser, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 5 and (pixels < 100).mean() > 0.001


def test_seeded_page_renders_in_headless_chromium():
    browser = chromium()
    page = leaderboards_dir() / "tables" / "index.html"
    dom = _dom(browser, page)
    assert dom.html_attrs.get("data-ready") == "1"
    boards = load_boards(leaderboards_dir())
    for board in boards.boards.values():
        table = dom.tables[board.id]
        assert table["attrs"]["data-sorted"] == f"{board.sort}:{'desc' if board.sort_column.higher_is_better else 'asc'}"
    assert dom.tables["headline"]["rows"], "the headline table lists the seeded models"


def test_project_root_has_the_leaderboards_folder():
    assert (PROJECT_ROOT / "leaderboards" / "boards.toml").is_file()
    assert (PROJECT_ROOT / "leaderboards" / "README.md").is_file()


# -- defense provenance on the boards --------------------------------------------------------------


def _defended_run(out_dir: Path, provenance) -> Path:
    """``fake_run`` with one ablation, as a defended run records it; ``provenance`` None: recorded by no one."""
    fake_run(out_dir)
    results = json.loads((out_dir / "results.json").read_text())
    results["defenses"] = [{"kind": "ablate", "spec": "ablate:from=sel/neurons.json,stage=s", "units": ["layer4:1"]}]
    if provenance is not None:
        results["defense_provenance"] = provenance
    (out_dir / "results.json").write_text(json.dumps(results))
    return out_dir


def _blamed_on(run_dir: Path, config_hash: str) -> list[dict]:
    selection = {"what": "blamed units", "source": str(run_dir / "neurons.json"), "dataset": "synthetic",
                 "split": "test", "n": N, "sample_hash": None, "run_dir": str(run_dir), "config_hash": config_hash}
    return [{"spec": "ablate:from=sel/neurons.json,stage=s", "provenance": "chosen from data", "selections": [selection]}]


def test_submit_checks_what_a_defense_was_chosen_on_again(tmp_path, root, capsys):
    selecting = fake_run(tmp_path / "selecting", seed=1)  # the same images as the scored run
    run = _defended_run(tmp_path / "run", _blamed_on(selecting, "ab" * 32))
    assert main(["submit", str(run), "--root", str(root), "--submitter", "Ada"]) == 2
    err = capsys.readouterr().err.strip()
    assert "chosen on 30 of the images" in err and str(selecting) in err and str(run) in err and "\n" not in err
    unrecorded = _defended_run(tmp_path / "old", None)  # a run made before provenance was recorded
    assert main(["submit", str(unrecorded), "--root", str(root), "--submitter", "Ada"]) == 2
    assert "records no provenance for its defenses" in capsys.readouterr().err
    edited = _defended_run(tmp_path / "edited", _blamed_on(selecting, "ef" * 32))  # names another run's config
    assert main(["submit", str(edited), "--root", str(root), "--submitter", "Ada"]) == 2
    assert "the analysis is not of that run" in capsys.readouterr().err


def test_validate_refuses_an_entry_whose_defense_was_chosen_on_the_scored_split(tmp_path, root, capsys):
    unknown = [{"spec": "ablate:from=sel/neurons.json,stage=s", "provenance": "provenance unknown", "selections": []}]
    path = submit(_defended_run(tmp_path / "run", unknown), root)
    entry = json.loads(path.read_text())
    assert entry["model"]["provenance"][0]["provenance"] == "provenance unknown"
    assert "(provenance unknown)" in model_text(entry["model"])
    on_test = {"what": "learned prefix", "dataset": "synthetic", "split": "test", "n": 5, "sample_hash": None}
    entry["model"]["provenance"][0]["selections"] = [on_test]
    path.write_text(json.dumps(entry))
    code, _, err = validate_cli(capsys, root, path)
    assert code == 1 and "model.provenance[0].selections[0].split" in err and "chosen on the test split" in err
    entry["model"]["provenance"][0].update(provenance="chosen from data", selections=[{**on_test, "split": "train"}])
    path.write_text(json.dumps(entry))
    assert validate_cli(capsys, root, path)[0] == 0
    assert "(chosen on synthetic train)" in model_text(entry["model"])
