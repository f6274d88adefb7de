"""The atlas's pages: the index (units by blame), a page per unit, and the sparse probe.

Every page is built from an ``Atlas`` (see ``gather``) and an ``Assets`` lookup that turns an image
path of the analysis's folder into the path of its copy in the site (None when the file is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typobench.neurons.atlas.gather import Atlas, Unit
from typobench.neurons.atlas.html import DASH, bar, esc, figure, image, link, num, page, pct, table

Assets = Callable[[str], "str | None"]
INDEX = "index.html"
PROBE = "probe.html"
BLAME_TEXT = ("blame: the unit's largest share of the summed attribution (attacked - clean) among the stage scopes "
              "(stage / event kind) that blamed it; ablation: the scope's top-k blamed set (which holds the unit) "
              "ablated, against the mean of random and of activation-matched sets of as many units")


def _nav(atlas: Atlas) -> list[tuple[str, str]]:
    return [(INDEX, "index")] + ([(PROBE, "sparse probe")] if atlas.probe else [])


def _effect(scope: dict[str, Any], mode: str = "zero") -> str:
    """``blamed / random / matched`` of a scope's primary metric under ``mode`` (else the first mode)."""
    effect = scope.get("effect") or {}
    values = effect.get(mode) or next(iter(effect.values()), None)
    if not values:
        return DASH
    return (f"{esc(scope.get('metric') or '')} {pct(values.get('blamed'))} vs random {pct(values.get('random_mean'))}, "
            f"matched {pct(values.get('matched_mean'))}")


def _scope_name(scope: dict[str, Any]) -> str:
    return f"{scope.get('stage')}/{scope.get('kind')}"


def _best_scope(unit: Unit) -> dict[str, Any] | None:
    return max(unit.scopes, key=lambda s: s.get("share") or 0.0) if unit.scopes else None


def index_page(atlas: Atlas) -> str:
    """The blamed units by blame (neurons and heads), the others (used by the probe or visualized), scopes."""
    run = atlas.report.get("run", {})
    title = f"Neuron atlas: {run.get('model')} on {run.get('dataset')} (suite {run.get('suite')})"
    layers = ", ".join(f"{layer.get('name')} ({layer.get('units')} units)" for layer in atlas.report.get("layers", []))
    body = [f'<p class="meta">Run <code>{esc(run.get("dir"))}</code>; layers {esc(layers)}. {esc(BLAME_TEXT)}.</p>']
    blamed = [u for u in atlas.units if u.scopes]
    for heads, kind in ((False, "neuron"), (True, "head")):  # shares are of each kind's own total: ranked apart
        units = [u for u in blamed if u.head is heads]
        if units or not heads:
            body += [f"<h2>Blamed {kind}s, by blame</h2>", _blamed_table(units, f"{kind}s")]
    others = [u for u in atlas.units if u not in blamed]
    if others:
        body += ["<h2>Other units (used by the sparse probe, or visualized)</h2>",
                 "<p>" + ", ".join(link(u.page, u.name) for u in others) + "</p>"]
    body += _scopes_section(atlas) + _probe_summary(atlas) + _microscope_summary(atlas)
    return page(title, body, _nav(atlas))


def _blamed_table(units: list[Unit], table_id: str) -> str:
    """Rank, link, blame, scopes, the ablation of its best scope's set, multimodal; in the given order."""
    if not units:
        return "<p>No unit was blamed: the run has no events.</p>"
    rows = []
    for rank, unit in enumerate(units, 1):
        best = _best_scope(unit)
        card = unit.card or {}
        multimodal = DASH if "multimodal" not in card else ("yes" if card["multimodal"] else "no")
        rows.append([str(rank), link(unit.page, unit.name), pct(unit.blame),
                     esc(", ".join(_scope_name(s) for s in unit.scopes)), _effect(best) if best else DASH,
                     esc(multimodal)])
    return table(["#", "unit", "blame", "blamed for", "ablation of its set (zero)", "multimodal"], rows,
                 table_id=table_id, numeric=(0, 2))


def _scopes_section(atlas: Atlas) -> list[str]:
    """Every scope's events, top blamed units (neurons, then heads when analysed) and verdict."""
    heads = atlas.report.get("heads")
    sets = [("neurons", atlas.report.get("analyses", []))]
    sets += [("heads", heads.get("analyses", []))] if isinstance(heads, dict) else []
    rows = [[esc(a.get("stage")), esc(a.get("kind")), esc(units), num(a.get("n_events")),
             ", ".join(_unit_link(atlas, n) for n in a.get("blamed", [])[:5]) or DASH,
             esc(a.get("verdict") or a.get("note") or DASH)] for units, analyses in sets for a in analyses]
    return ["<h2>Scopes</h2>", table(["stage", "event kind", "units", "events", "top blamed", "verdict"], rows,
                                     table_id="scopes", numeric=(3,))] if rows else []


def _unit_link(atlas: Atlas, name: str) -> str:
    unit = atlas.unit(name)
    return link(unit.page, name) if unit else esc(name)


def _probe_summary(atlas: Atlas) -> list[str]:
    if not atlas.probe:
        return []
    probe = atlas.probe
    return ["<h2>Sparse linear probe</h2>",
            f"<p>At {num(probe['sparse']['per_class'])} neurons per class, held-out accuracy "
            f"{pct(probe['sparse']['held_out_accuracy'])} vs {pct(probe['full']['held_out_accuracy'])} for the full "
            f"probe: {link(PROBE, 'the probe and its weights')}.</p>"]


def _microscope_summary(atlas: Atlas) -> list[str]:
    if not atlas.microscope:
        return []
    flat = {f"{key}.{inner}" if isinstance(value, dict) else key: v
            for key, value in atlas.microscope.items()
            for inner, v in (value.items() if isinstance(value, dict) else [(None, value)])}
    rows = [[esc(key), num(value) if isinstance(value, (int, float)) else esc(value)]
            for key, value in flat.items() if not isinstance(value, (dict, list))]
    return ["<h2>Feature visualizations</h2>", table(["measure", "value"], rows, table_id="microscope")]


def unit_page(atlas: Atlas, unit: Unit, assets: Assets) -> str:
    """One neuron or head: blame and ablation per scope, card, dataset examples, words, feature
    visualizations, sparse-probe weights."""
    body = [f'<p class="meta">{esc(unit.kind)}; blame {pct(unit.blame)}. {esc(BLAME_TEXT)}.</p>']
    body += _blamed_section(unit) + _card_section(unit, assets) + _examples_section(atlas, unit, assets)
    body += _words_section(unit) + _directions_section(unit) + _microscope_section(unit, assets)
    body += _unit_probe_section(unit)
    return page(f"{unit.kind} {unit.name}", body, _nav(atlas))


def _blamed_section(unit: Unit) -> list[str]:
    if not unit.scopes:
        return ["<h2>Blamed for</h2>", "<p>Not blamed by any scope.</p>"]
    rows = [[esc(_scope_name(s)), num(s.get("n_events")), num(s.get("rank")), pct(s.get("share")),
             num(s.get("attr_attacked")), num(s.get("attr_clean")), num(s.get("attr_diff")),
             "<br>".join(f"{esc(mode)}: {_effect(s, mode)}" for mode in s.get("effect", {})) or DASH,
             esc(s.get("verdict") or DASH)] for s in unit.scopes]
    return ["<h2>Blamed for</h2>",
            table(["scope", "events", "rank", "share", "attr attacked", "attr clean", "attr diff",
                   "ablation of its set", "verdict"], rows, table_id="blamed-for", numeric=(1, 2, 3, 4, 5, 6))]


def _card_section(unit: Unit, assets: Assets) -> list[str]:
    card = unit.card
    if not card:
        return []
    parts = ["<h2>Card</h2>"]
    source = assets(card["card"]) if card.get("card") else None
    parts.append(image(source, f"card of {unit.name}", "card") if source else "<p>(card image missing)</p>")
    facts = [(key, card.get(key)) for key in ("multimodal", "multimodal_classes", "best_class", "best_z_image",
                                                "best_z_text", "best_control_word", "top_class_image",
                                                "mean_activation", "blamed_for") if key in card]
    rows = [[esc(key), esc(", ".join(map(str, value)) if isinstance(value, list) else
                           (num(value) if isinstance(value, float) else value))] for key, value in facts]
    return parts + [table(["fact", "value"], rows, table_id="card-facts")]


def _examples_section(atlas: Atlas, unit: Unit, assets: Assets) -> list[str]:
    shown = [(assets(e["file"]), e) for e in unit.examples]
    figures = [figure(path, f"{e.get('class')} (act {num(e.get('activation'))})") for path, e in shown if path]
    if not figures:
        return []
    return ["<h2>Dataset examples</h2>", f"<p>{esc(atlas.examples_text(unit))}</p>",
            "<div>" + "".join(figures) + "</div>"]


def _word_rows(words: list[Any]) -> list[list[str]]:
    scale = max((float(s) for _, s in words), default=0.0)
    return [[esc(w), num(float(s)), bar(float(s), scale)] for w, s in words]


def _words_section(unit: Unit) -> list[str]:
    words = (unit.card or {}).get("top_words") or []
    if not words:
        return []
    return ["<h2>Written words (pixel side)</h2>",
            "<p>Words rendered as images that excite it most (text-facet z-score, see the method).</p>",
            table(["word", "z", ""], _word_rows(words), table_id="written-words", numeric=(1,))]


def _directions_section(unit: Unit) -> list[str]:
    """A head's TextSpan text directions (its card's ``text_directions``)."""
    directions = (unit.card or {}).get("text_directions") or []
    if not directions:
        return []
    rows = [[esc(d.get("text")), pct(d.get("explained_variance")), bar(d.get("explained_variance") or 0.0, 1.0)]
            for d in directions]
    return ["<h2>Text directions (TextSpan)</h2>",
            "<p>Texts picked greedily to explain the head's direct contributions, with the share of its variance "
            "each explained when picked.</p>",
            table(["text", "variance explained", ""], rows, table_id="text-directions", numeric=(1,))]


def _agreement(value: Any) -> str:
    """The microscope's agreement of text-side and pixel-side words ({"spearman", "overlap", "k"})."""
    if isinstance(value, dict):
        return (f"Spearman {num(value.get('spearman'))}, top-{esc(value.get('k', '?'))} overlap "
                f"{num(value.get('overlap'))}")
    return num(value)


def _microscope_section(unit: Unit, assets: Assets) -> list[str]:
    entry = unit.microscope
    if not entry:
        return []
    parts = ["<h2>Feature visualizations</h2>", "<div>"]
    for key, label, cls in (("plain_png", "plain", "plain_class"), ("facet_png", "text facet", "facet_class")):
        path = assets(entry[key]) if entry.get(key) else None
        if path:
            parts.append(figure(path, f"{label}: classified as {entry.get(cls, DASH)}", "large"))
    parts.append("</div>")
    excitation = entry.get("excitation") or {}
    if excitation:
        parts.append(table(["excitation", "value"], [[esc(k), num(v) if isinstance(v, (int, float)) else esc(v)]
                                                     for k, v in excitation.items()], table_id="excitation"))
    facts = [f"reads (the class it reads): {esc(entry['reads'])}" if entry.get("reads") is not None else "",
             f"agreement of the text-side and pixel-side words: {_agreement(entry['agreement'])}"
             if entry.get("agreement") is not None else ""]
    parts += [f"<p>{'; '.join(f for f in facts if f)}</p>"] if any(facts) else []
    for key, title, text, score in (
            ("text_words", "Text-direction words", "Words whose text embedding best aligns with the unit's direction "
             "in the joint space (the bilinear view).", "cosine"),
            ("pixel_words", "Pixel-side words (microscope)", "Words that excite it most when written as images.", "z")):
        if entry.get(key):
            parts += [f"<h2>{esc(title)}</h2>", f"<p>{esc(text)}</p>",
                      table(["word", score, ""], _word_rows(entry[key]), table_id=key.replace("_", "-"), numeric=(1,))]
    return parts


def _unit_probe_section(unit: Unit) -> list[str]:
    if not unit.probe:
        return []
    rows = [[esc(r["class"]), num(r["weight"])] for r in unit.probe]
    return ["<h2>Sparse probe weights</h2>", f"<p>The classes the {link(PROBE, 'sparse probe')} reads from it.</p>",
            table(["class", "weight"], rows, table_id="probe-weights", numeric=(1,))]


def probe_page(atlas: Atlas) -> str:
    """The sparse probe: its images (train and held-out, disjoint), accuracies, path and weights."""
    probe = atlas.probe or {}
    images, sparse = probe["images"], probe["sparse"]
    body = [f"<p>{esc(probe.get('method', ''))}.</p>",
            f"<p>Images: {esc(images['how'])} ({images['train']['n']} train, {images['held_out']['n']} held-out; "
            f"{esc(images['source'])}; disjoint: {'yes' if images.get('disjoint') else 'NO'}).</p>",
            table(["probe", "neurons per class", "neurons used", "held-out accuracy"],
                  [["sparse (L1)", num(sparse["per_class"]), num(sparse["neurons_used"]), pct(sparse["held_out_accuracy"])],
                   ["full (L2)", DASH, num(probe["n_neurons"]), pct(probe["full"]["held_out_accuracy"])],
                   ["majority class", DASH, "0", pct(probe.get("chance"))]], table_id="accuracy", numeric=(1, 2, 3)),
            "<h2>Weights (non-zero only)</h2>",
            table(["class", "neuron", "weight"], [[esc(r["class"]), _unit_link(atlas, r["neuron"]), num(r["weight"])]
                                                  for r in probe.get("weights", [])], table_id="weights", numeric=(2,)),
            "<h2>Regularisation path</h2>",
            table(["lambda", "neurons per class", "neurons used", "train accuracy", "held-out accuracy"],
                  [[num(p["lam"]), num(p["per_class"]), num(p["neurons_used"]), pct(p["train_accuracy"]),
                    pct(p["held_out_accuracy"])] for p in probe.get("path", [])], table_id="path",
                  numeric=(0, 1, 2, 3, 4))]
    return page(f"Sparse linear probe ({sparse['per_class']:.2f} neurons per class)", body, _nav(atlas))


__all__ = ["INDEX", "PROBE", "index_page", "probe_page", "unit_page"]
