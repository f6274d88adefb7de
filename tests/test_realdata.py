"""The issues' end-to-end commands on the shared real data, at small sizes (fail, not skip, under CI=true)."""

from __future__ import annotations

import pandas as pd

from typobench.cli import main
from typobench.harness.results import read_predictions, read_results


def run_cli(tmp_path, *args: str) -> dict:
    out = tmp_path / "run"
    assert main(["run", "--model", "tiny-rn", *args, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 0
    return read_results(out)


def test_imagenet_sample_goh_suite(tmp_path, imagenet_sample_root):
    results = run_cli(tmp_path, "--suite", "goh2021-imagenet", "--dataset", "imagenet-sample",
                      "--data-root", str(imagenet_sample_root), "--limit", "12")
    stages = {s["name"]: s for s in results["stages"]}
    assert results["dataset"]["n"] == 12 and len(stages) == 10
    for word in ("trash", "iPod", "$$$"):
        assert "targeted_success" in stages[word]
        assert 0 < stages[word]["pixel_fraction_mean"] < 0.5
    predictions = read_predictions(tmp_path / "run")
    trash = predictions[predictions.stage == "trash"]
    assert set(trash["text"]) == {"trash"} and set(trash["target"]) == {412}


def test_cifar10_jpeg_linear_probe_with_true_label_sticker(tmp_path, cifar10_jpeg_root):
    results = run_cli(tmp_path, "--suite", "true-label-sticker", "--dataset", "cifar10-jpeg",
                      "--data-root", str(cifar10_jpeg_root), "--head", "linear-probe", "--limit", "30",
                      "--probe-train-limit", "200")
    assert results["head"]["kind"] == "linear-probe"
    assert results["head"]["n_train"] + results["head"]["n_val"] == 200
    assert [s["name"] for s in results["stages"]] == ["clean", "true-label-sticker"]


def test_fort_alternation_on_cifar10_jpeg(tmp_path, cifar10_jpeg_root):
    results = run_cli(tmp_path, "--suite", "fort2021-cifar10", "--dataset", "cifar10-jpeg",
                      "--data-root", str(cifar10_jpeg_root), "--limit", "10", "--model", "tiny-vit")
    names = [s["name"] for s in results["stages"]]
    assert names == ["clean", "sticker-1", "pgd-1", "sticker-2", "pgd-2", "pgd-sticker-only",
                     "pgd-outside-sticker", "pasted-sticker"]
    predictions = read_predictions(tmp_path / "run")
    pgd = predictions[predictions.stage == "pgd-1"]
    assert (pd.to_numeric(pgd["linf"]) <= 4 / 255 + 1e-6).all()
    assert (pgd["target"] != pgd["label"]).all()


def test_search_text_on_cifar10_jpeg(tmp_path, cifar10_jpeg_root, capsys):
    out = tmp_path / "search"
    code = main(["search-text", "--model", "tiny-rn", "--dataset", "cifar10-jpeg", "--data-root", str(cifar10_jpeg_root), "--suite",
                 "random-wrong-label", "--target", "cat", "--target", "ship", "--limit", "20", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    table = pd.read_csv(out / "search_text.csv")
    assert set(table["target"]) == {"cat", "ship"}
    assert {"cat", "ship", "airplane"} <= set(table["text"])
    assert table["success"].between(0, 1).all()
    assert "cat" in capsys.readouterr().out
