#!/usr/bin/env bash
# Run by Snakemake after it creates the conda env from vllm-cpu.yaml (--software-deployment-method
# conda): the same fix the venv builder applies (enginebench/engines/vllm.py, VENV_POST_INSTALL).
# torchvision, torchaudio and torchcodec arrive as CUDA builds and break `import vllm` on CPU.
set -euo pipefail
python -m pip uninstall -y torchvision torchaudio torchcodec || true
