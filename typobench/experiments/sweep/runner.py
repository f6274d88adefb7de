"""Run a suite at every point of a grid on one session (model, data and head loaded once).

Each grid point is one harness run (``harness.run.run_suite``) in ``OUT/points/<slug>/``: its finished
batches while it runs, then ``predictions.csv``, ``suite.toml`` (the exact suite text, whose sha256 is
recorded) and ``results.json`` last, the mark of a finished point. A rerun skips finished points and
resumes a half-finished one at its next batch. ``OUT/sweep.json`` records what the sweep is (the result
envelope, the suite, every point), ``OUT/sweep.log`` what each run did, and the table and plots are
``OUT/sweep.csv``, ``OUT/sweep.parquet``, ``OUT/plot-*.png``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from typobench.core.atomic import write_json_atomic
from typobench.core.cache import content_key
from typobench.core.errors import UsageError
from typobench.core.options import option
from typobench.experiments.sweep.grid import expand_grid, parse_vary, point_slug
from typobench.experiments.sweep.plots import plot_sweep
from typobench.experiments.sweep.table import sweep_table, write_table
from typobench.harness.config import RunConfig, default_out_dir
from typobench.harness.results import envelope, utc_now
from typobench.harness.run import RunOutcome, run_suite
from typobench.harness.session import Session
from typobench.suites import Suite
from typobench.suites.edit import SuiteSpec, format_point, load_spec, override

SWEEP_FILE = "sweep.json"
SWEEP_LOG = "sweep.log"
POINTS_DIR = "points"

Note = Callable[..., None]  # note(message, echo=True): append to sweep.log, and show it when echo


@dataclass
class SweepOptions:
    """What ``typobench sweep`` takes besides a run's options (its own flags, declared once): the grid, read by
    :func:`plan_sweep`, and whether :func:`run_sweep` draws the plots."""

    vary: list[str] = option(factory=list, help="a suite parameter and its values (repeat for a grid; see below)",
                             metavar="PATH=V1,V2,...", repeat=True)
    plots: bool = option(True, "write the table only")


@dataclass
class SweepOutcome:
    """The finished sweep: its table (one row per point x stage), the points, which of them were
    finished earlier and skipped (indices), and the files written."""

    out_dir: Path
    table: pd.DataFrame
    points: list[dict[str, Any]]
    skipped: list[int] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@dataclass
class SweepPlan:
    """A sweep checked before anything is loaded: the suite, its grid points (each override already
    validated) and the output folder."""

    spec: SuiteSpec
    points: list[dict[str, Any]]
    out_dir: Path


def plan_sweep(config: RunConfig, vary_options: Sequence[str]) -> SweepPlan:
    """``typobench sweep``'s suite and ``--vary PATH=V1,V2`` options as a checked plan."""
    if config.suite is None:
        raise UsageError("sweep needs a suite to vary: pass --suite NAME or a .toml path")
    if not vary_options:
        raise UsageError("nothing to vary: pass --vary PATH=V1,V2,... (e.g. --vary text.size=8,12,16)")
    config.validate()
    spec = load_spec(config.suite)
    vary = [parse_vary(option) for option in vary_options]
    points = expand_grid(vary)
    for point in points:  # every grid point checked before the model is loaded
        override(spec, point)
    out_dir = Path(config.out) if config.out else default_sweep_dir(config, spec, vary)
    return SweepPlan(spec, points, out_dir)


def default_sweep_dir(config: RunConfig, spec: SuiteSpec, vary: Sequence[tuple[str, Sequence[Any]]]) -> Path:
    """``runs/sweep-<model>-<dataset>-<suite>-<hash of config, grid and suite text>``."""
    key = content_key(config=config.semantic(), vary=[[p, list(v)] for p, v in vary],
                      suite=hashlib.sha256(spec.text).hexdigest())
    return default_out_dir("sweep", [config.model, config.dataset, spec.name], key)


def run_sweep(session: Session, spec: SuiteSpec, points: Sequence[Mapping[str, Any]], out_dir: str | Path, *,
              progress: bool = True, inner_progress: bool = False, overwrite: bool = False,
              plots: bool = True, log: Callable[[str], None] | None = None) -> SweepOutcome:
    """Run ``spec`` overridden by each of ``points`` in ``session``, resumably, into ``out_dir``.

    Every point is validated before anything runs. The table is rewritten after each point, so an
    interrupted sweep leaves the table of the points it finished. ``overwrite`` replaces points
    computed with another configuration (else they are refused); ``log`` shows notable events.
    """
    out_dir = Path(out_dir)
    points = [dict(p) for p in points]
    if not points:
        raise UsageError("the grid is empty: vary at least one parameter with one value")
    specs = [override(spec, p) for p in points]
    suites = [s.build() for s in specs]
    for suite in suites:
        suite.check(list(session.data.classnames))
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".sweep.*.tmp"):  # left by a sweep killed while writing its table
        stale.unlink(missing_ok=True)
    slugs = [point_slug(p) for p in points]
    record = sweep_record(session, spec, points, slugs, suites)  # every rank: it builds the head together
    leader = session.world.leader  # spread over processes (torchrun), rank 0 alone writes the sweep's files
    if leader:
        write_json_atomic(out_dir / SWEEP_FILE, record)
    note = _note_taker(out_dir / SWEEP_LOG, log) if leader else _no_note
    results: list[dict[str, Any] | None] = [None] * len(points)
    skipped = []
    bar = tqdm(total=len(points), desc="sweep", unit="point", disable=not (progress and session.world.leader))
    try:
        for i, (point, slug, spec_i, suite) in enumerate(zip(points, slugs, specs, suites)):
            bar.set_postfix_str(format_point(point)[:60])
            label = f"[{i + 1}/{len(points)}] {format_point(point)}"
            outcome = _run_point(session, suite, spec_i.text, out_dir / POINTS_DIR / slug, label, note,
                                 progress=inner_progress, overwrite=overwrite)
            results[i] = outcome.results
            if outcome.resumed_complete:
                skipped.append(i)
            if leader:
                write_table(out_dir, sweep_table(points, results))
            bar.update(1)
    finally:
        bar.close()
    table = sweep_table(points, results)
    files = write_table(out_dir, table) if leader else []
    if plots and leader:
        files += plot_sweep(table, out_dir, title=_title(session, spec))
    return SweepOutcome(out_dir, table, points, skipped, files)


def sweep_record(session: Session, spec: SuiteSpec, points: Sequence[Mapping[str, Any]], slugs: Sequence[str],
                 suites: Sequence[Suite]) -> dict[str, Any]:
    """sweep.json: the result envelope (hash over the session's identity, the suite text and the
    points), the head, the suite, the varied parameters and every point with its folder and suite sha256."""
    suite_sha256 = hashlib.sha256(spec.text).hexdigest()
    json_points = [{k: _json_value(v) for k, v in p.items()} for p in points]
    key = content_key(**session.identity(), suite=suite_sha256, points=json_points)
    return {
        **envelope("sweep", config=session.describe_config(), config_hash=key, seed=session.config.seed,
                   model=session.model.describe(), dataset=session.describe_data()),
        "head": session.head_info,
        "suite": {"name": spec.name, "source": spec.source, "sha256": suite_sha256},
        "params": list(dict.fromkeys(k for p in points for k in p)),
        "points": [{"index": i, "point": p, "dir": f"{POINTS_DIR}/{slug}", "suite_sha256": s.sha256}
                   for i, (p, slug, s) in enumerate(zip(json_points, slugs, suites))],
    }


def _json_value(value: Any) -> Any:
    """A point value as strict JSON holds it: inf and nan (valid in suites, e.g. pgd.eps) as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _run_point(session: Session, suite: Suite, suite_text: bytes, point_dir: Path, label: str, note: Note, *,
               progress: bool, overwrite: bool) -> RunOutcome:
    """One grid point: a harness run of its suite (read back when finished earlier), noted in the log."""
    def started(done: int, total: int) -> None:
        note(f"{label}: " + (f"resuming, {done} of {total} batches finished earlier" if done
                             else f"start, {total} batches"), echo=bool(done))

    outcome = run_suite(session, suite, point_dir, progress=progress, pictures=False, overwrite=overwrite,
                        suite_text=suite_text, on_start=started)
    if outcome.resumed_complete:
        note(f"{label}: finished earlier, skipped")
    else:
        note(f"{label}: done in {outcome.results['elapsed_s']:.1f}s: {_short_metrics(outcome.results['stages'])}")
    return outcome


def _no_note(message: str, echo: bool = True) -> None:
    """The log of a rank other than 0: rank 0 keeps sweep.log."""


def _note_taker(path: Path, log: Callable[[str], None] | None) -> Note:
    def note(message: str, echo: bool = True) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{utc_now()} {message}\n")
        if log is not None and echo:
            log(message)

    return note


def _short_metrics(stages: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for s in stages:
        text = f"{s['name']} acc {100 * s['accuracy']:.1f}%"
        targeted = s.get("targeted_success") or {}
        if targeted.get("value") is not None:
            text += f" targeted {100 * targeted['value']:.1f}%"
        parts.append(text)
    return "; ".join(parts)


def _title(session: Session, spec: SuiteSpec) -> str:
    label = session.model.describe().get("label")
    return f"{label} on {session.data.name} (n={len(session.data)}), suite {spec.name}"


__all__ = ["SWEEP_FILE", "SWEEP_LOG", "SweepOptions", "SweepOutcome", "SweepPlan", "default_sweep_dir", "plan_sweep",
           "run_sweep",
           "sweep_record"]
