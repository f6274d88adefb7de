"""The neuron microscope (issue 18): feature visualizations and word views of the blamed neurons, through
``typobench neurons --microscope K``, a finished run's microscope, and the Python API; on tiny random towers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import typobench.api as tb
import typobench.commands.neurons_cmd as neurons_cmd
from test_neurons import _run, workdir  # noqa: F401 -- the tiny runs and their fixture
from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.models import load_model
from typobench.models.classifier import ImageClassifier
from typobench.neurons.featurevis.objectives import Captured, channel, per_image
from typobench.neurons.featurevis.optimise import Settings, objective_values
from typobench.neurons.featurevis.param import make_image
from typobench.neurons.featurevis.facets import text_facet
from typobench.neurons.microscope.core import MicroscopeSettings, blame_order
from typobench.neurons.microscope_run import microscope_of_run
from typobench.neurons.microscope.views import channels, visualize_neurons
from typobench.neurons.microscope.words import WordViews, random_units
from typobench.models.units import capture, find_layers, unit_activations
from typobench.neurons.featurevis.layers import layer_space
from typobench.suites.neurons_option import NeuronsConfig, parse_neurons_table
from typobench.suites.fields import Table

NEURON_KEYS = {"rank", "plain_png", "facet_png", "excitation", "plain_class", "facet_class", "reads", "reads_z",
               "plain_reads", "facet_reads", "read_probability", "text_words", "pixel_words", "agreement"}
SUMMARY_KEYS = {"neurons", "median_ratio", "share_at_least_2x", "facet_median_ratio", "plain_reads_rate",
                "facet_reads_rate", "plain_read_probability", "facet_read_probability", "agreement_blamed",
                "agreement_random"}
MICROSCOPE_ARGS = ["--microscope", "3", "--fv-steps", "4", "--fv-natural", "20"]


@pytest.fixture(scope="module")
def classifier():
    loaded = load_model("tiny-rn", device="cpu")
    torch.manual_seed(0)
    return ImageClassifier.of(loaded, nn.Linear(32, 4))


@pytest.fixture(scope="module")
def explained(workdir):  # noqa: F811 -- the fixture imported from test_neurons
    """A tiny ResNet run explained by ``typobench neurons`` with the microscope on 3 neurons."""
    run = _run(workdir, "tiny-rn", "random-wrong-label")
    out = workdir / "microscope-analysis"
    assert main(["neurons", "--from", str(run), "--out", str(out), "--top-k", "4", "--draws", "2", "--modes", "zero",
                 "--device", "cpu", "--quiet", "--vocab", str(workdir / "vocab.txt"), *MICROSCOPE_ARGS]) == 0
    return run, out


# -- through `typobench neurons --microscope` ---------------------------------------------------------------


def test_the_microscope_writes_pngs_and_json_of_the_documented_schema(explained):
    run, out = explained
    record = json.loads((out / "microscope.json").read_text())
    assert set(record) == {"settings", "neurons", "random_neurons", "summary"}
    report = json.loads((out / "neurons.json").read_text())
    assert list(record["neurons"]) == blame_order(report["analyses"])[:3]
    assert record["settings"]["found"] == 3 and record["settings"]["steps"] == 4
    assert record["settings"]["natural"] == {"source": "data set", "dataset": "folder", "split": "test", "n": 20}
    for rank, (name, entry) in enumerate(record["neurons"].items(), 1):
        assert set(entry) == NEURON_KEYS and entry["rank"] == rank
        for view in ("plain", "facet"):
            with Image.open(out / entry[f"{view}_png"]) as image:
                assert image.size == (64, 64) and image.mode == "RGB"
        excitation = entry["excitation"]
        assert excitation["ratio"] == pytest.approx(excitation["plain"] / excitation["natural"])
        assert entry["plain_reads"] == (entry["plain_class"] == entry["reads"])
        assert len(entry["text_words"]) == len(entry["pixel_words"]) == entry["agreement"]["k"] == 9  # the vocabulary
        assert -1 <= entry["agreement"]["spearman"] <= 1
    assert set(record["summary"]) == SUMMARY_KEYS and record["summary"]["neurons"] == 3
    assert report["microscope"]["file"] == "microscope.json" and report["microscope"]["summary"] == record["summary"]
    assert "## Microscope" in (out / "neurons.md").read_text() and "microscope/" in (out / "neurons.md").read_text()
    assert sorted(p.name for p in (out / "microscope").glob("*.png")) == sorted(
        Path(e[f"{v}_png"]).name for e in record["neurons"].values() for v in ("plain", "facet"))


def test_random_neurons_are_as_many_and_never_blamed_ones(explained):
    _, out = explained
    record = json.loads((out / "microscope.json").read_text())
    assert len(record["random_neurons"]) == len(record["neurons"])
    assert not set(record["random_neurons"]) & set(record["neurons"])
    assert all(set(r) == {"agreement"} for r in record["random_neurons"].values())


def test_the_microscope_of_a_finished_run_is_the_analysis_one_and_deterministic(explained, tmp_path):
    """Made again in a fresh session from the run's neurons.json, the microscope is the analysis's, byte for byte."""
    run, out = explained
    again, where = microscope_of_run(run, neurons=3, steps=4, natural=20, analysis_dir=out, out=tmp_path / "a",
                                     device="cpu")
    assert where == tmp_path / "a"
    assert (where / "microscope.json").read_text() == (out / "microscope.json").read_text()
    assert set(again.images) == {e[f"{v}_png"] for e in again.record["neurons"].values() for v in ("plain", "facet")}
    for name in again.images:
        assert (where / name).read_bytes() == (out / name).read_bytes()
    other, _ = microscope_of_run(run, neurons=2, steps=5, analysis_dir=out, out=tmp_path / "b", device="cpu")
    assert other.record["settings"]["natural"]["source"] == "reference images" and len(other.record["neurons"]) == 2
    first = next(iter(other.images))
    assert not torch.equal(other.images[first], again.images[first])


def test_the_microscope_of_a_run_without_neurons_json_is_a_usage_error(explained, tmp_path):
    run, _ = explained
    with pytest.raises(UsageError, match="typobench neurons --from"):
        microscope_of_run(tmp_path, neurons=3)


# -- the optimisation, through the microscope path ----------------------------------------------------------


def test_each_neurons_objective_increases_during_optimisation(classifier):
    start = make_image("fourier", 3, 64, torch.Generator().manual_seed(2))().detach()  # what seed 2 starts from
    space = layer_space(classifier, ["layer3", "layer4"])
    acts, _ = unit_activations(classifier, space, start)
    # Image i's neuron must be alive on image i's start: a dead ReLU unit has no gradient to climb.
    alive = [[space.names[u] for u in torch.nonzero(row > 0).view(-1).tolist()] for row in acts]
    first = next(n for n in alive[0] if n.startswith("layer4"))
    names = [first, next(n for n in alive[1] if n.startswith("layer4") and n != first),
             next(n for n in alive[2] if n.startswith("layer3"))]
    made = visualize_neurons(classifier, names, Settings(steps=12, lr=0.05, seed=2))
    before = objective_values(classifier, channels(names), start)
    assert made.images.shape == (3, 3, 64, 64) and made.neurons == names
    assert torch.all(made.activations > before), (made.activations, before)
    facet = text_facet(classifier, start.repeat(3, 1, 1, 1))
    through = visualize_neurons(classifier, names[:2], Settings(steps=8, lr=0.05, seed=2), facet)
    assert "text facet" in through.objective and through.history[-1] > through.history[0]


def test_per_image_objectives_score_each_image_by_its_own_neuron(classifier):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    space = find_layers(classifier)
    with torch.no_grad(), capture(space) as store:
        classifier(images)
    captured = Captured({l.name: l for l in space.layers}, dict(store))
    units = captured.units("layer4")
    assert torch.allclose(channels(["layer4:3", "layer4:9"])(captured),
                          torch.stack([units[0, :, 3].mean(), units[1, :, 9].mean()]))
    with pytest.raises(UsageError, match="batch of one image per objective"):
        per_image([channel("layer4:3")] * 3)(captured)


@pytest.mark.parametrize("names,match", [([], "at least one"), (["layer4:3", "layer4:3"], "twice"),
                                         (["layer9:1"], "not in this tower"), (["layer4:99999"], "units")])
def test_bad_neuron_names_are_usage_errors(classifier, names, match):
    with pytest.raises(UsageError, match=match):
        visualize_neurons(classifier, names, Settings(steps=1))


# -- blame order, random neurons, word views ----------------------------------------------------------------


def test_blame_order_takes_every_scopes_rank_one_first():
    analyses = [{"blame": [{"neuron": "a"}, {"neuron": "b"}, {"neuron": "c"}]}, {"n_events": 0},
                {"blame": [{"neuron": "d"}, {"neuron": "a"}]}]
    assert blame_order(analyses) == ["a", "d", "b", "c"]


def test_random_units_are_seeded_and_exclude_the_blamed(classifier):
    space = find_layers(classifier)
    blamed = list(range(0, 256, 2))
    drawn = random_units(space, blamed, 20, seed=4)
    assert len(set(drawn)) == 20 and not set(drawn) & set(blamed)
    assert drawn == random_units(space, blamed, 20, seed=4) != random_units(space, blamed, 20, seed=5)


def test_a_neuron_reads_the_class_whose_written_name_excites_it_most():
    pixel = torch.tensor([[0.5, 3.0], [2.0, -1.0], [9.0, 9.0]])  # words: cat, dog, zebra (not a class)
    views = WordViews(["cat", "dog", "zebra"], pixel, pixel.clone(), class_word=[0, 1, -1])
    assert views.reads(0, ["cat", "dog", "emu"]) == ("dog", 2.0)
    assert views.reads(1, ["cat", "dog", "emu"]) == ("cat", 3.0)
    assert WordViews(["zebra"], pixel[2:], pixel[2:], [-1, -1]).reads(0, ["cat", "dog"]) == (None, None)
    same = views.agreement([0, 1], k=2)
    assert [a["spearman"] for a in same] == pytest.approx([1.0, 1.0]) and [a["overlap"] for a in same] == [1.0, 1.0]


# -- options: CLI, suites, bad values -----------------------------------------------------------------------


def test_cli_flags_reach_the_config(monkeypatch, tmp_path):
    seen = {}

    def fake_analyze(config, progress=True):
        seen["config"] = config
        raise UsageError("stop here")

    monkeypatch.setattr(neurons_cmd, "analyze", fake_analyze)
    assert main(["neurons", "--from", str(tmp_path), "--microscope", "7", "--fv-steps", "9", "--fv-natural", "30"]) == 2
    config = seen["config"]
    assert (config.microscope, config.fv_steps, config.fv_natural) == (7, 9, 30)
    main(["neurons", "--from", str(tmp_path)])
    assert (seen["config"].microscope, seen["config"].fv_steps, seen["config"].fv_natural) == (0, 256, 0)
    table = Table({"microscope": 5, "fv_steps": 32}, "neurons", "suite.toml")
    assert parse_neurons_table(table) == {"microscope": 5, "fv_steps": 32}


@pytest.mark.parametrize("field,value,flag", [("microscope", -1, "--microscope"), ("fv_natural", -5, "--fv-natural"),
                                              ("fv_steps", 0, "--fv-steps")])
def test_bad_microscope_values_are_usage_errors(field, value, flag, capsys, tmp_path):
    with pytest.raises(UsageError, match=flag):
        NeuronsConfig(run_dir="x", **{field: value}).validate()
    assert main(["neurons", "--from", str(tmp_path), flag, str(value)]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and "\n" not in err
    with pytest.raises(UsageError, match="microscope"):
        MicroscopeSettings(**{{"microscope": "neurons", "fv_natural": "natural", "fv_steps": "steps"}[field]: value}).validate()


# -- the Python API -----------------------------------------------------------------------------------------


def test_api_visualizes_named_neurons_and_classifies_them(workdir):  # noqa: F811
    model = tb.load_model("tiny-rn", device="cpu")
    plain = tb.visualize_neurons(model, ["layer4:3", "layer3:5"], steps=3, seed=1)
    assert plain.images.shape == (2, 3, 64, 64) and plain.classes is None and plain.facet is None
    assert len(plain.activations) == 2 and len(plain.history) == 3
    data = tb.load_data("folder", model, root=str(workdir / "colours"), limit=12)
    faceted = tb.visualize_neurons(model, ["layer4:3", "layer3:5"], data=data, head="linear-probe", text_facet=True,
                                   facet_images=8, steps=3, seed=1)
    assert faceted.facet["layer"] == "layer3" and set(faceted.classes) <= set(data.classnames)
    assert not torch.equal(faceted.images, plain.images)
    with pytest.raises(UsageError, match="data="):
        tb.visualize_neurons(model, ["layer4:3"], text_facet=True)


def test_api_microscope_of_a_finished_run(explained, tmp_path):
    run, out = explained
    found = tb.microscope(run, 2, steps=3, analysis_dir=out, out=tmp_path, device="cpu")
    assert json.loads((tmp_path / "microscope.json").read_text())["summary"]["neurons"] == 2
    assert list(found.record["neurons"]) == list(json.loads((out / "microscope.json").read_text())["neurons"])[:2]
    assert all((tmp_path / path).is_file() for path in found.images)


def test_a_suites_neurons_table_sets_the_sparse_probe_and_atlas_options():
    table = Table({"sparse_probe": True, "probe_per_class": 2, "probe_images": 400, "atlas": True}, "neurons", "s")
    assert parse_neurons_table(table) == {"sparse_probe": True, "probe_per_class": 2.0, "probe_images": 400,
                                          "atlas": True}
    with pytest.raises(UsageError, match=r"neurons\.atlas: expected true or false"):
        parse_neurons_table(Table({"atlas": "yes"}, "neurons", "s"))
    with pytest.raises(UsageError, match=r"neurons\.probe_images must be >= 4"):
        parse_neurons_table(Table({"probe_images": 2}, "neurons", "s"))
