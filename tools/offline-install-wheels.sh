#!/usr/bin/env bash
# Run ON the GPU machine: joins the parts tools/offline-bundle-wheels.sh made, checks the tar's
# sha256, and installs its wheels into TARGET_DIR with `pip install --no-index --no-deps --target`
# (a site of its own: put it on PYTHONPATH for the program that needs it).
#
#     tools/offline-install-wheels.sh PARTS_DIR [PARTS_DIR ...] TARGET_DIR
#
# A PARTS_DIR is either the bundle folder (holding part-1 ... part-N, taken in numeric order) or
# one part folder (holding NAME-wheels.tar.part); several part folders are joined in the order
# given, e.g. $(ls -d .device/NAME/part-* | sort -V). SHA256SUMS travels with the first part.
#
# Environment: PYTHON (default python3: the machine's, with torch), CHECK_IMPORTS (modules to
# import from TARGET_DIR afterwards, printing their versions, e.g. "torch vllm").
set -euo pipefail
PY=${PYTHON:-python3}
die() { echo "offline-install-wheels: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: $0 PARTS_DIR [PARTS_DIR ...] TARGET_DIR (give the folders of the parts, in order)"
TARGET=${!#}
set -- "${@:1:$#-1}"

# the part files, in order
parts=()
add_part() {   # a folder holding exactly one *.tar.part
    local found=("$1"/*.tar.part)
    [ -f "${found[0]}" ] || die "$1: no *.tar.part"
    [ "${#found[@]}" -eq 1 ] || die "$1: more than one *.tar.part"
    parts+=("${found[0]}")
}
for d in "$@"; do
    [ -d "$d" ] || die "$d: no such folder"
    if compgen -G "$d/*.tar.part" >/dev/null; then
        add_part "$d"
    elif compgen -G "$d/part-*" >/dev/null; then
        while IFS= read -r sub; do add_part "$sub"; done < <(printf '%s\n' "$d"/part-* | sort -V)
    else
        die "$d: neither a part (*.tar.part) nor a bundle folder (part-*)"
    fi
done

# SHA256SUMS: beside the first part, or in a bundle folder given
sums=
for d in "$@" "$(dirname "${parts[0]}")"; do
    [ -f "$d/SHA256SUMS" ] && { sums="$d/SHA256SUMS"; break; }
done
[ -n "$sums" ] || die "no SHA256SUMS among the parts (it travels with the first)"
tar_line=$(grep -E '^[0-9a-f]{64}  [^/]+\.tar$' "$sums" | head -n 1) || die "$sums names no tar"
want_sha=${tar_line%% *}
tar_name=${tar_line##* }
for p in "${parts[@]}"; do
    [ "$(basename "$p")" = "$tar_name.part" ] || die "$p belongs to another bundle than $tar_name"
done
# each part's own sum, where SHA256SUMS has them (bundles since the generic tools)
n_listed=$(grep -cE "  part-[0-9]+/$tar_name\.part\$" "$sums" || true)
if [ "$n_listed" -gt 0 ]; then
    [ "${#parts[@]}" -eq "$n_listed" ] || die "got ${#parts[@]} part(s) of $n_listed"
    k=0
    for p in "${parts[@]}"; do
        k=$((k + 1))
        want=$(grep -E "  part-$k/$tar_name\.part\$" "$sums" | cut -d' ' -f1)
        [ "$(sha256sum "$p" | cut -d' ' -f1)" = "$want" ] \
            || die "$p is not part $k of $tar_name (missing, out of order or damaged)"
    done
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat "${parts[@]}" > "$WORK/$tar_name"
[ "$(sha256sum "$WORK/$tar_name" | cut -d' ' -f1)" = "$want_sha" ] \
    || die "the joined tar does not match: a part is missing or out of order"
tar -C "$WORK" -xf "$WORK/$tar_name"
rm "$WORK/$tar_name"
wheels=("$WORK"/wheels/*.whl)
[ -f "${wheels[0]}" ] || die "$tar_name holds no wheels/*.whl"
t0=$(date +%s)
mkdir -p "$TARGET"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --disable-pip-version-check --target "$TARGET" "${wheels[@]}" || die "pip install failed"
echo "offline-install-wheels: ${#wheels[@]} wheels from ${#parts[@]} part(s) into $TARGET in $(( $(date +%s) - t0 )) s (PYTHONPATH=$TARGET)"
if [ -n "${CHECK_IMPORTS:-}" ]; then
    PYTHONPATH="$TARGET${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$CHECK_IMPORTS" <<'EOF' || die "an import from $TARGET failed"
import importlib, sys
out = []
for name in sys.argv[1].split():
    mod = importlib.import_module(name)
    out.append(f"{name} {getattr(mod, '__version__', '?')}")
    if name == "torch":
        out.append(f"cuda {mod.cuda.is_available()}")
print(" | ".join(out))
EOF
fi
