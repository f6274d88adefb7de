"""A suite's optional ``[neurons]`` table: explain the run's failures by neurons right after it finishes.

The options of a neurons analysis (``NeuronsConfig``) are declared here, with the suite format that
carries them: ``typobench neurons`` and the ``typobench.neurons`` package read them from here.

::

    [neurons]          # every key optional; the same options as `typobench neurons`
    stages = ["random-wrong-label"]
    top_k = 10
    draws = 20

``typobench run --suite S`` then writes ``neurons.json``, the blame/ablation/card tables and the report
next to ``results.json``, exactly as ``typobench neurons --from RUN_DIR`` would (``--no-neurons`` skips
it). Only method options belong here: where the run lives, the device and caches come from the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from typobench.core.errors import UsageError
from typobench.core.options import check, declared, option, read_table
from typobench.suites.fields import Table

EVENT_KINDS = ("failure", "lift", "hijack")
ABLATION_MODES = ("zero", "mean")
RANK_BY = ("added", "diff", "attacked")


METHOD, PROBE, MICROSCOPE, RUNTIME = "method", "sparse probe and atlas", "microscope", "runtime"
# Descriptions of the groups of ``typobench neurons --help``.
GROUPS = {MICROSCOPE: "feature visualizations and word views of the most blamed neurons; writes microscope.json, "
                      "microscope/*.png and a section of neurons.md"}


def _above_zero(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


@dataclass
class NeuronsConfig:
    """Every option of a neurons analysis, each declared once: the flags of ``typobench neurons``, the keys of a
    suite's ``[neurons]`` table (those marked ``toml``), the keyword arguments and the checks follow from here."""

    run_dir: str = option(help="output folder of a finished `typobench run` (holds results.json and predictions.csv)",
                          flag="--from", metavar="RESULTS_DIR", toml=False)
    stages: list[str] | None = option(None, "attack stage to analyse; repeat for several (default: every attack stage)",
                                      flag="--stage", metavar="NAME", repeat=True)
    top_k: int = option(10, "blamed neurons to ablate", minimum=1)
    draws: int = option(20, "draws of each random / activation-matched baseline; the blame beats a baseline when it "
                            "beats every draw, p = 1/(draws+1)", minimum=1)
    vocab: str | None = option(None, "word list for the text facet, one word per line (class names are always added; "
                                     "default: a built-in list of words, short and long)", metavar="FILE", toml=False)
    out: str | None = option(None, "output folder (default: the run's folder)", toml=False)
    rank_by: str = option("added", "added: min of the attacked and the attacked-minus-clean attribution; diff: "
                                   "attacked minus clean; attacked: the attacked attribution", choices=RANK_BY,
                          group=METHOD)
    modes: tuple[str, ...] = option(ABLATION_MODES, "ablation modes, comma-separated", choices=ABLATION_MODES,
                                    group=METHOD)
    events: tuple[str, ...] = option(EVENT_KINDS, "event kinds, comma-separated", choices=EVENT_KINDS, group=METHOD)
    max_events: int = option(1000, "events per stage, at most", minimum=1, group=METHOD)
    ref_limit: int = option(500, "clean reference images (activation statistics, clean cost, cards)", minimum=1,
                            group=METHOD)
    min_group: int = option(5, "ablate a group's own top-k only when it has this many events", minimum=1, group=METHOD)
    heldout_min: int = option(10, "with this many events or more, the verdict is held-out: blame on half the events, "
                                  "ablation on the other half", minimum=1, group=METHOD)
    max_cards: int = option(30, "cards to draw, at most", minimum=0, group=METHOD)
    table_k: int = option(20, "rows per blame table", minimum=1, group=METHOD)
    tau_image: float = option(1.0, "multimodal test: image z threshold", group=METHOD)
    tau_text: float = option(2.0, "multimodal test: text z threshold", group=METHOD)
    min_class_images: int = option(3, "multimodal test: reference images a class needs to be testable", minimum=1,
                                   group=METHOD)
    length_slack: int = option(1, "multimodal test: control words are non-class words within this many characters of "
                                  "the class name's length; the name must out-score all of them", minimum=0,
                               group=METHOD)
    vit_blocks: int = option(1, "ViT towers: MLPs (and, with --heads, attention heads) of the last N blocks (1: the "
                                "last block)", minimum=1, group=METHOD)
    heads: int = option(0, "ViT towers: also blame the attention heads of the last --vit-blocks blocks by their direct "
                           "contribution to the logit difference, ablate the top K (--heads alone: 3) against random "
                           "and activation-matched heads, and card them (written words, TextSpan text directions); "
                           "rows in the same tables, a 'heads' section in neurons.json (0: off)",
                        minimum=0, const=3, metavar="K", group=METHOD)
    sparse_probe: bool = option(False, "also fit an L1 logistic probe on the layer's neurons, swept to "
                                       "--probe-per-class neurons per class, and score it against the full (L2) probe; "
                                       "the run's clean images are split into disjoint train and held-out halves "
                                       "(writes sparse_probe.json, sparse_probe.csv)", group=PROBE)
    probe_per_class: float = option(3.0, "sparse probe: neurons per class to sweep the L1 penalty to (3: Goh et al.)",
                                    check=_above_zero, group=PROBE)
    probe_images: int = option(2000, "sparse probe: clean images of the run to use, half to fit and half to score",
                               minimum=4, group=PROBE)
    atlas: bool = option(False, "also write atlas/, a static offline HTML site: an index of the blamed neurons (and "
                                "heads) by blame, one page per neuron with its card, dataset examples, words, feature "
                                "visualizations (when microscope.json exists) and sparse-probe weights; open "
                                "atlas/index.html", group=PROBE)
    microscope: int = option(0, "look at the K most blamed neurons: a plain and a text-faceted feature visualization "
                                "each, their excitation ratio over natural images, the class the model gives each "
                                "image vs the class the neuron reads, and text-side vs pixel-side words (also for K "
                                "random neurons); 0 = off", minimum=0, metavar="K", group=MICROSCOPE)
    fv_steps: int = option(256, "optimisation steps of each feature visualization", minimum=1, metavar="N",
                           group=MICROSCOPE)
    fv_natural: int = option(0, "the excitation ratio divides by the 99.9th percentile of the neuron over N images of "
                                "the run's data set (its whole split, class-stratified); 0 = the clean reference "
                                "images", minimum=0, metavar="N", group=MICROSCOPE)
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps", toml=False, group=RUNTIME)
    batch_size: int = option(64, "images per forward pass", minimum=1, toml=False, group=RUNTIME)
    seed: int | None = option(None, "seed of the baseline draws (default: the run's seed)", toml=False, group=RUNTIME)
    cache_dir: str | None = option(None, "cache for zero-shot weights (default: the run's)", toml=False, group=RUNTIME)

    # Where and how fast the analysis runs and where it writes: not what it finds.
    _NOT_METHOD = ("run_dir", "out", "device", "cache_dir", "batch_size", "atlas")

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-ready (neurons.json's ``config``)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def same_method(self, recorded: dict[str, Any]) -> bool:
        """Whether a neurons.json ``config`` was made with these method options (``seed`` None: the run's)."""
        mine = {k: v for k, v in self.to_dict().items()
                if k not in self._NOT_METHOD and not (k == "seed" and v is None)}
        return all(recorded.get(k) == v for k, v in mine.items())

    def validate(self) -> None:
        check(self)


NEURON_OPTIONS = tuple(d.name for d in declared(NeuronsConfig) if d.how.toml)


def parse_neurons_table(table: Table) -> dict[str, Any]:
    """The ``[neurons]`` table as ``NeuronsConfig`` keyword arguments, checked field by field."""
    return read_table(table, NeuronsConfig)


def check_neuron_stages(options: dict[str, Any], stage_names: list[str], where: str) -> None:
    """``stages`` must name attack stages of the same suite."""
    for name in options.get("stages", []):
        if name not in stage_names or name == "clean":
            attack = [s for s in stage_names if s != "clean"]
            raise UsageError(f"{where}: neurons.stages names '{name}', which is not an attack stage of the suite: "
                             f"use {', '.join(attack) or 'an attack stage'}")


def neurons_config(options: dict[str, Any], run_dir: str, *, device: str, cache_dir: str | None,
                   batch_size: int):
    """The ``NeuronsConfig`` for a finished run of a suite with a ``[neurons]`` table."""
    return NeuronsConfig(run_dir=run_dir, device=device, cache_dir=cache_dir, batch_size=batch_size, **options)


__all__ = ["ABLATION_MODES", "EVENT_KINDS", "NEURON_OPTIONS", "NeuronsConfig", "RANK_BY", "check_neuron_stages", "neurons_config", "parse_neurons_table"]
