"""Board tables: Markdown, CSV and one static HTML page (sortable columns, no network access).

Everything here is a pure function of validated entries (their re-scored numbers) and the board
protocols: building twice from the same entries gives byte-identical files.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .boards import Board, Boards, Column, column_label
from .validate import ValidEntry

DASH = "–"


@dataclass
class Row:
    """One ranked line of a board."""

    rank: int | None
    entry: ValidEntry
    values: dict[str, dict[str, Any]]


@dataclass
class HeadlineRow:
    rank: int | None
    label: str
    weights_sha256: str
    random_init: bool
    values: dict[str, dict[str, Any] | None]


def _sort_key(value: float | None, higher_is_better: bool, label: str) -> tuple:
    if value is None:
        return (1, 0.0, label)
    return (0, -value if higher_is_better else value, label)


def _ranks(values: Sequence[float | None]) -> list[int | None]:
    """Competition ranking (1, 2, 2, 4) over values already in rank order; no value, no rank."""
    ranks: list[int | None] = []
    for i, value in enumerate(values):
        if value is None:
            ranks.append(None)
        elif i and values[i - 1] == value:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def board_rows(board: Board, entries: Sequence[ValidEntry]) -> list[Row]:
    """The board's entries sorted by its declared column (missing values last, ties by model label)."""
    column = board.sort_column
    mine = [e for e in entries if e.board.id == board.id]
    mine.sort(key=lambda e: _sort_key(e.headline[column.key]["value"], column.higher_is_better, e.model["label"]))
    ranks = _ranks([e.headline[column.key]["value"] for e in mine])
    return [Row(rank, e, e.headline) for rank, e in zip(ranks, mine)]


def headline_rows(boards: Boards, entries: Sequence[ValidEntry]) -> list[HeadlineRow]:
    """One row per model (label and weights): each headline column from that model's entry on its board."""
    rows: dict[tuple[str, str], HeadlineRow] = {}
    for entry in entries:
        key = (entry.model["label"], entry.model["weights_sha256"])
        row = rows.setdefault(key, HeadlineRow(None, key[0], key[1], entry.model["random_init"],
                                               {h.key: None for h in boards.headline}))
        for h in boards.headline:
            if h.board == entry.board.id:
                row.values[h.key] = entry.headline[h.column]
    if not boards.headline:
        return []
    sort = boards.headline_column(boards.headline_sort)
    better = boards.board(sort.board).column(sort.column).higher_is_better

    def value(row: HeadlineRow) -> float | None:
        cell = row.values[sort.key]
        return None if cell is None else cell.get("value")

    ordered = sorted(rows.values(), key=lambda r: _sort_key(value(r), better, r.label))
    for rank, row in zip(_ranks([value(r) for r in ordered]), ordered):
        row.rank = rank
    return ordered


# -- formatting ----------------------------------------------------------------------------------


def unit(column: Column) -> str:
    return "pp" if column.points else "%"


def format_value(column: Column, cell: dict[str, Any] | None, *, with_ci: bool = True) -> str:
    if not cell or cell.get("value") is None:
        return DASH
    value = 100 * cell["value"]
    text = f"{value:+.1f}" if column.points else f"{value:.1f}"
    ci = cell.get("ci95")
    if with_ci and ci:
        text += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return text


def cell_title(column: Column, cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("value") is None:
        return "no value"
    parts = [f"{format_value(column, cell, with_ci=False)} {unit(column)}"]
    if cell.get("ci95"):
        parts.append(f"95% Wilson CI {100 * cell['ci95'][0]:.1f}-{100 * cell['ci95'][1]:.1f}")
    if cell.get("n") is not None:
        parts.append(f"n = {cell['n']}")
    if cell.get("stages") is not None:
        parts.append(f"mean over {cell['stages']} targeted stages")
    return ", ".join(parts)


def model_text(model: dict[str, Any]) -> str:
    return model["label"] + (" (random weights)" if model["random_init"] else "")


def _date(entry: ValidEntry) -> str:
    return str(entry.entry["submitted"]["date"])[:10]


def _md(text: Any) -> str:
    """Markdown table cell text: no pipes, no newlines, no HTML."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _headline_column(boards: Boards, key: str) -> Column:
    h = boards.headline_column(key)
    return boards.board(h.board).column(h.column)


def headline_labels(boards: Boards) -> dict[str, str]:
    """Headline labels, with ``{eps}`` filled from the published suite like board column labels."""
    out = {}
    for h in boards.headline:
        board = boards.board(h.board)
        out[h.key] = column_label(board, board.column(h.column), h.label)
    return out


# -- Markdown --------------------------------------------------------------------------------------


def _protocol_line(board: Board, published: str) -> str:
    d = board.dataset
    return (f"board `{board.id}` · data set `{d.name}` ({d.split}, n = {d.n}, seed {d.seed}, sample hash "
            f"`{d.sample_hash[:12]}`) · suite `{board.suite}` (sha256 `{published[:12]}`) · head `{board.head}`"
            + (f" · prompt \"{board.prompt}\"" if board.prompt else ""))


def markdown(boards: Boards, entries: Sequence[ValidEntry], published: dict[str, str]) -> str:
    out = ["# typobench leaderboards", "",
           "Generated by `typobench leaderboard build` from the entry files in `leaderboards/entries/`: do not edit "
           "by hand. Every number is re-scored from the entry's own per-sample predictions. Rates are percentages "
           "with 95% Wilson intervals; lifts are percentage points. See `leaderboards/README.md` to submit.", ""]
    if boards.headline:
        labels = headline_labels(boards)
        sort = boards.headline_column(boards.headline_sort)
        out += ["## Headline", "",
                f"One row per model (name and weights), each column from the board named under it; sorted by "
                f"{labels[sort.key]}.", ""]
        keys = [h.key for h in boards.headline]
        header = ["rank", "model"] + [f"{labels[k]} ({unit(_headline_column(boards, k))})" for k in keys] + ["weights"]
        out += ["| " + " | ".join(header) + " |", "|" + "|".join(["---:", "---"] + ["---:"] * len(keys) + ["---"]) + "|"]
        for row in headline_rows(boards, entries):
            cells = [str(row.rank or DASH), _md(row.label + (" (random weights)" if row.random_init else ""))]
            cells += [format_value(_headline_column(boards, k), row.values[k], with_ci=False) for k in keys]
            cells.append(f"`{row.weights_sha256[:12]}`")
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "Columns: " + "; ".join(f"{labels[h.key]} from board `{h.board}`" for h in boards.headline) + ".", ""]
    for board in boards.boards.values():
        sort = board.sort_column
        out += [f"## {board.title}", "", _protocol_line(board, published[board.id]), ""]
        if board.description:
            out += [board.description, ""]
        out += [f"Sorted by {column_label(board, sort)} ({'higher' if sort.higher_is_better else 'lower'} is better). "
                f"Reproduce: `{board.reproduce}`", ""]
        header = ["rank", "model"] + [f"{column_label(board, c)} ({unit(c)})" for c in board.columns] + \
            ["weights", "submitted by", "date", "typobench"]
        out += ["| " + " | ".join(header) + " |",
                "|" + "|".join(["---:", "---"] + ["---:"] * len(board.columns) + ["---"] * 4) + "|"]
        rows = board_rows(board, entries)
        for row in rows:
            e = row.entry
            cells = [str(row.rank or DASH), _md(model_text(e.model))]
            cells += [format_value(c, row.values[c.key]) for c in board.columns]
            cells += [f"`{e.model['weights_sha256'][:12]}`", _md(e.entry["submitted"]["by"]), _date(e),
                      _md(e.entry["versions"]["typobench"])]
            out.append("| " + " | ".join(cells) + " |")
        if not rows:
            out.append("| " + " | ".join([DASH, "(no entries yet)"] + [""] * (len(header) - 2)) + " |")
        notes = [f"{column_label(board, c)}: {c.note}" for c in board.columns if c.note]
        out += ["", *(["Notes: " + " ".join(notes), ""] if notes else [])]
    return "\n".join(out).rstrip() + "\n"


# -- CSV -------------------------------------------------------------------------------------------


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def entries_csv(boards: Boards, entries: Sequence[ValidEntry]) -> str:
    """Long format: one row per entry and column; numbers are fractions (0.125 = 12.5%)."""
    rows: list[list[Any]] = [["board", "rank", "model", "tag", "weights_sha256", "random_init", "column", "value",
                              "ci95_low", "ci95_high", "n", "submitted_by", "date", "typobench"]]
    for board in boards.boards.values():
        for row in board_rows(board, entries):
            e = row.entry
            for column in board.columns:
                cell = row.values[column.key]
                ci = cell.get("ci95") or [None, None]
                rows.append([board.id, row.rank, e.model["label"], e.model["tag"], e.model["weights_sha256"],
                             e.model["random_init"], column.key, cell.get("value"), ci[0], ci[1],
                             cell.get("n", cell.get("stages")), e.entry["submitted"]["by"], _date(e),
                             e.entry["versions"]["typobench"]])
    return _csv(rows)


def headline_csv(boards: Boards, entries: Sequence[ValidEntry]) -> str:
    """Wide format: one row per model, one column per headline number (fractions; empty = no entry)."""
    keys = [h.key for h in boards.headline]
    rows: list[list[Any]] = [["rank", "model", "weights_sha256", "random_init", *keys]]
    for row in headline_rows(boards, entries):
        rows.append([row.rank, row.label, row.weights_sha256, row.random_init,
                     *[(row.values[k] or {}).get("value") for k in keys]])
    return _csv(rows)


# -- HTML ------------------------------------------------------------------------------------------


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
    parts = ["<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
             'script-src \'unsafe-inline\'">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>typobench leaderboards</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             "<h1>typobench leaderboards</h1>",
             '<p class="meta">Generated by <code>typobench leaderboard build</code> from the entry files: every number '
             "is re-scored from the entry's own per-sample predictions. Rates in %, with 95% Wilson intervals; lifts "
             "in percentage points. Click a column header to sort (again to reverse).</p>"]
    if boards.headline:
        labels = headline_labels(boards)
        keys = [h.key for h in boards.headline]
        sort = boards.headline_column(boards.headline_sort)
        sort_dir = "desc" if _headline_column(boards, sort.key).higher_is_better else "asc"
        parts += ["<section>", "<h2>Headline</h2>",
                  f'<p class="meta">One row per model; each column from the board named in its tooltip. Sorted by '
                  f"{html.escape(labels[sort.key])}.</p>",
                  f'<div class="scroll"><table class="board" id="headline" data-sort-key="{_attr(sort.key)}" '
                  f'data-sort-dir="{sort_dir}">',
                  "<thead><tr>", _th("rank", "rank", "num", "asc"), _th("model", "model", "text", "asc")]
        for key in keys:
            column = _headline_column(boards, key)
            parts.append(_th(key, f"{labels[key]} ({unit(column)})", "num",
                             "desc" if column.higher_is_better else "asc",
                             f"board {boards.headline_column(key).board}"))
        parts += [_th("weights", "weights", "text", "asc"), "</tr></thead>", "<tbody>"]
        for row in headline_rows(boards, entries):
            cells = [_rank_td(row.rank),
                     _text_td(row.label + (" (random weights)" if row.random_init else ""), row.label)]
            cells += [_num_td(_headline_column(boards, k), row.values[k], with_ci=False) for k in keys]
            cells.append(f"<td><code>{html.escape(row.weights_sha256[:12])}</code></td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts += ["</tbody>", "</table></div>", "</section>"]
    for board in boards.boards.values():
        sort = board.sort_column
        parts += ["<section>", f"<h2>{html.escape(board.title)}</h2>",
                  f'<p class="meta">{_protocol_html(board, published[board.id])}</p>']
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
            cells = [_rank_td(row.rank), _text_td(model_text(e.model), e.model["label"])]
            cells += [_num_td(c, row.values[c.key]) for c in board.columns]
            cells += [f"<td><code>{html.escape(e.model['weights_sha256'][:12])}</code></td>",
                      _text_td(str(e.entry["submitted"]["by"])), _text_td(_date(e)),
                      _text_td(str(e.entry["versions"]["typobench"]))]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts += ["</tbody>", "</table></div>"]
        if not rows:
            parts.append('<p class="meta">No entries yet.</p>')
        parts.append("</section>")
    parts += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _protocol_html(board: Board, published: str) -> str:
    d = board.dataset
    text = (f"board {board.id} · data set {d.name} ({d.split}, n = {d.n}, seed {d.seed}, sample hash "
            f"{d.sample_hash[:12]}) · suite {board.suite} (sha256 {published[:12]}) · head {board.head}"
            + (f' · prompt "{board.prompt}"' if board.prompt else ""))
    return html.escape(text)


def render_all(boards: Boards, entries: Sequence[ValidEntry], published: dict[str, str]) -> dict[str, str]:
    """File name -> content of every generated table."""
    return {
        "leaderboards.md": markdown(boards, entries, published),
        "leaderboards.csv": entries_csv(boards, entries),
        "headline.csv": headline_csv(boards, entries),
        "index.html": page(boards, entries, published),
    }
