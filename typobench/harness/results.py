"""The record of a run that leaderboards and scripts trust: the result envelope every command writes,
results.json and predictions.csv, and the per-stage figures.

Files are written atomically (temporary file, then rename): a reader never sees half a file.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.metrics import per_class_accuracy, rate
from typobench.harness.twoway import two_way_summary

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.csv"


def targeted_eligible(targets: np.ndarray, labels: np.ndarray, clean_pred: np.ndarray | None) -> np.ndarray:
    """The samples a targeted success counts [n] (bool): a real target (>= 0) other than the label, that the
    clean image was not already predicted as (``clean_pred`` None: no clean stage to compare with)."""
    eligible = (targets >= 0) & (targets != labels)
    return eligible if clean_pred is None else eligible & (clean_pred != targets)


def stage_metrics(frame: pd.DataFrame, classnames: Sequence[str], *, clean: pd.DataFrame | None = None) -> dict[str, Any]:
    """Accuracy with its Wilson CI (and targeted success when the stage has targets) for one stage.

    Targeted success counts only eligible samples: a real target (>= 0) that differs from the
    label and that the clean image was not already predicted as.
    """
    labels = frame["label"].to_numpy()
    preds = frame["pred"].to_numpy()
    accuracy = rate(preds == labels)
    metrics: dict[str, Any] = {
        "accuracy": accuracy["value"],
        "ci95": accuracy["ci95"],
        "n": accuracy["n"],
        "per_class": per_class_accuracy(labels, preds, classnames),
    }
    targets = pd.to_numeric(frame["target"], errors="coerce").fillna(-1).astype(int).to_numpy() \
        if "target" in frame.columns else np.full(len(frame), -1)
    if (targets >= 0).any():
        clean_pred = None if clean is None else clean.set_index("sample_id").loc[frame["sample_id"], "pred"].to_numpy()
        eligible = targeted_eligible(targets, labels, clean_pred)
        metrics["targeted_success"] = rate(preds[eligible] == targets[eligible])
    fractions = pd.to_numeric(frame.get("pixel_fraction", pd.Series(dtype=float)), errors="coerce").dropna()
    if len(fractions):
        metrics["pixel_fraction_mean"] = float(fractions.mean())
    two_way = two_way_summary(frame)
    if two_way is not None:
        metrics["two_way"] = two_way
    read = frame["ocr_legible"].map(lambda v: str(v) not in ("", "nan", "None")) if "ocr_legible" in frame.columns else None
    if read is not None and read.any():  # only the stages that wrote a text were read
        metrics["legibility"] = legibility_summary(frame[read.to_numpy()])
    return metrics


def legibility_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """The rate the OCR read the written word back, and the accuracy on the samples it read."""
    legible = frame["ocr_legible"].map(lambda v: str(v).strip().lower() in ("true", "1")).to_numpy(dtype=bool)
    correct = (frame["pred"] == frame["label"]).to_numpy()
    return {"legible": rate(legible), "accuracy_legible": rate(correct[legible])}


def summarise_stages(predictions: pd.DataFrame, stage_info: Sequence[dict], classnames: Sequence[str]) -> list[dict]:
    """One entry per stage, in run order: its description merged with its metrics."""
    clean = predictions[predictions["stage"] == "clean"]
    clean = clean if len(clean) else None
    out = []
    for info in stage_info:
        frame = predictions[predictions["stage"] == info["name"]]
        reference = clean if info["name"] != "clean" else None
        out.append({**info, **stage_metrics(frame, classnames, clean=reference)})
    return out


def environment() -> dict[str, Any]:
    """Versions of everything that affects the numbers."""
    import open_clip
    import torch

    from typobench import __version__

    return {
        "typobench": __version__,
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """The commit of the typobench checkout, when it is one (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # site-packages may lie inside some other git work tree
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")




def envelope(kind: str, *, config: dict[str, Any], config_hash: str, seed: int | None, model: dict[str, Any],
             dataset: dict[str, Any] | None) -> dict[str, Any]:
    """The fields every result file starts with, whatever command wrote it: what was run (``kind``), when,
    with which versions (git commit included), its whole config and content hash, the model's and the
    data's identity, and the seed."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "created": utc_now(), "versions": environment(),
            "config_hash": config_hash, "seed": seed, "config": config, "model": model, "dataset": dataset}


def write_results(out_dir: Path, results: dict[str, Any], predictions: pd.DataFrame) -> None:
    """Write predictions first, results.json last: results.json present means the run finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / PREDICTIONS_FILE, predictions.to_csv(index=False))
    write_json_atomic(out_dir / RESULTS_FILE, results)


RUN_RECORD_KEYS = ("config_hash", "config", "model", "dataset", "stages")


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """A run's results.json, or a one-line UsageError when it is not the record of a finished run."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} cannot be read as JSON ({exc}): point at the folder of a finished run") from None
    missing = [key for key in RUN_RECORD_KEYS if not isinstance(results, dict) or key not in results]
    if missing:
        raise UsageError(f"{path} is not the results of a finished typobench run (no {', '.join(missing)}): "
                         "point at the folder of a finished run")
    return results


def read_predictions(run_dir: str | Path) -> pd.DataFrame:
    """A run's predictions.csv, or a one-line UsageError when it is empty or cut."""
    path = Path(run_dir) / PREDICTIONS_FILE
    try:
        frame = pd.read_csv(path, keep_default_na=False)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}): point at the folder of a finished run") from None
    if frame.empty or not {"stage", "sample_id", "pred"} <= set(frame.columns):
        raise UsageError(f"{path} holds no predictions: point at the folder of a finished run")
    return frame
