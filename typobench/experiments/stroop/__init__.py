"""The Stroop test of Goh et al. (2021, "Multimodal Neurons in Artificial Neural Networks").

Colour words are written in an ink colour on a plain background and classified zero-shot by *ink*
colour (see ``design`` for the stimulus set). Typical use from a script::

    session = Session.open(RunConfig(model="ViT-B-32:openai"), data=False)
    result = run_stroop(session, ["my favorite word, written in the color {}", "a photo of the color {}"])
    result.metrics[0]["word_named"]["value"]     # fraction of incongruent stimuli named by the word
    result.frame()                               # one row per stimulus x prompt
    write_stroop_outputs(result, "runs/stroop")  # stroop.json, stroop.csv, stroop_<i>.png

or, as ``typobench stroop`` does, ``execute_stroop(StroopConfig(...))``.

The stimuli and their scoring are the library's (:mod:`typobench.typographic.stroop`: ``design``, ``render``,
``scoring``); this package runs them: ``figure`` (the picture per prompt), ``outputs`` (the files and their
config hash), ``run`` (in a harness session).
"""

from typobench.experiments.stroop.figure import OUTCOME_COLOURS, stroop_figure_png
from typobench.experiments.stroop.outputs import (
    default_stroop_out_dir,
    metrics_table,
    stroop_config_hash,
    write_stroop_outputs,
)
from typobench.experiments.stroop.run import StroopConfig, StroopOutcome, execute_stroop, run_stroop

__all__ = [
    "OUTCOME_COLOURS",
    "StroopConfig",
    "StroopOutcome",
    "default_stroop_out_dir",
    "execute_stroop",
    "metrics_table",
    "run_stroop",
    "stroop_config_hash",
    "stroop_figure_png",
    "write_stroop_outputs",
]
