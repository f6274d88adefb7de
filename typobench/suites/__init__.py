"""Declarative attack suites (TOML in ``attacks/``) and the stages they are made of."""

from .paste_stage import PasteStage
from .pgd_stage import PGDStage
from .suite import STAGE_BUILDERS, Suite, list_suites, load_suite, parse_suite, resolve_suite_path, suites_dir
from .text_stage import StyleSampler, TextStage, WordChoice

__all__ = [
    "PGDStage",
    "PasteStage",
    "STAGE_BUILDERS",
    "StyleSampler",
    "Suite",
    "TextStage",
    "WordChoice",
    "list_suites",
    "load_suite",
    "parse_suite",
    "resolve_suite_path",
    "suites_dir",
]
