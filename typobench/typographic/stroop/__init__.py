"""The Stroop stimuli of Goh et al. (2021, "Multimodal Neurons in Artificial Neural Networks") as a library:
colour words written in an ink colour on a plain background, and their scoring by *ink* colour.

Modules: ``design`` (palette, prompts, fonts, sizes; the stimuli), ``render`` (pixels), ``scoring`` (logits ->
outcomes and rates, classifying every stimulus; the names of the files a result is written to). Running it
on a model in a harness session, its files and pictures are ``typobench.experiments.stroop``'s.
"""

from typobench.typographic.stroop.design import (
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
from typobench.typographic.stroop.render import render_stimuli
from typobench.typographic.stroop.scoring import (
    METRIC_NAMES,
    OUTCOMES,
    STROOP_CSV,
    STROOP_JSON,
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
    "PromptResult",
    "STROOP_CSV",
    "STROOP_JSON",
    "StroopDesign",
    "StroopResult",
    "StroopStimulus",
    "check_prompts",
    "classify_stimuli",
    "evaluate_stroop",
    "hex_colour",
    "parse_fonts",
    "parse_palette",
    "parse_sizes",
    "render_stimuli",
    "score_stroop",
    "stroop_design",
    "stroop_metrics",
    "stroop_stimuli",
]
