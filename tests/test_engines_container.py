"""Engines from a container image: exact docker/apptainer argv, secrets, digest, stop.

No container runtime is installed here: the argv is checked exactly, and fake `docker` and
`apptainer` executables (first on PATH) record their calls and play the rest, so the sweep's
start, version probe, digest and stop run for real against them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from enginebench import sweep
from enginebench.engines.container import Container, check_instance, in_image, mounts, wrapper
from enginebench.engines.registry import get_engine
from enginebench.engines.server import server_env
from enginebench.engines.spec import EngineConfigError, ServerContext
from enginebench.provenance import sha256_file
from enginebench.runspec import RunSpec
from tests.test_engines_spec import VERSION_CODE

IMAGE = "vllm/vllm-openai:v0.10.1"
SECRET = "hf_not_on_any_argv"
HOST_ENV = {"PATH": "/usr/bin", "HOME": "/home/u", "HF_TOKEN": SECRET, "CUDA_VISIBLE_DEVICES": "1"}
HOST_PORT = ["--host", "127.0.0.1", "--port", "8123"]

# engine, options, the engine's argv inside the image, the variables it passes in, GPU
CASES = [
    ("llamacpp", {},
     ["/app/llama-server", "-m", "/m/q4.gguf", *HOST_PORT, "--alias", "tiny", "--metrics"],
     [], False),
    ("llamacpp", {"backend": "cuda", "n_gpu_layers": 99},
     ["/app/llama-server", "-m", "/m/q4.gguf", *HOST_PORT, "--alias", "tiny", "--metrics",
      "-ngl", "99"],
     [], True),
    ("vllm", {}, ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m/hf",
                  "--served-model-name", "tiny", *HOST_PORT, "--enable-prompt-tokens-details"],
     ["HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "VLLM_CPU_KVCACHE_SPACE"], False),
    ("vllm", {"device": "cuda"},
     ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "/m/hf",
      "--served-model-name", "tiny", *HOST_PORT, "--enable-prompt-tokens-details"],
     ["HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK"], True),
    ("sglang", {}, ["python3", "-m", "sglang.launch_server", "--model-path", "/m/hf",
                    "--served-model-name", "tiny", *HOST_PORT, "--enable-cache-report"],
     ["HF_HUB_OFFLINE"], True),
    ("tgi", {}, ["text-generation-launcher", "--model-id", "/m/hf", "--hostname", "127.0.0.1",
                 "--port", "8123"], ["HF_HUB_OFFLINE"], True),
    ("transformers", {}, ["python3", "-m", "transformers.cli.transformers", "serve", "/m/hf",
                          *HOST_PORT, "--device", "cpu"],
     ["HF_HUB_CACHE", "HF_HUB_OFFLINE", "DO_NOT_TRACK"], False),
    ("transformers", {"device": "cuda"},
     ["python3", "-m", "transformers.cli.transformers", "serve", "/m/hf", *HOST_PORT,
      "--device", "cuda"], ["HF_HUB_CACHE", "HF_HUB_OFFLINE", "DO_NOT_TRACK"], True),
]  # fmt: skip


def wrapped(
    engine: str, options: dict[str, Any], runtime: str, workdir: Path
) -> tuple[list[str], list[str], dict[str, str], list[str] | None]:
    """(the engine's argv, the wrapped argv, the client's env, cleanup) as the sweep makes them."""
    spec = get_engine(engine)
    model = "/m/q4.gguf" if engine == "llamacpp" else "/m/hf"
    opts = {**options, "container": {"image": IMAGE, "runtime": runtime}}
    ctx = ServerContext(
        model, "tiny", port=8123, options=opts, tokenizer="/m/tok", workdir=str(workdir)
    )
    box = Container.from_options(spec, opts)
    assert box is not None and spec.server_argv is not None
    ictx = in_image(spec, ctx)
    engine_env = spec.env(ictx)
    env = server_env(engine_env, ["HF_TOKEN"], base=HOST_ENV)
    inner = spec.server_argv(ictx)
    w = box.wrap(inner, spec=spec, ctx=ictx, env=env, inside=[*engine_env, "HF_TOKEN"], name="eb")
    return inner, w.argv, w.env, w.cleanup


@pytest.mark.parametrize(("engine", "options", "inner", "names", "gpu"), CASES)
def test_docker_argv(
    engine: str,
    options: dict[str, Any],
    inner: list[str],
    names: list[str],
    gpu: bool,
    tmp_path: Path,
) -> None:
    argv, docker, env, cleanup = wrapped(engine, options, "docker", tmp_path)
    model = inner[inner.index("-m") + 1] if engine == "llamacpp" else "/m/hf"
    assert argv == inner
    assert docker == [
        "docker", "run", "--rm", "--init", "--name", "eb", "--network", "host",
        *(["--gpus", "all"] if gpu else []),
        "-v", f"{model}:{model}:ro", "-v", "/m/tok:/m/tok:ro", "-v", f"{tmp_path}:{tmp_path}:ro",
        *[f for n in [*names, "HF_TOKEN", "CUDA_VISIBLE_DEVICES"] for f in ("-e", n)],
        "--entrypoint", inner[0], IMAGE, *inner[1:],
    ]  # fmt: skip
    assert not any(SECRET in a for a in docker)
    assert env["HF_TOKEN"] == SECRET  # `-e HF_TOKEN` takes it from the client's environment
    assert cleanup == ["docker", "rm", "--force", "eb"]


@pytest.mark.parametrize(("engine", "options", "inner", "names", "gpu"), CASES)
def test_apptainer_argv(
    engine: str,
    options: dict[str, Any],
    inner: list[str],
    names: list[str],
    gpu: bool,
    tmp_path: Path,
) -> None:
    _, apptainer, env, cleanup = wrapped(engine, options, "apptainer", tmp_path)
    model = "/m/q4.gguf" if engine == "llamacpp" else "/m/hf"
    assert apptainer == [
        "apptainer", "exec", "--cleanenv", *(["--nv"] if gpu else []),
        "--bind", f"{model}:{model}:ro", "--bind", "/m/tok:/m/tok:ro",
        "--bind", f"{tmp_path}:{tmp_path}:ro", IMAGE, *inner,
    ]  # fmt: skip
    assert not any(SECRET in a for a in apptainer)
    passed = {k.removeprefix("APPTAINERENV_") for k in env if k.startswith("APPTAINERENV_")}
    assert passed == {*names, "HF_TOKEN", "CUDA_VISIBLE_DEVICES"}
    assert env["APPTAINERENV_HF_TOKEN"] == SECRET and cleanup is None


def test_vllm_docker_reads_as_documented(tmp_path: Path) -> None:
    """One case spelled out whole: what README's example runs."""
    _, docker, _, _ = wrapped("vllm", {"device": "cuda"}, "docker", tmp_path)
    assert docker == [
        "docker", "run", "--rm", "--init", "--name", "eb", "--network", "host", "--gpus", "all",
        "-v", "/m/hf:/m/hf:ro", "-v", "/m/tok:/m/tok:ro", "-v", f"{tmp_path}:{tmp_path}:ro",
        "-e", "HF_HUB_OFFLINE", "-e", "VLLM_NO_USAGE_STATS", "-e", "DO_NOT_TRACK",
        "-e", "HF_TOKEN", "-e", "CUDA_VISIBLE_DEVICES",
        "--entrypoint", "python3", IMAGE, "-m", "vllm.entrypoints.openai.api_server",
        "--model", "/m/hf", "--served-model-name", "tiny", "--host", "127.0.0.1",
        "--port", "8123", "--enable-prompt-tokens-details",
    ]  # fmt: skip


def test_args_cwd_and_gpu_override(tmp_path: Path) -> None:
    spec = get_engine("exllamav2")  # runs from its TabbyAPI checkout: the container's cwd too
    box = Container("img", "docker", ("--ipc=host",))
    ctx = ServerContext("/m/e", "e", options={"gpu": False, "source_dir": "/src"})
    w = box.wrap(["python3", "/src/main.py"], spec=spec, ctx=ctx, env={}, inside=(), name="n",
                 cwd="/src")  # fmt: skip
    assert w.argv == [
        "docker", "run", "--rm", "--init", "--name", "n", "--network", "host",
        "--workdir", "/src", "-v", "/m/e:/m/e:ro", "-v", "/src:/src:ro",
        "--ipc=host", "--entrypoint", "python3", "img", "/src/main.py",
    ]  # fmt: skip


def test_in_image_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = get_engine("transformers")
    ctx = in_image(spec, ServerContext("models/hf", "x", python="/venv/bin/python", workdir="w"))
    assert (ctx.model, ctx.workdir, ctx.python) == (
        f"{tmp_path}/models/hf",
        f"{tmp_path}/w",
        "python3",
    )
    assert spec.served_name(ctx) == ctx.model  # what clients send is what the server loaded


def test_mounts_follow_hub_symlinks(tmp_path: Path) -> None:
    """A hub model folder links into the cache's snapshot, whose files link into its blobs."""
    snap, blobs, model = tmp_path / "hub/snapshots/abc", tmp_path / "hub/blobs", tmp_path / "m"
    for d in (snap, blobs, model):
        d.mkdir(parents=True)
    (blobs / "h1").write_text("{}")
    (snap / "config.json").symlink_to("../../blobs/h1")
    (model / "config.json").symlink_to(snap / "config.json")
    assert mounts([str(model), None, str(model / "config.json")]) == [
        str(model),
        str(snap),
        str(blobs),
    ]


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"kind": "vllm", "python": "/v/bin/python"}, "engines.v: container and python both say "
         "where vllm comes from; keep one (drop python to run the image)"),
        ({"kind": "llamacpp", "bin_dir": "/b"}, "engines.v: container and bin_dir both say where "
         "llamacpp comes from; keep one (drop bin_dir to run the image)"),
        ({"kind": "openai"}, "engines.v: openai starts no server; drop container"),
        ({"kind": "mlc"}, "engines.v: mlc prepares its model with its venv"),
        ({"kind": "vllm", "container": {"image": "i", "runtime": "podman"}},
         "engines.v: container.runtime: docker or apptainer, not 'podman'"),
    ],
)  # fmt: skip
def test_config_check_is_one_line(entry: dict[str, Any], error: str) -> None:
    entry = {"container": {"image": IMAGE}, **entry}
    with pytest.raises(EngineConfigError) as err:
        check_instance("v", entry, get_engine(entry["kind"]))
    assert str(err.value).startswith(error) and "\n" not in str(err.value)


def test_config_check_passes_a_container_instance() -> None:
    check_instance("v", {"kind": "vllm", "container": {"image": IMAGE}}, get_engine("vllm"))
    check_instance("v", {"kind": "vllm", "python": "/v/bin/python"}, get_engine("vllm"))


# -- with a fake docker ------------------------------------------------------------------------
FAKE_DOCKER = """\
#!{python}
# records each call (argv, and whether the secret reached it by environment), plays the rest
import http.server, json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": args, "secret": os.environ.get("HF_TOKEN")}}) + "\\n")
if args[:2] == ["image", "inspect"]:
    if "RepoDigests" in args[3] and {repo_digest!r}:
        print({repo_digest!r})
        sys.exit(0)
    if "RepoDigests" in args[3]:
        sys.exit("template: error calling index: index out of range: 0")
    print("sha256:1d")
elif args[0] == "run" and "--version" in args:
    print("version: 6000 (abc1234)")
elif args[0] == "run":
    port = int(args[args.index("--port") + 1])
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"{{}}")
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_digest: str = "") -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "docker.jsonl"
    bin_dir.mkdir()
    script = FAKE_DOCKER.format(python=sys.executable, log=str(log), repo_digest=repo_digest)
    (bin_dir / "docker").write_text(script)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_digest_repo_digest_then_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_docker(tmp_path, monkeypatch, repo_digest=f"vllm/vllm-openai@sha256:{'a' * 64}")
    box = Container(IMAGE)
    assert box.digest(os.environ) == {"digest": f"vllm/vllm-openai@sha256:{'a' * 64}"}
    assert [c["argv"] for c in calls(log)] == [
        ["image", "inspect", "--format", "{{index .RepoDigests 0}}", IMAGE]
    ]
    log.unlink()
    (tmp_path / "bin" / "docker").unlink()
    (tmp_path / "bin").rmdir()
    fake_docker(tmp_path, monkeypatch)  # an image built here: no repo digest, its id
    assert box.digest(os.environ) == {"digest": "sha256:1d"}
    assert [c["argv"][3] for c in calls(log)] == ["{{index .RepoDigests 0}}", "{{.Id}}"]


def test_digest_of_a_sif_is_its_sha256(tmp_path: Path) -> None:
    sif = tmp_path / "vllm.sif"
    sif.write_bytes(b"sif")
    assert Container(str(sif), "apptainer").digest({}) == {"digest": f"sha256:{sha256_file(sif)}"}
    assert Container("docker://" + IMAGE, "apptainer").digest({})["digest"] is None


def test_sweep_in_docker_records_digest_and_removes_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep as the workflow runs it: version probed in the image, digest recorded, server
    started through docker, and after the stop `docker rm --force` of that server's name."""
    log = fake_docker(tmp_path, monkeypatch, repo_digest="ggml/llama@sha256:" + "b" * 64)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(sweep, "_points", lambda *a: 0)  # the points are tested elsewhere
    model, prompts = tmp_path / "q4.gguf", tmp_path / "prompts.jsonl"
    model.write_bytes(b"GGUF")
    prompts.write_text('{"prompt": "hi"}\n' * 4)
    image = "ghcr.io/ggml-org/llama.cpp:server"
    cfg = RunSpec(
        engine="llamacpp", model=str(model), out_dir=str(tmp_path / "out"),
        prompts_file=str(prompts), points=(sweep.SweepPoint("concurrency", 1, num_prompts=1),),
        options={"container": {"image": image}}, secret_env=("HF_TOKEN",),
        readiness_timeout=30, workdir=str(tmp_path / "work"),
    )  # fmt: skip
    assert sweep.run_sweep(cfg) == 0
    record = json.loads((tmp_path / "out" / "server.json").read_text())
    assert record["container"] == {
        "runtime": "docker", "image": image, "args": [],
        "digest": "ggml/llama@sha256:" + "b" * 64,
    }  # fmt: skip
    assert record["version"]["version"] == "version: 6000 (abc1234)"
    assert record["version"]["argv"][:2] == ["docker", "run"]
    assert record["argv"][:4] == ["docker", "run", "--rm", "--init"]
    made = calls(log)
    server = made[-2]["argv"]
    name = server[server.index("--name") + 1]
    assert [c["argv"][:2] for c in made] == [
        ["run", "--rm"], ["image", "inspect"], ["run", "--rm"], ["rm", "--force"]
    ]  # fmt: skip
    assert made[-1]["argv"] == ["rm", "--force", name] and name.startswith("enginebench-llamacpp-")
    assert all(c["secret"] == SECRET for c in made)  # by environment, to -e HF_TOKEN
    assert not any(SECRET in arg for c in made for arg in c["argv"])
    assert SECRET not in (tmp_path / "out" / "server.json").read_text()


FAKE_APPTAINER = """\
#!{python}
import json, os, sys
seen = sorted(k for k in os.environ if k.startswith("APPTAINERENV_"))
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": seen}}) + "\\n")
print("0.10.1")
"""


def test_version_probed_inside_the_image_with_apptainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    fake, log = tmp_path / "bin" / "apptainer", tmp_path / "apptainer.jsonl"
    fake.write_text(FAKE_APPTAINER.format(python=sys.executable, log=str(log)))
    fake.chmod(0o755)
    spec, sif = get_engine("vllm"), str(tmp_path / "vllm.sif")
    opts = {"container": {"image": sif, "runtime": "apptainer"}}
    ctx = in_image(spec, ServerContext("/m/hf", "tiny", options=opts))
    base = {**HOST_ENV, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env = server_env(spec.env(ctx), ["HF_TOKEN"], base=base)
    box = Container.from_options(spec, opts)
    assert box is not None
    wrap = wrapper(box, spec, ctx, env, [*spec.env(ctx), "HF_TOKEN"])
    version = sweep.engine_version(spec, ctx, env, wrap)
    assert version["version"] == "0.10.1"
    assert version["argv"] == [
        "apptainer", "exec", "--cleanenv", "--bind", "/m/hf:/m/hf:ro", sif,
        "python3", "-c", VERSION_CODE.format(module="vllm"),
    ]  # fmt: skip
    (call,) = calls(log)
    assert "APPTAINERENV_HF_TOKEN" in call["env"] and SECRET not in json.dumps(call)
