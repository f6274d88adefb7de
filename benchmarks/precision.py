"""Benchmark: ``--precision bf16`` against fp32 on this CPU, and ``channels_last`` for ResNet towers.

Two parts, each timed interleaved in one process:

* tower: the run's classifier (normalise, image tower, zero-shot head) on the same decoded batches, as
  forwards (what every scored stage costs) and forward+backward passes (what a PGD step costs), in
  fp32 / bf16 (autocast, as ``--precision bf16`` runs it) x contiguous / ``channels_last`` (model and
  input) / ``channels_last-model`` (weights only, inputs contiguous). Printed: images/s, speed-up over fp32 contiguous, zero-shot accuracy and the share of
  predictions that agree with fp32.
* suite: ``typobench run`` of a suite (default: ``default``) in fp32 and in bf16: run time and the
  accuracy of every stage in both (results.json), with the difference in points.

bf16 pays off where the CPU has bf16 matrix units (AVX512-BF16, AMX); without them autocast is slower.
channels_last is a model-level setting typobench does not apply today: this measures whether it would help.

    python benchmarks/precision.py --threads 1
    python benchmarks/precision.py --model tiny-rn --images 256 --suite-images 64
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from typobench.core.timing import contention_note, cpus, loadavg, rates, timed_interleaved

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import DATA, decoded_batches  # noqa: E402

PRECISIONS = ("fp32", "bf16")
# "channels_last-model": weights only, inputs as the data pipeline makes them (what a change in model loading does).
LAYOUTS = ("contiguous", "channels_last", "channels_last-model")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toyclip")
    parser.add_argument("--dataset", default="cifar10-jpeg")
    parser.add_argument("--data-root", default=str(DATA / "cifar10-jpeg"))
    parser.add_argument("--images", type=int, default=512, help="images for the tower part")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", default="default", help="suite of the run part")
    parser.add_argument("--suite-images", type=int, default=128, help="images of the run part (0: skip it)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.suite_images < 0:
        parser.error("--suite-images must be >= 0")
    return args


def variants() -> list[tuple[str, str]]:
    """Every (precision, layout) measured; the first is the reference."""
    return [(p, layout) for p in PRECISIONS for layout in LAYOUTS]


def agreement(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Share of [N] predictions that are the same."""
    return (reference == other).float().mean().item()


def accuracy_points(fp32: dict[str, float], bf16: dict[str, float]) -> dict[str, float]:
    """Per stage: bf16 accuracy minus fp32 accuracy, in percentage points."""
    return {name: 100.0 * (bf16[name] - fp32[name]) for name in fp32}


def tower_fns(session, batches: list, precision: str, layout: str, preds: dict) -> dict[str, Callable[[], object]]:
    """Forward and forward+backward passes of one variant over ``batches``; predictions go to ``preds``."""
    from typobench.core.runtime import Runtime

    runtime = Runtime(session.runtime.device, precision)
    classifier = session.classifier
    if layout != "contiguous":
        classifier = copy.deepcopy(classifier).to(memory_format=torch.channels_last)
    if layout == "channels_last":
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    name = f"{precision} {layout}"

    def forward() -> object:
        with torch.no_grad(), runtime.autocast():
            preds[name] = torch.cat([classifier(x).float().argmax(1) for x, _ in batches])
        return preds[name]

    def forward_backward() -> object:
        for x, y in batches:
            x = x.detach().requires_grad_(True)
            with runtime.autocast():
                loss = F.cross_entropy(classifier(x).float(), y, reduction="none")
            torch.autograd.grad(loss, x, grad_outputs=torch.ones_like(loss))
        return None

    return {f"forward {name}": forward, f"fwd+bwd {name}": forward_backward}


def run_tower(args: argparse.Namespace, workdir: Path) -> None:
    from typobench.harness.config import RunConfig
    from typobench.harness.session import Session

    config = RunConfig(model=args.model, dataset=args.dataset, data_root=args.data_root, limit=args.images,
                       batch_size=args.batch_size, seed=args.seed, cache_dir=str(workdir / "cache"), device="cpu")
    session = Session.open(config)
    batches = decoded_batches(session, args.batch_size)
    labels = torch.cat([y for _, y in batches])
    preds: dict[str, torch.Tensor] = {}
    fns: dict[str, Callable[[], object]] = {}
    for precision, layout in variants():
        fns.update(tower_fns(session, batches, precision, layout, preds))
    times = timed_interleaved(fns, args.repeats, session.runtime.device)
    n = len(labels)
    print(f"\n== tower: {args.model}, {n} images of {args.dataset}, batch {args.batch_size}, "
          f"{args.repeats} timed passes per row ==")
    print(f"{'variant':<36} {'median img/s':>13} {'best':>9} {'speed-up':>9} {'accuracy':>9} {'agrees w/ fp32':>15}")
    reference = {kind: rates(times[f"{kind} fp32 contiguous"], n)[0] for kind in ("forward", "fwd+bwd")}
    for name in fns:
        kind, variant = name.split(" ", 1)
        median, best = rates(times[name], n)
        accuracy = agreement(preds[variant], labels)
        agree = agreement(preds["fp32 contiguous"], preds[variant])
        print(f"{name:<36} {median:>13,.1f} {best:>9,.1f} {median / reference[kind]:>8.2f}x "
              f"{accuracy:>9.4f} {agree:>15.4f}")


def run_suite_twice(args: argparse.Namespace, workdir: Path) -> None:
    """``typobench run`` of ``args.suite`` in fp32 and bf16: time and per-stage accuracy."""
    from typobench.cli import main as typobench_main

    outs: dict[str, list[Path]] = {p: [] for p in PRECISIONS}

    def run(precision: str) -> Callable[[], object]:
        def once() -> object:
            out = workdir / f"run-{precision}-{len(outs[precision])}"
            outs[precision].append(out)
            argv = ["run", "--suite", args.suite, "--model", args.model, "--dataset", args.dataset,
                    "--data-root", args.data_root, "--limit", str(args.suite_images), "--batch-size",
                    str(args.batch_size), "--precision", precision, "--seed", str(args.seed), "--device", "cpu",
                    "--out", str(out), "--cache-dir", str(workdir / "cache"), "--quiet"]
            with contextlib.redirect_stdout(io.StringIO()):
                if typobench_main(argv) != 0:
                    raise SystemExit(f"typobench {' '.join(argv)} failed")
            return out
        return once

    times = timed_interleaved({p: run(p) for p in PRECISIONS}, args.repeats, torch.device("cpu"))
    accuracy = {p: stage_accuracy(outs[p][-1]) for p in PRECISIONS}
    fp32, bf16 = (sorted(times[p])[(len(times[p]) - 1) // 2] for p in PRECISIONS)
    print(f"\n== typobench run --suite {args.suite}: {args.suite_images} images, fp32 vs bf16 ==")
    print(f"run time (median): fp32 {fp32:.2f} s, bf16 {bf16:.2f} s: bf16 speed-up {fp32 / bf16:.2f}x")
    print(f"{'stage':<22} {'fp32':>8} {'bf16':>8} {'bf16 - fp32 (points)':>21}")
    for name, points in accuracy_points(accuracy["fp32"], accuracy["bf16"]).items():
        print(f"{name:<22} {accuracy['fp32'][name]:>8.4f} {accuracy['bf16'][name]:>8.4f} {points:>21.2f}")


def stage_accuracy(out: Path) -> dict[str, float]:
    """Accuracy of every stage, from a run's results.json."""
    results = json.loads((out / "results.json").read_text())
    return {stage["name"]: stage["accuracy"] for stage in results["stages"]}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    units = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags.split()]
    load_before = loadavg()
    print(f"model={args.model} torch={torch.__version__} threads={torch.get_num_threads()} cpus={cpus()} "
          f"bf16 units: {', '.join(units) or 'none'}; load average before: {load_before}")
    if note := contention_note(load_before, torch.get_num_threads(), cpus()):
        print(note)
    with tempfile.TemporaryDirectory(prefix="typobench-precision-") as tmp:
        run_tower(args, Path(tmp))
        if args.suite_images:
            run_suite_twice(args, Path(tmp))
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
