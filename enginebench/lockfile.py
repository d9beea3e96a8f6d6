"""The lock file: every moving git ref of a config (a llama.cpp `commit:` given as a branch or
tag) resolved once to its commit and written beside the config, as a package manager's lock file.

The workflow reads it and never asks a remote while it plans (`-n` and `--report` run offline,
and a run is repeatable); `enginebench lock` writes it, `enginebench lock --refresh` moves every
ref to what it points at now. Users commit it with their config.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from enginebench.engines.llamacpp import DEFAULT_GIT_URL
from enginebench.proc import CommandError, run

LOCK_NAME = "enginebench.lock.yaml"
EMBEDDED = "config/config.yaml"  # the workflow's own config (run from the repository root)
SHA = re.compile(r"[0-9a-f]{40}")
HEADER = (
    "# Written by `enginebench lock`: each moving git ref of the config beside this file,\n"
    "# resolved to the commit it pointed at. Commit this file with the config; refresh it with\n"
    "# `enginebench lock --refresh`.\n"
)


class LockError(RuntimeError):
    """A ref that cannot be resolved (one line, with the fix)."""


def lock_path(configfile: str | Path) -> Path:
    return Path(configfile).with_name(LOCK_NAME)


def ref_key(url: str, ref: str) -> str:
    return f"{url}@{ref}"


def moving_refs(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(instance, git url, ref) of each llama.cpp instance built from git at a ref that is not
    a commit sha."""
    out = []
    for name, eng in (config.get("engines") or {}).items():
        if (eng or {}).get("kind", name) != "llamacpp" or eng.get("source") != "git":
            continue
        ref = str(eng.get("commit", ""))
        if ref and not SHA.fullmatch(ref):
            out.append((name, str(eng.get("git_url") or DEFAULT_GIT_URL), ref))
    return out


def read_lock(path: str | Path) -> dict[str, str]:
    """url@ref -> commit, from a lock file ({} when there is none)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        return {}
    refs = data.get("git_refs") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in (refs or {}).items()}


def resolve(url: str, ref: str) -> str:
    """The commit `ref` points at in `url` now (`git ls-remote`; a tag's peeled commit)."""
    try:
        argv = ["git", "ls-remote", url, ref, f"{ref}^{{}}"]
        out = run(argv, what=f"resolving {ref!r} at {url}", stderr=False, timeout=60)
    except CommandError as exc:
        raise LockError(f"{exc}; pin a 40-hex sha") from exc
    found: dict[str, str] = {}  # ref name -> commit
    for line in out.splitlines():
        commit, _, name = line.partition("\t")
        found[name] = commit
    for name in (f"refs/tags/{ref}^{{}}", f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        if name in found:
            return found[name]
    if out.split():
        return out.split()[0]
    raise LockError(f"{ref!r} not found at {url}; pin a 40-hex sha")


def write_lock(
    config: Mapping[str, Any], path: str | Path, refresh: bool = False
) -> dict[str, str]:
    """Resolve the config's moving refs (those not locked yet, or all with `refresh`) and write
    the lock file with exactly the refs in use. Returns url@ref -> commit."""
    known = {} if refresh else read_lock(path)
    refs = {}
    for _, url, ref in moving_refs(config):
        key = ref_key(url, ref)
        refs[key] = known.get(key) or resolve(url, ref)
    Path(path).write_text(HEADER + yaml.safe_dump({"git_refs": refs}, sort_keys=True))
    return refs


def _merged(files: Sequence[str]) -> dict[str, Any]:
    """The configs merged as Snakemake merges --configfile files (later keys over earlier)."""
    from snakemake.utils import update_config  # the workflow's own merge

    config: dict[str, Any] = {}
    for f in files:
        update_config(config, yaml.safe_load(Path(f).read_text()) or {})
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="enginebench lock",
        description="Resolve the config's moving git refs once; write the lock file beside it.",
    )
    parser.add_argument(
        "--configfile", nargs="+", default=[],
        help="config files, as given to snakemake --configfile (over the embedded "
        f"{EMBEDDED}; the lock goes beside the first)",
    )  # fmt: skip
    parser.add_argument("--refresh", action="store_true", help="re-resolve every ref")
    args = parser.parse_args(argv)
    path = lock_path((args.configfile or [EMBEDDED])[0])
    try:
        refs = write_lock(_merged([EMBEDDED, *args.configfile]), path, args.refresh)
    except LockError as exc:
        print(f"enginebench lock: {exc}", file=sys.stderr)
        return 1
    for key, commit in refs.items():
        print(f"{key} -> {commit}")
    print(f"wrote {path} ({len(refs)} ref{'s' * (len(refs) != 1)})")
    return 0
