"""Font registry: named TrueType faces that resolve on any machine, recorded by name and file hash.

The built-in faces are the TTF files that ship inside matplotlib (a hard dependency), so rendering
never depends on system fonts. Several *distinct* families are offered (DejaVu Sans/Serif/Mono,
STIX, Computer Modern) because a later training step holds one whole family out of training; use
``FontSpec.family`` to group the style variants (bold, italic, ...) of one face.

Any ``.ttf``/``.otf``/``.ttc`` file path is accepted in place of a registry name.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from typobench.core.errors import UsageError
from typobench.core.registry import Registry

FONT_FILE_SUFFIXES = (".ttf", ".otf", ".ttc")
_HOW_TO_LIST = "typobench.typographic.list_fonts()"

# name -> (file name inside matplotlib's fonts/ttf folder, family). The family groups style
# variants of one face so "hold one font out of training" can hold out the whole face.
FONTS: Registry[tuple[str, str]] = Registry("font", _HOW_TO_LIST)
for _name, _file, _family in (
    ("sans", "DejaVuSans.ttf", "dejavu-sans"),
    ("sans-bold", "DejaVuSans-Bold.ttf", "dejavu-sans"),
    ("sans-oblique", "DejaVuSans-Oblique.ttf", "dejavu-sans"),
    ("sans-bold-oblique", "DejaVuSans-BoldOblique.ttf", "dejavu-sans"),
    ("serif", "DejaVuSerif.ttf", "dejavu-serif"),
    ("serif-bold", "DejaVuSerif-Bold.ttf", "dejavu-serif"),
    ("serif-italic", "DejaVuSerif-Italic.ttf", "dejavu-serif"),
    ("serif-bold-italic", "DejaVuSerif-BoldItalic.ttf", "dejavu-serif"),
    ("mono", "DejaVuSansMono.ttf", "dejavu-mono"),
    ("mono-bold", "DejaVuSansMono-Bold.ttf", "dejavu-mono"),
    ("mono-oblique", "DejaVuSansMono-Oblique.ttf", "dejavu-mono"),
    ("stix", "STIXGeneral.ttf", "stix"),
    ("stix-bold", "STIXGeneralBol.ttf", "stix"),
    ("stix-italic", "STIXGeneralItalic.ttf", "stix"),
    ("cm-serif", "cmr10.ttf", "cm-serif"),
    ("cm-serif-bold", "cmb10.ttf", "cm-serif"),
    ("cm-serif-italic", "cmti10.ttf", "cm-serif"),
    ("cm-sans", "cmss10.ttf", "cm-sans"),
    ("cm-mono", "cmtt10.ttf", "cm-mono"),
):
    FONTS.add(_name, (_file, _family))

# Common spellings people type; resolved to a registry name (never listed, to keep the list clean).
_ALIASES: dict[str, str] = {
    "dejavu-sans": "sans",
    "dejavu-serif": "serif",
    "dejavu-sans-mono": "mono",
    "dejavu-mono": "mono",
    "cmr10": "cm-serif",
    "cmb10": "cm-serif-bold",
    "cmti10": "cm-serif-italic",
    "cmss10": "cm-sans",
    "cmtt10": "cm-mono",
    "computer-modern": "cm-serif",
    "stix-general": "stix",
}


@dataclass(frozen=True)
class FontSpec:
    """A resolved font: registry ``name`` (or the path given), file ``path``, file ``sha256``.

    ``family`` groups style variants of one face (``"sans"`` and ``"sans-bold"`` are both
    ``"dejavu-sans"``); for a user-supplied file it is the file stem.
    """

    name: str
    path: str
    sha256: str
    family: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready record for results: the font by name and by file hash."""
        return asdict(self)


def matplotlib_font_dir() -> Path:
    """The folder of TTF files bundled with matplotlib."""
    import matplotlib  # local: importing matplotlib is slow and only needed to find the folder

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def list_fonts() -> list[str]:
    """Registry names of the built-in fonts, sorted."""
    return sorted(FONTS.names())


def list_font_families() -> dict[str, list[str]]:
    """Family -> registry names of its style variants (to hold a whole face out of training)."""
    families: dict[str, list[str]] = {}
    for name in list_fonts():
        families.setdefault(FONTS.get(name)[1], []).append(name)
    return families


@functools.lru_cache(maxsize=None)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size are part of the key so an edited file is re-hashed, not served stale.
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, cached per (path, mtime, size)."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)


def _looks_like_path(name: str) -> bool:
    return name.lower().endswith(FONT_FILE_SUFFIXES) or os.sep in name or "/" in name


def resolve_font(name: str | os.PathLike) -> FontSpec:
    """Resolve a registry name (``"sans"``, ``"serif-bold"``, ...) or a font file path.

    Raises ``UsageError`` for an unknown name (suggesting close matches), a missing file or a
    file that is not a TrueType/OpenType font.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"font must be a registry name or a font file path, got {name!r}: see `{_HOW_TO_LIST}`")
    key = name.strip()
    if _looks_like_path(key):
        return _resolve_path(key)
    canonical = _ALIASES.get(key.lower(), key.lower())
    if canonical not in FONTS:
        raise FONTS.unknown(key)
    return _resolve_builtin(canonical)


@functools.lru_cache(maxsize=None)
def _resolve_builtin(canonical: str) -> FontSpec:
    # Cached: every TextStyle resolves its font, and matplotlib's bundled files do not change
    # while the process runs.
    file_name, family = FONTS.get(canonical)
    path = matplotlib_font_dir() / file_name
    if not path.is_file():
        # Only a broken matplotlib install gets here; say what is missing and how to repair it.
        raise UsageError(f"font '{canonical}' file {path} is missing: reinstall matplotlib (`pip install --force-reinstall matplotlib`)")
    return FontSpec(name=canonical, path=str(path), sha256=file_sha256(path), family=family)


def _resolve_path(text: str) -> FontSpec:
    path = Path(text).expanduser()
    if path.suffix.lower() not in FONT_FILE_SUFFIXES:
        raise UsageError(f"font file '{text}' must end in {', '.join(FONT_FILE_SUFFIXES)}: pass a TrueType/OpenType file or a name from `{_HOW_TO_LIST}`")
    if not path.is_file():
        raise UsageError(f"font file '{text}' does not exist: check the path or use a name from `{_HOW_TO_LIST}`")
    path = path.resolve()
    return FontSpec(name=text, path=str(path), sha256=file_sha256(path), family=path.stem)


@functools.lru_cache(maxsize=256)
def load_pil_font(path: str, size_px: int):  # -> PIL.ImageFont.FreeTypeFont
    """A PIL FreeType font at ``size_px`` pixels per em, cached (font loading dominates small renders).

    The BASIC layout engine is used on purpose: it needs no libraqm, so glyph placement is the same
    on every machine (raqm, when present, can shift glyphs by a pixel between installs).
    """
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size_px, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise UsageError(f"font file '{path}' could not be loaded ({exc}): pass a valid TrueType/OpenType file") from exc


@functools.lru_cache(maxsize=64)
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def missing_glyphs(font: FontSpec, text: str) -> str:
    """Characters of ``text`` (whitespace aside) the font has no glyph for, in order, deduplicated.

    A missing glyph renders as an empty box ("tofu"), which would silently change the attack.
    """
    try:
        charmap = _charmap(font.path)
    except (OSError, RuntimeError):
        return ""  # cannot inspect this file; rendering will still surface a broken font
    seen: dict[str, None] = {}
    for char in text:
        if not char.isspace() and ord(char) not in charmap:
            seen[char] = None
    return "".join(seen)
