"""Provenance: what ran, on what, from which sources.

Everything here is best effort and never raises for a missing tool: a field that cannot be
read is `None`. Nothing secret is recorded: environment variables go through `safe_env`,
command lines through `redact_argv`.

`run_provenance` builds the `server.json` record that the serve-and-sweep step writes next to
its sweep points (keys in `SERVER_JSON_KEYS`); the report reads it back.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from enginebench import proc

# -- small helpers ----------------------------------------------------------------------------


def now_iso(timespec: str = "seconds") -> str:
    """Current UTC time, ISO 8601, e.g. `2025-01-31T12:00:00+00:00` (`timespec` as
    datetime.isoformat's: "milliseconds" for a server's start and stop)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def _run(
    argv: Sequence[str], timeout: float = 20.0, env: Mapping[str, str] | None = None
) -> str | None:
    """stdout of `argv`, or None when it cannot be run or exits non-zero (best effort)."""
    try:
        return proc.run(argv, stderr=False, timeout=timeout, env=env)
    except proc.CommandError:
        return None


# -- secrets ----------------------------------------------------------------------------------

# a name containing any of these words is never recorded (HF_TOKEN, OPENAI_API_KEY, ...)
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL|COOKIE|AUTH", re.I)
# command-line options whose value is secret: --api-key, --hf-token, --password (not --max-tokens)
_SECRET_OPTION = re.compile(
    r"(^|[-_])(api[-_]?key|token|secret|password|passwd|credentials?|auth)($|[-_])", re.I
)
# user:password@ inside URLs (proxies, index URLs)
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
REDACTED = "<redacted>"

# variables that change how engines run; globs allowed
DEFAULT_ENV_KEEP: tuple[str, ...] = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "OMP_*",
    "MKL_*",
    "OPENBLAS_*",
    "GGML_*",
    "LLAMA_*",
    "VLLM_*",
    "SGLANG_*",
    "TORCH_*",
    "PYTORCH_*",
    "NCCL_*",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "SLURM_JOB_ID",
    "SLURM_CPUS_ON_NODE",
    "SLURM_JOB_PARTITION",
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def safe_env(
    env: Mapping[str, str] | None = None, keep: Iterable[str] = DEFAULT_ENV_KEEP
) -> dict[str, str]:
    """The variables of `env` (default `os.environ`) named in `keep` (exact names or globs),
    minus any whose name looks secret; credentials inside URLs are masked."""
    source = os.environ if env is None else env
    patterns = list(keep)
    out: dict[str, str] = {}
    for name in sorted(source):
        if is_secret_name(name):
            continue
        if any(fnmatch.fnmatchcase(name, pat) for pat in patterns):
            out[name] = _URL_USERINFO.sub(REDACTED + "@", source[name])
    return out


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A copy of a command line with the values of secret-looking options masked
    (`--api-key X`, `--hf-token=X`) and credentials inside URLs removed."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(REDACTED)
            mask_next = False
            continue
        if arg.startswith("-") and _SECRET_OPTION.search(arg.split("=", 1)[0].lstrip("-")):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                mask_next = True
            continue
        out.append(_URL_USERINFO.sub(REDACTED + "@", arg))
    return out


# -- hashing ----------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks (follows symlinks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


DEFAULT_TREE_EXCLUDE: tuple[str, ...] = (".git", ".cache", "__pycache__")


def tree_files(
    root: str | os.PathLike[str], exclude: Iterable[str] = DEFAULT_TREE_EXCLUDE
) -> list[str]:
    """Files under `root` as sorted POSIX relative paths; names in `exclude` (files or
    directories, at any depth) are skipped. File symlinks are followed (HF snapshots)."""
    base = Path(root)
    skip = set(exclude)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in skip]
        rel_dir = Path(dirpath).relative_to(base)
        found += [(rel_dir / f).as_posix() for f in filenames if f not in skip]
    return sorted(found)


def sha256_tree(root: str | os.PathLike[str], exclude: Iterable[str] = DEFAULT_TREE_EXCLUDE) -> str:
    """Stable hex SHA-256 of a directory: the SHA-256 of the lines `<sha256>  <relpath>\\n`
    (the `sha256sum` format), one per file, sorted by path. Independent of mtimes and of the
    directory's location; `.git`, `.cache` (hub download metadata), `__pycache__` skipped."""
    base = Path(root)
    digest = hashlib.sha256()
    for rel in tree_files(base, exclude):
        digest.update(f"{sha256_file(base / rel)}  {rel}\n".encode())
    return digest.hexdigest()


# -- versions ---------------------------------------------------------------------------------


def enginebench_version() -> str:
    from enginebench import __version__

    return __version__


def git_info(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """`{"commit", "dirty", "describe"}` of the git work tree containing `path`, or None."""
    where = str(path)
    commit = _run(["git", "-C", where, "rev-parse", "HEAD"])
    if commit is None:
        return None
    status = _run(["git", "-C", where, "status", "--porcelain"])
    describe = _run(["git", "-C", where, "describe", "--always", "--dirty", "--tags"])
    return {
        "commit": commit.strip(),
        "dirty": None if status is None else bool(status.strip()),
        "describe": None if describe is None else describe.strip(),
    }


def enginebench_git() -> dict[str, Any] | None:
    """Git state of the enginebench checkout this package was imported from (None when the
    package is installed from a wheel rather than run from a checkout)."""
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / ".git").exists():
        return None
    return git_info(checkout)


def snakemake_version() -> str | None:
    try:
        return metadata.version("snakemake")
    except metadata.PackageNotFoundError:
        return None


_PY_LIST_DISTS = (
    "import importlib.metadata as m, json;"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def _isolated_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def parse_pip_freeze(text: str) -> dict[str, str]:
    """`name==1.0` -> {name: "1.0"}; `name @ url` -> {name: "@ url"}; `-e url` kept whole."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line:
            name, url = line.split(" @ ", 1)
            version = "@ " + url
        elif line.startswith("-e "):
            name, version = line, "editable"
        else:
            name, version = line, ""
        out[name.strip()] = _URL_USERINFO.sub(REDACTED + "@", version.strip())
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def package_versions(python_exe: str | os.PathLike[str] = sys.executable) -> dict[str, str]:
    """Installed distributions of the environment of `python_exe` (an engine venv):
    `pip freeze --all`, or importlib.metadata when that venv has no pip. {} on failure."""
    exe = str(python_exe)
    env = _isolated_env()
    frozen = _run([exe, "-m", "pip", "freeze", "--all"], timeout=120, env=env)
    if frozen is not None:
        return parse_pip_freeze(frozen)
    listed = _run([exe, "-c", _PY_LIST_DISTS], timeout=120, env=env)
    if listed is None:
        return {}
    try:
        found = json.loads(listed)
    except json.JSONDecodeError:
        return {}
    return dict(sorted(found.items(), key=lambda kv: str(kv[0]).lower()))


# -- host -------------------------------------------------------------------------------------

_CPU_FLAG = re.compile(r"^(avx2|avx512\w*|amx\w*|avx_vnni|asimd\w*|sve\w*|i8mm|bf16)$")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """CPU model, SIMD flags of interest and physical core count from /proc/cpuinfo."""
    model: str | None = None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    phys = core = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model", "cpu model") and model is None:
            model = value
        elif key in ("flags", "Features"):
            flags.update(f for f in value.split() if _CPU_FLAG.match(f))
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
            cores.add((phys, core))
    return {"model": model, "flags": sorted(flags), "physical_cores": len(cores) or None}


def parse_nvidia_smi(csv_text: str, banner: str | None = None) -> dict[str, Any] | None:
    """GPU record from `nvidia-smi --query-gpu=name,driver_version,memory.total
    --format=csv,noheader` output, plus the CUDA version from the plain `nvidia-smi` banner."""
    devices = []
    for line in csv_text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0]:
            devices.append({"name": parts[0], "driver_version": parts[1], "memory_total": parts[2]})
    if not devices:
        return None
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner or "")
    return {
        "count": len(devices),
        "devices": devices,
        "driver_version": devices[0]["driver_version"],
        "cuda_version": cuda.group(1) if cuda else None,
    }


def collect_gpu() -> dict[str, Any] | None:
    """NVIDIA GPUs via nvidia-smi, or None when there is none (or no driver)."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "--query-gpu=name,driver_version,memory.total"
    csv_text = _run(["nvidia-smi", query, "--format=csv,noheader"])
    if csv_text is None:
        return None
    return parse_nvidia_smi(csv_text, _run(["nvidia-smi"]))


def _os_release() -> str | None:
    text = _read("/etc/os-release") or ""
    found = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    if found:
        return found.group(1)
    if sys.platform == "darwin":
        return "macOS " + platform.mac_ver()[0]
    return None


def _memory_bytes() -> int | None:
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "", re.M)
    if meminfo:
        return int(meminfo.group(1)) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_memory_limit() -> int | None:
    text = (_read("/sys/fs/cgroup/memory.max") or "").strip()
    return int(text) if text.isdigit() else None


def collect_host() -> dict[str, Any]:
    """Hostname, OS, kernel, CPU (model, SIMD flags, cores), memory and GPUs of this host."""
    cpu = parse_cpuinfo(_read("/proc/cpuinfo") or "")
    if cpu["model"] is None:
        brand = (
            _run(["sysctl", "-n", "machdep.cpu.brand_string"]) if sys.platform == "darwin" else None
        )
        cpu["model"] = (brand or "").strip() or platform.processor() or None
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "os_release": _os_release(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu": {
            "model": cpu["model"],
            "flags": cpu["flags"],
            "logical_cores": os.cpu_count(),
            "physical_cores": cpu["physical_cores"],
            "usable_cores": usable,
        },
        "memory_bytes": _memory_bytes(),
        "cgroup_memory_limit_bytes": _cgroup_memory_limit(),
        "gpu": collect_gpu(),
    }


# -- the server.json record -------------------------------------------------------------------

SERVER_JSON_KEYS: tuple[str, ...] = (
    "engine",
    "engine_version",
    "engine_commit",
    "source_commit",
    "server_argv",
    "model",
    "model_source",
    "model_sha",
    "model_file_sha256",
    "quant",
    "sweep",
    "workload",
    "seed",
    "started",
    "finished",
    "enginebench_version",
    "enginebench_commit",
    "enginebench_dirty",
    "snakemake_version",
    "host",
    "env",
    "packages",
)


def run_provenance(
    *,
    engine: str,
    model: str,
    quant: str,
    sweep: str | None = None,
    engine_version: str | None = None,
    engine_commit: str | None = None,
    source_commit: str | None = None,
    server_argv: Sequence[str] = (),
    model_source: str | None = None,
    model_sha: str | None = None,
    model_file_sha256: str | None = None,
    workload: str | None = None,
    seed: int | None = None,
    started: str | None = None,
    finished: str | None = None,
    python_exe: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The `server.json` record of one engine x model x quant x named sweep (keys:
    SERVER_JSON_KEYS).
    `python_exe`: the engine's venv interpreter, whose packages are listed."""
    git = enginebench_git() or {}
    return {
        "engine": engine,
        "engine_version": engine_version,
        "engine_commit": engine_commit,
        "source_commit": source_commit,
        "server_argv": redact_argv(server_argv),
        "model": model,
        "model_source": model_source,
        "model_sha": model_sha,
        "model_file_sha256": model_file_sha256,
        "quant": quant,
        "sweep": sweep,
        "workload": workload,
        "seed": seed,
        "started": started,
        "finished": finished,
        "enginebench_version": enginebench_version(),
        "enginebench_commit": git.get("commit"),
        "enginebench_dirty": git.get("dirty"),
        "snakemake_version": snakemake_version(),
        "host": collect_host(),
        "env": safe_env(env),
        "packages": package_versions(python_exe) if python_exe is not None else None,
    }
