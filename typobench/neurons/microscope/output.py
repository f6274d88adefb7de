"""The microscope's files: its PNGs under ``microscope/`` and its section of neurons.md (microscope.json itself
is written by :func:`typobench.neurons.report.write_microscope`, with the report's JSON cleaning)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

MICROSCOPE_JSON = "microscope.json"
MICROSCOPE_DIR = "microscope"


def save_png(path: Path, image: Tensor) -> None:
    """``image`` [3, H, W] in [0, 1] as an 8-bit RGB PNG, at its own size (an atlas scales it up)."""
    pixels = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels)).save(path)


def save_images(out_dir: Path, images: dict[str, Tensor]) -> list[str]:
    """Every image under ``out_dir`` at its relative path; PNGs of an earlier microscope not made now are removed."""
    folder = Path(out_dir) / MICROSCOPE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for relative, image in images.items():
        save_png(Path(out_dir) / relative, image)
    keep = {Path(relative).name for relative in images}
    for stale in folder.glob("*.png"):
        if stale.name not in keep:
            stale.unlink()
    return list(images)


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}g}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _words(pairs: list[list], n: int = 3) -> str:
    return ", ".join(str(w) for w, _ in pairs[:n])


def microscope_line(summary: dict[str, Any]) -> str:
    """One line of the microscope's figures (what ``typobench neurons`` prints)."""
    blamed, random = summary["agreement_blamed"], summary["agreement_random"]
    return (f"microscope: {summary['neurons']} neurons, FV excitation ratio median {_num(summary['median_ratio'])} "
            f"({_pct(summary['share_at_least_2x'])} >= 2x); FV classified as the read class: plain "
            f"{_pct(summary['plain_reads_rate'])}, text-faceted {_pct(summary['facet_reads_rate'])}; text vs pixel "
            f"words Spearman blamed {_num(blamed['spearman'])} vs random {_num(random['spearman'])}")


def microscope_section(record: dict[str, Any]) -> list[str]:
    """neurons.md's microscope section: the figures, a row per neuron, its two feature visualizations."""
    s, summary = record["settings"], record["summary"]
    facet = s.get("facet") or {}
    lines = ["## Microscope: feature visualizations and word views", "",
             (f"The {s['found']} most blamed neurons (asked {s['neurons']}): plain and text-faceted feature "
              f"visualizations ({s['steps']} steps, lr {s['lr']}, {s['param']}, seed {s['seed']}; text facet on "
              f"`{facet.get('layer', '-')}`, train accuracy {_num(facet.get('train_accuracy'))}, strength "
              f"{s['facet_strength']}). Excitation ratio: FV activation / the {s['percentile']}th percentile over "
              f"{s['natural']['n']} natural images ({s['natural']['source']}). Reads: {s['reads']}. "
              f"Details in `{MICROSCOPE_JSON}`."), "",
             "| figure | value |", "|---|---|",
             f"| median excitation ratio (plain FV) | {_num(summary['median_ratio'])} |",
             f"| share of neurons with ratio >= 2 | {_pct(summary['share_at_least_2x'])} |",
             f"| median excitation ratio (faceted FV) | {_num(summary['facet_median_ratio'])} |",
             (f"| FV classified as the class the neuron reads: plain / faceted | {_pct(summary['plain_reads_rate'])} / "
              f"{_pct(summary['facet_reads_rate'])} |"),
             (f"| mean probability of the read class: plain / faceted | {_num(summary['plain_read_probability'])} / "
              f"{_num(summary['facet_read_probability'])} |")]
    for who in ("blamed", "random"):
        a = summary[f"agreement_{who}"]
        lines.append(f"| text vs pixel words, {who} neurons (n={a['n']}): Spearman / top-{s['words_k']} overlap | "
                     f"{_num(a['spearman'])} / {_num(a['overlap'])} |")
    lines += ["", "| neuron | ratio (plain / faceted) | plain FV class | faceted FV class | reads | text-side words "
              "| pixel-side words | Spearman | overlap | plain | faceted |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, n in record["neurons"].items():
        e, a = n["excitation"], n["agreement"]
        lines.append(f"| `{name}` | {_num(e['ratio'])} / {_num(e['facet_ratio'])} | {n['plain_class']} | "
                     f"{n['facet_class']} | {n['reads'] or '-'} | {_words(n['text_words'])} | "
                     f"{_words(n['pixel_words'])} | {_num(a['spearman'])} | {_num(a['overlap'])} | "
                     f"![plain]({n['plain_png']}) | ![faceted]({n['facet_png']}) |")
    lines.append("")
    return lines


__all__ = ["MICROSCOPE_DIR", "MICROSCOPE_JSON", "microscope_line", "microscope_section", "save_images", "save_png"]
