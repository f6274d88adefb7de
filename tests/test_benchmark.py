"""``typobench benchmark``: one suite over many data sets, a row per data set and their unweighted mean."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from typobench.cli import main
from typobench.experiments.benchmark.table import markdown, summary_table
from typobench.harness.results import read_results

TINY = ["--model", "tiny-rn", "--limit", "8", "--batch-size", "8", "--device", "cpu", "--quiet"]
CLASSES = {"alpha": 20, "beta": 120, "gamma": 220}


def _folder(root: Path, per_class: int = 2) -> Path:
    """An ImageFolder of a few flat-coloured images per class (6 images: fewer than --limit 8)."""
    for name, value in CLASSES.items():
        for i in range(per_class):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 12), (value, 255 - value, 40 * i)).save(path)
    return root


def _one_line_error(capsys) -> str:
    """The one error line, last on stderr; only the library's one-line notices (e.g. --limit above a folder's
    size) may come before it."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("typobench: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and all(line.startswith("typobench: ") for line in lines), lines
    return errors[0]


def _cache(tmp_path: Path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "cache")]


def test_the_mean_row_is_unweighted_whatever_each_data_set_s_size():
    def stage(accuracy, n):
        return [{"name": "clean", "accuracy": accuracy, "ci95": [0, 1], "n": n}]
    table = summary_table([{"name": "a", "n": 2, "stages": stage(1.0, 2)},
                           {"name": "b", "n": 8, "stages": stage(0.0, 8)}])
    assert list(table["dataset"]) == ["a", "b", "mean"]
    mean = table.iloc[-1]
    assert mean["clean"] == 0.5 and mean["n"] == 10 and mean["clean_n"] == 10  # weighted would be 0.2
    assert pd.isna(mean["clean_lo"]) and "| **mean** | 10 | **50.0%** |" in markdown(table, ["clean"])


def test_two_data_sets_one_table_whose_rows_are_each_run_s_results_and_whose_mean_is_their_mean(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", *TINY, *_cache(tmp_path), "--suite", "none", "--datasets", "cifar10-sample", "folder",
            "--data-root", str(_folder(tmp_path / "imgs")), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| cifar10-sample | 8 |" in printed and "| folder | 6 |" in printed and "| **mean** | 14 |" in printed
    assert f"wrote {out / 'benchmark.csv'}" in printed
    record = json.loads((out / "benchmark.json").read_text())
    assert record["kind"] == "benchmark" and record["suite"]["name"] == "none"
    assert [d["name"] for d in record["datasets"]] == ["cifar10-sample", "folder"]
    table = pd.read_csv(out / "benchmark.csv").set_index("dataset")
    accuracies = []
    for entry in record["datasets"]:
        results = read_results(out / entry["run_dir"])
        assert entry["run_dir"] == f"datasets/{entry['name']}" and results["dataset"]["name"] == entry["name"]
        clean = results["stages"][0]
        assert [s["name"] for s in results["stages"]] == ["clean"]
        assert entry["stages"][0]["accuracy"] == clean["accuracy"] == pytest.approx(table.loc[entry["name"], "clean"])
        assert entry["stages"][0]["ci95"] == clean["ci95"] and entry["n"] == results["dataset"]["n"]
        assert entry["sample_hash"] == results["dataset"]["sample_hash"]
        assert table.loc[entry["name"], "clean_n"] == entry["n"]
        accuracies.append(clean["accuracy"])
    assert [e["n"] for e in record["datasets"]] == [8, 6]
    assert table.loc["mean", "clean"] == pytest.approx(sum(accuracies) / 2)
    assert record["mean"]["stages"] == [{"name": "clean", "accuracy": pytest.approx(sum(accuracies) / 2)}]
    assert record["mean"]["n"] == 14 == table.loc["mean", "n"]
    assert list(table.index) == ["cifar10-sample", "folder", "mean"]
    assert (out / "benchmark.md").read_text().count("\n") == 5  # header, rule, two data sets, the mean

    # The same command again reads every finished data set back: nothing is recomputed.
    stamps = {e["name"]: (out / e["run_dir"] / "results.json").stat().st_mtime_ns for e in record["datasets"]}
    assert main(argv) == 0
    again = capsys.readouterr()
    assert (again.out + again.err).count("finished earlier") == 2
    assert {e["name"]: (out / e["run_dir"] / "results.json").stat().st_mtime_ns for e in record["datasets"]} == stamps
    assert pd.read_csv(out / "benchmark.csv").set_index("dataset")["clean"].to_dict() == table["clean"].to_dict()


@pytest.mark.parametrize("names, named", [(["cifar10-sample", "cifar10-sampel"], "unknown data set 'cifar10-sampel'"),
                                          (["folder", "folder"], "names 'folder' twice")])
def test_an_unknown_or_repeated_data_set_is_refused_in_one_line_before_anything_loads(tmp_path, capsys, monkeypatch,
                                                                                      names, named):
    from typobench.harness.session import Session

    def never(*args, **kwargs):
        raise AssertionError("a session was opened")

    monkeypatch.setattr(Session, "open", staticmethod(never))
    out = tmp_path / "bench"
    assert main(["benchmark", *TINY, "--suite", "none", "--datasets", *names, "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert "--datasets" in line and named in line and not out.exists()


def test_a_data_set_the_suite_cannot_run_on_is_refused_before_the_first_runs(tmp_path, capsys):
    suite = tmp_path / "frog.toml"
    suite.write_text('name = "frog"\n\n[[stage]]\nname = "clean"\nkind = "clean"\n\n'
                     '[[stage]]\nname = "frog"\nkind = "text"\ntext = "frog"\ntarget = "frog"\n')
    out = tmp_path / "bench"
    assert main(["benchmark", *TINY, *_cache(tmp_path), "--suite", str(suite), "--datasets", "cifar10-sample",
                 "folder", "--data-root", str(_folder(tmp_path / "imgs")), "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert "data set folder" in line and "'frog'" in line
    assert not out.exists()  # cifar10-sample, which has a frog, did not run first


def test_dataset_in_the_data_root_is_replaced_by_each_data_set_s_name(tmp_path, capsys):
    _folder(tmp_path / "roots" / "folder")
    out = tmp_path / "bench"
    template = str(tmp_path / "roots" / "{dataset}")
    assert main(["benchmark", *TINY, *_cache(tmp_path), "--suite", "none", "--datasets", "folder", "cifar10-sample",
                 "--data-root", template, "--out", str(out)]) == 0
    record = json.loads((out / "benchmark.json").read_text())
    assert record["config"]["data_root"] == template and record["config"]["datasets"] == ["folder", "cifar10-sample"]
    folder = record["datasets"][0]
    assert folder["root"] == str(tmp_path / "roots" / "folder") and folder["n"] == 6
    assert read_results(out / folder["run_dir"])["config"]["data_root"] == str(tmp_path / "roots" / "folder")
    # Without the placeholder the root is the folder of folders: one class per data set, refused.
    capsys.readouterr()
    assert main(["benchmark", *TINY, *_cache(tmp_path), "--suite", "none", "--datasets", "folder",
                 "--data-root", str(tmp_path / "roots"), "--out", str(tmp_path / "plain")]) == 2
    assert "has 1 class" in _one_line_error(capsys)
