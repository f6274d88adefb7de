"""A suite's ``[neurons]`` analysis, right after ``typobench run`` made (or read back) the run: in the
run's own session, so the model, data and head are not loaded a second time."""

from __future__ import annotations

import json

from typobench.harness.run import RunOutcome
from typobench.neurons.analysis import NeuronsOutcome, analyze
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.blame.replay import replay_outcome
from typobench.neurons.report import JSON_FILE
from typobench.suites.neurons_option import neurons_config


def explain_run(outcome: RunOutcome, *, progress: bool = True) -> NeuronsOutcome | None:
    """The suite's ``[neurons]`` analysis of ``outcome``; None when the suite has none, or when the run's
    folder already holds the same analysis of the same run (then a note says so in ``outcome.notes``)."""
    if outcome.suite is None or outcome.suite.neurons is None:
        return None
    replay = replay_outcome(outcome)
    run_config = replay.config
    config = neurons_config(outcome.suite.neurons, str(outcome.out_dir), device=run_config.device,
                            cache_dir=run_config.cache_dir, batch_size=run_config.batch_size)
    if _already_analysed(config, outcome):
        outcome.notes.append(f"neurons: {outcome.out_dir / JSON_FILE} already holds this analysis, not re-run")
        return None
    return analyze(config, replay=replay, progress=progress)


def _already_analysed(config: NeuronsConfig, outcome: RunOutcome) -> bool:
    """Whether the run's neurons.json was made of this very run with the same method options."""
    previous = outcome.out_dir / JSON_FILE
    if not previous.exists():
        return False
    report = json.loads(previous.read_text())
    same_run = report.get("run", {}).get("config_hash") == outcome.results.get("config_hash")
    return same_run and config.same_method(report.get("config", {}))


__all__ = ["explain_run"]
