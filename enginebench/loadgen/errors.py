"""The load generator's user-facing error: one line that names the problem and the fix."""

from __future__ import annotations

# exit statuses of `enginebench bench`
EXIT_OK = 0
EXIT_RUNTIME = 1  # server unreachable, model not served, every request rejected
EXIT_USAGE = 2  # bad flags or input files (argparse's convention)
EXIT_FAILED_REQUESTS = 3  # the run finished and was written, but too many requests failed
EXIT_STALLED = 4  # the server stopped sending while requests were in flight: stopped, written
EXIT_UNWRITABLE = 5  # the results could not be written (a full disk): nothing half-written left
EXIT_INTERRUPTED = 130  # Ctrl-C: what completed was written


class BenchError(Exception):
    """A problem the user can fix; printed as one line, never as a traceback."""

    def __init__(self, problem: str, fix: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(f"{problem}; fix: {fix}")
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code
