"""The PAINT curve: ``interpolate`` (weights ``(1-alpha) A + alpha B``) over a grid of alpha in one go.

For each alpha, clean and typographic accuracy (a text stage, by default a random wrong class name written on
each image) on two disjoint sets of images: a *selection* split, on which alpha is chosen (the highest
typographic accuracy whose clean accuracy is at most ``budget`` points below the loaded model's, ties to the
smaller alpha), and a *held-out* split, on which it is scored. Written: ``paint.json`` (every number, which
images chose and which scored, the chosen alpha with paired intervals against alpha = 0 on the held-out
images), ``paint.csv``, ``paint.md`` and ``paint.png`` (clean vs typographic accuracy per alpha).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.core.errors import UsageError
from typobench.core.metrics import paired_difference_interval, rate
from typobench.core.options import option
from typobench.data import ImageDataset, sample_hash
from typobench.defenses.greedy import zeroshot_classifier
from typobench.defenses.interpolate import InterpolateDefense
from typobench.defenses.prefix import dataset_tensors, typographic_images
from typobench.defenses.spec import SpecFields
from typobench.experiments.paint_plot import save_paint_picture
from typobench.harness.config import DATA
from typobench.models import LoadedModel
from typobench.models.units import as_pixels
from typobench.stages.base import Stage

_CHUNK = 128
CURVE = "curve"


def parse_alphas(text: str) -> list[float] | None:
    """The alphas of ``--alphas`` (comma-separated, distinct, in [0, 1]); None when ``text`` is not such a list."""
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        return None
    if not alphas or any(not 0 <= a <= 1 for a in alphas) or len(set(alphas)) != len(alphas):
        return None
    return alphas


def _alphas_complaint(text: str) -> str | None:
    return None if parse_alphas(text) else f"expected distinct comma-separated numbers in [0, 1] (e.g. " \
                                            f"0,0.25,0.5,0.75,1), got '{text}'"


def _checkpoint_complaint(text: str) -> str | None:
    path = Path(text).expanduser()
    return None if path.suffix == ".safetensors" and path.is_file() else \
        f"'{path}' is not an existing .safetensors file: pass one"


def _budget_complaint(points: float) -> str | None:
    return None if points >= 0 else f"{points}: the clean-accuracy drop allowed must be >= 0 points"


@dataclass
class PaintOptions:
    """What ``typobench defense paint-curve`` takes besides the model and the selection data (its own flags,
    declared once)."""

    checkpoint: str = option(help="B: a .safetensors state dict of the same architecture", check=_checkpoint_complaint,
                             group=CURVE)
    score_split: str = option("test", "split the curve is reported on", group=DATA)
    score_limit: int | None = option(None, "held-out images", minimum=1, shown="all", group=DATA)
    alphas: str = option("0,0.25,0.5,0.75,1", "comma-separated alphas in [0, 1]", check=_alphas_complaint, group=CURVE)
    budget: float = option(1.0, "clean-accuracy drop allowed when choosing alpha, in points", check=_budget_complaint,
                           group=CURVE)

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint).expanduser()

    @property
    def alpha_values(self) -> list[float]:
        return parse_alphas(self.alphas) or []


def _hits(classifier: torch.nn.Module, pixels: torch.Tensor, labels: torch.Tensor, device: torch.device) -> np.ndarray:
    with torch.no_grad():
        predictions = torch.cat([classifier(as_pixels(pixels[s:s + _CHUNK]).to(device)).argmax(-1).cpu()
                                 for s in range(0, len(pixels), _CHUNK)])
    return (predictions == labels).numpy()


def _images(loaded: LoadedModel, dataset: ImageDataset, attack: Stage, seed: int) -> dict[str, torch.Tensor]:
    images, labels = dataset_tensors(dataset)
    classifier = zeroshot_classifier(loaded, dataset.classnames, dataset.templates)
    written = typographic_images(attack, classifier, images.to(loaded.device), labels.to(loaded.device),
                                 dataset.sample_ids, dataset.classnames, seed).cpu()
    return {"clean": images, "typographic": written, "labels": labels}


def paint_curve(loaded: LoadedModel, checkpoint: Path, alphas: Sequence[float], selection: ImageDataset,
                scored: ImageDataset, *, attack: Stage, seed: int = 0, budget: float = 1.0) -> dict[str, Any]:
    """Every alpha's accuracies on ``selection`` and ``scored`` (disjoint), and the alpha chosen on ``selection``."""
    shared = set(selection.sample_ids) & set(scored.sample_ids)
    if shared:
        raise UsageError(f"the selection and held-out images share {len(shared)} images: choose alpha on other images "
                         "than the ones it is scored on")
    if not alphas or any(not 0 <= a <= 1 for a in alphas) or len(set(alphas)) != len(alphas):
        raise UsageError(f"--alphas {list(alphas)}: give distinct numbers in [0, 1]")
    sets = {"selection": _images(loaded, selection, attack, seed), "held_out": _images(loaded, scored, attack, seed)}
    hits: dict[float, dict[str, dict[str, np.ndarray]]] = {}
    for alpha in sorted({0.0, *alphas}):
        fields = SpecFields({"checkpoint": str(checkpoint), "alpha": alpha}, "--checkpoint")
        model = InterpolateDefense.from_fields(f"interpolate:checkpoint={checkpoint},alpha={alpha}", fields) \
            .transform_model(loaded, {})
        classifier = zeroshot_classifier(model, selection.classnames, selection.templates)
        hits[alpha] = {name: {kind: _hits(classifier, images[kind], images["labels"], loaded.device)
                              for kind in ("clean", "typographic")} for name, images in sets.items()}
    rows = [{"alpha": a, **{f"{name}_{kind}": float(hits[a][name][kind].mean()) for name in sets
                            for kind in ("clean", "typographic")}} for a in alphas]
    chosen = choose_alpha(rows, float(hits[0.0]["selection"]["clean"].mean()), budget)
    return {"rows": rows, "chosen_alpha": chosen, "budget": budget, "hits": hits,
            "compare": _compare(hits, chosen), "intervals": _intervals(hits, alphas)}


def choose_alpha(rows: Sequence[dict[str, Any]], base_clean: float, budget: float) -> float:
    """The alpha with the highest selection typographic accuracy within the clean budget (ties: smaller alpha)."""
    allowed = [r for r in rows if (base_clean - r["selection_clean"]) * 100 <= budget + 1e-9]
    if not allowed:
        return min(rows, key=lambda r: r["alpha"])["alpha"]
    return max(allowed, key=lambda r: (r["selection_typographic"], -r["alpha"]))["alpha"]


def _compare(hits: dict[float, Any], chosen: float) -> dict[str, Any]:
    """Chosen alpha minus alpha 0 on the held-out images: paired 95% intervals (points are the same images)."""
    out = {}
    for kind in ("clean", "typographic"):
        first, second = hits[chosen]["held_out"][kind], hits[0.0]["held_out"][kind]
        out[kind] = {"difference": float(first.mean() - second.mean()),
                     "ci95": paired_difference_interval(first, second)}
    return out


def _intervals(hits: dict[float, Any], alphas: Sequence[float]) -> dict[str, Any]:
    return {str(a): {kind: rate(hits[a]["held_out"][kind])["ci95"] for kind in ("clean", "typographic")} for a in alphas}


def describe_split(dataset: ImageDataset) -> dict[str, Any]:
    return {"dataset": dataset.name, "split": dataset.split, "n": len(dataset), "sample_hash": sample_hash(dataset.sample_ids)}


def write_paint(out_dir: Path, curve: dict[str, Any], record: dict[str, Any]) -> list[Path]:
    """paint.json, paint.csv, paint.md and paint.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(curve["rows"])
    table["chosen"] = table["alpha"] == curve["chosen_alpha"]
    paths = [out_dir / "paint.json", out_dir / "paint.csv", out_dir / "paint.md", out_dir / "paint.png"]
    write_json_atomic(paths[0], {**record, "rows": curve["rows"], "chosen_alpha": curve["chosen_alpha"],
                                 "budget": curve["budget"], "held_out_ci95": curve["intervals"],
                                 "chosen_vs_alpha_0_held_out": curve["compare"]})
    write_text_atomic(paths[1], table.to_csv(index=False))
    write_text_atomic(paths[2], markdown(table, record, curve))
    save_paint_picture(paths[3], table, curve["chosen_alpha"])
    return paths


def markdown(table: pd.DataFrame, record: dict[str, Any], curve: dict[str, Any]) -> str:
    sel, held = record["selection"], record["held_out"]
    lines = [f"alpha chosen on {sel['dataset']} {sel['split']} ({sel['n']} images), scored on {held['dataset']} "
             f"{held['split']} ({held['n']} other images)", "",
             "| alpha | selection clean | selection typographic | held-out clean | held-out typographic | chosen |",
             "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['alpha']:g} | {r['selection_clean']:.1%} | {r['selection_typographic']:.1%} | "
                     f"{r['held_out_clean']:.1%} | {r['held_out_typographic']:.1%} | {'yes' if r['chosen'] else ''} |")
    c = curve["compare"]
    lines += ["", f"chosen alpha {curve['chosen_alpha']:g} vs alpha 0 on the held-out images (paired 95%): clean "
              f"{100 * c['clean']['difference']:+.1f} [{100 * c['clean']['ci95'][0]:+.1f}, {100 * c['clean']['ci95'][1]:+.1f}], "
              f"typographic {100 * c['typographic']['difference']:+.1f} [{100 * c['typographic']['ci95'][0]:+.1f}, "
              f"{100 * c['typographic']['ci95'][1]:+.1f}] points"]
    return "\n".join(lines) + "\n"


__all__ = ["choose_alpha", "describe_split", "paint_curve", "write_paint"]
