"""Benchmark: peak memory of the linear-probe fit on simulated features (target: ImageNet's train split
fits in 16 GB).

ImageNet's train split has 1,281,167 images; at width 1,024 their float32 features alone take 5.0 GiB.
Each size runs in its own subprocess: random features ``[N, D]`` and labels of ``C`` classes, then
``typobench.heads.linear_probe.fit_logistic_regression`` (the final refit on every row: the sweep's fits
use 80% of the rows) with ``--max-iter`` L-BFGS iterations. Every iteration evaluates the same loss, so
the peak is reached in the first and a couple of iterations measure it; the fit to convergence takes
~300. The child reports ``ru_maxrss`` after making the features ("floor") and after the fit ("peak").
Sizes too slow for this machine are measured smaller and extrapolated linearly in N (both the features
and every per-row temporary grow linearly): the script prints the fitted line.

    python benchmarks/probe_memory.py --sizes 40000 80000 160000
    python benchmarks/probe_memory.py --sizes 1281167 --max-iter 1     # the real size (minutes per loss)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from typobench.core.timing import loadavg

IMAGENET_TRAIN = 1_281_167
BUDGET_GIB = 16.0
CHILD_FLAG = "--child"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40_000, 80_000, 160_000], help="rows N")
    parser.add_argument("--width", type=int, default=1024, help="feature width D")
    parser.add_argument("--classes", type=int, default=1000, help="classes C")
    parser.add_argument("--max-iter", type=int, default=1, help="L-BFGS iterations per fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(CHILD_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.width < 1 or args.classes < 2 or args.max_iter < 1:
        parser.error("--sizes, --width and --max-iter must be >= 1 and --classes >= 2")
    return args


def child_command(args: argparse.Namespace, size: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(size), "--width", str(args.width),
            "--classes", str(args.classes), "--max-iter", str(args.max_iter), "--threads", str(args.threads)]


def maxrss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def features_gib(rows: int, width: int) -> float:
    """float32 features [rows, width] in GiB."""
    return rows * width * 4 / 2**30


def fit_line(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of peak GiB against rows; one point gives slope through the floor 0."""
    if len(points) == 1:
        rows, peak = points[0]
        return 0.0, peak / rows
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return mean_y - slope * mean_x, slope


def verdict(peak_gib: float, budget: float = BUDGET_GIB) -> str:
    mark = "FITS" if peak_gib <= budget else "DOES NOT FIT"
    return f"{mark}: {peak_gib:.2f} GiB at {IMAGENET_TRAIN:,} rows (budget {budget:.0f} GB)"


def child(args: argparse.Namespace) -> None:
    import torch

    from typobench.heads.linear_probe import fit_logistic_regression

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(args.child, args.width, generator=generator)
    labels = torch.randint(0, args.classes, (args.child,), generator=generator)
    floor = maxrss_gib()
    start = time.perf_counter()
    fit_logistic_regression(features, labels, args.classes, 1e-4, max_iter=args.max_iter)
    print(json.dumps({"rows": args.child, "floor_gib": floor, "peak_gib": maxrss_gib(),
                      "fit_s": time.perf_counter() - start}))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child(args)
        return
    print(f"width {args.width}, {args.classes} classes, {args.max_iter} L-BFGS iteration(s), threads "
          f"{args.threads}; load average before: {loadavg()}")
    print(f"{'rows':>10} {'features GiB':>13} {'floor GiB':>10} {'peak GiB':>9} {'fit GiB':>8} {'fit s':>7}")
    points = []
    for size in sorted(args.sizes):
        done = subprocess.run(child_command(args, size), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"child for {size} rows failed:\n{done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        points.append((row["rows"], row["peak_gib"]))
        print(f"{row['rows']:>10,} {features_gib(size, args.width):>13.2f} {row['floor_gib']:>10.2f} "
              f"{row['peak_gib']:>9.2f} {row['peak_gib'] - row['floor_gib']:>8.2f} {row['fit_s']:>7.1f}")
    intercept, slope = fit_line(points)
    estimate = intercept + slope * IMAGENET_TRAIN
    measured = IMAGENET_TRAIN in args.sizes
    print(f"peak = {intercept:.2f} GiB + {slope * 1e6:.2f} GiB per million rows"
          f"{'' if measured else ' (extrapolated from the sizes above)'}")
    print("verdict: " + verdict(dict(points).get(IMAGENET_TRAIN, estimate)))
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
