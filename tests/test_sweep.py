"""Parameter sweeps: parameter paths and overrides, grid expansion, resumable sweeps, the CLI and the API example."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.experiments.sweep import expand_grid, parse_vary, point_slug, run_sweep
from typobench.harness import evaluation
from typobench.harness.config import RunConfig
from typobench.harness.results import read_results
from typobench.harness.resume import BatchStore
from typobench.harness.session import Session
from typobench.models.builtin import get_builtin_model
from typobench.suites import list_suites, parse_suite, resolve_suite_path
from typobench.suites.edit import load_spec, override
from typobench.suites.toml_writer import to_toml

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# -- grids and values ---------------------------------------------------------------------------------


def test_expand_grid_is_the_product_with_the_first_parameter_slowest():
    grid = expand_grid({"text.size": [8, 12, 16], "placement.copies": [1, 2]})
    assert len(grid) == 6
    assert grid[0] == {"text.size": 8, "placement.copies": 1}
    assert grid[1] == {"text.size": 8, "placement.copies": 2}
    assert grid[-1] == {"text.size": 16, "placement.copies": 2}
    assert expand_grid([("pgd.eps", ["1/255"])]) == [{"pgd.eps": "1/255"}]
    assert expand_grid({}) == [{}]


@pytest.mark.parametrize("vary, message", [
    ([("text.size", [8]), ("text.size", [12])], "varied twice"),
    ({"text.size": []}, "non-empty list"),
    ({"text.size": [8, 8]}, "lists a value twice"),
])
def test_expand_grid_rejects_bad_grids(vary, message):
    with pytest.raises(UsageError, match=message):
        expand_grid(vary)


def test_vary_values_are_parsed_like_toml_scalars():
    assert parse_vary("text.size=8,12,0.15") == ("text.size", [8, 12, 0.15])
    assert parse_vary("pgd.eps=1/255, 2/255,inf") == ("pgd.eps", ["1/255", "2/255", float("inf")])
    assert parse_vary("text.fill=black,#ff0000") == ("text.fill", ["black", "#ff0000"])
    assert parse_vary("style.size_range=[0.1,0.15],[0.2, 0.3]") == ("style.size_range", [[0.1, 0.15], [0.2, 0.3]])
    assert parse_vary("pgd.random_start=true,false") == ("pgd.random_start", [True, False])
    for bad in ("text.size", "=8", "text.size=", "text.size=8,,12"):
        with pytest.raises(UsageError, match="--vary"):
            parse_vary(bad)


# -- parameter paths and overrides --------------------------------------------------------------------


def test_unknown_parameter_path_names_it_and_lists_the_valid_ones():
    spec = load_spec("random-wrong-label")
    with pytest.raises(UsageError) as info:
        override(spec, {"text.sise": 12})
    message = str(info.value)
    assert "'text.sise'" in message and "did you mean text.size" in message
    assert "valid paths for suite random-wrong-label" in message
    for valid in ("size_range", "placement.KEY", "n (or copies)", "random-wrong-label (text)"):
        assert valid in message
    assert "\n" not in message
    with pytest.raises(UsageError, match=r"'pgd\.eps' \(suite random-wrong-label has no pgd stage\)"):
        override(spec, {"pgd.eps": "8/255"})
    with pytest.raises(UsageError, match=r"'nostage\.style\.size' \(no stage 'nostage'"):
        override(spec, {"nostage.style.size": 8})
    with pytest.raises(UsageError, match="is a clean stage"):
        override(spec, {"clean.style.size": 8})


def test_unknown_parameter_path_on_the_command_line_is_one_line_and_exit_2(capsys):
    code = main(["sweep", "--suite", "random-wrong-label", "--vary", "text.colour=red", "--limit", "4"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "unknown parameter path 'text.colour'" in err and "text.KEY" in err


def test_invalid_value_is_reported_by_the_suite_field_checks():
    spec = load_spec("random-wrong-label")
    with pytest.raises(UsageError, match=r"stage\[1\]\.style: size must be >= 1.*\(with text\.size=-3\)"):
        override(spec, {"text.size": -3})
    with pytest.raises(UsageError, match=r"stage\[1\]\.placement"):
        override(spec, {"placement.copies": 0})


def _stages(spec):
    return {s.name: s.describe() for s in spec.build().stages}


def test_override_paths_reach_the_right_stages_and_fields():
    base = load_spec("random-wrong-label")
    assert base.build().sha256 == hashlib.sha256(resolve_suite_path("random-wrong-label").read_bytes()).hexdigest()
    changed = override(base, {"text.size": 12, "placement.copies": 3})
    stage = _stages(changed)["random-wrong-label"]
    assert stage["style"]["size"] == 12 and "size_range" not in stage["style"]  # size replaces the range
    assert stage["placement"]["params"]["n"] == 3
    assert changed.build().sha256 != base.build().sha256
    assert override(base, {"style.size": 12}).text == override(base, {"text.size": 12}).text

    fort = load_spec("fort2021-cifar10")  # [defaults.style] and [defaults.pgd] are copied into each stage first
    every = _stages(override(fort, {"pgd.eps": "8/255", "text.size": 0.3}))
    assert {s["eps"] for s in every.values() if s["kind"] == "pgd"} == {8 / 255}
    assert {s["style"]["size"] for s in every.values() if s["kind"] == "text"} == {0.3}
    one = _stages(override(fort, {"sticker-2.style.size": 10, "stage[2].pgd.steps": 3, "stage.pgd-2.pgd.eps": 0.01}))
    assert one["sticker-1"]["style"]["size_range"] == [0.14, 0.2] and one["sticker-2"]["style"]["size"] == 10
    assert "size_range" not in one["sticker-2"]["style"]
    assert (one["pgd-1"]["steps"], one["pgd-2"]["steps"]) == (3, 20)
    assert (one["pgd-1"]["eps"], one["pgd-2"]["eps"]) == (4 / 255, 0.01)

    sweep = load_spec("pgd-eps-sweep")  # a stage name with dots and a slash
    assert _stages(override(sweep, {"pgd@0.5/255.pgd.steps": 2}))["pgd@0.5/255"]["steps"] == 2

    fixed = _stages(override(base, {"placement.policy": "fixed", "placement.x": 0.0, "placement.y": 0.0}))
    assert fixed["random-wrong-label"]["placement"] == {"name": "fixed", "params": {"x": 0.0, "y": 0.0}}
    written = _stages(override(load_spec("default"), {"control-word.text.text": "banana"}))["control-word"]
    assert written["words"] == "fixed" and written["text"] == "banana"


@pytest.mark.parametrize("name", list_suites())
def test_every_shipped_suite_survives_the_toml_round_trip(name):
    spec = load_spec(name)
    rebuilt = parse_suite(to_toml(spec.raw).encode())
    assert [s.describe() for s in rebuilt.stages] == [s.describe() for s in spec.build().stages]


# -- sweeps -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    config = RunConfig(model="tiny-rn", dataset="cifar10-sample", limit=12, batch_size=4, suite=None,
                       cache_dir=str(cache), device="cpu")
    return Session.open(config)


def test_interrupted_sweep_resumes_without_redoing_finished_points(session, tmp_path, monkeypatch):
    spec = load_spec("random-wrong-label")
    points = expand_grid({"text.size": [8, 12]})  # 2 points x 3 batches of 4 images
    out = tmp_path / "sweep"
    computed = []
    original_run = evaluation.run_stages_on_batch

    def counting(stages, batch, ctx, crash_at=None):
        if len(computed) + 1 == crash_at:  # like Ctrl-C in point 2's second batch
            raise KeyboardInterrupt
        computed.append(batch.indices[0])
        return original_run(stages, batch, ctx)

    monkeypatch.setattr(evaluation, "run_stages_on_batch", lambda *a: counting(*a, crash_at=5))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(session, spec, points, out, progress=False)
    first, second = (out / "points" / point_slug(p) for p in points)
    assert (first / "results.json").exists() and not (second / "results.json").exists()
    assert not (first / "point.json").exists()  # results.json alone marks a finished point
    assert BatchStore(second, "x").dir.exists()  # point 2's first batch was kept
    first_marker = (first / "results.json").stat().st_mtime_ns
    assert len(pd.read_csv(out / "sweep.csv")) == 2  # the table so far: point 1's two stages

    computed.clear()
    monkeypatch.setattr(evaluation, "run_stages_on_batch", counting)
    outcome = run_sweep(session, spec, points, out, progress=False)
    assert computed == [4, 8]  # only point 2's two missing batches
    assert outcome.skipped == [0]
    assert (first / "results.json").stat().st_mtime_ns == first_marker
    assert not (second / ".partial").exists()
    log = (out / "sweep.log").read_text()
    assert "text.size=12: resuming, 1 of 3 batches finished earlier" in log
    assert "[1/2] text.size=8: finished earlier, skipped" in log

    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 4 and list(table["text.size"]) == [8, 8, 12, 12]
    assert {"point", "stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n", "targeted_success", "targeted_ci_lo",
            "targeted_ci_hi", "targeted_n", "pixel_fraction_mean", "suite_sha256"} <= set(table.columns)
    attack = table[table.stage == "random-wrong-label"]
    assert attack.pixel_fraction_mean.is_monotonic_increasing and (table.n == 12).all()
    assert attack.suite_sha256.nunique() == 2
    for point_dir, sha in zip((first, second), attack.suite_sha256):
        assert hashlib.sha256((point_dir / "suite.toml").read_bytes()).hexdigest() == sha
        assert read_results(point_dir)["suite"]["sha256"] == sha
    assert pd.read_csv(out / "sweep.csv").shape == table.shape
    assert (out / "plot-text.size.png").stat().st_size > 1000

    again = run_sweep(session, spec, points, out, progress=False, plots=False)  # all finished: nothing computed
    assert again.skipped == [0, 1] and computed == [4, 8]


def test_sweep_json_starts_with_the_result_envelope(session, tmp_path):
    spec = load_spec("random-wrong-label")
    out = tmp_path / "sweep"
    run_sweep(session, spec, [{"text.size": 8}, {"text.size": 10}], out, progress=False, plots=False)
    record = json.loads((out / "sweep.json").read_text())
    assert list(record)[:3] == ["schema_version", "kind", "created"] and record["kind"] == "sweep"
    assert record["model"] == session.model.describe() and record["dataset"]["n"] == 12
    assert record["seed"] == 0 and record["config"]["model"] == "tiny-rn" and len(record["config_hash"]) == 64
    assert [p["point"] for p in record["points"]] == [{"text.size": 8}, {"text.size": 10}]
    assert all((out / p["dir"] / "results.json").exists() for p in record["points"])
    point = read_results(out / record["points"][0]["dir"])
    assert point["kind"] == "run" and point["pictures"] == []  # a grid point is a plain harness run


def test_a_point_computed_with_another_configuration_is_refused(session, tmp_path):
    spec = load_spec("random-wrong-label")
    out = tmp_path / "sweep"
    run_sweep(session, spec, [{"text.size": 8}], out, progress=False, plots=False)
    marker = next(out.glob("points/*/results.json"))
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "config_hash": "something-else"}))
    with pytest.raises(UsageError, match="different configuration"):
        run_sweep(session, spec, [{"text.size": 8}], out, progress=False, plots=False)
    outcome = run_sweep(session, spec, [{"text.size": 8}], out, progress=False, plots=False, overwrite=True)
    assert outcome.skipped == []


def test_two_parameters_give_a_heat_map_and_a_list_of_points_a_point_plot(session, tmp_path):
    spec = load_spec("random-wrong-label")
    grid = run_sweep(session, spec, expand_grid({"text.size": [8, 12], "placement.copies": [1, 2]}), tmp_path / "g",
                     progress=False)
    names = {p.name for p in grid.files}
    assert {"sweep.csv", "sweep.parquet", "plot-text.size.png", "plot-placement.copies.png",
            "heatmap.png"} <= names
    listed = run_sweep(session, spec, [{"placement.policy": "fixed", "placement.x": 0.0},
                                       {"placement.policy": "random"}],
                       tmp_path / "l", progress=False)  # not a grid: one plot against the point
    assert "plot-point.png" in {p.name for p in listed.files} and "heatmap.png" not in {p.name for p in listed.files}
    assert list(listed.table.drop_duplicates("point")["placement.policy"]) == ["fixed", "random"]
    assert listed.table["placement.x"].isna().tolist() == [False, False, True, True]


# -- the API ------------------------------------------------------------------------------------------


def test_api_evaluate_returns_one_row_per_stage(tmp_path):
    import typobench.api as tb

    model = tb.load_model("tiny-rn", device="cpu", cache_dir=str(tmp_path / "cache"))
    data = tb.load_data("cifar10-sample", model, limit=8)
    stages = tb.evaluate(model, data, tb.override(tb.load_suite("random-wrong-label"), {"text.size": 10}),
                         batch_size=8)
    assert list(stages.stage) == ["clean", "random-wrong-label"]
    assert (stages.n == 8).all() and stages.targeted_success.notna().tolist() == [False, True]
    assert "placement.copies" in tb.parameter_paths(tb.load_suite("random-wrong-label"))
    if not _toyclip_installed():  # a missing built-in checkpoint is a one-line UsageError, not a traceback
        with pytest.raises(UsageError, match="'toyclip' has no weights"):
            tb.load_model("toyclip", device="cpu")


def _toyclip_installed() -> bool:
    weights = get_builtin_model("toyclip").weights
    return weights is not None and Path(weights).is_file()


def test_the_readme_api_example_runs(tmp_path):
    """attacks/sweeps/api_example.py is the README's example; run it (smaller, and on tiny-rn until
    toyclip's weights are installed)."""
    source = (PROJECT_ROOT / "attacks" / "sweeps" / "api_example.py").read_text()
    assert len(source.strip().splitlines()) < 30
    source = source.replace("limit=200", "limit=10").replace('"runs/api-example"', repr(str(tmp_path / "out")))
    if not _toyclip_installed():
        source = source.replace('"toyclip"', '"tiny-rn"')
    script = tmp_path / "example.py"
    script.write_text(source)
    env = {**os.environ, "TYPOBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "text.size" in done.stdout and "random-wrong-label" in done.stdout
    assert (tmp_path / "out" / "sweep.parquet").exists() and (tmp_path / "out" / "heatmap.png").exists()
    assert re.search(r"placement\.copies\s+1\s+3", done.stdout)
