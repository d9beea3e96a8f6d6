"""`ManagedServer`: one engine server owned from start to teardown.

The server runs in a new session (its own process group), so teardown can signal the whole
group: vLLM and others spawn workers that would outlive a plain kill of the leader. Teardown
also signals any descendant that left the group (found with psutil). Readiness is polled
over HTTP; a server that exits or never becomes ready raises `ServerError` with its log tail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Literal

import psutil

from enginebench.proc import CommandError, run
from enginebench.provenance import now_iso, safe_env

_LOG_SCAN_BYTES = 4 << 20  # the first error is looked for this far
LOG_TAIL_LINES = 40
CLEANUP_TIMEOUT_S = 60
# Passed through from our environment when set: what a process needs to run at all, plus the
# variables that select devices or point at caches. Everything else is dropped.
PASS_THROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
    "CUDA_HOME", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
)  # fmt: skip


class ServerError(RuntimeError):
    """The server died, never became ready, or could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on (or holds) `port` now: it cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def server_env(
    engine_env: Mapping[str, str],
    secrets: Sequence[str] = (),
    base: Mapping[str, str] | None = None,
    path_prepend: Sequence[str] = (),
) -> dict[str, str]:
    """The server's whole environment: pass-through basics, engine variables, named secrets."""
    base = os.environ if base is None else base
    env = {k: base[k] for k in PASS_THROUGH if k in base}
    env.update(engine_env)
    for name in secrets:
        if name in base:
            env[name] = base[name]
    if path_prepend:
        env["PATH"] = os.pathsep.join([*path_prepend, env.get("PATH", os.defpath)])
    return env


def redact(env: Mapping[str, str], secrets: Sequence[str]) -> dict[str, str]:
    """`env` for logs and results: the values of the named secrets and of every secret-looking
    name (`HF_TOKEN`, `*_API_KEY`, ...) replaced, credentials inside URLs masked."""
    masked = safe_env(env, keep=["*"])  # drops secret-looking names, masks URL credentials
    return {k: masked.get(k, "<redacted>") if k not in secrets else "<redacted>" for k in env}


# a log line's own prefix: a process tag, "(Worker pid=7) ", then a level, time and source,
# "ERROR 12-06 23:49:55 [multiproc_executor.py:953] " (vLLM, SGLang and the like)
_LOG_PREFIX = re.compile(r"^(?:\([^)]*\)\s+)?(?:[A-Z]+\s+[\d-]+\s+[\d:.,]+\s+\[[^\]]*\]\s+)?")
_RAISED = re.compile(r"^[\w.]*(?:Error|Exception)\b: \S")


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES) -> str:
    """The log's last `lines`, after the first exception it records when that is not among
    them: a server whose worker failed ends its log with its own wrapper's error (vLLM:
    "Engine core initialization failed. See root cause above"), the cause 100 lines up."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(_LOG_SCAN_BYTES).decode("utf-8", "replace")
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            end = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return "(no server log)"
    first = next((ln for ln in text.splitlines() if _RAISED.match(_LOG_PREFIX.sub("", ln))), None)
    if first is None or first in end:
        return "\n".join(end)
    return "\n".join([f"first error: {first.strip()}", "...", *end])


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, wherever its process group."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:  # gone (its children went to init), or not ours to read
        return []
    return [child.pid for child in children if _running(child.pid)]


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in the group (`killpg(pgid, 0)` counts zombies)."""
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError):  # gone meanwhile
            if os.getpgid(proc.pid) == pgid and _running(proc.pid):
                return True
    return False


def _running(pid: int) -> bool:
    """Neither gone nor a zombie (exited, only its parent's wait missing)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.AccessDenied:  # another user's: there all the same
        return True
    except psutil.NoSuchProcess:
        return False


def _signal_pids(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _http_get(url: str, timeout: float, headers: Mapping[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def is_ready(
    base_url: str,
    readiness: Literal["health", "models"],
    health_path: str,
    served_name: str | None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> bool:
    """One readiness probe: /health answers 200, or /v1/models lists `served_name`."""
    path = health_path if readiness == "health" else "/v1/models"
    try:
        status, body = _http_get(base_url.rstrip("/") + path, timeout, headers or {})
    except (OSError, ValueError):
        return False
    if status != 200:
        return False
    if readiness == "health" or served_name is None:
        return True
    try:
        ids = [m.get("id") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        return False
    return served_name in ids


class ManagedServer:
    """Start `argv` in its own session, wait until ready, and kill its whole group on exit.

    Use as a context manager; `start()`/`stop()` are idempotent. `base_url` is
    `http://host:port`. On a failed start the group is already gone when `ServerError`
    (with the log tail) propagates.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        log_path: str | Path,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        readiness: Literal["health", "models"] = "health",
        health_path: str = "/health",
        served_name: str | None = None,
        ready_timeout: float = 300.0,
        poll_interval: float = 0.5,
        term_grace: float = 20.0,
        cwd: str | Path | None = None,
        cleanup: Sequence[str] | None = None,
    ) -> None:
        if isinstance(argv, str):
            raise TypeError("argv must be a list of arguments, never a shell string")
        self.argv = [str(a) for a in argv]
        self.port = port
        self.host = host
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.readiness = readiness
        self.health_path = health_path
        self.served_name = served_name
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval
        self.term_grace = term_grace
        self.cwd = cwd
        # run once the group is gone: a container outlives its killed client (`docker rm`)
        self.cleanup = list(cleanup) if cleanup else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: str | None = None
        self.ready_at: str | None = None
        self.stopped_at: str | None = None
        self.startup_s: float | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> ManagedServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.proc is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.started_at = now_iso("milliseconds")
        self._t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: teardown signals all of it
            )
        except OSError as exc:
            self._log.close()
            raise ServerError(f"cannot start {self.argv[0]}: {exc}") from exc

    def wait_ready(self) -> float:
        """Poll until ready; returns seconds since start. Raises ServerError otherwise."""
        assert self.proc is not None, "start() first"
        deadline = self._t0 + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"server exited with code {self.proc.returncode} before it was ready "
                    f"({' '.join(self.argv[:3])} ...); log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            if is_ready(self.base_url, self.readiness, self.health_path, self.served_name):
                self.startup_s = time.monotonic() - self._t0
                self.ready_at = now_iso("milliseconds")
                return self.startup_s
            if time.monotonic() > deadline:
                raise ServerError(
                    f"server not ready after {self.ready_timeout:.0f} s "
                    f"({self.readiness} at {self.base_url}); log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(self.poll_interval)

    def stop(self) -> None:
        """SIGTERM the group (and strays), wait `term_grace`, then SIGKILL what is left."""
        proc = self.proc
        if proc is None or self.stopped_at is not None:
            return
        with _signals_deferred():
            self._stop(proc)

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        pgid = proc.pid  # leader of its own session: pgid == pid
        strays = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        _signal_pids(strays, signal.SIGTERM)
        deadline = time.monotonic() + self.term_grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline and (group_alive(pgid) or any(map(_running, strays))):
            time.sleep(0.1)
        strays = [p for p in strays if _running(p)] + descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _signal_pids(strays, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if self.cleanup:
            with contextlib.suppress(CommandError):  # already gone: nothing to clean up
                run(self.cleanup, log=self.log_path, env=self.env, timeout=CLEANUP_TIMEOUT_S)
        self.stopped_at = now_iso("milliseconds")
        if self._log is not None:
            self._log.close()

    def info(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "base_url": self.base_url,
            "pid": self.pid,
            "started_at": self.started_at,
            "ready_at": self.ready_at,
            "startup_s": None if self.startup_s is None else round(self.startup_s, 3),
            "stopped_at": self.stopped_at,
            "returncode": self.proc.returncode if self.proc else None,
        }


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGINT while tearing down (delivered right after), so teardown completes."""
    sigs = {signal.SIGTERM, signal.SIGINT}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so `finally` blocks (teardown) run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def relay_sigterm(marker: str) -> None:
    """In the Snakemake process: pass a SIGTERM on to the running jobs whose command line holds
    `marker`, then let Snakemake's own handler run.

    Sent to Snakemake alone (`kill`, a scheduler, a cancelled CI job), SIGTERM asks it to stop
    scheduling and wait for the running jobs, and a serve job owns its server for the whole
    sweep (minutes to hours). Told directly, the job stops its point (keeping what completed),
    its server, and sets its results aside (`sweep.set_aside`), in seconds.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def relay(signum: int, frame: FrameType | None) -> None:
        jobs = {}
        for child in psutil.Process().children(recursive=True):
            try:
                if any(marker in part for part in child.cmdline()):
                    jobs[child.pid] = child
            except psutil.Error:  # gone meanwhile, or not ours to read
                continue
        # the job itself, not the shell that runs it (a shell would die and orphan it)
        shells = set()
        for job in jobs.values():
            with contextlib.suppress(psutil.Error):
                shells.add(job.ppid())
        for pid, job in jobs.items():
            if pid not in shells:
                with contextlib.suppress(psutil.Error):
                    job.send_signal(signal.SIGTERM)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, relay)


def install_signal_handlers() -> None:
    """SIGTERM -> `Terminated`, SIGINT -> KeyboardInterrupt: Snakemake's kill reaches `finally`."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
