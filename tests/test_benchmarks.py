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
            ("/x/typobench/evaluation.py", 1, "predict_stages"): (1, 1, 0.1, 2.0, {}),
            ("/x/typobench/stages.py", 2, "score"): (1, 1, 0.1, 1.5, {}),
            ("/elsewhere/stages.py", 2, "score"): (1, 1, 0.1, 9.0, {}),  # another file: ignored
    })
    rows = zeroshot.breakdown(fake_stats, [("total", "typobench/evaluation.py", "predict_stages"),
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
        pgd_bench.fraction("x")


def test_pgd_derived_figures(pgd_bench):
    assert pgd_bench.work(10) == (11, 10)
    median, best = pgd_bench.rates([1.0, 2.0, 0.5], 640)
    assert median == 640.0 and best == 1280.0
    assert pgd_bench.ratio(450.0, 500.0) == pytest.approx(0.9)
    assert pgd_bench.verdict(0.95).startswith("MET") and pgd_bench.verdict(0.8).startswith("MISSED")
    assert not math.isnan(pgd_bench.ratio(1.0, 3.0))


# -- peers.py, suite.py, breakdown.py, precision.py, probe_memory.py ------------------------------------------


@pytest.fixture(scope="module")
def peers():
    return _load("peers")


@pytest.fixture(scope="module")
def suite_bench():
    return _load("suite")


@pytest.fixture(scope="module")
def breakdown():
    return _load("breakdown")


@pytest.fixture(scope="module")
def precision():
    return _load("precision")


@pytest.fixture(scope="module")
def probe_memory():
    return _load("probe_memory")


def test_peers_defaults_and_bad_input(peers):
    args = peers.parse_args([])
    assert args.model == "toyclip" and args.steps == 10 and not args.random_start and args.only is None
    assert args.eps == pytest.approx(2 / 255) and args.step_size == pytest.approx(0.5 / 255)
    assert peers.parse_args(["--l2-eps", "1/2"]).l2_eps == 0.5
    for bad in (["--images", "0"], ["--eps", "x"], ["--only", "all"]):
        with pytest.raises(SystemExit):
            peers.parse_args(bad)


def test_peers_templates_become_clip_benchmarks_form(peers):
    converted = peers.peer_templates(["a photo of a {}.", "{} in the wild", "no slot"])
    assert converted == ["a photo of a {c}.", "{c} in the wild", "no slot"]
    assert converted[0].format(c="cat") == "a photo of a cat."


def test_peers_verdicts(peers):
    assert peers.verdict(1.0, "x").startswith("MET") and peers.verdict(0.99, "x").startswith("MISSED")
    assert peers.equal_verdict(694, 694, 1000).startswith("EQUAL")
    assert peers.equal_verdict(694, 693, 1000).startswith("DIFFERENT")
    assert "694/1000 = 0.6940" in peers.equal_verdict(694, 693, 1000)


def test_peers_autocast_wrapper_returns_the_classifiers_float_logits(peers):
    import torch

    from typobench.core.runtime import Runtime

    linear = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    fp32 = peers.Autocast(linear, Runtime(torch.device("cpu"), "fp32"))
    assert torch.equal(fp32(x), linear(x))
    bf16 = peers.Autocast(linear, Runtime(torch.device("cpu"), "bf16"))
    assert bf16(x).dtype == torch.float32 and torch.allclose(bf16(x), linear(x), atol=0.1)


def test_peers_normalised_pixels_match_the_classifiers_normalisation(peers):
    import torch

    pixels, labels = torch.rand(3, 3, 4, 4), torch.tensor([0, 2, 1])
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    data = peers.NormalisedPixels(pixels, labels, mean, std)
    image, label = data[1]
    expected = (pixels[1] - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert len(data) == 3 and int(label) == 2 and torch.allclose(image, expected, atol=1e-6)


def test_peers_quiet_hides_progress_bars_and_keeps_results(peers, capsys):
    def noisy():
        print("bar", file=sys.stderr)
        return 7

    assert peers.quiet({"a": noisy})["a"]() == 7
    assert capsys.readouterr().err == ""


def test_suite_defaults_and_bad_input(suite_bench):
    args = suite_bench.parse_args([])
    assert args.suite == ["default", "fort2021-cifar10", "goh2021-imagenet"] and args.random_head == "auto"
    assert suite_bench.parse_args(["--suite", "default"]).suite == ["default"]
    for bad in (["--suite", "nope"], ["--images", "0"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            suite_bench.parse_args(bad)
    assert suite_bench.PRESETS["goh2021-imagenet"].model == "ViT-B-32"
    assert suite_bench.PRESETS["fort2021-cifar10"].target is None


@pytest.mark.parametrize(("suite", "work"), [("default", (6, 10)), ("fort2021-cifar10", (12, 80)),
                                             ("goh2021-imagenet", (10, 0))])
def test_suite_model_work_counts_the_shipped_suites(suite_bench, suite, work):
    from typobench.suites import read_suite

    # default: 5 scored stages + the PGD's last iterate; 10 steps. fort2021: 8 stages, 4 PGDs of 20 steps.
    assert suite_bench.model_work(read_suite(suite).stages) == work


def test_suite_model_work_counts_restarts_only_with_a_random_start(suite_bench):
    from typobench.stages.base import CleanStage
    from typobench.adversarial.pgd import PGDConfig
    from typobench.stages.pgd import PGDStage

    restarts = PGDStage("p", "clean", PGDConfig(eps=0.1, step_size=0.01, steps=5, restarts=3))
    fixed = PGDStage("q", "clean", PGDConfig(eps=0.1, step_size=0.01, steps=5, restarts=3, random_start=False))
    assert suite_bench.model_work([CleanStage(), restarts]) == (1 + 1 + 3, 15)
    assert suite_bench.model_work([fixed]) == (2, 5)


def test_suite_run_argv_is_a_valid_typobench_run(suite_bench, tmp_path):
    from typobench.cli import build_parser
    from typobench.commands.common import config_from_args

    args = suite_bench.parse_args(["--precision", "bf16"])
    preset = suite_bench.PRESETS["default"]
    config = config_from_args(build_parser().parse_args(
        suite_bench.run_argv("default", preset, args, tmp_path / "out", tmp_path / "cache")))
    assert (config.suite, config.model, config.dataset, config.limit) == ("default", "toyclip", "cifar10-jpeg", 256)
    assert config.precision == "bf16" and config.out == str(tmp_path / "out")
    assert config.cache_dir == str(tmp_path / "cache") and config.data_root == str(preset.data_root)


def test_suite_verdict_and_random_weights(suite_bench):
    assert suite_bench.ratio_verdict(1.10, 1.10).startswith("MET")
    assert suite_bench.ratio_verdict(1.11, 1.10).startswith("MISSED")
    assert "no target" in suite_bench.ratio_verdict(1.5, None)
    assert suite_bench.breakdown_ratio(2.0, 20.0) == pytest.approx(1.1)
    assert suite_bench._has_weights("toyclip") and suite_bench._has_weights("ViT-B-32:openai")
    assert not suite_bench._has_weights("tiny-rn") and not suite_bench._has_weights("ViT-B-32")


def test_breakdown_counts_each_second_once_in_the_innermost_part(breakdown):
    clock = iter([0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0]).__next__
    buckets = breakdown.Buckets(clock=clock)

    class Owner:
        @staticmethod
        def outer():
            Owner.inner()

        @staticmethod
        def inner():
            pass

    with buckets.recording([(Owner, "outer", "outer"), (Owner, "inner", "model")]):  # clock 0
        Owner.outer()  # enter outer at 1, enter inner at 3, leave inner at 6, leave outer at 10
        clock()  # 15: the block's own time keeps running
    # rest: 0-1 and 10-21; outer: 1-3 and 6-10; model: 3-6.
    assert buckets.runs == [{"rest": 12.0, "outer": 6.0, "model": 3.0}]
    assert not hasattr(Owner.outer, "__wrapped__") and not hasattr(Owner.inner, "__wrapped__")  # restored


def test_breakdown_keeps_method_kinds_and_uncovers_inherited_methods(breakdown):
    class Base:
        def method(self):
            return "base"

    class Owner(Base):
        @classmethod
        def make(cls):
            return cls.__name__

        @staticmethod
        def plain(x):
            return x + 1

    buckets = breakdown.Buckets()
    with buckets.recording([(Owner, "make", "a"), (Owner, "plain", "b"), (Owner, "method", "c")]):
        assert (Owner.make(), Owner().plain(1), Owner().method()) == ("Owner", 2, "base")
    assert "method" not in vars(Owner) and isinstance(vars(Owner)["plain"], staticmethod)
    assert set(buckets.runs[0]) == {"rest", "a", "b", "c"}


def test_breakdown_restores_the_functions_when_the_block_raises(breakdown):
    class Owner:
        @staticmethod
        def work():
            raise ValueError("boom")

    original = Owner.__dict__["work"]
    buckets = breakdown.Buckets()
    with pytest.raises(ValueError), buckets.recording([(Owner, "work", "w")]):
        Owner.work()
    assert Owner.__dict__["work"] is original and set(buckets.runs[0]) == {"rest", "w"}


def test_breakdown_shares_and_median_run(breakdown):
    assert breakdown.shares({"a": 1.0, "b": 3.0}) == [("b", 3.0, 0.75), ("a", 1.0, 0.25)]
    runs = [{"a": 5.0}, {"a": 1.0, "b": 1.0}, {"a": 9.0}]
    assert breakdown.median_run(runs) == {"a": 5.0}
    assert breakdown.median_run(runs[:2]) == {"a": 1.0, "b": 1.0}  # the lower middle: an actual run


def test_precision_helpers(precision):
    import torch

    args = precision.parse_args([])
    assert args.model == "toyclip" and args.suite == "default" and args.suite_images == 128
    with pytest.raises(SystemExit):
        precision.parse_args(["--suite-images", "-1"])
    assert precision.variants()[0] == ("fp32", "contiguous") and len(precision.variants()) == 6
    assert precision.agreement(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75
    assert precision.accuracy_points({"clean": 0.70, "pgd": 0.10}, {"clean": 0.69, "pgd": 0.12}) == pytest.approx(
        {"clean": -1.0, "pgd": 2.0})


def test_probe_memory_helpers(probe_memory):
    args = probe_memory.parse_args(["--sizes", "10", "20"])
    assert args.width == 1024 and args.classes == 1000 and args.child is None
    child = probe_memory.parse_args(probe_memory.child_command(args, 10)[2:])
    assert child.child == 10 and child.width == 1024 and child.max_iter == args.max_iter
    with pytest.raises(SystemExit):
        probe_memory.parse_args(["--classes", "1"])
    assert probe_memory.features_gib(2**20, 256) == 1.0
    assert probe_memory.fit_line([(10, 3.0), (20, 5.0), (30, 7.0)]) == pytest.approx((1.0, 0.2))
    assert probe_memory.fit_line([(10, 3.0)]) == pytest.approx((0.0, 0.3))
    assert probe_memory.verdict(15.9).startswith("FITS") and probe_memory.verdict(16.1).startswith("DOES NOT")
