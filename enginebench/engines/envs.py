"""Per-engine virtual environments built from `envs/<name>.yaml`.

The YAML files are conda environment files (so `snakemake --software-deployment-method conda`
can use them as they are); here we build a plain venv from their `pip:` list instead, with the
running interpreter, installed by uv when it is there, else pip (`installer.py`), with their
caches (CI reruns reuse downloaded and built wheels).

A venv directory is complete only once `ENV_MARKER` is in it: the marker is written last and
holds the key, the pip list, the post-install steps and `pip freeze` (provenance).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enginebench import proc
from enginebench.engines.installer import install
from enginebench.models.files import file_lock

ENV_MARKER = ".enginebench-env.json"
KEY_LEN = 12


class EnvBuildError(RuntimeError):
    """A venv could not be built or does not import its engine."""


@dataclass(frozen=True)
class EnvFile:
    """What a venv builder needs from a conda environment file."""

    python: str | None  # "3.11" from `python=3.11`, None when not pinned
    pip: tuple[str, ...]  # requirement lines, options such as `--extra-index-url` included
    conda_only: tuple[str, ...]  # conda packages a venv cannot provide (recorded, not installed)


def read_env_file(yaml_path: str | Path) -> EnvFile:
    data = yaml.safe_load(Path(yaml_path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise EnvBuildError(f"{yaml_path}: not a conda environment file (no dependencies list)")
    python: str | None = None
    pip: list[str] = []
    conda_only: list[str] = []
    for dep in data["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            pip.extend(str(x) for x in dep["pip"])
        elif isinstance(dep, str) and dep.split("=")[0].strip() == "python":
            python = dep.split("=", 1)[1].lstrip("=").strip() if "=" in dep else None
        elif isinstance(dep, str) and dep.strip() != "pip":
            conda_only.append(dep)
    if not pip:
        raise EnvBuildError(f"{yaml_path}: no pip dependencies")
    return EnvFile(python, tuple(pip), tuple(conda_only))


def env_key(yaml_path: str | Path) -> str:
    """Short hash of the environment file's bytes: a version bump makes a new key (and venv)."""
    return hashlib.sha256(Path(yaml_path).read_bytes()).hexdigest()[:KEY_LEN]


def env_dir(root: str | Path, kind: str, yaml_path: str | Path) -> Path:
    """`<root>/<kind>-<key>`: one engine's environment folder (the venv is `<it>/venv`)."""
    return Path(root) / f"{kind}-{env_key(yaml_path)}"


def python_of(venv: str | Path) -> Path:
    return Path(venv) / "bin" / "python"


def read_marker(venv: str | Path) -> dict[str, Any] | None:
    """The provenance a complete build left in the venv; None for a partial one."""
    path = Path(venv) / ENV_MARKER
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def check_import(venv: str | Path, module: str, timeout: float = 300) -> str:
    """Import `module` in the venv; returns its `__version__` (or "") or raises naming the error."""
    code = f"import {module} as m; print(getattr(m, '__version__', ''))"
    out = proc.run([str(python_of(venv)), "-c", code], what=f"{venv}: `import {module}`",
                   error=EnvBuildError, stderr=False, timeout=timeout)  # fmt: skip
    return out.strip().splitlines()[-1] if out.strip() else ""


def _engine_defaults(kind: str) -> tuple[list[list[str]], str | None]:
    from enginebench.engines.registry import get_engine  # late: registry imports engine modules

    spec = get_engine(kind)
    return [list(x) for x in spec.venv_post_install], spec.import_name


def build_venv(
    yaml_path: str | Path,
    dest: str | Path,
    python: str = sys.executable,
    post_install: Sequence[Sequence[str]] | None = None,
    import_check: str | None = None,
    kind: str | None = None,
    log: str | Path | None = None,
) -> dict[str, Any]:
    """Create (or reuse) a venv at `dest` from the YAML's pip list; returns its provenance.

    `kind`: take `post_install` and `import_check` from that engine's `EngineSpec`
    (explicit arguments win). `post_install`: argv tails run with the venv's python after
    `pip install`, in order, e.g. `("-m", "pip", "uninstall", "-y", "torchvision")`.
    `import_check`: a module that must import afterwards, else the build fails (no marker).
    Reused as is when its marker matches (same file key, same steps); rebuilt otherwise.
    """
    dest = Path(dest)
    if kind is not None:
        spec_steps, spec_import = _engine_defaults(kind)
        post_install = spec_steps if post_install is None else post_install
        import_check = import_check or spec_import
    steps = [list(x) for x in (post_install or ())]
    key = env_key(yaml_path)
    env = read_env_file(yaml_path)
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if env.python and python == sys.executable and not have.startswith(env.python):
        raise EnvBuildError(f"{yaml_path} wants python {env.python}; this interpreter is {have}")
    # two jobs asking for the same venv: the second waits and then finds it built
    with file_lock(dest.parent / f".{dest.name}.lock"):
        marker = read_marker(dest)
        if marker and marker.get("key") == key and marker.get("post_install") == steps:
            return marker
        if dest.exists():
            shutil.rmtree(dest)  # partial, stale or differently fixed build
        dest.parent.mkdir(parents=True, exist_ok=True)
        log_path = Path(log) if log else dest.parent / f"{dest.name}.build.log"
        log_path.write_text("")
        t0 = time.monotonic()

        def step(argv: list[str], what: str) -> None:
            proc.run(argv, what=what, error=EnvBuildError, log=log_path)

        step([python, "-m", "venv", str(dest)], "python -m venv")
        py = str(python_of(dest))
        req = dest / "requirements.txt"  # the very lines conda hands to pip
        req.write_text("\n".join(env.pip) + "\n")
        how = install(py, ["-r", str(req)], log=log_path, error=EnvBuildError)
        for argv in steps:
            step([py, *argv], f"post-install {' '.join(argv)}")
        version = check_import(dest, import_check) if import_check else None
        freeze = proc.run([py, "-m", "pip", "freeze", "--all"], error=EnvBuildError, stderr=False)
        py_version = proc.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                              error=EnvBuildError, stderr=False)  # fmt: skip
        info: dict[str, Any] = {
            "key": key,
            "venv": str(dest),
            "python": py,
            "python_version": py_version.strip(),
            "env_file": str(yaml_path),
            "env_file_sha256": hashlib.sha256(Path(yaml_path).read_bytes()).hexdigest(),
            "pip": list(env.pip),
            "conda_only": list(env.conda_only),
            "installer": how.version(),
            "installer_why": how.why or None,
            "post_install": steps,
            "import_check": import_check,
            "import_version": version,
            "build_seconds": round(time.monotonic() - t0, 1),
            "freeze": freeze.split(),
        }
        tmp = dest / (ENV_MARKER + ".tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        os.replace(tmp, dest / ENV_MARKER)
        return info
