"""``typobench heads``: every attention head of a finished run's ViT, its direct contribution, its text basis and
the effect of ablating it on clean and typographic accuracy."""

from __future__ import annotations

import argparse

from typobench.core.options import add_arguments, declared, from_namespace
from typobench.harness.config import Quiet
from typobench.harness.world import World
from typobench.neurons.atlas.heads_page import points
from typobench.neurons.heads.survey import HeadSurveyOptions
from typobench.neurons.heads_run import SurveyOutcome, survey_run
from typobench.suites.neurons_option import RUNTIME, NeuronsConfig

EPILOG = """\
example (a ViT run on held-out test images, then every head of it):
  typobench run --model toyclip-vit --dataset cifar10-jpeg --data-root DATA --holdout 2000 --limit 500 \\
      --suite random-wrong-label --out runs/vit
  typobench heads --from runs/vit --stage random-wrong-label --out runs/vit/heads
  open runs/vit/heads/atlas/heads.html
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "heads",
        help="survey every attention head of a ViT run: direct contribution, TextSpan text basis, ablation effect",
        description="Reopen a finished `typobench run` of a ViT model and, for every attention head of every block: "
                    "its direct contribution to the image embedding (TextSpan's decomposition), the texts of a lexicon "
                    "(class names, words, short image descriptions) its contributions align with (TextSpan's greedy "
                    "basis), its top images along the first text, and how ablating its class-token output changes "
                    "clean and typographic accuracy on the run's images (paired bootstrap 95% intervals). Writes "
                    "heads.json, heads_predictions.csv, head_examples/*.png and atlas/heads.html (one page per head).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    groups = add_arguments(parser, NeuronsConfig, ["run_dir"])
    add_arguments(parser, HeadSurveyOptions, [d.name for d in declared(HeadSurveyOptions)], groups=groups)
    add_arguments(parser, NeuronsConfig, ["out", "device", "batch_size", "cache_dir"], groups=groups,
                  helps={"out": "output folder (default: RESULTS_DIR/heads)"})
    add_arguments(parser, Quiet, ["quiet"], groups={None: groups[RUNTIME]}, helps={"quiet": "no progress lines"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not World.from_env().leader:  # under torchrun the survey runs once, on rank 0
        return 0
    outcome = survey_run(from_namespace(HeadSurveyOptions, args), from_namespace(NeuronsConfig, args),
                         progress=not args.quiet)
    print_table(outcome)
    return 0


def print_table(outcome: SurveyOutcome, rows: int = 10) -> None:
    """The heads by typographic effect of their ablation (largest gain first)."""
    report = outcome.report
    base = report["base"]
    print(f"{report['run']['model']} on {report['images']['n']} images, stage {report['run']['stage']}: clean "
          f"{100 * base['clean']['accuracy']:.1f}%, typographic {100 * base['typographic']['accuracy']:.1f}%; "
          f"{report['options']['ablation']} ablation of each head's class-token output")
    order = sorted(report["heads"], key=lambda h: -(h["ablation"]["typographic"]["delta"]["value"] or 0.0))
    print(f"{'head':<20} {'|direct|':>8} {'share':>7}  {'typographic, points [95%]':<26} {'clean, points [95%]':<26} "
          "first text: clean / typographic")
    for record in order[:rows]:
        texts = [(record[key] or [{"text": "-"}])[0]["text"] for key in ("text_basis", "text_basis_typographic")]
        print(f"{record['name']:<20} {record['direct']['clean']['mean_norm'] or 0:>8.3f} "
              f"{100 * (record['direct']['clean']['share'] or 0):>6.1f}%  "
              f"{points(record['ablation']['typographic']['delta']):<26} {points(record['ablation']['clean']['delta']):<26} "
              f"{' / '.join(texts)}")
    print(f"wrote {outcome.out_dir / 'heads.json'} and {len(outcome.files) - 1} more files"
          + (f"; open {outcome.out_dir / 'atlas' / 'heads.html'}" if report and "atlas/heads.html" in outcome.files else ""))


__all__ = ["handle", "register"]
