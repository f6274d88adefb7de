"""``typobench heads``: survey every attention head of a finished run's ViT (``heads.survey``) and write
heads.json, heads_predictions.csv, the top images (``head_examples/*.png``) and the heads atlas.

The images are those the run scored (``--images N``: a class-stratified subset): the clean ones, and the
same ones as the run's attack stage drew them (regenerated exactly, ``blame.replay``). Predictions are made
as the run made them (its classifier, head and precision); the unablated ones are compared with the run's
own predictions.csv (``base.*.agrees_with_run``, 1.0 when nothing drifted).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from typobench.core.atomic import save_atomic, write_json_atomic
from typobench.core.errors import UsageError
from typobench.core.options import check
from typobench.data import sample_hash, stratified_subset
from typobench.harness.results import read_results
from typobench.models.attention_heads import head_space, vit_blocks_of
from typobench.models.units import as_pixels
from typobench.neurons.atlas.heads_page import write_heads_atlas
from typobench.neurons.atlas.site import ATLAS_DIR
from typobench.neurons.blame.replay import RunReplay, check_run_dir, load_run
from typobench.neurons.featurevis.textvis import word_embeddings
from typobench.neurons.heads.survey import (HEADS_JSON, IMAGE_KINDS, LEXICON_FILE, PREDICTIONS_CSV, HeadSurvey,
                                            HeadSurveyOptions, SurveyImages, descriptions, lexicon_pool,
                                            prediction_rows, survey_heads, survey_report)
from typobench.suites.neurons_option import NeuronsConfig

EXAMPLES_DIR = "head_examples"
OUT_SUBDIR = "heads"


@dataclass
class SurveyOutcome:
    out_dir: Path
    report: dict[str, Any]
    survey: HeadSurvey
    files: list[str] = field(default_factory=list)


def attack_stage(wanted: str | None, results: dict[str, Any], run_dir: Path) -> str:
    """The run's attack stage to survey: ``wanted``, else its only one."""
    names = [s["name"] for s in results.get("stages", []) if s.get("kind") != "clean" and s["name"] != "clean"]
    if not names:
        raise UsageError(f"typobench heads: the run in {run_dir} has only clean images: survey a run of a suite with "
                         "an attack stage (e.g. --suite random-wrong-label)")
    if wanted is None and len(names) > 1:
        raise UsageError(f"typobench heads: the run has {len(names)} attack stages: choose one with --stage "
                         f"({', '.join(names)})")
    if wanted is not None and wanted not in names:
        raise UsageError(f"typobench heads: --stage '{wanted}' is not an attack stage of this run: use one of "
                         f"{', '.join(names)}")
    return wanted or names[0]


def survey_space(replay: RunReplay):
    """Every head of every block of the run's ViT (a one-line UsageError for any other tower)."""
    label = replay.session.model.spec.label
    try:
        blocks = vit_blocks_of(replay.classifier)
        return head_space(replay.classifier, len(blocks))
    except UsageError:
        raise UsageError(f"typobench heads: {label}'s image tower is not a ViT (no attention heads); use a ViT model "
                         "such as toyclip-vit") from None


def survey_images(replay: RunReplay, stage: str, limit: int, batch_size: int) -> SurveyImages:
    """The run's images (``limit`` > 0: a class-stratified subset): clean, and as ``stage`` drew them."""
    labels = replay.dataset.labels
    positions = stratified_subset(labels, limit, replay.config.seed) if limit else list(range(len(labels)))
    clean = replay.clean_images(positions, batch_size)
    typographic, _ = replay.regenerate(stage, positions, batch_size)
    ids = [str(replay.dataset.sample_ids[p]) for p in positions]
    return SurveyImages(clean, typographic, torch.tensor([labels[p] for p in positions], dtype=torch.long), ids,
                        replay.classnames)


def agreement(replay: RunReplay, survey: HeadSurvey, data: SurveyImages, stage: str) -> None:
    """``base[images]["agrees_with_run"]``: the share of the unablated predictions equal to the run's own."""
    frame = replay.predictions
    for images, name in zip(IMAGE_KINDS, ("clean", stage)):
        recorded = frame[frame["stage"] == name].set_index("sample_id")["pred"]
        ours = survey.predictions["base"][images].tolist()
        same = [int(recorded[i]) == p for i, p in zip(data.sample_ids, ours) if i in recorded.index]
        survey.base[images]["agrees_with_run"] = sum(same) / len(same) if same else None


def save_top_images(out: Path, survey: HeadSurvey, data: SurveyImages) -> list[str]:
    """Each head's top images as PNGs under ``head_examples/`` (their ``file`` added to the records)."""
    folder = out / EXAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.png"):
        stale.unlink()
    written = []
    for record in survey.heads:
        stem = record["name"].replace(":", "-")
        for images, entries in record["top_images"].items():
            for k, entry in enumerate(entries):
                name = f"{EXAMPLES_DIR}/{stem}_{images}_{k}.png"
                pixels = as_pixels(data.of(images)[entry["position"]]).clamp(0, 1).permute(1, 2, 0).mul(255).round()
                picture = Image.fromarray(pixels.to(torch.uint8).numpy())
                save_atomic(out / name, lambda tmp, picture=picture: picture.save(tmp, format="PNG"))
                entry["file"] = name
                written.append(name)
    return written


class Progress:
    """Progress lines on stderr with the seconds since the survey started (silent when not ``enabled``)."""

    def __init__(self, enabled: bool):
        self.enabled, self.start = enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[heads {time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def survey_run(options: HeadSurveyOptions, config: NeuronsConfig, *, progress: bool = True,
               log: Callable[[str], None] | None = None) -> SurveyOutcome:
    """Survey the heads of the run in ``config.run_dir`` (``config``: where it is, ``out``, device, batch size,
    cache) and write every output; ``out`` defaults to ``<run>/heads``."""
    check(options)
    log = log or Progress(progress)
    run_dir = check_run_dir(config.run_dir)
    stage = attack_stage(options.stage, read_results(run_dir), run_dir)
    described = descriptions(options.lexicon)  # a missing file is refused before anything is loaded
    replay = load_run(run_dir, device=config.device, cache_dir=config.cache_dir)
    space = survey_space(replay)
    log(f"{replay.session.model.spec.label}: {space.total} heads in {len(space.layers)} blocks; stage {stage}")
    data = survey_images(replay, stage, options.images, config.batch_size)
    pool = lexicon_pool(replay.classnames, described)
    loaded = replay.session.model
    texts = word_embeddings(loaded.model, loaded.tokenizer, pool).float()
    log(f"{len(data.sample_ids)} images, {len(pool)} lexicon texts")
    survey = survey_heads(replay.classifier, space, data, texts, pool, ablation=options.ablation,
                          spans=options.text_spans, top_k=options.top_images, batch_size=config.batch_size,
                          autocast=replay.session.runtime.autocast, log=log)
    agreement(replay, survey, data, stage)
    out = Path(config.out) if config.out else run_dir / OUT_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    files = save_top_images(out, survey, data)
    report = survey_report(survey, run=_run_record(replay, run_dir, stage), options=options, images={
        "n": len(data.sample_ids), "sample_hash": sample_hash(data.sample_ids),
        "how": "every image the run scored" if not options.images else
               f"{options.images} of the run's images, class-stratified with the run's seed"},
        lexicon={"n": len(pool), "descriptions": len(described), "source": options.lexicon or LEXICON_FILE})
    write_json_atomic(out / HEADS_JSON, report)
    save_atomic(out / PREDICTIONS_CSV, lambda tmp: pd.DataFrame(prediction_rows(survey, data)).to_csv(tmp, index=False))
    files += [HEADS_JSON, PREDICTIONS_CSV]
    if options.atlas:
        files += [f"{ATLAS_DIR}/{name}" for name in write_heads_atlas(out)]
    return SurveyOutcome(out, report, survey, files)


def _run_record(replay: RunReplay, run_dir: Path, stage: str) -> dict[str, Any]:
    config = replay.config
    return {"dir": str(run_dir), "model": replay.session.model.spec.label, "dataset": config.dataset,
            "split": replay.dataset.split, "suite": config.suite, "stage": stage}


__all__ = ["EXAMPLES_DIR", "OUT_SUBDIR", "SurveyOutcome", "attack_stage", "survey_run", "survey_space"]
