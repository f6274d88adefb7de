"""``typobench defend``: one suite on the model without defenses and with each given defense, in one session.

The model and data are loaded once; each row is one harness run (``harness.run.run_suite``) of the suite on
``session.with_defenses(row)`` in ``OUT/rows/<slug>/`` (resumable, read back when finished). PGD stages
differentiate through the defended classifier (adaptive); a stage with ``attack_on = "undefended"`` is the
transfer attack beside it; each defended run records its sanity flags (``defense_sanity``). Written:
``defend.json`` (the result envelope, every row's defenses, what each was chosen on, the table),
``defend.csv``, ``defend.md`` and ``defend.png``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.cache import content_key
from typobench.core.errors import UsageError
from typobench.core.options import option
from typobench.defenses.provenance import NO_DATA, provenance_text
from typobench.experiments.defend.baselines import (ablation_of, like_for_like, paired_vs_draws, random_rows,
                                                    typographic_suite, verdict)
from typobench.experiments.defend.plot import save_defense_picture
from typobench.experiments.defend.reading import Reading, plan_reading, run_reading
from typobench.experiments.defend.rows import DefenseRow, suite_row
from typobench.experiments.defend.table import defense_table, markdown
from typobench.harness.config import default_out_dir
from typobench.harness.results import envelope
from typobench.harness.run import RunOutcome, run_suite
from typobench.harness.session import Session
from typobench.suites import Suite

DEFEND_FILE = "defend.json"
ROWS_DIR = "rows"
RANDOM_DIR = "random"


@dataclass
class DefendOptions:
    """What ``typobench defend`` measures besides the suite (its own flags, declared once)."""

    random_draws: int = option(0, "for each ablate row, also ablate N distinct random sets of as many units of "
                                  "the layers they were chosen among (every set, when there are no more than N; "
                                  "typographic stages only): the table says whether the chosen units beat every "
                                  "set, p = 1/(sets+1)", minimum=0, metavar="N")
    lexicon_words: int | None = option(None, "the reading cost's word retrieval uses the first N words of the "
                                             "shipped lexicon", minimum=2, metavar="N", shown="all")
    reading: bool = option(True, "skip the reading cost (words alone on white, word retrieval over the lexicon)")


@dataclass
class DefendOutcome:
    out_dir: Path
    table: pd.DataFrame
    rows: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)


@dataclass
class Plan:
    """A row checked before anything runs: its session (provenance checked), what it was chosen on, its draws."""

    row: DefenseRow
    session: Session
    chosen_on: str
    selections: list[dict[str, Any]]
    draws: list[tuple[DefenseRow, Session]]
    reading: Reading | None = None


def plan_row(session: Session, row: DefenseRow, random_draws: int, lexicon_words: int | None = None,
             reading: bool = True) -> Plan:
    """``row`` and its random draws applied to ``session`` (each refused here, before any row runs, if a
    defense was chosen on the scored images or for another model), and what the row was chosen on."""
    defended = session.with_defenses(list(row.defenses))
    records = defended.provenance() if row.defenses else []
    if row.defenses:
        # Built now (and kept for the run; through ``classifier``, which orders the ranks' head builds): a
        # learned prefix for other weights, mean images that cannot be loaded, units a tower lacks fail before
        # the first row runs, not after.
        defended.classifier  # noqa: B018
    draws = [(draw, session.with_defenses(list(draw.defenses)))
             for draw in random_rows(row, session.model.model, random_draws, session.config.seed)]
    selections = [s for record in records for s in record["selections"]]
    return Plan(row, defended, provenance_text(records) if records else NO_DATA, selections, draws,
                plan_reading(defended, lexicon_words) if reading else None)


def run_defend(session: Session, suite: Suite, rows: Sequence[DefenseRow], out_dir: str | Path, *,
               random_draws: int = 0, progress: bool = True, overwrite: bool = False,
               log: Callable[[str], None] | None = None, reading: bool = True,
               lexicon_words: int | None = None) -> DefendOutcome:
    """Every row of ``rows`` (the first without defenses) through ``suite`` in ``session``, into ``out_dir``;
    each ``ablate`` row also against ``random_draws`` random unit sets of its size (``baselines``). A suite's
    ``[defense]`` tables are a row of their own (``rows.suite_row``). Every row is checked before any runs.
    ``reading``: each row also gets its reading cost (``reading``: words alone, word retrieval over the first
    ``lexicon_words`` words of the lexicon, all by default)."""
    if random_draws < 0:
        raise UsageError(f"--random-draws {random_draws}: the number of random unit sets must be 0 or more")
    out_dir = Path(out_dir)
    rows, suite = suite_row(rows, suite)
    suite.check(list(session.data.classnames))
    plans = [plan_row(session, row, random_draws, lexicon_words, reading) for row in rows]
    run = functools.partial(_run_row, out_dir=out_dir, progress=progress, overwrite=overwrite, log=log)
    done = [_run_plan(plan, suite, out_dir, run) for plan in plans]
    for plan, record in zip(plans, done):
        if plan.reading is not None:
            record["reading"] = run_reading(plan.reading, Path(record["run_dir"]), progress=progress,
                                            overwrite=overwrite)
    table = defense_table(done, session.config.seed)
    files = write_defend(out_dir, session, suite, done, table) if session.world.leader else []
    return DefendOutcome(out_dir, table, done, files)


def _run_plan(plan: Plan, suite: Suite, out_dir: Path, run: Callable[..., RunOutcome]) -> dict[str, Any]:
    row = plan.row
    outcome = run(plan.session, row, suite, out_dir / ROWS_DIR / row.slug)
    record = {"label": row.label, "chosen_on": plan.chosen_on, "selections": plan.selections,
              "run_dir": outcome.out_dir, "results": outcome.results, "predictions": outcome.predictions}
    if plan.draws:
        without_pgd = typographic_suite(suite)
        draw_runs = [run(draw_session, draw, without_pgd, out_dir / ROWS_DIR / row.slug / RANDOM_DIR / str(i + 1))
                     for i, (draw, draw_session) in enumerate(plan.draws)]
        draw_results = [d.results for d in draw_runs]
        stages = [s.name for s in without_pgd.stages]
        record["random_baseline"] = {**verdict(outcome.results, draw_results),
                                     "paired_vs_draws_mean": paired_vs_draws(outcome.predictions,
                                                                             [d.predictions for d in draw_runs], stages),
                                     "like_for_like": like_for_like(ablation_of(row), len(plan.draws),
                                                                    plan.session.model.model),
                                     "units": [d["defenses"][0]["units"] for d in draw_results]}
    return record


def _run_row(session: Session, row: DefenseRow, suite: Suite, row_dir: Path, *, out_dir: Path, progress: bool,
             overwrite: bool, log: Callable[[str], None] | None) -> RunOutcome:
    """``suite`` (without [defense] tables: ``suite_row``) in ``session``, the row's defenses already added."""
    outcome = run_suite(session, suite, row_dir, progress=progress, pictures=False, overwrite=overwrite)
    if log is not None:
        state = "finished earlier" if outcome.resumed_complete else f"done in {outcome.results['elapsed_s']:.0f}s"
        log(f"{row.label}: {state} ({Path(outcome.out_dir).relative_to(out_dir)})")
    return outcome


def write_defend(out_dir: Path, session: Session, suite: Suite, rows: Sequence[dict[str, Any]],
                 table: pd.DataFrame) -> list[Path]:
    stages = rows[0]["results"]["stages"]
    key = content_key(**session.identity(), suite=suite.sha256, rows=[r["label"] for r in rows])
    record = {
        **envelope("defend", config=session.describe_config(), config_hash=key, seed=session.config.seed,
                   model=session.model.describe(), dataset=session.describe_data()),
        "suite": suite.describe(),
        "rows": [{"defense": r["label"], "chosen_on": r["chosen_on"], "selections": r["selections"],
                  "run_dir": str(Path(r["run_dir"]).relative_to(out_dir)) if Path(r["run_dir"]).is_relative_to(out_dir)
                  else str(r["run_dir"]), "defenses": r["results"].get("defenses", []),
                  "defense_sanity": r["results"].get("defense_sanity"),
                  "random_baseline": r.get("random_baseline"), "reading": r.get("reading")} for r in rows],
        "table": table.astype(object).where(table.notna(), None).to_dict(orient="records"),
    }
    paths = [out_dir / DEFEND_FILE, out_dir / "defend.csv", out_dir / "defend.md", out_dir / "defend.png"]
    write_json_atomic(paths[0], record)
    write_text_atomic(paths[1], table.to_csv(index=False))
    write_text_atomic(paths[2], markdown(table, stages))
    save_defense_picture(paths[3], table, stages)
    return paths


def default_defend_dir(session: Session, suite: Suite, rows: Sequence[DefenseRow]) -> Path:
    """``runs/defend-<model>-<dataset>-<suite>-<hash>``."""
    key = content_key(config=session.config.semantic(), suite=suite.sha256,
                      rows=hashlib.sha256("\n".join(r.label for r in rows).encode()).hexdigest())
    return default_out_dir("defend", [session.config.model, session.config.dataset, suite.name], key)


__all__ = ["DEFEND_FILE", "DefendOutcome", "Plan", "plan_row", "default_defend_dir", "run_defend", "write_defend"]
