"""What a Stroop run leaves behind: stroop.json (the result envelope, then the Stroop fields), stroop.csv
(one row per stimulus x prompt), stroop_<i>.png per prompt; its config hash, default folder and the
table the command prints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typobench.core.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from typobench.core.cache import content_key
from typobench.experiments.stroop.figure import stroop_figure_png
from typobench.harness.config import default_out_dir
from typobench.harness.report import format_rate
from typobench.harness.results import SCHEMA_VERSION
from typobench.typographic.stroop.scoring import METRIC_NAMES, STROOP_CSV, STROOP_JSON, StroopResult


def stroop_config_hash(result: StroopResult, extra: Mapping[str, Any] | None = None) -> str:
    """A hash of everything that determines the numbers: model weights, design, prompts, options."""
    model = result.model or {}
    design = result.design.to_dict()
    # Fonts by name and file hash, not by where the file lies on this machine.
    design["fonts"] = [{k: v for k, v in font.items() if k != "path"} for font in design["fonts"]]
    return content_key(kind="stroop", model=model.get("weights_sha256"), design=design,
                       image_size=list(result.image_size), prompts=[p.prompt for p in result.prompts],
                       extra=dict(extra or {}))


def default_stroop_out_dir(model_label: str, config_hash: str) -> Path:
    """``runs/stroop-<model>-<hash[:10]>``."""
    return default_out_dir("stroop", [model_label], config_hash)


def write_stroop_outputs(result: StroopResult, out_dir: str | Path,
                         header: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``stroop.csv``, ``stroop_<i>.png`` per prompt, then ``stroop.json`` (last: present = finished).

    stroop.json starts with ``header`` (the result envelope of ``typobench.harness.results.envelope``),
    then the Stroop fields of ``result.to_dict()`` that the header does not already hold, then the file
    names. Pictures ``stroop_<i>.png`` left by an earlier run with more prompts are removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"csv": out_dir / STROOP_CSV}
    write_text_atomic(files["csv"], result.frame().to_csv(index=False))
    for i in range(len(result.prompts)):
        path = out_dir / f"stroop_{i}.png"
        write_bytes_atomic(path, stroop_figure_png(result, i))
        files[f"png_{i}"] = path
    _remove_stale_pictures(out_dir, len(result.prompts))
    files["json"] = out_dir / STROOP_JSON
    record: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **dict(header or {})}
    record.update((key, value) for key, value in result.to_dict().items() if key not in record)
    record["files"] = {"csv": STROOP_CSV, "pictures": [files[f"png_{i}"].name for i in range(len(result.prompts))]}
    write_json_atomic(files["json"], record)
    return files


def _remove_stale_pictures(out_dir: Path, n_prompts: int) -> None:
    """Remove ``stroop_<i>.png`` for ``i >= n_prompts``: an earlier run's prompts that this run does not have."""
    for stale in out_dir.glob("stroop_*.png"):
        match = re.fullmatch(r"stroop_(\d+)\.png", stale.name)
        if match and int(match.group(1)) >= n_prompts:
            stale.unlink()


def metrics_table(result: StroopResult) -> str:
    """Fixed-width table: one line per prompt with the four rates (95% Wilson CI)."""
    header = f"{'#':>2}  {'congruent':<22} {'incongruent':<22} {'word named':<22} {'neutral':<22} prompt"
    lines = [header, "-" * (len(header) + 30)]
    for i, p in enumerate(result.prompts):
        cells = [format_rate(p.metrics[k]["value"], p.metrics[k]["ci95"]) for k in METRIC_NAMES]
        lines.append(f"{i:>2}  " + " ".join(f"{c:<22}" for c in cells) + f" {p.prompt}")
    return "\n".join(lines)
