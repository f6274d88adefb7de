"""Run a suite in a session and write its record: results.json, predictions.csv, pictures.

This is ``typobench run`` as a library function, and each grid point of a sweep.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from typobench.core.atomic import write_bytes_atomic
from typobench.core.runtime import adopt_compute, compute_record
from typobench.core.errors import IntegrityError, UsageError
from typobench.harness.attack_checks import attack_flags
from typobench.harness.config import RunConfig, default_out_dir
from typobench.harness.defense_support import run_sanity
from typobench.harness.pictures import save_example_grid, save_stage_accuracy
from typobench.harness.results import (
    RESULTS_FILE,
    envelope,
    read_predictions,
    read_results,
    summarise_stages,
    write_results,
)
from typobench.harness.lock import output_lock
from typobench.harness.resume import BatchStore
from typobench.harness.session import Session
from typobench.harness.world import World
from typobench.stages.base import CleanStage, Stage
from typobench.suites import Suite, read_suite

SUITE_FILE = "suite.toml"
# Draws an attack averages its gradient over against a randomised defense (Athalye et al. 2018 use 10-100+).
EOT_DRAWS = 20
log = logging.getLogger("typobench")


@dataclass
class RunOutcome:
    out_dir: Path
    results: dict[str, Any]
    predictions: pd.DataFrame
    resumed_complete: bool = False
    notes: list[str] = field(default_factory=list)
    session: Session | None = None  # the session that ran it (execute): later analyses reuse its model and data
    suite: Suite | None = None
    neurons: Any = None  # the NeuronsOutcome of the suite's [neurons] analysis, when it ran


def run_suite(session: Session, suite: Suite | None, out_dir: str | Path | None = None, *, progress: bool = True,
              pictures: bool = True, overwrite: bool = False, suite_text: bytes | None = None,
              on_start: Callable[[int, int], None] | None = None) -> RunOutcome:
    """Every stage of ``suite`` (only ``clean`` when None) on the session's data, written to ``out_dir``.

    The folder is locked for the whole run. Finished batches are kept in it while the run goes (an
    interrupted run resumes); a finished run of the same configuration is read back instead of
    recomputed. ``out_dir`` None: a default folder under ``runs/`` named by the configuration.
    ``suite_text`` (the suite's exact TOML) is saved as suite.toml next to the results.
    ``on_start(done, total)`` is told how many batches were finished earlier, before evaluating.
    The suite's ``[defense]`` tables are added after the session's own defenses (the outcome's session).
    """
    stages = suite.stages if suite else [CleanStage()]
    if suite:
        suite.check(list(session.data.classnames))
        session = session.with_head_protocol(suite.head).with_defenses(suite.defenses)
    stages = with_eot_against(session, stages)
    key = session.run_key(stages, suite.sha256 if suite else None)
    config = session.config
    out_dir = Path(out_dir) if out_dir else default_out_dir("", [config.model, config.dataset, config.head], key)
    world = session.world
    with leader_lock(world, out_dir):
        finished = world.leader_does(lambda: finished_results(out_dir, key, overwrite))
        if world.broadcast_text("finished" if finished is not None else "") == "finished":
            return RunOutcome(out_dir, read_results(out_dir), read_predictions(out_dir), resumed_complete=True,
                              session=session)
        started = time.perf_counter()
        store = BatchStore(out_dir, key)
        store.compute = adopt_recorded_compute(world, store, session.runtime.precision)
        predictions = session.predict_stages(stages, store, progress=progress, on_start=on_start)
        world.leader_does(lambda: _write(session, suite, stages, key, store, predictions, pictures=pictures,
                                         suite_text=suite_text, elapsed=time.perf_counter() - started))
    return RunOutcome(out_dir, read_results(out_dir), read_predictions(out_dir), session=session)


def adopt_recorded_compute(world: World, store: BatchStore, precision: str) -> dict[str, Any]:
    """Every rank computes as the run in ``store`` was started (its intra-op thread count and deterministic
    flag), whatever the launcher set (torchrun sets OMP_NUM_THREADS=1, a plain run uses every core): float
    sums depend on the thread count, and resumed batches must match the finished ones bit for bit. A new
    run computes as rank 0 does. Returns the record, which the store keeps."""
    recorded = store.recorded_compute() if world.leader else None  # rank 0's view of the folder
    mine = compute_record(precision)
    agreed = json.loads(world.broadcast_text(json.dumps(recorded or mine)))
    changes = adopt_compute(agreed)
    if changes and recorded:
        log.warning("%s was started computing with %s: this process adopts it (%s) so that resumed batches match",
                    store.dir.parent, f"{agreed['threads']} intra-op threads", ", ".join(changes))
    return compute_record(precision)


def with_eot_against(session: Session, stages: list[Stage]) -> list[Stage]:
    """Against a randomised defense, a gradient attack that averages over one draw attacks one arbitrary draw:
    every such attack averages ``EOT_DRAWS`` draws instead (recorded in its stage's description)."""
    if not any(defense.randomised for defense in session.defenses):
        return list(stages)
    return [stage.with_eot(EOT_DRAWS) for stage in stages]


@contextmanager
def leader_lock(world: World, out_dir: Path) -> Iterator[None]:
    """The output folder locked by rank 0 for the whole run; a refusal is raised on every rank."""
    with ExitStack() as stack:
        world.leader_does(lambda: stack.enter_context(output_lock(out_dir)))
        yield


def _write(session: Session, suite: Suite | None, stages: list[Stage], key: str, store: BatchStore,
           predictions: pd.DataFrame, *, pictures: bool, suite_text: bytes | None, elapsed: float) -> None:
    """results.json (with how the run was spread), predictions.csv, pictures: once, from every rank's batches."""
    out_dir = store.dir.parent
    check_complete(predictions, stages, session.data.sample_ids, store.dir)
    stage_info = [stage.describe() for stage in stages]
    results = {
        **envelope("run", config=session.describe_config(), config_hash=key, seed=session.config.seed,
                   model=session.model.describe(), dataset=session.describe_data()),
        "head": session.head_info,
        **({"defenses": session.defense_records(), "defense_provenance": session.provenance()}
           if session.defenses else {}),
        "suite": suite.describe() if suite else None,
        "stages": summarise_stages(predictions, stage_info, session.data.classnames),
        "spread": {"world_size": session.world.size, "attempts": store.spread()},
        "elapsed_s": round(elapsed, 3),
    }
    if session.defenses:
        results["defense_sanity"] = run_sanity(session.classifier, session.data, results["stages"],
                                               n=session.config.batch_size, device=session.runtime.device)
    checks = attack_flags(session, stages, results["stages"], predictions, session.config.attack_checks)
    if checks is not None:
        results["attack_checks"] = checks
    results["pictures"] = save_pictures(out_dir, store, results, predictions) if pictures else []
    if suite_text is not None:
        write_bytes_atomic(out_dir / SUITE_FILE, suite_text)
    write_results(out_dir, results, predictions)
    store.clear()


def check_complete(predictions: pd.DataFrame, stages: Sequence[Stage], sample_ids: Sequence[str],
                   where: Path) -> None:
    """Every sample exactly once in every stage, or ``IntegrityError``: never a result with a smaller n."""
    expected = pd.Series(list(sample_ids)).value_counts()
    for stage in stages:
        got = predictions.loc[predictions["stage"] == stage.name, "sample_id"].astype(str).value_counts()
        if got.reindex(expected.index, fill_value=0).eq(1).all() and len(got) == len(expected):
            continue
        missing = int((got.reindex(expected.index, fill_value=0) == 0).sum())
        twice = int((got > 1).sum())
        raise IntegrityError(f"stage '{stage.name}' has {missing} of {len(expected)} samples missing and {twice} "
                             f"present more than once in the finished batches of {where}: nothing was written; "
                             "delete that folder and run the same command again")


def evaluate_in_memory(session: Session, suite: Suite, *, progress: bool = False) -> RunOutcome:
    """``run_suite`` in a temporary folder that is removed afterwards: figures and predictions only."""
    with tempfile.TemporaryDirectory(prefix="typobench-") as folder:
        return run_suite(session, suite, Path(folder) / "run", progress=progress, pictures=False)


def execute(config: RunConfig, *, progress: bool = True) -> RunOutcome:
    """``typobench run``: open a session for ``config`` and run its suite (only ``clean`` when ``suite`` is None)."""
    config.validate()
    suite = read_suite(config.suite) if config.suite else None
    session = Session.open(config)
    outcome = run_suite(session, suite, config.out, progress=progress, overwrite=config.overwrite)
    outcome.suite = suite
    return outcome


def save_pictures(out_dir: Path, store: BatchStore, results: dict[str, Any], predictions: pd.DataFrame) -> list[str]:
    """examples.png (a few images through every stage) and stages.png (accuracy per stage); their names."""
    examples, sample_ids = store.load_examples()
    examples = {stage["name"]: examples[stage["name"]] for stage in results["stages"] if stage["name"] in examples}
    classnames = results["dataset"]["classnames"]
    if sample_ids:
        save_example_grid(out_dir / "examples.png", examples, sample_ids, predictions, classnames)
    title = f"{results['model']['label']} on {results['dataset']['name']} ({results['head']['kind']})"
    save_stage_accuracy(out_dir / "stages.png", results["stages"], title=title)
    return ["examples.png", "stages.png"] if sample_ids else ["stages.png"]


def finished_results(out_dir: Path, key: str, overwrite: bool) -> dict[str, Any] | None:
    """The results of an identical finished run in ``out_dir``, if there is one.

    A folder that holds another configuration's results or unfinished batches is refused, unless
    ``overwrite``: then they are removed.
    """
    if (out_dir / RESULTS_FILE).exists():
        previous = read_results(out_dir)
        if previous.get("config_hash") == key:
            return previous
        if not overwrite:
            raise UsageError(f"{out_dir} already holds results of a different configuration: "
                             "pass another --out, or --overwrite to replace them")
        (out_dir / RESULTS_FILE).unlink()
    store = BatchStore(out_dir, key)
    if overwrite and store.dir.exists() and store.recorded_key() != key:
        shutil.rmtree(store.dir)
    return None


__all__ = ["RunOutcome", "SUITE_FILE", "evaluate_in_memory", "execute", "finished_results", "run_suite"]
