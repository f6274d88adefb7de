"""SCAM's two-way metric per text-area bucket, the reading cost of a defense, and OCR legibility."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import torch

from typobench.cli import main
from typobench.experiments.defend.reading import lexicon
from typobench.harness.results import stage_metrics
from typobench.harness.twoway import area_buckets, bucket_names, two_way_columns, two_way_summary, written_classes
from typobench.typographic import TextStyle, render_patch

TINY = ["--model", "tiny-rn", "--limit", "12", "--batch-size", "12", "--device", "cpu", "--quiet"]


def test_the_two_way_rate_is_the_label_logit_against_the_written_words_logit_alone():
    # sample 0: the label (0) beats the written class (1), though class 2 wins overall; sample 1: the word wins;
    # sample 2: the written word is its own label (a true-label sticker): no two-way score
    logits = torch.tensor([[2.0, 1.0, 9.0], [0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0, 0])
    written = written_classes(["dog", "Dog", "cat"], None, ["cat", "dog", "bird"])
    assert written.tolist() == [1, 1, 0]
    mask = torch.zeros(3, 1, 10, 10, dtype=torch.bool)
    mask[0, :, :1, :1] = True  # 1% of the image
    mask[1, :, :3, :3] = True  # 9%
    columns = two_way_columns(logits, labels, written, mask)
    assert columns["two_way_margin"][:2].tolist() == [1.0, -3.0] and np.isnan(columns["two_way_margin"][2])
    assert np.allclose(columns["text_area"], [0.01, 0.09, 0.0])
    frame = pd.DataFrame({**columns, "pred": [2, 1, 0], "label": [0, 0, 0]})
    summary = two_way_summary(frame)
    assert summary["label_over_word"]["value"] == 0.5 and summary["label_over_word"]["n"] == 2
    by_bucket = {b["bucket"]: b for b in summary["buckets"]}
    assert set(by_bucket) == {"0-1%", "1-2%", "5-10%"}
    assert by_bucket["1-2%"]["label_over_word"]["value"] == 1.0 and by_bucket["5-10%"]["label_over_word"]["value"] == 0.0
    assert by_bucket["0-1%"]["accuracy"]["value"] == 1.0 and by_bucket["0-1%"]["label_over_word"]["n"] == 0


def test_area_buckets_partition_any_areas_and_a_missing_area_is_unknown():
    areas = pd.Series([0.0, 0.0099, 0.01, 0.3, 1.0, np.nan, 0.07])
    names = area_buckets(areas)
    assert set(names) <= {*bucket_names(), "unknown"} and names.iloc[5] == "unknown"
    assert list(names.iloc[[0, 1, 2, 3, 4, 6]]) == ["0-1%", "0-1%", "1-2%", "20-100%", "20-100%", "5-10%"]


def test_a_text_stage_reports_two_way_buckets_that_partition_its_samples(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--cache-dir", str(tmp_path / "cache"), "--suite", "random-wrong-label",
                 "--attack-checks", "0", "--out", str(out)]) == 0
    assert "label over written word (two-way)" in capsys.readouterr().out
    stage = {s["name"]: s for s in json.loads((out / "results.json").read_text())["stages"]}["random-wrong-label"]
    buckets = stage["two_way"]["buckets"]
    assert sum(b["n"] for b in buckets) == stage["n"] == 12 and "unknown" not in {b["bucket"] for b in buckets}
    predictions = pd.read_csv(out / "predictions.csv")
    rows = predictions[predictions["stage"] == "random-wrong-label"]
    assert (rows["written_class"] != rows["label"]).all() and rows["text_area"].between(0, 1).all()
    assert stage["two_way"]["label_over_word"]["value"] == pytest.approx((rows["two_way_margin"] > 0).mean())
    assert stage_metrics(predictions[predictions["stage"] == "clean"], [str(i) for i in range(10)]).get("two_way") is None


def test_a_defense_that_blinds_the_model_reads_less(tmp_path):
    out = tmp_path / "defend"
    assert main(["defend", "--model", "toyclip", "--limit", "20", "--batch-size", "20", "--device", "cpu", "--quiet",
                 "--cache-dir", str(tmp_path / "cache"), "--suite", "none", "--attack-checks", "0", "--lexicon-words",
                 "40", "--out", str(out), "--defense", "input:blur=8"]) == 0
    table = pd.read_csv(out / "defend.csv").set_index("defense")
    assert {"words_alone", "words_alone_lo", "word_retrieval", "lexicon_words"} <= set(table.columns)
    # blur=8 leaves toyclip's words unreadable: well below the undefended model on both scores
    assert table.loc["input:blur=8", "words_alone"] + 0.3 < table.loc["none", "words_alone"]
    assert table.loc["input:blur=8", "word_retrieval"] < table.loc["none", "word_retrieval"]
    assert "| words alone | word retrieval |" in (out / "defend.md").read_text()
    assert json.loads((out / "defend.json").read_text())["rows"][1]["reading"]["lexicon_words"] == 40


def test_the_lexicon_is_a_few_hundred_distinct_words_and_a_bad_size_is_one_line(capsys):
    words = lexicon()
    assert 200 <= len(words) == len(set(words)) and all(w.isalpha() and w.islower() for w in words)
    assert main(["defend", *TINY, "--lexicon-words", "1"]) == 2
    err = capsys.readouterr().err
    assert "--lexicon-words" in err and "got 1" in err and len(err.strip().splitlines()) == 1


ocr = pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None,
                         reason="the ocr extra (rapidocr-onnxruntime) is not installed")


def _sticker(text: str, size: int, occlude: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A 224-px grey image with ``text`` written on it, and the mask of the written pixels."""
    patch = render_patch(TextStyle(text, size=size, fill="black", box="white"), 224)
    image = torch.full((3, 224, 224), 0.5)
    h, w = patch.shape[-2:]
    alpha = patch[3:4]
    image[:, 20:20 + h, 10:10 + w] = alpha * patch[:3] + (1 - alpha) * image[:, 20:20 + h, 10:10 + w]
    mask = torch.zeros(1, 224, 224, dtype=torch.bool)
    mask[:, 20:20 + h, 10:10 + w] = alpha > 0
    if occlude:  # a bar over the middle of the word
        image[:, 20 + h // 5:20 + 4 * h // 5, 10:10 + w] = 0.0
    return image, mask


@ocr
def test_ocr_reads_a_large_clear_word_and_not_a_tiny_or_occluded_one():
    from typobench.harness.legibility import legibility_columns

    cases = [_sticker("apple", 40), _sticker("apple", 4), _sticker("apple", 40, occlude=True)]
    images, masks = torch.stack([c[0] for c in cases]), torch.stack([c[1] for c in cases])
    columns = legibility_columns(images, masks, ["apple"] * 3)
    assert columns["ocr_legible"].tolist() == [True, False, False], columns["ocr_text"]
    assert columns["ocr_text"][0].lower() == "apple"
