"""Benchmark: zero-shot evaluation images/second vs. a bare loop that only calls the image tower.

The bare loop runs ``model.encode_image(normalize(x))`` under ``no_grad`` on the same preprocessed
batches: the limit the harness can reach. Images are decoded and preprocessed once, up front, so data
loading is warm (excluded) for both sides. Target: the harness at >= 0.9 of the bare loop.

Rows (all on the same in-memory images, timed interleaved so they see the same machine load):

* ``predict_stages()``: the harness's whole batch loop with a ``CleanStage`` (DataLoader over the in-memory
  data set, per-batch prediction rows, the per-batch CSV store, example images, reading the rows back);
* ``run_stages_on_batch``: its per-batch core (``score`` + prediction rows) on pre-collated batches;
* ``bare encode_image``: the limit.

    python benchmarks/zeroshot.py --images 1000 --batch-size 64
    python benchmarks/zeroshot.py --model tiny-vit --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from typobench.core.timing import breakdown, contention_note, cpus, loadavg, rates, ratio, timed_interleaved

TARGET = 0.9


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-rn", help="built-in or open_clip name (NAME or NAME:TAG)")
    parser.add_argument("--pretrained", default=None, help="open_clip tag or local checkpoint")
    parser.add_argument("--dataset", default="cifar10-sample")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=1000, help="images preloaded into memory")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the images per row")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile one predict_stages() pass and print the top entries")
    args = parser.parse_args(argv)
    for name in ("images", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def verdict(value: float, target: float = TARGET) -> str:
    mark = "MET" if value >= target else "MISSED"
    return f"{mark}: harness at {value:.3f} of the bare loop (target >= {target:.2f})"


def overhead_ms_per_batch(harness_rate: float, bare_rate: float, batch_size: int) -> float:
    """Extra milliseconds the harness spends per batch over the bare loop (images/s -> ms/batch)."""
    return 1e3 * batch_size * (1.0 / harness_rate - 1.0 / bare_rate)


class TensorLoader:
    """An ImageDataset loader that hands back preprocessed tensors (data loading already done)."""

    def __init__(self, tensors: torch.Tensor):
        self.tensors = tensors

    def __call__(self, index: int) -> torch.Tensor:
        return self.tensors[index]


def _identity(x: torch.Tensor) -> torch.Tensor:
    """A picklable pass-through transform: the pixels are already preprocessed."""
    return x


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from typobench.data import ImageDataset, load_dataset, stack_images
    from typobench.harness.evaluation import batch_plan, predict_stages, run_stages_on_batch
    from typobench.models import load_model
    from typobench.harness.resume import BatchStore
    from typobench.harness.config import RunConfig, limit_dataset
    from typobench.harness.session import Session
    from typobench.core.runtime import Runtime
    from typobench.stages.base import Batch, CleanStage

    runtime = Runtime.create(args.device, args.precision)
    device = runtime.device
    loaded = load_model(args.model, args.pretrained, device=device, seed=args.seed)
    source = load_dataset(args.dataset, root=args.data_root, split=args.split, transform=loaded.pixel_transform())
    source = limit_dataset(source, args.images, args.seed)
    n = len(source)

    start = time.perf_counter()
    pixels, _ = stack_images(source)  # decoded + preprocessed once: warm data
    preload_s = time.perf_counter() - start
    memory = ImageDataset(name=source.name, split=source.split, classnames=source.classnames,
                          templates=source.templates, labels=source.labels, sample_ids=source.sample_ids,
                          loader=TensorLoader(pixels), transform=_identity, text_targets=source.text_targets)

    tmp = tempfile.TemporaryDirectory(prefix="typobench-bench-")
    config = RunConfig(model=args.model, pretrained=args.pretrained, dataset=args.dataset, head="zeroshot",
                       seed=args.seed, cache_dir=str(Path(tmp.name) / "cache"))
    session = Session.of(config, runtime, loaded, memory)
    ctx = session.context  # builds the zero-shot head
    stages = [CleanStage()]

    plan = batch_plan(n, args.batch_size)
    labels = torch.tensor(memory.labels)
    batches = [(pixels[idx].to(device), labels[idx].to(device), idx) for idx in plan]
    mean = torch.tensor(loaded.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(loaded.std, device=device).view(1, 3, 1, 1)
    tower = loaded.model

    stores: list[BatchStore] = []

    def harness_predict_stages() -> object:
        # A fresh run folder per pass (a finished batch would be skipped); they are deleted untimed.
        store = BatchStore(Path(tmp.name) / f"run-{len(stores)}", "bench")
        stores.append(store)
        return predict_stages(memory, stages, ctx, store, batch_size=args.batch_size, workers=0, progress=False)

    def harness_per_batch() -> object:
        frames = []
        for images, y, idx in batches:
            batch = Batch(images=images, labels=y, indices=idx, sample_ids=[memory.sample_ids[i] for i in idx])
            frames.append(pd.DataFrame(run_stages_on_batch(stages, batch, ctx)))
        return frames

    def bare() -> object:
        out = None
        with torch.no_grad(), runtime.autocast():
            for images, _, _ in batches:
                out = tower.encode_image((images - mean) / std)
        return out

    fns = {"predict_stages()": harness_predict_stages, "run_stages_on_batch": harness_per_batch, "bare encode_image": bare}
    load_before = loadavg()
    times = timed_interleaved(fns, args.repeats, device)
    load_after = loadavg()

    bare_median, bare_best = rates(times["bare encode_image"], n)
    print(f"model={args.model} device={device} precision={args.precision} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} cpus={cpus()}")
    print(f"data: {n} images of {args.dataset} preloaded as [0,1] tensors {tuple(pixels.shape[1:])} "
          f"in {preload_s:.2f} s; batch {args.batch_size}; {args.repeats} timed passes per row, interleaved")
    print(f"load average (1/5/15 min): {load_before} before, {load_after} after")
    print(f"{'path':<22} {'median img/s':>13} {'best img/s':>11} {'ratio (median)':>15} {'ratio (best)':>13}")
    for name in fns:
        median, best = rates(times[name], n)
        print(f"{name:<22} {median:>13,.0f} {best:>11,.0f} {ratio(median, bare_median):>15.3f} {ratio(best, bare_best):>13.3f}")
    eval_median, _ = rates(times["predict_stages()"], n)
    per_batch = overhead_ms_per_batch(eval_median, bare_median, args.batch_size)
    print(f"harness overhead: {per_batch:.2f} ms per batch of {args.batch_size} "
          f"(bare loop: {1e3 * args.batch_size / bare_median:.2f} ms per batch)")
    if note := contention_note(load_before, torch.get_num_threads(), cpus()):
        print(note)
    print("verdict (predict_stages(), medians): " + verdict(ratio(eval_median, bare_median)))

    for store in stores:
        store.clear()

    if args.profile:
        profiler = cProfile.Profile()
        for _ in range(args.repeats):
            profiler.enable()
            harness_predict_stages()
            profiler.disable()
            stores.pop().clear()
        stats = pstats.Stats(profiler)
        print(f"\n== cProfile of {args.repeats} predict_stages() passes: cumulative seconds per part "
              "(the profiler inflates Python-heavy parts) ==")
        for label, seconds, share in breakdown(stats, PROFILE_PARTS):
            print(f"{label:<52} {seconds:>8.3f} s {share:>6.1%}")
        stream = io.StringIO()
        stats.stream = stream
        stats.sort_stats("tottime").print_stats(15)
        print("\n== top functions by own time ==")
        print(stream.getvalue())
    tmp.cleanup()


# (label, file suffix, function name) of the parts of predict_stages() worth telling apart.
PROFILE_PARTS = [
    ("predict_stages() total", "typobench/harness/evaluation.py", "predict_stages"),
    ("  run_stages_on_batch(): the two below + stacking columns", "typobench/harness/evaluation.py", "run_stages_on_batch"),
    ("    score(): normalise + image tower + head", "typobench/stages/base.py", "score"),
    ("    prediction_rows(): columns per stage", "typobench/harness/evaluation.py", "prediction_rows"),
    ("  BatchStore.save(): one frame and CSV per part", "typobench/harness/resume.py", "save"),
    ("  BatchStore.save_examples(): safetensors", "typobench/harness/resume.py", "save_examples"),
    ("  BatchStore.load_all(): read CSVs back", "typobench/harness/resume.py", "load_all"),
    ("  BatchStore.open()", "typobench/harness/resume.py", "open"),
    ("  DataLoader: fetch + collate", "torch/utils/data/dataloader.py", "__next__"),
]



if __name__ == "__main__":
    main(sys.argv[1:])
