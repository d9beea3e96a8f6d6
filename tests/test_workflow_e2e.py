"""The default workflow, end to end with the real engines on a reduced sweep; then what a
change in config makes Snakemake rerun (counted on the completed run)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from enginebench.report.tables import valid
from enginebench.report.tidy import read_results
from tests.workflow.plan import (
    AGGREGATES,
    default_config,
    our_processes,
    planned_jobs,
    run_workflow,
    scratch_workdir,
    snakemake,
    write_config,
)

pytestmark = pytest.mark.engines

OUTPUT_LEN = 128
# with decode sweeps and fidelity (the default config has both), the decode and fidelity tables
# follow every result, and so does the bandwidth measured after the sweeps (the decode table's)
AGGREGATES_DECODE = {**AGGREGATES, "decode_table": 1, "fidelity_table": 1, "memory_bandwidth": 1}


# fixed identity and dates: the second commit's sha (so its build folder) is the same every run
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "enginebench", "GIT_AUTHOR_EMAIL": "tests@enginebench.invalid",
    "GIT_COMMITTER_NAME": "enginebench", "GIT_COMMITTER_EMAIL": "tests@enginebench.invalid",
    "GIT_AUTHOR_DATE": "2026-11-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-11-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def llama_second_commit(src: Path, repo: Path) -> str:
    """A local llama.cpp repository holding the vendored tree's upstream commit and, on top, a
    second one that changes a file nothing compiles (a regression hunt's two commits, built
    twice: ccache makes the second build cheap). Returns the second commit's sha."""

    def git(*args: str) -> str:
        env = {**os.environ, **_GIT_ENV}
        done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        return done.stdout.strip()

    repo.mkdir(parents=True)
    git("init", "-q", "-b", "master")
    git("-c", "safe.directory=*", "fetch", "-q", "--depth", "1", f"file://{src.resolve()}", "HEAD")
    git("-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD")
    with open(repo / "README.md", "a") as fh:
        fh.write("\nenginebench: the second commit of a two-commit comparison\n")
    git("commit", "-q", "-am", "a second commit")
    return git("rev-parse", "HEAD")


def reduced_config(llama_repo: Path, llama_commit: str) -> dict:
    """The default config on fewer prompts; vLLM runs the same points under its own sweep name,
    so that a change to one engine's sweep can be told from a change to the shared one. Beside
    each of llama.cpp and vLLM, a second instance on the decode sweep: llama.cpp at another
    commit, vLLM with one flag apart."""
    cfg = default_config()
    cfg["sweeps"]["default"].update(
        request_rates=[1, 2, 5, 8], num_prompts=8, concurrency=[1, 4], concurrency_num_prompts=4
    )
    cfg["sweeps"]["default"]["warmups"] = 2
    cfg["fidelity"] = {"num_prompts": 8, "max_tokens": 16}
    cfg["sweeps"]["decode"]["concurrency_num_prompts"] = 4
    # a second instance of vLLM, one server flag apart, on the (short) decode sweep only
    vllm_args = cfg["engines"]["vllm"]["server_args"]
    cfg["engines"]["vllm-seed"] = {
        **cfg["engines"]["vllm"], "kind": "vllm", "server_args": [*vllm_args, "--seed", "1"]
    }  # fmt: skip
    cfg["benchmarks"].append(
        {"engine": "vllm-seed", "model": "tiny-llama", "quants": ["hf"], "sweeps": ["decode"],
         "fidelity": False}
    )  # fmt: skip
    llama = cfg["engines"]["llamacpp"]
    cfg["engines"]["llamacpp-b"] = {
        "kind": "llamacpp", "source": "git", "git_url": f"file://{llama_repo}",
        "commit": llama_commit, "backend": llama["backend"], "server_args": llama["server_args"],
    }  # fmt: skip
    cfg["benchmarks"].append(
        {"engine": "llamacpp-b", "model": "tiny-llama", "quants": ["Q4_K_M"], "sweeps": ["decode"],
         "fidelity": False}
    )  # fmt: skip
    cfg["sweeps"]["vllm"] = copy.deepcopy(cfg["sweeps"]["default"])
    (vllm,) = (b for b in cfg["benchmarks"] if b["engine"] == "vllm")
    vllm["sweeps"] = ["vllm"]
    return cfg


@pytest.fixture(scope="module")
def completed_run(tmp_path_factory: pytest.TempPathFactory, _llama_cpp_src: Path) -> dict:
    work = scratch_workdir(tmp_path_factory.mktemp("e2e"))
    repo = tmp_path_factory.mktemp("git") / "llama.cpp"
    cfg = reduced_config(repo, llama_second_commit(_llama_cpp_src, repo))
    configfile = write_config(work / "e2e.yaml", cfg)
    proc = run_workflow(work, configfile)
    assert proc.returncode == 0, f"workflow failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    report = snakemake(
        work, "--configfile", str(configfile), "--report", str(work / "results" / "report.html")
    )
    assert report.returncode == 0, report.stderr[-4000:]
    return {"work": work, "cfg": cfg, "configfile": configfile}


def _tables(work: Path) -> dict[tuple[str, str, str, str], pd.DataFrame]:
    out = {}
    for csv in sorted((work / "results").glob("*/*/*/*/table.csv")):
        engine, model, quant, sweep = csv.parts[-5:-1]
        out[engine, model, quant, sweep] = pd.read_csv(csv)
    return out


def _summaries(work: Path, pattern: str = "*.json", decode: bool = False) -> list[Path]:
    """The load sweeps' point summaries (and the decode sweeps' with `decode`)."""
    found = sorted((work / "results").glob(f"*/*/*/*/points/{pattern}"))
    return [p for p in found if decode or p.parts[-3] != "decode"]


LOAD_RUNS = {
    ("llamacpp", "tiny-llama", "f16", "default"),
    ("llamacpp", "tiny-llama", "Q4_K_M", "default"),
    ("vllm", "tiny-llama", "hf", "vllm"),
    ("transformers", "tiny-llama", "hf", "default"),
    ("mlc", "tiny-llama", "q0f32", "default"),
    ("mlc", "tiny-llama", "q4f32_1", "default"),
}
# vLLM's decode point is served by its second instance (vllm runs its own sweep only)
DECODE_RUNS = {(e, m, q, "decode") for e, m, q, _ in LOAD_RUNS if e != "vllm"}
DECODE_RUNS |= {
    ("vllm-seed", "tiny-llama", "hf", "decode"),
    ("llamacpp-b", "tiny-llama", "Q4_K_M", "decode"),
}


def test_every_engine_has_its_table(completed_run: dict) -> None:
    tables = _tables(completed_run["work"])
    assert set(tables) == LOAD_RUNS | DECODE_RUNS
    for (*_, sweep), table in tables.items():
        assert len(table) == (1 if sweep == "decode" else 6)  # rates 1, 2, 5, 8; conc 1, 4
        assert set(table["sweep"]) == {sweep}


def test_decode_table_beside_llama_bench_and_the_roofline(completed_run: dict) -> None:
    results = completed_run["work"] / "results"
    decode = pd.read_csv(results / "decode.csv")
    assert {tuple(r) for r in decode[["engine", "quant"]].to_numpy()} == {
        (e, q) for e, _, q, _ in DECODE_RUNS
    }
    assert (decode["decode (tok/s)"] > 0).all() and decode["requests"].eq(4).all()
    llama = decode[decode["engine"] == "llamacpp"]
    assert (llama["llama-bench tg (tok/s)"] > 0).all()  # the workflow's own build and GGUF
    assert (llama["engine's own (tok/s)"] > 0).all()
    assert decode["bandwidth source"].str.startswith("measured: numpy copy").all()
    # a rate over its bound (a bandwidth measured low, tiny weights served from the cache) is
    # flagged, never shown as a share over 100% unmarked
    over = (decode["decode (tok/s)"] > decode["bound (tok/s)"]) | (
        decode["llama-bench tg (tok/s)"].fillna(0) > decode["bound (tok/s)"]
    )
    assert (decode["roofline check"] != "ok").eq(over).all()
    assert "before the sweeps" in decode["bandwidth source"].iloc[0]
    assert (decode["decode / bound (%)"] > 0).all()
    bench = json.loads((results / "llamacpp/tiny-llama/Q4_K_M/llama-bench.json").read_text())
    assert {r["n_depth"] for r in bench["rows"]} == {0, bench["depth"]} and bench["depth"] > 0
    # each llama.cpp instance is benchmarked with its own build
    other = json.loads((results / "llamacpp-b/tiny-llama/Q4_K_M/llama-bench.json").read_text())
    assert "/llamacpp-b/" in other["argv"][0] and "/llamacpp/" in bench["argv"][0]


def test_fidelity_beside_speed(completed_run: dict) -> None:
    """Issue 22's bar: every engine x quant of the default run against the reference, the
    unquantized ones near it, the 4-bit ones measurably further, speed in the same row."""
    results = completed_run["work"] / "results"
    fid = pd.read_csv(results / "fidelity.csv")
    rows = {(r["engine"], r["quant"]): r for r in fid.to_dict("records")}
    assert set(rows) == {(e, q) for e, _, q, _ in LOAD_RUNS}
    assert fid["failed"].eq(0).all() and fid["prompts"].eq(8).all()
    # peak output: of steady-state load points only; blank for an engine that had none (MLC-LLM
    # on a slow day of 2 cores: every rate over capacity, its 4-request closed loops too short)
    tidy = read_results(results / "results.parquet")
    load = tidy[(tidy["sweep"] != "decode") & tidy["validity"].map(valid)]
    steady = set(zip(load["engine"], load["quant"], strict=True))
    for key, row in rows.items():
        peak = row["peak output (tok/s)"]
        assert peak > 0 if key in steady else pd.isna(peak), (key, peak)
    # vLLM's decode point is its second instance's (vllm-seed, no fidelity): blank, not 0
    decoded = fid["engine"] != "vllm"
    assert (fid[decoded]["decode (tok/s)"] > 0).all() and fid[~decoded][
        "decode (tok/s)"
    ].isna().all()
    kl, agree = "KL mean (nats)", "top-1 agreement"
    # vLLM on CPU in float32 computes what transformers computes
    assert rows["vllm", "hf"][agree] == 1.0 and rows["vllm", "hf"][kl] < 1e-9
    # transformers serve is the reference library: its greedy text is the reference's
    assert rows["transformers", "hf"]["full matches"] == 1.0
    for engine, full, four_bit in (("llamacpp", "f16", "Q4_K_M"), ("mlc", "q0f32", "q4f32_1")):
        near, far = rows[engine, full], rows[engine, four_bit]
        assert near[agree] > 0.8 and near[kl] < 1e-4, near
        assert far[kl] > 2 * near[kl] and far[agree] < near[agree], (near, far)
    decode = pd.read_csv(results / "decode.csv")
    assert decode[decode["engine"] == "vllm-seed"][agree].isna().all()  # no fidelity asked
    assert decode[decode["engine"] == "llamacpp"][agree].notna().all()
    assert (results / "plots/fidelity.png").stat().st_size > 0
    # llama.cpp's own full-vocabulary KL against its f16 beside it: on a near-uniform model far
    # above the API figure's top-k lower bound (measured: 2.2e-3 against 3.2e-5 nats)
    q4 = rows["llamacpp", "Q4_K_M"]
    assert q4["llama-perplexity KL vs f16 (nats)"] > q4[kl]
    assert 0 < q4["llama-perplexity same top vs f16 (%)"] < 100


def test_output_lengths_exact_and_no_failures(completed_run: dict) -> None:
    """Every request completes with the output length asked for, but on a point stopped early
    as over-saturated (an open-loop point over the server's capacity: MLC-LLM's on a slow day
    of 2 CPU cores), where the rest are counted cancelled, never failed."""
    work, cfg = completed_run["work"], completed_run["cfg"]
    summaries = _summaries(work, decode=True)
    # a rate above one stopped early (over-saturated) is skipped: no summary, its reason kept
    skipped = [
        p for s in (work / "results").glob("*/*/*/*/server.json")
        for p in json.loads(s.read_text()).get("points", []) if p.get("skipped")
    ]  # fmt: skip
    assert len(summaries) + len(skipped) == 6 * 6 + 7
    for summary in summaries:
        data = json.loads(summary.read_text())
        n = cfg["sweeps"][summary.parts[-3]][
            "num_prompts" if summary.stem.startswith("rate") else "concurrency_num_prompts"
        ]
        done = data["completed"]
        if data["early_stopped"]:
            assert summary.stem.startswith("rate"), summary
            assert data["validity"][:2] == ["saturated", "early_stopped"], summary
            assert done + data["cancelled"] == n and data["cancelled"] > 0, summary
        else:
            assert done == n and data["cancelled"] == 0, summary
        assert data["failed"] == 0, summary
        assert data["total_output_tokens"] == done * OUTPUT_LEN, summary
        records = [json.loads(x) for x in summary.with_suffix(".jsonl").read_text().splitlines()]
        assert [r["output_len"] for r in records] == [OUTPUT_LEN] * done, summary


def test_no_request_hits_a_cache_it_did_not_ask_for(completed_run: dict) -> None:
    """The engine's own counter, on every request of every point (the warm-up ran before
    them): llama.cpp's timings.cache_n and vLLM's prompt_tokens_details.cached_tokens report no
    cached prompt token beyond the BOS every prompt starts with (llama-server counts it, vLLM
    caches whole blocks only), because each point is sent rows no earlier request sent;
    MLC's usage.extra counts the prompt tokens it prefilled (the rest came from its cache);
    transformers serve reports no such count (blank, never 0)."""
    accounts = {"llamacpp": "llama.cpp timings", "vllm": "usage.prompt_tokens_details",
                "mlc": "mlc usage.extra"}  # fmt: skip
    for summary in _summaries(completed_run["work"]):
        engine = summary.parts[-6]
        data = json.loads(summary.read_text())
        records = [json.loads(x) for x in summary.with_suffix(".jsonl").read_text().splitlines()]
        if not records:  # stopped early before any request completed: nothing to account
            assert data["early_stopped"] and data["engine_account"] is None, summary
            continue
        if engine not in accounts:
            assert data["engine_account"] is None and data["engine_cached_prompt_tokens"] is None
            continue
        assert data["engine_account"] == [accounts[engine]], summary
        assert all(r["engine_cached_tokens"] <= r["shared_prefix_len"] == 1 for r in records)
        assert data["requests_with_unrequested_cache_hits"] == 0, summary
        # the server's count: MLC's completions add no BOS, so it prefills the other 127
        bos = 0 if engine == "mlc" else 1
        assert data["total_input_tokens"] == (127 + bos) * len(records), summary
    offsets = {
        json.loads(s.read_text())["prompt_offset"]
        for s in _summaries(completed_run["work"])
        if s.parts[-6] == "llamacpp" and s.parts[-4] == "f16"
    }
    assert len(offsets) == 6 and min(offsets) == 2  # after the 2 warm-up rows, one per point
    # the decode sweep sends one fixed prompt again and again: it asks for the cache (its
    # whole prompt is its shared prefix), so no hit is unrequested
    for summary in _summaries(completed_run["work"], "conc-1.json", decode=True):
        if summary.parts[-3] == "decode":
            data = json.loads(summary.read_text())
            assert data["requests_with_unrequested_cache_hits"] in (0, None), summary
            assert data["shared_prefix_len"] > 1, summary


def test_provenance_in_every_result(completed_run: dict) -> None:
    work = completed_run["work"]
    manifest = json.loads((work / "results" / "manifest.json").read_text())
    assert manifest
    for summary in _summaries(work, "rate-*.json"):
        meta = json.loads(summary.read_text())["metadata"]
        for key in ("engine", "quant", "sweep", "model", "model_sha", "workload", "software_id"):
            assert meta.get(key), (summary, key)
        assert meta["sweep"] == summary.parts[-3]


def _report_text(path: Path) -> str:
    """The report with its embedded (base64) files decoded, so their text can be searched."""
    html = path.read_text()
    decoded = [html]
    for blob in re.findall(r"base64,([A-Za-z0-9+/=]{40,})", html):
        try:
            decoded.append(base64.b64decode(blob).decode("utf-8", "ignore"))
        except ValueError:
            continue
    return "\n".join(decoded)


def test_report_holds_every_engine_table(completed_run: dict) -> None:
    text = _report_text(completed_run["work"] / "results" / "report.html")
    titles = set(re.findall(r"<title>([^<]*)</title>", text))
    runs = [("llamacpp", "f16", "default"), ("llamacpp", "Q4_K_M", "default"),
            ("vllm", "hf", "vllm"), ("transformers", "hf", "default")]  # fmt: skip
    for engine, quant, sweep in runs:
        assert f"{engine} · tiny-llama · {quant} · {sweep}" in titles  # an embedded table
    assert "Cross-engine comparison" in titles and "Provenance" in titles
    assert "P99 TTFT (ms)" in text and "P99 TPOT (ms)" in text


def test_tidy_table_holds_every_point_judged(completed_run: dict) -> None:
    results = completed_run["work"] / "results"
    tidy = read_results(results / "results.parquet")
    pd.testing.assert_frame_equal(tidy, read_results(results / "results.csv"))
    # one row per engine x quant x sweep x point, every one measured and judged, or skipped
    # above a lower rate of its run that stopped early, over-saturated (MLC-LLM on 2 cores)
    assert len(tidy) == len(tidy.drop_duplicates(["engine", "quant", "sweep", "point"]))
    assert set(tidy["status"]) <= {"ok", "skipped"} and tidy["validity"].notna().all()
    for _, row in tidy[tidy["status"] == "skipped"].iterrows():
        assert row["validity"] == "skipped_past_saturation" and row["mode"] == "rate"
        run = tidy[(tidy["engine"] == row["engine"]) & (tidy["quant"] == row["quant"])
                   & (tidy["sweep"] == row["sweep"]) & (tidy["mode"] == "rate")]  # fmt: skip
        below = run[run["load"] < row["load"]]
        assert below["validity"].str.contains("early_stopped").any(), row["point"]
    assert {"llamacpp", "vllm", "transformers"} <= set(tidy["engine"])
    assert (results / "plots" / "tiny-llama-pareto.svg").stat().st_size > 0


def test_no_server_left_behind(completed_run: dict) -> None:
    assert our_processes(completed_run["work"]) == []


# ---- what a change reruns (issue: rebuild only what changed) ------------------------------
def _plan(run: dict, mutate) -> dict[str, int]:
    cfg = copy.deepcopy(run["cfg"])
    mutate(cfg)
    work = run["work"]
    return dict(planned_jobs(work, write_config(work / "changed.yaml", cfg)))


def test_nothing_changed_nothing_runs(completed_run: dict) -> None:
    assert _plan(completed_run, lambda c: None) == {}


def test_server_arg_reruns_only_that_engine(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["engines"]["vllm"]["server_args"] = [*c["engines"]["vllm"]["server_args"], "--seed", "1"]

    assert _plan(completed_run, mutate) == {
        "serve_sweep": 1,  # its own sweep; vllm-seed, another instance, stays as it is
        "engine_table": 1,
        "fidelity_collect": 1,  # its fidelity's server is started as its sweep's
        "fidelity_score": 1,
        **AGGREGATES_DECODE,
    }


def test_one_instances_flag_reruns_only_that_instance(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["engines"]["vllm-seed"]["server_args"] = [
            *c["engines"]["vllm-seed"]["server_args"][:-1], "2"
        ]  # fmt: skip

    assert _plan(completed_run, mutate) == {
        "serve_sweep": 1, "engine_table": 1, **AGGREGATES_DECODE,
    }  # fmt: skip


def test_instances_run_side_by_side_labelled_with_what_differs(completed_run: dict) -> None:
    results = completed_run["work"] / "results"
    tidy = pd.read_csv(results / "results.csv")
    seed = tidy[tidy["engine"] == "vllm-seed"]
    assert len(seed) == 1 and set(seed["kind"]) == {"vllm"} and set(seed["status"]) == {"ok"}
    assert '"--seed"' in str(seed["server_argv"].iloc[0])
    page = (results / "comparison.html").read_text()
    assert "Instances of one engine" in page and "server_args=" in page
    # llama.cpp at two commits: two builds, each row saying which commit it ran
    commits = tidy[tidy["kind"] == "llamacpp"].groupby("engine")["engine_commit"].unique()
    assert len(commits["llamacpp-b"]) == 1 and commits["llamacpp-b"][0] != commits["llamacpp"][0]
    assert completed_run["cfg"]["engines"]["llamacpp-b"]["commit"] == commits["llamacpp-b"][0]
    assert "commit=" in page
    assert {"llamacpp", "llamacpp-b", "vllm", "vllm-seed"} <= set(tidy["engine"])


def test_one_llama_commit_reruns_only_that_instance(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["engines"]["llamacpp-b"]["commit"] = "c" * 40

    # its checkout, its build, its serve job and llama-bench; the GGUFs (made with the
    # instance named llamacpp) and every other instance stay as they are
    assert _plan(completed_run, mutate) == {
        "llamacpp_source": 1, "build_llamacpp": 1, "serve_sweep": 1, "engine_table": 1,
        "llama_bench": 1, **AGGREGATES_DECODE,
    }  # fmt: skip


def test_llamacpp_version_reruns_llamacpp_only(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["engines"]["llamacpp"].update(version="0.3.35", sha256="0" * 64)

    assert _plan(completed_run, mutate) == {
        "llamacpp_source": 1,
        "build_llamacpp": 1,
        "convert_gguf": 1,
        "quantize_gguf": 1,
        # f16 and Q4_K_M, load and decode; and llamacpp-b's decode: the GGUFs it serves are
        # converted with this instance
        "serve_sweep": 5,
        "engine_table": 5,
        "llama_bench": 3,
        "fidelity_collect": 2,
        "fidelity_score": 2,
        "llama_tool": 1,  # llama-perplexity from the new build, and its KL of Q4_K_M
        "llama_kld": 1,
        **AGGREGATES_DECODE,
    }


def test_rate_added_to_one_engines_sweep_reruns_that_sweep_only(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["sweeps"]["vllm"]["request_rates"] = [*c["sweeps"]["vllm"]["request_rates"], 3]

    # one more point needs 8 more fresh prompt rows: a bigger prompt file for that sweep alone
    assert _plan(completed_run, mutate) == {
        "materialize_prompts": 1, "serve_sweep": 1, "engine_table": 1, **AGGREGATES_DECODE,
    }  # fmt: skip


def test_rate_added_to_the_shared_sweep_reruns_its_benchmarks(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["sweeps"]["default"]["request_rates"] = [*c["sweeps"]["default"]["request_rates"], 3]

    # llama.cpp f16 and Q4_K_M, transformers, MLC q0f32 and q4f32_1: not vLLM (its own sweep,
    # its own prompt file), no build, no model preparation; one bigger prompt file (the new
    # point's fresh rows)
    assert _plan(completed_run, mutate) == {
        "materialize_prompts": 1, "serve_sweep": 5, "engine_table": 5, **AGGREGATES_DECODE,
    }  # fmt: skip


def test_mlc_source_change_reruns_only_mlc(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        # another source archive (its pins name it: a dry run reads no archive, so the same
        # file under another sha256 stands in for it), unpacked and built in folders of its own
        c["engines"]["mlc"] |= {"archive": "envs/sources/mlc-llm-79d603f0-src.tar.xz",
                                "sha256": "e" * 64, "commit": "d" * 40}  # fmt: skip

    # its unpacked source, its build, the three preparation steps of both quants, its four
    # sweeps; nothing of any other engine
    assert _plan(completed_run, mutate) == {
        "mlc_source": 1, "build_mlc": 1, "prepare_model": 6, "serve_sweep": 4,
        "engine_table": 4, "fidelity_collect": 2, "fidelity_score": 2, **AGGREGATES_DECODE,
    }  # fmt: skip


def test_sweep_added_runs_only_the_new_points(completed_run: dict) -> None:
    def mutate(c: dict) -> None:
        c["sweeps"]["more"] = {"request_rates": [3], "concurrency": [], "num_prompts": 12}
        c["benchmarks"][0]["sweeps"] = ["default", "more"]  # llama.cpp f16 and Q4_K_M

    # 12 prompts: a new prompt file; the finished default sweeps stay as they are
    assert _plan(completed_run, mutate) == {
        "materialize_prompts": 1, "serve_sweep": 2, "engine_table": 2, **AGGREGATES_DECODE,
    }  # fmt: skip
