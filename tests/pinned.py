"""Pinned results: five small workloads whose per-sample predictions and figures must never change.

Each workload runs through the command line (the interface every refactor keeps) and is reduced to a
canonical, JSON-ready fingerprint: the figures (accuracies, intervals, n, targeted success, Stroop
rates, neuron verdicts) as they are, and the sha256 of the per-sample predictions (rows sorted,
columns sorted, floats rounded to 6 digits so that only a changed prediction changes the hash).
Timestamps, versions, elapsed times and paths are left out.

``python -m tests.pinned write`` records the fingerprints in ``tests/pinned.json``;
``tests/test_pinned.py`` recomputes and compares them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from typobench.cli import main

PINNED_FILE = Path(__file__).with_name("pinned.json")
SAMPLE = ["--dataset", "cifar10-sample", "--device", "cpu", "--quiet"]


# Columns added to predictions after the pin was recorded: they add information, they change no prediction.
ADDED_SINCE_PIN = ("size_requested_px", "written_class", "two_way_margin", "text_area")


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a table, independent of row and column order and of float noise below 1e-6."""
    frame = frame.drop(columns=[c for c in ADDED_SINCE_PIN if c in frame.columns])
    frame = frame.reindex(sorted(frame.columns), axis=1)
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(6)
    text = frame.astype(str).sort_values(list(frame.columns)).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _figures(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("name", "accuracy", "ci95", "n", "targeted_success", "pixel_fraction_mean")
    return [{k: s[k] for k in keep if k in s} for s in stages]


def _call(argv: list[str]) -> None:
    code = main(argv)
    if code != 0:
        raise RuntimeError(f"typobench {' '.join(argv)} exited with {code}")


def _run(out: Path, argv: list[str]) -> dict[str, Any]:
    _call(["run", *argv, "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    return {"stages": _figures(results["stages"]), "predictions_sha256": frame_sha256(predictions),
            "n": results["dataset"]["n"]}


def default_run(tmp: Path) -> dict[str, Any]:
    return _run(tmp / "default", ["--model", "toyclip", *SAMPLE, "--limit", "40"])


def fort2021_run(tmp: Path) -> dict[str, Any]:
    return _run(tmp / "fort", ["--model", "tiny-rn", "--suite", "fort2021-cifar10", *SAMPLE, "--limit", "20",
                               "--batch-size", "8"])


def sweep_3_points(tmp: Path) -> dict[str, Any]:
    out = tmp / "sweep"
    _call(["sweep", "--model", "toyclip", "--suite", "random-wrong-label", "--vary", "text.size=8,12,16", *SAMPLE,
           "--limit", "30", "--no-plots", "--out", str(out)])
    table = pd.read_csv(out / "sweep.csv")
    columns = ["point", "stage", "accuracy", "accuracy_ci_lo", "accuracy_ci_hi", "n", "targeted_success"]
    points = sorted((out / "points").iterdir())
    predictions = [frame_sha256(pd.read_csv(p / "predictions.csv", keep_default_na=False)) for p in points]
    return {"table": json.loads(table[columns].round(6).to_json(orient="records")), "predictions_sha256": predictions}


def neurons_analysis(tmp: Path) -> dict[str, Any]:
    out = tmp / "neurons"
    _call(["run", "--model", "toyclip", "--suite", "random-wrong-label", *SAMPLE, "--limit", "60",
           "--no-neurons", "--out", str(out)])
    _call(["neurons", "--from", str(out), "--top-k", "5", "--draws", "3", "--ref-limit", "40", "--max-cards", "2",
           "--device", "cpu", "--quiet"])
    report = json.loads((out / "neurons.json").read_text())
    analyses = [{k: a.get(k) for k in ("stage", "kind", "n_events", "blamed", "verdict")} for a in report["analyses"]]
    blame = pd.read_csv(out / "neurons_blame.csv")
    return {"analyses": analyses, "blame_sha256": frame_sha256(blame),
            "multimodal": [report["cards"]["blamed_multimodal"], report["cards"]["blamed_total"]]}


def stroop(tmp: Path) -> dict[str, Any]:
    out = tmp / "stroop"
    _call(["stroop", "--model", "toyclip", "--prompt", "a photo of a {}.", "--prompt", "a photo of the color {}.",
           "--device", "cpu", "--out", str(out)])
    record = json.loads((out / "stroop.json").read_text())
    frame = pd.read_csv(out / "stroop.csv", keep_default_na=False)
    return {"metrics": [r["metrics"] for r in record["results"]], "csv_sha256": frame_sha256(frame)}


WORKLOADS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "default_run": default_run,
    "fort2021_run": fort2021_run,
    "sweep_3_points": sweep_3_points,
    "neurons_analysis": neurons_analysis,
    "stroop": stroop,
}


def compute_all(tmp: Path) -> dict[str, Any]:
    return {name: json.loads(json.dumps(work(tmp))) for name, work in WORKLOADS.items()}


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["write"]:
        sys.exit("usage: python -m tests.pinned write")
    with tempfile.TemporaryDirectory() as folder:
        pinned = compute_all(Path(folder))
    PINNED_FILE.write_text(json.dumps(pinned, indent=1) + "\n")
    print(f"wrote {PINNED_FILE}")
