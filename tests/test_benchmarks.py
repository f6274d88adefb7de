"""The benchmark scripts' pure helpers: argument parsing and derived figures. No timing here."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"typobench_benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def zeroshot():
    return _load("zeroshot")


@pytest.fixture(scope="module")
def memory():
    return _load("memory")


@pytest.fixture(scope="module")
def pgd_bench():
    return _load("pgd")


def test_zeroshot_defaults(zeroshot):
    args = zeroshot.parse_args([])
    assert args.model == "tiny-rn" and args.device == "auto" and args.dataset == "cifar10-sample"
    assert args.images >= 1 and args.batch_size >= 1 and args.threads is None and not args.profile


def test_zeroshot_accepts_any_model_name_and_rejects_bad_counts(zeroshot):
    assert zeroshot.parse_args(["--model", "ViT-B-32:openai"]).model == "ViT-B-32:openai"
    with pytest.raises(SystemExit):
        zeroshot.parse_args(["--batch-size", "0"])


def test_zeroshot_derived_figures(zeroshot):
    median, best = zeroshot.rates([2.0, 1.0, 4.0], 100)
    assert median == 50.0 and best == 100.0
    assert zeroshot.ratio(90.0, 100.0) == pytest.approx(0.9)
    assert zeroshot.verdict(0.9).startswith("MET") and zeroshot.verdict(0.899).startswith("MISSED")
    # 64 images at 1,000/s take 64 ms, at 1,280/s 50 ms: 14 ms of overhead per batch.
    assert zeroshot.overhead_ms_per_batch(1000.0, 1280.0, 64) == pytest.approx(14.0)


def test_zeroshot_contention_note(zeroshot):
    assert zeroshot.contention_note("3.5 2.0 1.0", threads=2, cpus=2) is not None
    assert zeroshot.contention_note("3.5 2.0 1.0", threads=1, cpus=2) is None
    assert zeroshot.contention_note("0.2 0.1 0.1", threads=2, cpus=2) is None
    assert zeroshot.contention_note("n/a", threads=2, cpus=2) is None


def test_zeroshot_timed_interleaved_runs_every_fn(zeroshot):
    import torch

    calls: list[str] = []
    times = zeroshot.timed_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3,
                                       torch.device("cpu"))
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert calls.count("a") == calls.count("b") == 4  # one warm-up each
    assert calls[2:4] == ["a", "b"] and calls[4:6] == ["b", "a"]  # the order rotates


def test_zeroshot_profile_breakdown(zeroshot):
    from types import SimpleNamespace

    fake_stats = SimpleNamespace(stats={
            ("/x/typobench/evaluation.py", 1, "evaluate"): (1, 1, 0.1, 2.0, {}),
            ("/x/typobench/stages.py", 2, "score"): (1, 1, 0.1, 1.5, {}),
            ("/elsewhere/stages.py", 2, "score"): (1, 1, 0.1, 9.0, {}),  # another file: ignored
    })
    rows = zeroshot.breakdown(fake_stats, [("total", "typobench/evaluation.py", "evaluate"),
                                            ("score", "typobench/stages.py", "score"),
                                            ("missing", "typobench/resume.py", "save")])
    assert rows == [("total", 2.0, 1.0), ("score", 1.5, 0.75), ("missing", 0.0, 0.0)]


def test_memory_defaults_and_child_command(memory):
    args = memory.parse_args([])
    assert args.model == "tiny-rn" and args.dataset == "cifar10-jpeg" and args.sizes == [1000, 10000]
    assert Path(args.data_root).parts[-3:] == ("shared", "data", "cifar10-jpeg")
    assert args.child is None
    command = memory.child_command(args, 1000)
    assert command[0] == sys.executable and command[2:4] == ["--child", "1000"]
    child = memory.parse_args(command[2:])
    assert child.child == 1000 and child.data_root == args.data_root and child.model == args.model
    with pytest.raises(SystemExit):
        memory.parse_args(["--sizes", "0"])


def test_memory_derived_figures(memory):
    small = {"images": 1000, "peak_mib": 900.0}
    large = {"images": 10000, "peak_mib": 945.0, "image_side": 64}
    assert memory.peak_ratio(small, large) == pytest.approx(1.05)
    assert memory.growth_mib_per_1000(small, large) == pytest.approx(5.0)
    assert memory.growth_mib_per_1000(small, dict(small)) == 0.0
    assert memory.held_images_mib(1000, large) == pytest.approx(1000 * 3 * 64 * 64 * 4 / 2**20)
    assert memory.verdict(1.05).startswith("MET") and memory.verdict(1.5).startswith("MISSED")


def test_memory_maxrss_is_positive(memory):
    assert memory.maxrss_mib() > 0


def test_pgd_defaults_and_fractions(pgd_bench):
    args = pgd_bench.parse_args([])
    assert args.model == "tiny-rn" and args.device == "auto" and args.steps >= 1
    assert args.eps == pytest.approx(8 / 255) and args.step_size == pytest.approx(2 / 255)
    args = pgd_bench.parse_args(["--eps", "4/255", "--step-size", "0.01", "--norm", "l2"])
    assert args.eps == pytest.approx(4 / 255) and args.step_size == 0.01 and args.norm == "l2"
    for bad in (["--eps", "a/b"], ["--eps", "1/0"], ["--steps", "0"], ["--norm", "l1"]):
        with pytest.raises(SystemExit):
            pgd_bench.parse_args(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        pgd_bench._fraction("x")


def test_pgd_derived_figures(pgd_bench):
    assert pgd_bench.work(10) == (11, 10)
    median, best = pgd_bench.rates([1.0, 2.0, 0.5], 640)
    assert median == 640.0 and best == 1280.0
    assert pgd_bench.ratio(450.0, 500.0) == pytest.approx(0.9)
    assert pgd_bench.verdict(0.95).startswith("MET") and pgd_bench.verdict(0.8).startswith("MISSED")
    assert not math.isnan(pgd_bench.ratio(1.0, 3.0))
