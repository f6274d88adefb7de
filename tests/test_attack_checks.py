"""Attack-failure flags on real runs of the shipped organism toyclip: a 1-step attack is flagged as not
converged, a converged one is not; a classifier whose pixels pass through a step function (zero gradients
everywhere) gets the gradient-masking and unbounded flags; the checks can be turned off."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from typobench.core.errors import UsageError
from typobench.harness.attack_checks import attack_flags
from typobench.harness.config import RunConfig
from typobench.harness.results import read_results
from typobench.harness.run import execute, run_suite
from typobench.harness.session import Session
from typobench.suites import parse_suite

SUITE = b"""
name = "checks"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "pgd-1-step"
kind = "pgd"
eps = "8/255"
step_size = "2/255"
steps = 1
random_start = false
[[stage]]
name = "pgd-10-steps"
kind = "pgd"
eps = "8/255"
step_size = "2/255"
steps = 10
"""


def _config(tmp_path, **overrides) -> RunConfig:
    suite = tmp_path / "checks.toml"
    suite.write_bytes(SUITE)
    values = dict(model="toyclip", dataset="cifar10-sample", suite=str(suite), limit=48, batch_size=48,
                  out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), device="cpu", attack_checks=48)
    return RunConfig(**{**values, **overrides})


def test_a_one_step_attack_is_flagged_not_converged_and_a_converged_one_is_not(tmp_path):
    outcome = execute(_config(tmp_path), progress=False)
    checks = read_results(outcome.out_dir)["attack_checks"]
    one_step = checks["stages"]["pgd-1-step"]["not_converged"]
    assert one_step["flag"] and one_step["accuracy_doubled"] < one_step["accuracy"] and one_step["p"] < 0.025
    assert not checks["stages"]["pgd-10-steps"]["not_converged"]["flag"]
    assert not checks["unbounded_not_zero"]["flag"] and checks["unbounded_not_zero"]["accuracy"] <= 0.05
    assert checks["flags"] == ["pgd-1-step: not_converged"]


class StepFunction(nn.Module):
    """Pixels rounded to 4 levels before the classifier: the forward pass is almost the model's, every input
    gradient is zero (the textbook gradient-masking defense)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 3) / 3)


CASCADE = b"""
name = "cascade"
[[stage]]
name = "clean"
kind = "clean"
[[stage]]
name = "cascade"
kind = "worst-case"
[[stage.attack]]
kind = "apgd"
eps = "16/255"
steps = 5
[[stage.attack]]
kind = "square"
eps = "16/255"
queries = 200
"""


def test_a_step_function_defense_is_flagged_as_masking_gradients(tmp_path):
    session = Session.open(_config(tmp_path, limit=32))
    masked = replace(session, _classifier=StepFunction(session.classifier).eval())
    outcome = run_suite(masked, parse_suite(CASCADE, "cascade"), tmp_path / "masked", progress=False, pictures=False)
    checks = outcome.results["attack_checks"]
    masking = checks["stages"]["cascade"]["gradient_masking"]
    # APGD meets zero gradients on every sample it attacks; Square, which needs none, breaks what APGD left.
    assert masking["flag"] and masking["zero_gradients"] > 0 and masking["broken_only_without_gradients"] > 0
    assert "cascade: gradient_masking" in checks["flags"]
    # PGD cannot move a step function: eps 0.5 leaves the model's accuracy where it was.
    assert checks["unbounded_not_zero"]["flag"] and checks["unbounded_not_zero"]["accuracy"] > 0.05
    assert "unbounded_not_zero" in checks["flags"]


def test_checks_can_be_turned_off_and_a_negative_count_is_refused(tmp_path):
    session = Session.open(_config(tmp_path, limit=16))
    suite = parse_suite(SUITE, "checks")
    assert attack_flags(session, suite.stages, [], None, 0) is None
    with pytest.raises(UsageError, match="--attack-checks"):
        _config(tmp_path, attack_checks=-1).validate()
