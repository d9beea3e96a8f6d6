"""The sweep's wait for an idle server after a point that left requests cancelled."""

from __future__ import annotations

import threading
import time
import urllib.request

from enginebench import settle
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread


def _busy(url: str, tokens: int) -> threading.Thread:
    """A streamed request of `tokens` tokens, read to its end in a thread (the leftover work)."""
    body = f'{{"model": "fake", "prompt": "x", "max_tokens": {tokens}, "stream": true}}'
    req = urllib.request.Request(
        url + "/v1/completions", data=body.encode(), headers={"Content-Type": "application/json"}
    )

    def read() -> None:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_settle_waits_for_the_leftover_work_and_gives_up_at_its_limit() -> None:
    # one request at a time, 50 ms a token: a 40-token request keeps the server 2 s busy
    cfg = FakeServerConfig(model="fake", token_delay_s=0.05, max_running=1)
    with serve_in_thread(cfg) as srv:
        idle = settle.probe_s(srv.base_url, "/v1/completions", "fake", {})
        assert idle is not None and idle < 0.5
        busy = _busy(srv.base_url, 40)
        time.sleep(0.2)
        waited = settle.settle(srv.base_url, "/v1/completions", "fake", {}, idle)
        assert waited["settled"] is True and 1.0 < float(waited["settle_s"]) < 4.0
        busy.join(5)
        busy = _busy(srv.base_url, 40)
        time.sleep(0.2)
        gave_up = settle.settle(srv.base_url, "/v1/completions", "fake", {}, idle, limit_s=0.5)
        assert gave_up["settled"] is False
        busy.join(5)
        # an endpoint that fails is not judged
        assert settle.probe_s(srv.base_url, "/v1/completions", "other-model", {}) is None
        chat = settle.probe_s(srv.base_url, "/v1/chat/completions", "fake", {})
        assert chat is not None and chat < 0.5
