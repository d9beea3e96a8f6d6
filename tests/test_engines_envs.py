"""envs/ files and the venv builder (offline: a local wheel, `--no-index`)."""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from enginebench.engines import envs
from enginebench.engines.installer import ENV_VAR, pip_settings, uv_options
from enginebench.engines.registry import ENGINES

ROOT = Path(__file__).resolve().parents[1]


def test_key_is_hash_of_file_bytes(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text("dependencies: [python=3.11, pip, {pip: [six==1.16.0]}]\n")
    key = envs.env_key(f)
    assert key == hashlib.sha256(f.read_bytes()).hexdigest()[: envs.KEY_LEN]
    assert envs.env_dir("resources/envs", "vllm", f) == Path(f"resources/envs/vllm-{key}")
    f.write_text(f.read_text() + "# a comment changes the file, so the key\n")
    assert envs.env_key(f) != key


def test_read_env_file(tmp_path: Path) -> None:
    f = tmp_path / "e.yaml"
    f.write_text(
        "channels: [conda-forge]\n"
        "dependencies:\n  - python=3.11\n  - pip\n  - openmpi\n"
        "  - pip:\n      - --extra-index-url https://example.invalid/simple\n      - a==1\n"
    )
    spec = envs.read_env_file(f)
    assert spec.python == "3.11"
    assert spec.pip == ("--extra-index-url https://example.invalid/simple", "a==1")
    assert spec.conda_only == ("openmpi",)
    (tmp_path / "bad.yaml").write_text("name: x\n")
    with pytest.raises(envs.EnvBuildError):
        envs.read_env_file(tmp_path / "bad.yaml")


ENGINE_ENV_FILES = sorted({ROOT / str(s.env_file) for s in ENGINES.values() if s.env_file})


@pytest.mark.parametrize("path", ENGINE_ENV_FILES, ids=lambda p: p.name)
def test_repo_env_files_are_pinned_conda_files(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert data["channels"] and "pip" in data["dependencies"]
    spec = envs.read_env_file(path)
    assert spec.python == "3.11"
    reqs = [r for r in spec.pip if not r.startswith("-")]
    assert any("==" in r for r in reqs)
    if any(r.startswith("torch==") for r in reqs) and "vllm" in path.name:
        assert "torch==2.13.0" in reqs  # the CPU wheel on disk; looser pulls CUDA


def test_venv_engines_point_at_existing_env_files() -> None:
    for spec in ENGINES.values():
        if spec.software == "venv":
            assert (ROOT / str(spec.env_file)).is_file(), spec.name


def _wheel(dest: Path, name: str = "ebdemo", version: str = "0.1") -> Path:
    """A minimal pure-Python wheel, so the builder is tested without any index."""
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = '{version}'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(whl, "w") as z:
        for arc, text in files.items():
            z.writestr(arc, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            record.append(f"{arc},sha256={digest.decode()},{len(text)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return whl


@pytest.fixture(params=["uv", "pip"])
def installer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each venv test with both installers (uv is a workflow dependency: it must be there)."""
    if request.param == "uv" and (unknown := uv_options(pip_settings(sys.executable))[2]):
        pytest.skip(f"this machine's pip settings {unknown} have no uv option: pip installs")
    monkeypatch.setenv(ENV_VAR, request.param)
    return str(request.param)


def test_build_venv_reuse_and_rebuild(tmp_path: Path, installer: str) -> None:
    whl = _wheel(tmp_path)
    f = tmp_path / "demo.yaml"
    f.write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n"
        f"  - pip:\n      - --no-index\n      - {whl}\n"
    )
    dest = envs.env_dir(tmp_path / "envs", "demo", f) / "venv"
    fix = [["-c", f"open({str(tmp_path / 'fixed.txt')!r}, 'w').write('ok')"]]
    info = envs.build_venv(f, dest, post_install=fix, import_check="ebdemo")
    assert info["import_version"] == "0.1" and info["key"] == envs.env_key(f)
    assert info["installer"].startswith(installer)
    assert any(line.startswith("ebdemo") for line in info["freeze"])
    assert info["python"] == str(envs.python_of(dest)) and envs.python_of(dest).exists()
    assert envs.read_marker(dest) == info
    # same file, same fixes: reused as is (no rebuild: build time unchanged)
    assert envs.build_venv(f, dest, post_install=fix, import_check="ebdemo") == info
    # other fixes: rebuilt (here failing its import check, which leaves no marker)
    with pytest.raises(envs.EnvBuildError, match="import nosuchmodule"):
        envs.build_venv(f, dest, post_install=[], import_check="nosuchmodule")
    assert envs.read_marker(dest) is None


def test_build_venv_reports_pip_failure(tmp_path: Path, installer: str) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("dependencies:\n  - pip\n  - pip:\n      - --no-index\n      - nosuchpkg==1\n")
    with pytest.raises(envs.EnvBuildError, match="pip install"):
        envs.build_venv(f, tmp_path / "v")
