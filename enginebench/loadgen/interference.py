"""Host interference over a point's measured window: how much of the machine processes other
than the engine's server and the load generator used while the point ran.

The CPU time the whole host spent busy (user + nice + system, from /proc/stat through psutil;
a guest's time is inside user) minus the CPU time of the server's process tree and of the load
generator's own tree is what *others* used. Shares are of the machine over the window
(cpu-seconds / (window x logical CPUs)). Steal (time the hypervisor gave this VM's CPUs to
someone else) is read beside it where the kernel reports it. Interrupt time (irq, softirq) is
left out of both sides: the kernel charges it to no process, and loopback traffic causes it.

On a GPU, the other processes holding a context on the server's GPUs are counted through NVML,
with their share of the SM where the driver reports per-process utilization. NVML names host
process ids: where none of them is the server's (a container's own pid namespace), the GPU side
is not judged rather than counting the server as someone else.

The trees are walked once a second from a thread (short /proc reads), so a process that starts
and ends between two walks is counted as someone else's time: conservative, never hidden.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psutil

from enginebench.loadgen import telemetry

DEFAULT_INTERVAL_S = 1.0


def local_host(url: str) -> bool:
    """Whether `url` points at this machine (loopback, or one of its own addresses)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        try:
            addr = ipaddress.ip_address(socket.gethostbyname(host))
        except OSError:
            return False
    if addr.is_loopback or addr.is_unspecified:
        return True
    own = {a.address.split("%")[0] for nics in psutil.net_if_addrs().values() for a in nics}
    return str(addr) in own


def listener_pids(port: int) -> list[int]:
    """The processes listening on `port`, where this user may see them (another user's sockets,
    a root container's, carry no pid for us)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return []
    return sorted(
        {c.pid for c in conns if c.pid and c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    )


@dataclass
class _Tree:
    """CPU seconds (user + system) of each process of a tree, when first and last seen."""

    roots: list[int]
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    procs: dict[int, psutil.Process] = field(default_factory=dict)

    def walk(self, t0_epoch: float, skip: set[int] | frozenset[int] = frozenset()) -> set[int]:
        """Reads each process of the tree but those in `skip` (another tree's); their pids."""
        found: set[int] = set()
        for root in self.roots:
            try:
                top = self.procs.get(root) or psutil.Process(root)
                members = [top, *top.children(recursive=True)]
            except psutil.Error:  # gone: what was seen of it stays counted
                continue
            for p in members:
                if p.pid in skip:
                    continue
                p = self.procs.setdefault(p.pid, p)
                try:
                    times = p.cpu_times()
                    born = p.create_time()
                except psutil.Error:
                    continue
                cpu = times.user + times.system
                # a process born during the window: all of its time is the window's
                self.first.setdefault(p.pid, cpu if born < t0_epoch else 0.0)
                self.last[p.pid] = cpu
                found.add(p.pid)
        return found

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _busy(times: Any) -> float:
    return float(times.user + times.nice + times.system)


class HostSampler:
    """Samples the host from `start()` to `stop()`; `stop()` returns the summary's keys."""

    def __init__(
        self,
        server_pids: Sequence[int],
        gpu: tuple[Any, Sequence[Any]] | None = None,
        interval: float = DEFAULT_INTERVAL_S,
        server_pid_source: str = "",
    ) -> None:
        self.server = _Tree(list(server_pids))
        self.client = _Tree([os.getpid()])
        self.source = server_pid_source
        self.nvml: Any = gpu[0] if gpu else None
        self.handles: list[Any] = list(gpu[1]) if gpu else []
        self.interval = interval
        self.load_max = 0.0
        self.gpu_others: set[int] = set()
        self.gpu_others_sm: list[float] = []  # per sample: the others' SM %, summed over GPUs
        self.gpu_pid_seen = False  # some NVML pid is the server's: NVML's pids are ours
        self.gpu_sm_known = False
        self._gpu_ts: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="host-interference", daemon=True)
        self._t0 = self._t1 = 0.0
        self._epoch0 = 0.0
        self._cpu0: Any = None

    def start(self) -> HostSampler:
        self._epoch0 = time.time()
        self._t0 = time.perf_counter()
        self._cpu0 = psutil.cpu_times()
        self._sample()
        self._thread.start()
        return self

    def _sample(self) -> None:
        server = self.server.walk(self._epoch0)
        self.client.walk(self._epoch0, skip=server)  # a server we started is the server
        self.load_max = max(self.load_max, psutil.getloadavg()[0])
        if self.nvml is not None:
            self._sample_gpu(server)

    def _sample_gpu(self, server: set[int]) -> None:
        n, others, sm = self.nvml, set(), 0.0
        for h in self.handles:
            try:
                pids = {p.pid for p in n.nvmlDeviceGetComputeRunningProcesses(h)}
            except Exception:  # a GPU that stops answering: what was sampled stays
                continue
            self.gpu_pid_seen |= bool(pids & server)
            others |= pids - server
            try:
                samples = n.nvmlDeviceGetProcessUtilization(h, self._gpu_ts.get(id(h), 0))
            except Exception:  # NVML_ERROR_NOT_FOUND (no sample since), NotSupported
                continue
            self.gpu_sm_known = True
            if samples:
                self._gpu_ts[id(h)] = max(s.timeStamp for s in samples)
                # mean over the driver's sample times of the others' summed SM %
                stamps = len({s.timeStamp for s in samples})
                sm += sum(s.smUtil for s in samples if s.pid not in server) / stamps
        self.gpu_others |= others
        self.gpu_others_sm.append(sm)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except Exception:  # a failing read: keep what was sampled
                return

    def stop(self) -> dict[str, Any]:
        """Ends sampling; the window's figures as summary keys."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self._t1 = time.perf_counter()
        return self.figures(psutil.cpu_times(), psutil.cpu_count() or 1)

    def figures(self, cpu1: Any, cpus: int) -> dict[str, Any]:
        window = self._t1 - self._t0
        capacity = window * cpus
        if capacity <= 0:
            return {}
        busy = _busy(cpu1) - _busy(self._cpu0)
        server, client = self.server.seconds(), self.client.seconds()
        steal = getattr(cpu1, "steal", None)
        out: dict[str, Any] = {
            "host_cpus": cpus,
            "host_window_s": window,
            "host_busy_share": busy / capacity,
            "host_server_cpu_share": server / capacity if self.server.roots else None,
            "host_client_cpu_share": client / capacity,
            # without the server's processes (a remote server: none here) others are all but us
            "host_others_cpu_share": max(0.0, busy - server - client) / capacity,
            "host_steal_share": None if steal is None else (steal - self._cpu0.steal) / capacity,
            "host_load_max": self.load_max,
            "host_server_pids": self.server.roots,
            "host_server_pid_source": self.source,
        }
        if self.nvml is not None:
            judged = self.gpu_pid_seen  # else NVML's pids are another namespace's
            sm = self.gpu_others_sm
            out |= {
                "gpu_other_processes": len(self.gpu_others) if judged else None,
                "gpu_others_sm_pct": sum(sm) / len(sm)
                if judged and self.gpu_sm_known and sm
                else None,
            }
        return out


def start(
    mode: str,
    base_url: str,
    server_pids: Iterable[int] = (),
    gpu_telemetry: str = "auto",
    interval: float = DEFAULT_INTERVAL_S,
) -> HostSampler | None:
    """A running sampler (`--host-interference auto`), or None: off, or a local server whose
    processes cannot be found (not judged, rather than counting it as someone else). The
    server's processes: those given (`--server-pid`) and, where the server is on this host, the
    listener on the URL's port (a container's engine, where this user may see it)."""
    if mode == "off":
        return None
    pids, sources = set(server_pids), ["--server-pid"] if server_pids else []
    if local_host(base_url):
        port = urlsplit(base_url).port or (443 if base_url.startswith("https") else 80)
        if listeners := listener_pids(port):
            pids |= set(listeners)
            sources.append(f"the listener on port {port}")
        elif not pids:
            print(
                f"note: no process of this user listens on port {port}: host interference is "
                "not judged (pass --server-pid)",
                file=sys.stderr,
            )
            return None
    else:
        sources.append("none: the server is not on this host")
    gpu = None
    if gpu_telemetry != "off" and (nvml := telemetry.load_nvml()) is not None:
        try:
            handles = telemetry.visible_handles(nvml, os.environ.get("CUDA_VISIBLE_DEVICES"))
        except Exception:  # a UUID NVML does not know: no GPU side
            handles = []
        gpu = (nvml, handles) if handles else None
    return HostSampler(sorted(pids), gpu, interval, ", ".join(sources)).start()
