"""The heads pages of the atlas, from a heads survey's ``heads.json`` (``typobench heads``;
:mod:`typobench.neurons.heads.survey`): ``heads.html``, every head in one table (block, head, direct
contribution, first text directions, the change in clean and typographic accuracy when it is ablated, with
intervals), and per head ``heads-<name>.html`` (its numbers, its text basis, its top clean and typographic
images). The survey's folder holds heads.json and the images; the pages go to its ``atlas/`` with copies
of the images under ``img/``, so the site rebuilds from the files alone and works opened from disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typobench.core.atomic import write_text_atomic
from typobench.core.errors import UsageError
from typobench.neurons.atlas.gather import slug
from typobench.neurons.atlas.html import DASH, bar, esc, figure, link, num, page, pct, table
from typobench.neurons.atlas.site import ATLAS_DIR, Assets
from typobench.neurons.heads.survey import HEADS_JSON, IMAGE_KINDS, SURVEY_FORMAT

HEADS_PAGE = "heads.html"
FIRST_TEXTS = 3


def head_page(name: str) -> str:
    """The page of head ``name`` (``resblocks.3.attn:2`` -> ``heads-resblocks.3.attn-2.html``)."""
    return f"heads-{slug(name)}.html"


def points(delta: dict[str, Any] | None) -> str:
    """An accuracy change in points with its interval: ``+1.2 [-0.4, +2.8]``."""
    if not delta or not isinstance(delta.get("value"), (int, float)):
        return DASH
    low, high = (delta.get("ci95") or [None, None])[:2]
    interval = f" [{100 * low:+.1f}, {100 * high:+.1f}]" if isinstance(low, (int, float)) and \
        isinstance(high, (int, float)) else ""
    return f"{100 * delta['value']:+.1f}{interval}"


def _texts(record: dict[str, Any], key: str = "text_basis", k: int = FIRST_TEXTS) -> str:
    basis = record.get(key) or []
    return esc("; ".join(str(entry.get("text")) for entry in basis[:k])) or DASH


def _change(record: dict[str, Any], images: str) -> str:
    return esc(points(((record.get("ablation") or {}).get(images) or {}).get("delta")))


def _summary(report: dict[str, Any]) -> list[str]:
    run, base, embedding = report.get("run", {}), report.get("base", {}), report.get("embedding", {})
    clean, typo = base.get("clean", {}), base.get("typographic", {})
    return [f'<p class="meta">Run <code>{esc(run.get("dir"))}</code>: {esc(run.get("model"))} on '
            f'{esc(run.get("dataset"))} ({esc(run.get("split"))}), stage <b>{esc(run.get("stage"))}</b>; '
            f'{num((report.get("images") or {}).get("n"))} images ({esc((report.get("images") or {}).get("how"))}).</p>',
            f"<p>Unablated accuracy: clean {pct(clean.get('accuracy'))}, typographic {pct(typo.get('accuracy'))} "
            f"(agreement with the run's own predictions: {pct(clean.get('agrees_with_run'))}, "
            f"{pct(typo.get('agrees_with_run'))}). Everything that is not a head (embeddings, biases, MLPs, "
            f"ln_post) writes {pct(embedding.get('rest_share'))} of the embedding.</p>",
            "<h2>Method</h2>", "<ul>" + "".join(f"<li><b>{esc(key)}</b>: {esc(text)}</li>"
                                                for key, text in (report.get("method") or {}).items()) + "</ul>"]


def heads_index(report: dict[str, Any]) -> str:
    """``heads.html``: every head, in block order, one row each."""
    heads = report.get("heads") or []
    scale = max((abs(h["direct"]["clean"].get("share") or 0.0) for h in heads), default=0.0)
    rows = []
    for record in heads:
        clean = record["direct"]["clean"]
        rows.append([link(head_page(record["name"]), record["name"]), num(record.get("block")), num(record.get("index")),
                     num(clean.get("mean_norm")), f"{pct(clean.get('share'))} {bar(abs(clean.get('share') or 0.0), scale)}",
                     num(record["direct"]["typographic"].get("mean_norm")), _texts(record),
                     _texts(record, "text_basis_typographic"), _change(record, "clean"),
                     _change(record, "typographic")])
    headers = ["head", "block", "head #", "|direct| clean", "share of embedding", "|direct| typographic",
               f"first text directions, clean (TextSpan, {FIRST_TEXTS})", "first text directions, typographic",
               "ablated: clean accuracy change, points [95%]",
               "ablated: typographic accuracy change, points [95%]"]
    title = f"Attention heads: {(report.get('run') or {}).get('model')}"
    return page(title, [*_summary(report), "<h2>Every head</h2>",
                        table(headers, rows, table_id="heads", numeric=(1, 2, 3, 5, 8, 9))],
                [(HEADS_PAGE, "all heads")])


def _images(record: dict[str, Any], assets: Assets, images: str) -> list[str]:
    entries = (record.get("top_images") or {}).get(images) or []
    figures = [figure(assets(entry["file"]) or entry["file"], f"{entry.get('class')} · {num(entry.get('along'))}")
               for entry in entries if entry.get("file")]
    return [f"<h3>Top {esc(images)} images</h3>", "<div>" + "".join(figures) + "</div>"] if figures else \
        [f"<h3>Top {esc(images)} images</h3>", "<p>None shown.</p>"]


def head_detail(report: dict[str, Any], record: dict[str, Any], assets: Assets) -> str:
    """One head's page: direct contribution, ablation, text basis, top images."""
    direct = [[esc(images), num(record["direct"][images].get("mean_norm")), pct(record["direct"][images].get("share"))]
              for images in IMAGE_KINDS]
    ablation = [[esc(images), pct((report.get("base", {}).get(images) or {}).get("accuracy")),
                 pct(record["ablation"][images].get("accuracy")), _change(record, images)] for images in IMAGE_KINDS]
    bases = {key: [[str(rank), esc(entry.get("text")), pct(entry.get("explained_variance"))]
                   for rank, entry in enumerate(record.get(key) or [], 1)]
             for key in ("text_basis", "text_basis_typographic")}
    method = report.get("method") or {}
    body = [f'<p class="meta">Block {num(record.get("block"))}, head {num(record.get("index"))}.</p>',
            "<h2>Direct contribution</h2>", table(["images", "mean |direct|", "share of embedding"], direct,
                                                  table_id="direct", numeric=(1, 2)),
            "<h2>Ablation</h2>", f"<p>{esc(method.get('ablation', ''))}.</p>",
            table(["images", "accuracy", "ablated", "change, points [95%]"], ablation, table_id="ablation",
                  numeric=(1, 2, 3)),
            "<h2>Text basis (TextSpan)</h2>", f"<p>{esc(method.get('text_basis', ''))}.</p>",
            *[part for (key, rows), images in zip(bases.items(), IMAGE_KINDS) for part in (
                f"<h3>On the {images} images</h3>",
                table(["#", "text", "explained variance"], rows, table_id=key, numeric=(0, 2)))],
            "<h2>Top images</h2>", f"<p>{esc(method.get('top_images', ''))}; caption: class · projection.</p>",
            *[part for images in IMAGE_KINDS for part in _images(record, assets, images)]]
    return page(f"Head {record['name']}", body, [(HEADS_PAGE, "all heads")])


def read_survey(folder: Path) -> dict[str, Any]:
    path = folder / HEADS_JSON
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"'{path}' cannot be read as a heads survey ({exc}): pass the folder `typobench heads` "
                         "wrote") from None
    if not isinstance(report, dict) or report.get("format") != SURVEY_FORMAT:
        raise UsageError(f"'{path}' is not a heads survey: pass the folder `typobench heads` wrote")
    return report


def write_heads_atlas(folder: str | Path, out_dir: str | Path | None = None) -> list[str]:
    """The heads pages of the survey in ``folder`` (its heads.json and images) written to ``out_dir`` (default
    ``folder/atlas``); returns the files written, relative to ``out_dir``. Earlier heads pages there are replaced;
    other pages (a neurons atlas) are left alone."""
    folder = Path(folder)
    report = read_survey(folder)
    out = Path(out_dir) if out_dir is not None else folder / ATLAS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / HEADS_PAGE, *out.glob("heads-*.html")]:
        stale.unlink(missing_ok=True)
    assets = Assets(folder, out)
    pages = {head_page(record["name"]): head_detail(report, record, assets) for record in report.get("heads") or []}
    pages[HEADS_PAGE] = heads_index(report)
    for name, text in pages.items():
        write_text_atomic(out / name, text)
    return sorted(pages) + assets.copy()


__all__ = ["HEADS_PAGE", "head_detail", "head_page", "heads_index", "points", "read_survey", "write_heads_atlas"]
