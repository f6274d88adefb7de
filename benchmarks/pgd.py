"""Benchmark: PGD images·steps/second vs. a bare forward+backward loop on the same model and batch.

Both sides attack the same zero-shot classifier (built by the harness: normalise, image tower,
zero-shot head) on the same batch of clean images. ``typobench.adversarial.pgd.pgd`` with ``steps=S`` runs S+1
forwards (the start point, then each step's iterate) and S input gradients; the bare loop runs exactly
that work and nothing else: S times forward + cross-entropy + ``torch.autograd.grad`` w.r.t. the input,
then one forward under ``no_grad``. That is the physical limit. Target: PGD within 10% of it
(ratio >= 0.9). The ``PGDStage.apply`` row is the harness's stage around ``pgd`` (targets, generator,
per-sample columns), for information.

    python benchmarks/pgd.py --batch-size 64 --steps 10
    python benchmarks/pgd.py --model tiny-vit --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from typobench.core.timing import breakdown, contention_note, cpus, loadavg, rates, ratio, timed_interleaved

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import fraction  # noqa: E402 -- one parser of '8/255' for every benchmark script

TARGET = 0.9


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-rn", help="built-in or open_clip name (NAME or NAME:TAG)")
    parser.add_argument("--pretrained", default=None, help="open_clip tag or local checkpoint")
    parser.add_argument("--dataset", default="cifar10-sample")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=64, help="images in the attacked batch")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps S (S+1 forwards, S backwards)")
    parser.add_argument("--eps", type=fraction, default=8 / 255, help="L-inf radius, e.g. 8/255")
    parser.add_argument("--step-size", type=fraction, default=2 / 255)
    parser.add_argument("--norm", default="linf", choices=("linf", "l2"))
    parser.add_argument("--repeats", type=int, default=5, help="timed attacks per row")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the pgd() runs and print where time goes")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def work(steps: int) -> tuple[int, int]:
    """(forwards, backwards) of one PGD run of ``steps`` steps, one restart: the bare loop does the same."""
    return steps + 1, steps


def verdict(value: float, target: float = TARGET) -> str:
    mark = "MET" if value >= target else "MISSED"
    return f"{mark}: PGD at {value:.3f} of the bare loop (target >= {target:.2f}, i.e. within 10%)"


# (label, file suffix, function name) of the parts of a pgd() call worth telling apart.
PROFILE_PARTS = [
    ("pgd() total", "typobench/pgd.py", "pgd"),
    ("  model forward (classifier, S+1 calls)", "benchmarks/pgd.py", "attacked"),
    ("  torch.autograd.grad (backward, S calls)", "torch/autograd/__init__.py", "grad"),
    ("  _objective (cross-entropy)", "typobench/pgd.py", "_objective"),
    ("  _step (sign step, projection, clamp)", "typobench/pgd.py", "_step"),
    ("  _start (random start)", "typobench/pgd.py", "_start"),
    ("  _check_inputs", "typobench/pgd.py", "_check_inputs"),
    ("  _check_classes (one host sync)", "typobench/pgd.py", "_check_classes"),
]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from typobench.data import load_dataset, stack_images
    from typobench.models import load_model
    from typobench.adversarial.pgd import PGDConfig, pgd
    from typobench.harness.config import RunConfig, limit_dataset
    from typobench.harness.session import Session
    from typobench.core.runtime import Runtime
    from typobench.stages.base import Batch
    from typobench.stages.pgd import PGDStage

    runtime = Runtime.create(args.device, args.precision)
    device = runtime.device
    loaded = load_model(args.model, args.pretrained, device=device, seed=args.seed)
    dataset = load_dataset(args.dataset, root=args.data_root, split=args.split, transform=loaded.pixel_transform())
    dataset = limit_dataset(dataset, args.batch_size, args.seed)
    n = len(dataset)
    images, labels = (tensor.to(device) for tensor in stack_images(dataset))

    with tempfile.TemporaryDirectory(prefix="typobench-bench-") as tmp:
        config = RunConfig(model=args.model, pretrained=args.pretrained, dataset=args.dataset, head="zeroshot",
                           seed=args.seed, cache_dir=str(Path(tmp) / "cache"))
        session = Session.of(config, runtime, loaded, dataset)
        classifier, ctx = session.classifier, session.context
    cfg = PGDConfig(eps=args.eps, step_size=args.step_size, steps=args.steps, norm=args.norm)
    stage = PGDStage("pgd", "clean", cfg)
    batch = Batch(images=images, labels=labels, indices=list(range(n)), sample_ids=list(dataset.sample_ids))

    def attacked(x: torch.Tensor) -> torch.Tensor:  # the same model callable PGDStage hands to pgd()
        with runtime.autocast():
            return classifier(x).float()

    def harness_pgd() -> object:
        generator = torch.Generator(device=device).manual_seed(args.seed)
        return pgd(attacked, images, labels, cfg, generator=generator)

    def harness_stage() -> object:
        batch.outputs.clear()
        return stage.apply(images, batch, ctx)

    def bare() -> object:
        for _ in range(args.steps):
            x = images.detach().requires_grad_(True)
            loss = F.cross_entropy(attacked(x), labels, reduction="none")
            torch.autograd.grad(loss, x, grad_outputs=torch.ones_like(loss))
        with torch.no_grad():
            return attacked(images)

    fns = {"pgd()": harness_pgd, "PGDStage.apply": harness_stage, "bare fwd+bwd": bare}
    load_before = loadavg()
    times = timed_interleaved(fns, args.repeats, device)
    load_after = loadavg()

    forwards, backwards = work(args.steps)
    images_steps = n * args.steps
    bare_median, bare_best = rates(times["bare fwd+bwd"], images_steps)
    print(f"model={args.model} device={device} precision={args.precision} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} cpus={cpus()}")
    print(f"batch: {n} images of {args.dataset} at {tuple(images.shape[1:])}; PGD {args.norm} eps={args.eps:.5f} "
          f"step={args.step_size:.5f} steps={args.steps}: {forwards} forwards + {backwards} backwards per attack; "
          f"{args.repeats} timed attacks per row, interleaved")
    print(f"load average (1/5/15 min): {load_before} before, {load_after} after")
    print(f"{'path':<16} {'median img*steps/s':>19} {'best':>9} {'ms/attack':>10} {'ratio (median)':>15} {'ratio (best)':>13}")
    for name in fns:
        median, best = rates(times[name], images_steps)
        print(f"{name:<16} {median:>19,.0f} {best:>9,.0f} {1e3 * statistics.median(times[name]):>10.1f} "
              f"{ratio(median, bare_median):>15.3f} {ratio(best, bare_best):>13.3f}")
    if note := contention_note(load_before, torch.get_num_threads(), cpus()):
        print(note)
    pgd_median, _ = rates(times["pgd()"], images_steps)
    print("verdict (pgd(), medians): " + verdict(ratio(pgd_median, bare_median)))

    if args.profile:
        profiler = cProfile.Profile()
        for _ in range(args.repeats):
            profiler.enable()
            harness_pgd()
            profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"\n== cProfile of {args.repeats} pgd() calls: cumulative seconds per part "
              "(the profiler inflates Python-heavy parts) ==")
        for label, seconds, share in breakdown(stats, PROFILE_PARTS):
            print(f"{label:<48} {seconds:>8.3f} s {share:>6.1%}")
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("tottime").print_stats(15)
        print("\n== top functions by own time ==")
        print(stream.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
