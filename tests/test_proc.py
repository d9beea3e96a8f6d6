"""`proc.run`: output captured or logged, and failures as one line in the caller's class."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from enginebench import proc

PY = sys.executable


class StepError(RuntimeError):
    pass


def test_output_with_and_without_stderr() -> None:
    code = "import sys; print('out', flush=True); print('warn', file=sys.stderr)"
    assert proc.run([PY, "-c", code]).split() == ["out", "warn"]
    assert proc.run([PY, "-c", code], stderr=False) == "out\n"


def test_failure_is_one_line_in_the_callers_class() -> None:
    code = "import sys; print('noise'); raise ValueError('bad input')"
    with pytest.raises(StepError) as e:
        proc.run([PY, "-c", code], what="step", error=StepError, stderr=False)
    assert str(e.value) == "step failed (exit 1): ValueError: bad input"
    with pytest.raises(StepError, match=r"^nope: cannot run /nonexistent/tool: "):
        proc.run(["/nonexistent/tool"], what="nope", error=StepError)
    with pytest.raises(proc.CommandError, match=r"^python\S*: no result after 0\.2 s$"):
        proc.run([PY, "-c", "import time; time.sleep(5)"], timeout=0.2)
    with pytest.raises(TypeError):
        proc.run("echo hi")


def test_logged_output_is_appended_and_returned(tmp_path: Path) -> None:
    log, first = tmp_path / "sub" / "step.log", [PY, "-c", "print('one')"]
    assert proc.run(first, log=log) == "one\n"
    with pytest.raises(proc.CommandError) as e:
        proc.run([PY, "-c", "print('two', flush=True); raise SystemExit('error: two')"], log=log)
    assert str(e.value).endswith(f"failed (exit 1): error: two [{log}]")
    text = log.read_text()
    assert text.startswith(f"$ {shlex.join(first)}\none\n$ ")
    assert text.endswith("two\nerror: two\n")


def test_telling_line() -> None:
    cmake = "-- Configuring\nCMake Error at CMakeLists.txt:2 (message):\n  boom: no cc\n\n-- done"
    assert proc.telling_line(cmake) == "CMake Error at CMakeLists.txt:2 (message): boom: no cc"
    assert proc.telling_line("a\nfatal: not a git repository\nb") == "fatal: not a git repository"
    assert proc.telling_line("x\nNotImplementedError: no\n") == "NotImplementedError: no"
    assert proc.telling_line("just\nlast") == "last"
    assert proc.telling_line("") == "no output"
