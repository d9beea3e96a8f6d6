"""Running a tool: an argv list (never a shell string), and one line that says why it failed.

`run` returns the output, or appends it to a log file as it comes; a failure raises the
caller's own exception class (`CommandError` by default) with one line: what failed, how, and
the most telling line of the output. One helper, so that every step reports alike.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

# A line that reports an error: a compiler's or CMake's "error", git's "fatal:", a Python
# exception line ("ValueError: ...").
_ERROR_LINE = re.compile(r"\b(error|fatal)\b|^[\w.]*(Error|Exception)\b", re.I)


class CommandError(RuntimeError):
    """A command could not be run, timed out or exited non-zero; the message is one line."""


def telling_line(output: str) -> str:
    """The last line that reports an error (with the next one when it ends in ':', where CMake
    puts its message), else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    hits = [i for i, ln in enumerate(lines) if _ERROR_LINE.search(ln)]
    if not hits:
        return lines[-1] if lines else "no output"
    i = hits[-1]
    return " ".join(lines[i : i + 2]) if lines[i].endswith(":") else lines[i]


def run(
    argv: Sequence[str],
    *,
    what: str | None = None,
    error: type[Exception] = CommandError,
    log: str | Path | None = None,
    stderr: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> str:
    """The output of `argv`, stderr included unless `stderr=False` (then stderr only goes into
    the error message: a warning on stderr must not end up in parsed output).

    With `log`, the output is appended to that file as it comes, after a `$ argv` line: a long
    step (a build, a pip install) shows progress while it runs, and its failure keeps the whole
    output. The error message then ends with the log's path.
    """
    if isinstance(argv, str):
        raise TypeError("argv must be a list of arguments, never a shell string")
    what = what or Path(argv[0]).name
    where = "" if log is None else f" [{log}]"
    with contextlib.ExitStack() as stack:
        out: int | IO[bytes] = subprocess.PIPE
        start = 0  # where this command's output begins in the log
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(log, "ab"))
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            start = out.tell()
        try:
            done = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,  # a tool that asks a question fails, never hangs
                stdout=out,
                stderr=subprocess.STDOUT if stderr else subprocess.PIPE,
                text=True,
                errors="replace",
                env=None if env is None else dict(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except OSError as e:
            raise error(f"{what}: cannot run {argv[0]}: {e.strerror or e}") from e
        except subprocess.TimeoutExpired as e:
            raise error(f"{what}: no result after {e.timeout:g} s{where}") from e
    output = done.stdout if log is None else _read_from(log, start)
    if done.returncode != 0:
        told = telling_line(output + (done.stderr or ""))
        raise error(f"{what} failed (exit {done.returncode}): {told}{where}")
    return output


def _read_from(path: str | Path, offset: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")
