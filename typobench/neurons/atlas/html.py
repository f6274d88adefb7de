"""HTML pieces of the atlas: every text is escaped here, every link is relative and percent-encoded.

The page shell carries inline CSS and a small inline script that, once the page has loaded, counts the
images that drew (``naturalWidth > 0``) and marks the others: ``<html data-images-ok=N
data-images-broken=M data-ready=1>``, and a broken image gets the class ``broken`` (a red frame), so a
reader sees at once what is missing. A Content-Security-Policy forbids anything but the page's own
files: the site works opened from disk, without a network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
nav { margin-bottom: 1em; } nav a { margin-right: 1.2em; }
.meta { color: #555; } .bar { display: inline-block; height: 0.8em; background: #c44; vertical-align: middle; }
figure { display: inline-block; margin: 0 0.8em 0.8em 0; text-align: center; font-size: 12px; }
figure img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; border: 1px solid #ccc; }
figure.large img { width: 224px; height: 224px; }
img.card { max-width: 100%; border: 1px solid #ccc; }
img.broken { outline: 3px solid red; }
"""

SCRIPT = """
window.addEventListener("load", function () {
  var ok = 0, broken = 0;
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.complete && img.naturalWidth > 0) { ok++; return; }
    broken++;
    img.classList.add("broken");
    img.alt = "missing image: " + img.getAttribute("src");
  });
  var root = document.documentElement;
  root.setAttribute("data-images-ok", String(ok));
  root.setAttribute("data-images-broken", String(broken));
  root.setAttribute("data-ready", "1");
});
"""

CSP = ("default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
DASH = "\u2013"


def esc(value: Any) -> str:
    """``value`` as text in HTML (element content or a quoted attribute)."""
    return html.escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative link or image source, percent-encoded (``/`` kept) and escaped for an attribute."""
    return esc(quote(path, safe="/"))


def link(path: str, text: Any) -> str:
    return f'<a href="{href(path)}">{esc(text)}</a>'


def image(path: str, alt: Any, css: str = "") -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f'<img src="{href(path)}" alt="{esc(alt)}"{cls} loading="eager">'


def figure(path: str, caption: Any, css: str = "") -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f"<figure{cls}>{image(path, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def num(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; missing or not finite: a dash."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    return f"{value:.{digits}g}"


def pct(value: Any) -> str:
    return DASH if num(value) == DASH else f"{100 * value:.1f}%"


def bar(value: float, scale: float, width_px: int = 120) -> str:
    """A horizontal bar, ``value / scale`` of ``width_px`` wide (negative values: none)."""
    width = 0 if not scale or value is None or not math.isfinite(value) else max(0.0, min(1.0, value / scale))
    return f'<span class="bar" style="width:{round(width * width_px)}px"></span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str = "",
          numeric: Sequence[int] = ()) -> str:
    """A table; ``rows`` hold cells that are already HTML (escape text with ``esc``); ``numeric``: the
    columns aligned right."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: Sequence[str], nav: Sequence[tuple[str, str]] = ()) -> str:
    """A whole page: head (CSP, CSS), navigation links (path, text), ``body`` (HTML parts), the image check."""
    links = " ".join(link(path, text) for path, text in nav)
    return "\n".join([
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<nav>{links}</nav>" if links else "", f"<h1>{esc(title)}</h1>", *body,
        f"<script>{SCRIPT}</script>", "</body>", "</html>", ""])


__all__ = ["DASH", "bar", "esc", "figure", "href", "image", "link", "num", "page", "pct", "table"]
