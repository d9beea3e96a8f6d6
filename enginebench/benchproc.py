"""The load generator's process for each point (and warm-up) of a sweep: forked from the sweep,
which has imported the load generator and its tokenizer's class once, instead of a new
interpreter per point.

`python -m enginebench bench` spends ~2 s on a 2-core machine importing aiohttp, numpy and
transformers before its first request, the server idle meanwhile: a sweep of 6 points and 2
warm-ups spent ~16 s that way. A fork of a process that has them imported runs the same
`enginebench bench` main on the same argv, which stays what the sweep records and what a user
runs to repeat a point. The fork happens in the sweep's one thread, outside any event loop; the
child gets the default signal handlers back, and the `__main__` that `python -m enginebench`
has, so that the load generator's spawned workers never run the sweep's own script again.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Sequence

_PREFIX = ["-m", "enginebench"]


def preload(tokenizer: str | None) -> None:
    """Import what every point's load generator imports, in the sweep, before its warm-up (when
    its points will be forked). A failure is left to the points: each reports its own."""
    if not _forkable():
        return
    from enginebench.loadgen import runner  # noqa: F401  (aiohttp, numpy, the load generator)
    from enginebench.loadgen.errors import BenchError
    from enginebench.loadgen.tokenizer import tokenizer_class

    if tokenizer:
        with contextlib.suppress(BenchError, ImportError):
            tokenizer_class(tokenizer)


class Forked:
    """`enginebench bench <args>` in a fork of this process: the part of `subprocess.Popen`
    that the sweep uses (pid, poll, wait, send_signal, kill, returncode)."""

    def __init__(self, args: Sequence[str]) -> None:
        ctx = multiprocessing.get_context("fork")
        self._proc = ctx.Process(target=_child, args=(list(args),), name="enginebench bench")
        self._proc.start()
        self.pid = self._proc.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._proc.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._proc.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired("enginebench bench", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self.pid is not None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def launch(argv: Sequence[str]) -> subprocess.Popen[bytes] | Forked:
    """Start `argv`: forked when it is this interpreter's `-m enginebench ...` and this process
    can fork safely, else as a new process."""
    argv = list(argv)
    if argv[:3] == [sys.executable, *_PREFIX] and _forkable():
        return Forked(argv[3:])
    return subprocess.Popen(argv)


def _forkable() -> bool:
    """Only a process of one thread forks safely (a lock another thread held stays held in the
    child): a sweep's is; one run inside another program (a test's in-process server) may not
    be."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def _child(args: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the load generator's Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("enginebench.__main__", None)
    sys.modules["__main__"] = main  # as under `python -m enginebench`: spawn re-imports no script
    sys.argv = ["enginebench", *args]
    from enginebench import cli

    sys.exit(cli.main(args))
