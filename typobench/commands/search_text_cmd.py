"""``typobench search-text``: rank candidate attack texts by targeted success on a sample."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..atomic import write_json_atomic, write_text_atomic
from ..cache import content_key
from ..data import sample_hash
from ..errors import UsageError, unknown_name_error
from ..run import build_context, load_inputs
from ..search_text import candidate_texts, rank_for_targets, search_texts, template_stage
from ..suites import load_suite
from .common import add_model_data_options, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search-text",
        help="rank candidate attack texts by targeted success (Goh et al.'s brute-force search)",
        description="Write each candidate text (all class names, their short forms, and --words) on a sample "
                    "of images, in the style and placement of a suite's text stage, and rank candidates by "
                    "the rate at which the prediction becomes each target class.",
        epilog="example: typobench search-text --dataset imagenet-sample --data-root ../shared/data/imagenet-sample "
               "--target iPod --target pizza --limit 200",
    )
    add_model_data_options(parser)
    parser.set_defaults(suite="goh2021-imagenet", limit=200)
    parser.add_argument("--stage", default=None, help="text stage of --suite to copy the style from (default: first)")
    parser.add_argument("--target", action="append", default=None,
                        help="target class name (repeatable); default: every class")
    parser.add_argument("--words", default=None, help="text file with extra candidate words, one per line")
    parser.add_argument("--top-k", type=int, default=10, help="candidates kept per target in the printed table")
    parser.add_argument("--out", default=None, help="output folder (default: runs/search-text-<hash>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=handle)


def _read_words(path: str | None) -> list[str]:
    if path is None:
        return []
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--words file '{path}' not found: pass a text file with one word per line")
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def handle(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    config.validate()
    if config.suite is None:
        raise UsageError("search-text needs --suite with a text stage to copy the style from")
    stage = template_stage(load_suite(config.suite), args.stage)
    extra_words = _read_words(args.words)
    runtime, loaded, dataset = load_inputs(config)
    targets = args.target
    for target in targets or []:
        if target not in dataset.classnames:
            raise unknown_name_error(f"target class of {dataset.name}", target, dataset.classnames,
                                     f"the class names of {dataset.name}")
    ctx, head_info = build_context(config, runtime, loaded, dataset)
    images, labels = _load_sample(dataset, config.batch_size, config.workers, runtime.device)
    candidates = candidate_texts(dataset.classnames, extra_words)
    keep = None if targets is None else [dataset.classnames.index(t) for t in targets]
    table = search_texts(ctx, images, labels, list(dataset.sample_ids), candidates, stage,
                         batch_size=config.batch_size, keep_targets=keep, progress=not args.quiet)
    ranked = rank_for_targets(table, targets, args.top_k)
    key = content_key(config=config.semantic(), stage=stage.describe(), words=extra_words, targets=targets,
                      model=loaded.fingerprint(), samples=sample_hash(dataset.sample_ids))
    out = Path(args.out) if args.out else Path("runs") / f"search-text-{key[:10]}"
    write_text_atomic(out / "search_text.csv", table.to_csv(index=False))
    write_text_atomic(out / "search_text_top.csv", ranked.to_csv(index=False))
    write_json_atomic(out / "search_text.json", {
        "model": loaded.describe(), "dataset": dataset.describe(), "head": head_info,
        "style_from": {"suite": config.suite, "stage": stage.describe()}, "candidates": len(candidates),
        "targets": targets, "config": vars(config), "config_hash": key,
    })
    with_ci = ranked.assign(success=lambda f: (100 * f["success"]).round(1),
                            ci=lambda f: [f"[{100 * lo:.1f}, {100 * hi:.1f}]" for lo, hi in zip(f["ci_low"], f["ci_high"])])
    print(with_ci[["target", "text", "success", "ci", "n", "pixel_fraction"]].to_string(index=False))
    print(f"\nresults {out}/search_text.csv (all candidates), {out}/search_text_top.csv (top {args.top_k})")
    return 0


@torch.no_grad()
def _load_sample(dataset, batch_size: int, workers: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The (small) search sample in memory: every candidate is written on the same images."""
    images, labels = [], []
    for batch_images, batch_labels, _ in DataLoader(dataset, batch_size=batch_size, num_workers=workers):
        images.append(batch_images)
        labels.append(batch_labels)
    return torch.cat(images).to(device), torch.cat(labels).long().to(device)


__all__ = ["register"]
