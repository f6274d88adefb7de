"""``typobench benchmark``: one suite on one model over many data sets, one summary table and their mean.

The model is loaded once (``Session.open`` for the first data set, ``Session.of`` over the same runtime and
model for the others); every data set is loaded and checked against the suite before any runs. Each data set
is one harness run (``harness.run.run_suite``) in ``OUT/datasets/<name>/`` (resumable, read back when
finished). Written: ``benchmark.json`` (the result envelope, the suite, each data set's identity and stages,
the mean, the table), ``benchmark.csv`` and ``benchmark.md`` (``table``: a row per data set, then the
unweighted mean, as FARE and clip_benchmark report it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.cache import content_key
from typobench.core.errors import UsageError
from typobench.core.options import check, option
from typobench.data import dataset_entry
from typobench.experiments.benchmark.table import MEAN, markdown, stage_names, summary_table, table_records
from typobench.harness.config import RunConfig, default_out_dir, load_data
from typobench.harness.results import envelope
from typobench.harness.run import run_suite
from typobench.harness.session import Session
from typobench.harness.world import World
from typobench.suites import Suite

BENCHMARK_FILE = "benchmark.json"
DATASETS_DIR = "datasets"
# In --data-root (and --classnames): replaced by each data set's name (clip_benchmark's convention).
PLACEHOLDER = "{dataset}"


def datasets_complaint(names: Sequence[str]) -> str | None:
    """What is wrong with a list of data set names (None: nothing): each must be registered, and given once."""
    if not names:
        return "needs at least one data set name"
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return f"names '{name}' twice: give each data set once (each has one run folder, OUT/{DATASETS_DIR}/{name})"
        seen.add(name)
        try:
            dataset_entry(name)
        except UsageError as exc:
            return str(exc)
    return None


@dataclass
class BenchmarkOptions:
    """What ``typobench benchmark`` takes besides a run's options (its own flags, declared once)."""

    datasets: list[str] = option(help="the data sets to evaluate, each once (see `typobench list datasets`); "
                                      "replaces --dataset", spaced=True, metavar="NAME", check=datasets_complaint)


@dataclass
class BenchmarkOutcome:
    out_dir: Path
    table: pd.DataFrame
    datasets: list[dict[str, Any]]
    stages: list[str]
    files: list[Path] = field(default_factory=list)


def per_dataset(text: str | None, name: str) -> str | None:
    """``text`` (a --data-root or --classnames path) with ``{dataset}`` replaced by ``name``."""
    return text.replace(PLACEHOLDER, name) if text else text


def dataset_config(config: RunConfig, name: str) -> RunConfig:
    """``config`` for data set ``name``: its --data-root and --classnames with ``{dataset}`` replaced."""
    return replace(config, dataset=name, data_root=per_dataset(config.data_root, name),
                   classnames_file=per_dataset(config.classnames_file, name))


def open_sessions(config: RunConfig, names: Sequence[str], world: World | None = None) -> list[Session]:
    """A session per data set sharing one model, loaded once; every data set is loaded here (a missing one
    fails before anything runs)."""
    first = Session.open(dataset_config(config, names[0]), world=world)
    sessions = [first]
    for name in names[1:]:
        other = dataset_config(config, name)
        sessions.append(Session.of(other, first.runtime, first.model, load_data(other, first.model),
                                   world=first.world))
    return sessions


def check_suite(sessions: Sequence[Session], suite: Suite) -> None:
    """The suite can run on every data set's classes (a text stage needs wrong class names, say), or one line
    naming the data set that it cannot: before any data set runs."""
    for session in sessions:
        try:
            suite.check(list(session.data.classnames))
        except UsageError as exc:
            raise UsageError(f"data set {session.config.dataset}: {exc}") from None


def default_benchmark_dir(config: RunConfig, suite: Suite, names: Sequence[str]) -> Path:
    """``runs/benchmark-<model>-<suite>-<hash>`` (the hash: the options, the data sets, the suite's content)."""
    semantic = {k: v for k, v in config.semantic().items() if k != "dataset"}
    key = content_key(config=semantic, datasets=list(names), suite=suite.sha256)
    return default_out_dir("benchmark", [config.model, suite.name], key)


def run_benchmark(config: RunConfig, suite: Suite, options: BenchmarkOptions, out_dir: str | Path | None = None, *,
                  progress: bool = True, overwrite: bool = False, log: Callable[[str], None] | None = None,
                  world: World | None = None) -> BenchmarkOutcome:
    """``suite`` on ``config``'s model over ``options.datasets``, into ``out_dir`` (default:
    :func:`default_benchmark_dir`). The names, every data set and the suite's fit to each are checked before
    any data set runs; a finished data set is read back, not recomputed."""
    check(options)
    names = list(options.datasets)
    out_dir = Path(out_dir or config.out or default_benchmark_dir(config, suite, names))
    sessions = open_sessions(config, names, world)
    check_suite(sessions, suite)
    done = []
    for name, session in zip(names, sessions):
        outcome = run_suite(session, suite, out_dir / DATASETS_DIR / name, progress=progress, pictures=False,
                            overwrite=overwrite)
        if log is not None:
            state = "finished earlier" if outcome.resumed_complete else f"done in {outcome.results['elapsed_s']:.0f}s"
            log(f"{name}: {state} ({Path(outcome.out_dir).relative_to(out_dir)})")
        done.append(dataset_record(name, outcome.results, Path(outcome.out_dir), out_dir))
    table = summary_table(done)
    stages = stage_names(done)
    first = sessions[0]
    files = write_benchmark(out_dir, config, first, suite, done, table) if first.world.leader else []
    return BenchmarkOutcome(out_dir, table, done, stages, files)


def dataset_record(name: str, results: dict[str, Any], run_dir: Path, out_dir: Path) -> dict[str, Any]:
    """One data set in benchmark.json: its identity, its run folder (relative to OUT) and every stage's
    accuracy with its interval and n, as its results.json has them."""
    data = results["dataset"]
    return {"name": name, "n": data["n"], "sample_hash": data["sample_hash"], "split": data.get("split"),
            "root": data.get("root"), "config_hash": results["config_hash"],
            "run_dir": str(run_dir.relative_to(out_dir)) if run_dir.is_relative_to(out_dir) else str(run_dir),
            "stages": [{"name": s["name"], "kind": s.get("kind"), "accuracy": s["accuracy"], "ci95": s["ci95"],
                        "n": s["n"]} for s in results["stages"]]}


def write_benchmark(out_dir: Path, config: RunConfig, session: Session, suite: Suite,
                    datasets: Sequence[dict[str, Any]], table: pd.DataFrame) -> list[Path]:
    """benchmark.json, benchmark.csv and benchmark.md in ``out_dir``."""
    described = {**session.describe_config(), "dataset": None, "data_root": config.data_root,
                 "classnames_file": config.classnames_file, "datasets": [d["name"] for d in datasets]}
    key = content_key(config=described, model=session.model.fingerprint(), suite=suite.sha256,
                      runs=[d["config_hash"] for d in datasets])
    mean = table[table["dataset"] == MEAN].iloc[0]
    record = {
        **envelope("benchmark", config=described, config_hash=key, seed=config.seed,
                   model=session.model.describe(), dataset=None),
        "suite": suite.describe(),
        "datasets": list(datasets),
        "mean": {"datasets": len(datasets), "n": int(mean["n"]),
                 "stages": [{"name": s, "accuracy": None if pd.isna(mean[s]) else float(mean[s])}
                            for s in stage_names(datasets)]},
        "table": table_records(table),
    }
    paths = [out_dir / BENCHMARK_FILE, out_dir / "benchmark.csv", out_dir / "benchmark.md"]
    write_json_atomic(paths[0], record)
    write_text_atomic(paths[1], table.to_csv(index=False))
    write_text_atomic(paths[2], markdown(table, stage_names(datasets)))
    return paths


__all__ = ["BENCHMARK_FILE", "DATASETS_DIR", "BenchmarkOptions", "BenchmarkOutcome", "check_suite", "dataset_config",
           "datasets_complaint", "default_benchmark_dir", "open_sessions", "per_dataset", "run_benchmark",
           "write_benchmark"]
