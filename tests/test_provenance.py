"""Defenses honest by construction: every path that applies a defense checks what it was chosen on.

Each test reproduces a way around the old check (it lived in `defend` alone) and expects exit 2 with one
line naming the selecting run and the scored data, or the right result. Runs are clean-only on 12 images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from typobench.cli import main
from typobench.defenses.provenance import NO_DATA, UNKNOWN
from typobench.experiments.defend.baselines import like_for_like, random_rows
from typobench.experiments.defend.rows import parse_rows
from typobench.harness.config import RunConfig
from typobench.harness.results import read_results
from typobench.harness.session import Session

from conftest import PROJECT_ROOT

BASE = ["--limit", "12", "--batch-size", "12", "--device", "cpu", "--quiet", "--suite", "none"]
PREFIX = PROJECT_ROOT / "leaderboards" / "defenses" / "toyclip-prefix-4tokens.safetensors"


def _neurons_json(path: Path, run_dir: Path, **run_changes) -> Path:
    """A neurons.json as `typobench neurons` records its run (blamed units in range for tiny-rn and toyclip)."""
    results = json.loads((run_dir / "results.json").read_text())
    run = {"dir": str(run_dir), "config_hash": results["config_hash"], "model": results["model"]["label"],
           "weights_sha256": results["model"]["weights_sha256"], **run_changes}
    blame = [{"rank": r, "neuron": f"layer4:{u}"} for r, u in enumerate([9, 4, 30], start=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "config": {"ref_limit": 6, "seed": 0},
                                "analyses": [{"stage": "typo", "kind": "failure", "blame": blame}]}))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cifar10_jpeg_root):
    """Clean runs: ``sample`` (the images scored below), ``train`` (tiny-rn on train images), ``toy`` (toyclip
    on train images), each with a neurons.json."""
    root = tmp_path_factory.mktemp("provenance")
    cache = ["--cache-dir", str(root / "cache")]
    train = ["--dataset", "cifar10-jpeg", "--data-root", str(cifar10_jpeg_root), "--split", "train"]
    made = {}
    for name, model, data in (("sample", "tiny-rn", []), ("train", "tiny-rn", train), ("toy", "toyclip", train)):
        assert main(["run", "--model", model, *BASE, *cache, *data, "--out", str(root / name)]) == 0
        made[name] = _neurons_json(root / name / "neurons.json", root / name)
    made["root"], made["cache"] = root, cache
    return made


def _scored(runs, tmp_path, *extra) -> list[str]:
    return ["--model", "tiny-rn", *BASE, *runs["cache"], "--out", str(tmp_path / "scored"), *extra]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("typobench: error:") and "\n" not in err
    return err


def test_run_defense_chosen_on_the_very_images_it_scores_is_refused(runs, tmp_path, capsys):
    spec = f"ablate:from={runs['sample']},stage=typo,k=2"
    assert main(["run", *_scored(runs, tmp_path, "--defense", spec)]) == 2
    err = _one_line_error(capsys)
    assert "chosen on 12 of the images it would be scored on" in err
    assert str(runs["root"] / "sample") in err and "cifar10-sample test" in err  # the selecting run, the scored data
    assert not (tmp_path / "scored" / "results.json").exists()


def test_a_suite_defense_table_is_checked_like_a_command_line_defense(runs, tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'name = "t"\n[defense]\nkind = "ablate"\nfrom = "{runs["sample"]}"\nstage = "typo"\nk = 2\n'
                     '[[stage]]\nname = "clean"\nkind = "clean"\n')
    argv = [str(suite) if a == "none" else a for a in _scored(runs, tmp_path)]
    assert main(["run", *argv]) == 2
    assert "chosen on 12 of the images" in _one_line_error(capsys)


def test_a_neurons_json_edited_to_point_at_another_run_is_refused(runs, tmp_path, capsys):
    honest = f"ablate:from={runs['train']},stage=typo,k=2"
    assert main(["run", *_scored(runs, tmp_path, "--defense", honest)]) == 0  # chosen on train images: accepted
    capsys.readouterr()
    recorded = json.loads(runs["train"].read_text())["run"]
    edited = _neurons_json(tmp_path / "edited" / "neurons.json", runs["root"] / "sample",
                           config_hash=recorded["config_hash"])  # the train run's analysis, aimed at another run
    assert main(["run", *_scored(runs, tmp_path, "--out", str(tmp_path / "e"),
                                 "--defense", f"ablate:from={edited},stage=typo,k=2")]) == 2
    err = _one_line_error(capsys)
    assert "the analysis is not of that run" in err and str(runs["root"] / "sample") in err
    assert recorded["config_hash"][:12] in err


def test_units_blamed_in_another_model_are_refused_naming_both_models(runs, tmp_path, capsys):
    spec = f"ablate:from={runs['toy']},stage=typo,k=2"  # toyclip's units; layer4:9 and :4 exist in tiny-rn too
    assert main(["run", *_scored(runs, tmp_path, "--defense", spec)]) == 2
    err = _one_line_error(capsys)
    assert "chosen for model toyclip" in err and "not for model tiny-rn" in err


def test_units_written_out_are_provenance_unknown_and_fixed_defenses_not_chosen(runs, tmp_path):
    config = RunConfig(model="tiny-rn", dataset="cifar10-sample", limit=12, batch_size=12, device="cpu", suite=None,
                       cache_dir=str(runs["root"] / "cache"))
    session = Session.open(config)
    records = session.with_defenses(["ablate:units=layer4:1", "input:blur=1",
                                     f"ablate:from={runs['train']},stage=typo,k=2"]).provenance()
    assert [r["provenance"] for r in records] == [UNKNOWN, NO_DATA, "chosen from data"]
    assert records[2]["selections"][0]["split"] == "train" and records[2]["selections"][0]["n"] == 12
    assert main(["run", *_scored(runs, tmp_path, "--defense", "ablate:units=layer4:1")]) == 0
    assert read_results(tmp_path / "scored")["defense_provenance"][0]["provenance"] == UNKNOWN


def test_defend_keeps_the_none_row_bare_and_gives_a_suite_defense_its_own_row(runs, tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text('name = "t"\n[defense]\nkind = "input"\nblur = 1\n[[stage]]\nname = "clean"\nkind = "clean"\n')
    out = tmp_path / "defend"
    assert main(["defend", "--model", "tiny-rn", *BASE[:-2], *runs["cache"], "--suite", str(suite), "--out", str(out),
                 "--defense", "ablate:units=layer4:1+layer4:2"]) == 0
    record = json.loads((out / "defend.json").read_text())
    assert [r["defense"] for r in record["rows"]] == ["none", "ablate:units=layer4:1+layer4:2", "input:blur=1"]
    assert "defenses" not in read_results(out / record["rows"][0]["run_dir"])  # none carries no defense
    assert [r["chosen_on"] for r in record["rows"]] == [NO_DATA, UNKNOWN, NO_DATA]
    assert pd.read_csv(out / "defend.csv")["clean_cost"].iloc[0] == 0
    assert "| ablate:units=layer4:1+layer4:2 | provenance unknown |" in (out / "defend.md").read_text()


def test_defend_suite_none_scores_clean_images_only(runs, tmp_path, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--model", "tiny-rn", *BASE, *runs["cache"], "--out", str(out),
                 "--defense", "input:blur=1"]) == 0
    record = json.loads((out / "defend.json").read_text())
    assert [s["name"] for s in read_results(out / record["rows"][1]["run_dir"])["stages"]] == ["clean"]


def test_defend_refuses_negative_random_draws_before_anything_runs(runs, tmp_path, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--model", "tiny-rn", *BASE, *runs["cache"], "--out", str(out), "--random-draws", "-1",
                 "--defense", "ablate:units=layer4:1"]) == 2
    line = _one_line_error(capsys)
    assert "--random-draws" in line and "got -1" in line and not out.exists()


def test_defend_refuses_a_prefix_for_another_model_before_the_none_row_runs(runs, tmp_path, capsys):
    out = tmp_path / "defend"
    assert main(["defend", "--model", "tiny-rn", *BASE, *runs["cache"], "--out", str(out),
                 "--defense", f"prompt:prefix={PREFIX}"]) == 2
    err = _one_line_error(capsys)
    assert "chosen for model toyclip" in err and "tiny-rn" in err and not (out / "rows").exists()


def test_random_draws_average_over_the_chosen_units_mean_images(runs, tmp_path, capsys):
    spec = f"ablate:from={runs['train']},stage=typo,k=2,mode=mean"
    row = parse_rows([spec])[1]
    from typobench.models import load_model
    draws = random_rows(row, load_model("tiny-rn").model, 1, seed=0)
    assert draws[0].defenses[0].mean_request == row.defenses[0].mean_request
    assert "neurons reference" in like_for_like(row.defenses[0])["mean_images"]
    out = tmp_path / "defend"
    assert main(["defend", "--model", "tiny-rn", *BASE, *runs["cache"], "--out", str(out), "--random-draws", "1",
                 "--defense", spec]) == 0
    record = json.loads((out / "defend.json").read_text())
    chosen = read_results(out / record["rows"][1]["run_dir"])["defenses"][0]["mean_images"]
    draw = read_results(out / record["rows"][1]["run_dir"] / "random" / "1")["defenses"][0]["mean_images"]
    assert draw == chosen and chosen["source"] == "neurons-reference" and chosen["split"] == "train"
    assert "mean images: neurons reference" in (out / "defend.md").read_text()
