"""Running the Stroop test in a harness session: ``run_stroop`` (in memory) and ``execute_stroop``
(``typobench stroop`` as a library function: open the session, run, write the outputs)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from typobench.typographic.stroop.design import (
    DEFAULT_BACKGROUND,
    DEFAULT_NEUTRAL,
    DEFAULT_PALETTE,
    DEFAULT_SIZES,
    GOH_PROMPT,
    StroopDesign,
    check_prompts,
    hex_colour,
    stroop_design,
)
from typobench.experiments.stroop.outputs import default_stroop_out_dir, stroop_config_hash, write_stroop_outputs
from typobench.typographic.stroop.scoring import Classify, StroopResult, evaluate_stroop
from typobench.core.options import option
from typobench.harness.config import RunConfig
from typobench.harness.results import envelope
from typobench.harness.session import Session

# The RunConfig options a Stroop run uses (it has no data set, head or suite).
STIMULI = "stimuli and prompts"
DEFAULT_PALETTE_TEXT = ",".join(f"{name}={hex_colour(rgb)}" for name, rgb in DEFAULT_PALETTE.items())
STROOP_RUN_OPTIONS = ("model", "pretrained", "device", "precision", "batch_size", "seed", "cache_dir", "out")


def run_stroop(
    session: Session,
    prompts: Sequence[str] | str | None = None,
    *,
    design: StroopDesign | None = None,
    classifiers: Mapping[str, Classify] | None = None,
    **design_options: Any,
) -> StroopResult:
    """The Stroop test of the session's model under each prompt, at the model's input size.

    Each prompt gets the session's zero-shot classifier over the palette names
    (``Session.zeroshot_classifier(classnames, [prompt])``, class embeddings in the session's cache);
    ``classifiers`` maps a prompt to any pixels ``[N, 3, H, W]`` -> logits ``[N, C]`` callable instead
    (a fake in tests, another head in experiments). ``design_options`` go to ``stroop_design`` when
    no ``design`` is given. Runtime and batch size are the session's.
    """
    prompts = check_prompts(prompts)
    design = design if design is not None else stroop_design(**design_options)
    chosen: list[Classify] = []
    heads: list[dict[str, Any]] = []
    for prompt in prompts:
        if classifiers is not None and prompt in classifiers:
            chosen.append(classifiers[prompt])
            heads.append({"kind": "custom"})
            continue
        classifier, info = session.zeroshot_classifier(design.classnames, [prompt])
        chosen.append(classifier)
        heads.append(info)
    return evaluate_stroop(design, session.model.image_size, prompts, chosen, runtime=session.runtime,
                           batch_size=session.config.batch_size, heads=heads, model=session.model.describe())


@dataclass
class StroopConfig:
    """Every option of ``typobench stroop``: the model, runtime and output folder (``run``, a config
    without data), the prompts and the design (see ``stroop_design``)."""

    run: RunConfig = field(default_factory=RunConfig)
    prompts: list[str] | None = option(None, "zero-shot prompt with {} for the colour name; repeat for several, each "
                                             "reported separately", flag="--prompt", metavar="TEMPLATE", repeat=True,
                                       shown=f'"{GOH_PROMPT}"', group=STIMULI)
    palette: str | None = option(None, "ink colours and class names, in order; a bare NAME uses the default ink or a "
                                       "PIL colour name", metavar="NAME=#RRGGBB,...", shown=DEFAULT_PALETTE_TEXT,
                                 group=STIMULI)
    words: list[str] | None = option(None, "colour words to write, each a palette name (default: every palette "
                                           "colour but black)", metavar="NAME,...", group=STIMULI)
    neutral: str = option(DEFAULT_NEUTRAL, "neutral word that names no colour", group=STIMULI)
    fonts: list[str] | None = option(None, "fonts (registry names or .ttf paths; space or comma separated); every "
                                           "font x size is a full stimulus set", metavar="FONT", spaced=True,
                                     shown="sans", group=STIMULI)
    sizes: list[str] | None = option(None, "font sizes: a fraction of the image side (0.18) or pixels (14)",
                                     metavar="SIZE", spaced=True, shown=", ".join(map(str, DEFAULT_SIZES)),
                                     group=STIMULI)
    background: str = option(DEFAULT_BACKGROUND, "background colour, a name or #rrggbb", group=STIMULI)

    def design(self) -> StroopDesign:
        return stroop_design(self.palette, words=self.words, neutral=self.neutral, fonts=self.fonts,
                             sizes=self.sizes, background=self.background)

    def options(self) -> dict[str, Any]:
        """The options as recorded in stroop.json: the run options a Stroop run uses, then the Stroop ones."""
        run = asdict(self.run)
        stroop = {k: v for k, v in asdict(self).items() if k != "run"}
        return {**{k: run[k] for k in STROOP_RUN_OPTIONS}, **stroop}


@dataclass
class StroopOutcome:
    result: StroopResult
    out_dir: Path
    files: dict[str, Path]  # csv, json, png_<i> per prompt
    session: Session


def execute_stroop(config: StroopConfig) -> StroopOutcome:
    """``typobench stroop``: validate the prompts and design, open a session without data, run every
    prompt, and write stroop.csv, the pictures and stroop.json (the result envelope first)."""
    started = time.perf_counter()
    # Validate the cheap things before loading a model.
    config.run.validate()
    prompts = check_prompts(config.prompts)
    design = config.design()
    session = Session.open(config.run, data=False)
    result = run_stroop(session, prompts, design=design)
    config_hash = stroop_config_hash(result, {"precision": config.run.precision})
    out_dir = Path(config.run.out) if config.run.out else default_stroop_out_dir(session.model.spec.label, config_hash)
    header = {
        **envelope("stroop", config={**config.options(), "device_resolved": str(session.runtime.device)},
                   config_hash=config_hash, seed=config.run.seed, model=session.model.describe(), dataset=None),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    files = write_stroop_outputs(result, out_dir, header)
    return StroopOutcome(result, out_dir, files, session)
