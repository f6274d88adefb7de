"""A suite's ``[head]`` table fixes the zero-shot protocol (templates, temperature) of a published evaluation:
TeCoA's and FARE's suites run with exactly their prompt and scale."""

from __future__ import annotations

import json

import pytest
import torch

from typobench.cli import main
from typobench.core.errors import UsageError
from typobench.data import stack_images
from typobench.harness.config import RunConfig
from typobench.harness.results import read_predictions
from typobench.harness.session import Session
from typobench.suites.head_option import HeadProtocol
from typobench.suites import parse_suite, read_suite

RUN = ["run", "--model", "tiny-rn", "--device", "cpu", "--quiet", "--limit", "6", "--batch-size", "6",
       "--attack-checks", "0"]
CLEAN = b'name = "proto"\n[[stage]]\nname = "clean"\nkind = "clean"\n'


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TYPOBENCH_CACHE", str(tmp_path / "cache"))


def _run(tmp_path, suite: bytes, name: str) -> tuple[dict, object]:
    path = tmp_path / f"{name}.toml"
    path.write_bytes(suite)
    assert main([*RUN, "--suite", str(path), "--out", str(tmp_path / name)]) == 0
    return json.loads((tmp_path / name / "results.json").read_text()), read_predictions(tmp_path / name)


def test_the_head_table_sets_the_templates_and_the_temperature_of_the_run(tmp_path, cache):
    plain, plain_rows = _run(tmp_path, CLEAN, "plain")
    fixed, fixed_rows = _run(tmp_path, CLEAN + b'[head]\ntemplates = ["This is a photo of a {}"]\nlogit_scale = 100.0\n',
                             "fixed")
    assert fixed["head"]["templates"] == ["This is a photo of a {}"] != plain["head"]["templates"]
    assert fixed["head"]["logit_scale"] == 100.0 != plain["head"]["logit_scale"]
    assert fixed["head"]["logit_scale_from"] == "suite" and "logit_scale_from" not in plain["head"]
    assert fixed["suite"]["head"] == {"templates": ["This is a photo of a {}"], "logit_scale": 100.0}
    # the probabilities follow the new temperature: the same images, other p_label values
    assert not fixed_rows["p_label"].reset_index(drop=True).equals(plain_rows["p_label"].reset_index(drop=True))


def test_the_fixed_temperature_is_the_scale_of_the_logits(cache):
    """logits = scale · cos(image, class embedding of the suite's templates): 100 gives 100 times scale 1."""
    session = Session.open(RunConfig(model="tiny-rn", device="cpu", limit=4))
    images, _ = stack_images(session.data)
    logits = {scale: session.with_head_protocol(HeadProtocol(["a photo of a {}."], scale)).classifier(images)
              for scale in (1.0, 100.0)}
    assert torch.allclose(logits[100.0], 100 * logits[1.0], rtol=1e-4, atol=1e-4)
    assert logits[1.0].abs().max() <= 1.0 + 1e-5  # cosines
    own = session.with_head_protocol(HeadProtocol(["a photo of a {}."])).classifier(images)
    model_scale = session.model.model.logit_scale.exp().item()
    assert torch.allclose(own, model_scale * logits[1.0], rtol=1e-4, atol=1e-4)  # None keeps the model's own


@pytest.mark.parametrize("table, message", [
    (b'templates = ["a photo"]', "head.templates each template needs one {} for the class name, got 'a photo'"),
    (b"logit_scale = -1.0", "head.logit_scale must be a positive finite scale, got -1.0"),
    (b"logit_scale = 0.0", "head.logit_scale must be a positive finite scale, got 0.0"),
    (b"scale = 100.0", "unknown field head.scale: did you mean logit_scale?"),
    (b"templates = []", "head.templates: expected a non-empty list"),
])
def test_a_bad_head_table_names_the_field(table, message):
    with pytest.raises(UsageError) as info:
        parse_suite(CLEAN + b"[head]\n" + table + b"\n")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_linear_probe_run_of_a_suite_with_prompts_is_refused_in_one_line(tmp_path, cache, capsys):
    path = tmp_path / "proto.toml"
    path.write_bytes(CLEAN + b"[head]\nlogit_scale = 100.0\n")
    code = main([*RUN, "--head", "linear-probe", "--probe-train-limit", "20", "--suite", str(path),
                 "--out", str(tmp_path / "probe")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "--head linear-probe" in err[0] and "[head]" in err[0]


@pytest.mark.parametrize("name, stages, scale", [("tecoa2023", ["clean", "pgd-100-linf-1", "apgd-linf-1"], None),
                                                 ("fare2024", ["clean", "apgd-linf-2", "apgd-linf-4"], 100.0)])
def test_the_published_protocols_run_with_their_prompt_and_scale(tmp_path, cache, name, stages, scale):
    suite = read_suite(name)
    assert suite.head.templates == ["This is a photo of a {}"] and suite.head.logit_scale == scale
    assert main([*RUN, "--limit", "2", "--suite", name, "--out", str(tmp_path / name)]) == 0
    results = json.loads((tmp_path / name / "results.json").read_text())
    assert [s["name"] for s in results["stages"]] == stages
    assert results["head"]["templates"] == ["This is a photo of a {}"]
    if scale is not None:
        assert results["head"]["logit_scale"] == scale
    assert results["suite"]["protocol_version"] == 1 and results["suite"]["reference"]
    robust = [s["accuracy"] for s in results["stages"][1:]]
    assert all(r <= results["stages"][0]["accuracy"] for r in robust)
