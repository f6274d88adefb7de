"""The provenance check every defended session passes (``Session.with_defenses``, ``Session.of``, and the
build of the defended classifier): each defense's choices (``Defense.selections``) are traced to their
images and refused when they overlap the images the session scores.

A selection that names a run (a neurons analysis) is read here: the run must be the one the analysis
recorded (same ``config_hash``: a neurons.json edited to point at another run is refused) and of the model
being scored (same weights: blamed units of one model mean nothing in another, even when their indices
happen to exist). Its sample ids are then compared with the scored data set's; a selection known only by
its split (mean activations of a split, a learned prefix) is refused on the scored split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typobench.core.errors import UsageError
from typobench.data import ImageDataset
from typobench.defenses.base import Defense
from typobench.defenses.provenance import Selection, provenance_label
from typobench.harness.results import RESULTS_FILE, read_predictions, read_results
from typobench.models import LoadedModel


def check_provenance(defenses: Sequence[Defense], model: LoadedModel, data: ImageDataset) -> list[dict[str, Any]]:
    """One record per defense (``spec``, ``provenance`` label, ``selections``) after checking every choice
    against the scored ``data`` and ``model``; a one-line UsageError (exit 2) at the first violation."""
    records = []
    weights_changed = False  # a prefix after an interpolation is trained for the interpolated weights
    for defense in defenses:
        selections = [_resolve(s, data) for s in defense.selections()]
        for selection in selections:
            if not (weights_changed and selection.what == "learned prefix"):
                _check_model(defense, selection, model)
            _check_disjoint(defense, selection, data)
        records.append({"spec": defense.spec, "provenance": provenance_label(selections, defense.provenance_unknown()),
                        "selections": [s.describe() for s in selections]})
        weights_changed = weights_changed or type(defense).transform_model is not Defense.transform_model
    return records


def _resolve(selection: Selection, data: ImageDataset | None) -> Selection:
    """``selection`` with its images filled in: from the run it names, or the scored data set's name."""
    if selection.run_dir is None:
        return selection if selection.dataset or data is None else selection.resolved(dataset=data.name)
    run_dir = selection.run_dir
    if not (run_dir / RESULTS_FILE).is_file():
        run_dir = Path(selection.source).parent  # the analysis written next to its run, then moved with it
    if not (run_dir / RESULTS_FILE).is_file():
        raise UsageError(f"{selection.source} names run {selection.run_dir}, which holds no {RESULTS_FILE}: "
                         "point from= at the neurons.json of a finished run")
    results = read_results(run_dir)
    if not selection.config_hash or selection.config_hash != results.get("config_hash"):
        raise UsageError(f"{selection.source} records run config {str(selection.config_hash)[:12]}, but run {run_dir} "
                         f"has config {str(results.get('config_hash'))[:12]}: the analysis is not of that run; "
                         f"rerun `typobench neurons --from {run_dir}`")
    weights = results.get("model", {}).get("weights_sha256")
    if selection.model_fingerprint and weights and selection.model_fingerprint != weights:
        raise UsageError(f"{selection.source} records weights {selection.model_fingerprint[:12]}, but run {run_dir} "
                         f"ran weights {weights[:12]}: rerun `typobench neurons --from {run_dir}`")
    dataset = results["dataset"]
    ids = frozenset(read_predictions(run_dir)["sample_id"].astype(str))
    return selection.resolved(run_dir=run_dir, dataset=dataset["name"], split=dataset["split"],
                              n=selection.n or len(ids), sample_hash=dataset.get("sample_hash"), sample_ids=ids,
                              model_label=results.get("model", {}).get("label") or selection.model_label,
                              model_fingerprint=weights or selection.model_fingerprint)


def _check_model(defense: Defense, selection: Selection, model: LoadedModel) -> None:
    if selection.model_fingerprint and selection.model_fingerprint != model.fingerprint():
        raise UsageError(f"--defense '{defense.spec}': its {selection.what} were chosen for model "
                         f"{selection.model_label or '?'} (weights {selection.model_fingerprint[:12]}, {selection.source}), "
                         f"not for model {model.spec.label} (weights {model.fingerprint()[:12]}) scored here: "
                         f"choose them on {model.spec.label}")


def _check_disjoint(defense: Defense, selection: Selection, data: ImageDataset) -> None:
    scored = f"{data.name} {data.split} ({len(data)} images)"
    check_disjoint(defense.spec, selection, data.sample_ids, data.split, scored)


def check_disjoint(spec: str, selection: Selection, scored_ids: Sequence[str], scored_split: str, scored: str) -> None:
    """UsageError naming the selecting run and the scored data when ``selection`` shares images with them
    (or, its images unknown, their split)."""
    chosen = f"{selection.source}" + (f" (run {selection.run_dir})" if selection.run_dir is not None else "")
    if selection.sample_ids is not None:
        shared = selection.sample_ids & set(scored_ids)
        if shared:
            raise UsageError(f"--defense '{spec}': its {selection.what} were chosen on {len(shared)} of the "
                             f"images it would be scored on: chosen by {chosen}, scored on {scored}; choose on the "
                             "train split (or another half) and score on the rest")
    elif selection.split == scored_split:
        raise UsageError(f"--defense '{spec}': its {selection.what} were chosen on the {selection.split} split "
                         f"({chosen}), the split it would be scored on ({scored}), and its images cannot be told "
                         "apart: choose on another split")


def recheck_recorded(records: Sequence[dict[str, Any]], scored_ids: Sequence[str], dataset: dict[str, Any],
                     scored: str) -> None:
    """The provenance a run recorded (results.json's ``defense_provenance``) checked again against its images:
    a selecting run is read again (it must still be the run recorded); ``scored`` names the scored run."""
    for record in records:
        for recorded in record["selections"]:
            selection = Selection(recorded["what"], recorded["source"], recorded.get("dataset"), recorded.get("split"),
                                  recorded.get("n"), recorded.get("sample_hash"))
            if recorded.get("run_dir"):
                claim = selection.resolved(run_dir=Path(recorded["run_dir"]), config_hash=recorded.get("config_hash"))
                selection = _resolve(claim, None)
            check_disjoint(record["spec"], selection, scored_ids, dataset["split"],
                           f"{scored} ({dataset['name']} {dataset['split']})")


__all__ = ["check_disjoint", "check_provenance", "recheck_recorded"]
