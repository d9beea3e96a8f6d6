"""Installing Python packages into a venv: uv when it is installed, pip otherwise.

uv installs the same packages 2.5x faster (the vLLM CPU environment from an empty cache: 50 s
against pip's 134 s on 2 cores; `benchmarks/installers.py`), most of a fresh run's environment
time. It reads neither pip.conf nor `PIP_*` variables, so pip's own settings (`pip config list`:
the index, extra indexes, find-links, constraints, ...) are passed to it as options, and its own
config files are not read (`--no-config`): a machine whose pip installs from a mirror or a local
wheel folder gets the same packages from uv. A pip setting without a uv equivalent makes the
install use pip, never an install that ignores it.

`ENGINEBENCH_INSTALLER=pip` (or `uv`) forces one. Standard library only: `make setup` runs it
(`python -m enginebench.engines.installer -q -e '.[workflow,dev]'`) before anything else is
installed.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from enginebench import proc

ENV_VAR = "ENGINEBENCH_INSTALLER"
UV_MIN = (0, 9)  # --index-strategy, --allow-insecure-host, --compile-bytecode as used here
FIX = f"{ENV_VAR}=pip installs with pip"
# pip settings that change what gets installed, and uv's option for each (repeated per value)
_AS_UV_OPTION = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "trusted-host": "--allow-insecure-host",
}
_FLAGS = {"no-index": "--no-index", "pre": "--prerelease=allow"}
_AS_UV_ENV = {"timeout": "UV_HTTP_TIMEOUT", "retries": "UV_HTTP_RETRIES", "cert": "SSL_CERT_FILE"}
_ALIASES = {"default-timeout": "timeout"}  # one pip option, two names
# pip settings that change how pip talks or prints, not what it installs
_NO_EFFECT = {
    "disable-pip-version-check", "quiet", "verbose", "progress-bar", "no-cache-dir", "cache-dir",
    "root-user-action", "no-color", "no-input", "require-virtualenv", "log", "config-file",
    "break-system-packages",
}  # fmt: skip
_TRUE, _FALSE = {"y", "yes", "t", "true", "on", "1"}, {"n", "no", "f", "false", "off", "0"}
_LINE = re.compile(r"^(?P<scope>[^.]*)\.(?P<key>[^=]+)=(?P<value>.*)$")
# later scopes win, as in pip: the config files' global, then install, then PIP_* variables
_SCOPES = ("global", "install", ":env:")


@dataclass(frozen=True)
class Installer:
    """How to install into one venv: `argv(...)` is the command, `env` its environment."""

    name: str  # "uv" or "pip"
    python: str  # the venv's interpreter
    uv: str | None = None
    uv_version: str = ""  # `uv --version`, read once when it was found
    options: tuple[str, ...] = ()  # pip's settings as uv options
    env: Mapping[str, str] = field(default_factory=dict)
    why: str = ""  # why pip, where uv was asked for or found

    def argv(self, args: Sequence[str]) -> list[str]:
        """`pip install <args>` in this venv, by this installer (bytecode compiled either way:
        the server's first start imports as fast as its later ones)."""
        if self.uv is None:
            return [self.python, "-m", "pip", "install", *args]
        # pip's index strategy: the best version across every index, not the first index's
        return [self.uv, "pip", "install", "--no-config", "--python", self.python,
                "--compile-bytecode", "--index-strategy", "unsafe-best-match", *self.options,
                *args]  # fmt: skip

    def version(self) -> str:
        return self.uv_version if self.uv else tool_version([self.python, "-m", "pip"])


def tool_version(tool: Sequence[str]) -> str:
    """`<tool> --version`'s line, or "" when it does not run."""
    try:
        return proc.run([*tool, "--version"], stderr=False, timeout=60).strip()
    except proc.CommandError:
        return ""


def pip_settings(python: str, error: type[Exception] = proc.CommandError) -> dict[str, str]:
    """pip's effective settings for `python` (`pip config list`), the winning scope's value.
    A value is printed as a Python literal (a multi-line one with `\\n` in it); an empty one is
    ignored, as pip does. A line that cannot be read is kept as unreadable (then pip installs)."""
    argv = [python, "-m", "pip", "config", "list"]
    out = proc.run(argv, what="pip config list", error=error, stderr=False)
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        if not (m := _LINE.match(line.strip())) or m["scope"] not in _SCOPES:
            continue
        key = m["key"].replace("_", "-")
        key = _ALIASES.get(key, key)
        try:
            value = ast.literal_eval(m["value"])
        except (ValueError, SyntaxError):
            key, value = f"unreadable {key}", m["value"]
        if not str(value).strip():
            continue
        rank = _SCOPES.index(m["scope"])
        if key not in found or found[key][0] <= rank:
            found[key] = (rank, str(value))
    return {k: v for k, (_, v) in found.items()}


def uv_options(settings: Mapping[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """pip's settings as (uv options, uv environment, the settings uv has no equivalent for)."""
    options: list[str] = []
    env: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in sorted(settings.items()):
        if key in _AS_UV_OPTION:
            options += [x for v in value.split() for x in (_AS_UV_OPTION[key], v)]
        elif key in _FLAGS and (flag := value.strip().lower()) in _TRUE | _FALSE:
            if flag in _TRUE:
                options.append(_FLAGS[key])
        elif key in _AS_UV_ENV:
            env[_AS_UV_ENV[key]] = value.strip()
        elif key not in _NO_EFFECT:
            unknown.append(key)
    return options, env, unknown


def find_uv() -> tuple[str, str] | None:
    """uv next to this interpreter (the workflow's venv), else on PATH, and its version line;
    one that does not run or is older than `UV_MIN` counts as absent."""
    here = Path(sys.executable).parent / "uv"
    uv = str(here) if here.is_file() else shutil.which("uv")
    if uv is None:
        return None
    version = tool_version([uv])
    m = re.match(r"uv (\d+)\.(\d+)", version)
    return (uv, version) if m and (int(m[1]), int(m[2])) >= UV_MIN else None


def installer_for(python: str, error: type[Exception] = proc.CommandError) -> Installer:
    """The installer for the venv of `python`: uv if found and pip's settings all translate,
    else pip, with why. `ENGINEBENCH_INSTALLER=uv` makes either of those an error."""
    asked = os.environ.get(ENV_VAR, "").strip().lower()
    if asked not in ("", "uv", "pip"):
        raise error(f"{ENV_VAR}={asked!r}: use uv or pip (or leave it unset)")
    if asked == "pip":
        return Installer("pip", python, why=f"{ENV_VAR}=pip")
    found = find_uv()
    if found is None:
        why = f"uv >= {'.'.join(map(str, UV_MIN))} is not installed"
        if asked == "uv":
            raise error(f"{ENV_VAR}=uv but {why}: pip install uv")
        return Installer("pip", python, why=why)
    options, env, unknown = uv_options(pip_settings(python, error))
    if unknown:
        why = f"pip settings uv has no option for: {', '.join(unknown)}"
        if asked == "uv":
            raise error(f"{ENV_VAR}=uv but {why} (unset them, or {FIX})")
        return Installer("pip", python, why=why)
    uv, version = found
    return Installer("uv", python, uv=uv, uv_version=version, options=tuple(options), env=env)


def install(
    python: str,
    args: Sequence[str],
    log: str | Path | None = None,
    error: type[Exception] = proc.CommandError,
) -> Installer:
    """Install `args` (pip install's arguments) into the venv of `python`; returns how."""
    how = installer_for(python, error)
    env = {**os.environ, **how.env} if how.env else None
    try:
        proc.run(how.argv(args), what=f"{how.name} pip install", error=error, log=log, env=env)
    except error as exc:
        raise error(f"{exc} ({FIX})" if how.uv else str(exc)) from None
    return how


if __name__ == "__main__":  # `make setup`: the workflow's own venv, by the same rule
    try:
        how = install(sys.executable, sys.argv[1:])
    except proc.CommandError as exc:
        raise SystemExit(f"setup: {exc}") from None
    print(f"installed with {how.version()}" + (f" ({how.why})" if how.why else ""))
