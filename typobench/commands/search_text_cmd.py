"""``typobench search-text``: rank candidate attack texts by targeted success on a sample."""

from __future__ import annotations

import argparse

from typobench.core.options import add_arguments, check, declared, from_namespace
from typobench.harness.config import Quiet, RunConfig
from typobench.commands.common import add_model_data_options, config_from_args
from typobench.core.errors import UsageError
from typobench.experiments.text_search import SearchOptions, read_words, run_text_search, template_stage
from typobench.harness.session import Session
from typobench.suites import read_suite


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search-text",
        help="rank candidate attack texts by targeted success (Goh et al.'s brute-force search)",
        description="Write each candidate text (all class names, their short forms, and --words) on a sample "
                    "of images, in the style and placement of a suite's text stage, and rank candidates by "
                    "the rate at which the prediction becomes each target class.",
        epilog="example: typobench search-text --dataset imagenet-sample --data-root ../shared/data/imagenet-sample "
               "--target iPod --target pizza --limit 200",
    )
    add_model_data_options(parser, suite="goh2021-imagenet", limit=200)
    add_arguments(parser, SearchOptions, [d.name for d in declared(SearchOptions)])
    add_arguments(parser, RunConfig, ("out",), helps={"out": "output folder (default: runs/search-text-<hash>)"})
    add_arguments(parser, Quiet, ["quiet"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(SearchOptions, args)
    check(options)
    config = config_from_args(args)
    config.validate()
    if config.suite is None:
        raise UsageError("search-text needs --suite with a text stage to copy the style from")
    stage = template_stage(read_suite(config.suite), options.stage)
    extra_words = read_words(options.words)
    search = run_text_search(Session.open(config), stage, targets=options.targets, extra_words=extra_words,
                             top_k=options.top_k, out_dir=args.out, progress=not args.quiet)
    ranked = search.ranked
    with_ci = ranked.assign(success=lambda f: (100 * f["success"]).round(1),
                            ci=lambda f: [f"[{100 * lo:.1f}, {100 * hi:.1f}]" for lo, hi in zip(f["ci_low"], f["ci_high"])])
    print(with_ci[["target", "text", "success", "ci", "n", "pixel_fraction"]].to_string(index=False))
    print(f"\nresults {search.out_dir}/search_text.csv (all candidates), {search.out_dir}/search_text_top.csv "
          f"(top {options.top_k})")
    return 0


__all__ = ["register"]
