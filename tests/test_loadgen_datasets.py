"""Datasets: token-exact random prompts, vLLM's ShareGPT filters, fixed, materialized files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enginebench.loadgen import datasets
from enginebench.loadgen.cli_args import parse_args
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.runner import main
from enginebench.loadgen.tokenizer import Tokenizer
from tests.test_loadgen_support import SHAREGPT_SMALL


def ids_by_prompt() -> dict[str, str]:
    data = json.loads(SHAREGPT_SMALL.read_text(encoding="utf-8"))
    return {e["conversations"][0]["value"]: e["id"] for e in data if e.get("conversations")}


# ------------------------------------------------------------------------------ random
@pytest.mark.parametrize("length", [2, 7, 128, 300])
def test_random_prompts_are_token_exact(tokenizer: Tokenizer, length: int) -> None:
    """As vLLM: the tokenizer adds a BOS, so the text is one token shorter and the server (which
    adds the same BOS) sees exactly `length` tokens."""
    assert datasets.num_special_tokens(tokenizer) == 1
    prompts = datasets.random_prompts(tokenizer, 20, length, 9, seed=0)
    assert len(prompts) == 20
    for p in prompts:
        assert p.prompt_len == length == len(tokenizer.encode(p.prompt))
        assert len(tokenizer.encode(p.prompt, add_special_tokens=False)) == length - 1
        assert p.output_len == 9 and p.prefix_len == 1  # the BOS every prompt starts with


def test_random_prefix_is_shared_and_token_exact(tokenizer: Tokenizer) -> None:
    prompts = datasets.random_prompts(tokenizer, 12, 40, 5, seed=3, prefix_len=24)
    head = tokenizer.encode(prompts[0].prompt)[:25]  # BOS + the 24-token prefix
    for p in prompts:
        ids = tokenizer.encode(p.prompt)
        assert len(ids) == p.prompt_len == 24 + 40  # prefix on top of input_len, as vLLM
        assert ids[:25] == head
        assert p.prefix_len == 25  # the BOS is shared too
    # past the prefix the prompts differ from their first token on: only the prefix is shared
    assert len({tokenizer.encode(p.prompt)[25] for p in prompts}) == len(prompts)


@pytest.mark.parametrize("order", ["random", "round-robin"])
def test_prefix_groups_share_their_own_prefix(tokenizer: Tokenizer, order: str) -> None:
    """G prefixes, each shared by its group's prompts only; equal groups; expected cache hits
    from each group's second prompt on, and from the first when an earlier call sent it."""
    prompts = datasets.random_prompts(
        tokenizer, 12, 20, 4, seed=5, prefix_len=16, prefix_groups=3, prefix_order=order
    )
    groups = [p.group for p in prompts]
    assert sorted(groups) == [0] * 4 + [1] * 4 + [2] * 4  # type: ignore[type-var]
    if order == "round-robin":
        assert groups == [0, 1, 2] * 4
    heads = {g: {tuple(tokenizer.encode(p.prompt)[:17]) for p in prompts if p.group == g}
             for g in range(3)}  # fmt: skip
    assert all(len(h) == 1 for h in heads.values())  # one prefix per group (BOS + 16)
    assert len({h.pop() for h in heads.values()}) == 3  # three different prefixes
    assert all(p.prompt_len == 16 + 20 and p.prefix_len == 17 for p in prompts)
    expected = datasets.expected_cached(prompts)
    firsts = {groups.index(g) for g in range(3)}
    assert [e == 0 for e in expected] == [i in firsts for i in range(12)]
    assert set(expected) == {0, 17}
    # after an earlier call sent group 1, its first prompt here expects the prefix too
    after = datasets.expected_cached(prompts, seen=[1])
    assert after[groups.index(1)] == 17 and after[groups.index(0)] == 0
    # no group: no expectation; a prefix as long as the prompt: all but its last token
    plain = datasets.random_prompts(tokenizer, 3, 8, 4, seed=0)
    assert datasets.expected_cached(plain) == [None] * 3
    whole = datasets.Prompt("x", 5, 4, prefix_len=5, group=0)
    assert datasets.expected_cached([whole, whole]) == [0, 4]
    # without a prefix there is nothing to share
    with pytest.raises(BenchError, match="prefix-groups"):
        datasets.random_prompts(tokenizer, 4, 8, 4, prefix_groups=2)
    with pytest.raises(BenchError, match="--random-prefix-len"):
        parse_args(["--random-prefix-groups", "2", "--tokenizer", "t"])


def test_prefix_groups_reach_the_file_and_the_bench_records(
    tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "g.jsonl"
    argv = ["--dataset-name", "random", "--tokenizer", str(tokenizer_dir), "--num-prompts", "8",
            "--random-input-len", "12", "--random-output-len", "4", "--random-prefix-len", "8",
            "--random-prefix-groups", "2", "--random-prefix-order", "round-robin",
            "--save-prompts", str(out)]  # fmt: skip
    datasets.materialize(parse_args(argv))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["group"] for r in rows] == [0, 1] * 4
    assert [p.group for p in datasets.load_materialized(out)] == [0, 1] * 4
    # a point from row 3 on: rows 0-2 went to the same server before it
    args = parse_args(["--prompts-file", str(out), "--prompt-offset", "3", "--num-prompts", "2"])
    assert datasets.groups_sent_before(args) == [0, 1, 0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "group": -1}) + "\n")
    with pytest.raises(BenchError, match=r"bad.jsonl:1: .*group"):
        datasets.load_materialized(bad)


def test_no_two_random_prompts_share_a_first_token(tokenizer: Tokenizer) -> None:
    """A token-by-token prefix cache (SGLang's radix tree) serves a chance common first token
    from its cache: measured on an H100 as 5-12 of 640 requests per point with 2 cached tokens
    (BOS + 1) on a 4,096-token vocabulary. While the vocabulary lasts, no first token repeats."""
    n = 300
    prompts = datasets.random_prompts(tokenizer, n, 16, 4, seed=0)
    firsts = [tokenizer.encode(p.prompt)[1] for p in prompts]
    assert len(set(firsts)) == n
    assert all(p.prompt_len == 16 == len(tokenizer.encode(p.prompt)) for p in prompts)
    # more prompts than usable tokens: every one is used before any repeats
    usable = datasets.plain_tokens(tokenizer).size
    many = datasets.random_prompts(tokenizer, usable + 40, 3, 1, seed=1)
    firsts = [tokenizer.encode(p.prompt)[1] for p in many]
    assert len(set(firsts)) >= usable - 40  # (a few tokens merge with the BOS and are skipped)


def test_random_prompts_are_seeded(tokenizer: Tokenizer) -> None:
    a = datasets.random_prompts(tokenizer, 5, 32, 8, seed=1)
    assert a == datasets.random_prompts(tokenizer, 5, 32, 8, seed=1)
    assert a != datasets.random_prompts(tokenizer, 5, 32, 8, seed=2)
    assert len({p.prompt for p in a}) == 5


def test_random_range_ratio(tokenizer: Tokenizer) -> None:
    prompts = datasets.random_prompts(tokenizer, 200, 40, 20, range_ratio=0.5, seed=0)
    ins = [p.prompt_len or 0 for p in prompts]
    outs = [p.output_len for p in prompts]
    # the range applies to the text (40 - 1 BOS = 39): [19, 59] + the BOS
    assert min(ins) >= 20 and max(ins) <= 60 and len(set(ins)) > 10
    assert min(outs) >= 10 and max(outs) <= 30
    for p in prompts:
        assert p.prompt_len == len(tokenizer.encode(p.prompt))


def test_random_rejects_bad_lengths(tokenizer: Tokenizer) -> None:
    with pytest.raises(BenchError, match="lengths must be >= 1"):
        datasets.random_prompts(tokenizer, 2, 0, 5)
    with pytest.raises(BenchError, match="range-ratio"):
        datasets.random_prompts(tokenizer, 2, 5, 5, range_ratio=1.5)
    with pytest.raises(BenchError, match="special token"):
        datasets.random_prompts(tokenizer, 2, 1, 5)  # the BOS alone is one token


# ---------------------------------------------------------------------------- sharegpt
def test_sharegpt_filters_like_vllm(tokenizer: Tokenizer) -> None:
    entries = datasets.read_sharegpt(SHAREGPT_SMALL)
    prompts = datasets.sharegpt_prompts(tokenizer, entries, 48, seed=0)
    names = ids_by_prompt()
    chosen = [names[p.prompt] for p in prompts]
    assert len(chosen) == 48 and len(set(chosen)) == 48
    assert all(name.startswith("ok-") for name in chosen)
    for p, e in zip(prompts, chosen, strict=True):
        entry = next(x for x in entries if x.get("id") == e)
        reply = entry["conversations"][1]["value"]
        # vLLM counts both sides with the tokenizer's special tokens
        assert p.prompt_len == len(tokenizer.encode(p.prompt))
        assert p.output_len == len(tokenizer.encode(reply))
        assert 4 <= p.prompt_len <= 1024 and p.output_len >= 4
        assert p.prompt_len + p.output_len <= 2048


def test_sharegpt_bad_entries_really_are_bad(tokenizer: Tokenizer) -> None:
    """The fixture's bad entries fail exactly the filter they are named after."""
    for e in json.loads(SHAREGPT_SMALL.read_text(encoding="utf-8")):
        convs = e.get("conversations") or []
        if len(convs) < 2:
            continue
        p, r = (len(tokenizer.encode(c["value"])) for c in convs[:2])
        if e["id"].startswith("bad-short-prompt"):
            assert p < 4
        elif e["id"].startswith("bad-short-reply"):
            assert r < 4 and p >= 4
        elif e["id"].startswith("bad-long-prompt"):
            assert p > 1024
        elif e["id"].startswith("bad-long-total"):
            assert p <= 1024 < 2048 < p + r


def test_sharegpt_seeded_shuffle(tokenizer: Tokenizer) -> None:
    entries = datasets.read_sharegpt(SHAREGPT_SMALL)
    a = datasets.sharegpt_prompts(tokenizer, entries, 10, seed=0)
    assert a == datasets.sharegpt_prompts(tokenizer, entries, 10, seed=0)
    assert a != datasets.sharegpt_prompts(tokenizer, entries, 10, seed=1)


def test_sharegpt_output_len_override_skips_reply_filter(tokenizer: Tokenizer) -> None:
    entries = datasets.read_sharegpt(SHAREGPT_SMALL)
    prompts = datasets.sharegpt_prompts(tokenizer, entries, 100, output_len=5, seed=0)
    names = {ids_by_prompt()[p.prompt] for p in prompts}
    assert {p.output_len for p in prompts} == {5}
    assert any(n.startswith("bad-short-reply") for n in names)  # vLLM skips that check
    assert not any(n.startswith(("bad-short-prompt", "bad-long-prompt")) for n in names)


def test_sharegpt_oversamples_when_short(tokenizer: Tokenizer) -> None:
    entries = datasets.read_sharegpt(SHAREGPT_SMALL)
    prompts = datasets.sharegpt_prompts(tokenizer, entries, 100, seed=0)
    assert len(prompts) == 100 and len({p.prompt for p in prompts}) == 48


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ('{"conversations": []}', "not ShareGPT-shaped"),
        ('[{"text": "x"}]', "no 'conversations'"),
    ],
)
def test_sharegpt_bad_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "d.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchError, match=message) as exc:
        datasets.read_sharegpt(path)
    assert "fix: pass --dataset-path" in str(exc.value)


def test_sharegpt_nothing_survives(tokenizer: Tokenizer) -> None:
    entries = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x"}]}]
    with pytest.raises(BenchError, match="survived the filters"):
        datasets.sharegpt_prompts(tokenizer, entries, 3)


# ------------------------------------------------------------------------------- fixed
def test_fixed_prompts(tokenizer: Tokenizer) -> None:
    prompts = datasets.fixed_prompts(3)
    assert {p.prompt for p in prompts} == {datasets.FIXED_PROMPT}
    assert {p.output_len for p in prompts} == {128} and prompts[0].prompt_len is None
    # the same prompt each time: the workload asks for the cache, all of it shared
    tokenized = datasets.fixed_prompts(2, 16, tokenizer)
    assert {p.prefix_len for p in tokenized} == {tokenized[0].prompt_len}
    assert datasets.fixed_prompts(1, 16, tokenizer)[0].prompt_len == len(
        tokenizer.encode(datasets.FIXED_PROMPT)
    )


# ------------------------------------------------------------------------ materialized
def test_materialize_and_load_round_trip(tmp_path: Path, tokenizer_dir: Path) -> None:
    out = tmp_path / "ds" / "w.jsonl"
    argv = [
        "--dataset-name",
        "random",
        "--tokenizer",
        str(tokenizer_dir),
        "--num-prompts",
        "12",
        "--random-input-len",
        "16",
        "--random-output-len",
        "4",
        "--save-prompts",
        str(out),
    ]
    assert datasets.materialize(parse_args(argv)) == out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert set(rows[0]) == {"prompt", "prompt_len", "output_len", "prefix_len"}
    loaded = datasets.load_materialized(out)
    assert [p.prompt for p in loaded] == [r["prompt"] for r in rows]
    assert {p.prompt_len for p in loaded} == {16} and {p.output_len for p in loaded} == {4}
    # same seed, same file: engines replay byte-identical prompts
    again = tmp_path / "again.jsonl"
    datasets.materialize(parse_args([*argv[:-1], str(again)]))
    assert again.read_bytes() == out.read_bytes()


def test_save_prompts_cli_contacts_no_server(tmp_path: Path, tokenizer_dir: Path) -> None:
    out = tmp_path / "p.jsonl"
    argv = [
        "--base-url",
        "http://127.0.0.1:9",
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        str(SHAREGPT_SMALL),
        "--tokenizer",
        str(tokenizer_dir),
        "--num-prompts",
        "5",
        "--save-prompts",
        str(out),
    ]
    assert main(argv) == 0
    assert len(datasets.load_materialized(out)) == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ('{"prompt": "x"}\n', "not a prompt row"),
        ('{"prompt": 1, "prompt_len": 1, "output_len": 2}\n', "bad prompt"),
        ('{"prompt": "x", "prompt_len": 1, "output_len": 0}\n', "bad prompt"),
        ("not json\n", "not a prompt row"),
    ],
)
def test_bad_prompt_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(BenchError, match=message):
        datasets.load_materialized(path)


def test_prompts_file_shorter_than_num_prompts(tmp_path: Path) -> None:
    path = datasets.write_prompts(tmp_path / "p.jsonl", datasets.fixed_prompts(3, 4))
    args = parse_args(["--prompts-file", str(path), "--num-prompts", "5"])
    with pytest.raises(BenchError, match="has 3 rows"):
        datasets.build_prompts(args, None)


def test_materialize_dataset_function(tmp_path: Path, tokenizer_dir: Path) -> None:
    out = datasets.materialize_dataset(
        tmp_path / "w.jsonl", "random", 5, tokenizer=tokenizer_dir, input_len=9, output_len=3
    )
    rows = datasets.load_materialized(out)
    assert len(rows) == 5 and {(p.prompt_len, p.output_len) for p in rows} == {(9, 3)}
    shared = datasets.materialize_dataset(
        tmp_path / "s.jsonl", "random", 3, tokenizer=tokenizer_dir, input_len=9, prefix_len=6
    )
    assert {(p.prompt_len, p.prefix_len) for p in datasets.load_materialized(shared)} == {(15, 7)}
    fixed = datasets.materialize_dataset(tmp_path / "f.jsonl", "fixed", 2, output_len=7)
    assert {p.output_len for p in datasets.load_materialized(fixed)} == {7}


def test_prompt_offset_and_warmups_take_their_own_rows(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    rows = datasets.random_prompts(tokenizer, 10, 8, 2, seed=0)
    path = datasets.write_prompts(tmp_path / "p.jsonl", rows)
    args = parse_args(["--prompts-file", str(path), "--num-prompts", "3", "--prompt-offset", "4"])
    assert datasets.build_prompts(args, None) == rows[4:7]
    # two warm-ups: rows 4, 5; the measured ones 6, 7, 8
    warm, measured = datasets.split_warmups(datasets.build_prompts(args, None, 2), 2)
    assert warm == rows[4:6] and measured == rows[6:9]
    short = parse_args(["--prompts-file", str(path), "--num-prompts", "7", "--prompt-offset", "4"])
    with pytest.raises(BenchError, match="after --prompt-offset 4"):
        datasets.build_prompts(short, None)
    with pytest.raises(BenchError, match="needs --prompts-file"):
        parse_args(["--prompt-offset", "2"])


def test_prompts_file_defaults_to_every_row(tmp_path: Path) -> None:
    path = datasets.write_prompts(tmp_path / "p.jsonl", datasets.fixed_prompts(3, 4))
    args = parse_args(["--prompts-file", str(path)])
    assert len(datasets.build_prompts(args, None)) == 3 and args.num_prompts == 3
    assert parse_args([]).num_prompts == 1000


# ------------------------------------------------------------------------------ tokenizer
@pytest.mark.parametrize("declared", ["PreTrainedTokenizerFast", "LlamaTokenizerFast"])
def test_tokenizer_is_the_one_autotokenizer_loads(
    tokenizer_dir: Path, tmp_path: Path, declared: str
) -> None:
    """The generic fast tokenizer is loaded by its class without AutoTokenizer (whose import
    brings torch: seconds at every load generator's start); any other class still goes through
    AutoTokenizer. Either way the object and its token ids are AutoTokenizer's."""
    import shutil
    import subprocess
    import sys

    from transformers import AutoTokenizer

    from enginebench.loadgen.tokenizer import load_tokenizer

    here = shutil.copytree(tokenizer_dir, tmp_path / "tok")
    config = json.loads((here / "tokenizer_config.json").read_text())
    (here / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": declared}))
    ours, auto = load_tokenizer(str(here)), AutoTokenizer.from_pretrained(str(here))
    assert type(ours) is type(auto)
    for text in ("Hello, world!", "  two  spaces\nand a line", "</s> <s> end"):
        for special in (True, False):
            assert ours.encode(text, add_special_tokens=special) == auto.encode(
                text, add_special_tokens=special
            )
    probe = (
        "import sys; from enginebench.loadgen.tokenizer import load_tokenizer; "
        f"load_tokenizer({str(here)!r}); print('torch' in sys.modules)"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert imported == str(declared != "PreTrainedTokenizerFast")
