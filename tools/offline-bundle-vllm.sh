#!/usr/bin/env bash
# vLLM 0.26.0 for the GPU machine (tools/vllm-h200-wheels.txt, ~360 MB) in parts of OUT (default
# <repo>/.device/vllm); run HERE: tools/offline-bundle-vllm.sh [OUT]. See tools/offline-bundle-wheels.sh
# (its check only warns: the list was measured working with 10 of vLLM's requirements left out).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEEL_CHECK=${WHEEL_CHECK:-warn} BUNDLE_NAME=vllm exec "$REPO/tools/offline-bundle-wheels.sh" "$REPO/tools/vllm-h200-wheels.txt" "${1:-$REPO/.device/vllm}"
