"""End-to-end runs through the Python API and the CLI: results, resume, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from typobench.cli import main
from typobench.data import ImageDataset
from typobench.harness.evaluation import predict_stages
from typobench.harness.resume import BatchStore
from typobench.harness.results import read_predictions, read_results
from typobench.harness.config import RunConfig
from typobench.harness.run import execute
from typobench.stages.base import CleanStage, Stage, StageOutput

from helpers import synthetic_dataset
from test_stages import make_ctx


def small_config(tmp_path, **changes) -> RunConfig:
    base = dict(model="tiny-rn", dataset="cifar10-sample", limit=40, batch_size=16, suite="default",
                out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), device="cpu")
    return RunConfig(**{**base, **changes})


def test_run_writes_results_predictions_and_pictures(tmp_path):
    outcome = execute(small_config(tmp_path), progress=False)
    results = read_results(outcome.out_dir)
    assert results["schema_version"] == 1
    assert [s["name"] for s in results["stages"]] == ["clean", "true-label-sticker", "random-wrong-label",
                                                      "control-word", "pgd-linf-2"]
    for stage in results["stages"]:
        lo, hi = stage["ci95"]
        assert stage["n"] == 40 and lo <= stage["accuracy"] <= hi
    assert results["suite"]["name"] == "default" and len(results["suite"]["sha256"]) == 64
    assert results["dataset"]["n"] == 40 and len(results["dataset"]["sample_hash"]) == 64
    assert results["model"]["random_init"] is True
    assert {"typobench", "open_clip", "torch"} <= set(results["versions"])
    predictions = read_predictions(outcome.out_dir)
    assert len(predictions) == 5 * 40
    assert {"sample_id", "label", "pred", "top5", "p_label", "stage", "target"} <= set(predictions.columns)
    clean = predictions[predictions.stage == "clean"]
    assert results["stages"][0]["accuracy"] == pytest.approx((clean.pred == clean.label).mean())
    assert (outcome.out_dir / "examples.png").stat().st_size > 1000
    assert (outcome.out_dir / "stages.png").stat().st_size > 1000
    assert not (outcome.out_dir / ".partial").exists()


def test_same_run_again_is_not_recomputed_and_other_config_is_refused(tmp_path):
    config = small_config(tmp_path, suite=None)
    first = execute(config, progress=False)
    again = execute(config, progress=False)
    assert again.resumed_complete and again.results == read_results(first.out_dir)
    from typobench.core.errors import UsageError

    with pytest.raises(UsageError, match="different configuration"):
        execute(small_config(tmp_path, suite=None, seed=5), progress=False)


def test_limit_subset_is_stratified_and_hashed(tmp_path):
    a = execute(small_config(tmp_path, suite=None, out=str(tmp_path / "a")), progress=False).results
    b = execute(small_config(tmp_path, suite=None, out=str(tmp_path / "b"), seed=1), progress=False).results
    assert a["dataset"]["sample_hash"] != b["dataset"]["sample_hash"]
    per_class = {k: v["n"] for k, v in a["stages"][0]["per_class"].items()}
    assert set(per_class.values()) == {4}


class ExplodingStage(Stage):
    """Counts calls and raises on a chosen call, like a crash half way through a run."""

    kind = "exploding"

    def __init__(self, fail_on: int | None):
        super().__init__("boom")
        self.calls = 0
        self.fail_on = fail_on

    def apply(self, images, batch, ctx):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return StageOutput(images=images)


def test_interrupted_evaluation_resumes_without_redoing_batches(tmp_path):
    dataset: ImageDataset = synthetic_dataset(n=40)
    ctx = make_ctx()
    ctx.classnames = dataset.classnames
    ctx.classifier.head.class_embeddings = ctx.classifier.head.class_embeddings[:4]
    reference = predict_stages(dataset, [CleanStage(), ExplodingStage(None)], ctx, BatchStore(tmp_path / "ref", "h"),
                         batch_size=8, progress=False)
    store = BatchStore(tmp_path / "run", "h")
    crashing = ExplodingStage(fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        predict_stages(dataset, [CleanStage(), crashing], ctx, store, batch_size=8, progress=False)
    assert store.open() == {0, 1}  # the two finished batches were saved on the way out
    resumed = ExplodingStage(None)
    result = predict_stages(dataset, [CleanStage(), resumed], ctx, store, batch_size=8, progress=False)
    assert resumed.calls == 3  # only the 3 unfinished batches of 5
    pd.testing.assert_frame_equal(result, reference, check_dtype=False)
    with pytest.raises(Exception, match="different configuration"):
        BatchStore(tmp_path / "run", "other-hash").open()


@pytest.mark.parametrize("argv", [
    ["run", "--model", "ViT-B-23"],
    ["run", "--dataset", "cifar11"],
    ["run", "--dataset", "cifar10-jpeg", "--data-root", "/nonexistent/path"],
    ["run", "--suite", "no-such-suite"],
    ["run", "--model", "RN50", "--pretrained", "/nonexistent/weights.pt"],
    ["run", "--device", "cuda:7"],
    ["list", "models", "--name", "ViT-B-99"],
])
def test_cli_errors_are_one_line_and_exit_2(argv, capsys, tmp_path):
    code = main([*argv, "--out", str(tmp_path / "x")] if argv[0] == "run" else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("typobench: error:") and "\n" not in err
    assert "Traceback" not in err


def test_cli_bad_option_value_exits_2():
    result = subprocess.run([sys.executable, "-m", "typobench", "run", "--limit", "-3"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_cli_run_and_list(tmp_path, capsys):
    assert main(["run", "--model", "tiny-rn", "--limit", "20", "--suite", "none", "--out", str(tmp_path / "r"), "--cache-dir",
                 str(tmp_path / "c"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in out and "clean" in out
    assert json.loads((tmp_path / "r" / "results.json").read_text())["stages"][0]["n"] == 20
    for topic, expected in (("models", "ViT-B-32"), ("datasets", "cifar10-sample"), ("suites", "fort2021-cifar10")):
        assert main(["list", topic]) == 0
        assert expected in capsys.readouterr().out


def test_every_subcommand_has_help(capsys):
    from typobench.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"run", "list", "stroop", "search-text"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: typobench" in capsys.readouterr().out
