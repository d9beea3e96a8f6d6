"""Prompt datasets (`random`, `sharegpt`, `fixed`) and materialized prompt files (JSONL).

A materialized file has one row per prompt: {"prompt": str, "prompt_len": int | null,
"output_len": int}. The workflow writes one per model x workload (seeded) and every engine
replays it with `enginebench bench --prompts-file`, so engines see byte-identical prompts.
Write one with the CLI (`enginebench bench --save-prompts PATH --dataset-name ... --tokenizer
DIR --num-prompts N --seed S`: no server is contacted) or, from Python, `materialize_dataset`
(keywords) or `materialize(cli_args.parse_args(argv))`; read one with `load_materialized`.

Token counting follows `vllm bench serve`: a random prompt's text is `input_len` minus the
tokenizer's special tokens, so that the server (which adds its BOS) sees exactly `input_len`;
`prompt_len` counts what the server sees. `prefix_len` is how many leading tokens a row
shares with the others by construction: the tokenizer's special tokens (a BOS), plus a
`--random-prefix-len` prefix; all of a repeated ShareGPT row or the fixed prompt. Cache hits up
to that many tokens are what the workload asked for (llama-server counts the shared BOS as one
cached token).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.tokenizer import Tokenizer, tokenizer_for

FIXED_PROMPT = (
    "Please generate a very long story about wizard and technology, at least two thousand words"
)
FIXED_OUTPUT_LEN = 128

# vLLM's ShareGPT pruning (benchmarks' is_valid_sequence)
SHAREGPT_MIN_LEN = 4
SHAREGPT_MAX_PROMPT_LEN = 1024
SHAREGPT_MAX_TOTAL_LEN = 2048

PREFIX_ORDERS = ("random", "round-robin")

_RANDOM_MAX_ROUNDS = 16
_RANDOM_RESTARTS = 4


@dataclass(frozen=True, slots=True)
class Prompt:
    prompt: str
    prompt_len: int | None  # client tokenizer count; None when no tokenizer was available
    output_len: int  # max_tokens asked (and the exact length expected with --ignore-eos)
    prefix_len: int = 0  # leading tokens shared with other prompts (asked-for prefix sharing)
    group: int | None = None  # the prefix group it shares `prefix_len` tokens with (None: all)
    arrival_s: float | None = None  # a trace's request: when it arrives (traces.py)
    reuse: int | None = None  # a trace's request: tokens an earlier request of it sent
    session: int | None = None  # a multi-turn session's message: its session and turn (0..T-1);
    turn: int | None = None  # the prompt sent is the session's history, then this message


# ---------------------------------------------------------------------------- random
def random_prompts(
    tok: Tokenizer,
    num_prompts: int,
    input_len: int,
    output_len: int,
    range_ratio: float = 0.0,
    seed: int = 0,
    prefix_len: int = 0,
    prefix_groups: int = 1,
    prefix_order: str = "random",
) -> list[Prompt]:
    """Prompts of random vocabulary tokens that the server sees as exactly `input_len` tokens.

    As in `vllm bench serve`: the special tokens the tokenizer adds (a BOS) count towards
    `input_len`, so the text itself is `input_len - n_special` tokens; lengths are drawn
    uniformly from [len*(1-r), len*(1+r)] of that (r=0: all equal); `prefix_len` random tokens
    come first (on top of `input_len`, as `--random-prefix-len`). With `prefix_groups` G > 1
    there are G such prefixes, each shared by the prompts of its group (as vLLM's
    `prefix_repetition` dataset and inference-perf's `shared_prefix`): equal groups, in a seeded
    random order or round-robin (`prefix_order`). `prompt_len` is what the server should count:
    prefix + text + special tokens.
    """
    if input_len < 1 or output_len < 1 or prefix_len < 0:
        raise BenchError(
            f"random dataset lengths must be >= 1 (input {input_len}, output {output_len}, "
            f"prefix {prefix_len} >= 0)",
            "pass positive --random-input-len and --random-output-len",
        )
    if prefix_groups < 1 or (prefix_groups > 1 and not prefix_len):
        raise BenchError(
            f"--random-prefix-groups {prefix_groups} needs >= 1 and, above 1, a prefix to share",
            "pass --random-prefix-len > 0 with --random-prefix-groups > 1",
        )
    if prefix_order not in PREFIX_ORDERS:
        raise BenchError(
            f"--random-prefix-order {prefix_order!r} is not one of {', '.join(PREFIX_ORDERS)}",
            f"use one of {', '.join(PREFIX_ORDERS)}",
        )
    if not 0.0 <= range_ratio < 1.0:
        raise BenchError(
            f"--random-range-ratio {range_ratio} is outside [0, 1)", "use a value in [0, 1)"
        )
    n_special = num_special_tokens(tok)
    if input_len <= n_special:
        raise BenchError(
            f"--random-input-len {input_len} leaves no room beside the tokenizer's "
            f"{n_special} special token(s)",
            f"pass --random-input-len > {n_special}",
        )
    rng = np.random.default_rng(seed)
    in_lens = _lengths(rng, num_prompts, input_len - n_special, range_ratio)
    out_lens = _lengths(rng, num_prompts, output_len, range_ratio)
    candidates = plain_tokens(tok)
    if candidates.size == 0:
        raise BenchError("the tokenizer has no non-special tokens", "pass another --tokenizer")
    prefixes: list[list[int]] = [[]]
    if prefix_len:
        prefixes = [_prefix(tok, rng, candidates, prefix_len) for _ in range(prefix_groups)]
    # every prompt starts with the same special tokens (a BOS): an engine may count that token as
    # served from its cache (llama-server does), and that is no hit the workload did not ask for
    shared = prefix_len + n_special
    firsts = [_distinct_firsts(tok, rng, candidates, prefix) for prefix in prefixes]
    groups = [i % prefix_groups for i in range(num_prompts)]
    if prefix_groups > 1 and prefix_order == "random":
        groups = rng.permutation(groups).tolist()
    prompts = []
    for n_in, n_out, g in zip(in_lens, out_lens, groups, strict=True):
        # the prompt's first own token differs from every other prompt's of its group (while the
        # vocabulary lasts): an engine whose prefix cache works token by token (SGLang's radix
        # tree) would otherwise serve a chance common first token from its cache, a hit no one
        # asked for
        head = [*prefixes[g], next(firsts[g])]
        text, _ = exact_length_text(tok, rng, candidates, int(n_in) - 1, head)
        # what the server will count (exactly prefix + n_in + n_special once converged)
        group = g if prefix_len else None
        prompts.append(Prompt(text, len(tok.encode(text)), int(n_out), shared, group))
    return prompts


def _prefix(tok: Tokenizer, rng: np.random.Generator, candidates: np.ndarray, n: int) -> list[int]:
    text, got = exact_length_text(tok, rng, candidates, n)
    if got != n:
        raise BenchError(
            f"could not make a {n}-token prefix with this tokenizer",
            "pick another --random-prefix-len",
        )
    return tok.encode(text, add_special_tokens=False)


def expected_cached(prompts: Iterable[Prompt], seen: Iterable[int | None] = ()) -> list[int | None]:
    """Prompt tokens an ideal prefix cache serves to each prompt sent in this order, after the
    groups in `seen` (sent to the same server before): its group's shared prefix once an earlier
    prompt of the group was sent (all but the last prompt token, which an engine computes to
    answer), else 0; None for a prompt in no group; a trace's request, its `reuse`. An upper
    bound: an engine may have evicted the prefix, or not have finished the earlier prompt when
    this one arrives."""
    done = {g for g in seen if g is not None}
    out: list[int | None] = []
    for p in prompts:
        if p.reuse is not None:  # a trace's request: what its earlier requests sent
            out.append(min(p.reuse, p.prompt_len - 1) if p.prompt_len else p.reuse)
            continue
        if p.group is None:
            out.append(None)
            continue
        shared = min(p.prefix_len, p.prompt_len - 1) if p.prompt_len else p.prefix_len
        out.append(shared if p.group in done else 0)
        done.add(p.group)
    return out


def _distinct_firsts(
    tok: Tokenizer, rng: np.random.Generator, candidates: np.ndarray, prefix: list[int]
) -> Iterator[int]:
    """Candidate ids in a random order, each once, then again in another order: the tokens that
    follow `prefix` unchanged through a decode and re-encode (the others would merge with it)."""
    while True:
        found = False
        for i in rng.permutation(candidates).tolist():
            head = [*prefix, i]
            if tok.encode(tok.decode(head), add_special_tokens=False) == head:
                found = True
                yield i
        if not found:
            raise BenchError(
                "no token survives a decode and re-encode after the prefix with this tokenizer",
                "pick another --random-prefix-len or --tokenizer",
            )


def num_special_tokens(tok: Tokenizer) -> int:
    """Tokens the tokenizer adds to a prompt (BOS, ...): the server adds them too."""
    return len(tok.encode("a", add_special_tokens=True)) - len(
        tok.encode("a", add_special_tokens=False)
    )


def plain_tokens(tok: Tokenizer) -> np.ndarray:
    """Non-special ids that decode to whole characters on their own.

    Byte-level vocabularies hold fragments of multi-byte characters; a random run of them
    decodes to U+FFFD, which re-encodes to different ids and keeps the length from converging.
    """
    special = set(tok.all_special_ids)
    ids = [i for i in range(tok.vocab_size) if i not in special and "\ufffd" not in tok.decode([i])]
    return np.array(ids, dtype=np.int64)


def _lengths(rng: np.random.Generator, n: int, length: int, ratio: float) -> np.ndarray:
    low = max(1, math.floor(length * (1 - ratio)))
    high = max(low, math.ceil(length * (1 + ratio)))
    return rng.integers(low, high + 1, size=n)


def exact_length_text(
    tok: Tokenizer,
    rng: np.random.Generator,
    candidates: np.ndarray,
    target: int,
    prefix: list[int] | None = None,
) -> tuple[str, int]:
    """Decode `prefix` + random ids, re-encode, and trim or top up the random part until the
    round trip has `prefix` unchanged followed by `target` ids. Returns (text, len - prefix).

    Adjacent random tokens often merge (or split) when the decoded text is re-encoded, so
    one pass rarely lands on the target; each round works on the re-encoded ids, which are
    stable under another round trip far more often.
    """
    head = list(prefix or [])
    k = len(head)
    if target == 0:
        text = tok.decode(head)
        return text, len(tok.encode(text, add_special_tokens=False)) - k
    text, n = "", 0
    for _ in range(_RANDOM_RESTARTS):
        ids = rng.choice(candidates, size=target).tolist()
        for _ in range(_RANDOM_MAX_ROUNDS):
            text = tok.decode(head + ids)
            again = tok.encode(text, add_special_tokens=False)
            if again[:k] != head:  # the prefix merged with the first random token: redraw it
                ids[0] = int(rng.choice(candidates))
                n = len(again) - k
                continue
            again = again[k:]
            n = len(again)
            if n == target:
                return text, n
            if n > target:
                ids = again[:target]
            else:
                ids = again + rng.choice(candidates, size=target - n).tolist()
    return text, n  # did not converge: the actual length is recorded


# -------------------------------------------------------------------------- sharegpt
def read_sharegpt(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load and shape-check a ShareGPT JSON file (a list of {"conversations": [...]})."""
    fix = 'pass --dataset-path to a ShareGPT JSON list of {"conversations": [{"from", "value"}]}'
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"dataset file {str(p)!r} not found", fix)
    try:
        with p.open(encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"dataset file {str(p)!r} is not valid JSON ({exc})", fix) from exc
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise BenchError(
            f"dataset file {str(p)!r} is not ShareGPT-shaped (not a list of objects)", fix
        )
    if data and not any("conversations" in e for e in data):
        raise BenchError(f"dataset file {str(p)!r} has no 'conversations' entries", fix)
    return data


def sharegpt_prompts(
    tok: Tokenizer,
    entries: list[dict[str, Any]],
    num_prompts: int,
    output_len: int | None = None,
    seed: int = 0,
) -> list[Prompt]:
    """vLLM's ShareGPT sampling: >= 2 turns, seeded shuffle, length pruning, oversampling."""
    convs = [e for e in entries if _turns(e) >= 2]
    n_special = num_special_tokens(tok)  # the BOS every prompt starts with
    random.Random(seed).shuffle(convs)
    prompts: list[Prompt] = []
    for entry in convs:
        if len(prompts) >= num_prompts:
            break
        first, reply = entry["conversations"][0], entry["conversations"][1]
        prompt, completion = _value(first), _value(reply)
        if prompt is None or completion is None:
            continue
        prompt_len = len(tok.encode(prompt))
        out_len = len(tok.encode(completion)) if output_len is None else output_len
        if not _valid_lengths(prompt_len, out_len, check_output=output_len is None):
            continue
        prompts.append(Prompt(prompt, prompt_len, out_len, n_special))
    if not prompts:
        raise BenchError(
            "no ShareGPT conversation survived the filters (>= 2 turns, prompt and reply >= 4 "
            "tokens, prompt <= 1024, prompt + reply <= 2048)",
            "use a larger or different --dataset-path",
        )
    if len(prompts) < num_prompts:
        # vLLM oversamples (seeded) rather than running fewer requests than asked
        print(
            f"note: ShareGPT gave {len(prompts)} prompts; oversampling to {num_prompts}",
            file=sys.stderr,
        )
        # a repeat is a prompt the server has seen: marked as shared as a whole, so that its
        # cache hits count as asked for
        rng = random.Random(seed)
        repeats = [rng.choice(prompts) for _ in range(num_prompts - len(prompts))]
        prompts += [
            Prompt(p.prompt, p.prompt_len, p.output_len, p.prompt_len or 0) for p in repeats
        ]
    return prompts


def _turns(entry: dict[str, Any]) -> int:
    convs = entry.get("conversations")
    return len(convs) if isinstance(convs, list) else 0


def _value(turn: Any) -> str | None:
    if isinstance(turn, dict) and isinstance(turn.get("value"), str):
        return str(turn["value"])
    return None


def _valid_lengths(prompt_len: int, output_len: int, check_output: bool) -> bool:
    return not (
        prompt_len < SHAREGPT_MIN_LEN
        or (check_output and output_len < SHAREGPT_MIN_LEN)
        or prompt_len > SHAREGPT_MAX_PROMPT_LEN
        or prompt_len + output_len > SHAREGPT_MAX_TOTAL_LEN
    )


# ----------------------------------------------------------------------------- fixed
def fixed_prompts(
    num_prompts: int, output_len: int = FIXED_OUTPUT_LEN, tok: Tokenizer | None = None
) -> list[Prompt]:
    """One prompt sent again and again: every request after the first shares all of it (the
    workload asks for the cache)."""
    prompt_len = len(tok.encode(FIXED_PROMPT)) if tok is not None else None
    shared = prompt_len if prompt_len is not None else len(FIXED_PROMPT)  # tokens <= characters
    return [Prompt(FIXED_PROMPT, prompt_len, output_len, shared) for _ in range(num_prompts)]


# ------------------------------------------------------------------ materialized files
def write_prompts(path: str | os.PathLike[str], prompts: Iterable[Prompt]) -> Path:
    """Write prompts as JSONL (atomically: a reader never sees half a file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for p in prompts:
            # the rows of a workload without groups or arrivals as before
            row = {k: v for k, v in asdict(p).items() if v is not None or k == "prompt_len"}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def load_materialized(path: str | os.PathLike[str]) -> list[Prompt]:
    """Read a prompt file written by `write_prompts` / `materialize`."""
    fix = "pass --prompts-file a JSONL file written by `enginebench bench --save-prompts`"
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"prompts file {str(p)!r} not found", fix)
    prompts = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                prompt, plen, olen = row["prompt"], row.get("prompt_len"), row["output_len"]
                shared, group = row.get("prefix_len", 0), row.get("group")
                arrival, reuse = row.get("arrival_s"), row.get("reuse")
                session, turn = row.get("session"), row.get("turn")
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise BenchError(f"{p}:{lineno}: not a prompt row ({exc!r})", fix) from exc
            ok = (
                isinstance(prompt, str)
                and (plen is None or (isinstance(plen, int) and plen >= 0))
                and isinstance(olen, int)
                and olen >= 1
                and isinstance(shared, int)
                and shared >= 0
                and (group is None or (isinstance(group, int) and group >= 0))
                and (arrival is None or (isinstance(arrival, int | float) and arrival >= 0))
                and (reuse is None or (isinstance(reuse, int) and reuse >= 0))
                and all(v is None or (isinstance(v, int) and v >= 0) for v in (session, turn))
            )
            if not ok:
                raise BenchError(
                    f"{p}:{lineno}: bad prompt/prompt_len/output_len/prefix_len/group/arrival_s/"
                    "reuse/session/turn types",
                    fix,
                )
            prompts.append(Prompt(prompt, plen, olen, shared, group, arrival, reuse, session, turn))
    if not prompts:
        raise BenchError(f"prompts file {str(p)!r} is empty", fix)
    return prompts


def needs_tokenizer(dataset_name: str) -> bool:
    return dataset_name in ("random", "sharegpt", "trace", "sessions")


# ------------------------------------------------------------------ multi-turn sessions
def session_prompts(
    tok: Tokenizer,
    sessions: int,
    turns: int,
    input_len: int,
    output_len: int,
    range_ratio: float = 0.0,
    seed: int = 0,
) -> list[Prompt]:
    """`sessions` x `turns` new user messages of random tokens (`random_prompts`' lengths), in
    session order. The runner sends each session's turns one after another, each turn's prompt
    its history (the earlier messages and the engine's own answers) followed by its message."""
    rows = random_prompts(tok, sessions * turns, input_len, output_len, range_ratio, seed)
    return [
        Prompt(p.prompt, p.prompt_len, p.output_len, p.prefix_len, session=i // turns,
               turn=i % turns)
        for i, p in enumerate(rows)
    ]  # fmt: skip


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of two token lists."""
    pairs = enumerate(zip(a, b, strict=False))
    return next((k for k, (x, y) in pairs if x != y), min(len(a), len(b)))


def sessions_of(prompts: Sequence[Prompt]) -> list[list[int]]:
    """The prompts' indices, one list per session in the order they come (empty: no sessions).
    Each must start at turn 0 and go on turn by turn: rows cut mid-session are one line."""
    if not prompts or prompts[0].session is None:
        return []
    out: list[list[int]] = []
    for i, p in enumerate(prompts):
        expected = 0 if not out or p.session != prompts[out[-1][0]].session else len(out[-1])
        if p.session is None or p.turn != expected:
            raise BenchError(
                f"prompt {i} is turn {p.turn} of session {p.session}, not turn {expected}: the "
                "rows do not hold whole sessions",
                "make --num-warmups and --num-prompts (and --prompt-offset) multiples of the turns",
            )
        if expected == 0:
            out.append([])
        out[-1].append(i)
    return out


def split_warmups(prompts: list[Prompt], warmups: int) -> tuple[list[Prompt], list[Prompt]]:
    """(warm-up prompts, measured prompts) of `build_prompts(args, tok, warmups)`."""
    return prompts[:warmups], prompts[warmups:]


def groups_sent_before(args: argparse.Namespace) -> list[int | None]:
    """The prefix groups of the prompt file's rows before `--prompt-offset`: in a sweep, what the
    warm-up and the earlier points sent to the same server."""
    if not args.prompts_file or not args.prompt_offset:
        return []
    return [p.group for p in load_materialized(args.prompts_file)[: args.prompt_offset]]


def build_prompts(args: argparse.Namespace, tok: Tokenizer | None, extra: int = 0) -> list[Prompt]:
    """The prompts the `bench` flags ask for (dataset generation, or a materialized file), with
    `extra` more in front (the warm-up's: fresh rows, not the measured ones)."""
    if args.prompts_file:
        # rows [offset, offset + n): a sweep gives each point its own rows, so that no request
        # repeats a prompt the server has already seen
        prompts = load_materialized(args.prompts_file)[args.prompt_offset :]
        if args.num_prompts is None:
            args.num_prompts = len(prompts) - extra
        n = args.num_prompts + extra
        if args.num_prompts < 1 or len(prompts) < n:
            raise BenchError(
                f"prompts file {args.prompts_file!r} has {len(prompts)} rows after "
                f"--prompt-offset {args.prompt_offset}; {args.num_prompts} prompts and "
                f"{extra} warm-ups need {n}",
                "lower --num-prompts / --num-warmups or materialize more prompts",
            )
        return prompts[:n]
    name = args.dataset_name
    if name == "trace":
        from enginebench.loadgen import traces

        return traces.prompts_for(args, _required(tok, name), extra)
    n = args.num_prompts + extra
    if name == "fixed":
        return fixed_prompts(n, args.fixed_output_len, tok)
    tok = _required(tok, name)
    if name == "random":
        return random_prompts(
            tok,
            n,
            args.random_input_len,
            args.random_output_len,
            args.random_range_ratio,
            args.seed,
            args.random_prefix_len,
            args.random_prefix_groups,
            args.random_prefix_order,
        )
    if name == "sessions":
        if n % args.session_turns:
            raise BenchError(
                f"{n} prompts are not whole sessions of {args.session_turns} turns",
                "make --num-prompts and --num-warmups multiples of --session-turns",
            )
        return session_prompts(
            tok,
            n // args.session_turns,
            args.session_turns,
            args.random_input_len,
            args.random_output_len,
            args.random_range_ratio,
            args.seed,
        )
    if name == "sharegpt":
        if not args.dataset_path:
            raise BenchError(
                "--dataset-name sharegpt needs a file", "pass --dataset-path FILE.json"
            )
        entries = read_sharegpt(args.dataset_path)
        return sharegpt_prompts(tok, entries, n, args.sharegpt_output_len, args.seed)
    raise BenchError(
        f"unknown dataset {name!r}",
        "use --dataset-name random, sharegpt, fixed, trace or sessions",
    )


def _required(tok: Tokenizer | None, name: str) -> Tokenizer:
    if tok is None:
        raise BenchError(
            f"--dataset-name {name} needs a tokenizer",
            "pass --tokenizer DIR (a local HF tokenizer)",
        )
    return tok


def materialize(args: argparse.Namespace) -> Path:
    """Generate the dataset the flags describe and write it to `args.save_prompts`.

    `args` is what `enginebench.loadgen.cli_args.parse_args` returns; no server is contacted.
    """
    tok = tokenizer_for(args, required=needs_tokenizer(args.dataset_name))
    prompts = build_prompts(args, tok)
    return write_prompts(args.save_prompts, prompts)


def materialize_dataset(
    path: str | os.PathLike[str],
    dataset_name: str,
    num_prompts: int,
    tokenizer: str | os.PathLike[str] | None = None,
    seed: int = 0,
    input_len: int | None = None,
    output_len: int | None = None,
    range_ratio: float = 0.0,
    dataset_path: str | os.PathLike[str] | None = None,
    prefix_len: int = 0,
    prefix_groups: int = 1,
) -> Path:
    """`enginebench bench --save-prompts PATH ...` as a function (for the workflow's scripts).

    `input_len`/`output_len` map to --random-input-len/--random-output-len (random),
    --sharegpt-output-len (sharegpt) and --fixed-output-len (fixed); None keeps the defaults.
    """
    from enginebench.loadgen.cli_args import parse_args

    argv = ["--dataset-name", dataset_name, "--num-prompts", str(num_prompts), "--seed", str(seed)]
    argv += ["--save-prompts", str(path), "--random-range-ratio", str(range_ratio)]
    if prefix_len:
        argv += [
            "--random-prefix-len",
            str(prefix_len),
            "--random-prefix-groups",
            str(prefix_groups),
        ]
    if tokenizer is not None:
        argv += ["--tokenizer", str(tokenizer)]
    if dataset_path is not None:
        argv += ["--dataset-path", str(dataset_path)]
    if input_len is not None:
        argv += ["--random-input-len", str(input_len)]
    if output_len is not None:
        flag = {"random": "--random-output-len", "sharegpt": "--sharegpt-output-len"}
        argv += [flag.get(dataset_name, "--fixed-output-len"), str(output_len)]
    return materialize(parse_args(argv))
