"""``typobench benchmark``: one suite on one model over many data sets; a row per data set and their mean."""

from __future__ import annotations

import argparse

from tqdm.auto import tqdm

from typobench.commands.common import add_model_data_options, config_from_args
from typobench.core.options import add_arguments, check, from_namespace
from typobench.experiments.benchmark.runner import BenchmarkOptions, default_benchmark_dir, run_benchmark
from typobench.experiments.benchmark.table import markdown
from typobench.harness.config import DEFAULT_SUITE, Quiet, RunConfig
from typobench.suites import read_suite_or_clean

EPILOG = """\
examples:
  # FARE's zero-shot table: one root holding each data set's torchvision folder
  typobench benchmark --model toyclip-fare --suite fare2024 --datasets cifar10 cifar100 stl10 \\
      --data-root DATA --limit 1000
  # clip_benchmark's layout: one folder per data set ({dataset} is replaced by each name)
  typobench benchmark --suite none --datasets cifar10 dtd eurosat --data-root "DATA/{dataset}"
  # the bundled sample and an ImageFolder of your own, clean accuracy only
  typobench benchmark --suite none --datasets cifar10-sample folder --data-root my-images
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="one suite over many data sets: a row per data set and their mean",
        description="Run SUITE on the model over each data set of --datasets, loading the model once. Every data "
                    "set is loaded and checked against the suite before any runs (an unknown name, a missing "
                    "folder or classes the suite cannot use: exit 2, nothing run). Writes OUT/benchmark.json, "
                    "benchmark.csv and benchmark.md: a row per data set (n, each stage's accuracy with its 95% "
                    "interval and n) and a last row 'mean', the unweighted mean over the data sets (each counts "
                    "once whatever its size, as FARE and clip_benchmark report it). Each data set's run is kept "
                    "in OUT/datasets/<name>/ (results.json, predictions.csv) and resumes; a finished one is read "
                    "back. --suite none scores clean images only.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_data_options(parser, suite=DEFAULT_SUITE, data_without=("dataset",), data_helps={
        "data_root": "the folder holding each data set's folder (the torchvision layouts `typobench list datasets` "
                     "names); '{dataset}' in it is replaced by each data set's name (clip_benchmark's convention); "
                     "for folder, the ImageFolder itself",
        "classnames_file": "text file with one class name per line (folder data sets); '{dataset}' in it is "
                           "replaced by each data set's name"})
    add_arguments(parser, BenchmarkOptions, ["datasets"])
    add_arguments(parser, RunConfig, ("out", "overwrite"), helps={
        "out": "output folder (default: runs/benchmark-<model>-<suite>-<hash>)",
        "overwrite": "replace data set runs in --out computed with another configuration"})
    add_arguments(parser, Quiet, ["quiet"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(BenchmarkOptions, args)
    check(options)  # every name is a registered data set, given once: before anything is loaded
    config = config_from_args(args)
    config.validate()
    suite = read_suite_or_clean(config.suite)  # `--suite none`: clean images only, as for run and defend
    out_dir = config.out or default_benchmark_dir(config, suite, options.datasets)
    print(f"benchmark: suite {suite.name}, {len(options.datasets)} data sets -> {out_dir}")
    outcome = run_benchmark(config, suite, options, out_dir, progress=not args.quiet, overwrite=config.overwrite,
                            log=tqdm.write)
    if outcome.files:  # the leader rank alone writes (and prints)
        print(markdown(outcome.table, outcome.stages), end="")
        for path in outcome.files:
            print(f"wrote {path}")
    return 0
