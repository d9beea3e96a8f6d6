#!/usr/bin/env bash
# vLLM for the GPU machine without network (the `device` tool's H200): run HERE (PyPI reachable).
#
#     tools/offline-bundle-vllm.sh [OUT]       # OUT defaults to <repo>/.device/vllm (git-ignored)
#
# Downloads the wheels pinned in tools/vllm-h200-wheels.txt (py3.12 manylinux x86_64, ~360 MB),
# tars them and splits the tar into OUT/part-1 ... OUT/part-N of PART_MIB each: one device call
# carries at most 64 MiB, the working tree included, so each part travels in a call of its own
# (carry [".device/vllm/part-K"]), while the machine stays warm. PART_MIB defaults to what the
# working tree leaves of the 64 MiB, less 2. On the GPU machine:
#
#     tools/offline-install-vllm.sh <dir holding the parts>    # joins, checks, installs
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$REPO/.device/vllm}
PY=${PYTHON:-$REPO/.venv/bin/python}
die() { echo "offline-bundle-vllm: $*" >&2; exit 1; }
# shellcheck source=tools/device-travel.sh
. "$REPO/tools/device-travel.sh"   # TRAVEL_MIB, travel_repo_bytes, travel_shared_bytes
# what travels with every call besides the part
tree_mib=$(( ($(travel_repo_bytes "$REPO") + $(travel_shared_bytes "$REPO")) / 1048576 + 1 ))
PART_MIB=${PART_MIB:-$(( TRAVEL_MIB - tree_mib - 2 ))}
[ "$PART_MIB" -ge 8 ] || die "the working tree ($tree_mib MiB) leaves too little of a call's $TRAVEL_MIB MiB"

[ -x "$PY" ] || PY=$(command -v python3) || die "no python3 with pip"
if [ -e "$OUT" ]; then
    [ -f "$OUT/SHA256SUMS" ] || die "$OUT exists and is no bundle: not touching it"
    rm -rf "$OUT"
fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# the machine's glibc takes manylinux_2_31 (llguidance's only wheel); pip wants every tag named
platforms=()
for n in $(seq 5 31); do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
            --platform manylinux1_x86_64 --platform any)
grep -v '^#' "$REPO/tools/vllm-h200-wheels.txt" | grep -v '^[[:space:]]*$' > "$WORK/pins.txt"
want=$(wc -l < "$WORK/pins.txt")
echo "offline-bundle-vllm: downloading $want wheels ..."
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d "$WORK/wheels" -r "$WORK/pins.txt" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
got=$(ls "$WORK"/wheels/*.whl | wc -l)
[ "$got" -eq "$want" ] || die "expected $want wheels, got $got"

tar -C "$WORK" -cf "$WORK/vllm-wheels.tar" wheels
sha=$(sha256sum "$WORK/vllm-wheels.tar" | cut -d' ' -f1)
split -b "${PART_MIB}M" -d -a 2 "$WORK/vllm-wheels.tar" "$WORK/part-"
i=0
for part in "$WORK"/part-*; do
    i=$((i + 1))
    mkdir -p "$OUT/part-$i"
    mv "$part" "$OUT/part-$i/vllm-wheels.tar.part"
done
echo "$sha  vllm-wheels.tar" > "$OUT/SHA256SUMS"
cp "$OUT/SHA256SUMS" "$OUT/part-1/SHA256SUMS"   # travels with the first part
echo "offline-bundle-vllm: $got wheels, $(du -sh "$WORK/vllm-wheels.tar" | cut -f1), in $i parts of $PART_MIB MiB (the working tree: $tree_mib MiB):"
ls -d "$OUT"/part-*
