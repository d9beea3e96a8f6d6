"""A Hugging Face hub cache built on disk, so the real hub code resolves repos offline."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_snapshot(
    cache: Path, repo: str, commit: str, src_dir: Path, ref: str | None = None
) -> None:
    """Put every file of src_dir into `cache` as snapshot `commit` of `repo` (blobs + links)."""
    base = cache / f"models--{repo.replace('/', '--')}"
    for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = base / "snapshots" / commit / path.relative_to(src_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / ref).write_text(commit)
