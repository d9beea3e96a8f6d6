"""The SSE parser against every chunking and framing case a real server produces."""

from __future__ import annotations

import json

import pytest

from enginebench.loadgen.sse import SSEParser


def parse(*chunks: bytes) -> list[str]:
    p = SSEParser()
    out: list[str] = []
    for c in chunks:
        out += p.feed(c)
    return out + p.close()


def split_every_way(stream: bytes) -> list[list[bytes]]:
    """The stream cut at every single byte position (and byte by byte)."""
    ways = [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    ways.append([stream[i : i + 1] for i in range(len(stream))])
    return ways


EVENTS = [
    {"choices": [{"text": "héllo wörld 😀"}]},
    {"choices": [], "usage": {"completion_tokens": 2}},
]
STREAM = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in EVENTS)
STREAM += b"data: [DONE]\n\n"
EXPECTED = [json.dumps(e, ensure_ascii=False) for e in EVENTS] + ["[DONE]"]


def test_several_events_in_one_chunk() -> None:
    assert parse(STREAM) == EXPECTED


@pytest.mark.parametrize("chunks", split_every_way(STREAM))
def test_any_split_including_inside_utf8_characters(chunks: list[bytes]) -> None:
    assert parse(*chunks) == EXPECTED


def test_events_returned_as_soon_as_complete() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a": 1}\n') == []
    assert p.feed(b"\n") == ['{"a": 1}']
    assert p.feed(b"data: x") == []
    assert p.close() == ["x"]


def test_data_without_space_and_with_extra_spaces() -> None:
    assert parse(b"data:{}\n\ndata:  two\n\n") == ["{}", " two"]


def test_keepalive_comments_and_other_fields_ignored() -> None:
    stream = b": ping\n\nevent: message\nid: 7\nretry: 10\ndata: a\n\n:\n\n: ping - 2026\n\n"
    assert parse(stream) == ["a"]


@pytest.mark.parametrize("sep", [b"\r\n", b"\r", b"\n"])
def test_line_endings(sep: bytes) -> None:
    stream = b"data: a" + sep + sep + b": ping" + sep + sep + b"data: b" + sep + sep
    assert parse(stream) == ["a", "b"]
    for chunks in split_every_way(stream):
        assert parse(*chunks) == ["a", "b"]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" | "\n\r\n": a naive parser sees an extra blank line and dispatches early
    assert parse(b"data: a\r", b"\n", b"data: b\r\n\r\n") == ["a\nb"]


def test_multiline_data_joined() -> None:
    assert parse(b"data: a\ndata: b\n\n") == ["a\nb"]


def test_role_only_chunk_and_usage_with_choices_are_plain_events() -> None:
    role = {"choices": [{"delta": {"role": "assistant", "content": ""}}]}
    last = {"choices": [{"delta": {"content": "x"}}], "usage": {"completion_tokens": 1}}
    stream = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (role, last))
    assert [json.loads(e) for e in parse(stream)] == [role, last]


def test_stream_cut_midway_returns_what_was_complete() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a": 1}\n\ndata: {"b": ') == ['{"a": 1}']
    # the truncated event surfaces at close; the client's JSON decoding then flags it
    assert p.close() == ['{"b": ']


def test_invalid_utf8_never_raises() -> None:
    assert parse(b"data: \xff\xfe\n\n") == ["\ufffd\ufffd"]


def test_empty_stream() -> None:
    assert parse(b"") == []
    assert parse(b"\n\n\n") == []
