"""``typobench defend``: rows, selection disjointness, random-unit baselines, the table and its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.experiments.defend.baselines import random_rows, typographic_suite, verdict
from typobench.experiments.defend.rows import parse_rows
from typobench.experiments.defend.table import clean_cost, defense_table
from typobench.harness.results import read_results
from typobench.models import load_model
from typobench.suites import read_suite

# The defend suite's stages with tiny attack budgets (tests/suites/defend-small.toml); a test that names another
# suite later on its command line overrides it.
SMALL_DEFEND = str(Path(__file__).parent / "suites" / "defend-small.toml")
TINY = ["--model", "tiny-rn", "--limit", "12", "--batch-size", "12", "--device", "cpu", "--quiet", "--suite", SMALL_DEFEND]


def _neurons_json(path: Path, run_dir: Path) -> Path:
    blame = [{"rank": r, "neuron": f"layer4:{u}"} for r, u in enumerate([9, 4, 30], start=1)]
    results = json.loads((run_dir / "results.json").read_text())
    run = {"dir": str(run_dir), "config_hash": results["config_hash"], "model": results["model"]["label"],
           "weights_sha256": results["model"]["weights_sha256"]}
    report = {"run": run, "config": {"ref_limit": 6, "seed": 0},
              "analyses": [{"stage": "random-wrong-label", "kind": "failure", "blame": blame,
                            "blamed": [b["neuron"] for b in blame]}]}
    path.write_text(json.dumps(report))
    return path


def test_rows_start_without_defenses_and_compose_with_semicolons():
    rows = parse_rows(["input:blur=1", "input:jpeg=80; ablate:units=layer4:1+layer4:2"])
    assert [r.label for r in rows] == ["none", "input:blur=1", "input:jpeg=80; ablate:units=layer4:1+layer4:2"]
    assert [d.kind for d in rows[2].defenses] == ["input", "ablate"] and rows[0].defenses == ()
    with pytest.raises(UsageError, match="given twice"):
        parse_rows(["input:blur=1", "input:blur=1"])
    with pytest.raises(UsageError, match="unknown field 'sigma'"):
        parse_rows(["input:sigma=1"])


def test_random_draws_have_the_size_and_layers_of_the_blamed_set_never_its_units_and_repeat_from_the_seed():
    model = load_model("tiny-rn").model
    row = parse_rows(["ablate:units=layer4:1+layer4:2+layer4:3"])[1]
    draws = random_rows(row, model, 5, seed=0)
    units = [d.defenses[0].units for d in draws]
    assert len(draws) == 5 and all(len(u) == 3 and set(u).isdisjoint(row.defenses[0].units) for u in units)
    assert all(name.startswith("layer4:") for u in units for name in u) and len({tuple(u) for u in units}) == 5
    assert units == [d.defenses[0].units for d in random_rows(row, model, 5, seed=0)]
    assert units != [d.defenses[0].units for d in random_rows(row, model, 5, seed=1)]
    assert random_rows(parse_rows(["input:blur=1"])[1], model, 5, seed=0) == []  # only a lone ablation has draws


def _stage(name, accuracy, written=None, kind="text"):
    stage = {"name": name, "kind": kind, "accuracy": accuracy, "ci95": [accuracy - 0.1, accuracy + 0.1]}
    if written is not None:
        stage.update(target="written", targeted_success={"value": written, "ci95": [0, 1], "n": 10})
    return stage


def test_the_blamed_set_beats_the_draws_only_when_better_than_every_one_on_both_counts():
    draws = [{"stages": [_stage("rwl", a, w)]} for a, w in [(0.30, 0.40), (0.35, 0.38), (0.32, 0.45)]]
    assert verdict({"stages": [_stage("rwl", 0.50, 0.20)]}, draws)["beats_every_draw"] is True
    assert verdict({"stages": [_stage("rwl", 0.50, 0.20)]}, draws)["p"] == 0.25
    assert verdict({"stages": [_stage("rwl", 0.34, 0.20)]}, draws)["beats_every_draw"] is False  # accuracy
    assert verdict({"stages": [_stage("rwl", 0.50, 0.39)]}, draws)["beats_every_draw"] is False  # written rate
    assert verdict({"stages": [_stage("clean", 0.9, kind="clean")]}, [])["beats_every_draw"] is False


def test_the_suite_without_pgd_drops_pgd_stages_and_those_reading_them():
    suite = read_suite("defend")
    assert [s.name for s in typographic_suite(suite).stages] == ["clean", "random-wrong-label", "control-word"]
    assert typographic_suite(suite).sha256 != suite.sha256
    fort = read_suite("fort2021-cifar10")
    kept = typographic_suite(fort).stages
    assert all(s.kind != "pgd" for s in kept) and all(r in {k.name for k in kept} | {"clean"}
                                                     for s in kept for r in s.requires())


def _predictions(correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"stage": "clean", "sample_id": [f"s{i}" for i in range(len(correct))],
                         "label": 0, "pred": [0 if c else 1 for c in correct]})


def test_clean_cost_is_the_paired_accuracy_difference_with_an_interval_around_it():
    before = _predictions([True] * 8 + [False] * 2)
    after = _predictions([True] * 6 + [False] * 4)
    cost = clean_cost(before, after.iloc[::-1], seed=0)  # rows in another order: paired by sample id
    assert cost["clean_cost"] == pytest.approx(0.2)
    assert cost["clean_cost_lo"] <= 0.2 <= cost["clean_cost_hi"] and cost["clean_cost_lo"] >= 0
    assert clean_cost(before, before, seed=0)["clean_cost_hi"] == 0
    table = defense_table([{"label": "none", "chosen_on": "-", "run_dir": "a", "predictions": before,
                            "results": {"stages": [_stage("clean", 0.8, kind="clean")]}},
                           {"label": "d", "chosen_on": "-", "run_dir": "b", "predictions": after,
                            "results": {"stages": [_stage("clean", 0.6, kind="clean")]}}], seed=0)
    assert list(table["defense"]) == ["none", "d"] and np.allclose(table["clean_cost"], [0.0, 0.2])


def test_defend_writes_the_table_with_adaptive_and_transfer_pgd_and_its_random_baseline(tmp_path, capsys):
    out = tmp_path / "defend"
    argv = ["defend", *TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
            "--defense", "input:jpeg=75", "--defense", "ablate:units=layer4:1+layer4:2", "--random-draws", "2",
            "--lexicon-words", "8"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| none |" in printed and "| input:jpeg=75 |" in printed and "draws" in printed
    assert "input:jpeg=75: jpeg-approx" in printed  # the row says which backward pass the attacks used
    record = json.loads((out / "defend.json").read_text())
    assert record["kind"] == "defend" and [r["defense"] for r in record["rows"]] == \
        ["none", "input:jpeg=75", "ablate:units=layer4:1+layer4:2"]
    table = pd.read_csv(out / "defend.csv")
    assert {"adaptive-linf-2", "transfer-linf-2", "random-wrong-label:written", "clean_cost", "words_alone",
            "word_retrieval"} <= set(table.columns) and (table["lexicon_words"] == 8).all()
    assert table.loc[0, "clean_cost"] == 0 and table.loc[0, "adaptive-linf-2"] == table.loc[0, "transfer-linf-2"]
    jpeg = read_results(out / record["rows"][1]["run_dir"])
    assert jpeg["defenses"][0]["bpda"] is True and "zero_gradients" not in jpeg["defense_sanity"]["flags"]
    baseline = record["rows"][2]["random_baseline"]
    assert baseline["draws"] == 2 and len(baseline["units"]) == 2 and "random-wrong-label" in baseline["stages"]
    assert (out / "defend.png").stat().st_size > 0 and "| defense |" in (out / "defend.md").read_text()
    assert main(argv) == 0
    again = capsys.readouterr()
    assert (again.out + again.err).count("finished earlier") == 5  # every row and draw is read back, not recomputed


def test_a_defense_chosen_on_the_images_it_is_scored_on_is_refused(tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    run = tmp_path / "selection"
    assert main(["run", *TINY, *cache, "--suite", "random-wrong-label", "--out", str(run)]) == 0
    neurons = _neurons_json(tmp_path / "neurons.json", run)
    assert main(["defend", *TINY, *cache, "--suite", "random-wrong-label", "--out", str(tmp_path / "same"),
                 "--defense", f"ablate:from={neurons},stage=random-wrong-label,k=2"]) == 2
    assert "chosen on 12 of the images it would be scored on" in capsys.readouterr().err


def test_a_defense_chosen_on_train_images_is_scored_on_test_images_and_says_so(tmp_path, cifar10_jpeg_root):
    data = ["--dataset", "cifar10-jpeg", "--data-root", str(cifar10_jpeg_root), "--cache-dir", str(tmp_path / "c")]
    run = tmp_path / "train-selection"
    assert main(["run", *TINY, *data, "--split", "train", "--suite", "random-wrong-label", "--out", str(run)]) == 0
    neurons = _neurons_json(tmp_path / "neurons.json", run)
    out = tmp_path / "defend"
    assert main(["defend", *TINY, *data, "--suite", "random-wrong-label", "--out", str(out),
                 "--defense", f"ablate:from={neurons},stage=random-wrong-label,k=2"]) == 0
    row = json.loads((out / "defend.json").read_text())["rows"][1]
    assert row["chosen_on"] == "blamed units: cifar10-jpeg train, 12 images"
    assert row["selections"][0]["split"] == "train" and row["selections"][0]["n"] == 12
