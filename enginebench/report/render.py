"""Write a table as CSV (full precision), Markdown and self-contained HTML (formatted; from the
Jinja2 template in templates/)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from tabulate import tabulate

from enginebench.metric_registry import CI_SUFFIX, Column

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
    if col.kind == "int":  # a mean over repeats may not be whole
        number = float(value)
        return f"{int(number):,d}" if number.is_integer() else f"{number:,.1f}"
    if col.kind in ("sec", "tok", "ms"):
        return f"{float(value):,.2f}"
    if col.kind == "num":
        return f"{float(value):,.1f}"
    if col.kind == "sci":
        return f"{float(value):.2e}"
    if col.kind in ("req", "ratio"):
        return f"{float(value):,.3f}"
    if col.kind == "hash":
        return str(value)[:12]
    return str(value)


def format_shown(col: Column, row: dict[str, Any]) -> str:
    """A cell as shown: its value, and `± half-width` where the row carries a 95% confidence
    interval for it (a mean over repeats)."""
    text = format_cell(col, row.get(col.key))
    ci = row.get(col.key + CI_SUFFIX)
    # an interval of width zero (every repeat sent 64 prompts) says nothing: left out
    if col.numeric and col.kind != "load" and not _is_blank(ci) and ci != 0 and text != BLANK:
        return f"{text} ± {format_cell(col, ci)}"
    return text


def csv_frame(frame: pd.DataFrame, columns: Sequence[Column]) -> pd.DataFrame:
    """The table with display headers and typed values (integers stay integers)."""
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        values = frame[col.key] if col.key in frame else pd.Series(pd.NA, index=frame.index)
        numbers = pd.to_numeric(values, errors="coerce") if col.kind == "int" else None
        if numbers is not None and (numbers.dropna() % 1 == 0).all():
            values = numbers.round().astype("Int64")
        out[col.header] = values
    return out


def write_csv(frame: pd.DataFrame, columns: Sequence[Column], path: Path) -> None:
    csv_frame(frame, columns).to_csv(path, index=False, na_rep="", float_format="%.10g")


def to_markdown(frame: pd.DataFrame, columns: Sequence[Column], notes: Sequence[str] = ()) -> str:
    rows = [[format_shown(c, row).replace("|", "\\|") for c in columns] for row in _records(frame)]
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


_TEMPLATES = Environment(
    loader=PackageLoader("enginebench.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Table:
    """One table of an HTML page: its rows as shown, with each row's CSS classes."""

    frame: pd.DataFrame
    columns: Sequence[Column]
    title: str
    row_classes: Sequence[str] | None = None
    notes: Sequence[str] = field(default_factory=tuple)

    def context(self) -> dict[str, Any]:
        rows = []
        for i, row in enumerate(_records(self.frame)):
            cells = []
            for c in self.columns:
                value = row.get(c.key)
                hashed = c.kind == "hash" and not _is_blank(value)
                cells.append(
                    {
                        "text": format_shown(c, row),
                        "cls": "hash" if hashed else ("num" if c.numeric else "text"),
                        "title": str(value) if hashed else None,
                    }
                )
            rows.append({"cells": cells, "cls": self.row_classes[i] if self.row_classes else ""})
        notes = list(self.notes)
        if self.row_classes and any("warn" in c for c in self.row_classes):
            notes.append(
                "Highlighted rows: not a steady-state measurement (validity), or failed "
                "requests, short outputs or unrequested cache hits."
            )
        return {
            "title": self.title,
            "headers": [c.header for c in self.columns],
            "rows": rows,
            "notes": notes,
        }


def page_html(title: str, tables: Sequence[Table], css: str = CSS) -> str:
    """A complete HTML document holding `tables` (inline CSS, no scripts, no external files)."""
    template = _TEMPLATES.get_template("tables.html.j2")
    # the stylesheet is ours, not data: inserted as is (a browser does not decode entities in
    # <style>, so escaping it would break `"Segoe UI"`)
    return template.render(title=title, css=Markup(css), tables=[t.context() for t in tables])


def to_html(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    title: str,
    row_classes: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A complete HTML document holding one table."""
    return page_html(title, [Table(frame, columns, title, row_classes, notes)])


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
    html_before: Sequence[Table] = (),
) -> None:
    """CSV, Markdown (`# title`, table, notes) and HTML of one table; parents created.
    `csv_columns`: the CSV's columns when they differ from the shown ones; `html_before`:
    tables the HTML page shows first."""
    for path in (out_csv, out_md, out_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csv(frame, columns if csv_columns is None else csv_columns, Path(out_csv))
    Path(out_md).write_text(f"# {title}\n\n" + to_markdown(frame, columns, notes))
    table = Table(frame, columns, title, row_classes, notes)
    Path(out_html).write_text(page_html(title, [*html_before, table]))
