"""Request traces replayed at their own times (`enginebench bench --dataset-name trace`).

Two public formats:
* Mooncake (kvcache-ai/Mooncake, FAST'25 release; JSONL): `timestamp` (ms from the trace's
  start), `input_length`, `output_length`, `hash_ids` (one id per 512-token block of the prompt;
  two requests with the same leading ids share that prefix).
* Azure LLM inference trace (Azure/AzurePublicDataset, 2023; CSV): `TIMESTAMP` (a naive
  datetime), `ContextTokens`, `GeneratedTokens`.

Prompts are synthesized so that the reuse in the trace is the reuse the engine sees: a block id
becomes the same run of random tokens wherever it appears (seeded by the seed, the replay's
`copy` and the id), so equal leading ids give equal prompt prefixes; a request without ids gets
text of its own. A replay `copy` draws other tokens for the same ids: a sweep replays the trace
once per point, each time with fresh prompts (no point finds the previous one's prefixes in the
cache). `input_scale` shrinks prompts and blocks alike (a 12k-token trace on a small model),
`output_scale` the answers. A request's `reuse` is its leading blocks that an earlier request
of the same replay sent (with the tokenizer's special tokens): what an ideal prefix cache serves
it, sent in this order. Its `prefix_len`, the cache hits the trace asks for, is its leading
blocks that any other request of the replay holds: requests that arrive together, or wait in the
engine's queue, may be computed in any order.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from enginebench.loadgen.datasets import (
    Prompt,
    common_prefix,
    exact_length_text,
    num_special_tokens,
    plain_tokens,
)
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.tokenizer import Tokenizer

FORMATS = ("mooncake", "azure")
MOONCAKE_BLOCK_LEN = 512  # tokens per hash id (FAST25-release/README.md, "Trace Format")
_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_FIX_FORMAT = "pass --trace-format mooncake (JSONL) or azure (CSV)"


@dataclass(frozen=True, slots=True)
class TraceRequest:
    line: int  # in the trace file (1-based; the CSV header is line 1)
    arrival_s: float  # from the trace's first request
    input_len: int
    output_len: int
    hash_ids: tuple[int, ...] | None = None  # Mooncake's prefix blocks; None: no reuse known


def trace_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """`fmt` checked, or the format its suffix says (.jsonl: mooncake, .csv: azure)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise BenchError(f"--trace-format {fmt!r} is not one of {FORMATS}", _FIX_FORMAT)
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "mooncake"
    if suffix == ".csv":
        return "azure"
    raise BenchError(f"cannot tell the format of trace {str(path)!r} from its name", _FIX_FORMAT)


def read_trace(
    path: str | os.PathLike[str], fmt: str | None = None, block_len: int = MOONCAKE_BLOCK_LEN
) -> list[TraceRequest]:
    """Every request of a trace file, checked: a bad row is one line naming the file's line."""
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"trace file {str(p)!r} not found", "pass --dataset-path a trace file")
    rows = _mooncake(p, block_len) if trace_format(p, fmt) == "mooncake" else _azure(p)
    if not rows:
        raise BenchError(f"trace file {str(p)!r} has no requests", "pass a trace with requests")
    last = rows[0]
    for row in rows[1:]:
        if row.arrival_s < last.arrival_s:
            raise BenchError(
                f"{p}:{row.line}: timestamp earlier than line {last.line}'s (unsorted trace)",
                "sort the trace by timestamp",
            )
        last = row
    first = rows[0].arrival_s
    return [_shift(r, first) for r in rows]


def _shift(r: TraceRequest, first: float) -> TraceRequest:
    return TraceRequest(r.line, r.arrival_s - first, r.input_len, r.output_len, r.hash_ids)


def _count(where: str, name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise BenchError(f"{where}: {name} {value!r} is not an integer >= {least}", "fix the row")
    return value


def _mooncake(path: Path, block_len: int) -> list[TraceRequest]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
                stamp, ids = row["timestamp"], row["hash_ids"]
                n_in, n_out = row["input_length"], row["output_length"]
            except json.JSONDecodeError as exc:
                raise BenchError(f"{where}: not JSON ({exc.msg})", "fix the row") from exc
            except (KeyError, TypeError) as exc:
                raise BenchError(
                    f"{where}: a Mooncake row needs timestamp, input_length, output_length and "
                    f"hash_ids (missing {exc})",
                    _FIX_FORMAT,
                ) from exc
            if isinstance(stamp, bool) or not isinstance(stamp, int | float) or stamp < 0:
                raise BenchError(f"{where}: timestamp {stamp!r} is not ms >= 0", "fix the row")
            n_in = _count(where, "input_length", n_in, 1)
            n_out = _count(where, "output_length", n_out, 1)
            if not isinstance(ids, list) or not all(
                isinstance(h, int) and not isinstance(h, bool) for h in ids
            ):
                raise BenchError(f"{where}: hash_ids is not a list of integers", "fix the row")
            if len(ids) != math.ceil(n_in / block_len):
                raise BenchError(
                    f"{where}: {len(ids)} hash_ids for {n_in} input tokens; blocks of "
                    f"{block_len} tokens make {math.ceil(n_in / block_len)}",
                    "pass the trace's --trace-block-len",
                )
            rows.append(TraceRequest(lineno, stamp / 1000.0, n_in, n_out, tuple(ids)))
    return rows


def _azure(path: Path) -> list[TraceRequest]:
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _AZURE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchError(
                f"{path}:1: an Azure trace needs the columns {', '.join(_AZURE_COLUMNS)} "
                f"(missing {', '.join(missing)})",
                _FIX_FORMAT,
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                stamp = datetime.fromisoformat(row["TIMESTAMP"].strip()).timestamp()
                n_in, n_out = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (ValueError, TypeError, AttributeError) as exc:
                raise BenchError(f"{where}: not an Azure trace row ({exc})", "fix the row") from exc
            n_in = _count(where, "ContextTokens", n_in, 1)
            n_out = _count(where, "GeneratedTokens", n_out, 1)
            rows.append(TraceRequest(reader.line_num, stamp, n_in, n_out))
    return rows


def trace_window(
    path: str | os.PathLike[str],
    format: str | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    block_len: int = MOONCAKE_BLOCK_LEN,
) -> list[TraceRequest]:
    """The requests a replay sends: the trace file's, checked, in its window (the keywords are
    a config's `trace:` keys; their defaults, the `--trace-*` flags')."""
    return window(read_trace(path, format, block_len), start_s, duration_s)


def window(
    requests: Sequence[TraceRequest], start_s: float = 0.0, duration_s: float | None = None
) -> list[TraceRequest]:
    """The requests arriving in [start_s, start_s + duration_s) of the trace, their times from
    the first of them."""
    end = math.inf if duration_s is None else start_s + duration_s
    kept = [r for r in requests if start_s <= r.arrival_s < end]
    if not kept:
        raise BenchError(
            f"no trace request arrives in [{start_s:g}, {end:g}) s",
            "widen --trace-start/--trace-duration",
        )
    return [_shift(r, kept[0].arrival_s) for r in kept]


@dataclass(frozen=True)
class Scale:
    input: float = 1.0  # prompts and blocks
    output: float = 1.0
    block_len: int = MOONCAKE_BLOCK_LEN

    def lengths(self, r: TraceRequest) -> tuple[int, int]:
        """(prompt, output) tokens of a request once scaled (each at least 1)."""
        return max(1, round(r.input_len * self.input)), max(1, round(r.output_len * self.output))

    @property
    def block(self) -> int:
        return max(1, round(self.block_len * self.input))


def check_context(
    requests: Iterable[TraceRequest], scale: Scale, max_len: int | None, path: str
) -> None:
    """A request whose prompt and output (scaled) do not fit the model's context is one line
    naming its line of the trace, before any request is sent."""
    if max_len is None:
        return
    for r in requests:
        n_in, n_out = scale.lengths(r)
        if n_in + n_out > max_len:
            fit = float(f"{max_len / (r.input_len + r.output_len):.3g}")  # rounded down:
            fit = fit if fit * (r.input_len + r.output_len) <= max_len else fit * 0.99
            raise BenchError(
                f"{path}:{r.line}: {n_in} prompt + {n_out} output tokens exceed the model's "
                f"{max_len}-token context",
                f"scale the trace down (--trace-input-scale/--trace-output-scale <= {fit:.3g}) "
                "or pick a window without it",
            )


def trace_prompts(
    tok: Tokenizer,
    requests: Sequence[TraceRequest],
    scale: Scale,
    seed: int = 0,
    copy: int = 0,
    warmup: bool = False,
) -> list[Prompt]:
    """One prompt per request, its arrival time kept (see the module's docstring); `warmup`:
    tokens of their own, that no replay draws."""
    n_special = num_special_tokens(tok)
    candidates = plain_tokens(tok)
    if candidates.size == 0:
        raise BenchError("the tokenizer has no non-special tokens", "pass another --tokenizer")
    block = scale.block
    texts: dict[int, str] = {}

    def block_text(h: int, n: int) -> str:
        rng = np.random.default_rng([seed, copy, 2 * warmup, h])
        ids = rng.choice(candidates, size=block).tolist()
        if n == block:
            if h not in texts:
                texts[h] = tok.decode(ids)
            return texts[h]
        return tok.decode(ids[:n])  # a last, partial block

    # ids that two or more requests hold: the reuse the trace asks for, in whatever order the
    # engine takes its requests (those that arrive together, or wait in its queue, in any order)
    held = Counter(h for r in requests for h in set(r.hash_ids or ()))
    seen: set[int] = set()
    texts_of, runs = [], []
    for r in requests:
        body = max(1, scale.lengths(r)[0] - n_special)
        if r.hash_ids:
            parts, left = [], body
            for h in r.hash_ids:
                if left <= 0:
                    break
                parts.append(block_text(h, min(block, left)))
                left -= block
            texts_of.append("".join(parts))
            run = _leading(r.hash_ids, seen.__contains__)
            runs.append((run, _leading(r.hash_ids, lambda h: held[h] > 1), body))
            seen.update(r.hash_ids)
        else:
            rng = np.random.default_rng([seed, copy, 2 * warmup + 1, r.line])
            texts_of.append(exact_length_text(tok, rng, candidates, body)[0])
            runs.append((0, 0, body))
    # the tokens each prompt shares with another (a block's text may merge with what follows
    # it, so shared blocks share a token or two more): the hits the trace asks for
    ids = [tok.encode(text) for text in texts_of]
    common = _common_prefixes(ids)
    prompts = []
    for r, text, token_ids, lcp, (run, held_run, body) in zip(
        requests, texts_of, ids, common, runs, strict=True
    ):
        shared = max(lcp, n_special)  # a BOS leads every prompt: a cache may serve it
        # an ideal cache, in sending order: the blocks an earlier request sent (all its shared
        # ones: the tokens it shares; some of them: those blocks)
        reuse = 0 if not run else shared if run == held_run else min(run * block, body) + n_special
        n_out = scale.lengths(r)[1]
        n_prompt = len(token_ids)
        prompts.append(Prompt(text, n_prompt, n_out, shared, arrival_s=r.arrival_s, reuse=reuse))
    return prompts


def _common_prefixes(ids: Sequence[list[int]]) -> list[int]:
    """For each token list, its longest common prefix with any other (neighbours in sorted
    order hold it)."""
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    out = [0] * len(ids)
    for a, b in itertools.pairwise(order):
        n = common_prefix(ids[a], ids[b])
        out[a], out[b] = max(out[a], n), max(out[b], n)
    return out


def _leading(ids: Sequence[int], test: Callable[[int], bool]) -> int:
    """How many of the first `ids` pass `test`, up to the first that does not."""
    return next((i for i, h in enumerate(ids) if not test(h)), len(ids))


def replay_offsets(prompts: Sequence[Prompt], speedup: float) -> list[float]:
    """Send offsets (s from the first request) of a replay `speedup` times faster than the trace."""
    first = prompts[0].arrival_s or 0.0 if prompts else 0.0
    return [((p.arrival_s or 0.0) - first) / speedup for p in prompts]


def model_context(tokenizer_dir: str | os.PathLike[str] | None) -> int | None:
    """The model's context (`max_position_embeddings` of config.json beside its tokenizer); None
    where there is none."""
    if tokenizer_dir is None:
        return None
    config = Path(tokenizer_dir) / "config.json"
    try:
        value = json.loads(config.read_text()).get("max_position_embeddings")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def prompts_for(args: argparse.Namespace, tok: Tokenizer, extra: int = 0) -> list[Prompt]:
    """The `bench` flags' replay: `extra` warm-up prompts (the window's first requests, drawn
    as another copy, so they warm nothing the replay reuses), then the window's requests (the
    first `--num-prompts` of them where given)."""
    scale = Scale(args.trace_input_scale, args.trace_output_scale, args.trace_block_len)
    rows = trace_window(
        args.dataset_path, args.trace_format, args.trace_start, args.trace_duration,
        args.trace_block_len,
    )  # fmt: skip
    if args.num_prompts is not None:
        rows = rows[: args.num_prompts]
    args.num_prompts = len(rows)
    warm = rows[:extra]
    context = args.max_model_len or model_context(args.tokenizer or args.model)
    check_context([*warm, *rows], scale, context, args.dataset_path)
    seed, copy = args.seed, args.trace_copy
    warm_prompts = trace_prompts(tok, warm, scale, seed, copy, warmup=True)
    return [*warm_prompts, *trace_prompts(tok, rows, scale, seed, copy)]
