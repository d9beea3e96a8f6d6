"""An engine's source code at a pinned git ref: one shallow, atomic fetch, the commit recorded.

Used for llama.cpp's `source: git` route (`build.fetch_llamacpp_source`) and for the code some
engines run that no wheel holds (`EngineSpec.source`: TensorRT-LLM's conversion scripts,
TabbyAPI's server). Plain `git` through argv lists, never a shell. Nothing floats: a tag or
branch is resolved to the commit it names at fetch time, and that commit is recorded.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from enginebench.jsonfile import read_json, write_json
from enginebench.models.files import atomic_dir
from enginebench.proc import run

__all__ = ["RECORD", "SourceError", "check_ref", "fetch_git", "git_head", "ref_label"]

RECORD = "enginebench-source.json"  # written inside the fetched tree (git-excluded)
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-f]{7,40}")
# a tag, branch or (short) sha; no option-like or path-escaping names
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")
# git never prompts (a private or mistyped GitHub URL answers 401), and LFS objects stay
# pointers: the scripts we run need none (TensorRT-LLM's LFS files are prebuilt kernels).
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}


class SourceError(RuntimeError):
    """Fetching an engine's source failed; the message is one line."""


def check_ref(ref: object) -> str:
    """The ref as a string, or ValueError when it cannot be a tag, branch or commit."""
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref or ref.endswith("/"):
        raise ValueError(f"{ref!r} is not a git tag, branch or commit sha")
    return ref


def ref_label(ref: str) -> str:
    """The ref as one path segment: a full sha shortened to 12 hex digits, '/' made '_'."""
    check_ref(ref)
    return ref[:12] if _FULL_SHA.fullmatch(ref) else ref.replace("/", "_")


def fetch_git(dest: Path, url: str, ref: str, *, record: str | None = None) -> dict[str, Any]:
    """Check out `ref` (tag, branch or commit sha) of the repository at `url` as `dest`.

    Shallow (`git fetch --depth 1 <url> <ref>`, which takes tags, branches and full shas on
    GitHub); when the server refuses a commit by sha (or the sha is abbreviated) its branches
    and tags are fetched in full and the commit looked up among them. Atomic: the tree is made
    beside `dest` and renamed into place once checked out, so a failed fetch leaves no `dest`
    (an older complete one is replaced only on success). `record`: a file name inside `dest`
    that receives the returned provenance (url, ref, resolved commit) before the rename.
    """
    check_ref(ref)
    dest = Path(dest)
    with atomic_dir(dest, overwrite=True) as tmp:
        git = ["git", "-C", str(tmp)]
        _git(["git", "init", "-q", str(tmp)], what="git init")
        shallow = True
        try:
            _git([*git, "fetch", "-q", "--depth", "1", "--", url, ref],
                 what=f"git fetch {ref} from {url}")  # fmt: skip
            target = "FETCH_HEAD"
        except SourceError:
            if not _HEX.fullmatch(ref):
                raise
            shallow = False
            target = _fetch_all_and_find(git, url, ref)
        _git([*git, "-c", "advice.detachedHead=false", "checkout", "-q", target, "--"],
             what=f"git checkout {ref}")  # fmt: skip
        sha = git_head(tmp)
        if _HEX.fullmatch(ref) and not sha.startswith(ref):
            raise SourceError(f"asked {url} for commit {ref}, got {sha}")
        info = {"source": "git", "git_url": url, "ref": ref, "commit": sha,
                "shallow": shallow, "src_dir": str(dest.resolve())}  # fmt: skip
        if record:
            write_json(tmp / record, info)
            with open(tmp / ".git" / "info" / "exclude", "a") as fh:
                fh.write(f"/{record}\n")  # the tree stays clean for `git status` / describe
    return info


def _fetch_all_and_find(git: list[str], url: str, ref: str) -> str:
    """A server that serves no commit by sha (or an abbreviated sha): fetch every branch and
    tag, then find the commit among them."""
    spec = "+refs/heads/*:refs/remotes/origin/*"
    _git([*git, "fetch", "-q", "--tags", "--", url, spec], what=f"git fetch {url}")
    try:
        return _git([*git, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
                    what="git rev-parse").strip()  # fmt: skip
    except SourceError:
        raise SourceError(f"git fetch {ref} from {url} failed: no such commit there") from None


def git_head(repo: Path) -> str:
    """The commit checked out in repo."""
    # safe.directory: an extracted or copied tree may belong to another uid than the reader.
    argv = ["git", "-c", "safe.directory=*", "-C", str(repo), "rev-parse", "HEAD"]
    return _git(argv, what="git rev-parse HEAD").strip()


def checkout_commit(checkout: str | None) -> str | None:
    """The commit of a checkout: the record of one the workflow fetched, else its HEAD when it is
    a git tree (the config's own `source_dir`); None for none."""
    if not checkout:
        return None
    if (Path(checkout) / RECORD).is_file():
        return read_json(Path(checkout) / RECORD).get("commit")
    with contextlib.suppress(SourceError):
        return git_head(Path(checkout))
    return None


def _git(argv: list[str], *, what: str) -> str:
    return run(argv, what=what, error=SourceError, env=os.environ | _GIT_ENV)
