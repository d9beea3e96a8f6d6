#!/usr/bin/env bash
# ON the GPU machine: tools/offline-install-vllm.sh PARTS_DIR [PARTS_DIR ...] installs the vLLM parts into
# VLLM_SITE (default /tmp/vllm-site, config/gpu.yaml's PYTHONPATH for vLLM) and imports vLLM with the
# machine's torch. See tools/offline-install-wheels.sh.
CHECK_IMPORTS=${CHECK_IMPORTS:-torch vllm} exec "$(dirname "${BASH_SOURCE[0]}")/offline-install-wheels.sh" "$@" "${VLLM_SITE:-/tmp/vllm-site}"
