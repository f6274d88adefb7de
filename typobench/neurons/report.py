"""Outputs of ``typobench neurons``, next to the run's results (or in ``--out``):

* ``neurons.json``: everything (config, methods, events, blame, ablation summaries, verdicts, cards);
* ``neurons_blame.csv``: the top neurons of every scope (stage x event kind, and each group);
* ``neurons_ablation.csv``: one row per ablation (mode x selection x draw, plus the unedited model);
* ``neurons_cards.csv``: one row per carded neuron (text facet, dataset examples, multimodal test);
* ``neuron_cards/*.png``: the cards;
* ``neurons.md``: the report page, with the cards;
* with ``--microscope K``: ``microscope.json`` and ``microscope/*.png`` (see ``microscope.core``), and a section
  of neurons.md.
* with ``--heads K``: the attention heads' rows in the three CSVs (layer ``resblocks.i.attn``), their cards
  in ``neuron_cards/``, and a ``heads`` section in neurons.json and neurons.md (see ``heads.blame``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from typobench.core.atomic import write_json_atomic, write_text_atomic
from typobench.neurons.cards.card import save_card
from typobench.neurons.microscope.core import Microscope
from typobench.neurons.microscope.output import MICROSCOPE_JSON, microscope_section, save_images
from typobench.neurons.probes.sparse_probe import markdown_section as sparse_probe_section

JSON_FILE = "neurons.json"
BLAME_CSV = "neurons_blame.csv"
ABLATION_CSV = "neurons_ablation.csv"
CARDS_CSV = "neurons_cards.csv"
CARDS_DIR = "neuron_cards"
REPORT_MD = "neurons.md"

BLAME_COLUMNS = ["stage", "kind", "scope", "group", "n_events", "rank", "neuron", "layer", "unit",
                 "mean_attr_attacked", "mean_attr_clean", "mean_attr_diff", "share", "share_abs", "in_event_topk"]
ABLATION_COLUMNS = ["stage", "kind", "scope", "group", "split", "mode", "selection", "draw", "k", "neurons", "n_events",
                    "restored", "effect_removed", "n_targeted", "targeted_removed", "margin", "margin_drop",
                    "clean_acc", "clean_cost"]
CARD_COLUMNS = ["neuron", "layer", "unit", "blamed_for", "multimodal", "multimodal_classes", "best_class",
                "best_z_image", "best_z_text", "best_control_word", "best_z_control", "top_class_image", "top_class_image_z", "mean_activation",
                "top_words", "top_images", "card", "text_directions"]


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_microscope(out_dir: Path, microscope: Microscope) -> list[str]:
    """microscope.json and its PNGs under ``out_dir``; the files written, relative to it."""
    out_dir = Path(out_dir)
    images = save_images(out_dir, microscope.images)
    write_json_atomic(out_dir / MICROSCOPE_JSON, _clean(microscope.record))
    return [MICROSCOPE_JSON] + images


def write_outputs(out_dir: Path, report: dict[str, Any], blame_rows: list[dict], ablation_rows: list[dict],
                  cards: dict[str, Any], microscope: Microscope | None = None) -> list[str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cards_dir = out_dir / CARDS_DIR
    cards_dir.mkdir(exist_ok=True)
    card_sets = [cards, *([report["heads"]["cards"]] if report.get("heads") else [])]  # neurons, then heads
    written = []
    keep = set()
    for render in (card_set.get("_render", {}) for card_set in card_sets):
        for fact, fact_dict, unit in render.get("facts", []):
            path = out_dir / fact_dict["card"]
            save_card(path, fact, render["ref_images"], render["ref_labels"].tolist(), render["classnames"],
                      render["side"], render["z_img"][:, unit], render["z_txt_class"][:, unit], render["test"],
                      blamed_for=", ".join(fact_dict["blamed_for"]))
            keep.add(path.name)
            written.append(fact_dict["card"])
    for stale in cards_dir.glob("*.png"):
        if stale.name not in keep:
            stale.unlink()

    blame = pd.DataFrame(blame_rows, columns=BLAME_COLUMNS)
    ablation = pd.DataFrame(ablation_rows, columns=ABLATION_COLUMNS)
    card_rows = []
    for neuron in [n for card_set in card_sets for n in card_set.get("neurons", [])]:
        layer, _, unit = neuron["neuron"].rpartition(":")
        card_rows.append({
            **{k: neuron.get(k) for k in CARD_COLUMNS if k in neuron},
            "layer": layer, "unit": int(unit),
            "blamed_for": " ".join(neuron["blamed_for"]),
            "multimodal_classes": "; ".join(neuron["multimodal_classes"]),
            "top_words": "; ".join(f"{w} ({z:.2f})" for w, z in neuron["top_words"]),
            "top_images": " ".join(str(i) for i in neuron["top_images"]),
            "text_directions": "; ".join(f"{d['text']} ({d['explained_variance']:.2f})"
                                         for d in neuron.get("text_directions", [])),
        })
    card_frame = pd.DataFrame(card_rows, columns=CARD_COLUMNS)
    write_text_atomic(out_dir / BLAME_CSV, blame.to_csv(index=False))
    write_text_atomic(out_dir / ABLATION_CSV, ablation.to_csv(index=False))
    write_text_atomic(out_dir / CARDS_CSV, card_frame.to_csv(index=False))
    if microscope is not None:
        written += write_microscope(out_dir, microscope)
    files = [BLAME_CSV, ABLATION_CSV, CARDS_CSV, REPORT_MD, JSON_FILE] + written
    report = {**report, "files": files}
    write_text_atomic(out_dir / REPORT_MD, markdown(report, microscope.record if microscope is not None else None))
    write_json_atomic(out_dir / JSON_FILE, _clean(report))
    return files


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:.1f}%"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}g}"


def _baseline(stats: dict[str, Any], fmt) -> str:
    if stats.get("mean") is None:
        return "-"
    return f"{fmt(stats['mean'])} ± {fmt(stats['sd'])} (max {fmt(stats['max'])})"


def markdown(report: dict[str, Any], microscope: dict[str, Any] | None = None) -> str:
    """neurons.md: the run and method, a summary table, a section per analysed scope, the cards (and the
    ``microscope`` record's section when given)."""
    lines = _header(report) + _summary(report["analyses"])
    for analysis in report["analyses"]:
        if analysis.get("n_events") and "ablation" in analysis:
            lines += _scope_section(analysis, report["config"])
    lines += _cards_section(report["cards"])
    lines += _heads_section(report["heads"]) if report.get("heads") else []
    lines += microscope_section(microscope) if microscope is not None else []
    lines += sparse_probe_section(report["sparse_probe"]) if report.get("sparse_probe") else []
    return "\n".join(lines) + "\n"


def _header(report: dict[str, Any]) -> list[str]:
    run = report["run"]
    cfg = report["config"]
    layers = ", ".join(f"`{layer['name']}` ({layer['units']} units)" for layer in report["layers"])
    lines = [f"# Neurons behind the failures: {run['model']} on {run['dataset']} (suite {run['suite']})", ""]
    lines += [(f"Run: `{run['dir']}` (config {str(run['config_hash'])[:12]}, head {run['head']}). "
               f"Layers: {layers}. Clean reference: {report['reference']['n']} images, accuracy "
               f"{_pct(report['reference']['clean_accuracy'])}. top-k = {cfg['top_k']}, {cfg['draws']} baseline draws, "
               f"seed {cfg['seed']}."), ""]
    lines += ["## Method", ""]
    for key, text in report["methods"].items():
        if isinstance(text, dict):
            text = text["definition"] + (f" (tau_image = {text['tau_image']}, tau_text = {text['tau_text']}, "
                                         f"min_class_images = {text['min_class_images']}, "
                                         f"length_slack = {text['length_slack']})")
        lines.append(f"- **{key}**: {text}")
    lines.append("")
    return lines


def _summary(analyses: list[dict[str, Any]]) -> list[str]:
    lines = ["## Summary", "",
             ("| stage | events | n | top blamed | metric | blamed (zero / mean) | random (zero / mean) "
              "| matched (zero / mean) | verdict |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for a in analyses:
        if not a.get("n_events") or "ablation" not in a:
            lines.append(f"| {a['stage']} | {a['kind']} | {a.get('n_events', 0)} | - | - | - | - | - | no events |")
            continue
        detail = a["verdict_detail"]
        metric = detail["metric"]
        modes = [m for m in ("zero", "mean") if m in detail]
        cells = {key: " / ".join(_pct(detail[m][key]) for m in modes)
                 for key in ("blamed", "random_mean", "matched_mean")}
        lines.append(f"| {a['stage']} | {a['kind']} | {a['n_events']} | {', '.join(a['blamed'][:3])} | {metric} "
                     f"({a['verdict_split']}) | {cells['blamed']} | {cells['random_mean']} | {cells['matched_mean']} | "
                     f"{a['verdict']} |")
    lines.append("")
    return lines


def _scope_section(a: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """One stage and event kind: regeneration, blame table, ablation tables, verdict, groups."""
    regen = a["regeneration"]
    lines = [f"## {a['stage']} -- {a['kind']} ({a['n_events']} events)", "",
             (f"Regenerated {regen['regenerated']} attacked images of this stage; {regen['mismatches']} did not "
              f"reproduce the recorded prediction and were left out. Mean logit margin (to - from): attacked "
              f"{_num(a['mean_margin_attacked'])}, clean {_num(a['mean_margin_clean'])}; attributions sum to "
              f"{_num(a['attribution_sum_attacked'])} (attacked) and {_num(a['attribution_sum_clean'])} (clean)."),
             "",
             "### Blame", "",
             "| rank | neuron | attr attacked | attr clean | attr diff | share | in event top-10 |",
             "|---|---|---|---|---|---|---|"]
    for r in a["blame"][: max(cfg["top_k"], 10)]:
        lines.append(f"| {r['rank']} | `{r['neuron']}` | {_num(r['mean_attr_attacked'])} | "
                     f"{_num(r['mean_attr_clean'])} | {_num(r['mean_attr_diff'])} | {_pct(r['share'])} | "
                     f"{_pct(r['in_event_topk'])} |")
    lines += _ablation_tables(a, cfg)
    lines += ["", f"**Verdict:** {a['verdict']}.", ""]
    if a.get("groups"):
        lines += ["### Per group", "", "| group | n | top neurons (share) | verdict |", "|---|---|---|---|"]
        for g in a["groups"]:
            tops = ", ".join(f"`{r['neuron']}` ({_pct(r['share'])})" for r in g["top"][:3])
            text = "; ".join(f"{m}: {v['text']}" for m, v in g.get("verdict", {}).items() if isinstance(v, dict)) \
                or f"not ablated (< {cfg['min_group']} events)"
            lines.append(f"| {g['group']} | {g['n_events']} | {tops} | {text} |")
        lines.append("")
    return lines


def _ablation_tables(a: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """The held-out ablation (when there is one), then the in-sample one."""
    tables = []
    if a.get("held_out"):
        h = a["held_out"]
        chosen = ", ".join(f"`{n}`" for n in h["blamed"][:5])
        title = (f"held-out: top {cfg['top_k']} chosen on {h['n_fit']} events ({chosen}, ...; "
                 f"{h['overlap_with_blamed']} shared with the table above), ablated on the other {h['n_test']}")
        tables.append((title, h["ablation"]))
    tables.append((f"in-sample: the top {cfg['top_k']} above, ablated on all {a['n_events']} events", a["ablation"]))
    lines = []
    for title, summary in tables:
        lines += ["", f"### Ablation ({title})", "",
                  "| mode | metric | blamed | random | matched | beats random (p) | beats matched (p) |",
                  "|---|---|---|---|---|---|---|"]
        for mode, metrics in summary.items():
            for metric, entry in metrics.items():
                fmt = _num if metric == "margin_drop" else _pct
                lines.append(f"| {mode} | {metric} | {fmt(entry['blamed'])} | {_baseline(entry['random'], fmt)} | "
                             f"{_baseline(entry['matched'], fmt)} | {_beats(entry, 'random')} | "
                             f"{_beats(entry, 'matched')} |")
    return lines


def _cards_section(cards: dict[str, Any]) -> list[str]:
    blamed_rate = _pct(cards["blamed_multimodal"] / cards["blamed_total"]) if cards["blamed_total"] else "-"
    lines = ["## Neuron cards", "",
             (f"Vocabulary: {cards['vocabulary']['n']} words ({cards['vocabulary']['class_names']} class names). "
              f"Classes testable on the image side (>= {cards['test']['min_class_images']} reference images): "
              f"{cards['testable_classes']}. Multimodal by the test: {cards['blamed_multimodal']} of "
              f"{cards['blamed_total']} blamed neurons ({blamed_rate}) vs {cards['base_rate_n']} of all "
              f"{cards['n_neurons']} neurons ({_pct(cards['base_rate'])}, the base rate)."), "",
             ("| neuron | multimodal | classes | best class (z_img, z_txt; best length-matched control) "
              "| top words (z) | blamed for |"),
             "|---|---|---|---|---|---|"]
    for n in cards["neurons"]:
        words = ", ".join(f"{w} ({z:.1f})" for w, z in n["top_words"][:5])
        lines.append(f"| `{n['neuron']}` | {_yn(n['multimodal'])} | {', '.join(n['multimodal_classes'][:5]) or '-'} | "
                     f"{n['best_class']} ({n['best_z_image']:.2f}, {n['best_z_text']:.2f}; {_control(n)}) | {words} | "
                     f"{', '.join(n['blamed_for'])} |")
    lines.append("")
    for n in cards["neurons"]:
        lines += [f"### `{n['neuron']}`", "", f"![{n['neuron']}]({n['card']})", ""]
    return lines


def _heads_section(heads: dict[str, Any]) -> list[str]:
    """The attention heads: their verdict per scope (as the neurons' summary) and their cards."""
    lines = ["## Attention heads", "", f"Method: {heads['method']}.", ""]
    lines += _summary(heads["analyses"])[2:]  # the neurons' summary table, without its title
    cards = heads["cards"]
    lines += [f"Head cards: top images by {cards['top_images_by']}; text directions from {cards['text_pool']} texts "
              "(TextSpan: share of the head's variance explained when picked).", "",
              "| head | top written words (z) | text directions | blamed for |", "|---|---|---|---|"]
    for n in cards["neurons"]:
        words = ", ".join(f"{w} ({z:.1f})" for w, z in n["top_words"][:5])
        spans = ", ".join(f"{d['text']} ({_pct(d['explained_variance'])})" for d in n["text_directions"])
        lines.append(f"| `{n['neuron']}` | {words} | {spans or '-'} | {', '.join(n['blamed_for'])} |")
    lines.append("")
    for n in cards["neurons"]:
        lines += [f"### `{n['neuron']}`", "", f"![{n['neuron']}]({n['card']})", ""]
    return lines


def _beats(entry: dict[str, Any], selection: str) -> str:
    if f"beats_{selection}" not in entry:
        return "-"
    p = entry.get(f"p_{selection}")
    return _yn(entry[f"beats_{selection}"]) + (f" ({p:.2f})" if p is not None else "")


def _control(card: dict[str, Any]) -> str:
    if not card.get("best_control_word"):
        return "no control word"
    return f"{card['best_control_word']} {card['best_z_control']:.2f}"


def _yn(value: Any) -> str:
    return "yes" if value else "no"


__all__ = ["ABLATION_CSV", "BLAME_CSV", "CARDS_CSV", "CARDS_DIR", "JSON_FILE", "REPORT_MD", "markdown", "write_microscope",
           "write_outputs"]
