"""The `enginebench` command: a thin dispatcher over the package's subcommands."""

from __future__ import annotations

import importlib
import sys

# subcommand -> module whose `main(argv) -> int` runs it (imported lazily: `bench` must start fast)
SUBCOMMANDS = {
    "bench": (
        "enginebench.loadgen.runner",
        "run the load generator against an OpenAI-compatible server",
    ),
    "serve-sweep": ("enginebench.sweep", "start an engine's server, warm up, run a sweep, stop it"),
    "lock": ("enginebench.lockfile", "resolve the config's moving git refs into its lock file"),
    "options": ("enginebench.engines.registry", "list each engine's own config options"),
}


def _usage() -> str:
    lines = ["usage: enginebench <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from enginebench import __version__

        print(__version__)
        return 0
    if args[0] not in SUBCOMMANDS:
        print(f"enginebench: unknown command {args[0]!r}\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[args[0]][0])
    return int(module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
