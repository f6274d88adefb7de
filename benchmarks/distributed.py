"""Scaling of one evaluation over processes: the same `typobench run` under 1 and N processes.

Each run is a real command line: `python -m typobench run ...` for one process, `torchrun --standalone
--nproc-per-node N -m typobench run ...` for N, every process limited to `--threads` threads (1 by
default: two processes on this machine's two cores). The figure is the evaluation time results.json
records (`elapsed_s`: from the first batch to the written results; model loading and interpreter start
are left out, as they do not grow with the data). Runs alternate 1, N, 1, N, ... and the median of
`--repeats` is reported. Scaling efficiency = (images/s with N) / (N x images/s with 1); target >= 0.85
for a PGD suite.

    python benchmarks/distributed.py                                  # toyclip, default suite, 256 images
    python benchmarks/distributed.py --nproc 4 --device cuda          # one process per GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

TARGET = 0.85


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toyclip")
    parser.add_argument("--suite", default="default", help="attack suite (default: default, with a PGD stage)")
    parser.add_argument("--dataset", default="cifar10-sample")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--nproc", type=int, default=2, help="processes of the spread run (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default: 1)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def command(args: argparse.Namespace, nproc: int, out: Path) -> list[str]:
    launcher = [sys.executable, "-m", "typobench"] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), "-m", "typobench"]
    run = ["run", "--model", args.model, "--suite", args.suite, "--dataset", args.dataset, "--limit", str(args.images),
           "--batch-size", str(args.batch_size), "--device", args.device, "--quiet", "--out", str(out)]
    return [*launcher, *run, *(["--data-root", args.data_root] if args.data_root else [])]


def timed_run(args: argparse.Namespace, nproc: int, folder: Path, index: int) -> float:
    """Evaluation seconds of one run (results.json's elapsed_s)."""
    out = folder / f"run-{nproc}-{index}"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TYPOBENCH_CACHE": str(folder / "cache")}
    subprocess.run(command(args, nproc, out), env=env, check=True, stdout=subprocess.DEVNULL)
    return float(json.loads((out / "results.json").read_text())["elapsed_s"])


def efficiency(single_s: float, spread_s: float, nproc: int) -> float:
    """(throughput with nproc processes) / (nproc x throughput with one)."""
    return single_s / (nproc * spread_s)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    times: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory(prefix="typobench-dist-") as tmp:
        folder = Path(tmp)
        timed_run(args, 1, folder, -1)  # warm the cache (class embeddings) and the file system
        for index in range(args.repeats):
            for nproc in times:
                times[nproc].append(timed_run(args, nproc, folder, index))
    single, spread = statistics.median(times[1]), statistics.median(times[args.nproc])
    print(f"{args.model}, suite {args.suite}, {args.images} images, batch {args.batch_size}, "
          f"{args.threads} thread(s) per process, {args.device}; load {os.getloadavg()[0]:.2f}")
    print(f"{'processes':>9} {'seconds':>9} {'images/s':>9}")
    for nproc, seconds in ((1, single), (args.nproc, spread)):
        print(f"{nproc:>9} {seconds:>9.2f} {args.images / seconds:>9.1f}")
    value = efficiency(single, spread, args.nproc)
    print(f"scaling efficiency on {args.nproc} processes: {value:.2f} (target >= {TARGET}): "
          f"{'met' if value >= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
