"""``typobench neurons``: link a finished run's failures to the neurons responsible, and test the blame causally."""

from __future__ import annotations

import argparse

from typobench.neurons.analysis import analyze
from typobench.neurons.cards.card import DEFAULT_WORDS
from typobench.neurons.microscope.output import microscope_line
from typobench.core.options import add_arguments, declared, from_namespace
from typobench.suites.neurons_option import GROUPS, RUNTIME, NeuronsConfig
from typobench.harness.config import Quiet
from typobench.harness.world import World


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "neurons",
        help="blame a run's failures on neurons (gradient x activation) and prove it by ablation",
        description="Reuse a finished `typobench run` (its attacked images are regenerated exactly, only for the "
                    "samples needed): attribute every failure's logit difference to neurons (ResNet layer4 channels, "
                    "ViT last-block MLP units), ablate the top-k blamed neurons against random and activation-matched "
                    "baselines, and draw a card per blamed neuron (text facet, top images, multimodal test). Writes "
                    "neurons.json, neurons_blame.csv, neurons_ablation.csv, neurons_cards.csv, neuron_cards/*.png and "
                    "neurons.md next to the run's results.",
        epilog="example: typobench neurons --from runs/toyclip-cifar10 --stage random-wrong-label --top-k 10 --draws 5",
    )
    vocab = ("word list for the text facet, one word per line (class names are always added; default: a built-in "
             f"list of {len(DEFAULT_WORDS)} words, short and long)")
    groups = add_arguments(parser, NeuronsConfig, [d.name for d in declared(NeuronsConfig)], helps={"vocab": vocab},
                           described=GROUPS)
    add_arguments(parser, Quiet, ["quiet"], groups={None: groups[RUNTIME]}, helps={"quiet": "no progress lines"})
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not World.from_env().leader:  # under torchrun the analysis runs once, on rank 0
        return 0
    config = from_namespace(NeuronsConfig, args)
    outcome = analyze(config, progress=not args.quiet)
    for entry in outcome.report["analyses"]:
        if entry.get("n_events") and "verdict" in entry:
            print(f"{entry['stage']} / {entry['kind']}: {entry['n_events']} events; top {', '.join(entry['blamed'][:3])}; "
                  f"{entry['verdict']}")
    cards = outcome.report["cards"]
    print(f"multimodal: {cards['blamed_multimodal']} of {cards['blamed_total']} blamed neurons "
          f"(base rate {cards['base_rate_n']}/{cards['n_neurons']})")
    for entry in outcome.report.get("heads", {}).get("analyses", []):
        print(f"heads, {entry['stage']} / {entry['kind']}: top {', '.join(entry['blamed'][:3])}; {entry['verdict']}")
    probe = outcome.report.get("sparse_probe")
    if probe:
        images = probe["images"]
        print(f"sparse probe: {probe['sparse']['per_class']:.2f} neurons per class, held-out accuracy "
              f"{probe['sparse']['held_out_accuracy']:.3f} vs full probe {probe['full']['held_out_accuracy']:.3f} "
              f"(fitted on {images['train']['n']} clean images, scored on {images['held_out']['n']} others)")
    looked = outcome.report.get("microscope")
    if looked:
        print(microscope_line(looked["summary"]))
    print(f"wrote {outcome.out_dir / 'neurons.md'} and {len(outcome.files) - 1} more files")
    return 0
