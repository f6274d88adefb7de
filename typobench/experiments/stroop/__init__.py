"""The Stroop test of Goh et al. (2021, "Multimodal Neurons in Artificial Neural Networks").

Colour words are written in an ink colour on a plain background and classified zero-shot by *ink*
colour (see ``design`` for the stimulus set). Typical use from a script::

    session = Session.open(RunConfig(model="ViT-B-32:openai"), data=False)
    result = run_stroop(session, ["my favorite word, written in the color {}", "a photo of the color {}"])
    result.metrics[0]["word_named"]["value"]     # fraction of incongruent stimuli named by the word
    result.frame()                               # one row per stimulus x prompt
    write_stroop_outputs(result, "runs/stroop")  # stroop.json, stroop.csv, stroop_<i>.png

or, as ``typobench stroop`` does, ``execute_stroop(StroopConfig(...))``.

Modules: ``design`` (palette, prompts, fonts, sizes; the stimuli), ``render`` (pixels), ``scoring``
(logits -> outcomes and rates, classifying every stimulus), ``figure`` (the picture per prompt),
``outputs`` (the files and their config hash), ``run`` (in a harness session).
"""

from typobench.experiments.stroop.design import (
    DEFAULT_BACKGROUND,
    DEFAULT_FONTS,
    DEFAULT_NEUTRAL,
    DEFAULT_PALETTE,
    DEFAULT_PROMPTS,
    DEFAULT_SIZES,
    GOH_PROMPT,
    KINDS,
    NO_WORD_COLOURS,
    StroopDesign,
    StroopStimulus,
    check_prompts,
    hex_colour,
    parse_fonts,
    parse_palette,
    parse_sizes,
    stroop_design,
    stroop_stimuli,
)
from typobench.experiments.stroop.figure import OUTCOME_COLOURS, stroop_figure_png
from typobench.experiments.stroop.outputs import (
    STROOP_CSV,
    STROOP_JSON,
    default_stroop_out_dir,
    metrics_table,
    stroop_config_hash,
    write_stroop_outputs,
)
from typobench.experiments.stroop.render import render_stimuli
from typobench.experiments.stroop.run import StroopConfig, StroopOutcome, execute_stroop, run_stroop
from typobench.experiments.stroop.scoring import (
    METRIC_NAMES,
    OUTCOMES,
    Classify,
    PromptResult,
    StroopResult,
    classify_stimuli,
    evaluate_stroop,
    score_stroop,
    stroop_metrics,
)

__all__ = [
    "Classify",
    "DEFAULT_BACKGROUND",
    "DEFAULT_FONTS",
    "DEFAULT_NEUTRAL",
    "DEFAULT_PALETTE",
    "DEFAULT_PROMPTS",
    "DEFAULT_SIZES",
    "GOH_PROMPT",
    "KINDS",
    "METRIC_NAMES",
    "NO_WORD_COLOURS",
    "OUTCOMES",
    "OUTCOME_COLOURS",
    "PromptResult",
    "STROOP_CSV",
    "STROOP_JSON",
    "StroopConfig",
    "StroopDesign",
    "StroopOutcome",
    "StroopResult",
    "StroopStimulus",
    "check_prompts",
    "classify_stimuli",
    "default_stroop_out_dir",
    "evaluate_stroop",
    "execute_stroop",
    "hex_colour",
    "metrics_table",
    "parse_fonts",
    "parse_palette",
    "parse_sizes",
    "render_stimuli",
    "run_stroop",
    "score_stroop",
    "stroop_config_hash",
    "stroop_design",
    "stroop_figure_png",
    "stroop_metrics",
    "write_stroop_outputs",
]
