"""Where a model comes from: a hub snapshot (revision pinned to a commit), a GGUF file, a path.

Downloads go through huggingface_hub, so HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE / HF_TOKEN apply
as usual. The token is read by huggingface_hub itself and never recorded. Outputs are symlinks into
the hub cache (no second copy of the weights); provenance records the resolved commit.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from enginebench.models.files import atomic_dir, files_digest, hash_tree, sha256_file

_SHA = re.compile(r"[0-9a-f]{40}")
# GGUF, and the legacy GGML/GGMF/GGJT magics as they appear on disk (little-endian uint32).
_MAGICS = {b"GGUF": "gguf", b"lmgg": "ggml", b"fmgg": "ggmf", b"tjgg": "ggjt"}
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin")
# What AutoTokenizer may read; config.json too, as some tokenizers are chosen by model_type.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json", "chat_template.jinja",
    "*.tiktoken", "config.json",
)  # fmt: skip


class ModelSourceError(RuntimeError):
    """A model source that cannot be resolved; the message is one line for the log."""


def fetch_hf(
    repo_id: str,
    revision: str,
    out: Path,
    allow_patterns: list[str] | None = None,
    *,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Resolve repo_id@revision into the hub cache; out becomes a dir of symlinks into it.

    A dir of per-file links (not one link to the snapshot) holds exactly the allowed files even
    when the cached snapshot holds more, and can be replaced without touching the cache.
    """
    try:
        snap = Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=allow_patterns, cache_dir=cache_dir
            )
        )
    except (EntryNotFoundError, OSError) as e:
        raise ModelSourceError(f"hf {repo_id}@{revision}: {_why(e)}") from e
    commit = _commit_of(snap, 0)
    files = [
        p.relative_to(snap).as_posix()
        for p in sorted(snap.rglob("*"))
        if p.is_file() and _allowed(p.relative_to(snap).as_posix(), allow_patterns)
    ]
    if not files:
        raise ModelSourceError(f"hf {repo_id}@{revision}: no files match {allow_patterns}")
    with atomic_dir(Path(out), overwrite=True) as tmp:
        for rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).symlink_to(snap / rel)
    return {
        "source": "hf",
        "repo_id": repo_id,
        "revision": revision,
        "commit": commit,
        "allow_patterns": allow_patterns,
        "files": {rel: _blob_id(snap / rel) for rel in files},
    }


def fetch_gguf(
    repo_id: str, filename: str, revision: str, dest: Path, *, cache_dir: Path | None = None
) -> dict[str, Any]:
    """Fetch one GGUF file from a hub repo; dest becomes a symlink to the cached file."""
    try:
        path = Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except (EntryNotFoundError, OSError) as e:
        raise ModelSourceError(f"gguf {repo_id}/{filename}@{revision}: {_why(e)}") from e
    fmt = _check_magic(path)
    commit = _commit_of(path, len(Path(filename).parts))
    _link(path, Path(dest))
    return {
        "source": "gguf",
        "repo_id": repo_id,
        "filename": filename,
        "revision": revision,
        "commit": commit,
        "format": fmt,
        "files": {filename: _blob_id(path)},
    }


def fetch_tokenizer(
    spec: str, out: Path, *, revision: str = "main", cache_dir: Path | None = None
) -> dict[str, Any]:
    """The tokenizer files of a local model dir (copied) or a hub repo "ORG/NAME[@REV]" (linked),
    for models served from a GGUF file that the client must still count tokens for."""
    if Path(spec).is_dir():
        src = Path(spec)
        names = sorted({p.name for pat in TOKENIZER_FILES for p in src.glob(pat) if p.is_file()})
        if not any(n in names for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
            raise ModelSourceError(
                f"tokenizer {spec}: no tokenizer.json/tokenizer.model/vocab.json"
            )
        with atomic_dir(Path(out), overwrite=True) as tmp:
            for n in names:
                shutil.copyfile(src / n, tmp / n)
        files = {n: sha256_file(Path(out) / n) for n in names}
        return {"source": "local", "path": str(src.resolve()), "files": files}
    repo_id, _, rev = spec.partition("@")
    return fetch_hf(repo_id, rev or revision, out, list(TOKENIZER_FILES), cache_dir=cache_dir)


def local(path: Path, *, hash_files: bool = True) -> dict[str, Any]:
    """Validate a local HF model dir or GGUF/GGML file and record what it holds."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"local {path}: no config.json, not a Hugging Face model dir")
        if not any(any(path.glob(p)) for p in _WEIGHTS):
            raise ModelSourceError(f"local {path}: no *.safetensors or pytorch_model*.bin weights")
        files = hash_tree(path) if hash_files else {}
        return {"source": "local", "path": str(path.resolve()), "format": "hf", "files": files}
    if path.is_file():
        fmt = _check_magic(path)
        files = {path.name: sha256_file(path)} if hash_files else {}
        return {"source": "local", "path": str(path.resolve()), "format": fmt, "files": files}
    raise ModelSourceError(f"local {path}: no such file or directory")


def _why(e: Exception) -> str:
    kind = {  # most specific first: LocalEntryNotFoundError is also an EntryNotFoundError
        LocalEntryNotFoundError: "not in the local hub cache, and downloading is off or failed",
        RepositoryNotFoundError: "repository not found (or gated: set HF_TOKEN)",
        RevisionNotFoundError: "revision not found",
        EntryNotFoundError: "file not found in the repository",
    }
    for cls, msg in kind.items():
        if isinstance(e, cls):
            return msg
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _commit_of(path: Path, depth: int) -> str:
    """The snapshot folder's name is the commit sha: snapshots/<sha>/<filename with depth parts>."""
    snap = path.parents[depth - 1] if depth else path
    if snap.parent.name != "snapshots" or not _SHA.fullmatch(snap.name):
        raise ModelSourceError(f"{path} is not inside a hub cache snapshot folder")
    return snap.name


def _allowed(rel: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatch(rel, p) for p in patterns)


def _blob_id(p: Path) -> str:
    # Blob names are the sha256 of LFS files (weights) or the git blob sha1: no re-hashing of GBs.
    return Path(os.path.realpath(p)).name if p.is_symlink() else sha256_file(p)


def _check_magic(path: Path) -> str:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in _MAGICS:
        raise ModelSourceError(f"{path}: not a GGUF/GGML file (magic {magic!r})")
    return _MAGICS[magic]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        raise ModelSourceError(f"{link} exists and is not a symlink; remove it first")
    link.symlink_to(target)


def model_sha(source: dict[str, Any]) -> str | None:
    """One identity for a model's weights, from its source record: the hub commit when there is
    one, else a sha256 over the sorted per-file hashes (synthetic and local models)."""
    if source.get("commit"):
        return str(source["commit"])
    files = source.get("files")
    if isinstance(files, dict) and files:
        return files_digest(files)
    return source.get("sha256")
