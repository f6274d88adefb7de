"""The worst-case cascade: AutoAttack's rule (each attack only on the samples still correct), the per-sample
record of which attack broke what, the stage and its suite tables."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from typobench.adversarial.cascade import CLEAN, UNBROKEN, breakdown, worst_case
from typobench.adversarial.pgd import PGDConfig
from typobench.core.errors import UsageError
from typobench.suites import parse_suite

from helpers import images_batch
from test_stages import make_batch, make_ctx


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5)).eval()


class Counting(nn.Module):
    """Counts the images each forward pass sees, to check an attack runs only on the samples still correct."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.seen = inner, 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.inner(x)


def test_each_attack_runs_only_on_samples_still_correct_and_the_worst_case_is_kept():
    model = tiny_model()
    images = images_batch(16, side=16)
    with torch.no_grad():
        labels = model(images).argmax(1)  # every sample starts correct
    labels[:3] = (labels[:3] + 1) % 5  # ... but three, which the model already gets wrong
    weak = PGDConfig(eps=0.5 / 255, step_size=0.5 / 255, steps=1, random_start=False)
    strong = PGDConfig(eps=16 / 255, step_size=4 / 255, steps=10)
    result = worst_case(model, images, labels, [("weak", weak), ("strong", strong)],
                        generator_for=lambda name: torch.Generator().manual_seed(1))
    assert result.broken_by[:3] == [CLEAN] * 3
    attacked_by_strong, _ = result.results["strong"]
    # The strong attack saw exactly the samples neither the clean pass nor the weak attack broke.
    assert set(attacked_by_strong.tolist()) == {i for i, b in enumerate(result.broken_by) if b not in (CLEAN, "weak")}
    with torch.no_grad():
        wrong = model(result.adv).argmax(1) != labels
    assert torch.equal(wrong, result.success)  # success is re-checked on the model, not taken from the attack
    assert ((result.adv - images).abs().amax() <= 16 / 255 + 1e-6)
    counts = breakdown(result, ["weak", "strong"])
    assert counts["clean"] == 3 and sum(counts[k] for k in ("clean", "weak", "strong", "robust")) == 16
    assert counts["strong"] > 0  # the weak attack left samples the strong one broke


def test_attacks_after_everything_is_broken_do_not_run():
    model = Counting(tiny_model()).eval()
    images = images_batch(8, side=16)
    with torch.no_grad():
        labels = (model(images).argmax(1) + 1) % 5  # all wrong already
    model.seen = 0
    result = worst_case(model, images, labels, [("pgd", PGDConfig(eps=8 / 255, step_size=2 / 255, steps=5))])
    assert model.seen == 8  # the clean pass only
    assert result.broken_by == [CLEAN] * 8 and result.results == {}


WORST_CASE_SUITE = b"""
name = "wc"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "cascade"
kind = "worst-case"
[[stage.attack]]
name = "pgd-short"
kind = "pgd"
eps = "1/255"
step_size = "0.5/255"
steps = 2
[[stage.attack]]
kind = "pgd"
eps = "8/255"
step_size = "2/255"
steps = 5
"""


def test_the_stage_reads_its_attack_tables_and_writes_which_attack_broke_each_sample():
    suite = parse_suite(WORST_CASE_SUITE, "wc")
    stage = suite.stages[1]
    assert [a["name"] for a in stage.describe()["attacks"]] == ["pgd-short", "pgd"]
    ctx, batch = make_ctx(), make_batch(6)
    out = stage.apply(batch.images, batch, ctx)
    assert set(out.columns["broken_by"]) <= {CLEAN, "pgd-short", "pgd", UNBROKEN}
    assert out.columns["attack_success"] == [b != UNBROKEN for b in out.columns["broken_by"]]
    again = stage.apply(batch.images, batch, ctx)
    assert torch.equal(out.images, again.images)  # seeded per batch and attack
    stronger = stage.strengthened()
    assert [a["steps"] for a in stronger.describe()["attacks"]] == [4, 10]


@pytest.mark.parametrize("attack, message", [
    (b'kind = "pgd"\neps = "1/255"', "stage[1].attack[0].step_size is required"),
    (b'kind = "apdg"', "stage[1].attack[0].kind: unknown attack kind 'apdg': did you mean apgd"),
    (b'kind = "pgd"\neps = -1\nstep_size = 0.1\nsteps = 1', "stage[1].attack[0].eps: must be >= 0"),
    (b'kind = "pgd"\neps = 0.1\nstep_size = 0.1\nsteps = 1\nstepz = 3', "unknown field stage[1].attack[0].stepz"),
])
def test_a_bad_attack_table_is_one_line_naming_the_field(attack, message):
    text = WORST_CASE_SUITE.split(b"[[stage.attack]]")[0] + b"[[stage.attack]]\n" + attack + b"\n"
    with pytest.raises(UsageError) as error:
        parse_suite(text, "wc")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_two_attacks_with_one_name_are_refused():
    text = WORST_CASE_SUITE.replace(b'name = "pgd-short"', b'name = "pgd"')
    with pytest.raises(UsageError, match="names two attacks"):
        parse_suite(text, "wc")


def test_a_randomised_defense_makes_every_gradient_attack_average_over_draws(tmp_path):
    from typobench.harness.config import RunConfig
    from typobench.harness.run import EOT_DRAWS, execute

    suite = tmp_path / "wc.toml"
    suite.write_bytes(WORST_CASE_SUITE.replace(b"steps = 5", b"steps = 1").replace(b"steps = 2", b"steps = 1")
                      + b'[[stage.attack]]\nkind = "square"\neps = "8/255"\nqueries = 5\n')
    config = RunConfig(model="tiny-rn", dataset="cifar10-sample", suite=str(suite), limit=4, batch_size=4,
                       device="cpu", out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), attack_checks=0,
                       defenses=["input:resize_range=0.8+1.0"])
    stages = {s["name"]: s for s in execute(config, progress=False).results["stages"]}
    draws = {a["name"]: a.get("eot_draws") for a in stages["cascade"]["attacks"]}
    assert draws == {"pgd-short": EOT_DRAWS, "pgd": EOT_DRAWS, "square": None}  # square takes no gradient


def test_a_cascade_run_interrupted_mid_stage_resumes_to_the_uninterrupted_predictions(tmp_path, monkeypatch):
    from typobench.harness import evaluation
    from typobench.harness.config import RunConfig
    from typobench.harness.run import execute

    suite = tmp_path / "wc.toml"
    suite.write_bytes(WORST_CASE_SUITE)

    def config(out: str) -> RunConfig:
        return RunConfig(model="tiny-rn", dataset="cifar10-sample", suite=str(suite), limit=16, batch_size=4,
                         device="cpu", out=str(tmp_path / out), cache_dir=str(tmp_path / "cache"), attack_checks=0,
                         checkpoint_seconds=0)

    execute(config("whole"), progress=False)
    real, calls = evaluation.run_stages_on_batch, []

    def stop_at_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "run_stages_on_batch", stop_at_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        execute(config("resumed"), progress=False)
    monkeypatch.setattr(evaluation, "run_stages_on_batch", real)
    execute(config("resumed"), progress=False)
    assert (tmp_path / "whole" / "predictions.csv").read_bytes() == (tmp_path / "resumed" / "predictions.csv").read_bytes()
