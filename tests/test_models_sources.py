"""Model sources against a hand-built hub cache, fully offline (the real huggingface_hub code)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enginebench.models import sources
from enginebench.models.sources import ModelSourceError

SHA_OLD, SHA_NEW = "1" * 40, "2" * 40
REPO = "org/tiny"


def _add_snapshot(cache: Path, repo: str, commit: str, files: dict[str, bytes]) -> None:
    base = cache / f"models--{repo.replace('/', '--')}"
    for rel, data in files.items():
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = base / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two commits of org/tiny; refs/main -> the newer. Offline, so nothing can be downloaded."""
    cache = tmp_path / "hub"
    _add_snapshot(cache, REPO, SHA_OLD, {"config.json": b"{}", "model.safetensors": b"old"})
    _add_snapshot(
        cache,
        REPO,
        SHA_NEW,
        {
            "config.json": b'{"v": 2}',
            "model.safetensors": b"new",
            "tokenizer.json": b"{}",
            "gguf/tiny-Q4_K_M.gguf": b"GGUF\x03\x00\x00\x00rest",
            "notes.txt": b"not a model",
        },
    )
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text(SHA_NEW)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    return cache


def test_fetch_hf_resolves_branch_to_commit(hub_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "hf"
    info = sources.fetch_hf(REPO, "main", out, cache_dir=hub_cache)
    assert info["commit"] == SHA_NEW and info["revision"] == "main"
    assert (out / "config.json").read_bytes() == b'{"v": 2}'
    # LFS-style blob names are the sha256 of the content: recorded without re-reading it
    assert info["files"]["model.safetensors"] == hashlib.sha256(b"new").hexdigest()


def test_fetch_hf_pinned_commit_and_patterns(hub_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    info = sources.fetch_hf(REPO, SHA_OLD, out, allow_patterns=["*.json"], cache_dir=hub_cache)
    assert info["commit"] == SHA_OLD
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    # re-fetching another revision replaces the dir of links, the cache is untouched
    sources.fetch_hf(REPO, "main", out, allow_patterns=["*.json"], cache_dir=hub_cache)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "tokenizer.json"]


@pytest.mark.parametrize(
    ("repo", "revision"), [(REPO, "v9"), (REPO, "3" * 40), ("org/absent", "main")]
)
def test_fetch_hf_missing_is_one_clear_error(
    hub_cache: Path, tmp_path: Path, repo: str, revision: str
) -> None:
    with pytest.raises(ModelSourceError, match=r"not in the local hub cache") as e:
        sources.fetch_hf(repo, revision, tmp_path / "x", cache_dir=hub_cache)
    assert "\n" not in str(e.value) and revision in str(e.value)


def test_fetch_gguf(hub_cache: Path, tmp_path: Path) -> None:
    dest = tmp_path / "file" / "original"
    info = sources.fetch_gguf(REPO, "gguf/tiny-Q4_K_M.gguf", "main", dest, cache_dir=hub_cache)
    assert info["commit"] == SHA_NEW and info["format"] == "gguf"
    assert dest.is_symlink() and dest.read_bytes().startswith(b"GGUF")


def test_fetch_gguf_errors(hub_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"missing\.gguf.*not in the local hub cache"):
        sources.fetch_gguf(REPO, "missing.gguf", "main", tmp_path / "a", cache_dir=hub_cache)
    with pytest.raises(ModelSourceError, match="not a GGUF/GGML file"):
        sources.fetch_gguf(REPO, "notes.txt", "main", tmp_path / "b", cache_dir=hub_cache)


def test_fetch_tokenizer_from_hub_and_dir(hub_cache: Path, tmp_path: Path) -> None:
    info = sources.fetch_tokenizer(f"{REPO}@main", tmp_path / "tok", cache_dir=hub_cache)
    assert info["commit"] == SHA_NEW
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == [
        "config.json",
        "tokenizer.json",
    ]
    copied = sources.fetch_tokenizer(str(tmp_path / "tok"), tmp_path / "tok2")
    assert set(copied["files"]) == {"config.json", "tokenizer.json"}
    assert not (tmp_path / "tok2" / "tokenizer.json").is_symlink()
    with pytest.raises(ModelSourceError, match=r"no tokenizer\.json"):
        sources.fetch_tokenizer(str(tmp_path / "hub"), tmp_path / "tok3")


def test_local(tmp_path: Path) -> None:
    hf = tmp_path / "m"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match=r"no \*\.safetensors"):
        sources.local(hf)
    (hf / "model.safetensors").write_bytes(b"w")
    info = sources.local(hf)
    assert info["format"] == "hf"
    assert info["files"]["model.safetensors"] == hashlib.sha256(b"w").hexdigest()
    for magic, fmt in [(b"GGUF", "gguf"), (b"tjgg", "ggjt")]:
        (tmp_path / "f.bin").write_bytes(magic + b"\0" * 8)
        assert sources.local(tmp_path / "f.bin")["format"] == fmt
    (tmp_path / "f.bin").write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelSourceError, match="not a GGUF/GGML"):
        sources.local(tmp_path / "f.bin")
    with pytest.raises(ModelSourceError, match="no such file"):
        sources.local(tmp_path / "absent")
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        sources.local(tmp_path)


def test_environment_variables_drive_the_hub_client(tmp_path: Path) -> None:
    """As a Snakemake script sees it: HF_HUB_CACHE / HF_HUB_OFFLINE from the environment only,
    and a token in HF_TOKEN never reaches the provenance."""
    cache = tmp_path / "hub"
    _add_snapshot(cache, REPO, SHA_NEW, {"config.json": b"{}", "model.safetensors": b"w"})
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text(SHA_NEW)
    token = "hf_" + "x" * 34
    env = os.environ | {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_TOKEN": token}
    code = (
        "import json, sys; from enginebench.models.sources import fetch_hf; "
        "print(json.dumps(fetch_hf('org/tiny', 'main', sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "hf")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["commit"] == SHA_NEW
    assert token not in out
