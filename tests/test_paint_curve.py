"""The PAINT curve: alpha is chosen on the selection images within the clean budget and scored on other images;
its end points are the two checkpoints; the command writes the table and the plot."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from typobench.cli import main
from typobench.data import load_dataset
from typobench.defenses.greedy import zeroshot_classifier
from typobench.defenses.prefix import dataset_tensors
from typobench.experiments.paint import choose_alpha
from typobench.harness.config import limit_dataset
from typobench.models import load_model


def test_alpha_is_the_best_typographic_within_the_clean_budget():
    rows = [{"alpha": 0.0, "selection_clean": 0.80, "selection_typographic": 0.20},
            {"alpha": 0.5, "selection_clean": 0.795, "selection_typographic": 0.50},
            {"alpha": 1.0, "selection_clean": 0.60, "selection_typographic": 0.70}]
    assert choose_alpha(rows, 0.80, budget=1.0) == 0.5  # alpha 1 costs 20 points of clean accuracy
    assert choose_alpha(rows, 0.80, budget=25.0) == 1.0
    assert choose_alpha(rows, 0.80, budget=0.0) == 0.0
    tied = [dict(r, selection_typographic=0.5) for r in rows]
    assert choose_alpha(tied, 0.80, budget=100) == 0.0  # ties go to the smaller alpha


def test_cli_curve_ends_at_each_checkpoint_and_says_what_chose_and_what_scored(tmp_path, capsys):
    other = load_model("tiny-rn", device="cpu", seed=1)
    checkpoint = tmp_path / "b.safetensors"
    save_file({k: v.contiguous() for k, v in other.model.state_dict().items()}, str(checkpoint))
    out = tmp_path / "paint"
    code = main(["defense", "paint-curve", "--model", "tiny-rn", "--checkpoint", str(checkpoint), "--alphas", "0,1",
                 "--dataset", "cifar10-sample", "--split", "test", "--limit", "10", "--score-split", "test",
                 "--score-limit", "10", "--device", "cpu", "--out", str(out)])
    assert code == 0 and "scored on cifar10-sample test (10 other images)" in capsys.readouterr().out
    record = json.loads((out / "paint.json").read_text())
    assert {p.name for p in out.iterdir()} == {"paint.json", "paint.csv", "paint.md", "paint.png"}
    assert record["selection"]["sample_hash"] != record["held_out"]["sample_hash"]
    assert record["chosen_alpha"] in (0.0, 1.0) and "chosen_vs_alpha_0_held_out" in record
    base = load_model("tiny-rn", device="cpu")
    full = load_dataset("cifar10-sample", split="test", transform=base.pixel_transform())
    held = limit_dataset(full, 10, 0, holdout=10)
    images, labels = dataset_tensors(held)
    for model, row in ((base, record["rows"][0]), (other, record["rows"][1])):
        with torch.no_grad():
            accuracy = (zeroshot_classifier(model, held.classnames, held.templates)(images).argmax(-1) == labels)
        assert row["held_out_clean"] == pytest.approx(float(accuracy.float().mean()))
    assert main(["defense", "paint-curve", "--model", "tiny-rn", "--checkpoint", str(checkpoint), "--alphas", "0,2",
                 "--dataset", "cifar10-sample", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "argument --alphas: expected distinct comma-separated numbers in [0, 1]" in err and "got '0,2'" in err
