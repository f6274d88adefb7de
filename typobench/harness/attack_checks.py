"""Attack-failure flags, computed on every run that attacks pixels (Carlini et al. 2019, "On Evaluating
Adversarial Robustness"; RobustBench marks entries that fail such checks "unreliable").

A robust accuracy is an upper bound that only a strong attack makes tight. On a subsample of the run's
images (the first ``n`` in data set order) these checks ask whether the attacks behind a number could
have done better:

* ``not_converged``: the same attack with twice the iterations (or queries) and twice the restarts leaves
  a lower accuracy on the same samples, beyond the 95% interval of the paired difference (McNemar's
  exact test on the samples where the two disagree);
* ``gradient_masking``: a gradient-free attack of a cascade broke samples every gradient attack before it
  left (at least ``MASKING_SHARE`` of the samples and two of them), or input gradients were exactly zero /
  not finite at the start for at least ``MASKING_SHARE`` of the samples;
* ``transfer_stronger``: images made on the model without its defenses fool the defended model more than
  the same attack made through the defenses (``typobench.defenses.sanity.transfer_pairs``);
* ``unbounded_not_zero``: L-inf PGD at eps 0.5 (any image can then be turned into almost any other), 10
  steps of 0.1, leaves more than ``UNBOUNDED_MAX`` accuracy on the clean subsample: the attack cannot reach the
  model's decision at all, the mark of masked or broken gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import torch

from typobench.adversarial.pgd import PGDConfig, pgd
from typobench.data import stack_images
from typobench.defenses.sanity import transfer_pairs
from typobench.harness.evaluation import batch_plan, make_batch, run_stages_on_batch
from typobench.stages.base import Stage

MASKING_SHARE = 0.01
SIGNIFICANCE = 0.025  # one-sided: a 95% two-sided interval of the paired difference that excludes 0
UNBOUNDED_MAX = 0.05
UNBOUNDED_ATTACK = PGDConfig(eps=0.5, step_size=0.1, steps=10, random_start=True)


def attacked_stages(stages: Sequence[Stage]) -> list[Stage]:
    """The stages that attack pixels (they can be strengthened)."""
    return [s for s in stages if s.strengthened() is not None]


def attack_flags(session: Any, stages: Sequence[Stage], stage_records: Sequence[Mapping[str, Any]],
                 predictions: pd.DataFrame, n: int) -> dict[str, Any] | None:
    """Every check on the first ``n`` samples of ``session``'s data (None when no stage attacks pixels or n is 0).

    ``stage_records``: results.json's stages (descriptions with accuracies); ``predictions``: the run's table.
    """
    if n <= 0 or not attacked_stages(stages):
        return None
    subset = replace(session, dataset=session.data.subset(range(min(n, len(session.data)))))
    ids = list(subset.data.sample_ids)
    strong = _strong_predictions(subset, stages)
    checks: dict[str, Any] = {"samples": len(ids), "stages": {}}
    for stage in attacked_stages(stages):
        rows = predictions[predictions["stage"] == stage.name].set_index("sample_id").loc[ids]
        checks["stages"][stage.name] = {
            "not_converged": convergence_check(rows, strong[strong["stage"] == stage.name].set_index("sample_id").loc[ids]),
            "gradient_masking": masking_check(rows, stage.gradient_free_attacks()),
        }
    checks["transfer_stronger"] = transfer_pairs(stage_records)
    checks["unbounded_not_zero"] = unbounded_check(subset)
    checks["flags"] = flag_list(checks)
    return checks


def _strong_predictions(session: Any, stages: Sequence[Stage]) -> pd.DataFrame:
    """Every stage (the attacks strengthened) on ``session``'s data, in memory: the prediction table."""
    strong = [s.strengthened() or s for s in stages]
    ctx, data, frames = session.context, session.data, []
    for indices in batch_plan(len(data), session.config.batch_size):
        batch = make_batch(data, *stack_images(data, indices), indices, session.runtime.device)
        frames.append(pd.DataFrame(run_stages_on_batch(strong, batch, ctx)))
    return pd.concat(frames, ignore_index=True)


def convergence_check(reported: pd.DataFrame, stronger: pd.DataFrame) -> dict[str, Any]:
    """The reported attack vs the strengthened one on the same samples (same rows, same order): paired, so the
    test is on the samples where they disagree (McNemar's exact test, one-sided at 2.5%): the stronger attack
    breaks significantly more of them than it leaves standing that the reported one broke."""
    correct = (reported["pred"] == reported["label"]).to_numpy()
    correct_strong = (stronger["pred"] == stronger["label"]).to_numpy()
    only_stronger = int((correct & ~correct_strong).sum())  # broken by the stronger attack alone
    only_reported = int((~correct & correct_strong).sum())
    p = binomial_tail(only_stronger, only_stronger + only_reported)
    n = len(correct)
    return {"flag": p < SIGNIFICANCE, "accuracy": float(correct.mean()), "accuracy_doubled": float(correct_strong.mean()),
            "broken_only_by_doubled": only_stronger, "broken_only_by_reported": only_reported, "p": p, "n": n}


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): how likely k or more of n disagreements fall one way by chance."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n if n else 1.0


def masking_check(rows: pd.DataFrame, gradient_free: Sequence[str]) -> dict[str, Any]:
    """Samples only a gradient-free attack broke, and samples whose input gradient was zero or not finite."""
    n = len(rows)
    by_free = int(rows["broken_by"].isin(list(gradient_free)).sum()) if "broken_by" in rows and gradient_free else 0
    zero = int(rows["grad_zero"].astype(bool).sum()) if "grad_zero" in rows else 0
    fired = any(count >= max(2, MASKING_SHARE * n) for count in (by_free, zero))
    return {"flag": fired, "broken_only_without_gradients": by_free, "zero_gradients": zero, "n": n}


def unbounded_check(session: Any) -> dict[str, Any]:
    """Accuracy under L-inf PGD with eps 0.5 on the clean images of ``session`` (should be about 0)."""
    data, correct = session.data, 0
    classifier, runtime = session.classifier, session.runtime

    def model(x: torch.Tensor) -> torch.Tensor:
        with runtime.autocast():
            return classifier(x).float()

    for indices in batch_plan(len(data), session.config.batch_size):
        images, labels = (tensor.to(runtime.device) for tensor in stack_images(data, indices))
        generator = torch.Generator(device=runtime.device).manual_seed(session.config.seed)
        result = pgd(model, images, labels, UNBOUNDED_ATTACK, generator=generator)
        correct += int((~result.success).sum())
    accuracy = correct / len(data)
    return {"flag": accuracy > UNBOUNDED_MAX, "accuracy": accuracy, "eps": UNBOUNDED_ATTACK.eps,
            "steps": UNBOUNDED_ATTACK.steps, "n": len(data)}


def flag_list(checks: Mapping[str, Any]) -> list[str]:
    """``"STAGE: flag"`` for each stage check that fired, then the run-wide ones."""
    out = [f"{name}: {flag}" for name, stage in checks["stages"].items() for flag, check in stage.items()
           if check["flag"]]
    out += [f"{pair['transfer']}: transfer_stronger" for pair in checks["transfer_stronger"] if pair["flag"]]
    if checks["unbounded_not_zero"]["flag"]:
        out.append("unbounded_not_zero")
    return out


__all__ = ["MASKING_SHARE", "UNBOUNDED_ATTACK", "UNBOUNDED_MAX", "attack_flags", "attacked_stages",
           "convergence_check", "flag_list", "masking_check", "unbounded_check"]
