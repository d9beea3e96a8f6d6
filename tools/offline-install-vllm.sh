#!/usr/bin/env bash
# Run ON the GPU machine: joins the parts tools/offline-bundle-vllm.sh made (in order), checks the
# tar's sha256, installs its wheels into SITE (VLLM_SITE, default /tmp/vllm-site) with
# `pip install --no-index --no-deps --target` and checks that vLLM imports with the machine's torch.
# The workflow then serves vLLM from `python:` with env PYTHONPATH: SITE (config/gpu.yaml).
#
#     tools/offline-install-vllm.sh PARTS_DIR [PARTS_DIR ...]   # each holds vllm-wheels.tar.part
set -euo pipefail
PY=${PYTHON:-python3}
SITE=${VLLM_SITE:-/tmp/vllm-site}
die() { echo "offline-install-vllm: $*" >&2; exit 2; }
[ $# -gt 0 ] || die "give the folders of the parts, in order"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sums=
for d in "$@"; do
    [ -f "$d/vllm-wheels.tar.part" ] || die "$d: no vllm-wheels.tar.part"
    cat "$d/vllm-wheels.tar.part" >> "$WORK/vllm-wheels.tar"
    [ -f "$d/SHA256SUMS" ] && sums="$d/SHA256SUMS"
done
[ -n "$sums" ] || die "no SHA256SUMS among the parts (it travels with the first)"
[ "$(sha256sum "$WORK/vllm-wheels.tar" | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$sums")" ] \
    || die "the joined tar does not match: a part is missing or out of order"
tar -C "$WORK" -xf "$WORK/vllm-wheels.tar"
t0=$(date +%s)
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --disable-pip-version-check --target "$SITE" "$WORK"/wheels/*.whl || die "pip install failed"
echo "offline-install-vllm: $(ls "$WORK"/wheels/*.whl | wc -l) wheels into $SITE in $(( $(date +%s) - t0 )) s"
PYTHONPATH="$SITE" "$PY" -c "import torch, vllm; print('vllm', vllm.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
