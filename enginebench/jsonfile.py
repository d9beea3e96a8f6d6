"""JSON files as the project writes them: indented, keys sorted unless the order means something
(stable bytes, so stable hashes), replaced atomically (a reader or an interrupted job never leaves
half a file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]


def write_json(path: PathLike, data: Any, *, sort_keys: bool = True) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


def write_text(path: PathLike, text: str) -> None:
    """`text` as the file's whole content, replaced atomically (its folder made)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


def read_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text())
