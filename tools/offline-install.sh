#!/usr/bin/env bash
# Run ON the GPU machine (no network), from the repo root, with the bundle that
# tools/offline-bundle.sh made here carried along (device call: carry [".device/bundle"]):
#
#     tools/offline-install.sh [BUNDLE ...]     # default .device/bundle, or .device/bundle-a + -b
#
# Installs the bundle's wheels into SITE (ENGINEBENCH_SITE, default /tmp/enginebench-site) with
# `pip install --no-index --no-deps --target`, prints the PYTHONPATH to export (SITE + repo root:
# the enginebench package is used from the checkout, not installed), then checks what the workflow
# needs: every requirement of the installed wheels met (by them or by python3's own packages), none
# of python3's packages shadowed, imports (snakemake, pulp, enginebench, pandas + Parquet, fastapi,
# uvicorn), `transformers serve --help`, and the llama.cpp repository (file://BUNDLE/llama.cpp.git).
# Nothing is cloned for the workflow: its config points at the repository (printed at the end).
# PYTHON: the interpreter (default python3, the one that holds torch there).
# Exit status 0 when every check passed.
set -uo pipefail

ROOT=$(pwd -P)
PY=${PYTHON:-python3}
SITE=${ENGINEBENCH_SITE:-/tmp/enginebench-site}
die() { echo "offline-install: $*" >&2; exit 2; }
[ -f "$ROOT/Snakefile" ] && [ -d "$ROOT/enginebench" ] || die "run it from the repo root"

bundles=("$@")
if [ ${#bundles[@]} -eq 0 ]; then
    if [ -d .device/bundle ]; then bundles=(.device/bundle)
    elif [ -d .device/bundle-a ]; then bundles=(.device/bundle-a .device/bundle-b)
    else die "no bundle: give its folder(s)"; fi
fi
wheels=()
repo_dir=
for b in "${bundles[@]}"; do
    [ -f "$b/SHA256SUMS" ] || die "$b: no SHA256SUMS, not a bundle (did the call carry it?)"
    (cd "$b" && sha256sum -c --quiet --strict SHA256SUMS) || die "$b: checksums do not match"
    [ -d "$b/wheels" ] && wheels+=("$b"/wheels/*.whl)
    [ -d "$b/llama.cpp.git" ] && repo_dir=$(cd "$b/llama.cpp.git" && pwd -P)
done
[ ${#wheels[@]} -gt 0 ] || die "no wheels in ${bundles[*]}"
echo "offline-install: $("$PY" --version 2>&1) at $(command -v "$PY"); ${#wheels[@]} wheels -> $SITE"

t0=$(date +%s)
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --disable-pip-version-check --target "$SITE" "${wheels[@]}" || die "pip install failed"
echo "offline-install: installed in $(( $(date +%s) - t0 )) s"
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$SITE/bin:$PATH"

passed=0; failed=0
check() {  # check NAME COMMAND...: runs it, shows its output, counts it
    local name=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "  ok    $name"
    else failed=$((failed + 1)); echo "  FAIL  $name (exit $rc)"; fi
    [ -n "$out" ] && printf '%s\n' "$out" | tail -n 25 | sed 's/^/        /'
    return 0
}

echo "offline-install: checks"
check "requirements met (wheels, pyproject), nothing shadowed" "$PY" - "$SITE" <<'EOF'
import sys
from importlib import metadata
from packaging.requirements import Requirement
from packaging.version import Version
site = sys.argv[1]
# Snakemake 9.27.1 caps packaging below 26; python3 there may have 26.x, which it runs with.
CAP_ONLY = {("snakemake", "packaging"), ("snakemake-interface-common", "packaging")}
ours = {d.metadata["Name"]: d for d in metadata.distributions(path=[site])}
others = [p for p in sys.path if p and p != site]
theirs = {d.metadata["Name"].lower().replace("_", "-"): d.version
          for d in metadata.distributions(path=others)}
bad = []
for name, dist in sorted(ours.items()):
    key = name.lower().replace("_", "-")
    if key in theirs:
        bad.append(f"{name} {dist.version} shadows python3's own {name} {theirs[key]}")
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            bad.append(f"{name} needs {req}: not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            if (name, req.name) in CAP_ONLY and Version(have) >= Version("24.0"):
                print(f"accepted: {name} declares {req}, {req.name} {have} is installed (it uses "
                      "only packaging.version.parse/Version; rehearsed with packaging 26.3)")
                continue
            bad.append(f"{name} needs {req}: {req.name} {have} is installed")
# the project's own needs (pyproject: dependencies + the workflow extra; torch, cmake and ninja
# are pinned there for the CPU machines: the GPU machine brings its own)
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for line in project["dependencies"] + project["optional-dependencies"]["workflow"]:
    req = Requirement(line)
    if req.name.lower() in ("torch", "cmake", "ninja"):
        continue
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        bad.append(f"enginebench needs {req}: not installed")
        continue
    if not req.specifier.contains(have, prereleases=True):
        bad.append(f"enginebench needs {req}: {req.name} {have} is installed")
print(f"{len(ours)} wheels in {site}")
print("python3's own: " + ", ".join(
    f"{n} {theirs.get(n, '-')}" for n in ("torch", "transformers", "numpy", "pandas", "pyarrow",
    "typing-extensions", "anyio", "packaging", "click", "h11", "jinja2", "pyyaml", "protobuf",
    "sentencepiece", "huggingface-hub", "accelerate", "python-dateutil")))
for b in bad:
    print("UNMET:", b)
sys.exit(1 if bad else 0)
EOF
check "import snakemake, pulp, enginebench, pandas; DataFrame.to_parquet" "$PY" -c "
import snakemake, pulp, enginebench, pandas
pandas.DataFrame({'a': [1]}).to_parquet('/tmp/x.parquet')
assert pandas.read_parquet('/tmp/x.parquet')['a'].tolist() == [1]
from pandas.io.parquet import get_engine
print('parquet engine:', type(get_engine('auto')).__name__, '| pulp solvers:', pulp.listSolvers(onlyAvailable=True))"
check "import fastapi, uvicorn" "$PY" -c "import fastapi, uvicorn, pydantic, openai; print('fastapi', fastapi.__version__, 'uvicorn', uvicorn.__version__, 'pydantic', pydantic.__version__, 'openai', openai.__version__)"
check "python3 -m snakemake --version" "$PY" -m snakemake --version
if command -v transformers >/dev/null; then
    check "transformers serve --help" timeout 180 transformers serve --help
else
    check "transformers serve --help" timeout 180 "$PY" -c "
import sys
from transformers.cli.transformers import main
sys.argv = ['transformers', 'serve', '--help']
main()"
fi
if [ -n "$repo_dir" ]; then
    url="file://$repo_dir"
    if [ "$(stat -c %u "$repo_dir")" != "$(id -u)" ]; then  # git refuses another user's repository
        git config --global --add safe.directory "$repo_dir"
        echo "offline-install: $repo_dir belongs to another user: added to git's safe.directory"
    fi
    sha=$(git ls-remote "$url" HEAD 2>/dev/null | cut -f1)
    scratch=$(mktemp -d)
    check "llama.cpp.git: shallow fetch of $sha" bash -c "
        git init -q '$scratch' && cd '$scratch' &&
        git fetch -q --depth 1 -- '$url' '$sha' && git -c advice.detachedHead=false checkout -q FETCH_HEAD &&
        test -f CMakeLists.txt -a -f convert_hf_to_gguf.py -a -d gguf-py -a -d tools/server &&
        echo \"\$(git rev-parse HEAD): \$(git ls-files | wc -l) files\""
    rm -rf "$scratch"
fi

echo
echo "offline-install: use it with"
echo "    export PYTHONPATH=$SITE:$ROOT"
if [ -n "$repo_dir" ]; then
    echo "  and in the workflow config (engines.llamacpp):"
    echo "    source: git"
    echo "    git_url: file://$repo_dir"
    echo "    commit: \"$sha\""
fi
echo "offline-install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
