"""JSON files as the project writes them: indented, keys sorted unless the order means something
(stable bytes, so stable hashes), replaced atomically (a reader or an interrupted job never leaves
half a file)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]


def write_json(path: PathLike, data: Any, *, sort_keys: bool = True) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


class WriteFailed(OSError):
    """A file that could not be written (a full disk, a quota, a read-only folder): one line
    naming the path, the cause, and the space it needed beside the space left."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_text(path: PathLike, text: str) -> None:
    """`text` as the file's whole content, replaced atomically (its folder made); a failed
    write leaves neither half a file nor its temporary one and raises WriteFailed."""
    out = Path(path)
    tmp = out.with_name(f"{out.name}.tmp")
    data = text.encode()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        free = "unknown"
        with contextlib.suppress(OSError):
            free = f"{shutil.disk_usage(out.parent).free:,} bytes"
        raise WriteFailed(
            exc.errno,
            f"cannot write {out}: {exc.strerror or exc} ({len(data):,} bytes to write, "
            f"{free} free there); free some space (or point the results elsewhere) and run again",
        ) from exc


def read_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text())
