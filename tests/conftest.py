"""Shared fixtures. Heavy imports happen inside fixtures, so collection and unit tests stay fast.

llama.cpp (source and build) is made by the workflow itself under resources/engines/, so tests,
`make run` and the end-to-end tests share one build. Models and GGUFs live in test_cache
(resources/test-cache, reused across runs; a fresh CI checkout builds it once per run), keyed by
the code that makes them, so a change to the synthesizer gives a new entry, not a stale one.

Environment overrides (development):
  ENGINEBENCH_TEST_CACHE        another cache dir
  ENGINEBENCH_LLAMACPP_SRC      an existing llama.cpp source tree (skips the sdist fetch)
  ENGINEBENCH_LLAMACPP_BIN_DIR  a folder with llama-server and llama-quantize (skips the build)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The llama.cpp the tests build: the one vendored by this llama-cpp-python sdist on PyPI.
LLAMACPP_SDIST_VERSION = "0.3.36"


def _code_key(*modules: str) -> str:
    h = hashlib.sha256()
    for m in modules:
        h.update((REPO_ROOT / "enginebench" / m).read_bytes())
    return h.hexdigest()[:12]


def _cached(path: Path, make: Callable[[], Any]) -> Path:
    """Run make() unless path exists; make() must create path atomically. The lock keeps two
    test sessions (other modules, other worktrees sharing the cache) from making it twice."""
    from enginebench.models.files import file_lock

    if not path.exists():
        with file_lock(path.parent / f".{path.name}.lock"):
            if not path.exists():
                make()
    return path


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained HF tokenizer (BOS added like Llama's), for the load generator's tests."""
    from tests.test_loadgen_support import make_tokenizer_dir

    return make_tokenizer_dir(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path) -> Any:
    from enginebench.loadgen.tokenizer import load_tokenizer

    return load_tokenizer(str(tokenizer_dir))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_cache(repo_root: Path) -> Path:
    path = Path(os.environ.get("ENGINEBENCH_TEST_CACHE") or repo_root / "resources" / "test-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(test_cache: Path) -> Path:
    """Synthetic tiny-llama (seed 0, float32) in HF layout."""
    from enginebench.models.synthetic import synthesize

    key = _code_key("models/synthetic.py", "models/tokenizer.py")
    out = test_cache / "models" / f"tiny-llama-{key}" / "hf"
    return _cached(out, lambda: synthesize("tiny-llama", out, seed=0))


# --- llama.cpp: session-scoped builders, reached only through the guarded fixtures below ---


def _workflow_target(relpath: str) -> Path:
    """Make `relpath` with the workflow itself (default config, repo root), so the tests use the
    very llama.cpp source and build that `make run` and the end-to-end tests use: one build per
    checkout (a warm ccache makes it ~1.5 min instead of ~12)."""
    import subprocess
    import sys

    target = REPO_ROOT / relpath
    if not target.exists():
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", str(os.cpu_count() or 1), relpath],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"snakemake {relpath} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
    return target


@pytest.fixture(scope="session")
def _llama_cpp_src(test_cache: Path) -> Path:
    if env := os.environ.get("ENGINEBENCH_LLAMACPP_SRC"):
        return Path(env)
    return _workflow_target(f"resources/engines/llamacpp/src-pypi-{LLAMACPP_SDIST_VERSION}")


@pytest.fixture(scope="session")
def _llama_bin_dir(test_cache: Path, _llama_cpp_src: Path) -> Path:
    if env := os.environ.get("ENGINEBENCH_LLAMACPP_BIN_DIR"):
        return Path(env)
    rel = f"resources/engines/llamacpp/pypi-{LLAMACPP_SDIST_VERSION}-cpu/bin/build.json"
    return _workflow_target(rel).parent


@pytest.fixture(scope="session")
def _tiny_ggufs(
    test_cache: Path, tiny_model_dir: Path, _llama_cpp_src: Path, _llama_bin_dir: Path
) -> dict[str, Path]:
    from enginebench.models.gguf import convert_hf_to_gguf, quantize

    tools = f"{_llama_cpp_src.resolve()}|{_llama_bin_dir.resolve()}"
    key = hashlib.sha256(tools.encode()).hexdigest()[:12]
    d = test_cache / "models" / tiny_model_dir.parent.name / f"gguf-{key}"
    d.mkdir(parents=True, exist_ok=True)
    f16, q4 = d / "F16.gguf", d / "Q4_K_M.gguf"
    _cached(f16, lambda: convert_hf_to_gguf(tiny_model_dir, f16, _llama_cpp_src, "f16"))
    _cached(q4, lambda: quantize(_llama_bin_dir / "llama-quantize", f16, q4, "Q4_K_M"))
    return {"F16": f16, "Q4_K_M": q4}


# The guard runs before the session fixture is requested, so a wrongly marked test fails at once
# instead of first building llama.cpp.
def _engine_fixture(request: pytest.FixtureRequest, name: str) -> Any:
    if request.node.get_closest_marker("engines") is None:
        pytest.fail(f"fixture {request.fixturename!r} is for tests marked @pytest.mark.engines")
    return request.getfixturevalue(name)


@pytest.fixture
def llama_cpp_src(request: pytest.FixtureRequest) -> Path:
    return Path(_engine_fixture(request, "_llama_cpp_src"))


@pytest.fixture
def llama_server_bin(request: pytest.FixtureRequest) -> Path:
    return Path(_engine_fixture(request, "_llama_bin_dir")) / "llama-server"


@pytest.fixture
def llama_quantize_bin(request: pytest.FixtureRequest) -> Path:
    return Path(_engine_fixture(request, "_llama_bin_dir")) / "llama-quantize"


@pytest.fixture
def tiny_gguf(request: pytest.FixtureRequest) -> Path:
    """F16 GGUF of tiny_model_dir."""
    return Path(_engine_fixture(request, "_tiny_ggufs")["F16"])


@pytest.fixture
def tiny_gguf_q4(request: pytest.FixtureRequest) -> Path:
    """Q4_K_M GGUF of tiny_model_dir."""
    return Path(_engine_fixture(request, "_tiny_ggufs")["Q4_K_M"])
