"""Fidelity's score: an engine's greedy paths (collect.py) against the reference model.

The reference is the unquantized model in transformers (the HF weights every engine's files
were converted from), teacher-forced along each engine's own greedy path: one forward pass over
prompt + path gives the reference's next-token distribution at every position the engine
produced, with the same context the engine had. Measures (definitions in `DEFINITIONS`):

* top-1 agreement: the fraction of positions where the engine's token is the reference's argmax;
* greedy exact-match length: the tokens before the first position where they differ (the two
  greedy continuations are identical up to there);
* KL(reference || engine) on the engine's top-k tokens plus one bucket for the rest of the
  vocabulary: by the log-sum inequality never more than the full-vocabulary KL, so a lower bound;
* the chosen token's logprob error: |engine logprob - the reference's|, for the same token.

An engine that returns no token ids gives its text only: its exact-match length is the longest
run of the reference's own greedy tokens whose text starts the engine's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from enginebench.fidelity.collect import Collected, read_collected
from enginebench.jsonfile import read_json, write_json

DEFINITIONS = {
    "top1_agreement": "fraction of the engine's greedy tokens that are the reference's argmax "
    "given the same context (teacher-forced along the engine's path)",
    "exact_match_tokens": "tokens of the engine's greedy continuation before the first one the "
    "reference would not have chosen (mean over prompts)",
    "kl_mean": "KL(reference || engine) in nats on the engine's top-k tokens plus one bucket for "
    "the rest of the vocabulary (a lower bound on the full-vocabulary KL), mean over positions",
    "logprob_err_mean": "mean |engine logprob - reference logprob| of the token the engine chose",
}
# the least mass an engine's rest bucket is taken to hold: where its top-k sums to ~1 (rounding)
# while the reference has mass outside it, a rest of ~0 would blow the bucket's term up
REST_MIN = 1e-6


@dataclass
class Scored:
    """One engine path's measures: `agree` per position (greedy paths), `kls` and `errs` per
    position where the engine gave logprobs."""

    agree: list[bool] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)
    errs: list[float] = field(default_factory=list)
    exact_match: int = 0
    full_match: bool = False


def kl_topk(ref_logp: np.ndarray, top: Sequence[Sequence[float]]) -> float | None:
    """KL(P_ref || Q_engine) over the engine's top-k ids and one `rest` bucket (None: no top-k).
    `ref_logp` is the reference's full log-distribution at this position."""
    if not top:
        return None
    seen: dict[int, float] = {}
    for i, lp in top:
        seen.setdefault(int(i), float(lp))
    ids = np.fromiter(seen, dtype=np.int64)
    q = np.exp(np.fromiter(seen.values(), dtype=np.float64))
    p = np.exp(ref_logp[ids].astype(np.float64))
    p_rest = max(1.0 - float(p.sum()), 0.0)
    if p_rest > REST_MIN and q.sum() > 1.0 - REST_MIN:
        q *= (1.0 - REST_MIN) / q.sum()
    q_rest = max(1.0 - float(q.sum()), REST_MIN)
    p, q = np.append(p, p_rest), np.append(q, q_rest)
    terms = np.zeros_like(p)
    np.log(p / q, out=terms, where=p > 0)  # 0 log 0 = 0
    return float((p * terms).sum())


def score_path(
    rec: Collected, ref_logp: np.ndarray, agreement: bool = True, distributions: bool = True
) -> Scored:
    """Measures of one engine path given the reference's log-distribution at each of its
    positions (`ref_logp`: len(rec.ids) x vocab): the tokens' (`agreement`: a greedy path) and
    the logprobs' (`distributions`: logprobs that are the model's)."""
    out = Scored()
    for t, chosen in enumerate(rec.ids):
        row = ref_logp[t]
        if agreement:
            out.agree.append(int(np.argmax(row)) == chosen)
        if distributions:
            if (kl := kl_topk(row, rec.top[t] if t < len(rec.top) else [])) is not None:
                out.kls.append(kl)
            if t < len(rec.logprob):
                out.errs.append(abs(rec.logprob[t] - float(row[chosen])))
    if agreement:
        out.exact_match = out.agree.index(False) if False in out.agree else len(out.agree)
        out.full_match = all(out.agree) and not rec.truncated
    return out


def text_match(
    engine_text: str, prompt_ids: Sequence[int], ref_ids: Sequence[int], decode: Any
) -> int:
    """How many of the reference's greedy tokens the engine's text starts with: each prefix
    decoded after the prompt (a SentencePiece token keeps its leading space there), special
    tokens (EOS) skipped, leading whitespace not counted (servers differ on the first space)."""
    head = decode(list(prompt_ids), skip_special_tokens=True)
    got, n = engine_text.lstrip(), 0
    for t in range(1, len(ref_ids) + 1):
        text = decode([*prompt_ids, *ref_ids[:t]], skip_special_tokens=True)[len(head) :]
        if not got.startswith(text.lstrip()):
            break
        n = t
    return n


class Reference:
    """The unquantized model in transformers, on `device` in `dtype`, in eval mode."""

    def __init__(self, hf_dir: str, dtype: str = "float32", device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device
        model: Any = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=getattr(torch, dtype))
        self.model = model.to(device).eval()
        self.tok = AutoTokenizer.from_pretrained(hf_dir)

    def logp(self, prompt_ids: Sequence[int], path: Sequence[int]) -> np.ndarray:
        """log-softmax (float64) at each position of `path`, teacher-forced: len(path) x vocab."""
        torch = self.torch
        ids = torch.tensor([[*prompt_ids, *path[:-1]]], device=self.device)
        with torch.inference_mode():
            logits = self.model(ids).logits[0, len(prompt_ids) - 1 :]
        return torch.log_softmax(logits.double(), dim=-1).cpu().numpy()

    def greedy(self, prompt_ids: Sequence[int], n: int) -> list[int]:
        torch = self.torch
        ids = torch.tensor([list(prompt_ids)], device=self.device)
        with torch.inference_mode():
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id,
            )  # fmt: skip
        return [int(i) for i in out[0, len(prompt_ids) :]]

    def versions(self) -> dict[str, str]:
        import transformers

        return {"torch": self.torch.__version__, "transformers": transformers.__version__}


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score(recs: Sequence[Collected], ref: Reference, max_tokens: int) -> dict[str, Any]:
    """The engine's measures over every record (failed requests counted, not scored). A path
    is also cut short where the answer stopped for its length before `max_tokens` ids."""
    for r in recs:
        r.truncated = r.truncated or (r.finish_reason == "length" and len(r.ids) < max_tokens)
    failed = [r for r in recs if r.error]
    ok = [r for r in recs if not r.error]
    by_ids = [r for r in ok if r.ids]
    scored = [
        score_path(r, ref.logp(r.prompt_ids, r.ids), distributions=r.sampled is None)
        for r in by_ids
    ]
    # an engine whose greedy logprobs are its sampler's: the distributions of its sampled path
    sampled = [Collected(r.index, r.prompt_ids, **r.sampled) for r in by_ids if r.sampled]
    dists = [
        score_path(s, ref.logp(s.prompt_ids, s.ids), agreement=False)
        for s in sampled
        if s.ids and not s.error
    ]
    text_only = [r for r in ok if not r.ids]
    refs = [ref.greedy(r.prompt_ids, max_tokens) for r in text_only]
    by_text = [
        text_match(r.text, r.prompt_ids, g, ref.tok.decode)
        for r, g in zip(text_only, refs, strict=True)
    ]
    matches = [s.exact_match for s in scored] + by_text
    full = [s.full_match for s in scored] + [
        m == len(g) for m, g in zip(by_text, refs, strict=True)
    ]
    agree = [a for s in scored for a in s.agree]
    kls = [k for s in [*scored, *dists] for k in s.kls]
    errs = [e for s in [*scored, *dists] for e in s.errs]
    tops = [t for r in [*by_ids, *sampled] for t in r.top]
    return {
        "prompts": len(recs),
        "failed": len(failed),
        "errors": sorted({r.error for r in failed if r.error})[:5],
        "scored_by_ids": len(by_ids),
        "scored_by_text": len(text_only),
        "positions": len(agree),
        "top1_agreement": sum(agree) / len(agree) if agree else None,
        "exact_match_tokens": _mean(matches),
        "exact_match_p50": _pct(matches, 50),
        "full_match_fraction": sum(full) / len(full) if full else None,
        "kl_mean": _mean(kls),
        "kl_p99": _pct(kls, 99),
        "kl_max": max(kls) if kls else None,
        "logprob_err_mean": _mean(errs),
        "kl_positions": len(kls),
        "distributions_from": "sampled" if sampled else "greedy",
        "sampled_failed": sum(1 for s in sampled if s.error),
        "truncated_paths": sum(1 for r in by_ids if r.truncated),
        "top_k": max(map(len, tops), default=0),
        "unmapped_top_tokens": sum(r.unmapped for r in [*ok, *sampled]),
    }


def _version(probe: Any) -> Any:
    """The engine's version from its server record's probe ({argv, version, output})."""
    return probe.get("version") if isinstance(probe, dict) else probe


def score_file(
    records: str, server_json: str, hf_dir: str, out: str, max_tokens: int,
    dtype: str = "float32", device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Score the collection `records` (its server's record `server_json`) against the reference
    in `hf_dir`; write and return the score with what it was measured on."""
    server = read_json(server_json)
    ref = Reference(hf_dir, dtype, device)
    result = {
        "engine": server["engine"], "kind": server["kind"],
        "model": server["metadata"].get("model") or server["served_name"],
        "quant": server["quant"], "engine_version": _version(server.get("version")),
        "engine_commit": server["metadata"].get("engine_commit"),
        "model_sha": server["metadata"].get("model_sha"),
        "reference": {"hf_dir": hf_dir, "dtype": dtype, "device": device,
                      "versions": ref.versions()},
        "max_tokens": max_tokens, "definitions": DEFINITIONS,
        **score(read_collected(records), ref, max_tokens),
    }  # fmt: skip
    write_json(out, result, sort_keys=False)
    return result
