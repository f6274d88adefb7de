"""``write_atlas``: the atlas folder, from an analysis's outputs (see ``gather``) or right after it.

The folder is self-contained: every image a page shows is copied under ``img/`` and every link is
relative, so it works opened from disk, moved or zipped. Pages are flat: ``index.html``,
``probe.html`` and ``<neuron|head>-<name>.html``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typobench.core.atomic import write_text_atomic
from typobench.neurons.atlas.examples import save_examples
from typobench.neurons.atlas.gather import load_atlas
from typobench.neurons.atlas.pages import INDEX, PROBE, index_page, probe_page, unit_page

ATLAS_DIR = "atlas"
IMAGES_DIR = "img"


class Assets:
    """Copies of the images the pages show: ``self(path)`` maps a path in the analysis's folder to its
    copy's path in the site (relative to the pages), or None when the file does not exist."""

    def __init__(self, files_dir: Path, out_dir: Path):
        self.files_dir = files_dir
        self.out_dir = out_dir
        self.copies: dict[Path, str] = {}

    def __call__(self, path: str) -> str | None:
        source = Path(path) if Path(path).is_absolute() else self.files_dir / path
        if not source.is_file():
            return None
        source = source.resolve()
        if source not in self.copies:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem)[:60]
            digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]  # two folders may hold the same name
            self.copies[source] = f"{IMAGES_DIR}/{stem}-{digest}{source.suffix.lower()}"
        return self.copies[source]

    def copy(self) -> list[str]:
        """Copy every image looked up so far; the site paths written."""
        for source, target in self.copies.items():
            (self.out_dir / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.out_dir / target)
        return sorted(self.copies.values())


def write_atlas(source: str | Path | Mapping[str, Any], out_dir: str | Path | None = None, *,
                files_dir: str | Path | None = None) -> list[str]:
    """Write the atlas of ``source`` (a folder with neurons.json, the file, or the report dict with
    ``files_dir``) to ``out_dir`` (default: ``atlas/`` next to neurons.json); returns the files written,
    relative to ``out_dir``. Pages and images of an earlier atlas in ``out_dir`` are replaced."""
    atlas = load_atlas(source, files_dir)
    out = Path(out_dir) if out_dir is not None else atlas.files_dir / ATLAS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.html"), *(out / IMAGES_DIR).glob("*")]:
        stale.unlink()
    assets = Assets(atlas.files_dir, out)
    pages = {unit.page: unit_page(atlas, unit, assets) for unit in atlas.units}
    pages[INDEX] = index_page(atlas)
    if atlas.probe:
        pages[PROBE] = probe_page(atlas)
    for name, text in pages.items():
        write_text_atomic(out / name, text)
    return sorted(pages) + assets.copy()


def build_atlas(out_dir: Path, *card_sets: dict[str, Any]) -> list[str]:
    """After an analysis wrote its outputs to ``out_dir``: the dataset examples of ``card_sets`` (the
    neurons' and the heads' cards, with their ``_render`` entries), then the atlas of the files in
    ``out_dir/atlas``, exactly as ``write_atlas(out_dir)`` rebuilds it; the files written, relative to
    ``out_dir``."""
    written = save_examples(out_dir, *card_sets)
    return written + [f"{ATLAS_DIR}/{name}" for name in write_atlas(out_dir, Path(out_dir) / ATLAS_DIR)]


__all__ = ["ATLAS_DIR", "Assets", "build_atlas", "write_atlas"]
