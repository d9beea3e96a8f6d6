"""`enginebench serve-sweep`: own one engine server for a whole sweep.

Start the server (`ManagedServer`: own process group, free loopback port, readiness wait),
warm it up, run the sweep points in order, each as `enginebench bench` in a subprocess (its own
result files), then stop the server. A failed point does not stop the others nor touch the
files of completed ones; the exit status is 1 when any point failed. `server.json`
records the exact server argv, the variables that matter (secrets redacted), the engine
version, start/ready/stop times and each point's outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    redact,
    server_env,
)
from enginebench.engines.spec import EngineConfigError, EngineSpec, ServerContext
from enginebench.jsonfile import read_json, write_json
from enginebench.loadgen.errors import EXIT_FAILED_REQUESTS
from enginebench.models.files import weights_sha256
from enginebench.points import SweepPoint, format_load, parse_spec, rows_needed
from enginebench.proc import CommandError, run
from enginebench.provenance import now_iso, redact_argv, run_provenance
from enginebench.slo_search import Search, meets, next_rate, outcome

VERSION_TIMEOUT_S = 180
# how often a running point checks that its server is still alive, and how long the load
# generator gets to write what completed once told to stop
WATCH_S = 0.5
STOP_GRACE_S = 30.0


SLO_METRICS = ("ttft", "tpot")


def sweep_bench_args(sweep: Mapping[str, Any]) -> list[str]:
    """`enginebench bench` flags that a config sweep sets for all its points: `min_duration`
    (too_short below it) and `slo` ({ttft_ms, tpot_ms}: goodput counts the requests within
    both, as `vllm bench serve --goodput`)."""
    args = []
    if sweep.get("min_duration") is not None:
        args += ["--min-duration", f"{sweep['min_duration']:g}"]
    slo = sweep.get("slo") or {}
    if slo:
        args += ["--goodput", *(f"{m}:{slo[f'{m}_ms']:g}" for m in SLO_METRICS if f"{m}_ms" in slo)]
    return args


class SweepConfigError(ValueError):
    """A sweep that cannot run as configured (found before any server starts)."""


def check_prompt_rows(cfg: SweepConfig) -> None:
    """Raise SweepConfigError (one line) when the prompt file is too short for the sweep's fresh
    rows, before a server is started."""
    needed = rows_needed(cfg.points, cfg.warmups, cfg.search)
    try:
        with open(cfg.prompts_file, encoding="utf-8") as f:
            have = sum(1 for line in f if line.strip())
    except OSError as exc:
        raise SweepConfigError(f"cannot read the prompts file: {exc}") from exc
    if have < needed:
        raise SweepConfigError(
            f"{cfg.prompts_file} has {have} prompts; this sweep sends {needed} distinct ones "
            f"({cfg.warmups} warm-ups + {' + '.join(str(p.num_prompts) for p in cfg.points)}"
            f"{' + search probes' if cfg.search else ''}); "
            f"fix: materialize {needed} (`enginebench bench --save-prompts ... --num-prompts "
            f"{needed}`)"
        )


@dataclass
class SweepConfig:
    engine: str
    model: str  # what the server loads (ServerContext.model); the model name for `openai`
    out_dir: str
    prompts_file: str
    points: list[SweepPoint]
    served_name: str | None = None  # default: the model folder's name
    quant: str = ""
    sweep: str = ""  # the named sweep these points come from (config `sweeps:`)
    tokenizer: str | None = None
    server_args: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # the engine's config entry
    env: dict[str, str] = field(default_factory=dict)
    secret_env: list[str] = field(default_factory=list)  # names passed through, never written
    bin_dir: str | None = None
    python: str | None = None  # venv python
    server_log: str | None = None  # default <out_dir>/server.log
    server_json: str | None = None  # default <out_dir>/server.json
    hash_cache: str | None = None  # where weights_sha256 remembers the model's hash
    readiness_timeout: float | None = None  # default: the engine's
    warmups: int = 0
    seed: int = 0
    endpoint: str = "/v1/completions"
    host: str = "127.0.0.1"
    port: int | None = None  # default: a free port
    base_url: str | None = None  # external engines
    api_key_env: str | None = None
    ignore_eos_style: str | None = None  # default: the engine's
    metadata: dict[str, Any] = field(default_factory=dict)
    bench_args: list[str] = field(default_factory=list)  # extra `enginebench bench` flags
    workdir: str | None = None  # server scratch; default: a temporary folder
    search: Search | None = None  # the adaptive SLO search, after the fixed points
    instance: str = ""  # its name under the config's `engines:` (default: the engine's)


def _log(msg: str) -> None:
    print(f"[serve-sweep {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _meta_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def exact_length_flags(style: str) -> list[str]:
    """`enginebench bench` flags that pin each request's output length, per engine dialect."""
    if style == "none":
        return []
    if style == "debug_config":  # MLC: only with the server's --enable-debug
        return ["--extra-body", json.dumps({"debug_config": {"ignore_eos": True}})]
    return ["--ignore-eos", "--ignore-eos-style", style]


def bench_argv(
    cfg: SweepConfig,
    base_url: str,
    served: str,
    style: str,
    model_check: bool,
    point: SweepPoint | None,
    warmup_n: int = 0,
    first_row: int = 0,
    provenance_file: str | None = None,
) -> list[str]:
    """The exact `enginebench bench` command of one point (or of the warm-up: point None), sent
    the prompt file's rows from `first_row` on (`prompt_rows`); its summary carries the point
    and the sweep's provenance (`provenance_file`), written by the load generator alone."""
    argv = [
        sys.executable,
        "-m",
        "enginebench",
        "bench",
        "--base-url",
        base_url,
        "--endpoint",
        cfg.endpoint,
        "--model",
        served,
        "--prompts-file",
        cfg.prompts_file,
        "--seed",
        str(cfg.seed),
        "--disable-tqdm",
    ]
    if cfg.tokenizer:
        argv += ["--tokenizer", cfg.tokenizer]
    argv += exact_length_flags(style)
    if not model_check:
        argv.append("--no-model-check")
    if cfg.api_key_env:
        argv += ["--api-key-env", cfg.api_key_env]
    if first_row:
        argv += ["--prompt-offset", str(first_row)]
    if point is None:  # warm-up: all at once, nothing saved
        return [*argv, "--num-prompts", str(warmup_n), "--concurrency", str(min(warmup_n, 4))]
    argv += ["--num-prompts", str(point.num_prompts)]
    if point.mode == "rate":
        argv += ["--request-rate", format_load(point.load), "--burstiness", f"{point.burstiness:g}"]
        if point.max_concurrency:
            argv += ["--max-concurrency", str(point.max_concurrency)]
    else:
        argv += ["--concurrency", str(int(point.load))]
        if point.duration:
            argv += ["--duration", f"{point.duration:g}"]
    meta = {"engine": cfg.instance or cfg.engine, "quant": cfg.quant}
    meta |= cfg.metadata
    if cfg.sweep:
        meta["sweep"] = cfg.sweep
    argv += [
        "--save-result",
        "--result-dir",
        cfg.out_dir,
        "--result-filename",
        f"{point.name}.json",
        "--point",
        point.name,
        *(["--provenance-file", provenance_file] if provenance_file else []),
    ]
    argv += ["--metadata", *(f"{k}={_meta_value(v)}" for k, v in meta.items())]
    return [*argv, *cfg.bench_args]


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


def run_sweep(cfg: SweepConfig) -> int:
    """Serve, warm up, run every point in order, stop. 0 when every point succeeded."""
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers()
    spec = get_engine(cfg.engine)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"enginebench-{cfg.engine}-") as tmp:
        return _run(cfg, spec, out, Path(cfg.workdir) if cfg.workdir else Path(tmp))


def _run(cfg: SweepConfig, spec: EngineSpec, out: Path, workdir: Path) -> int:
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
        "engine": cfg.instance or spec.name,
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
        record["sweep_finished_at"] = now_iso("milliseconds")
        record.update(_provenance(cfg, spec, record))
        write_json(server_json, record, sort_keys=False)  # in the order it was recorded
    return 1 if failed else 0


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
    cfg: SweepConfig, spec: EngineSpec, record: Mapping[str, Any], packages: bool = True
) -> dict[str, Any]:
    """The provenance every table row and the manifest read (enginebench.provenance);
    `packages`: list the engine venv's packages (a `pip list`, server.json only)."""
    meta = cfg.metadata
    version = record.get("version") or {}
    prov = run_provenance(
        engine=cfg.instance or spec.name,
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
    cfg: SweepConfig, spec: EngineSpec, record: Mapping[str, Any]
) -> dict[str, Any]:
    """What each point's summary carries under `provenance`: the run's record (engine version,
    server argv and env, model identity, host, versions; not the venv's package list, which stays
    in server.json), with the point's own start and end set per point."""
    prov = _provenance(cfg, spec, record, packages=False)
    prov.pop("packages")
    prov["env"] = record.get("env")
    return prov


def _sweep_managed(
    cfg: SweepConfig,
    spec: EngineSpec,
    ctx: ServerContext,
    env: Mapping[str, str],
    wrap: Wrap | None,
    served: str,
    style: str,
    record: dict[str, Any],
) -> int:
    assert spec.server_argv is not None
    argv = spec.server_argv(ctx)
    cwd = spec.server_cwd(ctx) if spec.server_cwd else None
    cleanup = None
    if wrap is not None:  # the server runs in its container, which starts in `cwd`
        wrapped = wrap(argv, cwd)
        argv, env, cleanup, cwd = wrapped.argv, wrapped.env, wrapped.cleanup, None
    log = Path(cfg.server_log or Path(cfg.out_dir) / "server.log")
    timeout = cfg.readiness_timeout or float(spec.readiness_timeout)
    # recorded with secret-looking option values masked; the server gets the real argv
    record.update(
        {"argv": redact_argv(argv), "cwd": cwd, "readiness": spec.readiness, "server_log": str(log)}
    )
    _log(f"starting {spec.name}: {' '.join(argv)}")
    server = ManagedServer(
        argv,
        port=ctx.port,
        host=ctx.host,
        env=env,
        log_path=log,
        cwd=cwd,
        readiness=spec.readiness,
        health_path=spec.health_path,
        served_name=served,
        ready_timeout=timeout,
        cleanup=cleanup,
    )
    try:
        with server:
            record["server"] = server.info()
            _log(f"ready after {server.startup_s:.1f} s at {server.base_url}")
            return _points(cfg, spec, served, style, server.base_url, record, server)
    finally:
        record["server"] = server.info()


def _sweep_external(
    cfg: SweepConfig, spec: EngineSpec, served: str, style: str, record: dict[str, Any]
) -> int:
    base = (cfg.base_url or str(cfg.options.get("base_url") or "")).rstrip("/")
    if not base:
        raise ServerError(f"{spec.name}: no base_url for an external endpoint")
    base = base.removesuffix("/v1")
    headers = {}
    if cfg.api_key_env and os.environ.get(cfg.api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[cfg.api_key_env]}"
    record.update({"argv": None, "base_url": base, "readiness": spec.readiness})
    if not is_ready(base, spec.readiness, spec.health_path, None, headers, timeout=30):
        raise ServerError(f"{spec.name}: {base}/v1/models does not answer 200")
    return _points(cfg, spec, served, style, base, record, None)


def _points(
    cfg: SweepConfig,
    spec: EngineSpec,
    served: str,
    style: str,
    base_url: str,
    record: dict[str, Any],
    server: ManagedServer | None,
) -> int:
    model_check = spec.lists_model
    if cfg.warmups > 0:
        argv = bench_argv(cfg, base_url, served, style, model_check, None, cfg.warmups)
        t0 = time.monotonic()
        rc = subprocess.run(argv).returncode
        record["warmup"] = {
            "argv": redact_argv(argv),
            "returncode": rc,
            "seconds": time.monotonic() - t0,
        }
        _log(f"warm-up of {cfg.warmups} requests: exit {rc}")
    failed = 0
    first_row = cfg.warmups
    with tempfile.TemporaryDirectory(prefix="enginebench-sweep-") as tmp:
        # what every point's summary carries as its provenance, given to the load generator
        provenance = str(Path(tmp) / "provenance.json")
        write_json(provenance, _summary_provenance(cfg, spec, record), sort_keys=False)
        for point in _schedule(cfg, record):
            first_row, row = first_row + point.num_prompts, first_row
            if (code := _exit_code(server)) is not None:
                assert server is not None
                tail = log_tail(server.log_path, 20)
                record["points"].append(
                    {"name": point.name, "returncode": None, "error": f"server exited ({code})"}
                )
                _log(f"{point.name}: skipped, the server exited:\n{tail}")
                failed += 1
                continue
            argv = bench_argv(cfg, base_url, served, style, model_check, point,
                              first_row=row, provenance_file=provenance)  # fmt: skip
            _log(f"{point.name}: {' '.join(argv[3:])}")
            t0 = time.monotonic()
            rc, died = run_point(argv, server)
            seconds = round(time.monotonic() - t0, 3)
            outcome = {"name": point.name, "returncode": rc, "seconds": seconds}
            record["points"].append(
                {**outcome, "argv": redact_argv(argv), **({"error": died} if died else {})}
            )
            if died:
                failed += 1
                _log(f"{point.name}: FAILED, {died}; its completed requests were kept")
            # failed requests are data (counted in the summary and the tables), not a failed point
            elif rc == EXIT_FAILED_REQUESTS:
                _log(f"{point.name}: done, with failed requests (counted in its summary)")
            elif rc != 0:
                failed += 1
                _log(f"{point.name}: FAILED (exit {rc}); going on with the next point")
    return failed


def _schedule(cfg: SweepConfig, record: dict[str, Any]) -> Iterator[SweepPoint]:
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
    proc = subprocess.Popen(list(argv))
    try:
        while True:
            try:
                return proc.wait(timeout=WATCH_S), None
            except subprocess.TimeoutExpired:
                pass
            if (code := _exit_code(server)) is not None:
                _stop(proc)
                return proc.returncode, f"server exited ({code}) during the point"
    except BaseException:  # Terminated, KeyboardInterrupt: keep what completed
        _stop(proc)
        raise


def _exit_code(server: ManagedServer | None) -> int | None:
    """The managed server's exit status once it has exited; None while it runs (or none)."""
    if server is None or server.proc is None:
        return None
    return server.proc.poll()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (the load generator writes its completed requests), then SIGKILL after a grace."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# CLI ---------------------------------------------------------------------------------
def _kv(items: Sequence[str], flag: str, parse_json: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"serve-sweep: {flag} {item!r} is not KEY=VALUE")
        if parse_json:
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="enginebench serve-sweep",
        description="Start an engine's server, warm up, run sweep points in order, stop it.",
    )
    p.add_argument("--config", help="JSON file with SweepConfig fields (flags override it)")
    p.add_argument("--engine")
    p.add_argument("--model", help="what the server loads (GGUF file, HF folder, ...)")
    p.add_argument("--served-model-name", dest="served_name")
    p.add_argument("--quant")
    p.add_argument("--sweep", help="the named sweep these points belong to (provenance)")
    p.add_argument("--tokenizer", help="HF tokenizer folder for client-side token counts")
    p.add_argument("--prompts-file", help="materialized prompts (JSONL)")
    p.add_argument("--out-dir", help="where <point>.json/.jsonl and server.json go")
    p.add_argument("--server-log")
    p.add_argument("--server-json", help="default: <out-dir>/server.json")
    p.add_argument("--hash-cache", help="folder that remembers the model's sha256 across runs")
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one server argument, appended verbatim (use --server-arg=--flag)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option (JSON value when it parses)",
    )
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this variable through to the server; never written",
    )
    p.add_argument("--bin-dir")
    p.add_argument("--python", help="the engine venv's python")
    p.add_argument("--readiness-timeout", type=float)
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="SPEC",
        help="rate=R[,num_prompts=N,burstiness=B,max_concurrency=C] or "
        "conc=N[,num_prompts=N,duration=S]; run in the given order",
    )
    p.add_argument("--num-prompts", type=int, help="default num_prompts of --point")
    p.add_argument("--burstiness", type=float, help="default burstiness of --point")
    p.add_argument("--warmups", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--endpoint")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--base-url")
    p.add_argument("--api-key-env")
    p.add_argument("--ignore-eos-style")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--workdir")
    return p


def config_from_args(argv: Sequence[str]) -> SweepConfig:
    a = build_parser().parse_args(list(argv))
    base: dict[str, Any] = json.loads(Path(a.config).read_text()) if a.config else {}
    defaults = {"num_prompts": a.num_prompts, "burstiness": a.burstiness}
    defaults = {k: v for k, v in defaults.items() if v is not None}
    points = [parse_spec(s, defaults) for s in a.point]
    if not points:
        points = [p if isinstance(p, SweepPoint) else _point_of(p) for p in base.get("points", [])]
    scalars = (
        "engine",
        "model",
        "served_name",
        "quant",
        "sweep",
        "tokenizer",
        "prompts_file",
        "out_dir",
        "server_log",
        "server_json",
        "hash_cache",
        "bin_dir",
        "python",
        "readiness_timeout",
        "warmups",
        "seed",
        "endpoint",
        "host",
        "port",
        "base_url",
        "api_key_env",
        "ignore_eos_style",
        "workdir",
    )
    for name in scalars:
        if getattr(a, name) is not None:
            base[name] = getattr(a, name)
    base["server_args"] = list(base.get("server_args", [])) + a.server_arg
    base["options"] = {**base.get("options", {}), **_kv(a.option, "--option", parse_json=True)}
    base["env"] = {**base.get("env", {}), **_kv(a.env, "--env")}
    base["secret_env"] = list(base.get("secret_env", [])) + a.secret_env
    base["metadata"] = {**base.get("metadata", {}), **_kv(a.metadata, "--metadata")}
    base["bench_args"] = list(base.get("bench_args", [])) + a.bench_arg
    base["points"] = points
    if isinstance(base.get("search"), Mapping):
        base["search"] = Search(**base["search"])
    missing = [k for k in ("engine", "model", "out_dir", "prompts_file") if not base.get(k)]
    if missing:
        raise SystemExit(
            f"serve-sweep: missing {', '.join('--' + m.replace('_', '-') for m in missing)}"
        )
    if not points and not base.get("search"):
        raise SystemExit("serve-sweep: no sweep points (--point rate=1 ... or conc=4 ...)")
    return SweepConfig(**base)


def _point_of(d: Mapping[str, Any]) -> SweepPoint:
    return SweepPoint(**{**d, "load": float(d["load"])})


def config_json(cfg: SweepConfig) -> dict[str, Any]:
    """`cfg` as the JSON `--config` reads back (points included)."""
    data = asdict(cfg)
    data["points"] = [asdict(p) for p in cfg.points]
    return data


def main(argv: Sequence[str] | None = None) -> int:
    install_signal_handlers()
    try:
        cfg = config_from_args(sys.argv[1:] if argv is None else argv)
        get_engine(cfg.engine)
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
