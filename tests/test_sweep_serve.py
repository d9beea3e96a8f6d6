"""serve-sweep: point names and commands (exact), then whole sweeps against the fake server."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import pytest

from enginebench import sweep
from enginebench.bench_command import bench_argv
from enginebench.engines.registry import get_engine
from enginebench.engines.spec import EngineSpec, ServerContext, always
from enginebench.points import SweepPoint, parse_spec, points_from_config, prompt_rows
from enginebench.runspec import RunSpec, from_args, sweep_bench_args
from tests.test_loadgen_support import save_random_prompts


@pytest.mark.parametrize(
    ("spec", "name"),
    [("rate=1,num_prompts=8", "rate-1"), ("rate=2.5,num_prompts=8", "rate-2.5"),
     ("rate=inf,num_prompts=8", "rate-inf"), ("conc=4,num_prompts=8", "conc-4"),
     ("rate=0.5,num_prompts=8", "rate-0.5")],
)  # fmt: skip
def test_point_names(spec: str, name: str) -> None:
    assert parse_spec(spec).name == name


def test_parse_point_defaults_and_errors() -> None:
    p = parse_spec("rate=2,burstiness=0.5", {"num_prompts": 32})
    assert p == SweepPoint("rate", 2.0, 32, 0.5)
    assert parse_spec("conc=4,num_prompts=8,duration=30").duration == 30.0
    bad_specs = ["rate=1", "rate=0,num_prompts=1", "conc=1.5,num_prompts=1", "rate",
                 "conc=inf,num_prompts=1", "rate=1,conc=2,num_prompts=1",
                 "rate=1,num_prompts=1,x=2"]  # fmt: skip
    for bad in bad_specs:
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_points_from_config_keep_order() -> None:
    cfg = {"request_rates": [1, 2, 5, "inf"], "burstiness": 1.0, "num_prompts": 64,
           "concurrency": [1, 4], "concurrency_num_prompts": 16}  # fmt: skip
    pts = points_from_config(cfg)
    assert [p.name for p in pts] == ["rate-1", "rate-2", "rate-5", "rate-inf", "conc-1", "conc-4"]
    assert pts[0].num_prompts == 64 and pts[-1].num_prompts == 16 and math.isinf(pts[3].load)


def _cfg(tmp_path: Path, **kw: object) -> RunSpec:
    base: dict[str, object] = {
        "engine": "vllm", "model": "/m/hf", "out_dir": str(tmp_path / "out"),
        "prompts_file": "/d/p.jsonl", "points": [], "quant": "hf", "tokenizer": "/m/hf",
    }  # fmt: skip
    base.update(kw)
    return RunSpec(**base)  # type: ignore[arg-type]


def test_bench_argv_rate_point_exact(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, metadata={"model": "tiny", "git": {"sha": "abc"}})
    pt = SweepPoint("rate", 2.5, 64, 1.0, max_concurrency=8)
    out = str(tmp_path / "out")
    assert bench_argv(cfg, "http://127.0.0.1:9", "tiny", "min_tokens", True, pt) == [
        sys.executable, "-m", "enginebench", "bench", "--base-url", "http://127.0.0.1:9",
        "--endpoint", "/v1/completions", "--model", "tiny", "--prompts-file", "/d/p.jsonl",
        "--seed", "0", "--disable-tqdm", "--tokenizer", "/m/hf",
        "--ignore-eos", "--ignore-eos-style", "min_tokens",
        "--num-prompts", "64", "--request-rate", "2.5", "--burstiness", "1",
        "--max-concurrency", "8", "--save-result", "--result-dir", out,
        "--result-filename", "rate-2.5.json", "--point", "rate-2.5",
        "--metadata", "engine=vllm", "quant=hf", "model=tiny", 'git={"sha": "abc"}',
    ]  # fmt: skip
    prov = bench_argv(cfg, "http://h", "m", "none", True, pt, provenance_file="/t/p.json")
    assert prov[prov.index("--provenance-file") + 1] == "/t/p.json"


def test_bench_argv_closed_loop_and_dialects(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, api_key_env="MY_KEY", tokenizer=None)
    pt = SweepPoint("concurrency", 4.0, 16, duration=30.0)
    argv = bench_argv(cfg, "http://h", "m", "none", False, pt)
    assert "--ignore-eos" not in argv and "--no-model-check" in argv
    assert argv[argv.index("--concurrency") + 1] == "4"
    assert argv[argv.index("--duration") + 1] == "30"
    assert argv[argv.index("--api-key-env") + 1] == "MY_KEY" and "--request-rate" not in argv
    mlc = bench_argv(cfg, "http://h", "m", "debug_config", True, pt)
    assert json.loads(mlc[mlc.index("--extra-body") + 1]) == {"debug_config": {"ignore_eos": True}}
    warm = bench_argv(cfg, "http://h", "m", "ignore_eos", True, None, warmup_n=6)
    assert warm[-4:] == ["--num-prompts", "6", "--concurrency", "4"] and "--save-result" not in warm
    fresh = bench_argv(cfg, "http://h", "m", "ignore_eos", True, pt, first_row=7)
    assert fresh[fresh.index("--prompt-offset") + 1] == "7" and "--prompt-offset" not in argv


def test_sweep_bench_args() -> None:
    assert sweep_bench_args({"request_rates": [1]}) == ()
    got = sweep_bench_args({"min_duration": 10, "slo": {"tpot_ms": 50, "ttft_ms": 500.5}})
    assert got == ("--min-duration", "10", "--goodput", "ttft:500.5", "tpot:50")


def test_runspec_from_args(tmp_path: Path) -> None:
    args = ["--engine", "llamacpp", "--model", "/m/q.gguf", "--out-dir", str(tmp_path),
            "--prompts-file", "/p.jsonl", "--server-arg=-np", "--server-arg", "8",
            "--option", "parallel=8", "--option", "backend=cpu", "--env", "A=1",
            "--point", "rate=1", "--point", "conc=2,num_prompts=4", "--num-prompts", "10",
            "--metadata", "k=v", "--warmups", "2"]  # fmt: skip
    cfg = from_args(args)
    assert cfg.server_args == ("-np", "8") and cfg.options == {"parallel": 8, "backend": "cpu"}
    assert [(p.name, p.num_prompts) for p in cfg.points] == [("rate-1", 10), ("conc-2", 4)]
    assert cfg.env == {"A": "1"} and cfg.metadata == {"k": "v"} and cfg.warmups == 2
    # a JSON config round-trips, flags override it
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg.as_param()))
    again = from_args(["--config", str(f), "--warmups", "0"])
    assert dataclasses.replace(again, warmups=2) == cfg
    # an instance name apart from its engine: `--kind` (default: the name itself)
    assert cfg.kind == cfg.engine == "llamacpp"
    named = from_args([*args, "--engine", "llamacpp-b", "--kind", "llamacpp"])
    assert (named.engine, named.kind) == ("llamacpp-b", "llamacpp")
    with pytest.raises(SystemExit):
        from_args(["--engine", "vllm"])


def test_main_rejects_unknown_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = sweep.main(["--engine", "nope", "--model", "m", "--out-dir", str(tmp_path),
                     "--prompts-file", "p", "--point", "rate=1,num_prompts=1"])  # fmt: skip
    assert rc == 2 and "known engines" in capsys.readouterr().err


# --- whole sweeps against enginebench's fake server (a test fixture, never an engine) -------
def _fake_engine(
    tmp_path: Path, die_when: Path | None = None, extra: tuple[str, ...] = ()
) -> EngineSpec:
    def argv(ctx: ServerContext) -> list[str]:
        cmd = [sys.executable, "-m", "tests.fixtures.fakeserver", "--port", str(ctx.port),
               "--model", ctx.served_name, "--tokens", "4", *extra]  # fmt: skip
        if die_when is None:
            return cmd
        # a server that crashes mid-sweep, once `die_when` exists
        code = (
            f"import os, subprocess, sys, time; p = subprocess.Popen({cmd!r})\n"
            f"while not os.path.exists({str(die_when)!r}): time.sleep(0.05)\n"
            "p.kill(); sys.exit(9)"
        )
        return [sys.executable, "-c", code]

    return dataclasses.replace(
        get_engine("vllm"), name="fake", server_argv=argv, gpu=always(False),
        version_argv=lambda ctx: [sys.executable, "-c", "print('fake 1.0')"],
        env=lambda ctx: {"FAKE_ENGINE_VAR": "1"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "p.jsonl"
    return save_random_prompts(path, tiny_model_dir, 48, 16, 8)


def _run(monkeypatch: pytest.MonkeyPatch, spec: EngineSpec, cfg: RunSpec) -> int:
    monkeypatch.setattr(sweep, "get_engine", lambda name: spec)
    monkeypatch.setenv("MY_SECRET", "s3cret")
    return sweep.run_sweep(cfg)


def test_sweep_runs_points_in_order_and_records_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    pts = [
        SweepPoint("rate", math.inf, 4),
        SweepPoint("rate", 50.0, 4),
        SweepPoint("concurrency", 2.0, 4),
    ]
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts, warmups=2,
               secret_env=["MY_SECRET"], env={"X": "y"}, metadata={"run": "t1"})  # fmt: skip
    assert _run(monkeypatch, _fake_engine(tmp_path), cfg) == 0
    out = Path(cfg.out_dir)
    for name in ("rate-inf", "rate-50", "conc-2"):
        summary = json.loads((out / f"{name}.json").read_text())
        assert summary["completed"] == 4 and summary["point"]["name"] == name
        assert summary["metadata"]["run"] == "t1"
        assert (out / f"{name}.jsonl").is_file()
    server = json.loads((out / "server.json").read_text())
    assert [p["name"] for p in server["points"]] == ["rate-inf", "rate-50", "conc-2"]
    # each point's early stop reads the server's pace from the points before it
    refs = [
        [
            a
            for flag, a in zip(p["argv"], p["argv"][1:], strict=False)
            if flag == "--reference-records"
        ]
        for p in server["points"]
    ]
    # and from the warm-up's records: its first request alone (the server's pace unloaded),
    # then the rest at once
    warm = refs[0]
    assert [Path(w).name for w in warm] == ["warmup-0.jsonl", "warmup-1.jsonl"]
    assert refs == [
        warm,
        [*warm, str(out / "rate-inf.jsonl")],
        [*warm, *(str(out / f"{n}.jsonl") for n in ("rate-inf", "rate-50"))],
    ]
    alone, rest = server["warmup"]
    a = alone["argv"]
    assert a[a.index("--num-prompts") + 1] == a[a.index("--concurrency") + 1] == "1"
    assert "--prompt-offset" not in a
    assert rest["argv"][rest["argv"].index("--prompt-offset") + 1] == "1"
    assert server["argv"][1:3] == ["-m", "tests.fixtures.fakeserver"]
    assert server["env"] == {"FAKE_ENGINE_VAR": "1", "X": "y"}
    assert server["version"]["version"] == "fake 1.0"
    assert server["server"]["startup_s"] > 0 and server["server"]["stopped_at"]
    assert [w["returncode"] for w in server["warmup"]] == [0, 0]
    assert server["secret_env_passed"] == ["MY_SECRET"]
    assert "s3cret" not in (out / "server.json").read_text()
    # the idle server's probe time, the yardstick of the wait after a cancelled point
    assert 0 < server["idle_probe_s"] < 5
    assert not any("settle_s" in p for p in server["points"])  # nothing was cancelled


def test_every_summary_carries_the_runs_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    pts = [SweepPoint("rate", math.inf, 4), SweepPoint("concurrency", 2.0, 4)]
    cfg = _cfg(tmp_path, engine="fake", model=str(weights), prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts, sweep="nightly", quant="q8",
               secret_env=["MY_SECRET"], env={"X": "y", "HF_TOKEN": "hf_s3cret"})  # fmt: skip
    assert _run(monkeypatch, _fake_engine(tmp_path), cfg) == 0
    out = Path(cfg.out_dir)
    server = json.loads((out / "server.json").read_text())
    assert server["model_file_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert server["sweep"] == "nightly" and server["packages"] is None  # no venv python here
    times = []
    for name in ("rate-inf", "conc-2"):
        text = (out / f"{name}.json").read_text()
        prov = json.loads(text)["provenance"]
        assert "s3cret" not in text  # an engine variable with a secret-looking name
        assert prov["env"]["HF_TOKEN"] == "<redacted>" and prov["env"]["X"] == "y"
        for key in ("engine_version", "server_argv", "model_file_sha256", "quant", "sweep",
                    "enginebench_version", "snakemake_version", "env"):  # fmt: skip
            assert prov[key] == server[key], key
        assert prov["host"]["cpu"] == server["host"]["cpu"] and "packages" not in prov
        assert server["started"] <= prov["started"] <= prov["finished"] <= server["finished"]
        times.append((prov["started"], prov["finished"]))
    assert times[0][1] <= times[1][0]  # each point's own times, in the order they ran
    assert "s3cret" not in (out / "server.json").read_text()


def test_set_aside_keeps_everything_and_leaves_no_output(tmp_path: Path) -> None:
    points, server = tmp_path / "points", tmp_path / "server.json"
    points.mkdir()
    (points / "rate-1.json").write_text("{}")
    server.write_text("{}")
    kept = sweep.set_aside([points, server], tmp_path / "failed")
    assert not points.exists() and not server.exists()
    assert (kept / "points" / "rate-1.json").is_file() and (kept / "server.json").is_file()
    again = sweep.set_aside([points, server], tmp_path / "failed")  # nothing left: an empty one
    assert again != kept and list(again.iterdir()) == []


def test_failed_point_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    pts = [
        SweepPoint("rate", math.inf, 4),
        SweepPoint("rate", 10.0, 4),
        SweepPoint("concurrency", 2.0, 4),
    ]
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts)  # fmt: skip
    real = sweep.bench_argv

    def second_fails(*a, **kw):  # type: ignore[no-untyped-def]
        point = a[5] if len(a) > 5 else kw.get("point")
        if point is not None and point.name == "rate-10":
            return [sys.executable, "-c", "raise SystemExit(1)"]
        return real(*a, **kw)

    monkeypatch.setattr(sweep, "bench_argv", second_fails)
    assert _run(monkeypatch, _fake_engine(tmp_path), cfg) == 1
    out = Path(cfg.out_dir)
    assert (out / "rate-inf.json").is_file() and (out / "conc-2.json").is_file()
    assert not (out / "rate-10.json").exists()
    rcs = [p["returncode"] for p in json.loads((out / "server.json").read_text())["points"]]
    assert rcs[0] == 0 and rcs[1] != 0 and rcs[2] == 0


def test_server_that_dies_fails_the_remaining_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    pts = [SweepPoint("rate", math.inf, 4), SweepPoint("concurrency", 1.0, 4)]
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts,
               bench_args=["--timeout", "5"])  # fmt: skip
    trigger = tmp_path / "die"
    spec = _fake_engine(tmp_path, die_when=trigger)
    monkeypatch.setattr(sweep, "bench_argv", _crash_during_first(sweep.bench_argv, trigger))
    assert _run(monkeypatch, spec, cfg) == 1
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert server["points"][-1]["error"].startswith("server exited")


def test_server_that_dies_mid_point_ends_it_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    """A 20 s schedule (40 requests at 2 req/s); the server dies 8 s into the point (past the
    load generator's start-up): the point stops within seconds instead of sending the rest to a
    dead port, keeps what completed, and fails."""
    import threading

    pts = [SweepPoint("rate", 2.0, 40), SweepPoint("concurrency", 1.0, 2)]
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts)  # fmt: skip
    trigger = tmp_path / "die"
    real = sweep.run_point

    def kill_server_into_the_point(argv, server):  # type: ignore[no-untyped-def]
        if "rate-2.json" in argv:
            threading.Timer(8.0, trigger.touch).start()
        return real(argv, server)

    monkeypatch.setattr(sweep, "run_point", kill_server_into_the_point)
    assert _run(monkeypatch, _fake_engine(tmp_path, die_when=trigger), cfg) == 1
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    first, second = server["points"]
    assert first["error"].startswith("server exited") and first["seconds"] < 14
    assert second["error"].startswith("server exited") and second["returncode"] is None
    summary = json.loads((Path(cfg.out_dir) / "rate-2.json").read_text())
    assert summary["interrupted"] and 1 <= summary["completed"] < 40
    assert summary["provenance"]["finished"]


def test_a_stalled_server_ends_the_sweep_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    """A server that stops streaming from its 6th request on (a wedged scheduler; the first is
    the sweep's idle probe, the next 4 are measured): the point
    stops ~2 s after the last byte, its completed requests kept, the sweep ends with one line
    naming the point and the log, the next point is not run, and the server is stopped."""
    pts = [SweepPoint("rate", 20.0, 12), SweepPoint("concurrency", 1.0, 2)]
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts,
               bench_args=("--stall-timeout", "2"))  # fmt: skip
    spec = _fake_engine(tmp_path, extra=("--stall-after", "1", "--stall-from", "5"))
    t0 = time.monotonic()
    assert _run(monkeypatch, spec, cfg) == 1
    assert time.monotonic() - t0 < 60
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert [p["name"] for p in server["points"]] == ["rate-20"]  # conc-1 never ran
    assert (
        server["error"].startswith("rate-20: the server stopped sending")
        and "read " in (server["error"])
    )
    summary = json.loads((Path(cfg.out_dir) / "rate-20.json").read_text())
    assert summary["stalled"] and summary["completed"] == 4
    assert server["server"]["returncode"] is not None  # stopped, nothing left running


def _crash_during_first(real, trigger: Path):  # type: ignore[no-untyped-def]
    """The first point makes the server crash, and waits until it is gone."""
    calls = {"n": 0}

    def wrapped(*a, **kw):  # type: ignore[no-untyped-def]
        argv = real(*a, **kw)
        calls["n"] += 1
        if calls["n"] == 1:
            return [
                sys.executable,
                "-c",
                f"open({str(trigger)!r}, 'w'); import time; time.sleep(1.5)",
            ]
        return argv

    return wrapped


def test_server_that_never_starts_writes_server_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path
) -> None:
    spec = dataclasses.replace(
        _fake_engine(tmp_path),
        server_argv=lambda ctx: [sys.executable, "-c", "print('no model'); raise SystemExit(4)"],
    )
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               points=[SweepPoint("rate", 1.0, 1)])  # fmt: skip
    assert _run(monkeypatch, spec, cfg) == 1
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert "exited with code 4" in server["error"] and "no model" in server["error"]
    assert server["points"] == []


def test_external_endpoint(tmp_path: Path, prompts_file: Path, tiny_model_dir: Path) -> None:
    from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

    with serve_in_thread(FakeServerConfig(model="remote", tokens=4)) as srv:
        cfg = _cfg(tmp_path, engine="openai", model="remote", base_url=srv.base_url + "/v1",
                   prompts_file=str(prompts_file), tokenizer=str(tiny_model_dir),
                   points=[SweepPoint("concurrency", 1.0, 2)])  # fmt: skip
        assert sweep.run_sweep(cfg) == 0
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert server["argv"] is None and server["base_url"] == srv.base_url
    assert server["ignore_eos_style"] == "none"


def test_every_point_and_the_warmup_get_fresh_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    """No request repeats a prompt the server has seen: warm-up rows 0-2, then 4 per point."""
    pts = [
        SweepPoint("rate", math.inf, 4),
        SweepPoint("rate", 50.0, 4),
        SweepPoint("concurrency", 2.0, 4),
    ]
    assert prompt_rows(pts, 3) == ([3, 7, 11], 15)
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts, warmups=3)  # fmt: skip
    assert _run(monkeypatch, _fake_engine(tmp_path), cfg) == 0
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    offsets = []
    for argv in [*(w["argv"] for w in server["warmup"]), *(p["argv"] for p in server["points"])]:
        offsets.append(
            int(argv[argv.index("--prompt-offset") + 1]) if "--prompt-offset" in argv else 0
        )
    assert offsets == [0, 1, 3, 7, 11]  # the warm-up's first alone, then its other two
    for name in ("rate-inf", "rate-50", "conc-2"):
        assert json.loads((Path(cfg.out_dir) / f"{name}.json").read_text())["prompt_offset"] > 0
    # a prompt file too short for fresh rows stops the sweep before any server starts
    cfg = dataclasses.replace(cfg, out_dir=str(tmp_path / "short"), warmups=40)
    assert _run(monkeypatch, _fake_engine(tmp_path), cfg) == 1
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert "this sweep sends 52 distinct ones" in server["error"] and "server" not in server


def test_misconfigured_engine_fails_with_server_json(tmp_path: Path, prompts_file: Path) -> None:
    cfg = _cfg(tmp_path, python=None, points=[SweepPoint("rate", 1.0, 1)],
               prompts_file=str(prompts_file))  # vllm needs a venv  # fmt: skip
    assert sweep.run_sweep(cfg) == 1
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert "ServerContext.python is unset" in server["error"]
    assert server["sweep_started_at"] and server["sweep_finished_at"]


def test_a_failed_job_run_again_redoes_only_the_points_it_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts_file: Path, tiny_model_dir: Path
) -> None:
    """rate-50 fails (the sweep goes on to conc-2): the job fails and sets its points aside;
    run again, it keeps rate-inf and conc-2 (copied back, their records marked `resumed_from`)
    and runs rate-50 only; a job whose definition changed keeps nothing."""
    job = tmp_path / "job"
    pts = [SweepPoint("rate", math.inf, 4), SweepPoint("rate", 50.0, 4),
           SweepPoint("concurrency", 2.0, 4)]  # fmt: skip
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts, out_dir=str(job / "points"),
               server_json=str(job / "server.json"))  # fmt: skip
    source = tmp_path / "source.json"
    source.write_text('{"source": "synthetic", "sha256": "abc"}')
    monkeypatch.setattr(sweep, "get_engine", lambda name: _fake_engine(tmp_path))
    real, ran = sweep.run_point, []

    def run_point(argv, server, fail=""):  # type: ignore[no-untyped-def]
        name = argv[argv.index("--point") + 1]
        ran.append(name)
        return (1, None) if name == fail else real(argv, server)

    kw = {"outputs": [str(job / "points"), str(job / "server.json")], "attic": job / "failed",
          "job": "serve_sweep t", "logs": (str(tmp_path / "a.log"), str(tmp_path / "b.log")),
          "failed": "a sweep point failed"}  # fmt: skip
    monkeypatch.setattr(sweep, "run_point", lambda a, s: run_point(a, s, fail="rate-50"))
    with pytest.raises(SystemExit, match="a sweep point failed"):
        sweep.run_job(cfg.as_param(), None, str(source), **kw)  # type: ignore[arg-type]
    (attic,) = (job / "failed").iterdir()
    monkeypatch.setattr(sweep, "run_point", run_point)
    ran.clear()
    sweep.run_job(cfg.as_param(), None, str(source), **kw)  # type: ignore[arg-type]
    assert ran == ["rate-50"]
    server = json.loads((job / "server.json").read_text())
    assert server["resumed"] == ["conc-2", "rate-inf"]
    assert [p.get("resumed_from") for p in server["points"]] == [
        str(attic / "points"), None, str(attic / "points")
    ]  # fmt: skip
    kept = (job / "points" / "rate-inf.json").read_bytes()
    assert kept == (attic / "points" / "rate-inf.json").read_bytes()
    # another definition of the job (a bench flag): nothing of the failed run is its own
    changed = dataclasses.replace(cfg, bench_args=("--timeout", "60"))
    ran.clear()
    sweep.run_job(changed.as_param(), None, str(source), **kw)  # type: ignore[arg-type]
    assert ran == ["rate-inf", "rate-50", "conc-2"]


def test_rate_points_past_saturation_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    """A server that answers one request at a time (8 tokens x 25 ms: 5 req/s): rate-20 (a 10 s
    schedule) stops early, over-saturated; rate-80 is not run and shows as skipped in the
    tables, and the closed-loop point after it runs on its own prompt rows."""
    import pandas as pd

    from enginebench.report.load import LEFT_OUT, load_points
    from enginebench.report.tidy import normalize, read_results, write_results

    prompts = save_random_prompts(tmp_path / "p.jsonl", tiny_model_dir, 240, 16, 8)
    pts = [SweepPoint("rate", 20.0, 200), SweepPoint("rate", 80.0, 20),
           SweepPoint("concurrency", 1.0, 4)]  # fmt: skip
    extra = ("--max-running", "1", "--token-delay-ms", "25")
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts),
               tokenizer=str(tiny_model_dir), points=pts, warmups=2,
               skip_past_saturation=True)  # fmt: skip
    assert _run(monkeypatch, _fake_engine(tmp_path, extra=extra), cfg) == 0
    out = Path(cfg.out_dir)
    server = json.loads((out / "server.json").read_text())
    over, skipped, conc = server["points"]
    assert over["name"] == "rate-20" and over["settled"]  # it cancelled requests
    assert json.loads((out / "rate-20.json").read_text())["early_stopped"]
    assert skipped == {
        "name": "rate-80", "skipped": "past saturation: rate-20 stopped early, over-saturated"
    }  # fmt: skip
    assert not (out / "rate-80.json").exists() and conc["returncode"] == 0
    assert json.loads((out / "conc-1.json").read_text())["prompt_offset"] == 2 + 200 + 20
    rows = load_points([out / f"{p.name}.json" for p in pts], out / "server.json")
    assert list(rows["status"]) == ["ok", "skipped", "ok"]
    assert rows["validity"][1] == "skipped_past_saturation"
    # the summary keys kept out of the table stay out; CSV and Parquet read back the same
    assert not LEFT_OUT & set(rows.columns)
    frame = normalize(rows)
    write_results(frame, tmp_path / "t.csv", tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_results(tmp_path / "t.csv"), frame)
    pd.testing.assert_frame_equal(read_results(tmp_path / "t.parquet"), frame)
    # the sweep's flag is part of what defines its results (its serve job's parameter)
    assert cfg.as_param()["skip_past_saturation"] is True
    assert (
        "skip_past_saturation"
        not in dataclasses.replace(cfg, skip_past_saturation=False).as_param()
    )
