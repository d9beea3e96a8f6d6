"""Trace replay (`--dataset-name trace`): the two formats' parsing and bad rows, the window, the
synthesized prompts' reuse, the replay's send times, and a replay against the fake server."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from enginebench.loadgen import traces
from enginebench.loadgen.datasets import expected_cached
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.runner import main
from enginebench.loadgen.tokenizer import Tokenizer
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

SLICES = Path(__file__).parent / "fixtures" / "traces"
MOONCAKE = SLICES / "mooncake-fast25-conversation-head40.jsonl"
AZURE = SLICES / "azure-llm-2023-conv-head40.csv"


def test_the_public_slices_read_as_their_readme_says() -> None:
    moon = traces.read_trace(MOONCAKE)
    assert len(moon) == 40 and moon[0].line == 1 and moon[-1].line == 40
    assert sorted({r.arrival_s for r in moon}) == [0.0, 3.0, 5.999, 9.0, 12.0]
    assert moon[0].hash_ids is not None and moon[0].hash_ids[0] == 0 == moon[1].hash_ids[0]
    assert all(len(r.hash_ids or ()) == math.ceil(r.input_len / 512) for r in moon)
    azure = traces.read_trace(AZURE)  # CRLF, 7-digit fractions
    assert len(azure) == 40 and azure[0].line == 2 and azure[0].arrival_s == 0.0
    assert (azure[0].input_len, azure[0].output_len) == (374, 44)
    assert azure[1].arrival_s == pytest.approx(50.9951690 - 46.6805900, abs=1e-6)
    assert 20 < azure[-1].arrival_s < 30 and azure[0].hash_ids is None


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("t.jsonl", '{"timestamp": 5, "input_length": 4, "output_length": 1, "hash_ids": [1]}\n'
         '{"timestamp": 2, "input_length": 4, "output_length": 1, "hash_ids": [2]}\n',
         r"t.jsonl:2: timestamp earlier than line 1's \(unsorted trace\)"),
        ("t.jsonl", '{"timestamp": 0, "input_length": 4, "hash_ids": [1]}\n',
         r"t.jsonl:1: a Mooncake row needs .* \(missing 'output_length'\)"),
        ("t.jsonl", '{"timestamp": 0, "input_length": 1025, "output_length": 1, "hash_ids": [1]}\n',
         r"t.jsonl:1: 1 hash_ids for 1025 input tokens; blocks of 512 tokens make 3"),
        ("t.jsonl", '{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}\n',
         r"t.jsonl:1: input_length 0 is not an integer >= 1"),
        ("t.jsonl", "{not json\n", r"t.jsonl:1: not JSON"),
        ("t.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.68,3\n",
         r"t.csv:1: an Azure trace needs the columns .* \(missing GeneratedTokens\)"),
        ("t.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46,3,4\r\n"
         "yesterday,3,4\r\n", r"t.csv:3: not an Azure trace row"),
        ("t.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,3,4\n"
         "2023-11-16 18:15:45,3,4\n", r"t.csv:3: timestamp earlier than line 2's"),
        ("t.txt", "", r"cannot tell the format of trace"),
        ("t.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n", r"has no requests"),
    ],
)  # fmt: skip
def test_bad_traces_are_one_line_naming_the_line(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    path = tmp_path / name
    path.write_text(text, newline="")
    with pytest.raises(BenchError, match=match) as err:
        traces.read_trace(path)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_a_request_beyond_the_context_names_its_line_and_the_scale_that_fits() -> None:
    rows = traces.read_trace(MOONCAKE)
    with pytest.raises(BenchError, match=r"head40.jsonl:12: 87169 prompt \+ 402 output tokens "
                       r"exceed the model's 50000-token context.*scale <= 0.565"):  # fmt: skip
        traces.check_context(rows, traces.Scale(), 50_000, str(MOONCAKE))
    traces.check_context(rows, traces.Scale(0.565, 0.565), 50_000, str(MOONCAKE))  # fits
    traces.check_context(rows, traces.Scale(), None, str(MOONCAKE))  # no context known


def test_window_rebases_to_its_first_request() -> None:
    rows = traces.window(traces.read_trace(MOONCAKE), 3.0, 6.0)
    assert [r.arrival_s for r in rows][:1] == [0.0] and rows[0].line == 11
    assert sorted({round(r.arrival_s, 6) for r in rows}) == [0.0, 2.999] and len(rows) == 19
    with pytest.raises(BenchError, match=r"no trace request arrives in \[100, 101\) s"):
        traces.window(rows, 100.0, 1.0)


def test_prompts_reuse_what_the_trace_reuses(tokenizer: Tokenizer) -> None:
    """Equal leading hash ids make equal prompt prefixes; `reuse` counts the leading blocks an
    earlier request sent, `prefix_len` those another request holds; another copy draws other
    tokens for the same ids."""
    mk = traces.TraceRequest
    rows = [mk(1, 0.0, 48, 4, (7, 8, 9)), mk(2, 1.0, 40, 4, (7, 8, 5)), mk(3, 2.0, 20, 4, (6, 7))]
    scale = traces.Scale(block_len=16)
    a, b, c = traces.trace_prompts(tokenizer, rows, scale, seed=3)
    same = len(tokenizer.decode(tokenizer.encode(a.prompt, add_special_tokens=False)[:30]))
    assert a.prompt[: same - 8] == b.prompt[: same - 8] and a.prompt != b.prompt
    assert not c.prompt.startswith(a.prompt[:20])  # block 6 was never sent
    n_special = len(tokenizer.encode("a")) - len(tokenizer.encode("a", add_special_tokens=False))
    # the tokens a and b share: their two blocks and the BOS, and a token or so where the
    # shared text meets their own (it may merge with it)
    ids_a, ids_b = tokenizer.encode(a.prompt), tokenizer.encode(b.prompt)
    lcp = next(k for k, (x, y) in enumerate(zip(ids_a, ids_b, strict=False)) if x != y)
    assert 32 + n_special <= lcp <= 32 + n_special + 4
    assert [p.reuse for p in (a, b, c)] == [0, lcp, 0]
    # the hits the trace asks for: what another request shares, whichever is computed first
    assert [p.prefix_len for p in (a, b, c)] == [lcp, lcp, n_special]
    assert [p.arrival_s for p in (a, b, c)] == [0.0, 1.0, 2.0] and a.output_len == 4
    assert expected_cached([a, b, c]) == [0, min(lcp, b.prompt_len - 1), 0]
    again = traces.trace_prompts(tokenizer, rows, scale, seed=3)
    assert [p.prompt for p in again] == [a.prompt, b.prompt, c.prompt]  # seeded
    other = traces.trace_prompts(tokenizer, rows, scale, seed=3, copy=1)
    assert other[0].prompt[:20] != a.prompt[:20] and other[1].reuse >= 32 + n_special
    warm = traces.trace_prompts(tokenizer, rows, scale, seed=3, warmup=True)
    assert warm[0].prompt[:20] != a.prompt[:20]


def test_replay_offsets_follow_the_trace_faster() -> None:
    from enginebench.loadgen.datasets import Prompt

    prompts = [Prompt("x", 1, 1, arrival_s=t) for t in (2.0, 2.0, 5.0, 11.0)]
    assert traces.replay_offsets(prompts, 1.0) == [0.0, 0.0, 3.0, 9.0]
    assert traces.replay_offsets(prompts, 3.0) == [0.0, 0.0, 1.0, 3.0]


def test_an_azure_replay_against_the_fake_server(tmp_path: Path, tokenizer_dir: Path) -> None:
    """The Azure slice's first 8 s, 8x faster, its lengths scaled: sent at the trace's times
    (dispatch lag small), each request its own length, the point named trace-8."""
    prov = tmp_path / "provenance.json"
    prov.write_text(json.dumps({"engine": "fake"}))
    with serve_in_thread(FakeServerConfig(tokens=2)) as srv:
        argv = [
            "--base-url", srv.base_url, "--model", "fake-model", "--tokenizer", str(tokenizer_dir),
            "--dataset-name", "trace", "--dataset-path", str(AZURE), "--trace-duration", "8",
            "--trace-input-scale", "0.05", "--trace-output-scale", "0.1", "--trace-speedup", "8",
            "--num-warmups", "2", "--ignore-eos", "--point", "trace-8",
            "--provenance-file", str(prov), "--save-result", "--result-dir", str(tmp_path),
            "--result-filename", "trace-8.json",
        ]  # fmt: skip
        assert main(argv) == 0
    summary: dict[str, Any] = json.loads((tmp_path / "trace-8.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "trace-8.jsonl").read_text().splitlines()]
    window = traces.window(traces.read_trace(AZURE), 0.0, 8.0)
    assert summary["completed"] == len(window) == summary["trace_requests"] and len(window) > 4
    assert summary["point"] == {"name": "trace-8", "mode": "trace", "load": 8.0, "repeat": 0}
    assert summary["trace_speedup"] == 8.0
    assert summary["trace_span_s"] == pytest.approx(window[-1].arrival_s / 8)
    assert summary["request_rate"] == pytest.approx(len(window) / summary["trace_span_s"])
    assert summary["saturated"] is None  # not judged for a replay
    by_index = sorted(rows, key=lambda r: r["index"])
    scheduled = [r["scheduled_s"] for r in by_index]
    assert scheduled == pytest.approx([r.arrival_s / 8 for r in window], abs=1e-9)
    assert [r["expected_output_len"] for r in by_index] == [
        max(1, round(r.output_len * 0.1)) for r in window
    ]
    assert summary["dispatch_lag_ms"]["p99"] < 50


def test_trace_flags_are_checked() -> None:
    from enginebench.loadgen.cli_args import parse_args

    with pytest.raises(BenchError, match="--trace-speedup replays a trace"):
        parse_args(["--trace-speedup", "1"])
    with pytest.raises(BenchError, match="excludes --request-rate"):
        parse_args(["--dataset-name", "trace", "--dataset-path", "t.csv", "--trace-speedup",
                    "1", "--request-rate", "2"])  # fmt: skip
    with pytest.raises(BenchError, match="needs a trace file"):
        parse_args(["--dataset-name", "trace"])
    args = parse_args(["--dataset-name", "trace", "--dataset-path", "t.csv", "--trace-speedup",
                       "2", "--point", "trace-2"])  # fmt: skip
    assert args.point.name == "trace-2" and args.num_prompts is None
