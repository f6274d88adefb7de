"""``typobench defend``: a suite on the model without defenses and with each given defense; one table."""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace

from tqdm.auto import tqdm

from typobench.core.options import add_arguments, check, declared, from_namespace
from typobench.harness.config import Quiet, RunConfig
from typobench.commands.common import add_model_data_options, config_from_args
from typobench.experiments.defend.reading import lexicon
from typobench.experiments.defend.rows import parse_rows
from typobench.experiments.defend.runner import DefendOptions, default_defend_dir, run_defend
from typobench.experiments.defend.table import markdown
from typobench.harness.session import Session
from typobench.suites import read_suite_or_clean

DEFAULT_DEFEND_SUITE = "defend"

EPILOG = """\
examples:
  # choose on train images: blame neurons there, then score the defenses on test images
  typobench run --suite random-wrong-label --dataset cifar10-jpeg --data-root DATA --split train --limit 2000 --out runs/sel
  typobench neurons --from runs/sel --stage random-wrong-label
  typobench defend --dataset cifar10-jpeg --data-root DATA --limit 1000 --out runs/defend \\
      --defense "ablate:from=runs/sel/neurons.json,stage=random-wrong-label,k=10" \\
      --defense input:blur=1 --defense input:jpeg=75 --defense "prompt:prefix=prefix.safetensors"
  # two defenses composed in one row: separate them with ';'
  typobench defend --defense "input:blur=1;ablate:units=layer4:12+layer4:7"
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "defend",
        help="score defenses side by side against adaptive and transfer attacks: one table and a picture",
        description="Run SUITE (default: defend, version 2: clean, a random wrong class name, a control word, and "
                    "at L-inf 2/255 the APGD-CE + APGD-T + Square cascade through each defense's declared backward "
                    "pass (adaptive, EOT over 20 draws for a randomised defense) and made on the undefended model "
                    "(transfer)) on the model without defenses and with each --defense, loading the model and data once. Writes "
                    "OUT/defend.json, defend.csv, defend.md (accuracy per stage with 95% intervals, the "
                    "written-class rate, the clean cost with a paired interval, sanity flags: zero gradients, "
                    "a random forward pass, transfer stronger than adaptive; the attack-failure flags of "
                    "--attack-checks) and defend.png; each row's run is "
                    "kept in OUT/rows/ and resumes. A defense chosen from data (units from neurons.json, a "
                    "learned prefix) must have been chosen on other images than the ones scored: else exit 2. "
                    "--suite none scores clean images only (accuracy and clean cost).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_data_options(parser, defense_help_lead="a row of the table: a defense, or several joined by ';' "
                                                     "applied in order (repeat for more rows; the model without "
                                                     "defenses is always the first row)", suite=DEFAULT_DEFEND_SUITE)
    add_arguments(parser, RunConfig, ("out", "overwrite"), helps={
        "out": "output folder (default: runs/defend-<model>-<dataset>-<suite>-<hash>)",
        "overwrite": "replace rows in --out computed with another configuration"})
    add_arguments(parser, DefendOptions, [d.name for d in declared(DefendOptions)])
    add_arguments(parser, Quiet, ["quiet"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    options = from_namespace(DefendOptions, args)
    check(options)  # before anything is loaded
    if options.reading:
        lexicon(options.lexicon_words)  # a --lexicon-words beyond the lexicon fails before anything is loaded
    config = config_from_args(args)
    rows = parse_rows(config.defenses)  # the rows are checked before anything is loaded
    config = replace(config, defenses=[])  # the session is the undefended model; each row adds its own
    # `--suite none` means what it means for `typobench run`: clean images only (each defense's clean accuracy
    # and clean cost), never the default suite.
    suite = read_suite_or_clean(config.suite)
    session = Session.open(config)
    out_dir = config.out or default_defend_dir(session, suite, rows)
    print(f"defend: suite {suite.name}, {len(rows)} rows (none + {len(rows) - 1} defenses) -> {out_dir}")
    outcome = run_defend(session, suite, rows, out_dir, progress=not args.quiet, overwrite=config.overwrite,
                         log=tqdm.write, **asdict(options))
    if session.world.leader:
        print(markdown(outcome.table, outcome.rows[0]["results"]["stages"]), end="")
        for path in outcome.files:
            print(f"wrote {path}")
    return 0
