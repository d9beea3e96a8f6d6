"""Fidelity's collection: each prompt sent once through the engine's own API, greedy, with the
top-k logprobs of each output token where the engine returns them (`EngineSpec.top_logprobs`).

Prompts go as token ids (the client tokenizer's, its BOS included, as the engine would add), so
the reference scores the very sequence the engine saw; an engine that returns no logprobs gets
the prompt's text and gives its greedy text only. One record per prompt (`engine.jsonl`):
`prompt_ids`, `ids` (the engine's greedy path, as far as its tokens map to ids), `text`,
`logprob` (each chosen token's), `top` ([[id, logprob], ...] per position), `unmapped` (top-k
entries whose token text names no single id), `truncated` (the path ends before the answer),
`finish_reason`, `error`, and `sampled` (the same fields of a second answer at temperature 1,
for an engine whose greedy logprobs are its sampler's, `TopLogprobs.greedy`; its own `error`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from enginebench.engines.spec import TopLogprobs
from enginebench.loadgen.tokenizer import Tokenizer

TOKEN_ID = re.compile(r"token_id:(\d+)")  # vLLM's `return_tokens_as_token_ids`
SAMPLED = ("ids", "text", "logprob", "top", "unmapped", "truncated", "error")  # its fields


@dataclass
class Collected:
    index: int
    prompt_ids: list[int]
    ids: list[int] = field(default_factory=list)
    text: str = ""
    logprob: list[float] = field(default_factory=list)
    top: list[list[list[float]]] = field(default_factory=list)  # [[id, logprob], ...] per token
    unmapped: int = 0
    finish_reason: str | None = None
    error: str | None = None
    # the path ends before the answer does (a token no id fits, a missing logprob, fewer
    # logprob entries than tokens): what it has is scored, and it is no full match
    truncated: bool = False
    # ids, text, logprob, top, unmapped, truncated, error of the answer at temperature 1
    sampled: dict[str, Any] | None = None


class TokenIds:
    """A token as an engine names it -> its id: `id` where the engine gives one, `token_id:N`,
    else its text, when one id of the tokenizer decodes to it, or when several do and the text
    that follows it in the answer tells which. `strip`: the engine names a token by its text
    with the leading spaces cut (MLC: " mean" and "mean" are both "mean")."""

    def __init__(self, tok: Tokenizer, strip: bool = False) -> None:
        self.tok, self.strip = tok, strip
        self._texts: dict[str, list[int]] | None = None
        self._anchor: tuple[int, str] | None = None

    def decoded(self, i: int) -> str:
        """A token's text as it reads inside an answer: after another token, so a SentencePiece
        `▁mean` keeps its space (decoded alone it would not)."""
        if self._anchor is None:
            ids = self.tok.encode("a", add_special_tokens=False)
            self._anchor = (ids[0], self.tok.decode(ids[:1])) if ids else (-1, "")
        anchor, head = self._anchor
        if anchor < 0:
            return self.tok.decode([i])
        return self.tok.decode([anchor, i])[len(head) :]

    def texts(self) -> dict[str, list[int]]:
        """Each token text as the engine names it -> the ids it may be, built on first use:
        only an engine that names tokens by text needs it."""
        if self._texts is None:
            self._texts = {}
            for i in range(len(self.tok)):  # type: ignore[arg-type]
                text = self.decoded(i)
                self._texts.setdefault(text.lstrip(" ") if self.strip else text, []).append(i)
        return self._texts

    def __call__(self, token: Any, given: Any = None, following: str | None = None) -> int | None:
        if isinstance(given, int) and not isinstance(given, bool):
            return given
        if not isinstance(token, str):
            return None
        if m := TOKEN_ID.fullmatch(token):
            return int(m.group(1))
        found = self.texts().get(token, [])
        if len(found) > 1 and following is not None:  # the answer's own text tells which
            found = [i for i in found if following.startswith(self.decoded(i))]
        return found[0] if len(found) == 1 else None  # none, or still several: unknown


def request_body(
    served: str, prompt: str | list[int], max_tokens: int, top: TopLogprobs | None, k: int,
    sampled: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Greedy (or `sampled`: temperature 1, top_p 1, so the logprobs are the model's softmax),
    no stream; `logprobs: k` (capped at what the engine returns) where it has any."""
    body: dict[str, Any] = {
        "model": served, "prompt": prompt, "max_tokens": max_tokens,
        "temperature": 1.0 if sampled else 0.0, "stream": False,
    }  # fmt: skip
    if sampled:
        body.update(top_p=1.0, seed=0)
    if top is not None and k > 0:
        body["logprobs"] = min(k, top.max_k)
        body.update(top.extra)
    return body


def read_choice(
    rec: Collected, choice: Mapping[str, Any], ids: TokenIds, tokens: int | None = None
) -> None:
    """The greedy path and its logprobs from a completion's choice, in either shape engines use:
    `content` (llama.cpp: id, token, logprob, top_logprobs per token) or the legacy `tokens`,
    `token_logprobs`, `top_logprobs` (vLLM, MLC, SGLang; SGLang's `token_ids` names the path's
    ids). The path stops at the first token that maps to no id or has no logprob (teacher
    forcing needs the exact sequence), and is `truncated` when it ends before the answer.
    `tokens`: the answer's length by the server's count (usage), where it gives one."""
    rec.text = str(choice.get("text") or "")
    rec.finish_reason = choice.get("finish_reason")
    lp = choice.get("logprobs") or {}
    if isinstance(lp.get("content"), list):
        entries = [
            (e.get("token"), e.get("id"), e.get("logprob"),
             [(t.get("token"), t.get("id"), t.get("logprob")) for t in e.get("top_logprobs") or []])
            for e in lp["content"]
        ]  # fmt: skip
    elif isinstance(lp.get("tokens"), list):
        tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
        entries = [
            (t, None, p, [(k, None, v) for k, v in (top or {}).items()])
            for t, p, top in zip(lp["tokens"], lp.get("token_logprobs") or [], tops, strict=False)
        ]
    else:
        return
    # fewer entries than tokens (llama.cpp left 7 of 32 out of one answer), or lists of unequal
    # length: the path cannot reach the end
    answer_len = max(tokens or 0, len(entries), len(lp.get("tokens") or []))
    at = 0  # where the chosen token's text begins in the answer
    path = choice.get("token_ids")  # SGLang's `return_token_ids`: the path's ids beside
    given_ids = (
        path if isinstance(path, list) and len(path) == len(entries) else [None] * len(entries)
    )
    for (token, given, logprob, top), known in zip(entries, given_ids, strict=True):
        chosen = ids(token, given if given is not None else known, rec.text[at:])
        if chosen is None or logprob is None:
            break
        at += len(ids.decoded(chosen))
        pairs = [(ids(t, g), p) for t, g, p in top]
        rec.unmapped += sum(1 for i, p in pairs if i is None or p is None)
        rec.ids.append(chosen)
        rec.logprob.append(float(logprob))
        rec.top.append([[i, float(p)] for i, p in pairs if i is not None and p is not None])
    rec.truncated = len(rec.ids) < answer_len


async def _one(
    session: aiohttp.ClientSession, url: str, body: Mapping[str, Any], rec: Collected,
    ids: TokenIds,
) -> None:  # fmt: skip
    try:
        async with session.post(url, json=body) as resp:
            text = await resp.text()
            if resp.status != 200:
                rec.error = f"HTTP {resp.status}: {text[:200]}"
                return
        data = json.loads(text)
        choices = data.get("choices") or []
        if not choices:
            rec.error = "no choices in the response"
            return
        usage = data.get("usage") or {}
        read_choice(rec, choices[0], ids, usage.get("completion_tokens"))
    # a response of another shape than asked is this prompt's error, not the collection's end
    except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, AttributeError,
            KeyError) as exc:  # fmt: skip
        rec.error = f"{type(exc).__name__}: {exc}"


async def _collect(
    base_url: str, jobs: Sequence[tuple[Collected, Mapping[str, Any], Mapping[str, Any] | None]],
    ids: TokenIds, headers: Mapping[str, str], timeout_s: float,
) -> None:  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    url = f"{base_url}/v1/completions"
    async with aiohttp.ClientSession(timeout=timeout, headers=dict(headers)) as session:
        for rec, greedy, sampled in jobs:  # one at a time: no batch effects
            await _one(session, url, greedy, rec, ids)
            if sampled is not None and not rec.error:  # its failure costs the distributions only
                answer = Collected(rec.index, rec.prompt_ids)
                await _one(session, url, sampled, answer, ids)
                rec.sampled = {k: getattr(answer, k) for k in SAMPLED}


def collect(
    base_url: str,
    served: str,
    prompts: Iterable[str],
    tok: Tokenizer,
    top: TopLogprobs | None,
    *,
    max_tokens: int,
    k: int,
    out: str | Path,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 600.0,
) -> list[Collected]:
    """Send every prompt, write `out` (JSONL, one record per prompt), return the records."""
    texts = list(prompts)
    recs = [Collected(i, tok.encode(t, add_special_tokens=True)) for i, t in enumerate(texts)]
    jobs = []
    for rec, text in zip(recs, texts, strict=True):
        prompt = rec.prompt_ids if top is not None else text
        again = top is not None and not top.greedy and k > 0
        jobs.append((
            rec, request_body(served, prompt, max_tokens, top, k),
            request_body(served, prompt, max_tokens, top, k, sampled=True) if again else None,
        ))  # fmt: skip
    names = TokenIds(tok, strip=top is not None and top.stripped)
    asyncio.run(_collect(base_url, jobs, names, headers or {}, timeout_s))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text("".join(json.dumps(asdict(r)) + "\n" for r in recs), encoding="utf-8")
    tmp.replace(path)
    return recs


def read_collected(path: str | Path) -> list[Collected]:
    with open(path, encoding="utf-8") as f:
        return [Collected(**json.loads(line)) for line in f if line.strip()]
