"""Check a folder of wheels for the GPU machine (CPython 3.12.3, Linux x86-64, no network: it cannot
resolve anything, so every need must be in the set or on the machine already).

    python tools/wheelset_check.py WHEELS_DIR [options]

Each wheel's tags and METADATA Requires-Dist are read, then:
  - one version per project;
  - each wheel has a tag that CPython 3.12 on manylinux_2_N x86_64 takes (N: --max-manylinux);
  - a wheel of a project the machine has (--machine-has) is a problem (--shadow error) or a note
    (--shadow note);
  - every Requires-Dist whose marker holds on the machine is met by the set, or by the machine:
    a name pinned in --machine-versions must satisfy the specifier, a name only in --machine-has
    is assumed to (listed as "assumed on the machine"), a name in --leave-out is left out on
    purpose (listed), anything else is unmet. Without --machine-has this part is skipped;
  - with --roots, every wheel is needed (through requirements inside the set) by one of the roots.
Prints a summary line, the notes and each problem as "  UNMET: ..."; exit status 1 when there is a
problem, else 0. The wording is that of the calling tool (--messages).

Used by tools/offline-bundle.sh and tools/offline-bundle-wheels.sh; needs the stdlib and
`packaging` only. The machine's package list lives in tools/offline-bundle.sh (MACHINE_HAS,
MACHINE_VERSIONS); the callers pass it.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

# the machine's interpreter, for Requires-Dist markers
MACHINE_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "implementation_version": "3.12.3",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}

# each caller's wording (the summary line names the caller)
MESSAGES = {
    "offline-bundle": {
        "summary": "offline-bundle: {n} wheels; requirements checked for py3.12 linux x86_64",
        "set_has": "bundle has",
        "machine_has": "machine has",
        "neither": "neither in the bundle nor on the machine",
        "assumed": "assumed on the machine (version not known here)",
        "orphan": "in the bundle but needed by nothing the workflow uses",
    },
    "offline-bundle-wheels": {
        "summary": "offline-bundle-wheels: {n} wheels checked for CPython 3.12 linux x86_64",
        "set_has": "the set has",
        "machine_has": "the machine has",
        "neither": "neither in the set nor on the machine",
        "assumed": "assumed on the machine (its version not known here)",
        "orphan": "in the set but needed by nothing the workflow uses",
    },
}


def supported_tags(max_manylinux: int) -> set[Tag]:
    """The tags CPython 3.12 takes on x86-64 Linux with glibc 2.<max_manylinux>."""
    plats = [f"manylinux_2_{n}_x86_64" for n in range(max_manylinux, 4, -1)] + [
        "manylinux2014_x86_64",
        "manylinux2010_x86_64",
        "manylinux1_x86_64",
        "linux_x86_64",
    ]
    return set(cpython_tags((3, 12), platforms=plats)) | set(
        compatible_tags((3, 12), "cp312", platforms=plats)
    )


def requirements(whl: Path) -> list[Requirement]:
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        reqs = Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []
    return [Requirement(r) for r in reqs]


def words(values: list[str]) -> list[str]:
    """Options given as blank-separated lists, possibly repeated."""
    return " ".join(values).split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="wheelset_check.py",
        description="Check a set of py3.12 wheels against the GPU machine's package list.",
        allow_abbrev=False,
    )
    p.add_argument("wheels", type=Path, help="the folder of .whl files")
    p.add_argument(
        "--max-manylinux",
        type=int,
        default=28,
        metavar="N",
        help="the newest manylinux_2_N tag the machine takes (default 28)",
    )
    p.add_argument(
        "--shadow",
        choices=("error", "note"),
        default="error",
        help="a wheel of a project the machine has: a problem (default) or a note",
    )
    p.add_argument(
        "--machine-has",
        action="append",
        default=[],
        metavar="NAMES",
        help="the machine's projects (blank-separated; repeatable); without it requirements "
        "are not checked",
    )
    p.add_argument(
        "--machine-versions",
        action="append",
        default=[],
        metavar="PINS",
        help="name==version of the machine's projects whose version is known",
    )
    p.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="NAMES",
        help="requirements deliberately not carried (listed, not counted as unmet)",
    )
    p.add_argument(
        "--roots",
        action="append",
        default=[],
        metavar="NAMES",
        help="what the workflow uses: every wheel must be needed by one of these",
    )
    p.add_argument(
        "--assumed-note",
        action="append",
        nargs=2,
        default=[],
        metavar=("NAME", "TEXT"),
        help="print '  note: TEXT' when NAME is assumed on the machine",
    )
    p.add_argument(
        "--messages",
        choices=sorted(MESSAGES),
        default="offline-bundle-wheels",
        help="the calling tool, whose wording the output keeps",
    )
    args = p.parse_args(argv)
    if not args.wheels.is_dir():
        p.error(f"{args.wheels}: no such folder")
    if args.max_manylinux < 5:
        p.error("--max-manylinux is 5 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = MESSAGES[args.messages]
    machine = {canonicalize_name(n) for n in words(args.machine_has)}
    known = {
        canonicalize_name(p.split("==")[0]): Version(p.split("==")[1])
        for p in words(args.machine_versions)
    }
    leave_out = {canonicalize_name(n) for n in words(args.leave_out)}
    env = default_environment() | MACHINE_ENV
    supported = supported_tags(args.max_manylinux)

    problems: list[str] = []
    bundle: dict[str, tuple[Version, list[Requirement]]] = {}
    for whl in sorted(args.wheels.glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(whl.name)
        if name in bundle:
            problems.append(f"two versions of {name}: {bundle[name][0]} and {version}")
        if not tags & supported:
            problems.append(
                f"{whl.name}: no tag that CPython 3.12 manylinux_2_{args.max_manylinux} "
                "x86_64 takes"
            )
        if name in machine:
            if args.shadow == "error":
                problems.append(f"{whl.name}: the machine has {name} already (it would shadow it)")
            else:
                print(
                    f"  note: {name} {version} shadows the machine's own {name} where the set is "
                    "on the path"
                )
        bundle[name] = (version, requirements(whl))

    assumed: dict[str, set[str]] = {}
    edges: dict[str, set[str]] = {}
    for name, (version, reqs) in sorted(bundle.items()):
        for req in reqs:
            if req.marker is not None and not req.marker.evaluate(env):
                continue  # an extra, or another platform / older Python (stdlib backports)
            dep = canonicalize_name(req.name)
            edges.setdefault(name, set()).add(dep)
            if not machine:
                continue  # no package list: nothing to check the requirements against
            if dep in bundle:
                if not req.specifier.contains(bundle[dep][0], prereleases=True):
                    problems.append(
                        f"{name} {version} needs {req}: {say['set_has']} {dep} {bundle[dep][0]}"
                    )
            elif dep in known:
                if not req.specifier.contains(known[dep], prereleases=True):
                    problems.append(
                        f"{name} {version} needs {req}: {say['machine_has']} {dep} {known[dep]}"
                    )
            elif dep in machine:
                if str(req.specifier):
                    assumed.setdefault(dep, set()).add(f"{req.specifier} ({name})")
            elif dep in leave_out:
                print(f"  left out on purpose: {req} ({name} {version})")
            else:
                problems.append(f"{name} {version} needs {req}: {say['neither']}")

    roots = {canonicalize_name(n) for n in words(args.roots)}
    if roots:
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            n = todo.pop()
            if n in seen or n not in bundle:
                continue
            seen.add(n)
            todo += edges.get(n, ())
        for orphan in sorted(set(bundle) - seen):
            problems.append(f"{orphan}: {say['orphan']}")

    print(say["summary"].format(n=len(bundle)))
    for dep, specs in sorted(assumed.items()):
        print(f"  {say['assumed']}: {dep} {'; '.join(sorted(specs))}")
    for name, text in args.assumed_note:
        if canonicalize_name(name) in assumed:
            print(f"  note: {text}")
    for p in problems:
        print(f"  UNMET: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
