"""Entries: one JSON file per (board, model), built from a finished run by ``typobench submit``.

An entry is self-contained: besides the stated numbers it embeds the compact per-sample table they
come from (``predictions``), so ``typobench leaderboard validate`` can re-score it. See
``leaderboards/README.md`` for the field list.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from typobench.data import sample_hash
from typobench.core.errors import UsageError
from typobench.defenses import defense_fingerprint
from typobench.leaderboard.attack_record import FIELD as ATTACK_FIELD, run_attack_record
from typobench.leaderboard.provenance import run_provenance
from typobench.harness.results import PREDICTIONS_FILE, RESULTS_FILE, utc_now
from typobench.typographic.stroop import STROOP_CSV, STROOP_JSON
from typobench.leaderboard.column_kinds import STROOP_STAGE
from typobench.leaderboard.protocol import (
    STROOP_DATASET,
    STROOP_SUITE,
    Board,
    Boards,
    is_safe_id,
    stroop_protocol_sha256,
)
from typobench.leaderboard.scoring import entry_stage_metrics, headline_values
from typobench.leaderboard.stage_columns import entry_stage_columns

ENTRY_SCHEMA = 1
# Model labels: open_clip names and tags, hf-hub:org/repo. No '..', no leading '/', no control characters.
MODEL_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,199}")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def is_safe_label(text: Any) -> bool:
    return (isinstance(text, str) and MODEL_LABEL.fullmatch(text) is not None and ".." not in text
            and "//" not in text and not text.endswith("/"))


def model_slug(label: str) -> str:
    """The entry's file stem for a model label: ``ViT-B-32:openai`` -> ``ViT-B-32_openai``."""
    if not is_safe_label(label):
        raise UsageError(f"model name '{label}' is not allowed: use letters, digits and . _ - : @ + / = "
                         "(no '..', no leading '/'); pass --model-name to choose one")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label)
    if not is_safe_id(slug):  # pragma: no cover - MODEL_LABEL makes this unreachable
        raise UsageError(f"model name '{label}' gives no safe file name")
    return slug


def entry_path(entries_dir: str | Path, board_id: str, label: str) -> Path:
    """``<entries_dir>/<board>/<model slug>.json``; never outside ``entries_dir``."""
    if not is_safe_id(board_id):
        raise UsageError(f"board id '{board_id}' is not a safe name")
    base = Path(entries_dir)
    path = base / board_id / f"{model_slug(label)}.json"
    if base.resolve() not in path.resolve().parents:  # pragma: no cover - both parts are safe ids
        raise UsageError(f"entry path {path} would leave {base}")
    return path


# -- JSON -----------------------------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def dumps_entry(obj: Any, indent: int = 0) -> str:
    """JSON with nested objects indented and lists of scalars on one line (readable, diff-friendly)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps_entry(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(_is_scalar(v) for v in obj):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in obj) + "]"
        return "[\n" + ",\n".join(f"{inner}{dumps_entry(v, indent + 2)}" for v in obj) + "\n" + pad + "]"
    if isinstance(obj, np.generic):
        obj = obj.item()
    return json.dumps(obj, allow_nan=False)


def write_entry(path: str | Path, entry: dict[str, Any]) -> None:
    from typobench.core.atomic import write_text_atomic

    write_text_atomic(path, dumps_entry(entry) + "\n")


# -- building an entry from a run -----------------------------------------------------------------


def default_submitter() -> str:
    try:
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5)
        name = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or "anonymous"


def _model(model: dict[str, Any], model_name: str | None, defenses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The entry's model; a defended model (a run with ``defenses``) is another entry than the bare one: its
    label says so and ``defense_sha256`` joins the weights in its identity."""
    tag = model.get("pretrained")
    if isinstance(tag, str) and ("/" in tag or "\\" in tag or tag.lower().endswith(CHECKPOINT_SUFFIXES)):
        tag = PurePosixPath(tag.replace("\\", "/")).name  # a local checkpoint: its file name, not where it lies
    defense = defense_fingerprint(defenses) if defenses else None
    label = model_name or (f"{model['name']}:{tag}" if tag else model["name"])
    label = label if model_name or not defense else f"{label}+defended-{defense[:8]}"
    model_slug(label)
    out = {
        "name": model["name"],
        "tag": tag,
        "label": label,
        "checkpoint_sha256": model.get("checkpoint_sha256"),
        "weights_sha256": model["weights_sha256"],
        "random_init": bool(model.get("random_init", False)),
    }
    return {**out, "defenses": [d["spec"] for d in defenses], "defense_sha256": defense} if defense else out


def _versions(versions: dict[str, Any]) -> dict[str, Any]:
    return {key: versions.get(key) for key in ("typobench", "open_clip", "torch", "python", "git_commit")}


def _int_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A prediction-file column as ints, blanks as -1 (how ``stage_metrics`` reads ``target``)."""
    if column not in frame.columns:
        return np.full(len(frame), -1, dtype=np.int64)
    return pd.to_numeric(frame[column], errors="coerce").fillna(-1).astype(np.int64).to_numpy()


def suite_predictions_table(predictions: pd.DataFrame, stage_names: list[str]) -> dict[str, Any]:
    """The compact table of a run: sample ids and labels once, then pred (and the optional columns of
    ``leaderboard.stage_columns`` that the stage has) per stage."""
    if not stage_names:
        raise UsageError("the run has no stages")
    first = predictions[predictions["stage"] == stage_names[0]]
    sample_ids = first["sample_id"].astype(str).tolist()
    if len(set(sample_ids)) != len(sample_ids):
        raise UsageError(f"{PREDICTIONS_FILE}: stage '{stage_names[0]}' repeats sample ids")
    labels = _int_column(first, "label")
    stages: dict[str, dict[str, list[int]]] = {}
    for name in stage_names:
        frame = predictions[predictions["stage"] == name]
        frame = frame.set_index(frame["sample_id"].astype(str))
        if len(frame) != len(sample_ids) or set(frame.index) != set(sample_ids):
            raise UsageError(f"{PREDICTIONS_FILE}: stage '{name}' does not cover the same {len(sample_ids)} samples "
                             f"as stage '{stage_names[0]}': the run is incomplete, run it again")
        frame = frame.loc[sample_ids]
        if not np.array_equal(_int_column(frame, "label"), labels):
            raise UsageError(f"{PREDICTIONS_FILE}: stage '{name}' gives other labels than stage '{stage_names[0]}'")
        stages[name] = {"pred": _int_column(frame, "pred").tolist(), **entry_stage_columns(frame)}
    return {"sample_ids": sample_ids, "label": labels.tolist(), "stages": stages}


def _stated_stage(stage: dict[str, Any]) -> dict[str, Any]:
    return {"name": stage["name"], **entry_stage_metrics(stage)}


def _finish(board: Board, boards: Boards, *, model: dict, dataset: dict, suite: dict, head: dict, stages: list,
            versions: dict, run: dict, table: dict, submitter: str, date: str | None,
            attack: dict | None = None) -> dict[str, Any]:
    entry = {
        "entry_schema": ENTRY_SCHEMA,
        "board": board.id,
        "protocol_version": boards.protocol_version,
        "model": model,
        "dataset": dataset,
        "suite": suite,
        "head": head,
        "metrics": {"stages": stages, "headline": headline_values(board, stages)},
        "versions": versions,
        "run": run,
        "submitted": {"by": submitter, "date": date or utc_now()},
        "predictions": table,
    }
    return {**entry, ATTACK_FIELD: attack} if attack else entry


def entry_from_results(run_dir: Path, boards: Boards, *, submitter: str, model_name: str | None = None,
                       date: str | None = None) -> tuple[Board, dict[str, Any]]:
    """The entry of a finished ``typobench run`` (results.json + predictions.csv)."""
    from typobench.harness.results import read_predictions, read_results

    try:
        results = read_results(run_dir)
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{run_dir / RESULTS_FILE} cannot be read ({exc}): pass a finished run's --out folder") from exc
    if not (run_dir / PREDICTIONS_FILE).is_file():
        raise UsageError(f"{run_dir / PREDICTIONS_FILE} is missing: a submission needs the per-sample predictions")
    suite = results.get("suite")
    if not suite:
        raise UsageError(f"{run_dir} was run without a suite (--suite none): boards need a published suite")
    dataset, head = results["dataset"], results["head"]["kind"]
    board = boards.find(dataset["name"], suite["name"], head, suite.get("sha256"))
    if board is None:
        raise UsageError(f"no board for ({dataset['name']}, suite {suite['name']}, head {head}): boards are "
                         f"{boards.describe()}")
    stage_names = [s["name"] for s in results["stages"]]
    table = suite_predictions_table(read_predictions(run_dir), stage_names)
    config = results.get("config", {})
    # submit checks what the defenses were chosen on again: the run may predate the check, or be edited
    provenance = run_provenance(results, run_dir, table["sample_ids"])
    model = _model(results["model"], model_name, results.get("defenses"))
    return board, _finish(
        board, boards,
        model={**model, "provenance": provenance} if provenance is not None else model,
        dataset={"name": dataset["name"], "split": dataset["split"], "n": dataset["n"],
                 "num_classes": dataset["num_classes"], "sample_hash": dataset["sample_hash"]},
        suite={"name": suite["name"], "sha256": suite["sha256"], "protocol_version": suite["protocol_version"]},
        head={"kind": head},
        stages=[_stated_stage(s) for s in results["stages"]],
        versions=_versions(results.get("versions", {})),
        run={"created": results.get("created"), "config_hash": results.get("config_hash"),
             "seed": results.get("seed", config.get("seed")), "precision": config.get("precision"),
             "limit": dataset.get("limit")},
        table=table, submitter=submitter, date=date, attack=run_attack_record(results),
    )


def stroop_sample_id(font: str, size: str, ink: str, word: str) -> str:
    return f"{font}|{size}|{ink}|{word}"


def entry_from_stroop(run_dir: Path, boards: Boards, *, submitter: str, model_name: str | None = None,
                      date: str | None = None) -> tuple[Board, dict[str, Any]]:
    """The entry of a finished ``typobench stroop`` run (stroop.json + stroop.csv), for the board's prompt."""
    board = boards.made_from(STROOP_JSON)
    if board is None:
        raise UsageError("no Stroop board is defined in boards.toml")
    try:
        record = json.loads((run_dir / STROOP_JSON).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{run_dir / STROOP_JSON} cannot be read ({exc})") from exc
    if not (run_dir / STROOP_CSV).is_file():
        raise UsageError(f"{run_dir / STROOP_CSV} is missing: a submission needs the per-stimulus predictions")
    prompts = [r["prompt"] for r in record["results"]]
    if board.prompt not in prompts:
        raise UsageError(f"{run_dir} has no result for the board's prompt \"{board.prompt}\": run `typobench stroop` "
                         "with its default prompt")
    index = prompts.index(board.prompt)
    palette = list(record["palette"])
    design = {key: record[key] for key in ("palette", "words", "neutral", "fonts", "sizes", "background")}
    rows = pd.read_csv(run_dir / STROOP_CSV, dtype=str, keep_default_na=False)
    rows = rows[rows["prompt_index"] == str(index)]
    position = {name: i for i, name in enumerate(palette)}
    unknown = sorted(set(rows["ink"]) - set(position) | set(rows["pred"]) - set(position))
    if unknown:
        raise UsageError(f"{STROOP_CSV}: colours {', '.join(unknown)} are not in the palette of {STROOP_JSON}")
    sample_ids = [stroop_sample_id(*r) for r in zip(rows["font"], rows["size"], rows["ink"], rows["word"])]
    words = [position[w] if w in position and w != record["neutral"] else -1 for w in rows["word"]]
    table = {"sample_ids": sample_ids, "label": [position[i] for i in rows["ink"]], "word": words,
             "stages": {STROOP_STAGE: {"pred": [position[p] for p in rows["pred"]]}}}
    metrics = record["results"][index]["metrics"]
    config = record.get("config", {})
    return board, _finish(
        board, boards,
        model=_model(record["model"], model_name),
        dataset={"name": STROOP_DATASET, "split": board.dataset.split, "n": len(sample_ids),
                 "num_classes": len(palette), "sample_hash": sample_hash(sample_ids)},
        suite={"name": STROOP_SUITE, "sha256": stroop_protocol_sha256(design, board.prompt or ""), "protocol_version": 1},
        head={"kind": "zeroshot", "prompt": board.prompt},
        stages=[{"name": STROOP_STAGE, **{key: metrics[key] for key in metrics}}],
        versions=_versions(record.get("versions", {})),
        run={"created": record.get("created"), "config_hash": record.get("config_hash"), "seed": config.get("seed"),
             "precision": config.get("precision"), "limit": None},
        table=table, submitter=submitter, date=date,
    )


def entry_from_run(run_dir: str | Path, boards: Boards, **options: Any) -> tuple[Board, dict[str, Any]]:
    """The entry of a finished run folder: a ``typobench run`` or a ``typobench stroop`` output."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"results folder '{run_dir}' not found: pass the --out folder of a finished run")
    if (run_dir / RESULTS_FILE).is_file():
        return entry_from_results(run_dir, boards, **options)
    if (run_dir / STROOP_JSON).is_file():
        return entry_from_stroop(run_dir, boards, **options)
    raise UsageError(f"no {RESULTS_FILE} or {STROOP_JSON} in '{run_dir}': pass the --out folder of a finished "
                     "`typobench run` or `typobench stroop`")
