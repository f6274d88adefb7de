"""``typobench neurons``: layer hooks, attribution, ablation, baselines, the multimodal test, and the CLI."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from typobench.models.classifier import ImageClassifier
from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.heads.linear_probe import LinearProbeHead
from typobench.heads.zeroshot import ZeroShotHead
from typobench.models import load_model
from typobench.neurons.proof.ablation import matched_sets, random_sets
from typobench.neurons.after_run import explain_run
from typobench.neurons.analysis import analyze
from typobench.neurons.blame.events import find_events
from typobench.neurons.blame.attribution import attribute, blame_table, linearised_logits
from typobench.neurons.cards.card import MultimodalTest, class_image_z, control_max, control_words, multimodal_pass, text_z, zscore
from typobench.models.units import ablate, capture, find_layers
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.scoring import Scorer
from typobench.harness.config import RunConfig
from typobench.harness.run import execute


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn", device="cpu").model


@pytest.fixture(scope="module")
def tiny_vit():
    return load_model("tiny-vit", device="cpu").model


def _pixels(n: int, side: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed)).to(dtype)


# -- hooks ------------------------------------------------------------------------------------------------


def test_resnet_neurons_are_layer4_channels(tiny_rn):
    space = find_layers(tiny_rn)
    [layer] = space.layers
    assert layer.name == "layer4" and layer.module is tiny_rn.visual.layer4 and layer.units == 256
    assert space.names[0] == "layer4:0" and space.names[-1] == "layer4:255" and space.index("layer4:17") == 17
    with capture(space) as store:
        tiny_rn.encode_image(_pixels(2, 64))
    assert store["layer4"].shape == (2, 256, 2, 2)
    assert layer.per_position(store["layer4"]).shape == (2, 4, 256)


def test_vit_neurons_are_last_block_mlp_units(tiny_vit):
    space = find_layers(tiny_vit)
    [layer] = space.layers
    blocks = tiny_vit.visual.transformer.resblocks
    assert layer.name == f"resblocks.{len(blocks) - 1}.mlp" and layer.module is blocks[-1].mlp.gelu
    assert layer.units == blocks[-1].mlp.c_fc.out_features == 128
    with capture(space) as store:
        tiny_vit.encode_image(_pixels(3, 32))
    assert layer.per_position(store[layer.name]).shape == (3, 17, 128)  # 16 patches + class token
    both = find_layers(tiny_vit, vit_blocks=2)
    assert [l.name for l in both.layers] == ["resblocks.0.mlp", "resblocks.1.mlp"] and both.total == 256
    assert both.locate(130) == (both.layers[1], 2) and both.names[130] == "resblocks.1.mlp:2"


def test_other_towers_are_refused():
    with pytest.raises(UsageError, match="ModifiedResNet"):
        find_layers(nn.Sequential(nn.Linear(2, 2)))


def test_ablation_zeroes_exactly_the_chosen_channels_and_restores(tiny_rn):
    space = find_layers(tiny_rn)
    layer = space.layers[0]
    x = _pixels(2, 64, seed=1)
    with capture(space) as store:
        reference = tiny_rn.encode_image(x)
    before = store["layer4"].clone()
    chosen = [3, 40, 200]
    with ablate(space, chosen), capture(space) as store:
        edited = tiny_rn.encode_image(x)
    after = store["layer4"]
    others = [c for c in range(256) if c not in chosen]
    assert before[:, chosen].abs().sum() > 0 and torch.all(after[:, chosen] == 0)
    assert torch.equal(after[:, others], before[:, others])
    assert not torch.allclose(edited, reference)
    values = torch.arange(256, dtype=torch.float32)
    with ablate(space, chosen, values), capture(space) as store:
        tiny_rn.encode_image(x)
    assert torch.all(store["layer4"][:, 40] == 40.0) and torch.equal(store["layer4"][:, others], before[:, others])
    with pytest.raises(RuntimeError), ablate(space, chosen):
        raise RuntimeError("boom")
    assert len(layer.module._forward_hooks) == 0
    assert torch.equal(tiny_rn.encode_image(x), reference)


def test_ablation_of_vit_units(tiny_vit):
    space = find_layers(tiny_vit)
    layer = space.layers[0]
    x = _pixels(2, 32, seed=2)
    with capture(space) as store:
        tiny_vit.encode_image(x)
    before = layer.per_position(store[layer.name]).clone()
    with ablate(space, [5, 77]), capture(space) as store:
        tiny_vit.encode_image(x)
    after = layer.per_position(store[layer.name])
    assert torch.all(after[..., [5, 77]] == 0) and before[..., [5, 77]].abs().sum() > 0
    keep = [u for u in range(128) if u not in (5, 77)]
    assert torch.equal(after[..., keep], before[..., keep])
    assert len(layer.module._forward_hooks) == 0


@pytest.mark.parametrize("name,side,vit_blocks", [("tiny-rn", 64, 1), ("tiny-vit", 32, 1), ("tiny-vit", 32, 2)])
def test_scorer_reruns_only_the_tail_and_matches_the_full_model(name, side, vit_blocks):
    loaded = load_model(name, device="cpu")
    torch.manual_seed(0)
    classifier = ImageClassifier.of(loaded, nn.Linear(32, 5))
    space = find_layers(classifier, vit_blocks)
    images = _pixels(5, side, seed=5)
    scorer = Scorer(classifier, space, images, batch_size=2)
    assert scorer.fast and scorer.acts.shape == (5, space.total)
    units = list(range(1, space.total, 2))  # half the units: a visible change even on a random tower
    values = torch.rand(space.total)
    for vals in (None, values):
        with ablate(space, units, vals), torch.no_grad():
            full = classifier(images)
        assert torch.allclose(scorer.logits(units, vals), full, rtol=1e-4, atol=1e-6)
        assert (full - scorer.base_logits).abs().max() > 1e-4
    assert torch.equal(scorer.logits(), scorer.base_logits)


# -- attribution ------------------------------------------------------------------------------------------


class ToyVisual(nn.Module):
    """A 'ResNet' whose layer4 feeds a bias-free linear head over spatially pooled channels."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer4 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 4, bias=False)

    def forward(self, x):
        return self.head(self.layer4(x).mean((2, 3)))


def test_attribution_of_a_linear_head_is_exact():
    toy = ToyVisual()
    space = find_layers(toy)
    assert space.total == 6
    x = _pixels(5, 8, seed=3)
    a, b = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 3])
    result = attribute(toy, space, x, a, b, batch_size=2)
    pooled = toy.layer4(x).mean((2, 3))
    w = toy.head.weight
    expected = (w[b] - w[a]) * pooled  # d(logit_b - logit_a)/d act = (w_b - w_a)/P, times act, summed over P
    assert torch.allclose(result.attr, expected, atol=1e-6)
    logits = toy(x)
    margin = logits.gather(1, b.view(-1, 1)).squeeze(1) - logits.gather(1, a.view(-1, 1)).squeeze(1)
    assert torch.allclose(result.attr.sum(1), margin, atol=1e-5)  # sums to the logit difference
    assert torch.allclose(result.margin, margin, atol=1e-6)
    assert torch.allclose(result.acts, pooled, atol=1e-6)


def test_attribution_equals_finite_differences_on_tiny_rn():
    """grad x act of unit u is the derivative of the margin when u is scaled by (1 + e) at every position."""
    model = load_model("tiny-rn", device="cpu").model.double()
    space = find_layers(model)
    x = _pixels(2, 64, seed=4, dtype=torch.float64)

    class Head(nn.Module):  # pixels -> 'logits': the embedding itself
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, pixels):
            return self.clip.encode_image(pixels)

    wrapped = Head(model)
    a, b = torch.tensor([0, 3]), torch.tensor([5, 1])
    result = attribute(wrapped, space, x, a, b)
    layer = space.layers[0]

    def margin(unit: int, eps: float) -> torch.Tensor:
        def hook(module, inputs, output):
            scale = torch.ones(output.shape[1], dtype=output.dtype)
            scale[unit] = 1 + eps
            return output * scale.view(1, -1, 1, 1)

        handle = layer.module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                out = wrapped(x)
        finally:
            handle.remove()
        return out[torch.arange(2), b] - out[torch.arange(2), a]

    units = torch.argsort(result.attr.abs().sum(0), descending=True)[:3].tolist()
    for unit in units:
        fd = (margin(unit, 1e-4) - margin(unit, -1e-4)) / 2e-4
        assert torch.allclose(result.attr[:, unit].double(), fd, rtol=1e-3, atol=1e-7), unit


class ToyClassifier(nn.Module):
    """features = bias-free projection of pooled layer4 channels (degree-1 homogeneous), then a typobench head."""

    def __init__(self, head: nn.Module):
        super().__init__()
        torch.manual_seed(1)
        self.visual = nn.Module()
        self.visual.layer4 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.proj = nn.Linear(6, 5, bias=False)
        self.head = head

    def features(self, x):
        return self.proj(self.visual.layer4(x).mean((2, 3)))

    def forward(self, x):
        return self.head(self.features(x))


def test_attribution_holds_the_heads_normalisation_fixed():
    """Both heads score normalize(f): logits are unchanged, and grad x act then decomposes the margin."""
    torch.manual_seed(0)
    x = _pixels(3, 8, seed=6)
    a, b = torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])
    for head in (ZeroShotHead(torch.nn.functional.normalize(torch.randn(4, 5), dim=-1), logit_scale=50.0),
                 LinearProbeHead(torch.randn(4, 5), torch.zeros(4))):
        toy = ToyClassifier(head)
        with torch.no_grad():
            assert torch.allclose(linearised_logits(toy, x), toy(x), atol=1e-5)
        space = find_layers(toy)
        fixed = attribute(toy, space, x, a, b)
        scale_free = attribute(toy, space, x, a, b, detach_norm=False)
        assert torch.allclose(fixed.margin, scale_free.margin, atol=1e-5)
        assert torch.allclose(fixed.attr.sum(1), fixed.margin, atol=1e-4)  # the margin, decomposed
        assert scale_free.attr.sum(1).abs().max() < 1e-4  # Euler: a scale-free head's grad x act sums to 0
    loaded = load_model("tiny-rn", device="cpu")
    for head in (ZeroShotHead(torch.nn.functional.normalize(torch.randn(4, 32), dim=-1), logit_scale=50.0),
                 LinearProbeHead(torch.randn(4, 32), torch.randn(4))):
        classifier = ImageClassifier.of(loaded, head)
        with torch.no_grad():
            assert torch.allclose(linearised_logits(classifier, _pixels(2, 64)), classifier(_pixels(2, 64)), atol=1e-5)


def test_blame_table_ranks_by_attacked_minus_clean():
    attacked = torch.tensor([[3.0, 1.0, 0.0], [5.0, 1.0, 2.0]])
    clean = torch.tensor([[3.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    table = blame_table(attacked, clean, ["l:0", "l:1", "l:2"], rank_by="diff", per_event_k=1)
    assert table["neuron"].tolist() == ["l:1", "l:2", "l:0"]  # diff means 1, 1 (tie: stable), 0
    assert table["mean_attr_diff"].tolist() == [1.0, 1.0, 0.0]
    assert table["share"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    attacked_rank = blame_table(attacked, clean, ["l:0", "l:1", "l:2"], rank_by="attacked")
    assert attacked_rank["neuron"].tolist()[0] == "l:0"


def test_added_ranking_skips_units_that_only_lost_support_for_the_true_class():
    names = ["reads:0", "occluded:1", "idle:2"]
    attacked = torch.tensor([[1.0, -1.0, 0.0]])
    clean = torch.tensor([[0.0, -5.0, 0.0]])  # unit 1 argued for y on the clean image; the sticker hid it
    assert blame_table(attacked, clean, names, rank_by="diff")["neuron"].tolist()[0] == "occluded:1"
    added = blame_table(attacked, clean, names)
    assert added["neuron"].tolist() == ["reads:0", "idle:2", "occluded:1"]
    assert added["share"].tolist() == pytest.approx([0.2, 0.0, 0.8])  # shares of the total difference (5)


# -- baselines --------------------------------------------------------------------------------------------


def test_random_baselines_are_distinct_deterministic_and_exclude_the_blamed():
    blamed = [0, 1, 2, 3, 4]
    sets = random_sets(40, 5, draws=6, seed=7, exclude=blamed)
    assert len(sets) == 6 and len({tuple(s) for s in sets}) == 6
    assert all(len(s) == 5 and not set(s) & set(blamed) for s in sets)
    assert sets == random_sets(40, 5, draws=6, seed=7, exclude=blamed)
    assert sets != random_sets(40, 5, draws=6, seed=8, exclude=blamed)
    with pytest.raises(UsageError):
        random_sets(6, 5, draws=2, seed=0, exclude=blamed)


def test_activation_matched_baselines_match_and_are_distinct():
    means = torch.linspace(0, 1, 100)
    blamed = [10, 50, 90]
    sets = matched_sets(means, blamed, draws=4, seed=1, pool=8)
    assert len(sets) == 4 and len({tuple(s) for s in sets}) == 4
    assert sets == matched_sets(means, blamed, draws=4, seed=1, pool=8)
    for chosen in sets:
        assert not set(chosen) & set(blamed) and len(set(chosen)) == 3
        for b in blamed:  # each blamed unit has a partner among its 8 nearest (|index gap| <= 4 here)
            assert any(abs(c - b) <= 5 for c in chosen)
    random_gap = np.mean([abs(means[c] - means[b]).item() for s in random_sets(100, 3, 4, 1, blamed)
                          for c, b in zip(s, blamed)])
    matched_gap = np.mean([min(abs(means[c] - means[b]).item() for c in s) for s in sets for b in blamed])
    assert matched_gap < random_gap


# -- events and the multimodal test ------------------------------------------------------------------------


def test_events_are_failures_lifts_and_hijacks():
    rows = [
        # stage, sample, index, label, pred, target, text
        ("clean", "a", 0, 1, 1, -1, ""), ("atk", "a", 0, 1, 2, 2, "two"),  # failure 1 -> 2
        ("clean", "b", 1, 1, 0, -1, ""), ("atk", "b", 1, 1, 1, 3, "three"),  # lift 0 -> 1
        ("clean", "c", 2, 0, 3, -1, ""), ("atk", "c", 2, 0, 2, 2, "two"),  # hijack 3 -> 2
        ("clean", "d", 3, 0, 0, -1, ""), ("atk", "d", 3, 0, 0, 2, "two"),  # resisted
        ("clean", "e", 4, 0, 3, -1, ""), ("atk", "e", 4, 0, 1, 2, "two"),  # drift: no event
    ]
    frame = pd.DataFrame(rows, columns=["stage", "sample_id", "index", "label", "pred", "target", "text"])
    clean = dict(zip(frame[frame.stage == "clean"].sample_id, frame[frame.stage == "clean"].pred))
    events = find_events(frame, "atk", clean, ["zero", "one", "two", "three"])
    assert events[["sample_id", "kind", "from", "to", "group"]].values.tolist() == [
        ["a", "failure", 1, 2, "two"], ["b", "lift", 0, 1, "three"], ["c", "hijack", 3, 2, "two"]]
    only = find_events(frame, "atk", clean, ["zero", "one", "two", "three"], kinds=("failure",))
    assert only["sample_id"].tolist() == ["a"]


def test_multimodal_test_needs_both_the_images_and_the_written_name():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    acts = torch.zeros(9, 3)
    acts[labels == 1, 0] = 1.0  # unit 0: images of class 1
    acts[labels == 1, 1] = 1.0  # unit 1: images of class 1 too
    acts[labels == 2, 2] = 1.0  # unit 2: images of class 2
    z_img, counts = class_image_z(acts, labels, 3)
    assert counts.tolist() == [3, 3, 3] and z_img[1, 0] > 1 and z_img[0, 0] < 0
    z_txt_class = torch.zeros(3, 3)
    z_txt_class[1, 0] = 3.0  # unit 0 also reads "class 1"
    z_txt_class[2, 1] = 3.0  # unit 1 reads another class's name
    passed = multimodal_pass(z_img, z_txt_class, counts, MultimodalTest(1.0, 2.0, 3))
    assert passed[:, 0].tolist() == [False, True, False]
    assert not passed[:, 1].any() and not passed[:, 2].any()
    assert not multimodal_pass(z_img, z_txt_class, counts, MultimodalTest(1.0, 2.0, 4)).any()  # too few images
    beaten = torch.full((3, 3), -math.inf)
    beaten[1, 0] = 3.5  # a length-matched non-class word excites unit 0 more than the name of class 1
    assert not multimodal_pass(z_img, z_txt_class, counts, MultimodalTest(1.0, 2.0, 3), beaten)[:, 0].any()
    assert multimodal_pass(z_img, z_txt_class, counts, MultimodalTest(1.0, 2.0, 3), beaten - 1.0)[1, 0]


def test_control_words_are_non_class_words_of_similar_length():
    words = ["cat", "automobile", "dog", "key", "microscope", "the", "newspaper", "sun"]
    class_word = [0, 1, 2]  # cat, automobile, dog
    controls = control_words(words, class_word, slack=1)
    assert [[words[j] for j in c] for c in controls] == [["key", "the", "sun"], ["microscope", "newspaper"],
                                                         ["key", "the", "sun"]]
    z = torch.arange(16.0).view(8, 2)
    assert control_max(z, controls)[1].tolist() == [12.0, 13.0]  # newspaper's row
    assert control_words(words, [0, -1], slack=0)[1] == []


def test_text_facet_discounts_what_every_unit_responds_to():
    torch.manual_seed(0)
    acts = torch.rand(6, 5) * 0.1
    acts[0] += 3.0  # word 0 (a long word: lots of ink) excites every unit
    acts[2, 1] += 1.0  # unit 1 reads word 2
    z = text_z(acts)
    assert z[:, 1].argmax() == 2 and z[2, 1] > 2.0
    assert z[0].abs().max() < 1.0  # the shared response is not "reading"
    assert zscore(acts, 0)[0].min() > 2.0  # ... which a plain z-score over words would call it


# -- the command on tiny finished runs -----------------------------------------------------------------


def _colour_folder(root: Path, per_class: int = 10, side: int = 48) -> Path:
    """train/ and test/ ImageFolders of noisy colour fields: a linear probe on a random tower separates them,
    and text on top moves some predictions -- failures to explain."""
    rng = np.random.default_rng(0)
    colours = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200), "yellow": (220, 210, 40)}
    for split in ("train", "test"):
        for name, rgb in colours.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = np.array(rgb, dtype=float) + rng.normal(0, 30, size=(side, side, 3))
                Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / split / name / f"{i:02d}.png")
    return root


MINI_SUITE = """
name = "mini"
description = "a wrong class name on a white sticker, and a targeted PGD (replayed by batch)"
protocol_version = 1

[[stage]]
name = "clean"
kind = "clean"

[[stage]]
name = "sticker"
kind = "text"
words = "wrong-label"
target = "written"
[stage.placement]
policy = "random"
[stage.style]  # fits the 32 px tiny-vit without shrinking: a big white box that moves predictions
font = "sans-bold"
size = 0.2
padding = 0.4
fill = "black"
box = "white"

[[stage]]
name = "pgd"
kind = "pgd"
eps = "32/255"
step_size = "8/255"
steps = 5
target = "wrong-label"
"""

OUTPUTS = ["neurons.json", "neurons_blame.csv", "neurons_ablation.csv", "neurons_cards.csv", "neurons.md"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("neurons")
    _colour_folder(root / "colours")
    (root / "mini.toml").write_text(MINI_SUITE)
    # "$$$" (Goh et al.'s piggy-bank text) must be drawn as written, not parsed as a maths formula.
    (root / "vocab.txt").write_text("# test words\ntable\ncloud\nlamp\n\nriver\n$$$\n")
    return root


def _run(workdir: Path, model: str, suite: str) -> Path:
    out = workdir / f"run-{model}"
    execute(RunConfig(model=model, suite=suite, dataset="folder", data_root=str(workdir / "colours"),
                      head="linear-probe", limit=40, batch_size=16, out=str(out),
                      cache_dir=str(workdir / "cache"), device="cpu"), progress=False)
    return out


def _neurons(run: Path, *extra: str) -> int:
    return main(["neurons", "--from", str(run), "--top-k", "4", "--draws", "2", "--device", "cpu", "--quiet",
                 "--vocab", str(run.parent / "vocab.txt"), *extra])


def _check_outputs(out: Path, layer_pattern: str) -> dict:
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "neurons.json").read_text())
    analysed = [a for a in report["analyses"] if a.get("n_events")]
    assert analysed, "the tiny run should have failures to explain"
    for entry in analysed:
        assert entry["regeneration"]["mismatches"] == 0  # attacked images regenerated exactly
        assert len(entry["blamed"]) == 4 and all(re.fullmatch(layer_pattern, n) for n in entry["blamed"])
        assert set(entry["ablation"]) == {"zero", "mean"}
        texts = {"beats both baselines", "beats only the random baseline", "beats only the matched baseline",
                 "does NOT beat the baselines"}
        assert {entry["verdict_detail"][m]["text"] for m in ("zero", "mean")} <= texts
    ablation = pd.read_csv(out / "neurons_ablation.csv")
    stage_rows = ablation[ablation.scope == "stage"]
    assert set(stage_rows.selection) == {"none", "blamed", "random", "matched"}
    assert (stage_rows[stage_rows.selection == "random"].groupby(["stage", "kind", "split", "mode"]).size() == 2).all()
    for entry in analysed:  # >= 10 events: blame on one half, ablation on the other
        assert (entry["verdict_split"] == "held-out") == (entry["n_events"] >= 10)
        if entry["held_out"]:
            assert entry["held_out"]["n_fit"] + entry["held_out"]["n_test"] == entry["n_events"]
    unedited = stage_rows[stage_rows.selection == "none"]
    assert (unedited.restored == 0).all() and (unedited.effect_removed == 0).all()  # events really are events
    blame = pd.read_csv(out / "neurons_blame.csv")
    assert blame.neuron.str.fullmatch(layer_pattern).all()
    cards = pd.read_csv(out / "neurons_cards.csv")
    assert len(cards) == len(report["cards"]["neurons"]) > 0
    for card in cards.card:
        assert (out / card).stat().st_size > 5000
    assert report["cards"]["vocabulary"]["n"] == 4 + 5  # 4 class names + 5 words from --vocab
    md = (out / "neurons.md").read_text()
    assert "## Neuron cards" in md and cards.card.iloc[0] in md
    return report


def test_cli_on_a_tiny_resnet_run(workdir):
    run = _run(workdir, "tiny-rn", "random-wrong-label")
    assert _neurons(run) == 0
    report = _check_outputs(run, r"layer4:\d+")
    assert report["layers"] == [{"name": "layer4", "module": "clip_model.visual.layer4", "kind": "resnet-channel",
                                 "units": 256}]


def test_cli_on_a_tiny_vit_run_with_a_batch_replayed_pgd_stage(workdir):
    run = _run(workdir, "tiny-vit", str(workdir / "mini.toml"))
    out = workdir / "vit-neurons"
    assert _neurons(run, "--out", str(out), "--stage", "pgd", "--stage", "sticker") == 0
    report = _check_outputs(out, r"resblocks\.1\.mlp:\d+")
    assert {a["stage"] for a in report["analyses"] if a.get("n_events")} == {"sticker", "pgd"}
    assert not (run / "neurons.json").exists()  # --out respected


def test_from_a_folder_without_results_is_a_one_line_usage_error(tmp_path, capsys):
    assert main(["neurons", "--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("typobench: error:") and "results.json" in err and "\n" not in err


def test_unknown_stage_is_a_one_line_usage_error(workdir, capsys):
    run = workdir / "run-tiny-rn"
    if not (run / "results.json").exists():
        run = _run(workdir, "tiny-rn", "random-wrong-label")
    assert main(["neurons", "--from", str(run), "--stage", "nope", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "random-wrong-label" in err and "\n" not in err


def test_cli_on_a_zero_shot_run_without_failures_still_writes_every_output(tmp_path):
    """Random tiny towers under a zero-shot head predict one class for everything: nothing to blame, said so."""
    run = tmp_path / "run"
    execute(RunConfig(model="tiny-rn", suite="random-wrong-label", limit=40, batch_size=16, out=str(run),
                      cache_dir=str(tmp_path / "cache"), device="cpu"), progress=False)
    (tmp_path / "vocab.txt").write_text("table\n")
    assert main(["neurons", "--from", str(run), "--device", "cpu", "--quiet", "--vocab", str(tmp_path / "vocab.txt")]) == 0
    for name in OUTPUTS:
        assert (run / name).is_file(), name
    report = json.loads((run / "neurons.json").read_text())
    assert all(a["n_events"] == 0 for a in report["analyses"]) and report["cards"]["neurons"] == []
    assert "no events" in (run / "neurons.md").read_text()
    assert (run / "neuron_cards").is_dir()


def _neurons_suite(workdir: Path) -> Path:
    """The mini suite's sticker stage with a [neurons] table."""
    suite = workdir / "with-neurons.toml"
    sticker_only = MINI_SUITE.split("[[stage]]\nname = \"pgd\"")[0]
    suite.write_text(sticker_only + '[neurons]\nstages = ["sticker"]\ntop_k = 3\ndraws = 2\nmodes = ["zero"]\n')
    return suite


def _run_and_explain(config: RunConfig):
    """``typobench run`` as a library: the run, then its suite's [neurons] analysis in the run's session."""
    outcome = execute(config, progress=False)
    outcome.neurons = explain_run(outcome, progress=False)
    return outcome


def _findings(report: dict) -> list[dict]:
    """What an analysis found (its timings aside): events, blamed neurons and verdicts per stage and kind."""
    return [{k: a.get(k) for k in ("stage", "kind", "n_events", "blamed", "verdict")} for a in report["analyses"]]


def test_a_suite_with_a_neurons_table_runs_the_analysis_once(workdir):
    config = RunConfig(model="tiny-rn", suite=str(_neurons_suite(workdir)), dataset="folder",
                       data_root=str(workdir / "colours"), head="linear-probe", limit=40, batch_size=16,
                       out=str(workdir / "suite-neurons"), cache_dir=str(workdir / "cache"), device="cpu")
    first = _run_and_explain(config)
    report = json.loads((first.out_dir / "neurons.json").read_text())
    assert first.neurons is not None and first.neurons.report["config"] == report["config"]
    assert report["config"]["top_k"] == 3 and report["config"]["modes"] == ["zero"]
    assert report["run"]["config_hash"] == first.results["config_hash"]
    assert [a["stage"] for a in report["analyses"]] and {a["stage"] for a in report["analyses"]} == {"sticker"}
    stamp = (first.out_dir / "neurons.json").stat().st_mtime_ns

    again = _run_and_explain(config)  # finished run, same analysis: nothing recomputed
    assert again.resumed_complete and again.neurons is None
    assert any("already holds this analysis" in note for note in again.notes)
    assert (first.out_dir / "neurons.json").stat().st_mtime_ns == stamp

    # Another analysis of the same run (here: a multimodal threshold the suite leaves at its default) is
    # not the suite's: it is redone, in the session of the run read back.
    analyze(NeuronsConfig(str(first.out_dir), stages=["sticker"], top_k=3, draws=2, modes=("zero",), tau_text=1.5,
                          device="cpu", cache_dir=str(workdir / "cache")), progress=False)
    redone = _run_and_explain(config)
    assert redone.resumed_complete and redone.neurons is not None
    assert json.loads((first.out_dir / "neurons.json").read_text())["config"]["tau_text"] == 2.0
    assert _findings(redone.neurons.report) == _findings(first.neurons.report)

    plain = execute(RunConfig(**{**vars(config), "suite": "random-wrong-label", "out": str(workdir / "plain")}),
                    progress=False)
    assert explain_run(plain, progress=False) is None  # a suite without [neurons]: nothing to explain


def test_run_cli_with_a_neurons_table_loads_the_model_once(workdir, monkeypatch, capsys):
    """`typobench run --suite S` with a [neurons] table: the analysis runs in the run's session (one model
    load); `typobench neurons --from` reopens the run from disk and finds the same blame and verdicts."""
    import typobench.harness.session as session_module

    loads: list[str] = []
    real_load_model = session_module.load_model

    def counting_load_model(name, *args, **kwargs):
        loads.append(name)
        return real_load_model(name, *args, **kwargs)

    monkeypatch.setattr(session_module, "load_model", counting_load_model)
    run = ["run", "--model", "tiny-rn", "--suite", str(_neurons_suite(workdir)), "--dataset", "folder",
           "--data-root", str(workdir / "colours"), "--head", "linear-probe", "--limit", "40", "--batch-size", "16",
           "--cache-dir", str(workdir / "cache"), "--device", "cpu", "--quiet"]
    out = workdir / "cli-neurons"
    assert main([*run, "--out", str(out)]) == 0
    assert loads == ["tiny-rn"]
    in_memory = json.loads((out / "neurons.json").read_text())
    assert in_memory["run"]["config_hash"] == json.loads((out / "results.json").read_text())["config_hash"]
    assert f"neurons {out / 'neurons.md'}" in capsys.readouterr().out

    from_disk_dir = workdir / "cli-neurons-from-disk"
    assert main(["neurons", "--from", str(out), "--out", str(from_disk_dir), "--stage", "sticker", "--top-k", "3",
                 "--draws", "2", "--modes", "zero", "--batch-size", "16", "--cache-dir", str(workdir / "cache"),
                 "--device", "cpu", "--quiet"]) == 0
    assert loads == ["tiny-rn", "tiny-rn"]  # reopened from results.json
    from_disk = json.loads((from_disk_dir / "neurons.json").read_text())
    assert _findings(from_disk) == _findings(in_memory) and any(a["n_events"] for a in _findings(in_memory))
    assert pd.read_csv(out / "neurons_blame.csv").equals(pd.read_csv(from_disk_dir / "neurons_blame.csv"))

    skipped = workdir / "cli-no-neurons"
    assert main([*run, "--out", str(skipped), "--no-neurons"]) == 0
    assert not (skipped / "neurons.json").exists()
    assert json.loads((skipped / "results.json").read_text())["config_hash"] == in_memory["run"]["config_hash"]


def test_run_cli_no_neurons_flag_reaches_the_config():
    from typobench.cli import build_parser
    from typobench.commands.common import config_from_args

    assert config_from_args(build_parser().parse_args(["run"])).neurons is True
    assert config_from_args(build_parser().parse_args(["run", "--no-neurons"])).neurons is False


# -- the demo model: the blame is causal ---------------------------------------------------------------


def test_toyclip_reading_failures_are_undone_by_ablating_the_blamed_neurons(tmp_path):
    """On the shipped demo model the neurons blamed for random-wrong-label failures (chosen on half the
    failures) restore more of the other half than every draw of random and of activation-matched neurons."""
    run = tmp_path / "run"
    # 500 images: on 300 (57 held-out failures) one random draw ties the blamed set at 3 of 57.
    execute(RunConfig(model="toyclip", dataset="cifar10-sample", suite="random-wrong-label", limit=500,
                      batch_size=100, out=str(run), cache_dir=str(tmp_path / "cache"), device="cpu"), progress=False)
    report = analyze(NeuronsConfig(str(run), events=("failure",), top_k=10, draws=10, modes=("zero",), max_cards=0,
                                   ref_limit=200, device="cpu", cache_dir=str(tmp_path / "cache")),
                     progress=False).report
    [entry] = [a for a in report["analyses"] if a["kind"] == "failure"]
    assert entry["n_events"] >= 40 and entry["verdict_split"] == "held-out"
    zero = entry["held_out"]["verdict_detail"]["zero"]
    assert zero["beats_random"] and zero["beats_matched"], zero
    assert zero["blamed"] > 2 * max(zero["random_mean"], zero["matched_mean"], 0.01), zero


def test_cards_draw_attack_text_as_written(tmp_path):
    """Goh et al.'s "$$$" attack (twice in a title) would be parsed by matplotlib as a maths formula and fail."""
    from typobench.neurons.cards.card import CardFacts, save_card

    facts = CardFacts(neuron="layer4:3", unit=3, top_words=[("$$", 2.5), ("$$$", 2.1), ("cat", 1.0)],
                      top_images=[0, 1], top_image_acts=[1.5, 1.2], multimodal_classes=[], best_class="cat",
                      best_z_image=0.5, best_z_text=1.0, best_z_control=float("nan"), best_control_word="",
                      top_class_image="cat", top_class_image_z=0.5, mean_activation=0.3)
    path = tmp_path / "card.png"
    save_card(path, facts, torch.rand(2, 3, 32, 32), [0, 1], ["cat", "dog"], 32, torch.tensor([0.5, -0.5]),
              torch.tensor([1.0, 0.2]), MultimodalTest(), blamed_for="$$$/failure, $$$/lift")
    assert path.stat().st_size > 5000
