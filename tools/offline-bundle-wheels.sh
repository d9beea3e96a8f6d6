#!/usr/bin/env bash
# Python wheels for the GPU machine without network (the `device` tool's H100/H200: CPython 3.12.3,
# glibc 2.39, x86-64): run HERE (PyPI reachable).
#
#     tools/offline-bundle-wheels.sh PINLIST [OUT [WHEEL ...]]
#
# PINLIST: one wheel a line, either `name==version` (downloaded for cp312 / manylinux x86_64, no
# dependencies resolved: the list is the whole set) or the path of a local .whl file (copied as is;
# absolute, or relative to the current folder or to the repo). `#` starts a comment; blank lines are
# skipped. A comment line `# leave-out: NAME ...` names requirements of the listed wheels that are
# deliberately not carried (the check below then does not count them as unmet).
# OUT defaults to <repo>/.device/<PINLIST's name less "-wheels.txt"> (.device/ is git-ignored).
# More wheels: WHEEL arguments after OUT, and EXTRA_WHEELS (paths or pins, separated by blanks), e.g.
#     EXTRA_WHEELS="$(ls resources/engines/mlc/archive-*/dist/mlc_llm-*.whl)" \
#         tools/offline-bundle-wheels.sh tools/mlc-gpu-wheels.txt .device/mlc
#
# The wheels are checked by tools/wheelset_check.py (one version per project; a tag CPython 3.12
# manylinux_2_39 x86_64 takes; every Requires-Dist met by the set or by the machine's package list,
# which is read from tools/offline-bundle.sh), tarred as NAME-wheels.tar and split into
# OUT/part-1 ... OUT/part-N: one device call carries at most 64 MiB, the working tree included, so
# each part travels in a call of its own (carry [".device/NAME/part-K"]) while the machine stays
# warm. OUT/SHA256SUMS (a copy travels in part-1) holds the tar's sum and each part's;
# OUT/wheels.txt lists the set. On the GPU machine:
#
#     tools/offline-install-wheels.sh .device/NAME TARGET_DIR      # joins, checks, installs
#
# Environment:
#   PYTHON               an interpreter with pip and packaging (default <repo>/.venv/bin/python)
#   BUNDLE_NAME          NAME of the tar and its parts (default OUT's folder name)
#   PART_MIB             part size; default what the working tree leaves of the 64 MiB, less 2
#   PART_BYTES           part size in bytes (overrides PART_MIB; for tests)
#   WHEEL_CHECK          strict (default: an unmet check fails the bundle), warn, or off
#   OFFLINE_WHEELS_FROM  a folder of wheels already downloaded: each pin is taken from there
#                        (by name and version) instead of PyPI; nothing is downloaded
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "offline-bundle-wheels: $*" >&2; exit 1; }
say() { echo "offline-bundle-wheels: $*"; }
[ $# -ge 1 ] || die "usage: $0 PINLIST [OUT [WHEEL ...]]"
PINLIST=$1
[ -f "$PINLIST" ] || die "$PINLIST: no such pin list"
stem=$(basename "$PINLIST" .txt)
OUT=$(realpath -m "${2:-$REPO/.device/${stem%-wheels}}")
shift $(( $# >= 2 ? 2 : 1 ))
NAME=${BUNDLE_NAME:-$(basename "$OUT")}
TAR="$NAME-wheels.tar"
CHECK=${WHEEL_CHECK:-strict}
case "$CHECK" in strict|warn|off) ;; *) die "WHEEL_CHECK is strict, warn or off, not '$CHECK'" ;; esac
PY=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3) || die "no python3 with pip"

# shellcheck source=tools/device-travel.sh
. "$REPO/tools/device-travel.sh"   # TRAVEL_MIB, travel_repo_bytes, travel_shared_bytes
# what travels with every call besides the part
tree_mib=$(( ($(travel_repo_bytes "$REPO") + $(travel_shared_bytes "$REPO")) / 1048576 + 1 ))
if [ -n "${PART_BYTES:-}" ]; then
    [ "$PART_BYTES" -gt 0 ] || die "PART_BYTES must be positive"
    part_size=$PART_BYTES
    part_words="$PART_BYTES bytes"
else
    PART_MIB=${PART_MIB:-$(( TRAVEL_MIB - tree_mib - 2 ))}
    [ "$PART_MIB" -ge 8 ] || die "the working tree ($tree_mib MiB) leaves too little of a call's $TRAVEL_MIB MiB"
    part_size=$(( PART_MIB * 1048576 ))
    part_words="$PART_MIB MiB"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/wheels"

# --- the list: name==version pins and local wheel paths --------------------------------------------
extra=()
for w in "$@"; do extra+=("$w"); done
if [ -n "${EXTRA_WHEELS:-}" ]; then
    read -r -d '' -a more <<< "$EXTRA_WHEELS" || true   # blanks or newlines between them
    extra+=("${more[@]}")
fi
pins=() paths=() leave_out=()
n=0
while IFS= read -r raw || [ -n "$raw" ]; do
    n=$((n + 1))
    if [[ $raw =~ ^[[:space:]]*#[[:space:]]*leave-out:(.*)$ ]]; then
        read -r -a names <<< "${BASH_REMATCH[1]}"
        leave_out+=("${names[@]}")
    fi
    line=${raw%%#*}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [ -n "$line" ] || continue
    if [[ $line == *.whl ]]; then
        paths+=("$line")
    elif [[ $line =~ ^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$ ]]; then
        pins+=("$line")
    else
        die "$PINLIST:$n: '$line' is neither name==version nor a .whl path"
    fi
done < <(cat "$PINLIST"; for w in "${extra[@]}"; do printf '%s\n' "$w"; done)
want=$(( ${#pins[@]} + ${#paths[@]} ))
[ "$want" -gt 0 ] || die "$PINLIST lists no wheel"

for p in "${paths[@]}"; do
    src=$p
    [ -f "$src" ] || [[ $p == /* ]] || src=$REPO/$p
    [ -f "$src" ] || die "$p: no such wheel (absolute, or relative to $PWD or $REPO)"
    cp "$src" "$WORK/wheels/"
done

if [ "${#pins[@]}" -gt 0 ]; then
    if [ -n "${OFFLINE_WHEELS_FROM:-}" ]; then
        say "taking ${#pins[@]} pinned wheels from $OFFLINE_WHEELS_FROM (no download) ..."
        "$PY" - "$OFFLINE_WHEELS_FROM" "$WORK/wheels" "${pins[@]}" <<'EOF' || die "a pin is not in $OFFLINE_WHEELS_FROM"
import shutil, sys
from pathlib import Path
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
src, dst, pins = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
have = {}
for w in src.glob("*.whl"):
    name, version, _, _ = parse_wheel_filename(w.name)
    have.setdefault((name, version), []).append(w)
missing = []
for pin in pins:
    name, version = pin.split("==")
    found = have.get((canonicalize_name(name), Version(version)))
    if found:
        shutil.copy2(sorted(found)[0], dst)
    else:
        missing.append(pin)
for pin in missing:
    print(f"offline-bundle-wheels: no wheel for {pin}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF
    else
        # every tag the machine's glibc 2.39 takes (sglang's and others' newest wheels are manylinux_2_34)
        platforms=()
        for v in $(seq 5 39); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
        platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
                    --platform manylinux1_x86_64 --platform linux_x86_64 --platform any)
        say "downloading ${#pins[@]} wheels (cp312, manylinux x86_64) ..."
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d "$WORK/wheels" "${pins[@]}" 2>&1 \
            | grep -v "is ignored: it is neither a file nor a directory" || true
    fi
fi
got=$(find "$WORK/wheels" -maxdepth 1 -name '*.whl' | wc -l)
[ "$got" -eq "$want" ] || die "expected $want wheels, got $got (a pin without a cp312 manylinux x86_64 wheel?)"

# --- checks of the set (the machine cannot resolve anything: every need must be here or there) -----
if [ "$CHECK" != off ]; then
    # the machine's package list lives in tools/offline-bundle.sh (MACHINE_HAS, MACHINE_VERSIONS)
    machine_has='' machine_versions=''
    if [ -f "$REPO/tools/offline-bundle.sh" ]; then
        machine_has=$(sed -n '/^MACHINE_HAS="/,/"$/p' "$REPO/tools/offline-bundle.sh" | sed 's/^MACHINE_HAS="//; s/"$//')
        machine_versions=$(sed -n '/^MACHINE_VERSIONS="/,/"$/p' "$REPO/tools/offline-bundle.sh" | sed 's/^MACHINE_VERSIONS="//; s/"$//')
    fi
    [ -n "$machine_has" ] || say "WARNING: no machine package list in tools/offline-bundle.sh: requirements not checked"
    "$PY" "$REPO/tools/wheelset_check.py" "$WORK/wheels" --messages offline-bundle-wheels \
        --max-manylinux 39 --shadow note --leave-out "${leave_out[*]}" \
        --machine-has "$machine_has" --machine-versions "$machine_versions" \
        || [ "$CHECK" = warn ] || die "the set fails its check (WHEEL_CHECK=warn to bundle it anyway)"
fi

# --- tar, sums, parts --------------------------------------------------------------------------------
if [ -e "$OUT" ]; then
    [ -f "$OUT/SHA256SUMS" ] || [ -z "$(ls -A "$OUT")" ] || die "$OUT exists and is no bundle: not touching it"
    rm -rf "$OUT"
fi
mkdir -p "$OUT"
"$PY" - "$WORK/wheels" > "$OUT/wheels.txt" <<'EOF'
import sys
from pathlib import Path
from packaging.utils import parse_wheel_filename
for w in sorted(Path(sys.argv[1]).glob("*.whl")):
    name, version, _, _ = parse_wheel_filename(w.name)
    print(f"{name}=={version}  {w.name}")
EOF
# the same bytes for the same wheels: sorted names, fixed owner and times
tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$WORK/$TAR" wheels
split -b "$part_size" -d -a 3 "$WORK/$TAR" "$WORK/part-"
i=0
for part in "$WORK"/part-*; do
    i=$((i + 1))
    mkdir -p "$OUT/part-$i"
    mv "$part" "$OUT/part-$i/$TAR.part"
done
{
    (cd "$WORK" && sha256sum "$TAR")
    (cd "$OUT" && for k in $(seq 1 "$i"); do sha256sum "part-$k/$TAR.part"; done)
} > "$OUT/SHA256SUMS"
cp "$OUT/SHA256SUMS" "$OUT/wheels.txt" "$OUT/part-1/"   # travel with the first part
size=$(du -sb "$WORK/$TAR" | awk '{printf "%.1f", $1 / 1048576}')
say "$got wheels, $size MiB, in $i part(s) of at most $part_words (the working tree: $tree_mib MiB of a call's $TRAVEL_MIB):"
printf '%s\n' "$OUT"/part-* | sort -V
case "$OUT/" in
    "$REPO"/*) rel=${OUT#"$REPO"/} ;;
    *) rel="<OUT copied into a git-ignored folder of the repo>" ;;
esac
say "carry one part per call ([\"$rel/part-K\"]), then there: tools/offline-install-wheels.sh $rel TARGET_DIR"
