"""Write a table as CSV (full precision), Markdown and self-contained HTML (formatted)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from enginebench.report.columns import Column

BLANK = "—"  # shown for a value that was not measured

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1rem;
       color: #1a1a1a; }
table.eb { border-collapse: collapse; font-size: 13px; }
table.eb caption { text-align: left; font-weight: 600; font-size: 15px; padding: 0 0 .5rem; }
table.eb th, table.eb td { padding: 4px 8px; border-bottom: 1px solid #e3e3e3; }
table.eb th { background: #f3f5f7; text-align: left; vertical-align: bottom;
              position: sticky; top: 0; }
table.eb td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.eb td.hash { font-family: ui-monospace, Menlo, Consolas, monospace; }
table.eb tbody tr:nth-child(even) { background: #fafbfc; }
table.eb tr.warn { background: #fff4e0 !important; }
table.eb tr.missing td { color: #8a8a8a; }
table.eb tr.group-start td { border-top: 2px solid #b8c0c8; }
p.note, ul.note { font-size: 12px; color: #555; max-width: 60rem; }
"""


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_cell(col: Column, value: Any) -> str:
    """Human formatting: counts with thousands separators, ms/tok/s with 2 decimals,
    req/s with 3, hashes shortened to 12 characters."""
    if _is_blank(value) or value == "":
        return BLANK
    if col.kind == "load":
        if isinstance(value, str):
            return value
        return "inf" if math.isinf(value) else f"{value:g}"
    if col.kind == "int":
        return f"{int(value):,d}"
    if col.kind in ("sec", "tok", "ms"):
        return f"{float(value):,.2f}"
    if col.kind in ("req", "ratio"):
        return f"{float(value):,.3f}"
    if col.kind == "hash":
        return str(value)[:12]
    return str(value)


def csv_frame(frame: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """The table with display headers and typed values (integers stay integers)."""
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        values = frame[col.key] if col.key in frame else pd.Series(pd.NA, index=frame.index)
        if col.kind == "int":
            values = pd.to_numeric(values, errors="coerce").round().astype("Int64")
        out[col.header] = values
    return out


def write_csv(frame: pd.DataFrame, columns: Sequence[Column], path: Path) -> None:
    csv_frame(frame, columns).to_csv(path, index=False, na_rep="", float_format="%.10g")


def to_markdown(frame: pd.DataFrame, columns: Sequence[Column], notes: Sequence[str] = ()) -> str:
    rows = [
        [format_cell(c, row.get(c.key)).replace("|", "\\|") for c in columns]
        for row in _records(frame)
    ]
    align = ["right" if c.numeric else "left" for c in columns]
    text = tabulate(
        rows,
        headers=[c.header for c in columns],
        tablefmt="github",
        colalign=align,
        disable_numparse=True,  # keep our formatting (tabulate would reformat "2,014.37")
    )
    return text + "\n" + "".join(f"\n{n}\n" for n in notes)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        dict(zip(frame.columns, values, strict=True)) for values in frame.itertuples(index=False)
    ]


def to_html(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    title: str,
    row_classes: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A complete HTML document holding one table (inline CSS, no scripts, no external files)."""
    esc = html.escape
    head = "".join(f"<th>{esc(c.header)}</th>" for c in columns)
    body = []
    for i, row in enumerate(_records(frame)):
        cells = []
        for c in columns:
            value = row.get(c.key)
            shown = esc(format_cell(c, value))
            if c.kind == "hash" and not _is_blank(value):
                cells.append(f'<td class="hash" title="{esc(str(value))}">{shown}</td>')
            else:
                cells.append(f'<td class="{"num" if c.numeric else "text"}">{shown}</td>')
        cls = row_classes[i] if row_classes else ""
        attr = f' class="{esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>{''.join(cells)}</tr>")
    if row_classes and any("warn" in c for c in row_classes):
        notes = [*notes, "Highlighted rows had failed requests or short outputs."]
    note_html = ""
    if notes:
        note_html = '<ul class="note">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>\n'
        f"<style>{CSS}</style></head>\n<body>\n"
        f'<table class="eb"><caption>{esc(title)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>\n"
        f"{note_html}\n</body></html>\n"
    )


def write_all(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    title: str,
    out_csv: Path,
    out_md: Path,
    out_html: Path,
    row_classes: Sequence[str] | None = None,
    notes: Sequence[str] = (),
    csv_columns: Sequence[Column] | None = None,
) -> None:
    """CSV, Markdown (`# title`, table, notes) and HTML of one table; parents created.
    `csv_columns`: the CSV's columns when they differ from the shown ones."""
    for path in (out_csv, out_md, out_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csv(frame, columns if csv_columns is None else csv_columns, Path(out_csv))
    Path(out_md).write_text(f"# {title}\n\n" + to_markdown(frame, columns, notes))
    Path(out_html).write_text(to_html(frame, columns, title, row_classes, notes))
