"""Shared options of the sweep scripts: model (toyclip by default), data set, limit, output folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import typobench.api as tb
from typobench.core.errors import UsageError

SHARED_CIFAR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg"


def parser(description: str, name: str, limit: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="toyclip", help="any typobench model (default: toyclip; tiny-rn if "
                                                      "toyclip's weights are not installed)")
    p.add_argument("--pretrained", default=None)
    p.add_argument("--dataset", default="cifar10-sample",
                   help="default: the bundled cifar10-sample; e.g. cifar10-jpeg with --data-root")
    p.add_argument("--data-root", default=None, help=f"e.g. {SHARED_CIFAR}")
    p.add_argument("--limit", type=int, default=limit, help=f"images (class-stratified; default {limit})")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=f"runs/sweeps/{name}", help="folder for the table, plot and resumable points")
    return p


def load(args: argparse.Namespace) -> tuple[tb.Model, tb.Data]:
    try:
        model = tb.load_model(args.model, args.pretrained, device=args.device, seed=args.seed)
    except UsageError as exc:
        if args.model != "toyclip":
            raise
        print(f"note: {exc}\nnote: falling back to tiny-rn, a RANDOM-WEIGHT test model: the numbers below show "
              "the machinery, not a finding; rerun once toyclip is installed")
        model = tb.load_model("tiny-rn", device=args.device, seed=args.seed)
    data = tb.load_data(args.dataset, model, root=args.data_root, limit=args.limit, seed=args.seed)
    print(f"model {model.label}, data {args.dataset} ({len(data)} images), out {args.out}")
    return model, data


def percent(frame, columns):
    """A copy with ``columns`` in percent, one decimal."""
    frame = frame.copy()
    for column in columns:
        frame[column] = (100 * frame[column].astype(float)).round(1)
    return frame
