"""The options of a neurons analysis. They are part of the suite format (a suite's ``[neurons]`` table), so
they are declared in ``typobench.suites.neurons_option``; this module names them for the neurons package."""

from typobench.suites.neurons_option import ABLATION_MODES, EVENT_KINDS, RANK_BY, NeuronsConfig

__all__ = ["ABLATION_MODES", "EVENT_KINDS", "NeuronsConfig", "RANK_BY"]
