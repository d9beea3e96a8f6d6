"""Faults on the real llama-server (issue 24): a truncated model file fails in seconds with the
server's own words; a port another process took is given up for another, once."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from enginebench import sweep
from enginebench.engines.server import ManagedServer, ServerError, free_port
from enginebench.points import SweepPoint
from enginebench.runspec import RunSpec

pytestmark = pytest.mark.engines


def test_a_truncated_gguf_fails_in_seconds_quoting_the_server(
    llama_server_bin: Path, tiny_gguf: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.gguf"
    data = tiny_gguf.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # a download cut short
    port = free_port()
    server = ManagedServer(
        [str(llama_server_bin), "-m", str(cut), "--port", str(port), "--host", "127.0.0.1"],
        port=port, log_path=tmp_path / "server.log", ready_timeout=300,
    )  # fmt: skip
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err, server:
        pass
    took = time.monotonic() - t0
    first, _, tail = str(err.value).partition("\n")
    assert took < 30, took  # not the readiness timeout
    assert "exited with code" in first and "before it was ready" in first
    assert "gguf" in tail.lower() or "model" in tail.lower()  # the server's own reason
    assert server.proc is not None and server.proc.poll() is not None


def test_a_port_taken_before_the_bind_is_given_up_once(
    llama_server_bin: Path, tiny_gguf: Path, tiny_model_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Another process listens on the port the sweep chose, before the server binds it: the
    server exits, the sweep starts it again on another port and measures there."""
    prompts = tmp_path / "p.jsonl"
    from enginebench.loadgen.datasets import materialize_dataset

    materialize_dataset(prompts, "random", 4, tiny_model_dir, input_len=16, output_len=4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(sweep, "free_port", lambda host="127.0.0.1": next(picks, None)
                            or free_port(host))  # fmt: skip
        cfg = RunSpec(
            engine="llamacpp", model=str(tiny_gguf), out_dir=str(tmp_path / "points"),
            prompts_file=str(prompts), points=(SweepPoint("concurrency", 1.0, 2),),
            tokenizer=str(tiny_model_dir), warmups=0, server_args=("-np", "1", "-c", "1024"),
            bin_dir=str(llama_server_bin.parent), served_name="tiny",
        )  # fmt: skip
        assert sweep.run_sweep(cfg) == 0
    record = json.loads((tmp_path / "points" / "server.json").read_text())
    assert record["port_taken"] == taken and f":{taken}" not in record["server"]["base_url"]
    assert json.loads((tmp_path / "points" / "conc-1.json").read_text())["completed"] == 2
