"""llama.cpp source fetch (offline: local sdist, local git) and the CMake command lines."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from enginebench.engines import build
from enginebench.engines.build import BuildError, fetch_llamacpp_source

GIT = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]


def _git_repo(path: Path, *files: str, gitdir: Path | None = None) -> str:
    path.mkdir(parents=True, exist_ok=True)
    separate = ["--separate-git-dir", str(gitdir)] if gitdir else []
    if gitdir:
        gitdir.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "master", *separate, str(path)], check=True)
    for f in files:
        (path / f).write_text(f"# {f}\n")
    subprocess.run([*GIT, "-C", str(path), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(path), "commit", "-q", "-m", "c"], check=True)
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip()


def _sdist(
    tmp: Path, version: str = "9.9.9", vendor: bool = True, submodule: bool = False
) -> tuple[Path, str]:
    """A miniature llama-cpp-python sdist whose vendor/llama.cpp is a git checkout (or, like the
    real one, a submodule: a .git file pointing at <top>/.git/modules/vendor/llama.cpp)."""
    top = tmp / "stage" / f"llama_cpp_python-{version}"
    (top).mkdir(parents=True)
    (top / "pyproject.toml").write_text("[project]\n")
    commit = ""
    if vendor:
        files = ("CMakeLists.txt", "convert_hf_to_gguf.py")
        gitdir = top / ".git" / "modules" / "vendor" / "llama.cpp" if submodule else None
        commit = _git_repo(top / "vendor" / "llama.cpp", *files, gitdir=gitdir)
    out = tmp / "dl" / f"llama_cpp_python-{version}.tar.gz"
    out.parent.mkdir(exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return out, commit


def test_fetch_from_local_sdist_file_and_pip_dir(tmp_path: Path) -> None:
    sdist, commit = _sdist(tmp_path)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    info = fetch_llamacpp_source(tmp_path / "src", sdist=sdist, sha256=digest)
    assert info["commit"] == commit and info["version"] == "9.9.9"
    assert info["sdist_sha256"] == digest
    src = tmp_path / "src"
    assert (src / "CMakeLists.txt").is_file() and not (src / "pyproject.toml").exists()
    # a `pip download -d DIR` folder works too, picked by version
    again = fetch_llamacpp_source(tmp_path / "src2", version="9.9.9", sdist=sdist.parent)
    assert again["commit"] == commit


def test_sdist_with_submodule_git_dir(tmp_path: Path) -> None:
    sdist, commit = _sdist(tmp_path, submodule=True)
    info = fetch_llamacpp_source(tmp_path / "src", sdist=sdist)
    assert info["commit"] == commit
    assert (tmp_path / "src" / ".git").is_dir()  # the pointer file became the real git dir
    status = subprocess.run(
        ["git", "-C", str(tmp_path / "src"), "status", "--porcelain"], capture_output=True
    )
    assert status.returncode == 0 and status.stdout == b""


def test_sdist_errors(tmp_path: Path) -> None:
    sdist, _ = _sdist(tmp_path)
    with pytest.raises(BuildError, match=r"sha256 .* != expected"):
        fetch_llamacpp_source(tmp_path / "a", sdist=sdist, sha256="0" * 64)
    with pytest.raises(BuildError, match=r"expected one llama_cpp_python-1\.0\.tar\.gz, found 0"):
        fetch_llamacpp_source(tmp_path / "a", version="1.0", sdist=sdist.parent)
    bare, _ = _sdist(tmp_path / "bare", vendor=False)
    with pytest.raises(BuildError, match=r"no vendor/llama\.cpp/ inside"):
        fetch_llamacpp_source(tmp_path / "a", sdist=bare)
    assert not (tmp_path / "a").exists()  # nothing half-extracted is left behind


def test_sdist_member_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "llama_cpp_python-6.6.6.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name in ("top/vendor/llama.cpp/CMakeLists.txt", "top/vendor/llama.cpp/../../../x"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(BuildError, match="unsafe member refused"):
        fetch_llamacpp_source(tmp_path / "src", sdist=evil)
    assert not (tmp_path / "x").exists()


def test_fetch_git_resolves_branch_and_commit(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    first = _git_repo(upstream, "CMakeLists.txt")
    (upstream / "new.txt").write_text("2")
    subprocess.run([*GIT, "-C", str(upstream), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(upstream), "commit", "-q", "-m", "2"], check=True)
    url = f"file://{upstream}"
    head = fetch_llamacpp_source(tmp_path / "a", commit="master", git_url=url)
    assert head["ref"] == "master" and head["commit"] != first and len(head["commit"]) == 40
    pinned = fetch_llamacpp_source(tmp_path / "b", commit=first, git_url=url)
    assert pinned["commit"] == first and not (tmp_path / "b" / "new.txt").exists()
    with pytest.raises(BuildError, match=r"git fetch nope from file://.* failed \(exit 128\)"):
        fetch_llamacpp_source(tmp_path / "c", commit="nope", git_url=url)


def test_fetch_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either"):
        fetch_llamacpp_source(tmp_path, version="1", commit="abc")
    with pytest.raises(ValueError, match="give version="):
        fetch_llamacpp_source(tmp_path)
    argv = build.pip_download_argv("0.3.36", tmp_path)
    assert argv[1:] == [
        "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "llama-cpp-python==0.3.36", "-d", str(tmp_path),
    ]  # fmt: skip


def test_cmake_argv_cpu_and_cuda(tmp_path: Path) -> None:
    cpu = build.cmake_configure_argv(tmp_path / "s", tmp_path / "b", "cpu", ["-DGGML_NATIVE=OFF"])
    assert cpu[:7] == ["cmake", "-S", str(tmp_path / "s"), "-B", str(tmp_path / "b"), "-G", "Ninja"]
    for flag in ("-DLLAMA_CURL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DGGML_CCACHE=ON"):
        assert flag in cpu
    assert not any("CUDA" in a for a in cpu)
    assert cpu[-1] == "-DGGML_NATIVE=OFF"  # user flags last, so they win
    cuda = build.cmake_configure_argv(tmp_path, tmp_path / "b", "cuda", cuda_architectures="90")
    assert "-DGGML_CUDA=ON" in cuda and "-DCMAKE_CUDA_ARCHITECTURES=90" in cuda
    # the cuda build compiles the same CPU objects with the same flags (ccache shares them)
    assert [a for a in cuda if "CUDA" not in a][7:] == [a for a in cpu if a != cpu[-1]][7:]
    with pytest.raises(ValueError, match="backend 'rocm'"):
        build.cmake_configure_argv(tmp_path, tmp_path, "rocm")
    assert build.cmake_build_argv(tmp_path, 3)[3:] == [
        "--target", "llama-server", "llama-quantize", "llama-bench", "-j", "3",
    ]  # fmt: skip
    env = build.ccache_env(tmp_path)
    assert env == {"CCACHE_BASEDIR": str(tmp_path.resolve()), "CCACHE_NOHASHDIR": "1"}


def test_every_build_sees_its_source_at_one_relative_place(tmp_path: Path) -> None:
    """Two commits' sources, wherever they are: each build compiles `../llama.cpp/...` from
    its `build/` (ccache hits across commits); a build folder configured from the source's own
    path is started over; a non-link in the way is refused."""
    a, b = tmp_path / "src-a", tmp_path / "src-b"
    a.mkdir(), b.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    link = build.source_link(root, a)
    assert link == root / "llama.cpp" and link.resolve() == a
    argv = build.cmake_configure_argv(link, root / "build")
    assert argv[argv.index("-S") + 1] == str(root / "llama.cpp")
    (root / "build").mkdir()
    (root / "build" / "CMakeCache.txt").write_text(f"CMAKE_HOME_DIRECTORY:INTERNAL={link}\n")
    assert build.source_link(root, a) == link and (root / "build").is_dir()  # same: kept
    assert build.source_link(root, b).resolve() == b  # the link follows the source given
    # a build folder configured from the source's own path (the layout before the link)
    (root / "build" / "CMakeCache.txt").write_text(f"CMAKE_HOME_DIRECTORY:INTERNAL={b}\n")
    build.source_link(root, b)
    assert not (root / "build").exists()  # started over
    link.unlink()
    link.mkdir()
    with pytest.raises(BuildError, match="is not a link"):
        build.source_link(root, a)


def test_build_refuses_a_non_source_dir(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"not a llama\.cpp source tree"):
        build.build_llamacpp(tmp_path, tmp_path / "out")


def test_build_failure_names_the_error_and_keeps_the_log(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text('project(x NONE)\nmessage(FATAL_ERROR "boom: no cc")\n')
    with pytest.raises(BuildError, match=r"cmake configure failed \(exit 1\): .*boom") as e:
        build.build_llamacpp(src, tmp_path / "out")
    log = tmp_path / "out" / "build" / "build.log"
    assert str(log) in str(e.value) and "boom: no cc" in log.read_text()


@pytest.mark.engines
def test_built_binaries_run_from_their_folder(
    llama_server_bin: Path, llama_quantize_bin: Path
) -> None:
    version = subprocess.run(
        [str(llama_server_bin), "--version"], capture_output=True, text=True, check=True
    )
    assert "version:" in version.stdout + version.stderr
    ldd = subprocess.run(["ldd", str(llama_quantize_bin)], capture_output=True, text=True).stdout
    libs = [ln.split(" => ")[1].split(" (")[0] for ln in ldd.splitlines() if "libllama" in ln]
    assert libs and all(Path(p).parent == llama_quantize_bin.parent for p in libs)
