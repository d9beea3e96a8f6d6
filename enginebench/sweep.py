"""`enginebench serve-sweep`: own one engine server for a whole sweep.

Start the server (`ManagedServer`: own process group, free loopback port, readiness wait),
warm it up, run the sweep points in order, each as `enginebench bench` in a process of its own
(its own result files; forked from this one, see benchproc), then stop the server. A failed
point does not stop the others nor touch the files of completed ones; the exit status is 1 when
any point failed. `server.json` records the exact server argv, the variables that matter
(secrets redacted), the engine version, start/ready/stop times and each point's outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from enginebench import benchproc, settle
from enginebench.bench_command import bench_argv
from enginebench.engines.container import Container, Wrap, in_image, wrapper
from enginebench.engines.registry import get_engine
from enginebench.engines.server import (
    ManagedServer,
    ServerError,
    Terminated,
    free_port,
    install_signal_handlers,
    is_ready,
    log_tail,
    port_in_use,
    redact,
    server_env,
)
from enginebench.engines.spec import EngineConfigError, EngineSpec, ServerContext
from enginebench.jsonfile import WriteFailed, read_json, write_json
from enginebench.loadgen.datasets import load_materialized
from enginebench.loadgen.errors import (
    EXIT_FAILED_REQUESTS,
    EXIT_STALLED,
    EXIT_UNWRITABLE,
    BenchError,
)
from enginebench.loadgen.tokenizer import load_tokenizer
from enginebench.loadgen.traces import trace_window
from enginebench.models.files import weights_sha256
from enginebench.points import SweepPoint, rows_needed
from enginebench.proc import CommandError, run
from enginebench.provenance import now_iso, redact_argv, run_provenance
from enginebench.runspec import RunSpec, from_args
from enginebench.scriptio import logged
from enginebench.slo_search import meets, next_rate, outcome

VERSION_TIMEOUT_S = 180
# how often a running point checks that its server is still alive, and how long the load
# generator gets to write what completed once told to stop
WATCH_S = 0.5
STOP_GRACE_S = 30.0


class SweepConfigError(ValueError):
    """A sweep that cannot run as configured (found before any server starts)."""


def check_prompt_rows(cfg: RunSpec) -> None:
    """Raise SweepConfigError (one line) when the prompt file is too short for the sweep's fresh
    rows, or the trace it replays is unreadable or empty in its window, before a server is
    started."""
    if cfg.trace is not None:
        keys = ("format", "start_s", "duration_s", "block_len")
        try:
            trace_window(cfg.trace["path"], **{k: cfg.trace[k] for k in keys if k in cfg.trace})
        except BenchError as exc:
            raise SweepConfigError(str(exc)) from exc
        return
    fidelity = cfg.fidelity is not None
    needed = rows_needed(cfg.points, cfg.warmups, cfg.search)
    if cfg.fidelity is not None:
        needed = cfg.fidelity["num_prompts"]
    try:
        with open(cfg.prompts_file, encoding="utf-8") as f:
            have = sum(1 for line in f if line.strip())
    except OSError as exc:
        raise SweepConfigError(f"cannot read the prompts file: {exc}") from exc
    if have < needed and fidelity:
        raise SweepConfigError(
            f"{cfg.prompts_file} has {have} prompts; fidelity's collection sends {needed}; "
            f"fix: materialize {needed} (`enginebench bench --save-prompts ... --num-prompts "
            f"{needed}`)"
        )
    if have < needed:
        raise SweepConfigError(
            f"{cfg.prompts_file} has {have} prompts; this sweep sends {needed} distinct ones "
            f"({cfg.warmups} warm-ups + {' + '.join(str(p.num_prompts) for p in cfg.points)}"
            f"{' + search probes' if cfg.search else ''}); "
            f"fix: materialize {needed} (`enginebench bench --save-prompts ... --num-prompts "
            f"{needed}`)"
        )


def _log(msg: str) -> None:
    print(f"[serve-sweep {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def engine_version(
    spec: EngineSpec, ctx: ServerContext, env: Mapping[str, str], wrap: Wrap | None = None
) -> dict[str, Any]:
    """The engine's version as its version argv prints it (`wrap`: inside its container)."""
    if spec.version_argv is None:
        return {"argv": None, "version": None}
    argv = spec.version_argv(ctx)
    cleanup = None
    if wrap is not None:
        wrapped = wrap(argv, None)
        argv, env, cleanup = wrapped.argv, wrapped.env, wrapped.cleanup
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=dict(env), timeout=VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        if cleanup:  # a killed docker client leaves its container running
            with contextlib.suppress(CommandError):
                run(cleanup, env=env, timeout=VERSION_TIMEOUT_S)
        return {"argv": argv, "version": None, "error": str(exc)}
    text = (proc.stdout.strip() or proc.stderr.strip())[-2000:]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # llama-server prints "version: N (sha)" then "built with ..."; python engines one line
    tagged = [ln for ln in lines if "version" in ln.lower()]
    out: dict[str, Any] = {"argv": argv, "version": (tagged or lines or [""])[-1], "output": text}
    if proc.returncode != 0:
        out["error"] = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
    return out


def run_sweep(cfg: RunSpec, resumed: Mapping[str, dict[str, Any]] | None = None) -> int:
    """Serve, warm up, run every point in order, stop. 0 when every point succeeded.
    `resumed`: points already in `cfg.out_dir` from an earlier run of the same job (their
    record there, `resumable`), not run again."""
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers()
    spec = get_engine(cfg.kind)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"enginebench-{cfg.engine}-") as tmp:
        workdir = Path(cfg.workdir) if cfg.workdir else Path(tmp)
        return _run(cfg, spec, out, workdir, dict(resumed or {}))


def spec_sha256(cfg: RunSpec) -> str:
    """What defines a job's points (its resolved RunSpec): two runs with the same may share
    points."""
    text = json.dumps(cfg.as_param(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def resumable(cfg: RunSpec, attic: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The points the last failed or interrupted run of this same job (`spec_sha256`)
    completed, set aside in `attic` (`set_aside`), copied back into `cfg.out_dir`: {name: its
    record in that run's server.json, with `resumed_from`}. A point that failed, was cut short
    by a dying server, or was interrupted is run again."""
    runs = sorted(Path(attic).glob("*/server.json"))  # the folders are named by UTC time
    if not runs:
        return {}
    last = read_json(runs[-1])
    if last.get("spec_sha256") != spec_sha256(cfg):
        return {}
    names = {p.name for p in cfg.points}
    folder = runs[-1].parent / Path(cfg.out_dir).name
    out, reused = Path(cfg.out_dir), {}
    for entry in last.get("points", []):
        name = entry.get("name")
        files = [folder / f"{name}.json", folder / f"{name}.jsonl"]
        done = entry.get("returncode") in (0, EXIT_FAILED_REQUESTS) and not entry.get("error")
        if name in names and done and all(f.is_file() for f in files):
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy2(f, out / f.name)
            reused[name] = {**entry, "resumed_from": entry.get("resumed_from") or str(folder)}
    return reused


def _run(
    cfg: RunSpec,
    spec: EngineSpec,
    out: Path,
    workdir: Path,
    resumed: dict[str, dict[str, Any]],
) -> int:
    port = cfg.port or (free_port(cfg.host) if spec.server_argv else 0)
    box = Container.from_options(spec, cfg.options)
    ctx = ServerContext(
        model=cfg.model,
        served_name=cfg.served_name or Path(cfg.model.rstrip("/")).name,
        host=cfg.host,
        port=port,
        extra_args=tuple(cfg.server_args),
        options=cfg.options,
        bin_dir=cfg.bin_dir,
        python=cfg.python,
        tokenizer=cfg.tokenizer,
        workdir=str(workdir),
    )
    if box is not None:
        ctx = in_image(spec, ctx)
    served = spec.served_name(ctx)
    style = cfg.ignore_eos_style or str(
        cfg.options.get("ignore_eos_style") or spec.ignore_eos_style
    )
    engine_env = {**spec.env(ctx), **{k: str(v) for k, v in cfg.env.items()}}
    path_prepend = [str(Path(cfg.python).parent)] if cfg.python else []
    env = server_env(engine_env, cfg.secret_env, path_prepend=path_prepend)
    wrap = None if box is None else wrapper(box, spec, ctx, env, [*engine_env, *cfg.secret_env])
    record: dict[str, Any] = {
        "engine": cfg.engine,
        "kind": spec.name,
        "software": spec.software,
        "model": cfg.model,
        "served_name": served,
        "quant": cfg.quant,
        "ignore_eos_style": style,
        "env": redact(engine_env, cfg.secret_env),
        "secret_env_passed": sorted(n for n in cfg.secret_env if n in os.environ),
        "metadata": cfg.metadata,
        "sweep_started_at": now_iso("milliseconds"),
        "spec_sha256": spec_sha256(cfg),
        "resumed": resumed,
        "points": [],
    }
    server_json = Path(cfg.server_json) if cfg.server_json else out / "server.json"
    server_json.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        check_prompt_rows(cfg)
        if spec.server_argv is not None:  # what the server loads, hashed once before it starts
            t0 = time.monotonic()
            record["model_file_sha256"] = weights_sha256(cfg.model, cfg.hash_cache)
            _log(f"sha256 of {cfg.model}: {time.monotonic() - t0:.1f} s")
        record["version"] = engine_version(spec, ctx, env, wrap)
        if box is not None:  # after the version probe: its `docker run` pulled the image
            record["container"] = {**box.record(), **box.digest(env)}
        if spec.server_argv is None:
            failed = _sweep_external(cfg, spec, served, style, record)
        else:
            failed = _sweep_managed(cfg, spec, ctx, env, wrap, served, style, record)
    except (ServerError, EngineConfigError, SweepConfigError) as exc:
        record["error"] = str(exc)
        _log(f"server failed: {exc}")
        failed = max(failed, 1)
    finally:
        record["resumed"] = sorted(record["resumed"])  # each one's record is in "points"
        record["sweep_finished_at"] = now_iso("milliseconds")
        record.update(_provenance(cfg, spec, record))
        write_json(server_json, record, sort_keys=False)  # in the order it was recorded
    return 1 if failed else 0


def run_job(
    param: Mapping[str, Any],
    software: str | None,
    model_source: str,
    *,
    outputs: Sequence[str],
    attic: str | os.PathLike[str],
    job: str,
    logs: tuple[str, str],
    failed: str,
) -> None:
    """A workflow job that owns a server (rules serve_sweep and fidelity_collect): its RunSpec
    (`param`) resolved with what its inputs say, run with its output in `logs[0]`. Interrupted
    or failed, what it made is set aside into `attic` (the next run redoes the job; nothing
    measured is lost) and it exits with one line: the server's own error (else `failed`) and
    where to read more (`logs`: the job's and the server's)."""
    spec = RunSpec.from_param(param).resolved(
        software=read_json(software) if software else {}, model_source=read_json(model_source)
    )
    try:
        with logged(logs[0]):
            status = run_sweep(spec, resumable(spec, attic))
    except WriteFailed as exc:  # a full disk: one line, what was written kept
        kept = set_aside(outputs, attic)
        raise SystemExit(f"{job} failed: {exc}; what completed kept in {kept}") from None
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): keep what was measured
        set_aside(outputs, attic)
        raise
    if status != 0:
        # the server's own error (with the tail of its log) goes into Snakemake's error message
        server = Path(spec.server_json or Path(spec.out_dir) / "server.json")
        error = read_json(server).get("error") if server.is_file() else None
        kept = set_aside(outputs, attic)
        raise SystemExit(
            f"{job} failed: {error or failed}; what completed kept in {kept}; "
            f"see {logs[0]} and {logs[1]}"
        )


def set_aside(outputs: Sequence[str | os.PathLike[str]], attic: str | os.PathLike[str]) -> Path:
    """Move what a failed or interrupted sweep made (its points/ folder, server.json) into
    `attic/<UTC time>/`: the job then leaves no declared output, so the next run redoes it, and
    no completed point is lost. Returns the folder."""
    dest = Path(attic) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    dest.mkdir(parents=True, exist_ok=False)
    for path in map(Path, outputs):
        if path.exists():
            path.replace(dest / path.name)
    return dest


def _provenance(
    cfg: RunSpec, spec: EngineSpec, record: Mapping[str, Any], packages: bool = True
) -> dict[str, Any]:
    """The provenance every table row and the manifest read (enginebench.provenance);
    `packages`: list the engine venv's packages (a `pip list`, server.json only)."""
    meta = cfg.metadata
    version = record.get("version") or {}
    prov = run_provenance(
        engine=cfg.engine,
        model=str(meta.get("model") or record.get("served_name") or cfg.model),
        quant=cfg.quant,
        sweep=cfg.sweep or None,
        engine_version=version.get("version") if isinstance(version, Mapping) else None,
        engine_commit=meta.get("engine_commit"),
        source_commit=meta.get("source_commit"),
        server_argv=record.get("argv") or (),
        model_source=meta.get("model_source"),
        model_sha=meta.get("model_sha"),
        model_file_sha256=record.get("model_file_sha256"),
        workload=meta.get("workload"),
        seed=cfg.seed,
        started=record.get("sweep_started_at"),
        finished=record.get("sweep_finished_at"),
        python_exe=cfg.python if packages else None,
    )
    prov["model_path"] = cfg.model
    prov["kind"] = spec.name
    prov["container"] = record.get("container")  # image and digest; None: the engine ran here
    prov.pop("env")  # the record's own `env` (the engine's variables, secrets redacted) stays
    return prov


def _summary_provenance(
    cfg: RunSpec, spec: EngineSpec, record: Mapping[str, Any]
) -> dict[str, Any]:
    """What each point's summary carries under `provenance`: the run's record (engine version,
    server argv and env, model identity, host, versions; not the venv's package list, which stays
    in server.json), with the point's own start and end set per point."""
    prov = _provenance(cfg, spec, record, packages=False)
    prov.pop("packages")
    prov["env"] = record.get("env")
    return prov


def _sweep_managed(
    cfg: RunSpec,
    spec: EngineSpec,
    ctx: ServerContext,
    env: Mapping[str, str],
    wrap: Wrap | None,
    served: str,
    style: str,
    record: dict[str, Any],
) -> int:
    server = _ready_server(cfg, spec, ctx, env, wrap, served, record)
    try:
        record["server"] = server.info()
        _log(f"ready after {server.startup_s:.1f} s at {server.base_url}")
        return _points(cfg, spec, served, style, server.base_url, record, server)
    finally:  # stopped on the way out, whatever happens
        server.stop()
        record["server"] = server.info()


def _ready_server(
    cfg: RunSpec,
    spec: EngineSpec,
    ctx: ServerContext,
    env: Mapping[str, str],
    wrap: Wrap | None,
    served: str,
    record: dict[str, Any],
) -> ManagedServer:
    """The server, started and ready. A port another process took between its choice and the
    server's bind (the server exits, the port is in use) starts it once more on another; a port
    the config names, or a container's, is not changed."""
    server = _server(cfg, spec, ctx, env, wrap, served, record)
    try:
        server.__enter__()
        return server
    except ServerError:
        record["server"] = server.info()
        if cfg.port or wrap is not None or not port_in_use(ctx.host, ctx.port):
            raise
    taken, ctx = ctx.port, replace(ctx, port=free_port(ctx.host))
    _log(f"port {taken} was taken by another process; starting again on port {ctx.port}")
    record["port_taken"] = taken
    server = _server(cfg, spec, ctx, env, wrap, served, record)
    try:
        server.__enter__()
    finally:
        record["server"] = server.info()
    return server


def _server(
    cfg: RunSpec,
    spec: EngineSpec,
    ctx: ServerContext,
    env: Mapping[str, str],
    wrap: Wrap | None,
    served: str,
    record: dict[str, Any],
) -> ManagedServer:
    """The engine's server on `ctx.port` (not started), its argv recorded."""
    assert spec.server_argv is not None
    argv = spec.server_argv(ctx)
    cwd = spec.server_cwd(ctx) if spec.server_cwd else None
    cleanup = None
    if wrap is not None:  # the server runs in its container, which starts in `cwd`
        wrapped = wrap(argv, cwd)
        argv, env, cleanup, cwd = wrapped.argv, wrapped.env, wrapped.cleanup, None
    log = Path(cfg.server_log or Path(cfg.out_dir) / "server.log")
    # recorded with secret-looking option values masked; the server gets the real argv
    record.update(
        {"argv": redact_argv(argv), "cwd": cwd, "readiness": spec.readiness, "server_log": str(log)}
    )
    _log(f"starting {spec.name}: {' '.join(argv)}")
    return ManagedServer(
        argv,
        port=ctx.port,
        host=ctx.host,
        env=env,
        log_path=log,
        cwd=cwd,
        readiness=spec.readiness,
        health_path=spec.health_path,
        served_name=served,
        ready_timeout=cfg.readiness_timeout or float(spec.readiness_timeout),
        cleanup=cleanup,
    )


def _sweep_external(
    cfg: RunSpec, spec: EngineSpec, served: str, style: str, record: dict[str, Any]
) -> int:
    base = (cfg.base_url or str(cfg.options.get("base_url") or "")).rstrip("/")
    if not base:
        raise ServerError(f"{spec.name}: no base_url for an external endpoint")
    base = base.removesuffix("/v1")
    headers = _auth_headers(cfg)
    record.update({"argv": None, "base_url": base, "readiness": spec.readiness})
    if not is_ready(base, spec.readiness, spec.health_path, None, headers, timeout=30):
        raise ServerError(f"{spec.name}: {base}/v1/models does not answer 200")
    return _points(cfg, spec, served, style, base, record, None)


def _points(
    cfg: RunSpec,
    spec: EngineSpec,
    served: str,
    style: str,
    base_url: str,
    record: dict[str, Any],
    server: ManagedServer | None,
) -> int:
    if cfg.fidelity is not None:
        return _fidelity(cfg, spec, served, base_url, record)
    model_check = spec.lists_model
    failed = 0
    first_row = cfg.warmups
    headers = _auth_headers(cfg)
    with tempfile.TemporaryDirectory(prefix="enginebench-sweep-") as tmp:
        # the records of the warm-up and of the points run so far (the early stop's pace)
        benchproc.preload(cfg.tokenizer)  # every point's imports, once (while the server idles)
        done = _warm_up(cfg, base_url, served, style, model_check, tmp, record, server)
        idle_s = settle.probe_s(base_url, cfg.endpoint, served, headers)  # after it: idle
        record["idle_probe_s"] = idle_s
        # what every point's summary carries as its provenance, given to the load generator
        provenance = str(Path(tmp) / "provenance.json")
        write_json(provenance, _summary_provenance(cfg, spec, record), sort_keys=False)
        past: SweepPoint | None = None  # the lowest rate point stopped early (over-saturated)
        for copy, point in enumerate(_schedule(cfg, record), start=1):
            first_row, row = first_row + point.num_prompts, first_row
            if past is not None and _beyond(cfg, point, past):
                why = f"past saturation: {past.name} stopped early, over-saturated"
                record["points"].append({"name": point.name, "skipped": why})
                _log(f"{point.name}: skipped, {why}")
                continue
            if point.name in record["resumed"]:  # an earlier run of this job measured it
                record["points"].append(record["resumed"][point.name])
                done.append(str(Path(cfg.out_dir) / f"{point.name}.jsonl"))
                _log(f"{point.name}: kept from {record['resumed'][point.name]['resumed_from']}")
                past = _saturated_at(cfg, point, past)
                continue
            if (code := _exit_code(server)) is not None:
                assert server is not None
                tail = log_tail(server.log_path, 20)
                record["points"].append(
                    {"name": point.name, "returncode": None, "error": f"server exited ({code})"}
                )
                _log(f"{point.name}: skipped, the server exited:\n{tail}")
                failed += 1
                continue
            argv = bench_argv(
                cfg, base_url, served, style, model_check, point, first_row=row,
                provenance_file=provenance, metrics_path=spec.metrics_path,
                copy=copy,  # a replay: the trace's prompts drawn afresh (the warm-up's is 0)
                server_pid=_own_pid(server), reference_records=done,
            )  # fmt: skip
            _log(f"{point.name}: {' '.join(argv[3:])}")
            t0 = time.monotonic()
            rc, died = run_point(argv, server)
            done.append(str(Path(cfg.out_dir) / f"{point.name}.jsonl"))
            seconds = round(time.monotonic() - t0, 3)
            outcome: dict[str, Any] = {"name": point.name, "returncode": rc, "seconds": seconds}
            past = _saturated_at(cfg, point, past)
            if idle_s is not None and not died and _summary(cfg, point.name).get("cancelled"):
                outcome |= settle.settle(base_url, cfg.endpoint, served, headers, idle_s)
                state = "idle again" if outcome["settled"] else "still busy (the limit)"
                _log(f"{point.name}: requests cancelled; the server {state} after "
                     f"{outcome['settle_s']:.1f} s")  # fmt: skip
            record["points"].append(
                {**outcome, "argv": redact_argv(argv), **({"error": died} if died else {})}
            )
            if died:
                failed += 1
                _log(f"{point.name}: FAILED, {died}; its completed requests were kept")
            elif rc == EXIT_UNWRITABLE:  # a full disk: no later point could be recorded either
                raise ServerError(
                    f"{point.name}: its results could not be written to {cfg.out_dir} (the "
                    "load generator's line above says why and how much it needed); free some "
                    "space and run again"
                )
            elif rc == EXIT_STALLED:  # a wedged server: no later point would measure anything
                log = server.log_path if server is not None else "the server's log"
                raise ServerError(
                    f"{point.name}: the server stopped sending with requests in flight (stalled; "
                    f"its completed requests were kept); read {log}"
                )
            # failed requests are data (counted in the summary and the tables), not a failed point
            elif rc == EXIT_FAILED_REQUESTS:
                _log(f"{point.name}: done, with failed requests (counted in its summary)")
            elif rc != 0:
                failed += 1
                _log(f"{point.name}: FAILED (exit {rc}); going on with the next point")
    return failed


def _warm_up(
    cfg: RunSpec,
    base_url: str,
    served: str,
    style: str,
    model_check: bool,
    tmp: str,
    record: dict[str, Any],
    server: ManagedServer | None,
) -> list[str]:
    """The warm-up's requests: the first alone, the rest at once; their records (kept in
    `tmp`) are returned for the points' early stop: the first gives the server's pace alone,
    which a server that starts no stream under load (MLC-LLM on 2 CPU cores at 1 req/s: none
    in 36 s) never shows during a point."""
    runs, records = [], []
    for first, n in ((0, min(cfg.warmups, 1)), (1, cfg.warmups - 1)):
        if n < 1:
            continue
        argv = bench_argv(cfg, base_url, served, style, model_check, None, n, first_row=first)
        argv += ["--save-result", "--result-dir", tmp, "--result-filename", f"warmup-{first}.json"]
        t0 = time.monotonic()
        rc, _ = run_point(argv, server)
        runs.append({"argv": redact_argv(argv), "returncode": rc,
                     "seconds": round(time.monotonic() - t0, 3)})  # fmt: skip
        records.append(str(Path(tmp) / f"warmup-{first}.jsonl"))
        _log(f"warm-up, {n} request{'s' * (n > 1)}{' at once' * (n > 1)}: exit {rc}")
    if runs:
        record["warmup"] = runs
    return records


def _auth_headers(cfg: RunSpec) -> dict[str, str]:
    """The bearer token from `api_key_env`, for the sweep's own requests (readiness, probes,
    fidelity); none when unset."""
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    return {"Authorization": f"Bearer {key}"} if key else {}


def _summary(cfg: RunSpec, name: str) -> dict[str, Any]:
    """A point's summary as written ({} when it wrote none)."""
    path = Path(cfg.out_dir) / f"{name}.json"
    return read_json(path) if path.is_file() else {}


def _uncapped_rate(cfg: RunSpec, point: SweepPoint) -> bool:
    """A fixed point at a steady open-loop rate with no cap on requests in flight: the points
    whose over-saturation tells about every higher one (not a ramp's, not a search's probe)."""
    return (
        point.mode == "rate" and not point.max_concurrency and not cfg.ramp
        and point in cfg.points
    )  # fmt: skip


def _saturated_at(cfg: RunSpec, point: SweepPoint, past: SweepPoint | None) -> SweepPoint | None:
    """The lowest such point stopped early so far, `point` included."""
    if not (_uncapped_rate(cfg, point) and _summary(cfg, point.name).get("early_stopped")):
        return past
    return point if past is None or point.load < past.load else past


def _beyond(cfg: RunSpec, point: SweepPoint, past: SweepPoint) -> bool:
    """Skipped (`skip_past_saturation`): a higher rate than one that over-saturated."""
    return cfg.skip_past_saturation and _uncapped_rate(cfg, point) and point.load > past.load


def _fidelity(
    cfg: RunSpec, spec: EngineSpec, served: str, base_url: str, record: dict[str, Any]
) -> int:
    """Fidelity's collection in place of points (enginebench.fidelity.collect): 1 when no
    prompt was answered."""
    from enginebench.fidelity.collect import collect  # aiohttp and the tokenizer: only here

    fid = cfg.fidelity
    assert fid is not None
    prompts = [p.prompt for p in load_materialized(cfg.prompts_file)[: fid["num_prompts"]]]
    headers = _auth_headers(cfg)
    top = spec.top_logprobs
    k = min(fid["top_logprobs"], top.max_k) if top else 0
    _log(f"fidelity: {len(prompts)} prompts, {fid['max_tokens']} greedy tokens, top-{k} logprobs")
    t0 = time.monotonic()
    recs = collect(
        base_url, served, prompts, load_tokenizer(cfg.tokenizer or cfg.model), top,
        max_tokens=fid["max_tokens"], k=k, out=fid["out"], headers=headers,
    )  # fmt: skip
    failed = [r.error for r in recs if r.error]
    record["fidelity"] = {
        "records": fid["out"], "prompts": len(recs), "failed": len(failed), "top_logprobs": k,
        "seconds": round(time.monotonic() - t0, 3),
    }  # fmt: skip
    _log(f"fidelity: {len(recs) - len(failed)} of {len(recs)} answered")
    if len(failed) == len(recs):
        raise ServerError(f"fidelity: no prompt was answered ({failed[0]})")
    return 0


def _schedule(cfg: RunSpec, record: dict[str, Any]) -> Iterator[SweepPoint]:
    """The sweep's points in the order they run: the fixed ones, then the adaptive search's
    probes, each chosen from the summaries of the probes before it (recorded in `record`)."""
    yield from cfg.points
    if cfg.search is None:
        return
    search, tried = cfg.search, dict[float, bool]()
    while (rate := next_rate(tried, search)) is not None:
        point = SweepPoint("rate", rate, search.num_prompts, search.burstiness)
        yield point
        summary = Path(cfg.out_dir) / f"{point.name}.json"
        tried[rate] = meets(read_json(summary) if summary.is_file() else None, search.slo)
        record["search"] = outcome(tried, search)
        _log(f"search: {point.name} {'meets' if tried[rate] else 'misses'} the SLO")


def run_point(argv: Sequence[str], server: ManagedServer | None) -> tuple[int, str | None]:
    """Run one point's load generator; (exit status, why it was stopped or None).

    A server that exits mid-point ends the point within WATCH_S: the load generator gets
    SIGINT, writes the requests that completed and stops, instead of sending the rest of its
    schedule to a dead port. A SIGTERM or Ctrl-C of the sweep does the same before it goes on
    up (the server's teardown follows).
    """
    proc = benchproc.launch(argv)
    try:
        while True:
            try:
                return proc.wait(timeout=WATCH_S), None
            except subprocess.TimeoutExpired:
                pass
            if (code := _exit_code(server)) is not None:
                _stop(proc)
                return proc.wait(), f"server exited ({code}) during the point"
    except BaseException:  # Terminated, KeyboardInterrupt: keep what completed
        _stop(proc)
        raise


def _own_pid(server: ManagedServer | None) -> int | None:
    """The managed server's process, whose tree holds the engine; not a docker client's (the
    container's processes are not its children: the load generator finds the listener)."""
    if server is None or server.cleanup is not None:
        return None
    return server.pid


def _exit_code(server: ManagedServer | None) -> int | None:
    """The managed server's exit status once it has exited; None while it runs (or none)."""
    if server is None or server.proc is None:
        return None
    return server.proc.poll()


def _stop(proc: subprocess.Popen[bytes] | benchproc.Forked) -> None:
    """SIGINT (the load generator writes its completed requests), then SIGKILL after a grace."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    install_signal_handlers()
    try:
        cfg = from_args(sys.argv[1:] if argv is None else argv)
        get_engine(cfg.kind)
        check_prompt_rows(cfg)
    except (ValueError, KeyError) as exc:
        print(f"serve-sweep: {exc}", file=sys.stderr)
        return 2
    try:
        return run_sweep(cfg)
    except Terminated as exc:
        print(f"serve-sweep: {exc}; server stopped", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("serve-sweep: interrupted; server stopped", file=sys.stderr)
        return 130
