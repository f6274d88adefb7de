"""Greedy unit selection under a clean budget (Dyslexify): the order is by typographic gain, the budget stops it,
the file records what it was chosen on, and ``ablate:file=`` loads it (heads: the class-token path only)."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.core.runtime import Runtime
from typobench.data import load_dataset
from typobench.defenses import BuildContext, create_defense
from typobench.defenses.ablate import unit_edit, unit_spaces
from typobench.defenses.classifier import DefendedClassifier
from typobench.defenses.greedy import greedy_select, zeroshot_classifier
from typobench.harness.provenance import check_provenance
from typobench.models import load_model
from typobench.models.attention_heads import head_space
from typobench.models.units import NeuronLayer, NeuronSpace, edits


class Readout(nn.Module):
    """logits = units @ W: units 0, 1 and 3 vote for class 1 (the written word), unit 2 for class 0 (the object)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Identity()
        self.weight = nn.Parameter(torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), requires_grad=False)

    def forward(self, x):
        return self.layer(x[:, :, None, None]).flatten(1) @ self.weight


# Every label is class 0. Written images: unit 0 misleads 3 of 4 (gain 0.75), unit 1 misleads 2 (gain 0.5).
WRITTEN = torch.tensor([[2.0, 0, 1, 0], [2.0, 0, 1, 0], [0, 2.0, 1, 0], [0.5, 0.8, 1, 0]])
# Clean images: right as they are; the second needs unit 1, so ablating it costs 50 points of clean accuracy.
CLEAN = torch.tensor([[0.0, 0, 1, 0], [0, -1.0, 1, 1.5]])


def _select(budget, **options):
    model = Readout()
    space = NeuronSpace([NeuronLayer("layer4", "layer", model.layer, "resnet-channel", 4, 1)])
    labels = torch.zeros(4, dtype=torch.long)
    clean = torch.cat([CLEAN, CLEAN])  # as many clean as written images
    return greedy_select(model, space, clean, WRITTEN, labels, budget=budget, **options)


def test_greedy_order_is_by_typographic_gain_and_stops_when_nothing_raises_it():
    result = _select(budget=100)
    assert result.units == ["layer4:0", "layer4:1"]
    assert [s["gain"] for s in result.steps] == pytest.approx([0.75, 0.25])
    assert result.steps[0]["runner_up"][0] == pytest.approx(0.5)  # unit 1 alone: the smaller gain comes second
    assert result.base == {"clean_accuracy": 1.0, "typographic_accuracy": 0.0}
    assert result.stopped == "no unit raises the typographic score"
    assert _select(budget=100, max_units=1).units == ["layer4:0"]


def test_the_clean_budget_stops_selection_before_the_unit_that_would_exceed_it():
    result = _select(budget=10)
    assert result.units == ["layer4:0"] and result.stopped.startswith("clean budget (10")
    assert _select(budget=50).units == ["layer4:0", "layer4:1"]  # a 50-point drop is within a 50-point budget
    with pytest.raises(UsageError, match="budget >= 0"):
        _select(budget=-1)


@pytest.fixture(scope="module")
def tiny_rn():
    return load_model("tiny-rn", device="cpu")


def test_cli_records_provenance_and_the_ablate_defense_loads_it(tmp_path, tiny_rn, capsys):
    out = tmp_path / "greedy.json"
    code = main(["defense", "select-greedy", "--model", "tiny-rn", "--dataset", "cifar10-sample", "--split", "test",
                 "--limit", "12", "--candidates", "+".join(f"layer4:{i}" for i in range(8)), "--max-units", "2", "--budget", "100",
                 "--device", "cpu", "--out", str(out)])
    assert code == 0 and "selection split" in capsys.readouterr().out
    record = json.loads(out.read_text())
    chosen = record["selection"]
    assert chosen["model_fingerprint"] == tiny_rn.fingerprint() and chosen["n"] == 12 == len(chosen["sample_ids"])
    assert record["config"]["budget"] == 100 and record["units"] and len(record["units"]) <= 2
    assert record["pool_layers"] == ["layer4"]  # what it chose among: where its random baselines draw from
    defense = create_defense(f"ablate:file={out}")
    assert defense.units == record["units"] and not defense.provenance_unknown()
    data = load_dataset("cifar10-sample", split="test", transform=tiny_rn.pixel_transform())
    picked = set(chosen["sample_ids"])
    with pytest.raises(UsageError, match="greedy units were chosen on 12 of the images"):
        check_provenance([defense], tiny_rn, data)
    held_out = data.subset([i for i, s in enumerate(data.sample_ids) if s not in picked])
    [checked] = check_provenance([defense], tiny_rn, held_out)
    assert checked["provenance"] == "chosen from data" and checked["selections"][0]["n"] == 12
    with pytest.raises(UsageError, match="chosen for model tiny-rn"):
        check_provenance([defense], load_model("tiny-rn", device="cpu", seed=1), held_out)
    assert main(["defense", "select-greedy", "--model", "tiny-rn", "--dataset", "cifar10-sample",
                 "--out", str(tmp_path / "g.txt")]) == 2
    assert "must end in .json" in capsys.readouterr().err


def test_cls_positions_ablate_the_class_token_path_only(tmp_path):
    loaded = load_model("tiny-vit", device="cpu")
    classifier = zeroshot_classifier(loaded, ["cat", "dog", "car"], ["a photo of a {}."])
    space = head_space(classifier, 2)
    pixels = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    chosen = edits(space, [space.index("resblocks.1.attn:0")])
    with torch.no_grad():
        plain = classifier(pixels)
        with unit_edit(classifier, space, chosen, cls_only=True):
            cls_only = classifier(pixels)
        with unit_edit(classifier, space, chosen):
            every = classifier(pixels)
    # In the last block only the class token reaches the embedding: the two ablations agree there...
    assert torch.allclose(cls_only, every, atol=1e-5) and not torch.allclose(plain, cls_only, atol=1e-4)
    chosen = edits(space, [space.index("resblocks.0.attn:0")])
    with torch.no_grad(), unit_edit(classifier, space, chosen, cls_only=True):
        first_cls = classifier(pixels)
    with torch.no_grad(), unit_edit(classifier, space, chosen):
        first_every = classifier(pixels)
    assert not torch.allclose(first_cls, first_every, atol=1e-4)  # ...in an earlier block they do not
    path = tmp_path / "heads.json"
    path.write_text(json.dumps({"format": "typobench-greedy-units", "units": ["resblocks.0.attn:0"], "positions": "cls",
                                "selection": {"dataset": "x", "split": "train", "n": 1, "sample_ids": ["train/a"]}}))
    defense = create_defense(f"ablate:file={path}")
    assert defense.positions == "cls" and defense.parameters()["positions"] == "cls"
    defended = defense.wrap(DefendedClassifier(classifier), BuildContext(Runtime(torch.device("cpu")), 4), {})
    with torch.no_grad():
        assert torch.allclose(defended(pixels), first_cls, atol=1e-5)
    with pytest.raises(UsageError, match="field 'positions'"):
        create_defense("ablate:units=layer4:1,positions=cls").wrap(
            DefendedClassifier(zeroshot_classifier(load_model("tiny-rn"), ["a", "b"], ["{}"])),
            BuildContext(Runtime(torch.device("cpu")), 4), {})
    assert unit_spaces(classifier, ["resblocks.0.attn:0"], "x")


def test_paired_difference_against_the_draws_mean_is_on_the_same_images():
    import pandas as pd

    from typobench.experiments.defend.baselines import paired_vs_draws

    def predictions(hits):
        return pd.DataFrame({"stage": "s", "sample_id": [f"i{k}" for k in range(len(hits))], "label": 0,
                             "pred": [0 if h else 1 for h in hits]})

    chosen = predictions([1, 1, 1, 1, 0, 0, 0, 0])
    draws = [predictions([1, 0, 0, 0, 0, 0, 0, 0]), predictions([1, 1, 0, 0, 0, 0, 0, 0])]
    paired = paired_vs_draws(chosen, draws, ["s"])["s"]
    assert paired["difference"] == pytest.approx(0.5 - 0.1875)
    assert paired["ci95"][0] > 0  # the chosen set is right on every image a draw is right on, and more
    assert paired_vs_draws(chosen, [predictions([1, 0])], ["s"]) == {}  # other images: no pairing


def test_random_heads_come_from_every_block_the_selection_chose_among_and_are_each_drawn_once(tmp_path):
    """One head of a selection over every block is compared with the other heads of every block, each once: with
    fewer sets than draws, all of them (a set drawn twice would count twice in the p = 1/(sets+1) test)."""
    from typobench.experiments.defend.baselines import like_for_like, random_rows, unit_sets
    from typobench.experiments.defend.rows import parse_rows

    model = load_model("tiny-vit", device="cpu").model
    path = tmp_path / "heads.json"
    path.write_text(json.dumps({"format": "typobench-greedy-units", "units": ["resblocks.1.attn:0"], "positions": "cls",
                                "pool_layers": ["resblocks.0.attn", "resblocks.1.attn"],
                                "selection": {"dataset": "x", "split": "train", "n": 1, "sample_ids": ["train/a"]}}))
    row = parse_rows([f"ablate:file={path}"])[1]
    heads = [d.defenses[0].units for d in random_rows(row, model, 20, seed=0)]
    per_block = sum(1 for h in heads if h[0].startswith("resblocks.1.attn"))  # the chosen block minus the chosen head
    assert len(heads) == 2 * (per_block + 1) - 1 and len({tuple(h) for h in heads}) == len(heads)
    assert {h[0].rsplit(".attn", 1)[0] for h in heads} == {"resblocks.0", "resblocks.1"}
    assert ["resblocks.1.attn:0"] not in heads
    assert like_for_like(row.defenses[0], len(heads), model)["exhaustive"]
    assert not like_for_like(row.defenses[0], len(heads) - 1, model)["exhaustive"]
    # More sets than draws: that many distinct sets, the same from the same seed, others from another.
    pool = [f"layer4:{i}" for i in range(6)]
    drawn = unit_sets(pool, 2, 12, seed=0, label="x")
    assert len({frozenset(d) for d in drawn}) == 12 and drawn == unit_sets(pool, 2, 12, seed=0, label="x")
    assert drawn != unit_sets(pool, 2, 12, seed=1, label="x")
    assert unit_sets(pool, 2, 15, seed=0, label="x") == [list(c) for c in itertools.combinations(pool, 2)]
