"""Benchmark: peak memory of an evaluation run on 1,000 vs 10,000 images (target: flat).

Each size runs in its own subprocess: a clean-only (no suite) ``typobench.harness.run.execute`` on
``cifar10-jpeg`` with ``tiny-rn``, writing to a temporary folder. The child reports its peak resident
set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) once after the imports (the floor: Python,
torch, open_clip, pandas) and once after the run. The harness streams the data set batch by batch, so
the peak should not grow with the number of images: 10,000 CIFAR images at 64 px held as float32
would be about 470 MiB on their own.

    python benchmarks/memory.py
    python benchmarks/memory.py --sizes 1000 10000 --data-root ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from typobench.core.timing import loadavg

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
TARGET = 1.10  # "flat": the larger run's peak within 10% of the smaller run's
CHILD_FLAG = "--child"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-rn", help="built-in or open_clip name (NAME or NAME:TAG)")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--dataset", default="cifar10-jpeg")
    parser.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    parser.add_argument("--split", default="test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="images per run, smallest first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads in the child (default 1: this measures memory, not speed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(CHILD_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes) or args.batch_size < 1:
        parser.error("--sizes and --batch-size must be positive")
    return args


def child_command(args: argparse.Namespace, size: int) -> list[str]:
    """The command line that measures one run of ``size`` images in a fresh interpreter."""
    command = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(size),
               "--model", args.model, "--dataset", args.dataset, "--data-root", str(args.data_root),
               "--split", args.split, "--batch-size", str(args.batch_size), "--workers", str(args.workers),
               "--device", args.device, "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.pretrained:
        command += ["--pretrained", args.pretrained]
    return command


def maxrss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child(args: argparse.Namespace) -> None:
    import tempfile

    import torch

    from typobench.harness.config import RunConfig
    from typobench.harness.run import execute

    torch.set_num_threads(args.threads)
    floor = maxrss_mib()
    with tempfile.TemporaryDirectory(prefix="typobench-memory-") as tmp:
        config = RunConfig(model=args.model, pretrained=args.pretrained, dataset=args.dataset,
                           data_root=args.data_root, split=args.split, suite=None, limit=args.child,
                           batch_size=args.batch_size, workers=args.workers, device=args.device, seed=args.seed,
                           out=str(Path(tmp) / "run"), cache_dir=str(Path(tmp) / "cache"))
        start = time.perf_counter()
        outcome = execute(config, progress=False)
        elapsed = time.perf_counter() - start
        rows = 0 if outcome.predictions is None else len(outcome.predictions)
    print(json.dumps({"images": outcome.results["dataset"]["n"], "rows": rows, "floor_mib": floor,
                      "image_side": outcome.results["model"]["image_size"][0],
                      "peak_mib": maxrss_mib(), "seconds": elapsed}))


def measure(args: argparse.Namespace, size: int) -> dict:
    done = subprocess.run(child_command(args, size), capture_output=True, text=True, check=False, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"the {size}-image run failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_ratio(small: dict, large: dict) -> float:
    return large["peak_mib"] / small["peak_mib"]


def growth_mib_per_1000(small: dict, large: dict) -> float:
    """Extra peak MiB per 1,000 more images (0 for a perfectly flat run)."""
    extra_images = large["images"] - small["images"]
    return 1000 * (large["peak_mib"] - small["peak_mib"]) / extra_images if extra_images else 0.0


def held_images_mib(images: int, result: dict) -> float:
    """MiB that ``images`` preprocessed float32 images of the run's size would take if held in memory."""
    side = result.get("image_side", 64)
    return images * 3 * side * side * 4 / 2**20


def verdict(value: float, target: float = TARGET) -> str:
    mark = "MET" if value <= target else "MISSED"
    return f"{mark}: peak ratio {value:.3f} (target: flat, <= {target:.2f})"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child(args)
        return
    sizes = sorted(args.sizes)
    print(f"model={args.model} dataset={args.dataset} root={args.data_root} batch={args.batch_size} "
          f"workers={args.workers} threads={args.threads} (each size in a fresh subprocess, clean stage only)")
    print(f"load average (1/5/15 min) at start: {loadavg()}")
    results = [measure(args, size) for size in sizes]
    print(f"{'images':>8} {'rows':>8} {'floor MiB':>10} {'peak MiB':>9} {'above floor':>12} {'run s':>7}")
    for r in results:
        print(f"{r['images']:>8,} {r['rows']:>8,} {r['floor_mib']:>10.1f} {r['peak_mib']:>9.1f} "
              f"{r['peak_mib'] - r['floor_mib']:>12.1f} {r['seconds']:>7.1f}")
    print(f"load average (1/5/15 min) at end: {loadavg()}")
    small, large = results[0], results[-1]
    if len(results) > 1:
        print(f"peak {large['images']:,} / {small['images']:,} images: {peak_ratio(small, large):.3f}; "
              f"growth {growth_mib_per_1000(small, large):+.2f} MiB per 1,000 images "
              f"(holding the images as float32 would add {held_images_mib(1000, large):.1f} MiB per 1,000)")
        print("verdict: " + verdict(peak_ratio(small, large)))


if __name__ == "__main__":
    main(sys.argv[1:])
