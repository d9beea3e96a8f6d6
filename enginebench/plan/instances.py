"""Instances: an `engines:` entry each, an instance of one engine (its `kind`), with what it
derives from its engine's declaration: how its software is had, its llama.cpp or MLC-LLM
source and build,
its env file's key, the checkout it runs code from, its options as each job sees them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

from enginebench.engines.registry import ENGINES
from enginebench.engines.source import ref_label
from enginebench.engines.spec import EngineSpec
from enginebench.lockfile import EMBEDDED, SHA, lock_path, read_lock, ref_key
from enginebench.plan import paths
from enginebench.plan.checks import SOURCE_KEYS, fail

# How an instance's software is had: built by the workflow (`build`: llama.cpp from source, or
# MLC-LLM from its source archive into its environment;
# `venv`: an environment from its env file) or brought by the user (`bin_dir`: prebuilt llama.cpp;
# `python`: an interpreter; `container`: an image), or not run at all (`external`: an endpoint).
Software = Literal["build", "venv", "bin_dir", "python", "container", "external"]
UNCONFIGURED = "unconfigured"  # the tag of a llama.cpp the GGUF rules name but no config has


class Archive(NamedTuple):
    """A pinned source archive (EngineSpec.source_archive, or the config's)."""

    path: Path
    sha256: str
    commit: str  # the upstream commit it holds (recorded)


@dataclass(frozen=True)
class Lock:
    """The lock file (url@ref -> commit, already read) and the config files it belongs to."""

    path: str
    refs: Mapping[str, str]
    configfiles: tuple[str, ...] = ()

    @classmethod
    def beside(cls, configfiles: Sequence[str]) -> Lock:
        """The lock beside the first config file given (else the embedded config), read."""
        path = lock_path((list(configfiles) or [EMBEDDED])[0])
        return cls(str(path), read_lock(path), tuple(configfiles))

    def commit(self, name: str, url: str, ref: str) -> str:
        """A commit sha as given, or the one the lock records for a branch or tag: planning never
        asks a remote (so -n and --report run offline, and a run is repeatable)."""
        if SHA.fullmatch(ref):
            return ref
        commit = self.refs.get(ref_key(url, ref))
        if commit is None:
            given = [f for f in self.configfiles if f != EMBEDDED]
            files = f" --configfile {' '.join(given)}" if given else ""
            fail(
                f"engines.{name}.commit: {ref!r} is a branch or tag, not yet in {self.path}; "
                f"resolve it once with `enginebench lock{files}` "
                "(commit the lock file), or pin a 40-hex sha"
            )
        return commit


def with_defaults(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry with its engine's defaults where it leaves them unset: its options' (the
    defaults live with the engine, EngineSpec.options, and only its own reach its jobs'
    params), and its env file when the entry brings no software of its own (python,
    container)."""
    spec = ENGINES[entry.get("kind", name)]
    defaults = spec.option_defaults()
    if spec.env_file and not {"python", "container"} & entry.keys():
        defaults["env_file"] = spec.env_file
    return {**defaults, **entry}


@dataclass(frozen=True, eq=False)
class Instance:
    """An `engines:` entry: an instance of an engine (its `kind`, else its own name)."""

    name: str
    entry: Mapping[str, Any]
    root: Path  # env files are relative to it (the workflow's root)
    lock: Lock
    # the instance whose llama.cpp checkout and build it uses: itself, or the first one in the
    # config that builds the same thing (Plan sets it; see build_key)
    build_owner: str = ""

    @property
    def kind(self) -> str:
        return str(self.entry.get("kind", self.name))

    @property
    def spec(self) -> EngineSpec:
        """Its engine's declaration: the one home of the engine's defaults."""
        return ENGINES[self.kind]

    @cached_property
    def software(self) -> Software:
        if "container" in self.entry or self.spec.software == "container":
            return "container"
        if self.spec.software == "cmake":
            return "bin_dir" if "bin_dir" in self.entry else "build"
        if self.spec.software == "wheel":
            return "python" if "python" in self.entry else "build"
        if self.spec.software == "venv":
            return "python" if "python" in self.entry else "venv"
        return "external"

    @cached_property
    def uses_gpu(self) -> bool:
        if "gpu" in self.entry:
            return bool(self.entry["gpu"])
        return bool(self.spec.uses_gpu(self.entry))

    # venv engines ------------------------------------------------------------------------------
    @property
    def env_path(self) -> Path:
        return Path(self.root, self.entry["env_file"])

    @cached_property
    def env_key(self) -> str:
        """Short content hash of the env file: a bump rebuilds only that environment."""
        return hashlib.sha256(self.env_path.read_bytes()).hexdigest()[:12]

    @property
    def env_json(self) -> str:
        return paths.env_json(self.kind, self.env_key)

    # a Python engine built from a source archive (EngineSpec.source_archive: MLC-LLM) ----------
    @cached_property
    def archive(self) -> Archive:
        """The source archive it builds: the config's `archive` / `sha256` / `commit`, else the
        engine's declared one; a relative path is relative to the workflow's root, as env files
        are."""
        path, sha256, commit = self.spec.source_archive or ("", "", "")
        if "archive" in self.entry:  # another archive: its own sha256 and commit, no default
            path, sha256, commit = self.entry["archive"], "", ""
        sha256, commit = self.entry.get("sha256", sha256), self.entry.get("commit", commit)
        return Archive(Path(self.root, path), str(sha256), str(commit))

    # llama.cpp ---------------------------------------------------------------------------------
    @cached_property
    def commit(self) -> str:
        return self.lock.commit(self.name, self.entry["git_url"], str(self.entry["commit"]))

    @cached_property
    def tag(self) -> str:
        """Names a llama.cpp source: pypi-<version> or git-<sha12>; nothing floats."""
        if not self.entry:
            return UNCONFIGURED
        if self.spec.software == "wheel":
            return f"archive-{self.archive.sha256[:12]}"
        if self.entry["source"] == "pypi-sdist":
            return f"pypi-{self.entry['version']}"
        return f"git-{self.commit[:12]}"

    @cached_property
    def build_key(self) -> tuple[str, ...]:
        """What its build is made of (the source rule's and the build rule's params): instances
        that agree on it share one checkout and one build, e.g. two one server flag apart."""
        made_of = (self.entry.get(k) for k in ("sha256", "cmake_flags", "cuda_architectures"))
        return (self.kind, self.build, *map(repr, made_of))  # build: <tag>-<backend>

    @property
    def _build_dir(self) -> str:
        return paths.engine_dir(self.build_owner or self.name)

    @property
    def src(self) -> str:
        return f"{self._build_dir}/src-{self.tag}"

    @property
    def build(self) -> str:
        """The build folder's name under resources/engines/<build owner>/: <tag>-<backend>
        (llama.cpp), <tag>-env-<env key> (a wheel: one per archive x environment)."""
        if self.spec.software == "wheel":
            return f"{self.tag}-env-{self.env_key}"
        return f"{self.tag}-{self.backend}"

    @property
    def backend(self) -> str | None:
        """llama.cpp's `backend` (its option's default when the config gives none)."""
        backend = self.entry.get("backend")
        return None if backend is None else str(backend)

    @property
    def bin_dir(self) -> str:
        """Its build's binaries, or the prebuilt ones it names (`bin_dir`)."""
        return self.entry.get("bin_dir") or f"{self._build_dir}/{self.build}/bin"

    @property
    def resolved_commit(self) -> str | None:
        return self.commit if self.entry["source"] == "git" else None

    @property
    def build_json(self) -> str:
        """Its build's record (what jobs take as their software)."""
        if self.spec.software == "wheel":
            return f"{self._build_dir}/{self.build}/build.json"
        return f"{self.bin_dir}/build.json"

    # software ----------------------------------------------------------------------------------
    @cached_property
    def software_file(self) -> str | None:
        """The file that stands for its software being ready (None: the user brings it)."""
        if self.software == "build":
            return self.build_json
        if self.software == "venv":
            return self.env_json
        return None

    @cached_property
    def software_id(self) -> str | None:
        """What stands for its software in the results: the llama.cpp source tag or bin_dir, the
        env file's key, the interpreter or the image it brings."""
        if self.software == "build":
            return self.tag
        if self.software == "venv":
            return self.env_key
        if self.software in ("bin_dir", "python"):
            return str(self.entry[self.software])
        if self.software == "container" and "container" in self.entry:
            return str(self.entry["container"]["image"])
        return None

    # code from a git checkout (EngineSpec.source) ----------------------------------------------
    @cached_property
    def source(self) -> tuple[str, str] | None:
        """(git url, ref) of the checkout the workflow fetches: the declared `source`, overridden
        by `source_url` / `source_ref`; None when the engine declares none or the config names
        its own checkout (`source_dir`)."""
        if self.spec.source is None or self.entry.get("source_dir"):
            return None
        url, ref = self.spec.source
        return self.entry.get("source_url", url), self.entry.get("source_ref", ref)

    @cached_property
    def source_dir(self) -> str | None:
        """resources/engines/<instance>/src-<ref label>: the fetched checkout."""
        src = self.source
        return f"{paths.engine_dir(self.name)}/src-{ref_label(src[1])}" if src else None

    def options(self, job: str | None = None) -> dict[str, Any]:
        """The entry as one of its jobs sees it (`job`: a preparation step or "serve"; None:
        any). The checkout is `source_dir` only for the jobs that run code from it
        (EngineSpec.source_for), so that a new ref reruns those jobs and what follows only."""
        eng, spec = self.entry, self.spec
        options = {k: v for k, v in eng.items() if k not in ("server_args", "env", "kind")}
        if spec.source is not None:
            for key in ("source_dir", *SOURCE_KEYS):
                options.pop(key, None)
            if job is None or job in spec.source_for:
                options["source_dir"] = eng.get("source_dir") or self.source_dir
        return options

    def source_input(self, job: str) -> dict[str, str]:
        """{"source": fetched checkout} for a job that runs code from it, else {}."""
        if job in self.spec.source_for and self.source_dir:
            return {"source": self.source_dir}
        return {}
