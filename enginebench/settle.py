"""Waiting for a server to be idle again between two points of a sweep.

A point stopped early (over-saturated) or on a stall cancels its requests in flight, but a
server may go on with them for a while: MLC-LLM on 2 CPU cores finishes the engine step it is
in (a batched prefill of dozens of prompts) before it sees the aborts. The next point measured
meanwhile measures that leftover work, not its own load (seen: MLC's conc-1 point after three
early stops, 94.6 s and 0.17 req/s instead of ~15 s and 1 req/s, no flag raised). So after
such a point the sweep sends a short request (PROBE_TOKENS: decode steps too, since a server
that schedules prefills first answers a 1-token request at once while it still decodes a batch
of leftovers), again every second, until one takes no more than SLOWER times (plus SLACK_S)
what it took on the idle server just after the warm-up.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Mapping

PROBE_TOKENS = 8
SLOWER = 2.0
SLACK_S = 0.2
LIMIT_S = 600.0  # then the sweep goes on, the wait recorded as not settled
PROBE_TIMEOUT_S = 30.0
_EVERY_S = 1.0


def probe_s(
    base_url: str,
    endpoint: str,
    served: str,
    headers: Mapping[str, str],
    timeout: float = PROBE_TIMEOUT_S,
) -> float | None:
    """Seconds one PROBE_TOKENS-token request took (None: it failed or timed out)."""
    chat = endpoint.rstrip("/").endswith("chat/completions")
    prompt = {"messages": [{"role": "user", "content": "Hi"}]} if chat else {"prompt": "Hi"}
    req = urllib.request.Request(
        base_url.rstrip("/") + endpoint,
        data=json.dumps({"model": served, "max_tokens": PROBE_TOKENS, **prompt}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except (OSError, ValueError):  # HTTP errors, refused, timed out
        return None
    return time.monotonic() - t0


def settle(
    base_url: str,
    endpoint: str,
    served: str,
    headers: Mapping[str, str],
    idle_s: float,
    limit_s: float = LIMIT_S,
) -> dict[str, float | bool]:
    """Probe until the server answers as fast as when idle (`idle_s`), at most `limit_s`:
    {"settle_s": seconds waited, "settled": whether it did}."""
    t0 = time.monotonic()
    bound = SLOWER * idle_s + SLACK_S
    while True:
        took = probe_s(base_url, endpoint, served, headers)
        waited = time.monotonic() - t0
        if took is not None and took <= bound:
            return {"settle_s": round(waited, 3), "settled": True}
        if waited >= limit_s:
            return {"settle_s": round(waited, 3), "settled": False}
        time.sleep(_EVERY_S)
