"""The lock file: moving refs resolved once by `enginebench lock`; planning reads it offline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from enginebench.engines.registry import get_engine
from enginebench.lockfile import (
    DEFAULT_GIT_URL,
    LockError,
    lock_path,
    main,
    moving_refs,
    read_lock,
    resolve,
    write_lock,
)
from tests.workflow.plan import REPO, default_config, snakemake, write_config

GIT = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]


def _repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A local repository: branch master two commits ahead of tag v1; (path, v1, master)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "master", str(repo)], check=True)
    for message in ("one", "two"):
        subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", message])
        if message == "one":
            subprocess.run([*GIT, "-C", str(repo), "tag", "-a", "v1", "-m", "v1"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD", "v1^{}"],
                          capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return repo, head[1], head[0]


def _config(url: str, ref: str) -> dict:
    return {"engines": {"llamacpp": {"source": "git", "git_url": url, "commit": ref}}}


def test_resolves_branches_and_annotated_tags_to_commits(tmp_path: Path) -> None:
    repo, v1, master = _repo(tmp_path)
    url = f"file://{repo}"
    assert resolve(url, "master") == master and resolve(url, "v1") == v1  # the tag's commit
    with pytest.raises(LockError, match="'nosuch' not found"):
        resolve(url, "nosuch")


def test_lock_is_written_once_and_refreshed_on_demand(tmp_path: Path) -> None:
    repo, _, master = _repo(tmp_path)
    cfg = _config(f"file://{repo}", "master")
    cfg["engines"]["pinned"] = {"kind": "llamacpp", "source": "git", "commit": "a" * 40}
    assert moving_refs(cfg) == [("llamacpp", f"file://{repo}", "master")]  # a sha is not moving
    lock = tmp_path / "enginebench.lock.yaml"
    assert write_lock(cfg, lock) == {f"file://{repo}@master": master}
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "three"])
    assert read_lock(lock)[f"file://{repo}@master"] == master  # locked: the branch moved, not us
    assert write_lock(cfg, lock)[f"file://{repo}@master"] == master
    moved = write_lock(cfg, lock, refresh=True)[f"file://{repo}@master"]
    assert moved != master and len(moved) == 40


def test_default_git_url_is_llama_cpps_option_default() -> None:
    assert get_engine("llamacpp").option_defaults()["git_url"] == DEFAULT_GIT_URL


def test_planning_reads_the_lock_and_never_the_remote(tmp_path: Path) -> None:
    cfg = default_config()
    url = f"file://{tmp_path}/gone"  # no repository there: only the lock can answer
    cfg["engines"]["llamacpp"] |= _config(url, "master")["engines"]["llamacpp"]
    configfile = write_config(tmp_path / "c.yaml", cfg)
    proc = snakemake(tmp_path, "-n", "--configfile", str(configfile))
    assert proc.returncode != 0
    assert f"not yet in {lock_path(configfile)}" in proc.stdout + proc.stderr
    assert f"enginebench lock --configfile {configfile}" in proc.stdout + proc.stderr
    lock_path(configfile).write_text(yaml.safe_dump({"git_refs": {f"{url}@master": "b" * 40}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(configfile))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resources/engines/llamacpp/src-git-bbbbbbbbbbbb" in proc.stdout


def test_command_writes_beside_the_first_config(tmp_path: Path, monkeypatch, capsys) -> None:
    repo, _, master = _repo(tmp_path)
    configfile = write_config(tmp_path / "mine.yaml", _config(f"file://{repo}", "master"))
    monkeypatch.chdir(REPO)  # the embedded config is read from the repository root
    assert main(["--configfile", str(configfile)]) == 0
    assert read_lock(tmp_path / "enginebench.lock.yaml") == {f"file://{repo}@master": master}
    assert "wrote" in capsys.readouterr().out
    bad = write_config(tmp_path / "bad.yaml", _config(f"file://{repo}", "nosuch"))
    assert main(["--configfile", str(bad)]) == 1
    assert "'nosuch' not found" in capsys.readouterr().err
