"""File hashing and atomic directory output, shared by model preparation and engine builds."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enginebench.jsonfile import write_json
from enginebench.provenance import sha256_file

__all__ = ["atomic_dir", "file_lock", "files_digest", "hash_tree", "sha256_file", "weights_sha256"]


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of each regular file under root (symlinks followed), by sorted relative path."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = sha256_file(p)
    return out


def files_digest(files: dict[str, str]) -> str:
    """One sha256 for a set of files: over their sorted {relative path: file hash} map."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def weights_sha256(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> str | None:
    """What a server loads, hashed: a file's sha256, or a folder's files_digest of hash_tree
    (for a synthetic or local model the same value as its model sha). None when absent.
    `cache_dir`: remember the result under the files' identity (resolved path, size and mtime of
    every file), so that the many sweeps of one model read its gigabytes once; any change to a
    file changes the identity."""
    p = Path(path)
    if not (p.is_file() or p.is_dir()):
        return None
    entry = Path(cache_dir) / f"{_stat_identity(p)}.json" if cache_dir is not None else None
    if entry is not None and entry.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError):
            return str(json.loads(entry.read_text())["sha256"])
    digest = sha256_file(p) if p.is_file() else files_digest(hash_tree(p))
    if entry is not None:
        write_json(entry, {"path": str(p.resolve()), "sha256": digest})
    return digest


def _stat_identity(path: Path) -> str:
    files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    stats = [(str(q.resolve()), st.st_size, st.st_mtime_ns) for q in files for st in [q.stat()]]
    return hashlib.sha256(json.dumps([str(path.resolve()), stats]).encode()).hexdigest()


@contextmanager
def atomic_dir(dest: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a scratch dir beside dest that becomes dest only if the block succeeds.

    A half-written model dir must never look complete to Snakemake or to a cached fixture.
    """
    dest = Path(dest)
    if not overwrite and (dest.is_file() or (dest.is_dir() and any(dest.iterdir()))):
        raise FileExistsError(f"{dest} exists and is not empty (pass overwrite=True to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        # mkdtemp makes 0700 and safetensors writes 0600: engines may run as other users
        for p in [tmp, *tmp.rglob("*")]:
            if not p.is_symlink():
                os.chmod(p, p.stat().st_mode | (0o055 if p.is_dir() else 0o044))
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on path (created if needed); waits for the holder to finish.

    Two builds in one CMake build dir, or two test sessions filling one cache entry, would race.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
