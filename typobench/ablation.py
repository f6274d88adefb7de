"""Ablations: vary suite parameters over a grid and measure every stage at every grid point.

Parameter paths (what ``--vary PATH=V1,V2`` and :func:`override` accept)::

    GROUP.KEY              every stage of the group's kind in the suite
    STAGE.GROUP.KEY        one stage; STAGE is its name, ``stage.NAME`` or ``stage[i]`` (its index)

    GROUP      stages   KEY
    text       text     a style field (font, fonts, size, size_range, fill, fills, stroke, strokes,
                        stroke_width, box, padding, opacity, rotation, rotation_range, align,
                        line_spacing) or a stage field (words, text, word_list, target)
    style      text     a style field only (``style.size`` == ``text.size``)
    placement  text     policy, or a placement parameter (n, cols, rows, positions, x, y,
                        center_fraction); ``copies`` is an alias of ``n``
    pgd        pgd      eps, step_size, steps, norm, random_start, restarts, loss, target, region,
                        mask_stage
    paste      paste    donor_stage, mask_stage, shift

An override edits the parsed TOML of the suite, then the edited suite goes through ``parse_suite``
again, so every value is checked by the same field checks as a suite file, and each grid point
records the sha256 of its own suite text. Before an edit the ``[defaults.*]`` table it touches is
copied into every stage of that kind (exactly what parsing does), so a value set on a stage is
never undone by a default. Setting a key removes the keys it would conflict with: ``size`` drops
``size_range`` (and back), likewise ``rotation``/``rotation_range``, ``font``/``fonts``,
``fill``/``fills``, ``stroke``/``strokes``; ``placement.policy`` drops the parameters the new policy
does not accept; ``text`` sets ``words = "fixed"``, ``word_list`` sets ``words = "word-list"``.

Values on the command line are parsed like TOML scalars (``8`` int, ``0.15`` float, ``true``,
``[0.1, 0.2]``); anything else is a string, so ``8/255`` and ``sans-bold`` need no quotes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import save_atomic, write_bytes_atomic, write_json_atomic, write_text_atomic
from .cache import content_key
from .data import ImageDataset, sample_hash
from .errors import UsageError, close_matches
from .evaluation import evaluate
from .models import LoadedModel
from .pictures import plain_text
from .resume import BatchStore
from .results import summarise_stages, utc_now
from .run import RunConfig, build_context, load_inputs
from .runtime import Runtime
from .stages import RunContext
from .suites import Suite, parse_suite, resolve_suite_path
from .suites.text_stage import STYLE_FIELDS
from .typographic import create_placement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TABLE_CSV = "ablation.csv"
TABLE_PARQUET = "ablation.parquet"
SWEEP_FILE = "sweep.json"
SWEEP_LOG = "sweep.log"
POINT_FILE = "point.json"  # written last in a point's folder: present = the point is finished

# -- parameter paths -----------------------------------------------------------------------------

TEXT_STAGE_FIELDS = ("words", "text", "word_list", "target")
PLACEMENT_KEYS = ("policy", "n", "cols", "rows", "positions", "x", "y", "center_fraction")
PGD_KEYS = ("eps", "step_size", "steps", "norm", "random_start", "restarts", "loss", "target", "region",
            "mask_stage")
PASTE_KEYS = ("donor_stage", "mask_stage", "shift")
KEY_ALIASES = {("placement", "copies"): "n"}

# group -> (stage kind it applies to, keys it accepts)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", STYLE_FIELDS + TEXT_STAGE_FIELDS),
    "style": ("text", STYLE_FIELDS),
    "placement": ("text", PLACEMENT_KEYS),
    "pgd": ("pgd", PGD_KEYS),
    "paste": ("paste", PASTE_KEYS),
}
# Setting the key removes these from the same table (a per-sample list or range would override it).
STYLE_CONFLICTS = {"size": "size_range", "size_range": "size", "rotation": "rotation_range",
                   "rotation_range": "rotation", "font": "fonts", "fonts": "font", "fill": "fills",
                   "fills": "fill", "stroke": "strokes", "strokes": "stroke"}


@dataclass(frozen=True)
class ParamTarget:
    """Where a parameter path writes: stage indices, the table inside each stage, and the key."""

    path: str
    stages: tuple[int, ...]
    table: str | None  # "style", "placement", or None for a field of the stage itself (pgd, words, ...)
    key: str


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as TOML data that can be edited (:func:`override`) and then built into a :class:`Suite`.

    ``text`` is the exact TOML the suite is built from: the file's bytes when nothing was overridden,
    so an unmodified suite keeps the sha256 of its published file.
    """

    raw: dict[str, Any]
    text: bytes
    source: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return str(self.raw.get("name", "suite"))

    def build(self) -> Suite:
        try:
            return parse_suite(self.text, where=f"suite {self.name}", path=self.source)
        except UsageError as exc:
            if not self.overrides:
                raise
            raise UsageError(f"{exc} (with {format_point(dict(self.overrides))})") from exc

    def stage_kinds(self) -> list[tuple[str, str]]:
        return [(str(s.get("name", f"stage[{i}]")), str(s.get("kind", "?"))) for i, s in enumerate(_stages(self.raw))]


def spec_from_bytes(data: bytes, source: str = "suite") -> SuiteSpec:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: not valid TOML ({exc}); fix the file") from exc
    spec = SuiteSpec(raw, data, source)
    spec.build()  # every field checked now, not at the first grid point
    return spec


def load_spec(name_or_path: str) -> SuiteSpec:
    """A suite by name (``attacks/NAME.toml``) or path, as an editable :class:`SuiteSpec`."""
    path = resolve_suite_path(name_or_path)
    return spec_from_bytes(path.read_bytes(), str(path))


def spec_from_dict(data: Mapping[str, Any], source: str = "suite") -> SuiteSpec:
    return spec_from_bytes(to_toml(data).encode("utf-8"), source)


def _stages(raw: Mapping[str, Any]) -> list[dict]:
    stages = raw.get("stage", [])
    return [s for s in stages if isinstance(s, dict)] if isinstance(stages, list) else []


def parameter_paths(spec: SuiteSpec) -> dict[str, list[str]]:
    """Valid ``GROUP.KEY`` paths of this suite, and the stages each group reaches (for ``STAGE.GROUP.KEY``)."""
    kinds = spec.stage_kinds()
    out: dict[str, list[str]] = {}
    for group, (kind, _keys) in GROUPS.items():
        names = [name for name, k in kinds if k == kind]
        if names:
            out[group] = names
    return out


def _valid_paths_text(spec: SuiteSpec) -> str:
    groups = parameter_paths(spec)
    if not groups:
        return f"suite {spec.name} has no text, pgd or paste stage, so it has no parameter to vary"
    parts = []
    if "text" in groups:
        parts.append(f"text.KEY or style.KEY with KEY a style field ({', '.join(STYLE_FIELDS)}), "
                     f"text.KEY also {', '.join(TEXT_STAGE_FIELDS)}")
    if "placement" in groups:
        parts.append("placement.KEY with KEY " + ", ".join("n (or copies)" if k == "n" else k for k in PLACEMENT_KEYS))
    for group in ("pgd", "paste"):
        if group in groups:
            parts.append(f"{group}.KEY with KEY {', '.join(GROUPS[group][1])}")
    kinds = {kind for kind, _ in GROUPS.values()}
    stages = ", ".join(f"{name} ({kind})" for name, kind in spec.stage_kinds() if kind in kinds)
    return (f"valid paths for suite {spec.name}: " + "; ".join(parts)
            + f"; or STAGE.GROUP.KEY for one stage, STAGE one of: {stages}")


def _unknown_path(spec: SuiteSpec, path: str, why: str, hint: Sequence[str] = ()) -> UsageError:
    suggestion = f"did you mean {', '.join(hint)}? " if hint else ""
    return UsageError(f"unknown parameter path '{path}' ({why}): {suggestion}{_valid_paths_text(spec)}")


def resolve_path(spec: SuiteSpec, path: str) -> ParamTarget:
    """Which stages and field ``path`` changes in ``spec``; ``UsageError`` naming it (and the valid ones) if none."""
    parts = path.strip().split(".")
    if len(parts) < 2 or not all(parts[-2:]):
        raise _unknown_path(spec, path, "expected GROUP.KEY or STAGE.GROUP.KEY")
    group, key = parts[-2], parts[-1]
    stage_ref = ".".join(parts[:-2]) or None
    kinds = spec.stage_kinds()
    if group not in GROUPS:
        every = [f"{g}.{k}" for g in parameter_paths(spec) for k in GROUPS[g][1]]
        raise _unknown_path(spec, path, f"no group '{group}'", close_matches(f"{group}.{key}", every, n=3))
    kind, keys = GROUPS[group]
    key = KEY_ALIASES.get((group, key), key)
    if key not in keys:
        raise _unknown_path(spec, path, f"group {group} has no key '{key}'",
                            [f"{group}.{k}" for k in close_matches(key, keys, n=3)])
    if stage_ref is None:
        indices = tuple(i for i, (_, k) in enumerate(kinds) if k == kind)
        if not indices:
            raise _unknown_path(spec, path, f"suite {spec.name} has no {kind} stage")
    else:
        index = _stage_index(kinds, stage_ref)
        if index is None:
            names = [name for name, _ in kinds]
            raise _unknown_path(spec, path, f"no stage '{stage_ref}' in suite {spec.name}",
                                [f"{n}.{group}.{key}" for n in close_matches(stage_ref, names, n=3)])
        if kinds[index][1] != kind:
            raise _unknown_path(spec, path, f"stage '{kinds[index][0]}' is a {kinds[index][1]} stage and "
                                            f"{group}.* applies to {kind} stages")
        indices = (index,)
    if group in ("text", "style") and key in STYLE_FIELDS:
        table = "style"
    elif group == "placement":
        table = "placement"
    else:
        table = None
    return ParamTarget(path, indices, table, key)


def _stage_index(kinds: list[tuple[str, str]], ref: str) -> int | None:
    names = [name for name, _ in kinds]
    if ref in names:
        return names.index(ref)
    if ref.startswith("stage.") and ref[6:] in names:
        return names.index(ref[6:])
    match = re.fullmatch(r"stage\[(\d+)\]", ref)
    if match and int(match.group(1)) < len(kinds):
        return int(match.group(1))
    return None


def override(spec: SuiteSpec, params: Mapping[str, Any]) -> SuiteSpec:
    """A copy of ``spec`` with every ``path: value`` of ``params`` applied (see the module doc), validated."""
    if not params:
        return spec
    raw = copy.deepcopy(spec.raw)
    for path, value in params.items():
        target = resolve_path(spec, path)
        _apply(raw, target, value)
    text = to_toml(raw).encode("utf-8")
    new = SuiteSpec(raw, text, spec.source, spec.overrides + tuple(params.items()))
    new.build()
    return new


def _apply(raw: dict[str, Any], target: ParamTarget, value: Any) -> None:
    stages = raw["stage"]
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    kind = stages[target.stages[0]]["kind"]
    default_name = target.table or ("pgd" if kind == "pgd" else None)
    if default_name and isinstance(defaults.get(default_name), dict):
        # Copy [defaults.X] into every stage that reads it (what parsing does), then drop it.
        shared = defaults.pop(default_name)
        for stage in stages:
            if stage.get("kind") != kind:
                continue
            if target.table:
                own = stage.get(target.table, {})
                stage[target.table] = {**shared, **(own if isinstance(own, dict) else {})}
            else:
                for k, v in shared.items():
                    stage.setdefault(k, v)
        if not defaults:
            raw.pop("defaults", None)
    for index in target.stages:
        stage = stages[index]
        if target.table:
            table = stage.setdefault(target.table, {})
            if not isinstance(table, dict):  # parse_suite reports it, naming the field
                continue
        else:
            table = stage
        key = target.key
        table[key] = value
        if target.table == "style" and key in STYLE_CONFLICTS:
            table.pop(STYLE_CONFLICTS[key], None)
        elif target.table == "placement" and key == "policy":
            try:
                accepted = set(type(create_placement(str(value))).defaults)
            except UsageError:
                accepted = None  # unknown policy: parse_suite names it
            if accepted is not None:
                for extra in [k for k in table if k not in accepted and k != "policy"]:
                    del table[extra]
        elif target.table is None and kind == "text":
            if key == "text":
                table["words"] = "fixed"
                table.pop("word_list", None)
            elif key == "word_list":
                table["words"] = "word-list"
                table.pop("text", None)
            elif key == "words":
                if value != "fixed":
                    table.pop("text", None)
                if value != "word-list":
                    table.pop("word_list", None)


# -- TOML text (no TOML writer ships with Python) -----------------------------------------------------


def to_toml(data: Mapping[str, Any]) -> str:
    """TOML text for a suite-shaped mapping: scalars, lists, nested tables (inline), arrays of tables."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            lines.append(f"{_toml_key(key)} = [")
            lines += [f"  {_toml_value(item)}," for item in value]
            lines.append("]")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    return json.dumps(text).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise UsageError(f"cannot write {value!r} ({type(value).__name__}) into a suite: use a number, "
                     "string, boolean or list")


# -- grids ------------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A value as TOML would read it (``8``, ``0.15``, ``true``, ``[0.1, 0.2]``); otherwise the string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at top-level commas (not inside brackets or quotes)."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_vary(option: str) -> tuple[str, list[Any]]:
    """``PATH=V1,V2,...`` -> (path, [values])."""
    path, sep, values = option.partition("=")
    path = path.strip()
    if not sep or not path:
        raise UsageError(f"--vary '{option}': expected PATH=V1,V2,... e.g. --vary text.size=8,12,16")
    parsed = [parse_value(v) for v in split_values(values)]
    if not values.strip() or any(v == "" for v in parsed):
        raise UsageError(f"--vary '{option}': empty value; give a comma-separated list such as {path}=8,12,16")
    return path, parsed


def expand_grid(vary: Mapping[str, Sequence[Any]] | Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """The product of the varied values, first parameter slowest: [{path: value, ...}, ...]."""
    items = list(vary.items()) if isinstance(vary, Mapping) else list(vary)
    seen: set[str] = set()
    for path, values in items:
        if path in seen:
            raise UsageError(f"parameter '{path}' is varied twice: give all its values in one --vary {path}=V1,V2")
        seen.add(path)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise UsageError(f"parameter '{path}': expected a non-empty list of values, got {values!r}")
        keys = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(keys)) != len(keys):
            raise UsageError(f"parameter '{path}' lists a value twice: {list(values)!r}")
    if not items:
        return [{}]
    paths = [p for p, _ in items]
    return [dict(zip(paths, combo)) for combo in itertools.product(*(v for _, v in items))]


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def format_point(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in point.items()) or "(suite as written)"


def point_slug(point: Mapping[str, Any]) -> str:
    """A folder name for a grid point: readable, unique (short hash of the exact values)."""
    digest = hashlib.sha256(json.dumps(list(point.items()), default=str).encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9._=+-]+", "_", "_".join(f"{k}={format_value(v)}" for k, v in point.items()))
    return f"{readable[:80] or 'base'}-{digest}"


# -- the loaded model and data, shared by every grid point -------------------------------------------


@dataclass
class Bench:
    """A model with its head on a data set, loaded once; runs any suite on it (resumably)."""

    config: RunConfig
    runtime: Runtime
    loaded: LoadedModel
    dataset: ImageDataset
    ctx: RunContext
    head_info: dict[str, Any]

    @classmethod
    def from_config(cls, config: RunConfig) -> Bench:
        """Load model, data and head as ``typobench run`` does (``config.suite`` is ignored)."""
        return cls.from_loaded(config, *load_inputs(config))

    @classmethod
    def from_loaded(cls, config: RunConfig, runtime: Runtime, loaded: LoadedModel, dataset: ImageDataset) -> Bench:
        ctx, head_info = build_context(config, runtime, loaded, dataset)
        return cls(config, runtime, loaded, dataset, ctx, head_info)

    def identity(self) -> dict[str, Any]:
        """What determines the numbers apart from the suite (the suite is hashed by content)."""
        semantic = {k: v for k, v in self.config.semantic().items() if k != "suite"}
        return {"config": semantic, "model": self.loaded.fingerprint(), "samples": sample_hash(self.dataset.sample_ids)}

    def point_key(self, suite: Suite) -> str:
        return content_key(**self.identity(), stages=[s.describe() for s in suite.stages], suite=suite.sha256)

    def run_suite(self, suite: Suite, out_dir: Path | None = None, *, progress: bool = False,
                  overwrite: bool = False, suite_text: bytes | None = None,
                  on_start: Callable[[int, int], None] | None = None) -> PointResult:
        """Every stage of ``suite`` on the data set. With ``out_dir``: finished batches are kept there
        (an interrupted call resumes), a finished point is read back instead of recomputed, and
        ``suite_text`` (the suite's TOML) is saved as ``suite.toml``. ``on_start(done, total)`` is
        called with the numbers of batches already finished and in all, before evaluating."""
        suite.check(list(self.dataset.classnames))
        key = self.point_key(suite)
        if out_dir is None:
            with tempfile.TemporaryDirectory(prefix="typobench-") as tmp:
                return self._evaluate(suite, key, Path(tmp), progress, write=False)
        out_dir = Path(out_dir)
        marker = out_dir / POINT_FILE
        if marker.exists():
            record = json.loads(marker.read_text())
            if record.get("key") == key:
                predictions = pd.read_csv(out_dir / "predictions.csv", keep_default_na=False)
                return PointResult(record["stages"], predictions, suite.sha256, key, skipped=True)
            if not overwrite:
                raise UsageError(f"{out_dir} holds a finished point of a different configuration (model, data, "
                                 "seed, head or suite changed): pass another --out, or --overwrite to replace it")
            shutil.rmtree(out_dir)
        elif overwrite and (out_dir / ".partial").exists() and not _same_key(out_dir, key):
            shutil.rmtree(out_dir)
        if suite_text is not None:
            write_bytes_atomic(out_dir / "suite.toml", suite_text)
        if on_start is not None:
            done = BatchStore(out_dir, key).open() if (out_dir / ".partial").exists() else set()
            on_start(len(done), math.ceil(len(self.dataset) / self.config.batch_size))
        return self._evaluate(suite, key, out_dir, progress, write=True)

    def _evaluate(self, suite: Suite, key: str, out_dir: Path, progress: bool, write: bool) -> PointResult:
        config = self.config
        stage_info = [stage.describe() for stage in suite.stages]
        store = BatchStore(out_dir, key)
        started = time.perf_counter()
        predictions = evaluate(self.dataset, suite.stages, self.ctx, store, batch_size=config.batch_size,
                               workers=config.workers, progress=progress)
        stages = summarise_stages(predictions, stage_info, self.dataset.classnames)
        for stage in stages:
            stage.pop("per_class", None)
        result = PointResult(stages, predictions, suite.sha256, key, elapsed_s=time.perf_counter() - started)
        if write:
            write_text_atomic(out_dir / "predictions.csv", predictions.to_csv(index=False))
            write_json_atomic(out_dir / POINT_FILE, _jsonable({
                "key": key, "created": utc_now(), "suite": suite.describe(), "stages": stages,
                "elapsed_s": round(result.elapsed_s, 3)}))
            store.clear()
        return result


def _same_key(out_dir: Path, key: str) -> bool:
    marker = out_dir / ".partial" / "config_hash"
    return marker.exists() and marker.read_text().strip() == key


@dataclass
class PointResult:
    stages: list[dict[str, Any]]
    predictions: pd.DataFrame
    suite_sha256: str
    key: str
    skipped: bool = False
    elapsed_s: float = 0.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# -- tables -------------------------------------------------------------------------------------------


def stage_rows(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per stage summary: accuracy and targeted success, each with its 95% CI and n."""
    rows = []
    for s in stages:
        targeted = s.get("targeted_success") or {}
        t_ci = targeted.get("ci95") or [None, None]
        rows.append({
            "stage": s["name"], "kind": s.get("kind"), "source": s.get("source"),
            "accuracy": s["accuracy"], "accuracy_ci_lo": s["ci95"][0], "accuracy_ci_hi": s["ci95"][1], "n": s["n"],
            "targeted_success": targeted.get("value"), "targeted_ci_lo": t_ci[0], "targeted_ci_hi": t_ci[1],
            "targeted_n": targeted.get("n"),
            "pixel_fraction_mean": s.get("pixel_fraction_mean"),
        })
    return rows


def stages_frame(stages: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(stage_rows(stages))
    for column in ("targeted_success", "targeted_ci_lo", "targeted_ci_hi", "pixel_fraction_mean"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["targeted_n"] = pd.array(frame["targeted_n"], dtype="Int64")
    return frame


def _column_values(values: list[Any]) -> list[Any]:
    """A parameter column: numbers (fractions like "8/255" evaluated) when every value is one, else text."""
    from .suites.fields import parse_number

    present = [v for v in values if v is not None]

    def number(v: Any) -> float | None:
        if isinstance(v, bool):
            return None
        try:
            return parse_number(v, lambda msg: ValueError(msg))
        except ValueError:
            return None

    numbers = [number(v) for v in present]
    if present and all(n is not None for n in numbers):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
            return [None if v is None else int(v) for v in values]
        return [None if v is None else float(number(v)) for v in values]  # type: ignore[arg-type]
    return [None if v is None else format_value(v) for v in values]


def sweep_table(points: Sequence[Mapping[str, Any]], results: Sequence[PointResult | None]) -> pd.DataFrame:
    """One row per grid point x stage: varied parameters, point label, stage metrics, suite sha256."""
    params = list(dict.fromkeys(k for p in points for k in p))
    rows = []
    for index, (point, result) in enumerate(zip(points, results)):
        if result is None:
            continue
        for row in stage_rows(result.stages):
            rows.append({"point": format_point(point), "point_index": index,
                         **{p: point.get(p) for p in params}, **row, "suite_sha256": result.suite_sha256})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for p in params:
        frame[p] = _column_values(frame[p].tolist())
    for column in ("targeted_success", "targeted_ci_lo", "targeted_ci_hi", "pixel_fraction_mean"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["targeted_n"] = pd.array(frame["targeted_n"], dtype="Int64")
    frame.attrs["params"] = params
    return frame


def write_table(out_dir: Path, table: pd.DataFrame) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / TABLE_CSV, out_dir / TABLE_PARQUET
    write_text_atomic(csv_path, table.to_csv(index=False))
    save_atomic(parquet_path, lambda tmp: table.to_parquet(tmp, index=False))
    return [csv_path, parquet_path]


# -- the sweep -----------------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    out_dir: Path
    table: pd.DataFrame
    points: list[dict[str, Any]]
    skipped: list[int] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def run_sweep(bench: Bench, spec: SuiteSpec, points: Sequence[Mapping[str, Any]], out_dir: str | Path, *,
              progress: bool = True, inner_progress: bool = False, overwrite: bool = False,
              plots: bool = True, log=None) -> SweepOutcome:
    """Run ``spec`` overridden by each point of ``points`` on ``bench``, resumably, into ``out_dir``.

    Every point is validated before anything runs. Each point lives in ``out_dir/points/<slug>/``:
    its finished batches (``.partial/``) while it runs, then ``predictions.csv``, ``suite.toml`` (the
    exact suite text, whose sha256 is recorded) and ``point.json`` last (the finished marker). A rerun
    skips finished points and resumes a half-finished one at its next batch.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    points = [dict(p) for p in points]
    if not points:
        raise UsageError("the grid is empty: vary at least one parameter with one value")
    specs = [override(spec, p) for p in points]
    suites = [s.build() for s in specs]
    for suite in suites:
        suite.check(list(bench.dataset.classnames))
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".ablation.*.tmp"):  # left by a sweep killed while writing its table
        stale.unlink(missing_ok=True)
    slugs = [point_slug(p) for p in points]
    write_json_atomic(out_dir / SWEEP_FILE, _jsonable({
        "created": utc_now(), "suite": {"name": spec.name, "source": spec.source,
                                        "sha256": hashlib.sha256(spec.text).hexdigest()},
        "bench": {**bench.identity(), "model_label": bench.loaded.describe().get("label"),
                  "dataset": bench.dataset.name, "n": len(bench.dataset), "head": bench.head_info.get("kind")},
        "params": list(dict.fromkeys(k for p in points for k in p)),
        "points": [{"index": i, "point": p, "dir": f"points/{slug}", "suite_sha256": s.sha256}
                   for i, (p, slug, s) in enumerate(zip(points, slugs, suites))],
    }))

    def note(message: str, echo: bool = True) -> None:
        with open(out_dir / SWEEP_LOG, "a", encoding="utf-8") as handle:
            handle.write(f"{utc_now()} {message}\n")
        if log is not None and echo:
            log(message)

    results: list[PointResult | None] = [None] * len(points)
    skipped = []
    bar = tqdm(total=len(points), desc="ablate", unit="point", disable=not progress)
    try:
        for i, (point, slug, spec_i, suite) in enumerate(zip(points, slugs, specs, suites)):
            label = f"[{i + 1}/{len(points)}] {format_point(point)}"
            bar.set_postfix_str(format_point(point)[:60])
            point_dir = out_dir / "points" / slug

            def started(done: int, total: int, label: str = label) -> None:
                note(f"{label}: " + (f"resuming, {done} of {total} batches finished earlier" if done
                                     else f"start, {total} batches"), echo=bool(done))

            result = bench.run_suite(suite, point_dir, progress=inner_progress, overwrite=overwrite,
                                     suite_text=spec_i.text, on_start=started)
            results[i] = result
            if result.skipped:
                skipped.append(i)
                note(f"{label}: finished earlier, skipped")
            else:
                note(f"{label}: done in {result.elapsed_s:.1f}s: {_short_metrics(result.stages)}")
            write_table(out_dir, sweep_table(points, results))
            bar.update(1)
    finally:
        bar.close()
    table = sweep_table(points, results)
    files = write_table(out_dir, table)
    if plots:
        label = bench.loaded.describe().get("label")
        title = f"{label} on {bench.dataset.name} (n={len(bench.dataset)}), suite {spec.name}"
        files += plot_sweep(table, out_dir, title=title)
    return SweepOutcome(out_dir, table, points, skipped, files)


def _short_metrics(stages: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for s in stages:
        text = f"{s['name']} acc {100 * s['accuracy']:.1f}%"
        targeted = s.get("targeted_success") or {}
        if targeted.get("value") is not None:
            text += f" targeted {100 * targeted['value']:.1f}%"
        parts.append(text)
    return "; ".join(parts)


def default_sweep_dir(config: RunConfig, spec: SuiteSpec, vary: Sequence[tuple[str, Sequence[Any]]]) -> Path:
    key = content_key(config={k: v for k, v in config.semantic().items()}, vary=[[p, list(v)] for p, v in vary],
                      suite=hashlib.sha256(spec.text).hexdigest())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{config.model}-{config.dataset}-{spec.name}")
    return Path("runs") / f"ablate-{slug}-{key[:10]}"

# -- plots ---------------------------------------------------------------------------------------------

METRIC_LABELS = {"accuracy": "accuracy (%)", "targeted_success": "targeted success (%)"}
_CI = {"accuracy": ("accuracy_ci_lo", "accuracy_ci_hi"), "targeted_success": ("targeted_ci_lo", "targeted_ci_hi")}


def table_params(table: pd.DataFrame) -> list[str]:
    """The varied-parameter columns of a sweep table (between ``point_index`` and ``stage``)."""
    if table.attrs.get("params"):
        return list(table.attrs["params"])
    columns = list(table.columns)
    return columns[columns.index("point_index") + 1:columns.index("stage")]


def _is_product(table: pd.DataFrame, params: Sequence[str]) -> bool:
    if not params:
        return False
    points = table.drop_duplicates("point_index")
    if points[list(params)].isna().any().any():
        return False
    sizes = [points[p].astype(str).nunique() for p in params]
    combos = len(points[list(params)].astype(str).drop_duplicates())
    return combos == len(points) == int(np.prod(sizes))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def _x_positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numeric values as they are; anything else as categories in order of appearance."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=float), None
    categories = list(dict.fromkeys(values.astype(str)))
    return np.array([categories.index(v) for v in values.astype(str)], dtype=float), categories


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    save_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


@plain_text
def plot_metric(table: pd.DataFrame, param: str, path: str | Path, *, others: Sequence[str] = (),
                title: str = "") -> Path:
    """Accuracy (and targeted success, where measured) against ``param``: one line per stage (and per
    combination of ``others``), with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["accuracy"] + (["targeted_success"] if table["targeted_success"].notna().any() else [])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.4 * len(metrics), 3.9), squeeze=False)
    x_all, categories = _x_positions(table[param])
    table = table.assign(_x=x_all)
    keys = ["stage", *others]
    for ax, metric in zip(axes[0], metrics):
        lo_col, hi_col = _CI[metric]
        for group, frame in table.groupby(keys, sort=False, dropna=False):
            group = group if isinstance(group, tuple) else (group,)
            frame = frame.dropna(subset=[metric]).sort_values("_x")
            if frame.empty:
                continue
            y = 100 * frame[metric].to_numpy(dtype=float)
            lo = np.maximum(0.0, y - 100 * frame[lo_col].to_numpy(dtype=float))
            hi = np.maximum(0.0, 100 * frame[hi_col].to_numpy(dtype=float) - y)
            label = ", ".join([str(group[0])] + [f"{q}={format_value(v)}" for q, v in zip(others, group[1:])])
            clean = frame["kind"].iloc[0] == "clean"
            ax.errorbar(frame["_x"], y, yerr=[lo, hi], fmt="o--" if clean else "o-", capsize=3, label=label,
                        color="0.5" if clean else None, alpha=0.8 if clean else 1.0)
        if categories is None and len(set(x_all)) <= 12:
            ticks = sorted(set(x_all))
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:.4g}" for t in ticks], fontsize=8)
        if categories is not None:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories, rotation=30 if max(map(len, categories)) > 6 else 0, ha="right"
                               if max(map(len, categories)) > 6 else "center", fontsize=8)
        ax.set_xlabel(param)
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save_figure(fig, Path(path))


@plain_text
def plot_heatmap(table: pd.DataFrame, rows: str, columns: str, path: str | Path, *, title: str = "") -> Path:
    """One heat map per attack stage: targeted success (accuracy for stages without targets) over two parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(table.loc[table["kind"] != "clean", "stage"])) or list(dict.fromkeys(table["stage"]))
    stages = stages[:6]
    fig, axes = plt.subplots(1, len(stages), figsize=(4.6 * len(stages), 3.9), squeeze=False)
    row_values = list(dict.fromkeys(table[rows].tolist()))
    col_values = list(dict.fromkeys(table[columns].tolist()))
    if pd.api.types.is_numeric_dtype(table[rows]):
        row_values = sorted(row_values)
    if pd.api.types.is_numeric_dtype(table[columns]):
        col_values = sorted(col_values)
    for ax, stage in zip(axes[0], stages):
        frame = table[table["stage"] == stage]
        metric = "targeted_success" if frame["targeted_success"].notna().any() else "accuracy"
        grid = np.full((len(row_values), len(col_values)), np.nan)
        for _, record in frame.iterrows():
            grid[row_values.index(record[rows]), col_values.index(record[columns])] = 100 * float(record[metric])
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="lower")
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                if not np.isnan(grid[r, c]):
                    ax.text(c, r, f"{grid[r, c]:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if grid[r, c] < 60 else "black")
        ax.set_xticks(range(len(col_values)))
        ax.set_xticklabels([format_value(v) for v in col_values], fontsize=8)
        ax.set_yticks(range(len(row_values)))
        ax.set_yticklabels([format_value(v) for v in row_values], fontsize=8)
        ax.set_xlabel(columns)
        ax.set_ylabel(rows)
        ax.set_title(f"{stage}: {METRIC_LABELS[metric]}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    return _save_figure(fig, Path(path))


def plot_sweep(table: pd.DataFrame, out_dir: str | Path, *, params: Sequence[str] | None = None,
               title: str = "") -> list[Path]:
    """``plot-<param>.png`` for each varied parameter and, for two, ``heatmap.png``; for a list of
    points that is not a full grid, ``plot-point.png`` (metric per point)."""
    if table.empty:
        return []
    out_dir = Path(out_dir)
    params = list(params) if params is not None else table_params(table)
    if not _is_product(table, params):
        return [plot_metric(table, "point", out_dir / "plot-point.png", title=title)]
    files = [plot_metric(table, p, out_dir / f"plot-{_safe_name(p)}.png", others=[q for q in params if q != p],
                         title=title) for p in params]
    if len(params) == 2:
        files.append(plot_heatmap(table, params[0], params[1], out_dir / "heatmap.png", title=title))
    return files


__all__ = [
    "Bench", "GROUPS", "ParamTarget", "PointResult", "SuiteSpec", "SweepOutcome", "default_sweep_dir",
    "expand_grid", "format_point", "load_spec", "override", "parameter_paths", "parse_value", "parse_vary",
    "plot_heatmap", "plot_metric", "plot_sweep", "resolve_path", "run_sweep", "spec_from_bytes", "spec_from_dict",
    "split_values", "stages_frame", "sweep_table", "table_params", "to_toml", "write_table",
]
