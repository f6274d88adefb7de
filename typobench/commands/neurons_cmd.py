"""``typobench neurons``: link a finished run's failures to the neurons responsible, and test the blame causally."""

from __future__ import annotations

import argparse

from typobench.neurons.analysis import analyze
from typobench.neurons.cards.card import DEFAULT_WORDS
from typobench.neurons.microscope.output import microscope_line
from typobench.suites.neurons_option import ABLATION_MODES, EVENT_KINDS, RANK_BY, NeuronsConfig
from typobench.commands.common import positive_int
from typobench.harness.world import World


def _csv_list(choices):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {', '.join(choices)}, got {text!r}")
        return values
    return parse


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
    parser.add_argument("--from", dest="run_dir", required=True, metavar="RESULTS_DIR",
                        help="output folder of a finished `typobench run` (holds results.json and predictions.csv)")
    parser.add_argument("--stage", dest="stages", action="append", default=None, metavar="NAME",
                        help="attack stage to analyse; repeat for several (default: every attack stage)")
    parser.add_argument("--top-k", type=positive_int, default=10, help="blamed neurons to ablate (default: 10)")
    parser.add_argument("--draws", type=positive_int, default=20,
                        help="draws of each random / activation-matched baseline; the blame beats a baseline when "
                             "it beats every draw, p = 1/(draws+1) (default: 20)")
    parser.add_argument("--vocab", default=None, metavar="FILE",
                        help="word list for the text facet, one word per line (class names are always added; "
                             f"default: a built-in list of {len(DEFAULT_WORDS)} words, short and long)")
    parser.add_argument("--out", default=None, help="output folder (default: the run's folder)")

    more = parser.add_argument_group("method")
    more.add_argument("--rank-by", choices=RANK_BY, default="added",
                      help="added (default): min of the attacked and the attacked-minus-clean attribution; diff: "
                           "attacked minus clean; attacked: the attacked attribution")
    more.add_argument("--modes", type=_csv_list(ABLATION_MODES), default=ABLATION_MODES,
                      help="ablation modes, comma-separated (default: zero,mean)")
    more.add_argument("--events", type=_csv_list(EVENT_KINDS), default=EVENT_KINDS,
                      help="event kinds, comma-separated (default: failure,lift,hijack)")
    more.add_argument("--max-events", type=positive_int, default=1000, help="events per stage, at most (default: 1000)")
    more.add_argument("--ref-limit", type=positive_int, default=500,
                      help="clean reference images (activation statistics, clean cost, cards; default: 500)")
    more.add_argument("--min-group", type=positive_int, default=5,
                      help="ablate a group's own top-k only when it has this many events (default: 5)")
    more.add_argument("--heldout-min", type=positive_int, default=10,
                      help="with this many events or more, the verdict is held-out: blame on half the events, "
                           "ablation on the other half (default: 10)")
    more.add_argument("--max-cards", type=int, default=30, help="cards to draw, at most (default: 30)")
    more.add_argument("--table-k", type=positive_int, default=20, help="rows per blame table (default: 20)")
    more.add_argument("--tau-image", type=float, default=1.0, help="multimodal test: image z threshold (default: 1.0)")
    more.add_argument("--tau-text", type=float, default=2.0, help="multimodal test: text z threshold (default: 2.0)")
    more.add_argument("--min-class-images", type=positive_int, default=3,
                      help="multimodal test: reference images a class needs to be testable (default: 3)")
    more.add_argument("--length-slack", type=int, default=1,
                      help="multimodal test: control words are non-class words within this many characters of the "
                           "class name's length; the name must out-score all of them (default: 1)")
    more.add_argument("--vit-blocks", type=positive_int, default=1,
                      help="ViT towers: MLPs (and, with --heads, attention heads) of the last N blocks (default: 1, "
                           "the last block)")
    _add_heads_option(more)

    add_probe_and_atlas_options(parser)
    add_microscope_options(parser)

    _add_runtime_options(parser)
    parser.set_defaults(handler=handle)


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Where and how the analysis runs: device, batch size, seed, cache, progress lines."""
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    runtime.add_argument("--batch-size", type=positive_int, default=64)
    runtime.add_argument("--seed", type=int, default=None, help="seed of the baseline draws (default: the run's seed)")
    runtime.add_argument("--cache-dir", default=None, help="cache for zero-shot weights (default: the run's)")
    runtime.add_argument("--quiet", action="store_true", help="no progress lines")


def add_microscope_options(parser: argparse.ArgumentParser) -> None:
    """``--microscope K``, ``--fv-steps``, ``--fv-natural`` (NeuronsConfig's microscope, fv_steps, fv_natural)."""
    looking = parser.add_argument_group(
        "microscope", "feature visualizations and word views of the most blamed neurons; writes "
                      "microscope.json, microscope/*.png and a section of neurons.md")
    looking.add_argument("--microscope", type=int, default=0, metavar="K",
                         help="look at the K most blamed neurons: a plain and a text-faceted feature visualization "
                              "each, their excitation ratio over natural images, the class the model gives each image "
                              "vs the class the neuron reads, and text-side vs pixel-side words (also for K random "
                              "neurons); 0 = off (default: 0)")
    looking.add_argument("--fv-steps", type=int, default=256, metavar="N",
                         help="optimisation steps of each feature visualization (default: 256)")
    looking.add_argument("--fv-natural", type=int, default=0, metavar="N",
                         help="the excitation ratio divides by the 99.9th percentile of the neuron over N images of "
                              "the run's data set (its whole split, class-stratified); 0 = the clean reference "
                              "images (default: 0)")


def add_probe_and_atlas_options(parser: argparse.ArgumentParser) -> None:
    """``--sparse-probe``, ``--probe-per-class``, ``--probe-images``, ``--atlas`` (NeuronsConfig's fields)."""
    extra = parser.add_argument_group("sparse probe and atlas")
    extra.add_argument("--sparse-probe", action="store_true",
                       help="also fit an L1 logistic probe on the layer's neurons, swept to --probe-per-class neurons "
                            "per class, and score it against the full (L2) probe; the run's clean images are split "
                            "into disjoint train and held-out halves (writes sparse_probe.json, sparse_probe.csv)")
    extra.add_argument("--probe-per-class", type=float, default=3.0,
                       help="sparse probe: neurons per class to sweep the L1 penalty to (default: 3, Goh et al.)")
    extra.add_argument("--probe-images", type=positive_int, default=2000,
                       help="sparse probe: clean images of the run to use, half to fit and half to score (default: "
                            "2000)")
    extra.add_argument("--atlas", action="store_true",
                       help="also write atlas/, a static offline HTML site: an index of the blamed neurons (and heads) "
                            "by blame, one page per neuron with its card, dataset examples, words, feature "
                            "visualizations (when microscope.json exists) and sparse-probe weights; open "
                            "atlas/index.html")


def _add_heads_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--heads", type=int, nargs="?", const=3, default=0, metavar="K",
                       help="ViT towers: also blame the attention heads of the last --vit-blocks blocks by their "
                            "direct contribution to the logit difference, ablate the top K (--heads alone: 3) against "
                            "random and activation-matched heads, and card them (written words, TextSpan text "
                            "directions); rows in the same tables, a 'heads' section in neurons.json (default: off)")


def handle(args: argparse.Namespace) -> int:
    if not World.from_env().leader:  # under torchrun the analysis runs once, on rank 0
        return 0
    config = NeuronsConfig(
        run_dir=args.run_dir, stages=args.stages, top_k=args.top_k, draws=args.draws, vocab=args.vocab, out=args.out,
        rank_by=args.rank_by, modes=tuple(args.modes), events=tuple(args.events), max_events=args.max_events,
        ref_limit=args.ref_limit, min_group=args.min_group, heldout_min=args.heldout_min, max_cards=args.max_cards,
        table_k=args.table_k,
        tau_image=args.tau_image, tau_text=args.tau_text, min_class_images=args.min_class_images,
        length_slack=args.length_slack,
        vit_blocks=args.vit_blocks, device=args.device, batch_size=args.batch_size, seed=args.seed,
        cache_dir=args.cache_dir, sparse_probe=args.sparse_probe, probe_per_class=args.probe_per_class,
        probe_images=args.probe_images, atlas=args.atlas,
        microscope=args.microscope, fv_steps=args.fv_steps, fv_natural=args.fv_natural, heads=args.heads,
    )
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
