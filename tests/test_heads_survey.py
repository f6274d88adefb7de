"""The heads survey (issue 30, item 2: ``typobench heads``): every attention head's direct contribution, its
TextSpan text basis and the effect of ablating its class-token output, on tiny random ViTs; the command's
files and its atlas pages in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers import chromium, images_batch
from test_atlas import _dom, parse
from typobench.cli import main
from typobench.defenses.greedy import zeroshot_classifier
from typobench.harness.config import RunConfig
from typobench.harness.run import execute
from typobench.models import load_model
from typobench.models.attention_heads import head_space, headwise_attention
from typobench.models.units import ablate, edits
from typobench.neurons.heads.survey import (IMAGE_KINDS, SurveyImages, Terms, direct_records, head_ablation,
                                            lexicon_pool, predictions, survey_heads, text_bases)

CLASSES = ["cat", "dog", "ship", "truck"]


def _run(root: Path, model: str, limit: int) -> Path:
    out = root / f"run-{model}"
    execute(RunConfig(model=model, dataset="cifar10-sample", suite="random-wrong-label", limit=limit, batch_size=32,
                      out=str(out), cache_dir=str(root / "cache"), device="cpu", seed=0), progress=False)
    return out


@pytest.fixture(scope="module")
def surveyed(tmp_path_factory) -> Path:
    """``typobench heads`` on a tiny-vit run of 20 images (2 top images per head and image kind)."""
    root = tmp_path_factory.mktemp("heads")
    run = _run(root, "tiny-vit", 20)
    assert main(["heads", "--from", str(run), "--device", "cpu", "--quiet", "--top-images", "2", "--text-spans", "3",
                 "--out", str(root / "survey")]) == 0
    return root / "survey"


def test_shares_of_the_heads_and_the_rest_sum_to_one(surveyed):
    report = json.loads((surveyed / "heads.json").read_text())
    assert len(report["heads"]) == 4  # tiny-vit: 2 blocks x 2 heads, every one surveyed
    shares = sum(h["direct"]["clean"]["share"] for h in report["heads"])
    assert shares + report["embedding"]["rest_share"] == pytest.approx(1.0, abs=1e-6)
    assert report["embedding"]["max_residual"] < 1e-5
    assert all(h["direct"][images]["mean_norm"] > 0 for h in report["heads"] for images in IMAGE_KINDS)
    assert all(len(h["text_basis"]) == len(h["text_basis_typographic"]) == 3 for h in report["heads"])  # --text-spans 3


def test_direct_records_share_what_each_term_writes_along_the_embedding():
    heads = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # one image, two heads, D = 2
    rest = torch.tensor([[1.0, 2.0]])
    records, summary = direct_records(Terms(heads, rest, heads.sum(1) + rest, torch.zeros(2, 1)))
    # f = (2, 4), |f|^2 = 20: the heads write 2/20 and 8/20 of it along itself, the rest 10/20.
    assert [r["share"] for r in records] == pytest.approx([0.1, 0.4])
    assert summary["rest_share"] == pytest.approx(0.5) and summary["max_residual"] == pytest.approx(0.0)
    assert [r["mean_norm"] for r in records] == pytest.approx([1.0, 2.0])
    _, off = direct_records(Terms(heads, rest, 2 * (heads.sum(1) + rest), torch.zeros(2, 1)))
    assert off["max_residual"] == pytest.approx(0.5)  # terms that do not sum to the embedding show (|s - 2s| / |2s|)


def test_text_basis_picks_the_text_a_head_writes_along():
    generator = torch.Generator().manual_seed(0)
    pool = lexicon_pool(CLASSES, [f"a photo of thing {i}" for i in range(20)])
    texts = F.normalize(torch.randn(len(pool), 16, generator=generator), dim=1)
    planted = pool.index("a photo of thing 7")
    contributions = 0.05 * torch.randn(50, 2, 16, generator=generator)
    contributions[:, 1] += torch.randn(50, 1, generator=generator) * 3 * texts[planted]
    bases = text_bases(contributions, texts, pool, 3)
    assert bases[1][0]["text"] == "a photo of thing 7" and bases[1][0]["explained_variance"] > 0.9
    assert bases[0][0]["text"] != "a photo of thing 7" and bases[0][0]["explained_variance"] < 0.5
    assert len(bases[1]) == 3 and len({entry["text"] for entry in bases[1]}) == 3


@pytest.fixture(scope="module")
def tiny_vit():
    loaded = load_model("tiny-vit", device="cpu")
    return loaded, zeroshot_classifier(loaded, CLASSES, ["a photo of a {}."])


def _data(n: int = 12) -> SurveyImages:
    return SurveyImages(images_batch(n, 32, seed=1), images_batch(n, 32, seed=2), torch.arange(n) % len(CLASSES),
                        [f"s{i}" for i in range(n)], CLASSES)


def test_class_token_ablation_acts_only_through_the_class_token(tiny_vit):
    loaded, classifier = tiny_vit
    space = head_space(classifier, 2)
    data = _data()
    pool = lexicon_pool(CLASSES, ["a photo of text"])
    texts = torch.randn(len(pool), classifier.features(data.clean[:1]).shape[-1])
    block0 = classifier.clip_model.visual.transformer.resblocks[0].attn
    width = block0.out_proj.weight.shape[0] // 2
    saved = block0.out_proj.weight.detach().clone()
    with torch.no_grad():  # head resblocks.0.attn:1 writes nothing: its out_proj columns are zero
        block0.out_proj.weight[:, width:] = 0
    try:
        survey = survey_heads(classifier, space, data, texts, pool, ablation="zero", top_k=2, batch_size=8)
        silent = survey.heads[space.index("resblocks.0.attn:1")]
        assert silent["direct"]["clean"]["mean_norm"] == 0.0
        assert all(silent["ablation"][images]["delta"]["value"] == 0.0 for images in IMAGE_KINDS)
        # The last block's heads reach the embedding through the class token alone: ablating their class-token row
        # is ablating them everywhere.
        last = space.index("resblocks.1.attn:0")
        for images in IMAGE_KINDS:
            with headwise_attention(classifier, space), ablate(space, [last]):
                everywhere = predictions(classifier, data.of(images), 8)
            assert torch.equal(survey.predictions["resblocks.1.attn:0"][images], everywhere)
            correct = (everywhere == data.labels).double().mean() - (survey.predictions["base"][images] ==
                                                                      data.labels).double().mean()
            assert survey.heads[last]["ablation"][images]["delta"]["value"] == pytest.approx(float(correct))
    finally:
        with torch.no_grad():
            block0.out_proj.weight.copy_(saved)


def test_class_token_ablation_of_an_early_head_leaves_its_other_tokens_alone(tiny_vit):
    from typobench.defenses.ablate import unit_edit

    _, classifier = tiny_vit
    space = head_space(classifier, 2)
    pixels = images_batch(6, 32, seed=3)
    first = space.index("resblocks.0.attn:0")
    values = torch.randn(space.total, space.layers[0].unit_size)
    with torch.no_grad():
        base = classifier(pixels)
        with head_ablation(classifier, space, first, values):
            survey = classifier(pixels)
        with unit_edit(classifier, space, edits(space, [first], values), cls_only=True):
            cls_row = classifier(pixels)
        with unit_edit(classifier, space, edits(space, [first], values)):
            everywhere = classifier(pixels)
    assert torch.equal(survey, cls_row)
    # In block 0 the other tokens' rows still feed block 1's attention: ablating them too is another model.
    assert not torch.allclose(survey, base) and not torch.allclose(survey, everywhere, atol=1e-5)


def test_reported_accuracy_changes_are_those_of_the_predictions(surveyed):
    report = json.loads((surveyed / "heads.json").read_text())
    rows = pd.read_csv(surveyed / "heads_predictions.csv")
    assert len(rows) == 2 * report["images"]["n"] == 40
    for images in IMAGE_KINDS:
        part = rows[rows["images"] == images]
        base = (part["base"] == part["label"]).mean()
        assert report["base"][images]["accuracy"] == pytest.approx(base)
        assert report["base"][images]["agrees_with_run"] == 1.0  # predicted as the run predicted
        for record in report["heads"]:
            ablated = (part[record["name"]] == part["label"]).mean()
            delta = record["ablation"][images]["delta"]
            assert record["ablation"][images]["accuracy"] == pytest.approx(ablated)
            assert delta["value"] == pytest.approx(ablated - base)
            assert delta["ci95"][0] <= delta["value"] <= delta["ci95"][1] and delta["n"] == 20


def test_the_atlas_shows_every_head_with_its_images_in_chromium(surveyed, tmp_path):
    browser = chromium()
    atlas = tmp_path / "atlas"
    shutil.copytree(surveyed / "atlas", atlas)
    report = json.loads((surveyed / "heads.json").read_text())
    index = _dom(browser, atlas / "heads.html")
    assert index.html_attrs.get("data-ready") == "1" and index.html_attrs.get("data-images-broken") == "0"
    dumped = _dump(browser, atlas / "heads.html")
    body = re.search(r'<table id="heads">.*?<tbody>(.*?)</tbody>', dumped, re.S).group(1)
    assert body.count("<tr>") == len(report["heads"]) == 4
    pages = [link for link in index.links if link.startswith("heads-")]
    assert sorted(pages) == sorted(f"heads-{h['name'].replace(':', '-')}.html" for h in report["heads"])
    record = report["heads"][-1]
    page = _dom(browser, atlas / f"heads-{record['name'].replace(':', '-')}.html")
    shown = sum(len(record["top_images"][images]) for images in IMAGE_KINDS)
    assert shown == 4 and page.html_attrs.get("data-images-ok") == str(shown)
    assert page.html_attrs.get("data-images-broken") == "0" and "heads.html" in page.links
    assert record["text_basis"][0]["text"] in "".join(page.text)
    # The check can fail: a head page whose image is gone reports it.
    missing = atlas / parse((atlas / f"heads-{record['name'].replace(':', '-')}.html").read_text()).images[0]
    missing.unlink()
    assert _dom(browser, atlas / f"heads-{record['name'].replace(':', '-')}.html").html_attrs.get(
        "data-images-broken") == "1"


def _dump(browser: str, path: Path) -> str:
    from helpers import headless

    done = headless(browser, "--dump-dom", "--allow-file-access-from-files", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("model,flags,message", [
    ("tiny-rn", [], "typobench heads: tiny-rn's image tower is not a ViT (no attention heads); use a ViT model such "
                    "as toyclip-vit"),
    ("tiny-vit", ["--stage", "nope"], "typobench heads: --stage 'nope' is not an attack stage of this run: use one "
                                      "of random-wrong-label"),
])
def test_bad_runs_exit_2_with_one_line(tmp_path, capsys, model, flags, message):
    run = _run(tmp_path, model, 4)
    capsys.readouterr()
    assert main(["heads", "--from", str(run), "--device", "cpu", "--quiet", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(message) and len(err.splitlines()) == 1
    assert not (run / "heads").exists()
