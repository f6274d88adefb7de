"""``typobench neurons``: from a finished run's failures to the neurons behind them, with a causal check.

Events. For each attack stage, every sample is compared with its clean prediction p0 (predictions.csv's
``clean`` stage); with y the label, p1 the attacked prediction and t the stage's target:

* ``failure``: p0 = y and p1 != y -- the prediction moved from y to p1 (the issue's definition);
* ``lift``: p0 != y and p1 = y -- the attack fixed a wrong prediction (Fort's true-label sticker);
* ``hijack``: p0 != y, p1 != y, p1 != p0 and p1 = t -- a targeted attack took an already-wrong image
  to its target.

Each event is a move from a class ``a`` (y, p0, p0) to a class ``b`` (p1, y, t); its logit difference
``logit_b - logit_a`` is attributed to neurons on the attacked and the clean image (see
``attribution``). Events are grouped by the attack text (``text`` column), else the target class, else
the stage. Blame is ranked per stage and event kind (the ``stage`` scope) and per group; the top-k of
each scope is ablated on that scope's events (see ``ablation``), the stage scope also on the clean
reference images for the clean accuracy cost.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import stratified_subset
from ..errors import UsageError
from ..results import read_results
from .ablation import ABLATION_MODES, Events, ablation_study
from .attribution import RANK_BY, attribute, blame_table
from .cards import (
    DEFAULT_WORDS,
    MultimodalTest,
    card_facts,
    class_image_z,
    control_max,
    control_words,
    multimodal_pass,
    read_vocab,
    renderable,
    text_z,
    vocabulary,
    word_activations,
)
from .hooks import NeuronSpace, as_pixels, find_layers, parse_neuron
from .replay import RunReplay, check_run_dir, load_run
from .scoring import Scorer

EVENT_KINDS = ("failure", "lift", "hijack")
RANK_TEXT = {"added": "min of the mean attacked and the mean difference: pushes towards the new class in the attacked "
                      "image and the attack added that push",
             "diff": "mean difference attacked - clean", "attacked": "mean attacked attribution"}
PRIMARY_METRIC = {"failure": "restored", "lift": "effect_removed", "hijack": "effect_removed"}
METRIC_WORDS = {"restored": "accuracy recovered on the failures", "effect_removed": "attack effect removed",
                "targeted_removed": "targeted success removed", "margin_drop": "drop of the logit margin"}


@dataclass
class NeuronsConfig:
    run_dir: str
    stages: list[str] | None = None
    top_k: int = 10
    draws: int = 20
    vocab: str | None = None
    out: str | None = None
    rank_by: str = "added"
    modes: tuple[str, ...] = ABLATION_MODES
    events: tuple[str, ...] = EVENT_KINDS
    max_events: int = 1000
    ref_limit: int = 500
    min_group: int = 5
    heldout_min: int = 10
    max_cards: int = 30
    table_k: int = 20
    tau_image: float = 1.0
    tau_text: float = 2.0
    min_class_images: int = 3
    length_slack: int = 1
    vit_blocks: int = 1
    device: str = "auto"
    batch_size: int = 64
    seed: int | None = None
    cache_dir: str | None = None

    # Where and how fast the analysis runs and where it writes: not what it finds.
    _NOT_METHOD = ("run_dir", "out", "device", "cache_dir", "batch_size")

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-ready (neurons.json's ``config``)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def same_method(self, recorded: dict[str, Any]) -> bool:
        """Whether a neurons.json ``config`` was made with these method options (``seed`` None: the run's)."""
        mine = {k: v for k, v in self.to_dict().items()
                if k not in self._NOT_METHOD and not (k == "seed" and v is None)}
        return all(recorded.get(k) == v for k, v in mine.items())

    def validate(self) -> None:
        for name in ("top_k", "draws", "max_events", "ref_limit", "min_group", "heldout_min", "table_k", "min_class_images",
                     "vit_blocks", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if self.length_slack < 0:
            raise UsageError(f"--length-slack must be >= 0, got {self.length_slack}")
        if self.max_cards < 0:
            raise UsageError(f"--max-cards must be >= 0, got {self.max_cards}")
        if self.rank_by not in RANK_BY:
            raise UsageError(f"--rank-by '{self.rank_by}' is unknown: use {', '.join(RANK_BY)}")
        for mode in self.modes:
            if mode not in ABLATION_MODES:
                raise UsageError(f"--modes '{mode}' is unknown: use {', '.join(ABLATION_MODES)}")
        for kind in self.events:
            if kind not in EVENT_KINDS:
                raise UsageError(f"--events '{kind}' is unknown: use {', '.join(EVENT_KINDS)}")


@dataclass
class NeuronsOutcome:
    out_dir: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


def _group_of(row: pd.Series, stage: str, classnames: Sequence[str]) -> str:
    text = str(row.get("text", "") or "").strip()
    if text:
        return text
    target = int(row["target"]) if str(row.get("target", "")).lstrip("-").isdigit() else -1
    if target >= 0:
        return f"target={classnames[target]}"
    return stage


def find_events(predictions: pd.DataFrame, stage: str, clean_pred: dict[str, int], classnames: Sequence[str],
                kinds: Sequence[str] = EVENT_KINDS) -> pd.DataFrame:
    """One row per event of ``stage``: sample_id, index, label, clean_pred, pred, target, kind, from, to, group."""
    rows = predictions[predictions["stage"] == stage].copy()
    columns = ["sample_id", "index", "label", "clean_pred", "pred", "target", "kind", "from", "to", "group"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows["clean_pred"] = rows["sample_id"].map(clean_pred)
    rows = rows[rows["clean_pred"].notna()]
    y = rows["label"].astype(int)
    p0 = rows["clean_pred"].astype(int)
    p1 = rows["pred"].astype(int)
    t = pd.to_numeric(rows["target"], errors="coerce").fillna(-1).astype(int)
    rows["target"] = t
    rows["clean_pred"] = p0
    kind = pd.Series("", index=rows.index)
    kind[(p0 == y) & (p1 != y)] = "failure"
    kind[(p0 != y) & (p1 == y)] = "lift"
    kind[(p0 != y) & (p1 != y) & (p1 != p0) & (p1 == t)] = "hijack"
    rows["kind"] = kind
    rows = rows[rows["kind"].isin(list(kinds))].copy()
    rows["from"] = np.where(rows["kind"] == "failure", rows["label"].astype(int), rows["clean_pred"])
    rows["to"] = rows["pred"].astype(int)
    rows["group"] = [_group_of(r, stage, classnames) for _, r in rows.iterrows()]
    return rows[columns].reset_index(drop=True)


def _cap(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    keep = np.sort(np.random.default_rng([int(seed) & 0xFFFFFFFF, 3]).choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def _rows(table: pd.DataFrame, k: int) -> list[dict[str, Any]]:
    out = []
    for record in table.head(k).to_dict("records"):
        layer, unit = parse_neuron(record["neuron"])
        out.append({**record, "layer": layer, "unit": unit})
    return out


def verdict(summary: dict[str, Any], kind: str) -> dict[str, Any]:
    """Per ablation mode: does the blamed set beat each baseline on the kind's primary metric?"""
    metric = PRIMARY_METRIC[kind]
    out = {"metric": metric}
    for mode, metrics in summary.items():
        entry = metrics[metric]
        beats = [name for name in ("random", "matched") if entry.get(f"beats_{name}")]
        if len(beats) == 2:
            text = "beats both baselines"
        elif beats:
            text = f"beats only the {beats[0]} baseline"
        else:
            text = "does NOT beat the baselines"
        out[mode] = {"beats_random": bool(entry.get("beats_random")), "beats_matched": bool(entry.get("beats_matched")),
                     "blamed": entry["blamed"], "random_mean": entry["random"]["mean"],
                     "matched_mean": entry["matched"]["mean"], "text": text}
    return out


class _Log:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[neurons {time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def analyze(config: NeuronsConfig, *, progress: bool = True, log: Callable[[str], None] | None = None) -> NeuronsOutcome:
    """Run the whole analysis and write every output (see ``report.write_outputs``)."""
    from .report import write_outputs

    config.validate()
    log = log or _Log(progress)
    vocab_words = read_vocab(config.vocab) if config.vocab else list(DEFAULT_WORDS)
    selected = _select_stages(config)
    replay = load_run(config.run_dir, device=config.device, cache_dir=config.cache_dir)
    out_dir = Path(config.out) if config.out else replay.run_dir
    seed = replay.config.seed if config.seed is None else config.seed
    classnames = replay.classnames
    model = replay.classifier
    space = find_layers(model, config.vit_blocks)
    if config.top_k >= space.total:
        raise UsageError(f"--top-k {config.top_k} leaves no other neurons for the baselines: the layers have "
                         f"{space.total} neurons; use fewer")
    log(f"model {replay.loaded.spec.label}: {space.total} neurons in {', '.join(l.name for l in space.layers)}")

    predictions = replay.predictions
    dataset = replay.dataset
    labels_all = torch.tensor(dataset.labels, dtype=torch.long)

    # Clean reference images: activation statistics, mean-ablation values, clean accuracy cost, cards.
    ref_positions = stratified_subset(dataset.labels, config.ref_limit, seed)
    ref_images = replay.clean_images(ref_positions, config.batch_size)
    ref_labels = labels_all[ref_positions]
    clean_scorer = Scorer(model, space, ref_images, config.batch_size)
    ref_acts, ref_logits = clean_scorer.acts, clean_scorer.base_logits
    mean_values = ref_acts.mean(0)
    ref_accuracy = float((ref_logits.argmax(1) == ref_labels).float().mean()) if len(ref_labels) else None
    log(f"clean reference: {len(ref_positions)} images, accuracy {ref_accuracy:.3f}; "
        f"ablations re-run {'only the layers after the neurons' if clean_scorer.fast else 'the whole model'}")

    clean_rows = predictions[predictions["stage"] == "clean"]
    if len(clean_rows):
        clean_pred = dict(zip(clean_rows["sample_id"], clean_rows["pred"].astype(int)))
    else:  # a suite without a clean stage: score the clean images now
        preds = replay.predict(as_pixels(replay.clean_images(list(range(len(dataset))), config.batch_size)))
        clean_pred = dict(zip(dataset.sample_ids, preds.tolist()))

    analyses: list[dict[str, Any]] = []
    blame_rows: list[dict[str, Any]] = []
    ablation_rows: list[dict[str, Any]] = []
    for stage in selected:
        events_all = find_events(predictions, stage, clean_pred, classnames, config.events)
        regeneration = {"events_found": len(events_all)}
        if events_all.empty:
            for kind in config.events:
                analyses.append({"stage": stage, "kind": kind, "n_events": 0, "note": "no events"})
            log(f"stage {stage}: no events")
            continue
        events_all = _cap(events_all, config.max_events, seed)
        positions = events_all["index"].astype(int).tolist()
        for pos, sid in zip(positions, events_all["sample_id"]):
            if dataset.sample_ids[pos] != sid:
                raise UsageError(f"predictions.csv names sample {sid} at index {pos}, which the reloaded data set "
                                 "holds elsewhere: the run's data changed")
        started = time.perf_counter()
        attacked, targets = replay.regenerate(stage, positions, config.batch_size)
        regen_pred = replay.predict(attacked, config.batch_size)
        agree = (regen_pred.numpy() == events_all["pred"].astype(int).to_numpy())
        regeneration.update({"regenerated": len(positions), "agree": int(agree.sum()),
                             "mismatches": int((~agree).sum()),
                             "seconds": round(time.perf_counter() - started, 2)})
        log(f"stage {stage}: {len(positions)} events regenerated, {int((~agree).sum())} prediction mismatches")
        keep = np.nonzero(agree)[0]
        events_all = events_all.iloc[keep].reset_index(drop=True)
        attacked, targets = attacked[keep], targets[keep]
        clean_imgs = replay.clean_images(events_all["index"].astype(int).tolist(), config.batch_size)
        for kind in config.events:
            rows = np.nonzero((events_all["kind"] == kind).to_numpy())[0]
            entry: dict[str, Any] = {"stage": stage, "kind": kind, "n_events": len(rows),
                                     "regeneration": regeneration}
            analyses.append(entry)
            if len(rows) == 0:
                entry["note"] = "no events"
                continue
            frame = events_all.iloc[rows].reset_index(drop=True)
            from_idx = torch.tensor(frame["from"].astype(int).to_numpy())
            to_idx = torch.tensor(frame["to"].astype(int).to_numpy())
            att = attribute(model, space, attacked[rows], from_idx, to_idx, batch_size=config.batch_size)
            cln = attribute(model, space, clean_imgs[rows], from_idx, to_idx, batch_size=config.batch_size)
            events = Events(attacked[rows], from_idx, to_idx, targets[rows])
            entry.update(_analyse_scope(config, space, model, frame, att, cln, events, mean_values, clean_scorer,
                                        ref_labels, seed, kind, stage, blame_rows, ablation_rows))
            log(f"stage {stage} / {kind}: {len(rows)} events; {entry['verdict']}")

    cards = _cards(config, replay, space, model, analyses, ref_images, ref_labels, ref_acts, vocab_words, log)
    report = {
        "created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "run": {"dir": str(replay.run_dir), "config_hash": replay.results.get("config_hash"),
                "model": replay.results.get("model", {}).get("label"),
                "dataset": replay.results.get("dataset", {}).get("name"),
                "suite": (replay.results.get("suite") or {}).get("name"),
                "head": replay.results.get("head", {}).get("kind")},
        "config": config.to_dict() | {"seed": seed},
        "layers": space.describe(),
        "reference": {"n": len(ref_positions), "clean_accuracy": ref_accuracy},
        "methods": {
            "neurons": "ResNet: channels of visual.layer4's output (before attention pooling); ViT: hidden units "
                       f"(after the activation) of the MLP of the last {config.vit_blocks} transformer block(s). "
                       "Activations are averaged over positions (spatial cells / tokens).",
            "events": "failure: clean correct, attacked wrong (from y to the attacked prediction); lift: clean wrong, "
                      "attacked correct; hijack: clean wrong, attacked = the attack's target",
            "attribution": "gradient x activation of logit_to - logit_from, summed over positions, with the head's "
                           "L2 normalisation of the embedding held fixed (it scales every logit alike; a scale-free "
                           "head's grad x act would sum to ~0 by Euler's theorem); attacked, clean and their "
                           f"difference (attacked - clean); ranked by '{config.rank_by}' ("
                           + RANK_TEXT[config.rank_by] + "); share = share of the summed mean difference",
            "ablation": "zero: unit set to 0 at every position; mean: set to its mean activation over the clean "
                        "reference images (averaged over positions) at every position; baselines: k random "
                        "non-blamed units, and k non-blamed units of nearest mean activation; a blame beats a "
                        "baseline when its metric exceeds every draw of it (rank p-value 1/(draws+1)). "
                        "The verdict is held-out when a stage "
                        f"has >= {config.heldout_min} events: the top-k is chosen on a random half of the events "
                        "and ablated on the other half (per-group ablations are in-sample)",
            "multimodal_test": MultimodalTest(config.tau_image, config.tau_text, config.min_class_images,
                                              config.length_slack).describe(),
        },
        "analyses": analyses,
        "cards": cards,
    }
    files = write_outputs(out_dir, report, blame_rows, ablation_rows, cards)
    log(f"wrote {len(files)} files to {out_dir}")
    return NeuronsOutcome(out_dir, report, files)


def _select_stages(config: NeuronsConfig) -> list[str]:
    """The attack stages to analyse, checked against the run's results.json before anything is loaded."""
    results = read_results(check_run_dir(config.run_dir))
    names = [s["name"] for s in results.get("stages", []) if s.get("kind") != "clean" and s["name"] != "clean"]
    if not config.stages:
        return names
    for name in config.stages:
        if name not in names:
            raise UsageError(f"--stage '{name}' is not an attack stage of this run: use one of "
                             f"{', '.join(names) if names else '(none: the run has only the clean stage)'}")
    return [n for n in names if n in config.stages]


def _analyse_scope(config: NeuronsConfig, space: NeuronSpace, model, frame: pd.DataFrame, att, cln, events: Events,
                   mean_values, clean_scorer: Scorer, ref_labels, seed: int, kind: str, stage: str,
                   blame_rows: list, ablation_rows: list) -> dict[str, Any]:
    table = blame_table(att.attr, cln.attr, space.names, rank_by=config.rank_by)
    top = table["neuron"].head(config.top_k).tolist()
    blamed = [space.index(n) for n in top]
    for record in _rows(table, config.table_k):
        blame_rows.append({"stage": stage, "kind": kind, "scope": "stage", "group": "", "n_events": len(frame), **record})
    rows, summary = ablation_study(model, space, events, blamed, mean_values=mean_values, draws=config.draws,
                                   seed=seed, modes=config.modes, clean=clean_scorer, clean_labels=ref_labels,
                                   batch_size=config.batch_size)
    for row in rows:
        ablation_rows.append({"stage": stage, "kind": kind, "scope": "stage", "group": "", "split": "in-sample", **row})
    held_out = None
    if len(frame) >= config.heldout_min:
        # Blame chosen on one half of the events, ablation scored on the other: no selection on the test events.
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, 4]).permutation(len(frame))
        fit, test = np.sort(order[: len(frame) // 2]), np.sort(order[len(frame) // 2:])
        fit_table = blame_table(att.attr[fit], cln.attr[fit], space.names, rank_by=config.rank_by)
        fit_blamed = [space.index(n) for n in fit_table["neuron"].head(config.top_k)]
        h_rows, h_summary = ablation_study(model, space, events.subset(test), fit_blamed, mean_values=mean_values,
                                           draws=config.draws, seed=seed, modes=config.modes, clean=clean_scorer,
                                           clean_labels=ref_labels, batch_size=config.batch_size)
        for row in h_rows:
            ablation_rows.append({"stage": stage, "kind": kind, "scope": "stage", "group": "", "split": "held-out",
                                  **row})
        held_out = {"n_fit": len(fit), "n_test": len(test), "blamed": [space.names[u] for u in fit_blamed],
                    "overlap_with_blamed": len(set(fit_blamed) & set(blamed)), "ablation": h_summary,
                    "verdict_detail": verdict(h_summary, kind)}
    detail = held_out["verdict_detail"] if held_out else verdict(summary, kind)
    verdict_text = _verdict_text(detail) + (f" (held-out: blame from {held_out['n_fit']} events, ablation on the "
                                            f"other {held_out['n_test']})" if held_out else
                                            f" (in-sample: fewer than {config.heldout_min} events for a held-out split)")
    groups = []
    for group, members in frame.groupby("group", sort=True).groups.items():
        idx = np.asarray(sorted(members))
        g_table = blame_table(att.attr[idx], cln.attr[idx], space.names, rank_by=config.rank_by)
        g_entry: dict[str, Any] = {"group": group, "n_events": len(idx), "top": _rows(g_table, min(config.table_k, 10))}
        for record in _rows(g_table, config.table_k):
            blame_rows.append({"stage": stage, "kind": kind, "scope": "group", "group": group,
                               "n_events": len(idx), **record})
        if len(idx) >= config.min_group:
            g_blamed = [space.index(n) for n in g_table["neuron"].head(config.top_k)]
            g_rows, g_summary = ablation_study(model, space, events.subset(idx), g_blamed, mean_values=mean_values,
                                               draws=config.draws, seed=seed, modes=config.modes,
                                               batch_size=config.batch_size)
            for row in g_rows:
                ablation_rows.append({"stage": stage, "kind": kind, "scope": "group", "group": group,
                                      "split": "in-sample", **row})
            g_entry["blamed"] = [space.names[u] for u in g_blamed]
            g_entry["ablation"] = g_summary
            g_entry["verdict"] = verdict(g_summary, kind)
        groups.append(g_entry)
    margin = float(att.margin.mean())
    return {
        "mean_margin_attacked": margin,
        "mean_margin_clean": float(cln.margin.mean()),
        "attribution_sum_attacked": float(att.attr.sum(1).mean()),
        "attribution_sum_clean": float(cln.attr.sum(1).mean()),
        "blame": _rows(table, config.table_k),
        "blamed": top,
        "ablation": summary,
        "held_out": held_out,
        "verdict": verdict_text,
        "verdict_detail": detail,
        "verdict_split": "held-out" if held_out else "in-sample",
        "groups": groups,
    }


def _verdict_text(detail: dict[str, Any]) -> str:
    parts = [f"{mode}: {value['text']}" for mode, value in detail.items() if isinstance(value, dict)]
    return f"{METRIC_WORDS[detail['metric']]} -- " + "; ".join(parts)


def _cards(config: NeuronsConfig, replay: RunReplay, space: NeuronSpace, model, analyses: list[dict[str, Any]],
           ref_images, ref_labels, ref_acts, vocab_words: list[str], log) -> dict[str, Any]:
    """Text facet + dataset examples + multimodal test for every blamed neuron (stage scope), in blame order."""
    classnames = replay.classnames
    blamed_for: dict[str, list[str]] = {}
    for entry in analyses:
        for name in entry.get("blamed", []):
            blamed_for.setdefault(name, []).append(f"{entry['stage']}/{entry['kind']}")
    chosen = list(blamed_for)[: config.max_cards]
    test = MultimodalTest(config.tau_image, config.tau_text, config.min_class_images, config.length_slack)
    words, skipped = renderable(vocabulary(classnames, vocab_words))
    lowered = {w.lower(): i for i, w in enumerate(words)}
    class_word = [lowered.get(c.strip().lower(), -1) for c in classnames]
    started = time.perf_counter()
    word_acts = word_activations(model, space, words, replay.side, batch_size=config.batch_size)
    log(f"text facet: {len(words)} words rendered ({len(skipped)} skipped) in {time.perf_counter() - started:.1f}s")
    z_txt = text_z(word_acts)
    z_txt_class = torch.stack([z_txt[i] if i >= 0 else torch.full((space.total,), float("nan")) for i in class_word])
    z_img, counts = class_image_z(ref_acts, ref_labels, len(classnames))
    controls = control_words(words, class_word, test.length_slack)
    passed = multimodal_pass(torch.nan_to_num(z_img, nan=-math.inf), torch.nan_to_num(z_txt_class, nan=-math.inf),
                             counts, test, control_max(z_txt, controls))
    is_multi = passed.any(0)
    testable_classes = int((counts >= test.min_class_images).sum())
    facts = []
    for name in chosen:
        unit = space.index(name)
        fact = card_facts(space, unit, ref_acts, z_img, counts, words, z_txt, class_word,
                          classnames, passed, controls)
        fact_dict = asdict(fact)
        fact_dict["blamed_for"] = blamed_for[name]
        fact_dict["multimodal"] = bool(is_multi[unit])
        fact_dict["card"] = f"neuron_cards/{_card_file(name)}"
        facts.append((fact, fact_dict, unit))
    n_multi_blamed = sum(1 for _, d, _ in facts if d["multimodal"])
    return {
        "test": test.describe(),
        "vocabulary": {"n": len(words), "class_names": sum(1 for i in class_word if i >= 0), "skipped": skipped},
        "testable_classes": testable_classes,
        "controls_per_class": {classnames[c]: len(ctrl) for c, ctrl in enumerate(controls) if len(classnames) <= 100},
        "base_rate": float(is_multi.float().mean()),
        "base_rate_n": int(is_multi.sum()),
        "n_neurons": space.total,
        "blamed_multimodal": n_multi_blamed,
        "blamed_total": len(facts),
        "neurons": [d for _, d, _ in facts],
        "_render": {"facts": facts, "ref_images": ref_images, "ref_labels": ref_labels, "z_img": z_img,
                    "z_txt_class": z_txt_class, "test": test, "classnames": classnames, "side": replay.side},
    }


def _card_file(neuron: str) -> str:
    layer, unit = parse_neuron(neuron)
    return f"{layer.replace(':', '_')}_{unit}.png"


__all__ = ["EVENT_KINDS", "NeuronsConfig", "NeuronsOutcome", "analyze", "find_events", "verdict"]
