"""Open-loop arrival schedule: absolute send offsets (seconds from the start), seeded.

The schedule is `vllm bench serve`'s (`get_request` in vllm/benchmarks/serve.py), draw for
draw: vLLM seeds numpy's legacy global generator (`np.random.seed(seed)`) and draws one
`np.random.gamma(shape=burstiness, scale=1/(rate*burstiness))` per request, so the same
seed, rate and burstiness give the same send times here and there. Burstiness 1 is a
Poisson process, larger is more regular, smaller is burstier; burstiness inf is a constant
gap 1/rate, rate inf sends everything at t=0. The cumulative times are rescaled so the last
request lands exactly at N/rate (the sum of N random gaps misses N/rate by a few percent,
which would otherwise move the offered load from seed to seed).

A local `np.random.RandomState(seed)` yields the same stream as the legacy global generator
after `np.random.seed(seed)`, without touching global state. (vLLM's random dataset draws
from its own `default_rng`, so nothing consumes the global stream before `get_request`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RAMP_STRATEGIES = ("linear", "exponential")


@dataclass(frozen=True)
class Ramp:
    """A rate that rises over a point's requests from `start` to `end` req/s, request i (of N)
    offered `start + (end - start) * i/(N-1)` (linear) or `start * (end/start) ** (i/(N-1))`
    (exponential), as `vllm bench serve --ramp-up-strategy`."""

    strategy: str
    start: float
    end: float

    def rates(self, n: int) -> np.ndarray:
        """Each request's rate, in Python floats as vLLM computes them (numpy's power may
        differ in the last bit)."""
        steps = [i / max(n - 1, 1) for i in range(n)]
        if self.strategy == "linear":
            return np.array([self.start + (self.end - self.start) * x for x in steps])
        return np.array([self.start * (self.end / self.start) ** x for x in steps])


def arrival_offsets(
    num_requests: int,
    request_rate: float,
    burstiness: float = 1.0,
    seed: int = 0,
    ramp: Ramp | None = None,
) -> np.ndarray:
    """Send offsets in seconds (non-decreasing, length `num_requests`).

    `request_rate` inf sends every request at t=0; `burstiness` inf gives constant gaps. With a
    `ramp` each gap is drawn at its request's rate and the times are not rescaled (vLLM's).
    """
    if ramp is not None:
        rates = ramp.rates(num_requests)
        if math.isinf(burstiness):
            return np.cumsum(1.0 / rates)
        rng = np.random.RandomState(seed)
        return np.cumsum(rng.gamma(shape=burstiness, scale=1.0 / (rates * burstiness)))
    if num_requests < 0:
        raise ValueError(f"num_requests must be >= 0, got {num_requests}")
    if not request_rate > 0:
        raise ValueError(f"request rate must be > 0 (or inf), got {request_rate}")
    if not burstiness > 0:
        raise ValueError(f"burstiness must be > 0 (or inf), got {burstiness}")
    if num_requests == 0 or math.isinf(request_rate):
        return np.zeros(num_requests)
    if math.isinf(burstiness):
        gaps = np.full(num_requests, 1.0 / request_rate)
    else:
        # one array draw consumes the legacy stream exactly as N scalar draws do
        rng = np.random.RandomState(seed)
        gaps = rng.gamma(
            shape=burstiness, scale=1.0 / (request_rate * burstiness), size=num_requests
        )
    offsets = np.cumsum(gaps)  # sequential sums, as vLLM's running `+=`
    if offsets[-1] > 0:
        # same operation order as vLLM (factor first, then one multiply each): bit-identical
        offsets *= (num_requests / request_rate) / offsets[-1]
    return offsets
