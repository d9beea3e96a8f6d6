"""weights_sha256: what a server loads, hashed once per content (the cache), changes noticed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from enginebench.models import files
from enginebench.models.files import files_digest, hash_tree, weights_sha256


def test_file_and_folder_hashes(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" * 1000)
    assert weights_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w" * 100)
    assert weights_sha256(d) == files_digest(hash_tree(d))
    assert weights_sha256(tmp_path / "absent") is None


def test_cache_reads_once_and_notices_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"a" * 4096)
    cache = tmp_path / "cache"
    first = weights_sha256(f, cache)
    assert first == hashlib.sha256(b"a" * 4096).hexdigest() and len(list(cache.iterdir())) == 1

    def no_read(path: object) -> str:
        raise AssertionError("read again although nothing changed")

    monkeypatch.setattr(files, "sha256_file", no_read)
    assert weights_sha256(f, cache) == first  # served from the cache
    monkeypatch.undo()
    f.write_bytes(b"b" * 4096)  # same size, new content and mtime
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert weights_sha256(f, cache) == hashlib.sha256(b"b" * 4096).hexdigest()


def test_cache_covers_every_file_of_a_folder(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    d.mkdir()
    (d / "a.safetensors").write_bytes(b"1" * 10)
    cache = tmp_path / "cache"
    before = weights_sha256(d, cache)
    (d / "b.safetensors").write_bytes(b"2" * 10)  # a file added: a new identity
    after = weights_sha256(d, cache)
    assert after != before and after == files_digest(hash_tree(d))
