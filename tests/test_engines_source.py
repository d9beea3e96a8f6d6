"""An engine's source at a pinned git ref (offline: a local repository made here), and the
workflow's rule `engine_source` run for real against it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from enginebench.engines.registry import ENGINES
from enginebench.engines.source import (
    RECORD,
    SourceError,
    check_ref,
    fetch_git,
    git_head,
    ref_label,
)
from enginebench.engines.spec import ServerContext
from enginebench.jsonfile import read_json
from tests.workflow.plan import default_config, planned_jobs, snakemake, write_config

GIT = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]


def _commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", name], check=True)
    return git_head(repo)


@pytest.fixture
def upstream(tmp_path: Path) -> dict[str, str]:
    """A repository with three commits: v1 (annotated tag), v2 (lightweight tag), main."""
    repo = tmp_path / "upstream"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    first = _commit(repo, "main.py", "1")
    subprocess.run([*GIT, "-C", str(repo), "tag", "-a", "v1", "-m", "one"], check=True)
    second = _commit(repo, "main.py", "2")
    subprocess.run([*GIT, "-C", str(repo), "tag", "v2"], check=True)
    third = _commit(repo, "extra.py", "3")
    return {"url": f"file://{repo}", "v1": first, "v2": second, "main": third}


def _siblings(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir())


@pytest.mark.parametrize("ref", ["v1", "v2", "main"])
def test_a_tag_or_branch_is_resolved_and_recorded(
    tmp_path: Path, upstream: dict[str, str], ref: str
) -> None:
    dest = tmp_path / "out" / f"src-{ref}"
    info = fetch_git(dest, upstream["url"], ref, record=RECORD)
    assert info["commit"] == upstream[ref] == git_head(dest)
    assert info["shallow"] is True and info["ref"] == ref and info["git_url"] == upstream["url"]
    assert read_json(dest / RECORD) == info
    assert (dest / "main.py").read_text() == ("1" if ref == "v1" else "2")
    count = subprocess.run(["git", "-C", str(dest), "rev-list", "--count", "HEAD"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert count.stdout.strip() == "1"  # depth 1
    status = subprocess.run(["git", "-C", str(dest), "status", "--porcelain"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert status.stdout == ""  # the record is git-excluded: the tree is clean
    assert _siblings(dest) == [dest.name]  # no scratch folder left beside it


def test_a_commit_sha_full_or_abbreviated(tmp_path: Path, upstream: dict[str, str]) -> None:
    sha = upstream["v2"]  # not a branch tip
    full = fetch_git(tmp_path / "full", upstream["url"], sha)
    assert full["commit"] == sha and full["shallow"] is True
    # an abbreviated sha cannot be asked for shallowly: every branch and tag is fetched
    short = fetch_git(tmp_path / "short", upstream["url"], sha[:10])
    assert short["commit"] == sha and short["shallow"] is False
    assert (tmp_path / "short" / "main.py").read_text() == "2"


def test_failure_is_one_line_and_leaves_nothing_half_done(
    tmp_path: Path, upstream: dict[str, str]
) -> None:
    dest = tmp_path / "out" / "src"
    with pytest.raises(SourceError, match=r"^git fetch nope from file://.* failed \(exit 128\): "
                       r"fatal: couldn't find remote ref nope$"):  # fmt: skip
        fetch_git(dest, upstream["url"], "nope")
    assert not dest.exists() and _siblings(dest) == []
    with pytest.raises(SourceError, match="no such commit there"):
        fetch_git(dest, upstream["url"], "0123456789")
    assert not dest.exists()
    with pytest.raises(SourceError, match=r"^git fetch v1 from file:///nowhere failed") as e:
        fetch_git(dest, "file:///nowhere", "v1")
    assert "\n" not in str(e.value)
    # a complete checkout stays as it was when a refetch fails
    fetch_git(dest, upstream["url"], "v1", record=RECORD)
    with pytest.raises(SourceError):
        fetch_git(dest, upstream["url"], "nope", record=RECORD)
    assert read_json(dest / RECORD)["commit"] == upstream["v1"]
    assert _siblings(dest) == ["src"]


def test_refs_and_labels() -> None:
    assert ref_label("v1.2.1") == "v1.2.1"
    assert ref_label("01a5915a7bfd46d2cff6b20bade7f289024b11f6") == "01a5915a7bfd"
    assert ref_label("release/1.2") == "release_1.2"
    for bad in ["--upload-pack=touch x", "-x", "a..b", "a b", "", "x:y", "+x", "a/", 123]:
        with pytest.raises(ValueError, match="not a git tag, branch or commit sha"):
            check_ref(bad)


def test_declared_sources() -> None:
    trt, exl = ENGINES["trtllm"], ENGINES["exllamav2"]
    assert trt.source == ("https://github.com/NVIDIA/TensorRT-LLM", "v1.2.1")
    assert trt.source_for == ("convert_checkpoint",)
    assert exl.source is not None and len(exl.source[1]) == 40
    assert exl.source_for == ("serve",)
    assert all(bool(s.source) == bool(s.source_for) for s in ENGINES.values())


def test_workflow_rule_fetches_and_reruns_on_a_new_url(
    tmp_path: Path, upstream: dict[str, str]
) -> None:
    """The rule itself: the fetched tree and its record; a new url reruns it (params)."""
    cfg = default_config()
    entry = {"env_file": "envs/exllamav2.yaml", "source_url": upstream["url"], "source_ref": "v1"}
    cfg["engines"]["exllamav2"] = entry
    work = tmp_path / "work"
    work.mkdir()
    conf = write_config(tmp_path / "c.yaml", cfg)
    target = "resources/engines/exllamav2/src-v1"
    proc = snakemake(work, target, "--cores", "1", "--configfile", str(conf))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_json(work / target / RECORD)
    assert record["commit"] == upstream["v1"] and record["git_url"] == upstream["url"]
    assert "-> " + upstream["v1"] in (work / "logs/engine_source/exllamav2-v1.log").read_text()
    assert planned_jobs(work, conf, "--cores", "1", target) == {}
    # the same repository under another url: same ref, same folder, fetched again
    (tmp_path / "mirror").symlink_to(tmp_path / "upstream")
    entry["source_url"] = f"file://{tmp_path / 'mirror'}"
    conf = write_config(tmp_path / "c.yaml", cfg)
    assert planned_jobs(work, conf, "--cores", "1", target) == {"engine_source": 1}
    # a fetch that fails: a one-line reason, and no folder that looks complete
    entry.update(source_url=upstream["url"], source_ref="nope")
    conf = write_config(tmp_path / "c.yaml", cfg)
    failing = "resources/engines/exllamav2/src-nope"
    proc = snakemake(work, failing, "--cores", "1", "--configfile", str(conf))
    assert proc.returncode != 0
    assert "engine_source exllamav2: git fetch nope from" in proc.stderr
    assert "couldn't find remote ref nope" in proc.stderr
    assert not (work / "resources/engines/exllamav2/src-nope").exists()
    assert sorted(p.name for p in (work / "resources/engines/exllamav2").iterdir()) == ["src-v1"]


def test_tabbyapi_runs_from_the_fetched_checkout_by_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflow's paths are relative to its directory; the server starts in the checkout."""
    monkeypatch.chdir(tmp_path)
    spec = ENGINES["exllamav2"]
    src = "resources/engines/exllamav2/src-01a5915a7bfd"
    ctx = ServerContext(model="resources/prepared/exllamav2/m/4.0bpw/out/exl2-4.0bpw",
                        served_name="m", python="resources/envs/exllamav2-k/venv/bin/python",
                        options={"source_dir": src})  # fmt: skip
    assert spec.server_argv is not None and spec.server_cwd is not None
    argv = spec.server_argv(ctx)
    assert argv[:2] == [f"{tmp_path}/resources/envs/exllamav2-k/venv/bin/python",
                        f"{tmp_path}/{src}/main.py"]  # fmt: skip
    assert (
        argv[argv.index("--model-dir") + 1]
        == f"{tmp_path}/resources/prepared/exllamav2/m/4.0bpw/out"
    )
    assert spec.server_cwd(ctx) == f"{tmp_path}/{src}"
