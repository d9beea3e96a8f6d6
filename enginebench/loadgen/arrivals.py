"""Open-loop arrival schedule: absolute send offsets (seconds from the start), seeded.

Gaps follow Gamma(shape=burstiness, scale=1/(rate*burstiness)): burstiness 1 is a Poisson
process, larger is more regular, infinite is a constant gap, smaller is burstier. As in
`vllm bench serve`, the cumulative times are rescaled so the last request lands exactly at
N/rate: the sum of N random gaps misses N/rate by a few percent, which would otherwise move
the offered load from seed to seed.
"""

from __future__ import annotations

import math

import numpy as np


def arrival_offsets(
    num_requests: int, request_rate: float, burstiness: float = 1.0, seed: int = 0
) -> np.ndarray:
    """Send offsets in seconds (non-decreasing, length `num_requests`).

    `request_rate` inf sends every request at t=0; `burstiness` inf gives constant gaps.
    """
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
        rng = np.random.default_rng(seed)
        gaps = rng.gamma(
            shape=burstiness, scale=1.0 / (request_rate * burstiness), size=num_requests
        )
    offsets = np.cumsum(gaps)
    if offsets[-1] > 0:
        offsets *= (num_requests / request_rate) / offsets[-1]
    return offsets
