"""Print every job Snakemake would plan for the workflow, as JSON, without running anything.

For comparing the workflow's jobs before and after a refactoring:

    .venv/bin/python tools/dag_dump.py [--configfile A.yaml ...] [--target T ...] > before.json
    # ... refactor ...
    .venv/bin/python tools/dag_dump.py [--configfile A.yaml ...] [--target T ...] > after.json
    diff before.json after.json

Each job: its rule, wildcards, input, output and log files, and its params (the evaluated
`params:`, made JSON-serializable: Path -> str, anything not JSON-like -> repr). The whole DAG
is planned (as `--forceall`), in a fresh scratch working directory (unless --directory) whose
`config/` is the repository's, so the embedded config/config.yaml is found and --configfile
files are layered over it as with `snakemake` from the repository root, and results already made
hide no job. Planning is what `snakemake --dag` does (DAGApi.printdag): no executor, scheduler
or onstart handler runs. As with `snakemake -n`, one core is assumed (threads and params that
depend on it see 1). Jobs are sorted by (rule, outputs); stdout carries only the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import (
    ConfigSettings,
    DAGSettings,
    OutputSettings,
    ResourceSettings,
)

REPO = Path(__file__).resolve().parents[1]


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it: containers kept, Path -> str, the rest -> repr."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):  # no run-dependent order
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return repr(value)


def job_entry(job: Any) -> dict[str, Any]:
    return {
        "rule": job.rule.name,
        "wildcards": {k: str(v) for k, v in job.wildcards_dict.items()},
        "input": sorted(map(str, job.input)),
        "output": sorted(map(str, job.output)),
        "log": sorted(map(str, job.log)),
        "params": {name: jsonable(value) for name, value in job.params.items()},
    }


@contextlib.contextmanager
def workdir(directory: Path | None) -> Iterator[Path]:
    """The given working directory, or a scratch one whose config/ is the repository's."""
    if directory is not None:
        yield directory.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="dag_dump-") as tmp:
        (Path(tmp) / "config").symlink_to(REPO / "config", target_is_directory=True)
        yield Path(tmp)


def plan(
    configfiles: Sequence[Path], targets: Sequence[str], directory: Path | None
) -> list[dict[str, Any]]:
    """The jobs of the whole DAG for these config files and targets, sorted. Exits 1 on a
    workflow error (a bad config, an unknown target), told on stderr as Snakemake tells it."""
    config = ConfigSettings(configfiles=[p.resolve() for p in configfiles])
    quiet = OutputSettings(quiet={Quietness.PROGRESS, Quietness.RULES, Quietness.HOST})
    # anything the workflow prints goes to stderr: stdout is the JSON's
    with (
        workdir(directory) as wd,
        contextlib.redirect_stdout(sys.stderr),
        SnakemakeApi(quiet) as api,
    ):
        try:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=config,
                snakefile=REPO / "Snakefile",
                workdir=wd,
            )
            workflow_api.dag(DAGSettings(targets=frozenset(targets), forceall=True))
            # DAGApi.printdag without the print: the DAG is built, nothing executes
            workflow = workflow_api._workflow
            workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
            workflow._build_dag()
            jobs = [job_entry(job) for job in workflow.dag.jobs]
        except Exception as exc:
            api.print_exception(exc)
            raise SystemExit(1) from None
    return sorted(jobs, key=lambda j: (j["rule"], j["output"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configfile", nargs="+", action="extend", type=Path, default=[], metavar="FILE"
    )
    parser.add_argument("--target", nargs="+", action="extend", default=[], metavar="T")
    parser.add_argument(
        "--directory", type=Path, help="working directory to plan in (default: a scratch one)"
    )
    args = parser.parse_args(argv)
    jobs = plan(args.configfile, args.target, args.directory)
    json.dump(jobs, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
