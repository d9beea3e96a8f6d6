"""Provenance helpers: hashing, secret filtering, host/GPU parsing, versions."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from enginebench import provenance as prov

# -- hashing ----------------------------------------------------------------------------------


def test_sha256_file_streams_and_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a partial one
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert prov.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert prov.sha256_file(path, chunk_size=1000) == hashlib.sha256(data).hexdigest()


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return root


FILES = {"config.json": b"{}", "b/weights.bin": b"\x00" * 100, "a.txt": b"hello"}


def test_sha256_tree_is_the_sha256sum_listing(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    listing = "".join(f"{hashlib.sha256(FILES[rel]).hexdigest()}  {rel}\n" for rel in sorted(FILES))
    assert prov.sha256_tree(root) == hashlib.sha256(listing.encode()).hexdigest()
    assert prov.tree_files(root) == ["a.txt", "b/weights.bin", "config.json"]


def test_sha256_tree_stable_across_location_order_and_mtime(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", FILES)
    two = _tree(tmp_path / "elsewhere" / "two", dict(reversed(list(FILES.items()))))
    os.utime(two / "a.txt", (1, 1))
    assert prov.sha256_tree(one) == prov.sha256_tree(two)


def test_sha256_tree_sees_content_and_names_not_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m", FILES)
    base = prov.sha256_tree(root)
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / ".cache" / "huggingface" / "x.metadata").write_text("timestamp 123")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    assert prov.sha256_tree(root) == base  # hub download metadata and .git do not count
    (root / "a.txt").write_bytes(b"hellO")
    changed = prov.sha256_tree(root)
    assert changed != base
    (root / "a.txt").rename(root / "c.txt")
    assert prov.sha256_tree(root) not in (base, changed)


def test_sha256_tree_follows_file_symlinks(tmp_path: Path) -> None:
    """HF snapshots hold symlinks into blobs/: the content is hashed, not the link."""
    real = _tree(tmp_path / "real", {"w.bin": b"weights"})
    linked = tmp_path / "linked"
    linked.mkdir()
    blob = tmp_path / "blob"
    blob.write_bytes(b"weights")
    (linked / "w.bin").symlink_to(blob)
    assert prov.sha256_tree(real) == prov.sha256_tree(linked)


# -- secrets ----------------------------------------------------------------------------------

SECRET_ENV = {
    "HF_TOKEN": "hf_abc",
    "OPENAI_API_KEY": "sk-1",
    "AWS_SECRET_ACCESS_KEY": "x",
    "PGPASSWORD": "pw",
    "VLLM_API_KEY": "k",
    "GITHUB_TOKEN": "t",
}


def test_safe_env_drops_secrets_even_when_asked_for() -> None:
    env = {**SECRET_ENV, "OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "0", "HOME": "/root"}
    kept = prov.safe_env(env)
    assert kept == {"CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "4"}
    everything = prov.safe_env(env, keep=["*"])
    assert set(everything) == {"OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HOME"}
    assert prov.safe_env(env, keep=["HF_TOKEN", "VLLM_*"]) == {}


def test_safe_env_globs_and_url_credentials() -> None:
    env = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_PROXY": "http://user:pw@proxy:3128", "X": "1"}
    kept = prov.safe_env(env, keep=["VLLM_*"])
    assert kept == {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_PROXY": "http://<redacted>@proxy:3128"}
    assert prov.safe_env({"OMP_NUM_THREADS": "1"}, keep=[]) == {}


def test_safe_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    kept = prov.safe_env()
    assert kept["OMP_NUM_THREADS"] == "3" and "HF_TOKEN" not in kept
    assert "hf_secret" not in repr(kept)


def test_redact_argv_masks_secret_options_only() -> None:
    argv = [
        "vllm", "serve", "--api-key", "sk-1", "--hf-token=hf_x", "--max-num-batched-tokens",
        "512", "--max-tokens", "64", "--password", "pw", "--url", "https://u:p@host/x",
    ]  # fmt: skip
    assert prov.redact_argv(argv) == [
        "vllm", "serve", "--api-key", "<redacted>", "--hf-token=<redacted>",
        "--max-num-batched-tokens", "512", "--max-tokens", "64", "--password", "<redacted>",
        "--url", "https://<redacted>@host/x",
    ]  # fmt: skip


# -- host -------------------------------------------------------------------------------------

CPUINFO_X86 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile avx_vnni
physical id\t: 0
core id\t\t: 0

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile avx_vnni
physical id\t: 0
core id\t\t: 0

processor\t: 2
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 1
"""

CPUINFO_ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes sve sve2 i8mm bf16 asimddp
CPU implementer\t: 0x41
"""


def test_parse_cpuinfo_x86() -> None:
    cpu = prov.parse_cpuinfo(CPUINFO_X86)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["flags"] == [
        "amx_bf16", "amx_tile", "avx2", "avx512_bf16", "avx512_vnni", "avx512f", "avx_vnni",
    ]  # fmt: skip
    assert cpu["physical_cores"] == 2  # 3 threads on 2 cores


def test_parse_cpuinfo_arm_and_empty() -> None:
    cpu = prov.parse_cpuinfo(CPUINFO_ARM)
    assert cpu["flags"] == ["asimd", "asimddp", "bf16", "i8mm", "sve", "sve2"]
    assert cpu["model"] is None and cpu["physical_cores"] is None
    assert prov.parse_cpuinfo("") == {"model": None, "flags": [], "physical_cores": None}


SMI_CSV = (
    "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\nNVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n"
)
SMI_BANNER = "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |"


def test_parse_nvidia_smi() -> None:
    gpu = prov.parse_nvidia_smi(SMI_CSV, SMI_BANNER)
    assert gpu is not None
    assert gpu["count"] == 2 and gpu["driver_version"] == "550.54.15"
    assert gpu["cuda_version"] == "12.4"
    assert gpu["devices"][0] == {
        "name": "NVIDIA H100 80GB HBM3",
        "driver_version": "550.54.15",
        "memory_total": "81559 MiB",
    }
    assert prov.parse_nvidia_smi("") is None
    assert prov.parse_nvidia_smi(SMI_CSV)["cuda_version"] is None  # type: ignore[index]


def test_collect_gpu_none_without_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prov.collect_gpu() is None


def test_collect_gpu_with_a_fake_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$#" -gt 0 ]; then printf "{SMI_CSV.splitlines()[0]}\\n"; '
        f'else echo "{SMI_BANNER}"; fi\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    gpu = prov.collect_gpu()
    assert gpu is not None and gpu["count"] == 1 and gpu["cuda_version"] == "12.4"


def test_collect_host_shape() -> None:
    host = prov.collect_host()
    assert {"hostname", "os", "os_release", "kernel", "arch", "cpu", "memory_bytes", "gpu"} <= set(
        host
    )
    assert host["cpu"]["logical_cores"] >= 1 and host["cpu"]["usable_cores"] >= 1
    assert host["memory_bytes"] is None or host["memory_bytes"] > 2**20
    assert all(re.match(r"avx|amx|asimd|sve|i8mm|bf16", f) for f in host["cpu"]["flags"])


# -- versions ---------------------------------------------------------------------------------


def test_versions_and_time() -> None:
    from enginebench import __version__

    assert prov.enginebench_version() == __version__
    assert prov.snakemake_version() is None or re.match(r"\d+\.", prov.snakemake_version() or "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", prov.now_iso())


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


def test_git_info_commit_and_dirty(tmp_path: Path) -> None:
    assert prov.git_info(tmp_path) is None  # not a repository
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.txt").write_text("1")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    info = prov.git_info(tmp_path)
    assert info is not None and re.fullmatch(r"[0-9a-f]{40}", info["commit"])
    assert info["dirty"] is False
    (tmp_path / "f.txt").write_text("2")
    assert prov.git_info(tmp_path)["dirty"] is True  # type: ignore[index]


def test_parse_pip_freeze() -> None:
    text = (
        "# comment\nnumpy==2.4.6\nmypkg @ git+https://user:tok@example.invalid/r.git@abc\n"
        "-e git+https://example.invalid/x.git#egg=x\nPandas==3.1.1\n"
    )
    assert prov.parse_pip_freeze(text) == {
        "-e git+https://example.invalid/x.git#egg=x": "editable",
        "mypkg": "@ git+https://<redacted>@example.invalid/r.git@abc",
        "numpy": "2.4.6",
        "Pandas": "3.1.1",
    }


def test_package_versions_of_this_venv() -> None:
    found = prov.package_versions(sys.executable)
    lowered = {k.lower(): v for k, v in found.items()}
    import pandas

    assert lowered["pandas"] == pandas.__version__


def test_package_versions_without_pip(tmp_path: Path) -> None:
    """A venv made without pip (uv-style) still lists its packages through importlib.metadata."""
    venv.create(tmp_path / "v", with_pip=False, system_site_packages=False)
    python = tmp_path / "v" / "bin" / "python"
    found = prov.package_versions(python)
    assert isinstance(found, dict) and "pandas" not in {k.lower() for k in found}
    assert prov.package_versions(tmp_path / "missing-python") == {}


def test_run_provenance_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    record = prov.run_provenance(
        engine="llamacpp",
        model="tiny",
        quant="q8_0",
        engine_version="b1",
        server_argv=["llama-server", "--api-key", "sk-secret", "-m", "m.gguf"],
        seed=3,
    )
    assert tuple(record) == prov.SERVER_JSON_KEYS
    assert record["server_argv"] == ["llama-server", "--api-key", "<redacted>", "-m", "m.gguf"]
    assert record["env"]["OMP_NUM_THREADS"] == "2"
    assert "secret" not in repr(record)
    assert record["packages"] is None and record["host"]["hostname"]
