#!/usr/bin/env bash
# One commit of a git repository as a small bare repository, for a machine without network (the
# GPU machine): the workflow's `source_url: file:///...` fetches from it as it would from GitHub.
# Run HERE (where SRC is reachable):
#
#     tools/offline-bundle-git.sh SRC COMMIT [OUT]
#
# SRC: a clone's path or a URL; COMMIT: the full 40-hex sha to carry (it becomes branch `pinned`);
# OUT defaults to <repo>/.device/<SRC's name>.git (.device/ is git-ignored). Shallow (depth 1):
# TabbyAPI at 01a5915 is 0.3 MB. Carry it in a call (carry [".device/NAME.git"]) and point the
# engine's source_url at file:///<where it landed>.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "offline-bundle-git: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 SRC COMMIT [OUT]"
SRC=$1 COMMIT=$2
[[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]] || die "$COMMIT: give the full 40-hex commit sha"
name=$(basename "${SRC%/}" .git)
[ "$name" = repo ] && name=$(basename "$(dirname "${SRC%/}")")   # a /work/.mirror/OWNER+NAME/repo
OUT=$(realpath -m "${3:-$REPO/.device/${name##*+}.git}")
[ -d "$SRC" ] && SRC="file://$(realpath "$SRC")"
[ ! -e "$OUT" ] || [ -f "$OUT/HEAD" ] || die "$OUT exists and is no git repository: not touching it"
rm -rf "$OUT"
git init -q --bare "$OUT"
git --git-dir="$OUT" -c protocol.version=2 fetch -q --depth 1 "$SRC" "$COMMIT:refs/heads/pinned" \
    || { rm -rf "$OUT"; die "cannot fetch $COMMIT from $SRC"; }
git --git-dir="$OUT" symbolic-ref HEAD refs/heads/pinned
got=$(git --git-dir="$OUT" rev-parse pinned)
[ "$got" = "$COMMIT" ] || die "fetched $got, not $COMMIT"
echo "offline-bundle-git: $OUT ($(du -sh "$OUT" | cut -f1)): $COMMIT as branch pinned"
