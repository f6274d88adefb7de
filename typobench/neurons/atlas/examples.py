"""The dataset examples of each carded neuron as image files, for the atlas (the cards draw them inside
one figure; the atlas shows them one by one, with their class and activation).

Written next to the analysis's other outputs: ``neuron_examples/<card name>_<k>.png`` and
``neuron_examples/examples.json`` ({neuron: [{"file", "class", "activation"}, ...]}), so that the atlas
can be rebuilt from the files alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from typobench.core.atomic import save_atomic, write_json_atomic
from typobench.models.units import as_pixels

EXAMPLES_DIR = "neuron_examples"
EXAMPLES_JSON = f"{EXAMPLES_DIR}/examples.json"


def save_examples(out_dir: Path, *card_sets: dict[str, Any]) -> list[str]:
    """Save the top reference images of every card in ``card_sets`` (``draw_cards``'s results, with their
    ``_render`` entries: the neurons', the heads'); returns the files written, relative to ``out_dir``."""
    folder = Path(out_dir) / EXAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, list[dict[str, Any]]] = {}
    written = []
    facts = [(fact, fact_dict, render) for render in (c.get("_render", {}) for c in card_sets)
             for fact, fact_dict, _ in render.get("facts", [])]
    for fact, fact_dict, render in facts:
        stem = Path(fact_dict["card"]).stem
        entries = index.setdefault(fact.neuron, [])
        for k, (i, activation) in enumerate(zip(fact.top_images, fact.top_image_acts)):
            name = f"{EXAMPLES_DIR}/{stem}_{k}.png"
            pixels = as_pixels(render["ref_images"][i]).clamp(0, 1).permute(1, 2, 0).mul(255).round()
            picture = Image.fromarray(pixels.to(torch.uint8).numpy())
            save_atomic(Path(out_dir) / name, lambda tmp, picture=picture: picture.save(tmp, format="PNG"))
            label = int(render["ref_labels"][i])
            entries.append({"file": name, "class": render["classnames"][label], "activation": float(activation)})
            written.append(name)
    for stale in folder.glob("*.png"):  # examples of neurons an earlier analysis carded
        if f"{EXAMPLES_DIR}/{stale.name}" not in written:
            stale.unlink()
    write_json_atomic(Path(out_dir) / EXAMPLES_JSON, index)
    return written + [EXAMPLES_JSON]


__all__ = ["EXAMPLES_DIR", "EXAMPLES_JSON", "save_examples"]
