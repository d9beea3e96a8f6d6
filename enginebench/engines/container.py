"""Engines run from a container image: config `container: {image, runtime, args}`.

The engine's own argv (`EngineSpec.server_argv`, `version_argv`) is built for inside the image
(`in_image`: the image's `python3` and binaries, absolute host paths) and then wrapped in
`docker run` or `apptainer exec` (`Container.wrap`). The host paths the engine reads are bound
read-only at the same place, so the argv needs no translation. Variables go in by name only:
their values travel in the runtime client's environment, never on an argv.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from enginebench.engines.spec import EngineConfigError, EngineSpec, ServerContext
from enginebench.proc import CommandError, run
from enginebench.provenance import sha256_file

Runtime = Literal["docker", "apptainer"]
RUNTIMES: tuple[Runtime, ...] = ("docker", "apptainer")
# Inside an image the engine runs from the image's interpreter (on its PATH), never a host one:
# vllm/vllm-openai, lmsysorg/sglang and the transformers images all provide `python3`.
IN_IMAGE_PYTHON = "python3"
# Where an image keeps an engine's binaries: ghcr.io/ggml-org/llama.cpp (:server, :server-cuda,
# :full) has llama-server in /app. Engines not listed run commands from the image's PATH.
IN_IMAGE_BIN_DIR = {"llamacpp": "/app"}
# Passed into the container, when set, besides the engine's own variables: the GPU selection
# (a Slurm job's CUDA_VISIBLE_DEVICES must hold inside too).
DEVICE_VARS = ("CUDA_VISIBLE_DEVICES",)
# What the runtime's client itself reads (a rootless docker socket, apptainer's caches): the
# server environment drops them, the client needs them.
CLIENT_VARS = (
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR",
    "APPTAINER_CACHEDIR", "APPTAINER_TMPDIR",
)  # fmt: skip
INSPECT_TIMEOUT_S = 60


@dataclass(frozen=True)
class Wrapped:
    argv: list[str]
    env: dict[str, str]  # the runtime client's environment
    cleanup: list[str] | None  # removes what outlives a killed client (docker); None: nothing


Wrap = Callable[[Sequence[str], str | None], Wrapped]


@dataclass(frozen=True)
class Container:
    image: str  # docker: a reference; apptainer: a .sif path or a docker:// (oras://...) URI
    runtime: Runtime = "docker"
    args: tuple[str, ...] = ()  # extra runtime flags, before the image

    @classmethod
    def from_options(cls, spec: EngineSpec, options: Mapping[str, Any]) -> Container | None:
        """The instance's container (its config entry's `container:`, or the image a
        container-only engine pins), or None: the engine runs on the host."""
        entry = options.get("container")
        if entry is None:
            return cls(spec.container_image) if spec.container_image else None
        clash = [k for k in ("python", "bin_dir") if k in options]
        if clash:
            raise EngineConfigError(
                f"container and {clash[0]} both say where {spec.name} comes from; "
                f"keep one (drop {clash[0]} to run the image)"
            )
        if spec.server_argv is None:
            raise EngineConfigError(f"{spec.name} starts no server; drop container")
        if spec.prepared_model is not None:
            raise EngineConfigError(
                f"{spec.name} prepares its model with its venv, which does not run in a "
                "container; drop container"
            )
        if not isinstance(entry, Mapping) or not isinstance(entry.get("image"), str):
            raise EngineConfigError("container.image: required (an image reference)")
        runtime = entry.get("runtime", "docker")
        if runtime not in RUNTIMES:
            raise EngineConfigError(f"container.runtime: docker or apptainer, not {runtime!r}")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise EngineConfigError("container.args: a list of strings")
        return cls(entry["image"], cast(Runtime, runtime), tuple(args))

    def wrap(
        self,
        argv: Sequence[str],
        *,
        spec: EngineSpec,
        ctx: ServerContext,
        env: Mapping[str, str],
        inside: Iterable[str],
        name: str,
        cwd: str | None = None,
    ) -> Wrapped:
        """`argv` (built from `in_image(spec, ctx)`) run in the image. `env`: the server's
        environment; `inside`: the names of it the engine gets (unset ones are skipped)."""
        names = [k for k in dict.fromkeys([*inside, *DEVICE_VARS]) if k in env]
        client = {**env, **{k: os.environ[k] for k in CLIENT_VARS if k in os.environ}}
        binds = mounts([ctx.model, ctx.tokenizer, ctx.workdir, ctx.options.get("source_dir")])
        gpu = bool(ctx.options["gpu"]) if "gpu" in ctx.options else spec.uses_gpu(ctx.options)
        if self.runtime == "apptainer":
            # apptainer shares the host's network (the server binds ctx.host as on the host)
            # and runs in our process group, so the group kill reaches it. --cleanenv keeps the
            # host's PATH, LD_LIBRARY_PATH, ... out; APPTAINERENV_<NAME> still passes a value.
            flags = ["--cleanenv", *(["--nv"] if gpu else []), *(["--pwd", cwd] if cwd else [])]
            flags += [f for b in binds for f in ("--bind", f"{b}:{b}:ro")]
            inner = {f"APPTAINERENV_{k}": env[k] for k in names}
            command = ["apptainer", "exec", *flags, *self.args, self.image, *argv]
            return Wrapped(command, {**client, **inner}, None)
        # --network host, not -p 127.0.0.1:P:P: a published port is reached from the host's
        # loopback through docker-proxy, a userland relay that would sit inside every measured
        # latency; on the host network the path is the bare engine's, the server binds ctx.host
        # (loopback unless the config says otherwise) and the port picked free on the host holds.
        # --init: the SIGTERM the client passes on (its --sig-proxy) reaches the server's
        # children too; --rm and --name: `cleanup` removes what a killed client leaves running.
        flags = ["--rm", "--init", "--name", name, "--network", "host"]
        flags += [*(["--gpus", "all"] if gpu else []), *(["--workdir", cwd] if cwd else [])]
        flags += [f for b in binds for f in ("-v", f"{b}:{b}:ro")]
        flags += [f for k in names for f in ("-e", k)]  # values from the client's environment
        # --entrypoint: images set their own (`vllm serve`, /app/llama-server, the TGI
        # launcher); the engine's argv is the whole command
        docker = ["docker", "run", *flags, *self.args, "--entrypoint", argv[0], self.image]
        return Wrapped([*docker, *argv[1:]], client, ["docker", "rm", "--force", name])

    def digest(self, env: Mapping[str, str]) -> dict[str, str | None]:
        """What exactly ran: the image's repo digest (or local id), or a .sif's sha256."""
        if self.runtime == "apptainer":
            if os.path.isfile(self.image):
                return {"digest": f"sha256:{sha256_file(self.image)}"}
            return {"digest": None, "digest_error": "not a local file (apptainer pull a .sif)"}
        # RepoDigests is empty for an image built here (never pushed nor pulled): its Id then
        failed = ""
        for fmt in ("{{index .RepoDigests 0}}", "{{.Id}}"):
            try:
                return {"digest": self._inspect(fmt, env)}
            except CommandError as exc:
                failed = str(exc)
        return {"digest": None, "digest_error": failed}

    def _inspect(self, fmt: str, env: Mapping[str, str]) -> str:
        argv = ["docker", "image", "inspect", "--format", fmt, self.image]
        return run(argv, stderr=False, env=env, timeout=INSPECT_TIMEOUT_S).strip()

    def record(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "image": self.image, "args": list(self.args)}


def check_instance(name: str, entry: Mapping[str, Any], spec: EngineSpec) -> None:
    """The workflow's config check of one `engines:` entry: a one-line EngineConfigError."""
    try:
        Container.from_options(spec, entry)
    except EngineConfigError as exc:
        raise EngineConfigError(f"engines.{name}: {exc}") from None


def in_image(spec: EngineSpec, ctx: ServerContext) -> ServerContext:
    """The context an engine's argv is built from inside its image: the image's interpreter
    and binaries; absolute paths (bound at the same place; the container's cwd is not ours)."""

    def absolute(path: str | None) -> str | None:
        return os.path.abspath(path) if path else path

    return replace(
        ctx,
        model=os.path.abspath(ctx.model),
        tokenizer=absolute(ctx.tokenizer),
        workdir=absolute(ctx.workdir),
        python=IN_IMAGE_PYTHON,
        bin_dir=IN_IMAGE_BIN_DIR.get(spec.name),
    )


def mounts(paths: Iterable[str | None]) -> list[str]:
    """Absolute folders/files to bind: `paths`, plus every folder a symlink under them leads
    into (a hub model folder is links into the hub cache's snapshot, whose files link into its
    blobs), without those already inside another."""
    found: list[str] = []
    for path in (os.path.abspath(p) for p in paths if p):
        found.append(path)
        entries = (os.path.join(d, n) for d, subs, files in os.walk(path) for n in subs + files)
        for hop in (path, *entries):
            while os.path.islink(hop):
                hop = os.path.normpath(os.path.join(os.path.dirname(hop), os.readlink(hop)))
                found.append(hop if os.path.isdir(hop) else os.path.dirname(hop))
    unique = list(dict.fromkeys(found))
    return [p for p in unique if not any(p.startswith(q + os.sep) for q in unique if q != p)]


def wrapper(
    box: Container,
    spec: EngineSpec,
    ctx: ServerContext,
    env: Mapping[str, str],
    inside: Iterable[str],
) -> Wrap:
    """`Container.wrap` for one server's commands (argv, cwd), each in a container of its own
    name (`docker rm` then removes exactly that one)."""
    names = tuple(inside)

    def wrap(argv: Sequence[str], cwd: str | None) -> Wrapped:
        name = f"enginebench-{spec.name}-{uuid.uuid4().hex[:12]}"
        return box.wrap(argv, spec=spec, ctx=ctx, env=env, inside=names, name=name, cwd=cwd)

    return wrap
