"""Fidelity without an engine: each engine's logprob dialect read back to token ids, the
measures against a reference distribution, the table and figure from score files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from enginebench.engines.spec import TopLogprobs
from enginebench.fidelity.collect import Collected, TokenIds, read_choice, request_body
from enginebench.fidelity.score import kl_topk, score, score_path, text_match
from enginebench.report.fidelity import fidelity_frame, plot_fidelity, write_fidelity


class _Tok:
    """Six tokens; 3 and 4 decode to the same text (ambiguous); 1 and 5 differ by a space."""

    TEXT: ClassVar[dict[int, str]] = {0: "<s>", 1: " a", 2: " b", 3: "�", 4: "�", 5: "a"}

    def __len__(self) -> int:
        return len(self.TEXT)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [i for i, t in self.TEXT.items() if t == text][:1]

    def decode(self, ids: list[int], **_: Any) -> str:
        return "".join(self.TEXT[i] for i in ids)


def _rec() -> Collected:
    return Collected(0, [0])


def test_llamacpp_content_with_ids() -> None:
    rec = _rec()
    choice = {"text": " a b", "finish_reason": "length", "logprobs": {"content": [
        {"id": 1, "token": " a", "logprob": -0.5,
         "top_logprobs": [{"id": 1, "token": " a", "logprob": -0.5},
                          {"id": 2, "token": " b", "logprob": -1.5}]},
        {"id": 2, "token": " b", "logprob": -0.1, "top_logprobs": []},
    ]}}  # fmt: skip
    read_choice(rec, choice, TokenIds(_Tok()))  # type: ignore[arg-type]
    assert rec.ids == [1, 2] and rec.logprob == [-0.5, -0.1]
    assert rec.top == [[[1, -0.5], [2, -1.5]], []] and rec.unmapped == 0
    assert rec.text == " a b" and rec.finish_reason == "length"


def test_vllm_token_ids_and_mlc_text_tokens() -> None:
    vllm = _rec()
    read_choice(vllm, {"logprobs": {"tokens": ["token_id:2"], "token_logprobs": [-0.2],
                                    "top_logprobs": [{"token_id:2": -0.2, "token_id:1": -2.0}]}},
                TokenIds(_Tok()))  # type: ignore[arg-type]  # fmt: skip
    assert vllm.ids == [2] and vllm.top == [[[2, -0.2], [1, -2.0]]]
    mlc = _rec()
    read_choice(mlc, {"logprobs": {"tokens": [" b", " a", "�"], "token_logprobs": [-0.3, -0.4, -1],
                                   "top_logprobs": [{" b": -0.3, "�": -3.0}, {}, {}]}},
                TokenIds(_Tok()))  # type: ignore[arg-type]  # fmt: skip
    # "�" names two ids: a top entry dropped and counted, and the path stops at such a token
    assert mlc.ids == [2, 1] and mlc.top[0] == [[2, -0.3]] and mlc.unmapped == 1


def test_mlc_token_text_without_its_space_is_told_apart_by_the_answer() -> None:
    rec = _rec()
    choice = {"text": " aa b", "logprobs": {
        "tokens": ["a", "a", "b"], "token_logprobs": [-1.0, -1.1, -1.2],
        "top_logprobs": [{"a": -1.0, "b": -2.0}, {}, {}],
    }}  # fmt: skip
    read_choice(rec, choice, TokenIds(_Tok(), strip=True))  # type: ignore[arg-type]
    # " a" then "a" then " b"; the top entry "a" may be " a" or "a": left out, counted
    assert rec.ids == [1, 5, 2] and rec.top[0] == [[2, -2.0]] and rec.unmapped == 1


def test_sglang_path_ids_come_beside_the_logprobs() -> None:
    rec = _rec()
    choice = {"text": "��", "token_ids": [3, 4], "logprobs": {
        "tokens": ["�", "�"], "token_logprobs": [-1.0, -2.0], "top_logprobs": [{}, {}],
    }}  # fmt: skip
    read_choice(rec, choice, TokenIds(_Tok()))  # type: ignore[arg-type]
    assert rec.ids == [3, 4]  # the text alone names neither


def test_request_body_caps_k_and_adds_the_dialect() -> None:
    top = TopLogprobs(max_k=5, extra={"return_tokens_as_token_ids": True})
    body = request_body("m", [1, 2], 8, top, 20)
    assert body["logprobs"] == 5 and body["return_tokens_as_token_ids"] is True
    assert body["temperature"] == 0.0 and body["prompt"] == [1, 2] and body["stream"] is False
    assert "logprobs" not in request_body("m", "text", 8, None, 20)
    sampled = request_body("m", [1, 2], 8, top, 20, sampled=True)
    assert sampled["temperature"] == 1.0 and sampled["top_p"] == 1.0 and sampled["seed"] == 0


def _logp(probs: list[float]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


def test_kl_topk_buckets_the_rest_and_bounds_the_full_kl() -> None:
    p = np.array([0.5, 0.3, 0.1, 0.1])
    q = np.array([0.4, 0.4, 0.1, 0.1])
    top = [[0, math.log(0.4)], [1, math.log(0.4)]]
    want = 0.5 * math.log(0.5 / 0.4) + 0.3 * math.log(0.3 / 0.4) + 0.2 * math.log(0.2 / 0.2)
    assert kl_topk(np.log(p), top) == pytest.approx(want)
    full = float((p * np.log(p / q)).sum())
    assert kl_topk(np.log(p), top) <= full + 1e-12
    same = [[i, math.log(x)] for i, x in enumerate(p)]
    assert kl_topk(np.log(p), same) == pytest.approx(0.0, abs=1e-12)
    assert kl_topk(np.log(p), []) is None
    # an engine whose top-k rounds to 1 while the reference has mass elsewhere: finite
    assert 0 < kl_topk(np.log(p), [[0, math.log(0.6)], [1, math.log(0.4)]]) < 20


def test_score_path_agreement_and_exact_match() -> None:
    ref = np.stack([_logp([0.1, 0.6, 0.3]), _logp([0.1, 0.3, 0.6]), _logp([0.7, 0.2, 0.1])])
    rec = Collected(0, [0], ids=[1, 2, 1], logprob=[math.log(0.6), math.log(0.5), math.log(0.2)])
    s = score_path(rec, ref)
    assert s.agree == [True, True, False]
    assert s.exact_match == 2 and not s.full_match
    assert s.errs[1] == pytest.approx(math.log(0.6) - math.log(0.5))
    assert s.kls == []  # no top-k given
    only = score_path(rec, ref, agreement=False)  # a sampled path: its distributions only
    assert only.agree == [] and len(only.errs) == 3


def test_text_match_counts_reference_tokens_within_the_engine_text() -> None:
    dec = _Tok().decode
    assert text_match(" a b a", [0], [1, 2, 2], dec) == 2
    assert text_match(" b", [0], [1], dec) == 0
    assert text_match("a b", [0], [1, 2], dec) == 2  # a server that drops the first space


class _Ref:
    """A reference whose argmax is always token 1; its own greedy path is all 1s."""

    tok = _Tok()

    def logp(self, prompt_ids: list[int], path: list[int]) -> np.ndarray:
        return np.stack([_logp([0.1, 0.5, 0.2, 0.1, 0.1])] * len(path))

    def greedy(self, prompt_ids: list[int], n: int) -> list[int]:
        return [1] * n


def test_score_counts_failures_and_scores_text_only_engines() -> None:
    recs = [
        Collected(0, [0], ids=[1, 1], logprob=[math.log(0.5)] * 2,
                  top=[[[1, math.log(0.5)]], [[1, math.log(0.4)]]]),
        Collected(1, [0], ids=[1, 2], logprob=[math.log(0.5)] * 2, top=[[], []]),
        Collected(2, [0], text=" a a b"),  # an engine without logprobs
        Collected(3, [0], error="HTTP 500: boom"),
    ]  # fmt: skip
    out = score(recs, _Ref(), 3)  # type: ignore[arg-type]
    assert out["prompts"] == 4 and out["failed"] == 1 and out["errors"] == ["HTTP 500: boom"]
    assert out["scored_by_ids"] == 2 and out["scored_by_text"] == 1
    assert out["positions"] == 4 and out["top1_agreement"] == pytest.approx(3 / 4)
    assert out["exact_match_tokens"] == pytest.approx((2 + 1 + 2) / 3)
    assert out["full_match_fraction"] == pytest.approx(1 / 3)
    assert out["kl_mean"] is not None and out["kl_mean"] > 0  # the second position differs
    assert out["top_k"] == 1 and out["distributions_from"] == "greedy"


def test_an_engine_whose_greedy_logprobs_are_one_hot_is_measured_on_its_sampled_answer() -> None:
    """MLC at temperature 0 gives the chosen token 0 and every other -23: those are left out,
    and the sampled answer's logprobs (temperature 1) give the distributions."""
    one_hot = [[[1, 0.0], [0, -23.03]]] * 2
    rec = Collected(0, [0], ids=[1, 1], logprob=[0.0, 0.0], top=one_hot, sampled={
        "ids": [2], "text": " b", "logprob": [math.log(0.2)], "unmapped": 0,
        "top": [[[1, math.log(0.5)], [2, math.log(0.2)]]],
    })  # fmt: skip
    out = score([rec], _Ref(), 2)  # type: ignore[arg-type]
    assert out["top1_agreement"] == 1.0 and out["exact_match_tokens"] == 2
    assert out["kl_positions"] == 1 and out["kl_mean"] == pytest.approx(0.0, abs=1e-12)
    assert out["logprob_err_mean"] == pytest.approx(0.0, abs=1e-12)
    assert out["distributions_from"] == "sampled"


def _score_file(path: Path, engine: str, quant: str, kl: float, agree: float) -> Path:
    path.write_text(json.dumps({
        "engine": engine, "kind": engine, "model": "tiny", "quant": quant,
        "engine_version": "v1", "reference": {"dtype": "float32", "device": "cpu",
                                              "versions": {"transformers": "5.0"}},
        "prompts": 4, "failed": 0, "scored_by_ids": 4, "scored_by_text": 0,
        "top1_agreement": agree, "exact_match_tokens": 3.0, "full_match_fraction": 0.25,
        "kl_mean": kl, "kl_p99": kl * 3, "logprob_err_mean": 0.01, "top_k": 20,
    }))  # fmt: skip
    return path


def test_fidelity_table_and_figure(tmp_path: Path) -> None:
    scores = [
        _score_file(tmp_path / "a.json", "llamacpp", "f16", 6e-6, 0.97),
        _score_file(tmp_path / "b.json", "llamacpp", "Q4_K_M", 3e-5, 0.56),
    ]
    frame = fidelity_frame(scores)
    assert list(frame["quant"]) == ["Q4_K_M", "f16"]
    assert frame["decode_tok_s"].isna().all()  # no results table given: speed blank, not 0
    out = {k: tmp_path / f"fidelity.{k}" for k in ("csv", "md", "html", "png", "svg")}
    write_fidelity(frame, out["csv"], out["md"], out["html"])
    md = out["md"].read_text()
    assert "3.00e-05" in md and "0.560" in md and "lower bound" in md
    assert "transformers 5.0, float32 on cpu" in md
    plot_fidelity(frame, out["png"], out["svg"])
    assert out["png"].stat().st_size > 0 and out["svg"].read_text().startswith("<?xml")


def test_llama_perplexity_kl_statistics_are_read() -> None:
    from enginebench.engines.llamakld import KldError, kld_argv, parse_kld

    out = """Mean PPL(Q)/PPL(base)         :   1.004312 ±   0.001201
====== KL divergence statistics ======
Mean    KLD:   0.002200 ±   0.000016
Maximum KLD:   0.003610
99.9%   KLD:   0.003484
99.0%   KLD:   0.003256
Same top p: 62.434 ± 1.576 %
"""
    assert parse_kld(out) == {
        "kld_mean": 0.0022, "kld_p99": 0.003256, "kld_max": 0.00361,
        "same_top_percent": 62.434, "ppl_ratio": 1.004312,
    }  # fmt: skip
    with pytest.raises(KldError):
        parse_kld("main: error: unable to load model")
    assert kld_argv("t", "f16.gguf", "b.kld", text="x.txt") == [
        "t", "-m", "f16.gguf", "-c", "128", "--kl-divergence-base", "b.kld", "-f", "x.txt"
    ]  # fmt: skip
    assert kld_argv("t", "q4.gguf", "b.kld")[-1] == "--kl-divergence"


_FAKE_PERPLEXITY = """#!{python}
import sys
from pathlib import Path
count = Path(__file__).with_name("runs")
n = int(count.read_text()) if count.exists() else 0
count.write_text(str(n + 1))
print("[1]1.2,[2]1.3,[3]1.2,")
if "--kl-divergence" in sys.argv and n >= {lose}:  # the comparison, its end not lost
    print("====== KL divergence statistics ======")
    print("Mean    KLD:   0.002200 \u00b1   0.000016")
"""


@pytest.mark.parametrize(("lose", "runs"), [(2, 3), (9, 4)])
def test_kl_statistics_lost_at_exit_are_measured_again(
    tmp_path: Path, lose: int, runs: int
) -> None:
    """llama-perplexity exits 0 having lost its last lines (an asynchronous log never flushed,
    llama.cpp#22142): the comparison runs again, up to KLD_ATTEMPTS times in all."""
    import sys

    from enginebench.engines.llamakld import KLD_ATTEMPTS, KldError, measure_kld

    tool = tmp_path / "llama-perplexity"
    tool.write_text(_FAKE_PERPLEXITY.format(python=sys.executable, lose=lose))
    tool.chmod(0o755)
    if lose < KLD_ATTEMPTS:  # the base run, then the comparison lost once, then read
        stats = measure_kld(str(tool), "f16.gguf", "q4.gguf", "text", tmp_path)
        assert stats["kld_mean"] == 0.0022
    else:
        with pytest.raises(KldError, match="no KL divergence statistics"):
            measure_kld(str(tool), "f16.gguf", "q4.gguf", "text", tmp_path)
    assert int((tmp_path / "runs").read_text()) == runs


def test_a_path_shorter_than_its_answer_is_no_full_match() -> None:
    """llama.cpp once gave 25 logprob entries for a 32-token answer: what it gave is scored,
    but the engine may have left the reference after it."""
    rec = _rec()
    content = [{"id": 1, "token": " a", "logprob": math.log(0.5), "top_logprobs": []}] * 2
    read_choice(rec, {"text": " a a", "logprobs": {"content": content}}, TokenIds(_Tok()), 3)  # type: ignore[arg-type]
    assert rec.ids == [1, 1] and rec.truncated
    out = score([rec], _Ref(), 3)  # type: ignore[arg-type]
    assert out["exact_match_tokens"] == 2 and out["full_match_fraction"] == 0.0
    assert out["truncated_paths"] == 1


def test_a_failed_sampled_answer_costs_the_distributions_only() -> None:
    rec = Collected(0, [0], ids=[1], logprob=[0.0], top=[[[1, 0.0]]], sampled={
        "ids": [], "text": "", "logprob": [], "top": [], "unmapped": 0, "truncated": False,
        "error": "HTTP 500: boom",
    })  # fmt: skip
    out = score([rec], _Ref(), 1)  # type: ignore[arg-type]
    assert out["failed"] == 0 and out["top1_agreement"] == 1.0
    assert out["kl_mean"] is None and out["sampled_failed"] == 1
