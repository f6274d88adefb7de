"""What a defended run needs from the harness: clean images a defense asks for while it is built (mean
ablation: a split of the session's data set, or the reference images a neurons analysis used, rebuilt from
its run's recorded config), and the sanity flags recorded in its results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.core.hashing import file_sha256
from typobench.data import ImageDataset, sample_hash, stack_images, stratified_subset
from typobench.defenses.base import ImageRequest
from typobench.defenses.sanity import sanity_flags, transfer_pairs
from typobench.harness.config import RunConfig, load_data, load_split
from typobench.harness.results import read_results
from typobench.models import LoadedModel


def request_images(config: RunConfig, model: LoadedModel, request: ImageRequest) -> tuple[Tensor, dict[str, Any]]:
    """Images [n,3,H,W] in [0,1] (the model's resize and crop) for ``request``, and where they came from."""
    if request.source == "neurons":
        dataset, positions, origin = _neurons_reference(model, request)
    else:
        dataset = load_split(config, model, request.split)
        positions = stratified_subset(dataset.labels, min(request.n, len(dataset)), config.seed)
        origin = {"source": "split", "dataset": dataset.name, "split": dataset.split, "seed": config.seed}
    images, _ = stack_images(dataset, positions)
    if not len(images):
        raise UsageError(f"mean ablation found no images in {origin}: use another mean_images")
    return images, {**origin, "n": len(positions), "sample_hash": sample_hash([dataset.sample_ids[i] for i in positions])}


def _neurons_reference(model: LoadedModel, request: ImageRequest) -> tuple[ImageDataset, list[int], dict[str, Any]]:
    """The clean reference of the analysis in ``request.neurons_json``: ``ref_limit`` images of its run's data
    (limited as the run was), stratified with the analysis' seed, exactly as ``neurons.proof.reference`` draws them."""
    path = Path(request.neurons_json)
    report = json.loads(path.read_text(encoding="utf-8"))
    run_dir = Path(report.get("run", {}).get("dir") or path.parent)
    if not (run_dir / "results.json").is_file():
        run_dir = path.parent  # the analysis written next to its run, then moved with it
    results = read_results(run_dir)
    run_config = RunConfig.from_record(results["config"])
    dataset = load_data(run_config, model)
    seed = report.get("config", {}).get("seed", run_config.seed)
    positions = stratified_subset(dataset.labels, request.n, seed)
    recorded = report.get("reference", {}).get("n")
    if recorded is not None and recorded != len(positions):
        raise UsageError(f"{path}: its reference had {recorded} images, the run's data gives {len(positions)} now: "
                         "mean ablation cannot use the analysis' images; use mean_images=SPLIT")
    origin = {"source": "neurons-reference", "neurons_json": str(path), "neurons_json_sha256": file_sha256(path),
              "run_dir": str(run_dir), "dataset": dataset.name, "split": dataset.split, "seed": seed}
    return dataset, positions, origin


def run_sanity(classifier: nn.Module, dataset: ImageDataset, stages: list[dict[str, Any]], *, n: int,
               device: torch.device) -> dict[str, Any]:
    """results.json's ``defense_sanity``: gradient and determinism checks of ``classifier`` on the first ``n``
    clean images, and the transfer check of every (adaptive, transfer) pair of PGD stages in ``stages``."""
    count = min(n, len(dataset))
    images, labels = (tensor.to(device) for tensor in stack_images(dataset, range(count)))
    with torch.enable_grad():
        checks = sanity_flags(classifier, images, labels)
    pairs = transfer_pairs(stages)
    checks["transfer_stronger"] = {"flag": any(p["flag"] for p in pairs), "pairs": pairs}
    checks["flags"] = [name for name, check in checks.items() if name != "flags" and check["flag"]]
    return checks


__all__ = ["request_images", "run_sanity"]
