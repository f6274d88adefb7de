"""The ``ablate`` defense: named units of the image tower set to 0 (``mode=zero``) or to their mean activation
(``mode=mean``) at every position, on every forward pass of the defended classifier.

Units are named as everywhere else (``models.units``): ``layer4:12`` (a ResNet channel),
``resblocks.3.mlp:7`` (a ViT MLP unit), ``resblocks.3.attn:2`` (a ViT attention head: its output vector, so its
contribution to every token, the class token's included; ``models.attention_heads``). The list is written out (``units=A+B``), read from a file
(``file=PATH``, one name per line, ``#`` comments; or the JSON ``typobench defense select-greedy`` writes, whose
provenance is recorded: ``defenses.greedy``) or taken from a neurons analysis
(``from=neurons.json,stage=NAME,k=10``: the top k blamed for that stage's ``event`` kind).

Mean values are averaged over positions and over clean images: those the neurons analysis used for its
own mean ablation (``mean_images=neurons``, the default with ``from``), or a class-stratified subset of
``mean_n`` images of a split of the session's data set (``mean_images=train``): the record says which.

``positions=cls`` (attention heads only) ablates a head's output at the class token's row alone: its path into
the class token, as Dyslexify does; ``positions=all`` (the default) at every token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError, close_matches
from typobench.core.hashing import file_sha256
from typobench.defenses.base import BuildContext, Defense, ImageRequest
from typobench.defenses.classifier import EditStep
from typobench.defenses.greedy_file import POSITIONS, greedy_selection, read_greedy
from typobench.defenses.provenance import Selection
from typobench.defenses.spec import SpecFields
from typobench.models.attention_heads import HEAD_KIND, head_means, head_space, headwise_attention
from typobench.models.units import (NeuronLayer, NeuronSpace, apply_edit, edits, find_layers, image_tower, parse_neuron,
                                    unit_activations)

MODES = ("zero", "mean")
NEURONS_JSON = "neurons.json"
EVENT_KINDS = ("failure", "lift", "hijack")
DEFAULT_MEAN_N = 500


def tower_layers(model: nn.Module) -> list[NeuronLayer]:
    """Every layer whose units can be named: ResNet ``layer4``; the MLP and the attention heads of every ViT block."""
    blocks = getattr(getattr(image_tower(model), "transformer", None), "resblocks", None)
    if blocks is None or not len(blocks):
        return find_layers(model).layers
    try:
        heads = head_space(model, len(blocks)).layers
    except UsageError:  # a transformer whose attention cannot be split into heads: its MLP units only
        heads = []
    return [*find_layers(model, vit_blocks=len(blocks)).layers, *heads]


def unit_spaces(model: nn.Module, names: Sequence[str], where: str) -> list[tuple[NeuronSpace, list[int]]]:
    """The named units as (layers holding them, their global indices in those layers): one space of scalar
    units (channels, MLP units) and one of attention heads, whichever have named units (their mean values
    differ in shape: a number per unit, a vector per head)."""
    layers = {layer.name: layer for layer in tower_layers(model)}
    parsed = [parse_neuron(name) for name in names]
    for name, (layer, index) in zip(names, parsed):
        if layer not in layers:
            hint = close_matches(layer, layers)
            suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
            raise UsageError(f"{where}: field 'units': unit '{name}': this tower has no layer '{layer}': {suggestion}"
                             f"layers are {', '.join(list(layers)[:8])}{' ...' if len(layers) > 8 else ''}")
        if index >= layers[layer].units:
            raise UsageError(f"{where}: field 'units': unit '{name}': layer {layer} has {layers[layer].units} units "
                             f"(0..{layers[layer].units - 1})")
    out = []
    for heads in (False, True):
        chosen = [n for n, (layer, _) in zip(names, parsed) if (layers[layer].kind == HEAD_KIND) == heads]
        used = {parse_neuron(name)[0] for name in chosen}
        if chosen:
            space = NeuronSpace([layer for name, layer in layers.items() if name in used])
            out.append((space, [space.index(name) for name in chosen]))
    return out


def is_heads(space: NeuronSpace) -> bool:
    return space.layers[0].kind == HEAD_KIND


def _cls_edit(layer: NeuronLayer, output: Tensor, keep: Tensor, fill: Tensor) -> Tensor:
    """A head layer's output [N, L, H, d] edited at the class token's row only."""
    rest = output[:, 1:]
    return torch.cat([apply_edit(layer, output[:, :1], keep, fill), rest], dim=1)


@contextmanager
def unit_edit(model: nn.Module, space: NeuronSpace, chosen: dict[str, tuple[Tensor, Tensor]],
              cls_only: bool = False) -> Iterator[None]:
    """The ``chosen`` edits (``models.units.edits``) in force for the block; heads are computed one by one
    meanwhile, so each is a tensor to edit. The hooks go first on their modules (``prepend``): whatever else
    reads those modules during the defended pass (a neurons capture, say) sees the defended activations."""
    by_name = {layer.name: layer for layer in space.layers}
    with ExitStack() as stack:
        if is_heads(space):
            stack.enter_context(headwise_attention(model, space))
        for name, (keep, fill) in chosen.items():
            layer = by_name[name]
            edit = _cls_edit if cls_only and layer.kind == HEAD_KIND else apply_edit
            hook = lambda module, inputs, output, layer=layer, keep=keep, fill=fill, edit=edit: edit(layer, output, keep, fill)
            stack.callback(layer.module.register_forward_hook(hook, prepend=True).remove)
        yield


def read_units(path: Path, fields: SpecFields) -> list[str]:
    """The units a file names: a greedy selection's JSON, or a text file of one unit per line."""
    if not path.is_file():
        raise fields.error("file", f"'{path}' not found: pass a text file with one unit (LAYER:INDEX) per line")
    try:
        greedy = read_greedy(path)
    except UsageError as exc:
        raise UsageError(f"{fields.where}: {exc}") from None
    if greedy is not None:
        return [str(unit) for unit in greedy["units"]]
    names = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise fields.error("file", f"'{path}' names no unit: write one LAYER:INDEX per line")
    return names


def read_neurons_json(path: Path, fields: SpecFields) -> dict[str, Any]:
    path = path / NEURONS_JSON if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fields.error("from", f"'{path}' cannot be read as a neurons.json ({exc}): pass the file `typobench "
                                   "neurons` wrote, or its folder") from None
    if not isinstance(report, dict) or not isinstance(report.get("analyses"), list):
        raise fields.error("from", f"'{path}' is not a neurons.json (no analyses): pass the file `typobench neurons` wrote")
    report["_path"] = str(path)
    return report


def blamed_units(report: dict[str, Any], stage: str, event: str, k: int | None, fields: SpecFields) -> list[str]:
    """The top ``k`` units the analysis blamed for ``event`` events of ``stage``, in rank order."""
    entries = [e for e in report["analyses"] if isinstance(e, dict) and e.get("blame")]
    stages = sorted({str(e.get("stage")) for e in entries})
    if stage not in stages:
        hint = close_matches(stage, stages)
        suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
        raise fields.error("stage", f"'{stage}' has no blamed units in {report['_path']}: {suggestion}"
                                    f"stages with blame: {', '.join(stages) or '(none)'}")
    entry = next((e for e in entries if e.get("stage") == stage and e.get("kind") == event), None)
    if entry is None:
        kinds = sorted(str(e.get("kind")) for e in entries if e.get("stage") == stage)
        raise fields.error("event", f"stage '{stage}' has no '{event}' blame in {report['_path']}: use one of "
                                    f"{', '.join(kinds)}")
    ranked = [r["neuron"] for r in sorted(entry["blame"], key=lambda r: r.get("rank", 0))]
    ranked = ranked if len(ranked) >= len(entry.get("blamed", [])) else list(entry["blamed"])
    k = len(entry.get("blamed") or ranked) if k is None else k
    if k > len(ranked):
        raise fields.error("k", f"{report['_path']} ranks {len(ranked)} units for stage '{stage}': use k <= {len(ranked)}")
    return ranked[:k]


def neurons_selection(what: str, path: Path, n: int | None) -> Selection:
    """The run the analysis in ``path`` names (as it recorded it): the harness reads and checks that run."""
    run = json.loads(path.read_text(encoding="utf-8")).get("run") or {}
    run_dir = Path(run["dir"]) if run.get("dir") else path.parent
    return Selection(what, str(path), n=n, run_dir=run_dir, config_hash=run.get("config_hash"),
                     model_label=run.get("model"), model_fingerprint=run.get("weights_sha256"))


class AblateDefense(Defense):
    kind = "ablate"
    fields = ("units", "file", "from", "stage", "event", "k", "mode", "mean_images", "mean_n", "positions")
    summary = ("units of the image tower set to 0 or their mean: units=layer4:12+layer4:7 | file=PATH (a list, or the "
               "JSON of `typobench defense select-greedy`) | from=neurons.json,stage=NAME[,k=10,event=failure]; "
               "mode=zero|mean; mean_images=neurons|SPLIT, mean_n=N; positions=all|cls (heads: the class token's path)")

    def __init__(self, spec: str, units: list[str], mode: str, source: dict[str, Any],
                 mean_request: ImageRequest | None, where: str, positions: str = "all"):
        super().__init__(spec)
        self.units, self.mode, self.source, self.mean_request, self.where = units, mode, source, mean_request, where
        self.positions = positions

    @classmethod
    def from_fields(cls, spec: str, fields: SpecFields) -> AblateDefense:
        given = fields.exactly_one(("units", "file", "from"))
        report = None
        if given == "units":
            units, source = fields.names("units"), {"units_from": "spec"}
        elif given == "file":
            path = fields.path("file")
            units, source = read_units(path, fields), {"units_from": "file", "file": str(path),
                                                       "file_sha256": file_sha256(path)}
        else:
            report = read_neurons_json(fields.path("from"), fields)
            stage, event = fields.text("stage"), fields.text("event", "failure", choices=EVENT_KINDS)
            units = blamed_units(report, stage, event, fields.number("k", None, minimum=1, integer=True), fields)
            source = {"units_from": "neurons", "neurons_json": report["_path"],
                      "neurons_json_sha256": file_sha256(report["_path"]), "stage": stage, "event": event, "k": len(units)}
        for key in ("stage", "event", "k"):
            if given != "from" and fields.has(key):
                raise fields.error(key, "is read only with from=neurons.json")
        for name in units:
            try:
                parse_neuron(name)
            except UsageError as exc:
                raise fields.error(given, str(exc)) from None
        if len(set(units)) != len(units):
            raise fields.error(given, "names a unit twice: name each once")
        mode = fields.text("mode", "zero", choices=MODES)
        request = cls._mean_request(fields, mode, report)
        greedy = read_greedy(Path(source["file"])) if given == "file" else None
        positions = fields.text("positions", greedy.get("positions", "all") if greedy else "all", choices=POSITIONS)
        if greedy is not None:
            source.update(units_from="greedy", positions_chosen=greedy.get("positions", "all"))
            if greedy.get("pool_layers"):  # what the selection chose among: where random baselines draw from
                source["pool_layers"] = list(greedy["pool_layers"])
        fields.finish(cls.fields)
        return cls(spec, units, mode, source, request, fields.where, positions)

    @staticmethod
    def _mean_request(fields: SpecFields, mode: str, report: dict[str, Any] | None) -> ImageRequest | None:
        images = fields.text("mean_images", "neurons" if report is not None else None)
        n = fields.number("mean_n", None, minimum=1, integer=True)
        if mode == "zero":
            if fields.has("mean_images") or fields.has("mean_n"):
                raise fields.error("mean_images" if fields.has("mean_images") else "mean_n", "is read only with mode=mean")
            return None
        if images is None:
            raise fields.error("mean_images", "mode=mean needs the images to average over: a split of the data set "
                                              "(mean_images=train) or, with from=neurons.json, mean_images=neurons")
        if images != "neurons":
            return ImageRequest("split", n or DEFAULT_MEAN_N, split=images)
        if report is None:
            raise fields.error("mean_images", "'neurons' needs from=neurons.json: or name a split (mean_images=train)")
        if n is not None:
            raise fields.error("mean_n", "is set by the neurons analysis (its ref_limit) with mean_images=neurons")
        config = report.get("config", {})
        return ImageRequest("neurons", int(config.get("ref_limit", DEFAULT_MEAN_N)), neurons_json=Path(report["_path"]))

    def parameters(self) -> dict[str, Any]:
        extra = {"positions": self.positions} if self.positions != "all" else {}
        return {"mode": self.mode, "units": list(self.units), **extra, **self.source}

    def selections(self) -> list[Selection]:
        out = []
        if self.source.get("units_from") == "greedy":
            path = Path(self.source["file"])
            out.append(greedy_selection(path, read_greedy(path) or {}))
        if self.source.get("units_from") == "neurons":
            out.append(neurons_selection("blamed units", Path(self.source["neurons_json"]), None))
        request = self.mean_request
        if request is not None and request.source == "neurons":
            out.append(neurons_selection("mean activations", Path(request.neurons_json), request.n))
        elif request is not None:  # the session's data set: the harness names it
            out.append(Selection("mean activations", f"mean_images={request.split}", split=request.split, n=request.n))
        return out

    def provenance_unknown(self) -> bool:
        # Units written out or read from a file may have been picked by looking at any images, the scored
        # ones included; random draws are drawn by the seed, from no images.
        return self.source.get("units_from") in ("spec", "file")

    def wrap(self, classifier: Any, ctx: BuildContext, record: dict[str, Any]) -> Any:
        spaces = unit_spaces(classifier, self.units, self.where)
        if self.positions == "cls" and not all(is_heads(space) for space, _ in spaces):
            raise UsageError(f"{self.where}: field 'positions': cls ablates attention heads' class-token rows only, "
                             "and these units include others: use positions=all")
        images = None
        if self.mean_request is not None:
            images, record["mean_images"] = ctx.request(self.mean_request, self.where)
        record["layers"] = [layer for space, _ in spaces for layer in space.describe()]
        defended = classifier
        for space, indices in spaces:
            values = None
            if images is not None:  # measured through the classifier defended by the defenses before this one
                values = head_means(classifier, space, images, ctx.batch_size) if is_heads(space) \
                    else unit_activations(classifier, space, images, ctx.batch_size)[0].mean(0)
            chosen = edits(space, indices, values)
            cls_only = self.positions == "cls"
            defended = defended.then(EditStep(lambda s=space, c=chosen, o=cls_only: unit_edit(classifier, s, c, o)))
        return defended


__all__ = ["AblateDefense", "blamed_units", "tower_layers", "unit_edit", "unit_spaces"]
