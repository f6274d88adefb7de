"""Cards of the blamed neurons: the text facet, dataset examples and multimodal test of every neuron the
stage scopes blamed (see ``cards.card`` for the method), with the layer-wide base rate of the test."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from typobench.neurons.cards.card import (
    MultimodalTest,
    card_facts,
    class_image_z,
    control_max,
    control_words,
    multimodal_pass,
    renderable,
    text_z,
    vocabulary,
    word_activations,
)
from typobench.models.units import NeuronSpace, parse_neuron
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.reference import Reference


def blamed_for(analyses: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every neuron a stage scope blamed, in blame order, with the ``stage/kind`` scopes that blamed it."""
    scopes: dict[str, list[str]] = {}
    for entry in analyses:
        for name in entry.get("blamed", []):
            scopes.setdefault(name, []).append(f"{entry['stage']}/{entry['kind']}")
    return scopes


def card_file(neuron: str) -> str:
    """The card's file name under neuron_cards/."""
    layer, unit = parse_neuron(neuron)
    return f"{layer.replace(':', '_')}_{unit}.png"


def draw_cards(config: NeuronsConfig, model: nn.Module, space: NeuronSpace, reference: Reference,
               classnames: list[str], side: int, analyses: list[dict[str, Any]], vocab_words: list[str],
               log: Callable[[str], None]) -> dict[str, Any]:
    """Text facet + dataset examples + multimodal test for every blamed neuron (stage scope), in blame order.

    ``side``: the model's input side in pixels, at which the words are rendered. The ``_render`` entry
    holds what ``report.write_outputs`` needs to draw the cards (it is not written to neurons.json).
    """
    scopes = blamed_for(analyses)
    test = MultimodalTest(config.tau_image, config.tau_text, config.min_class_images, config.length_slack)
    words, skipped = renderable(vocabulary(classnames, vocab_words))
    lowered = {w.lower(): i for i, w in enumerate(words)}
    class_word = [lowered.get(c.strip().lower(), -1) for c in classnames]
    started = time.perf_counter()
    word_acts = word_activations(model, space, words, side, batch_size=config.batch_size)
    log(f"text facet: {len(words)} words rendered ({len(skipped)} skipped) in {time.perf_counter() - started:.1f}s")
    z_txt = text_z(word_acts)
    z_txt_class = torch.stack([z_txt[i] if i >= 0 else torch.full((space.total,), float("nan")) for i in class_word])
    z_img, counts = class_image_z(reference.acts, reference.labels, len(classnames))
    controls = control_words(words, class_word, test.length_slack)
    passed = multimodal_pass(torch.nan_to_num(z_img, nan=-math.inf), torch.nan_to_num(z_txt_class, nan=-math.inf),
                             counts, test, control_max(z_txt, controls))
    is_multi = passed.any(0)
    facts = []
    for name in list(scopes)[: config.max_cards]:
        unit = space.index(name)
        fact = card_facts(space, unit, reference.acts, z_img, counts, words, z_txt, class_word, classnames, passed,
                          controls)
        fact_dict = {**asdict(fact), "blamed_for": scopes[name], "multimodal": bool(is_multi[unit]),
                     "card": f"neuron_cards/{card_file(name)}"}
        facts.append((fact, fact_dict, unit))
    return {
        "test": test.describe(),
        "vocabulary": {"n": len(words), "class_names": sum(1 for i in class_word if i >= 0), "skipped": skipped},
        "testable_classes": int((counts >= test.min_class_images).sum()),
        "controls_per_class": {classnames[c]: len(ctrl) for c, ctrl in enumerate(controls) if len(classnames) <= 100},
        "base_rate": float(is_multi.float().mean()),
        "base_rate_n": int(is_multi.sum()),
        "n_neurons": space.total,
        "blamed_multimodal": sum(1 for _, d, _ in facts if d["multimodal"]),
        "blamed_total": len(facts),
        "neurons": [d for _, d, _ in facts],
        "_render": {"facts": facts, "ref_images": reference.images, "ref_labels": reference.labels, "z_img": z_img,
                    "z_txt_class": z_txt_class, "test": test, "classnames": classnames, "side": side},
    }


__all__ = ["blamed_for", "card_file", "draw_cards"]
