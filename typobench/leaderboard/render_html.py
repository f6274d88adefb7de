"""Board tables as one self-contained HTML page: sortable columns, inline CSS and JS, no network access."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from typobench.leaderboard.boards import Board, Boards, Column, column_label
from typobench.leaderboard.rows import (
    DASH,
    board_rows,
    cell_title,
    format_value,
    headline_labels,
    headline_rows,
    headline_source_column,
    model_text,
    submitted_date,
    unit,
)
from typobench.leaderboard.validate import ValidEntry


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:88em;
  padding:0 1em;color:#1b1b1b}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em}
p.meta{color:#555;font-size:.9em}
table.board{border-collapse:collapse;margin:.5em 0 1em;font-size:.92em}
table.board th,table.board td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;white-space:nowrap}
table.board td.num{text-align:right;font-variant-numeric:tabular-nums}
table.board th{background:#f3f3f3;cursor:pointer;user-select:none;position:relative;padding-right:1.4em;
  white-space:normal;vertical-align:bottom;max-width:10em}
div.scroll{overflow-x:auto}
table.board th:hover,table.board th:focus{background:#e4e9f2;outline:none}
table.board th[aria-sort=ascending]::after{content:"\\25B2";position:absolute;right:.3em;font-size:.7em;bottom:.55em}
table.board th[aria-sort=descending]::after{content:"\\25BC";position:absolute;right:.3em;font-size:.7em;bottom:.55em}
table.board tbody tr:nth-child(even){background:#fafafa}
span.ci{color:#777;font-size:.85em}
code{background:#f3f3f3;padding:0 .2em}
"""

SCRIPT = """
(function () {
  "use strict";
  function value(row, index, type) {
    var cell = row.cells[index], raw = cell.getAttribute("data-value");
    if (type === "num") { return raw === null || raw === "" ? null : parseFloat(raw); }
    return (raw === null ? cell.textContent : raw).toLowerCase();
  }
  function sortTable(table, key, dir) {
    var heads = table.tHead.rows[0].cells, index = -1, type = "text", i;
    for (i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-key") === key) { index = i; type = heads[i].getAttribute("data-type"); }
    }
    if (index < 0) { return false; }
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, position) { row.setAttribute("data-position", position); });
    rows.sort(function (a, b) {
      var x = value(a, index, type), y = value(b, index, type);
      var pa = +a.getAttribute("data-position"), pb = +b.getAttribute("data-position");
      if (x === null || y === null) { return x === y ? pa - pb : (x === null ? 1 : -1); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return (dir === "desc" ? -c : c) || pa - pb;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    heads[index].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    table.setAttribute("data-sorted", key + ":" + dir);
    return true;
  }
  function clicked(event) {
    var th = event.currentTarget, table = th.closest("table"), key = th.getAttribute("data-key");
    var current = (table.getAttribute("data-sorted") || "").split(":");
    var dir = current[0] === key ? (current[1] === "asc" ? "desc" : "asc") : th.getAttribute("data-first");
    sortTable(table, key, dir);
  }
  var tables = document.querySelectorAll("table.board");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.addEventListener("click", clicked);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); th.click(); }
      });
    });
    sortTable(table, table.getAttribute("data-sort-key"), table.getAttribute("data-sort-dir"));
  });
  // #sort=TABLE:COLUMN[:asc|desc] opens the page sorted by another column, through the header's own click.
  var match = /^#sort=([^:]+):([^:]+)(?::(asc|desc))?$/.exec(decodeURIComponent(location.hash || ""));
  if (match) {
    var table = document.getElementById(match[1]);
    var th = table && table.querySelector('th[data-key="' + match[2].replace(/"/g, "") + '"]');
    for (var clicks = 0; th && clicks < 2; clicks++) {
      th.click();
      if (!match[3] || table.getAttribute("data-sorted") === match[2] + ":" + match[3]) { break; }
    }
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
"""


def _attr(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _th(key: str, label: str, type_: str, first: str, title: str = "") -> str:
    return (f'<th data-key="{_attr(key)}" data-type="{type_}" data-first="{first}" scope="col"'
            + (f' title="{_attr(title)}"' if title else "") + f">{html.escape(label)}</th>")


def _num_td(column: Column, cell: dict[str, Any] | None, *, with_ci: bool = True) -> str:
    value = None if not cell else cell.get("value")
    raw = "" if value is None else repr(float(value))
    text = format_value(column, cell, with_ci=False)
    ci = cell.get("ci95") if (with_ci and cell and value is not None) else None
    extra = f' <span class="ci">[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]</span>' if ci else ""
    return f'<td class="num" data-value="{raw}" title="{_attr(cell_title(column, cell))}">{html.escape(text)}{extra}</td>'


def _text_td(text: str, value: str | None = None) -> str:
    data = f' data-value="{_attr(value)}"' if value is not None else ""
    return f"<td{data}>{html.escape(text)}</td>"


def _rank_td(rank: int | None) -> str:
    return f'<td class="num" data-value="{"" if rank is None else rank}">{rank or DASH}</td>'


def page(boards: Boards, entries: Sequence[ValidEntry], published: dict[str, str]) -> str:
    """One self-contained HTML page: inline CSS and JS, no external resource (a CSP forbids any)."""
    parts = _page_head()
    if boards.headline:
        parts += _headline_section(boards, entries)
    for board in boards.boards.values():
        parts += _board_section(board, entries, published[board.id])
    parts += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _page_head() -> list[str]:
    """Everything before the first table: the document head, the title and what the numbers are."""
    return ["<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            'script-src \'unsafe-inline\'">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>typobench leaderboards</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
            "<h1>typobench leaderboards</h1>",
            '<p class="meta">Generated by <code>typobench leaderboard build</code> from the entry files: every number '
            "is re-scored from the entry's own per-sample predictions. Rates in %, with 95% Wilson intervals; lifts "
            "in percentage points. Click a column header to sort (again to reverse).</p>"]


def _headline_section(boards: Boards, entries: Sequence[ValidEntry]) -> list[str]:
    """The headline table: one row per model, one column per headline number."""
    labels = headline_labels(boards)
    keys = [h.key for h in boards.headline]
    sort = boards.headline_column(boards.headline_sort)
    sort_dir = "desc" if headline_source_column(boards, sort.key).higher_is_better else "asc"
    parts = ["<section>", "<h2>Headline</h2>",
             f'<p class="meta">One row per model; each column from the board named in its tooltip. Sorted by '
             f"{html.escape(labels[sort.key])}.</p>",
             f'<div class="scroll"><table class="board" id="headline" data-sort-key="{_attr(sort.key)}" '
             f'data-sort-dir="{sort_dir}">',
             "<thead><tr>", _th("rank", "rank", "num", "asc"), _th("model", "model", "text", "asc")]
    for key in keys:
        column = headline_source_column(boards, key)
        parts.append(_th(key, f"{labels[key]} ({unit(column)})", "num",
                         "desc" if column.higher_is_better else "asc",
                         f"board {boards.headline_column(key).board}"))
    parts += [_th("weights", "weights", "text", "asc"), "</tr></thead>", "<tbody>"]
    for row in headline_rows(boards, entries):
        cells = [_rank_td(row.rank),
                 _text_td(row.label + (" (random weights)" if row.random_init else ""), row.label)]
        cells += [_num_td(headline_source_column(boards, k), row.values[k], with_ci=False) for k in keys]
        cells.append(f"<td><code>{html.escape(row.weights_sha256[:12])}</code></td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts += ["</tbody>", "</table></div>", "</section>"]
    return parts


def _board_section(board: Board, entries: Sequence[ValidEntry], published: str) -> list[str]:
    """One board's table, under its protocol line, description and how to reproduce it."""
    sort = board.sort_column
    parts = ["<section>", f"<h2>{html.escape(board.title)}</h2>",
             f'<p class="meta">{_protocol_html(board, published)}</p>']
    if board.description:
        parts.append(f'<p class="meta">{html.escape(board.description)}</p>')
    parts += [f'<p class="meta">Sorted by {html.escape(column_label(board, sort))} '
              f"({'higher' if sort.higher_is_better else 'lower'} is better). Reproduce: "
              f"<code>{html.escape(board.reproduce)}</code></p>",
              f'<div class="scroll"><table class="board" id="{_attr(board.id)}" data-sort-key="{_attr(sort.key)}" '
              f'data-sort-dir="{"desc" if sort.higher_is_better else "asc"}">',
              "<thead><tr>", _th("rank", "rank", "num", "asc"), _th("model", "model", "text", "asc")]
    for column in board.columns:
        parts.append(_th(column.key, f"{column_label(board, column)} ({unit(column)})", "num",
                         "desc" if column.higher_is_better else "asc", column.note))
    parts += [_th("weights", "weights", "text", "asc"), _th("submitter", "submitted by", "text", "asc"),
              _th("date", "date", "text", "desc"), _th("typobench", "typobench", "text", "asc"),
              "</tr></thead>", "<tbody>"]
    rows = board_rows(board, entries)
    for row in rows:
        e = row.entry
        cells = [_rank_td(row.rank), _text_td(model_text(e.model, e.entry), e.model["label"])]
        cells += [_num_td(c, row.values[c.key]) for c in board.columns]
        cells += [f"<td><code>{html.escape(e.model['weights_sha256'][:12])}</code></td>",
                  _text_td(str(e.entry["submitted"]["by"])), _text_td(submitted_date(e)),
                  _text_td(str(e.entry["versions"]["typobench"]))]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts += ["</tbody>", "</table></div>"]
    if not rows:
        parts.append('<p class="meta">No entries yet.</p>')
    parts.append("</section>")
    return parts


def _protocol_html(board: Board, published: str) -> str:
    d = board.dataset
    file = f" (file attacks/{board.suite_file}.toml)" if board.suite_file else ""
    text = (f"board {board.id} · data set {d.name} ({d.split}, n = {d.n}, seed {d.seed}, sample hash "
            f"{d.sample_hash[:12]}) · suite {board.suite}{file} (sha256 {published[:12]}) · head {board.head}"
            + (f' · prompt "{board.prompt}"' if board.prompt else ""))
    return html.escape(text)
