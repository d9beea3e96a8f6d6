"""ManagedServer against a dummy server that spawns a child: the whole group must die."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from enginebench.engines.server import (
    ManagedServer,
    ServerError,
    descendants,
    free_port,
    group_alive,
    is_ready,
    redact,
    server_env,
)

# A server that forks a sleeping child (and optionally a child in its own session), writes
# both pids to a file, then serves /health and /v1/models after DELAY seconds.
DUMMY = textwrap.dedent(
    """
    import http.server, json, os, signal, subprocess, sys, time
    port, pidfile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = subprocess.Popen(sleeper)
    pids = {"leader": os.getpid(), "child": child.pid}
    if "escape" in mode:  # a worker that leaves the process group
        pids["escaped"] = subprocess.Popen(sleeper, start_new_session=True).pid
    with open(pidfile, "w") as fh:
        json.dump(pids, fh)
    print("dummy server starting", flush=True)
    if "stubborn" in mode:
        signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
    if mode == "exit":
        print("fatal: cannot load model", flush=True)
        sys.exit(3)
    if mode != "never":
        time.sleep(0.5)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if mode == "never":
                self.send_response(503); self.end_headers(); return
            body = json.dumps({"data": [{"id": "tiny"}]}).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def dummy(tmp_path: Path):
    script = tmp_path / "dummy_server.py"
    script.write_text(DUMMY)

    def make(mode: str = "ok", **kw: object) -> tuple[ManagedServer, Path]:
        port = free_port()
        pidfile = tmp_path / f"pids-{mode}.json"
        argv = [sys.executable, str(script), str(port), str(pidfile), mode]
        kw.setdefault("ready_timeout", 10.0)
        kw.setdefault("poll_interval", 0.05)
        srv = ManagedServer(argv, port=port, log_path=tmp_path / f"{mode}.log", **kw)  # type: ignore[arg-type]
        return srv, pidfile

    return make


def _pids(pidfile: Path) -> list[int]:
    deadline = time.monotonic() + 5
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(json.loads(pidfile.read_text()).values())


def test_normal_exit_kills_whole_group(dummy) -> None:
    srv, pidfile = dummy("ok")
    with srv:
        pids = _pids(pidfile)
        assert all(_alive(p) for p in pids)
        assert srv.startup_s is not None and srv.startup_s < 10
        assert is_ready(srv.base_url, "models", "/health", "tiny")
        assert not is_ready(srv.base_url, "models", "/health", "other")
        pgid = srv.pid
    assert _wait_dead(pids)
    assert pgid is not None and not group_alive(pgid)
    assert srv.info()["stopped_at"]


def test_exception_inside_kills_whole_group(dummy) -> None:
    srv, pidfile = dummy("ok")
    with pytest.raises(RuntimeError, match="boom"), srv:
        pids = _pids(pidfile)
        raise RuntimeError("boom")
    assert _wait_dead(pids)


def test_never_ready_times_out_with_log_tail(dummy) -> None:
    srv, pidfile = dummy("never", ready_timeout=1.5)
    with pytest.raises(ServerError) as err, srv:
        pass
    msg = str(err.value)
    assert "not ready after" in msg and "dummy server starting" in msg
    assert _wait_dead(_pids(pidfile))


def test_early_exit_stops_at_once_with_log_tail(dummy) -> None:
    srv, pidfile = dummy("exit", ready_timeout=60)
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err, srv:
        pass
    assert time.monotonic() - t0 < 10  # not the 60 s timeout
    assert "exited with code 3" in str(err.value)
    assert "fatal: cannot load model" in str(err.value)
    assert _wait_dead(_pids(pidfile))


def test_sigterm_ignored_escalates_to_sigkill(dummy) -> None:
    srv, pidfile = dummy("stubborn", term_grace=1.0)
    with srv:
        pids = _pids(pidfile)
    assert _wait_dead(pids)


def test_worker_that_left_the_group_is_killed_too(dummy) -> None:
    srv, pidfile = dummy("escape")
    with srv:
        pids = _pids(pidfile)
        assert srv.pid is not None
        assert set(pids) - {srv.pid} <= set(descendants(srv.pid))
    assert _wait_dead(pids)


def test_argv_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        ManagedServer("python -m http.server", port=1, log_path=tmp_path / "x.log")  # type: ignore[arg-type]


def test_missing_binary_is_a_server_error(tmp_path: Path) -> None:
    srv = ManagedServer(["/nonexistent/llama-server"], port=free_port(), log_path=tmp_path / "l")
    with pytest.raises(ServerError, match="cannot start"), srv:
        pass


# The sweep's own process gets SIGTERM (Snakemake's kill): the server group must still die.
SWEEP_LIKE = textwrap.dedent(
    """
    import sys
    from enginebench.engines.server import ManagedServer, install_signal_handlers
    install_signal_handlers()
    script, port, pidfile, log = sys.argv[1:5]
    argv = [sys.executable, script, port, pidfile, "ok"]
    with ManagedServer(argv, port=int(port), log_path=log, poll_interval=0.05):
        print("READY", flush=True)
        import time
        time.sleep(600)
    """
)


def test_sigterm_to_owner_reaches_teardown(tmp_path: Path) -> None:
    (tmp_path / "dummy_server.py").write_text(DUMMY)
    (tmp_path / "owner.py").write_text(SWEEP_LIKE)
    pidfile = tmp_path / "pids.json"
    owner = subprocess.Popen(
        [sys.executable, str(tmp_path / "owner.py"), str(tmp_path / "dummy_server.py"),
         str(free_port()), str(pidfile), str(tmp_path / "s.log")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "READY"
    pids = _pids(pidfile)
    owner.send_signal(signal.SIGTERM)
    owner.wait(timeout=30)
    assert owner.returncode != 0
    assert _wait_dead(pids)


def test_env_passes_only_what_matters_and_redacts_secrets() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/root", "AWS_SECRET": "x", "HF_TOKEN": "hf_abc"}
    env = server_env({"VLLM_CPU_KVCACHE_SPACE": "2"}, ["HF_TOKEN"], base=base,
                     path_prepend=["/venv/bin"])  # fmt: skip
    assert env == {
        "PATH": "/venv/bin:/usr/bin",
        "HOME": "/root",
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "HF_TOKEN": "hf_abc",
    }
    assert redact(env, ["HF_TOKEN"])["HF_TOKEN"] == "<redacted>"


def test_log_tail_quotes_the_first_error_above_the_tail(tmp_path: Path) -> None:
    """vLLM's worker fails loading a shard; the log ends with the engine's own wrapper error
    ("See root cause above") 100 lines further down."""
    from enginebench.engines.server import log_tail

    log = tmp_path / "server.log"
    cause = (
        "(Worker pid=7) ERROR 12-06 23:49:55 [multiproc_executor.py:953] safetensors."
        "_safetensors_rust.SafetensorError: Error while deserializing header: invalid JSON"
    )
    warning = (
        "(APIServer pid=6) WARNING 12-06 23:49:43 [system_utils.py:255] failed to increase: "
        "OSError: [Errno 24] Too many open files"
    )
    lines = [warning, "Traceback (most recent call last):", cause, *(["  frame"] * 100)]
    log.write_text("\n".join([*lines, "RuntimeError: Engine core initialization failed."]))
    tail = log_tail(log, 3).splitlines()
    assert tail[0] == f"first error: {cause}" and tail[1] == "..."
    assert tail[-1] == "RuntimeError: Engine core initialization failed." and len(tail) == 5
    # the first error already in the tail, or none at all: the tail alone
    assert log_tail(log, 200).splitlines()[0] == warning
    log.write_text("starting\nready\n")
    assert log_tail(log, 5) == "starting\nready"
