"""Host interference (enginebench.loadgen.interference): the shares, the `disturbed` flag, the
GPU side through a fake NVML, and the process trees with real busy processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import namedtuple
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from enginebench.loadgen import interference
from enginebench.loadgen.interference import HostSampler, listener_pids, local_host
from enginebench.loadgen.validity import DISTURBED_SHARE, disturbed

Times = namedtuple("Times", "user nice system idle steal")
SPIN = [sys.executable, "-c", "while True: pass"]


def test_shares_of_the_machine_and_the_flag() -> None:
    s = HostSampler([], None)
    s._t0, s._t1 = 0.0, 10.0
    s._cpu0 = Times(100.0, 0.0, 10.0, 0.0, 1.0)
    s.server.roots, s.server.first, s.server.last = [7], {7: 5.0}, {7: 9.0}  # 4 s
    s.client.first, s.client.last = {1: 0.0}, {1: 1.0}  # 1 s
    # 2 CPUs x 10 s = 20 cpu-s; busy 8 s: 4 server, 1 client, 3 others; 1 s stolen
    out = s.figures(Times(106.0, 1.0, 11.0, 0.0, 2.0), 2)
    assert out["host_busy_share"] == pytest.approx(0.4)
    assert out["host_server_cpu_share"] == pytest.approx(0.2)
    assert out["host_client_cpu_share"] == pytest.approx(0.05)
    assert out["host_others_cpu_share"] == pytest.approx(0.15)
    assert out["host_steal_share"] == pytest.approx(0.05)
    assert disturbed(out)
    assert not disturbed(out | {"host_others_cpu_share": 0.02, "host_steal_share": 0.0})
    # steal alone counts: the hypervisor gave the CPUs to someone else
    assert disturbed({"host_others_cpu_share": 0.0, "host_steal_share": DISTURBED_SHARE + 0.01})
    assert not disturbed({})  # not sampled: not judged


def test_gpu_others_through_nvml_and_an_unmatched_namespace() -> None:
    proc = SimpleNamespace
    sample = namedtuple("sample", "pid timeStamp smUtil")

    class Nvml:
        def __init__(self, pids: list[int], util: list[Any]) -> None:
            self.pids, self.util = pids, util

        def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[Any]:
            return [proc(pid=p) for p in self.pids]

        def nvmlDeviceGetProcessUtilization(self, h: Any, ts: int) -> list[Any]:
            return self.util

    util = [sample(10, 1, 60), sample(99, 1, 30), sample(10, 2, 70), sample(99, 2, 10)]
    s = HostSampler([10], (Nvml([10, 99], util), ["h0"]))
    s._sample_gpu({10})
    s._t0, s._t1, s._cpu0 = 0.0, 1.0, Times(0, 0, 0, 0, 0)
    out = s.figures(Times(0, 0, 0, 0, 0), 1)
    # pid 99's SM: 30 and 10 at the two sample times, 20% on average
    assert (out["gpu_other_processes"], out["gpu_others_sm_pct"]) == (1, pytest.approx(20.0))
    assert disturbed(out)
    # NVML's pids are another namespace's (none is the server's): not judged
    s = HostSampler([10], (Nvml([5001, 5002], util), ["h0"]))
    s._sample_gpu({10})
    s._t0, s._t1, s._cpu0 = 0.0, 1.0, Times(0, 0, 0, 0, 0)
    out = s.figures(Times(0, 0, 0, 0, 0), 1)
    assert out["gpu_other_processes"] is None and out["gpu_others_sm_pct"] is None


def test_local_hosts_and_the_listener_found_by_port() -> None:
    assert local_host("http://127.0.0.1:8000") and local_host("http://localhost:1")
    assert local_host("http://[::1]:8000") and local_host("http://0.0.0.0:9")
    assert not local_host("http://203.0.113.7:8000")  # TEST-NET-3: never this machine's
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listener_pids(port) == [os.getpid()]
        sampler = interference.start("auto", f"http://127.0.0.1:{port}", gpu_telemetry="off")
        assert sampler is not None and sampler.server.roots == [os.getpid()]
        sampler.stop()
    # a local server that no process of ours listens for: not judged
    assert interference.start("auto", f"http://127.0.0.1:{port}", gpu_telemetry="off") is None
    assert interference.start("off", "http://127.0.0.1:1", [1]) is None


def test_a_busy_process_counts_as_the_servers_or_as_others() -> None:
    """Real processes: one spinning under the 'server' (a child of the given pid, found by the
    tree walk), one spinning outside both trees: each one's CPU time lands on its side."""
    server = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; "
                               f"subprocess.run({SPIN!r})"])  # fmt: skip
    # outside this process's tree too (the load generator's): started by a shell that exits
    shell = f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    hog = int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout)
    try:
        time.sleep(0.5)
        spinner = psutil.Process(server.pid).children()[0]
        used0 = [sum(p.cpu_times()[:2]) for p in (spinner, psutil.Process(hog))]
        sampler = interference.HostSampler([server.pid], None, interval=0.2).start()
        time.sleep(2.0)
        out = sampler.stop()
        used1 = [sum(p.cpu_times()[:2]) for p in (spinner, psutil.Process(hog))]
    finally:  # the spinners first: killing their parent would leave its child spinning
        for pid in (hog, *(p.pid for p in psutil.Process(server.pid).children(recursive=True))):
            os.kill(pid, signal.SIGKILL)
        server.kill()
        server.wait()
    capacity = out["host_window_s"] * out["host_cpus"]
    spun, hogged = ((b - a) / capacity for a, b in zip(used0, used1, strict=True))
    assert spun > 0.05 and hogged > 0.05  # both ran
    # the spinner under the server is the server's (its parent idles), not ours, not others'
    assert out["host_server_cpu_share"] == pytest.approx(spun, abs=0.03)
    assert out["host_client_cpu_share"] < 0.03
    # the hog is others' (with whatever else ran on the machine meanwhile)
    assert out["host_others_cpu_share"] > hogged - 0.03
    assert spinner.pid in sampler.server.last and spinner.pid not in sampler.client.last
