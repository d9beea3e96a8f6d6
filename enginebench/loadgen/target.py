"""The server under test: reachability and model check, request headers, endpoint, and
which failures mean the whole run is misconfigured (stop rather than measure them)."""

from __future__ import annotations

import argparse
import os

import aiohttp

from enginebench.loadgen.client import Endpoint, RequestRecord
from enginebench.loadgen.errors import EXIT_RUNTIME, EXIT_USAGE, BenchError

_PREFLIGHT_TIMEOUT_S = 15.0


def fatal_error(rec: RequestRecord, ep: Endpoint) -> BenchError | None:
    """A failure that every request would repeat: stop the run rather than measure it."""
    status, detail = rec.http_status, rec.error or ""
    if rec.error_kind == "connect":
        return BenchError(
            f"cannot connect to {ep.url}: {detail}",
            "start the server or fix --base-url",
            EXIT_RUNTIME,
        )
    if status is None or not 400 <= status < 500 or status in (408, 429):
        return None
    if status == 404:
        fix = f"check --model ({ep.model!r}) and --endpoint against what the server serves"
    elif status in (401, 403):
        fix = "pass the API key with --api-key-env VAR"
    else:
        fix = (
            "check --ignore-eos-style (some servers reject ignore_eos/min_tokens) and --extra-body"
        )
    return BenchError(f"the server rejected the request: {detail}", fix, EXIT_RUNTIME)


async def resolve_model(session: aiohttp.ClientSession, base: str, args: argparse.Namespace) -> str:
    """Reach the server, list its models, resolve and check `--model`."""
    url = f"{base}/v1/models"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=_PREFLIGHT_TIMEOUT_S)) as r:
            data = await r.json(content_type=None) if r.status == 200 else None
    except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, TimeoutError) as exc:
        raise BenchError(
            f"cannot reach the server at {base} ({type(exc).__name__}: {exc})",
            "start the server or fix --base-url",
            EXIT_RUNTIME,
        ) from exc
    except (aiohttp.ClientError, ValueError):
        data = None
    ids: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        ids = [str(m.get("id")) for m in data["data"] if isinstance(m, dict) and m.get("id")]
    if args.model is None:
        if not ids:
            raise BenchError(f"{url} lists no model", "pass --model NAME", EXIT_USAGE)
        return ids[0]
    if ids and args.model not in ids and not args.no_model_check:
        raise BenchError(
            f"model {args.model!r} is not served at {base} (served: {', '.join(ids)})",
            "pass --model with a served name (or --no-model-check)",
            EXIT_RUNTIME,
        )
    return str(args.model)


def request_headers(args: argparse.Namespace) -> dict[str, str]:
    """Headers of every request, the preflight's included (set once on the session)."""
    headers = {"Content-Type": "application/json"}
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise BenchError(
                f"environment variable {args.api_key_env} (--api-key-env) is not set",
                f"export {args.api_key_env}=<key> or drop --api-key-env",
            )
        headers["Authorization"] = f"Bearer {key}"
    return headers


def make_endpoint(args: argparse.Namespace, base: str, model: str) -> Endpoint:
    path = "/" + args.endpoint.lstrip("/")
    chat = path.rstrip("/").endswith("chat/completions")
    if not chat and not path.rstrip("/").endswith("completions"):
        raise BenchError(
            f"--endpoint {args.endpoint!r} is not a completions endpoint",
            "use /v1/completions or /v1/chat/completions",
        )
    extra = dict(args.extra_body or {})
    if args.temperature is not None:
        extra.setdefault("temperature", args.temperature)
    return Endpoint(
        url=base + path,
        model=model,
        chat=chat,
        stream=not args.no_stream,
        ignore_eos=args.ignore_eos,
        ignore_eos_style=args.ignore_eos_style,
        extra_body=extra,
    )
