"""Multimodal neurons behind typographic failures: blame (attribution), proof (ablation), cards.

``typobench neurons --from RESULTS_DIR`` reuses a finished run: see :func:`analyze`.
"""

from .ablation import ABLATION_MODES, Events, ablation_study, matched_sets, random_sets
from .analysis import EVENT_KINDS, NeuronsConfig, NeuronsOutcome, analyze, find_events
from .attribution import Attribution, attribute, blame_table
from .cards import DEFAULT_WORDS, MultimodalTest, class_image_z, multimodal_pass, render_word, word_activations
from .hooks import NeuronLayer, NeuronSpace, ablate, capture, find_layers, neuron_name, parse_neuron, unit_activations
from .replay import RunReplay, load_run

__all__ = [
    "ABLATION_MODES",
    "DEFAULT_WORDS",
    "EVENT_KINDS",
    "Attribution",
    "Events",
    "MultimodalTest",
    "NeuronLayer",
    "NeuronSpace",
    "NeuronsConfig",
    "NeuronsOutcome",
    "RunReplay",
    "ablate",
    "ablation_study",
    "analyze",
    "attribute",
    "blame_table",
    "capture",
    "class_image_z",
    "find_events",
    "find_layers",
    "load_run",
    "matched_sets",
    "multimodal_pass",
    "neuron_name",
    "parse_neuron",
    "random_sets",
    "render_word",
    "unit_activations",
    "word_activations",
]
