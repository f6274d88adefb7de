"""Stages: what is done to a batch of images before it is scored (clean, blank, text, PGD, APGD, paste).

The attack algorithms live here too (``pgd``). Suites (``typobench.suites``) parse TOML into these.
"""

from typobench.stages.apgd import APGDStage
from typobench.stages.base import Batch, CleanStage, RunContext, Stage, StageOutput, check_sources, score
from typobench.stages.blank import BlankStage
from typobench.stages.paste import PasteStage
from typobench.stages.pgd import PGDStage
from typobench.stages.text import StyleSampler, TextStage, WordChoice

__all__ = ["APGDStage", "Batch", "BlankStage", "CleanStage", "PGDStage", "PasteStage", "RunContext", "Stage", "StageOutput", "StyleSampler",
           "TextStage", "WordChoice", "check_sources", "score"]
