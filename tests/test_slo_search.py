"""The adaptive SLO search: which rates it probes, when it stops, what it reports."""

from __future__ import annotations

from enginebench.slo_search import Search, meets, next_rate, outcome

SLO = {"ttft_ms": 500.0, "tpot_ms": 50.0}


def _search(probes: int = 8) -> Search:
    return Search(low=1.0, high=16.0, probes=probes, slo=SLO, num_prompts=32)


def _run(capacity: float, search: Search) -> dict[float, bool]:
    """Probe an engine that meets the SLO up to `capacity` req/s."""
    tried: dict[float, bool] = {}
    while (rate := next_rate(tried, search)) is not None:
        assert rate not in tried
        tried[rate] = rate <= capacity
    return tried


def test_bisects_between_the_bounds_within_the_budget() -> None:
    tried = _run(5.0, _search())
    assert list(tried)[:3] == [1.0, 16.0, 4.0]  # low, high, then the geometric middle
    found = outcome(tried, _search())
    assert found["bounded"] and found["slo_capacity"] <= 5.0 < found["first_failing"]
    assert found["first_failing"] / found["slo_capacity"] <= 1.05 or len(tried) == 8
    assert len(_run(5.0, _search(probes=4))) == 4  # the budget holds


def test_stops_at_once_outside_the_range() -> None:
    assert _run(0.5, _search()) == {1.0: False}  # below the range: nothing meets it
    assert _run(100.0, _search()) == {1.0: True, 16.0: True}  # a lower bound only
    assert outcome({1.0: True, 16.0: True}, _search())["bounded"] is False


def test_a_probe_meets_the_slo_only_steady_without_failures_and_within_every_p99() -> None:
    good = {"completed": 32, "failed": 0, "validity": [], "p99_ttft_ms": 120.0, "p99_tpot_ms": 9.0}
    assert meets(good, SLO)
    assert not meets(good | {"p99_ttft_ms": 501.0}, SLO)
    assert not meets(good | {"failed": 1}, SLO)
    assert not meets(good | {"validity": ["saturated"]}, SLO)
    assert not meets(good | {"p99_tpot_ms": None}, SLO)  # not measured is not met
    assert not meets(None, SLO)  # the point never wrote its summary (its server died)


def test_from_config() -> None:
    sweep = {"search": {"low": 0.5, "high": 8, "probes": 5}, "slo": SLO, "num_prompts": 16}
    assert Search.from_config(sweep) == Search(0.5, 8.0, 5, SLO, 16, 1.0)
    assert Search.from_config({"request_rates": [1]}) is None
