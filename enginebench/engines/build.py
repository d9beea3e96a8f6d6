"""llama.cpp from source: fetch (PyPI sdist of llama-cpp-python, or a git commit) and CMake build.

The sdist route needs only PyPI: llama-cpp-python vendors the whole llama.cpp tree, as a git
checkout whose commit we record. The git route is for machines that reach GitHub
(`enginebench.engines.source.fetch_git`, shared with the engines that run code from a checkout);
a branch or tag is resolved to the commit actually built.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enginebench import proc
from enginebench.engines.llamacpp import DEFAULT_GIT_URL
from enginebench.engines.source import SourceError, fetch_git, git_head
from enginebench.models.files import atomic_dir, file_lock, sha256_file

SDIST_PROJECT = "llama-cpp-python"
TARGETS = ("llama-server", "llama-quantize", "llama-bench")
# Compile-affecting flags: keep them stable, the ccache key depends on them.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # would download the web UI at configure time
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DGGML_CCACHE=ON",
)
# Link-only: RUNPATH=$ORIGIN lets the binaries find the shared libs copied next to them, and it
# changes no compile command, so ccache entries made without it still hit.
LINK_FLAGS = ("-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",)
BACKENDS = ("cpu", "cuda")
_SDIST_RE = re.compile(r"llama_cpp_python-(?P<version>[^/]+)\.tar\.gz$")


# AMX: on a host whose CPU advertises it (seen: a Firecracker VM with AMX-INT8/BF16 in
# /proc/cpuinfo), -march=native (GGML_NATIVE) compiles ggml's AMX kernels in, and llama-server
# (llama-cpp-python 0.3.36's tree) died with SIGILL at `tilezero` on the first Q4_K_M matmul
# (F16 ran). Small programs that request the tile state and use it (threads, context switches)
# ran there, so no cheap probe tells; the CPU build leaves AMX out wherever it is advertised
# (GCC's explicit -mno-* win over what -march=native implies) and says so in build.json.
# `cmake_flags: ["-DCMAKE_C_FLAGS=", "-DCMAKE_CXX_FLAGS="]` puts it back.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def amx_advertised() -> bool:
    try:
        return platform.machine() == "x86_64" and "amx_" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


class BuildError(RuntimeError):
    """Fetching or building llama.cpp failed; the message is one line."""


def fetch_llamacpp_source(
    dest: Path,
    *,
    version: str | None = None,
    sdist: Path | None = None,
    sha256: str | None = None,
    commit: str | None = None,
    git_url: str | None = None,
) -> dict[str, Any]:
    """Put a llama.cpp source tree at dest; exactly one of (version / sdist) or commit.

    sdist may be the .tar.gz itself or a `pip download -d` folder holding it; without it the
    sdist is fetched with pip. sha256 pins the sdist file. commit may be a sha, tag or branch:
    the resolved sha is recorded.
    """
    dest = Path(dest)
    if (version or sdist) and commit:
        raise ValueError("give either an sdist version/file or a git commit, not both")
    if commit:
        return _fetch_git(dest, commit, git_url or DEFAULT_GIT_URL)
    if not (version or sdist):
        raise ValueError(
            "give version= (llama-cpp-python on PyPI), sdist= (a local file) or commit="
        )
    with tempfile.TemporaryDirectory() as dl:
        path = _find_sdist(Path(sdist), version) if sdist else _pip_download(version, Path(dl))
        digest = sha256_file(path)
        if sha256 and digest != sha256.lower():
            raise BuildError(f"{path.name}: sha256 {digest} != expected {sha256}")
        match = _SDIST_RE.search(path.name)
        version = version or (match["version"] if match else None)
        _extract_vendor(path, dest)
    return {
        "source": "sdist",
        "project": SDIST_PROJECT,
        "version": version,
        "sdist": path.name,
        "sdist_sha256": digest,
        "commit": _git_head(dest) if (dest / ".git").exists() else None,
        "src_dir": str(dest.resolve()),
    }


def pip_download_argv(version: str, dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"{SDIST_PROJECT}=={version}", "-d", str(dest)]  # fmt: skip


def _pip_download(version: str | None, dl: Path) -> Path:
    assert version
    proc.run(pip_download_argv(version, dl), what="pip download", error=BuildError)
    return _find_sdist(dl, version)


def _find_sdist(path: Path, version: str | None) -> Path:
    if path.is_file():
        return path
    pattern = f"llama_cpp_python-{version}.tar.gz" if version else "llama_cpp_python-*.tar.gz"
    found = sorted(path.glob(pattern)) if path.is_dir() else []
    if len(found) != 1:
        raise BuildError(f"{path}: expected one {pattern}, found {len(found)}")
    return found[0]


def _extract_vendor(sdist: Path, dest: Path) -> None:
    """Extract <top>/vendor/llama.cpp/ of the sdist as dest.

    The vendored tree is a git submodule whose git dir sits at <top>/.git/modules/vendor/llama.cpp:
    it becomes dest/.git, so that `git rev-parse` and llama.cpp's own build info (the commit in
    `llama-server --version`) work in the extracted tree.
    """
    with tarfile.open(sdist) as tar, atomic_dir(dest, overwrite=True) as tmp:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        top = next(iter(tops)) if len(tops) == 1 else ""
        renames = {f"{top}/vendor/llama.cpp/": "", f"{top}/.git/modules/vendor/llama.cpp/": ".git/"}
        chosen = []
        for m in members:
            for old, new in renames.items():
                if top and m.name.startswith(old):
                    m.name = new + m.name[len(old) :]
                    chosen.append(m)
                    break
        if not any(m.name == "CMakeLists.txt" for m in chosen):
            raise BuildError(f"{sdist.name}: no vendor/llama.cpp/ inside")
        has_git_dir = any(m.name.startswith(".git/") for m in chosen)
        # the submodule's ".git" file (a gitdir: pointer) gives way to the real git dir
        chosen = [m for m in chosen if not (m.name == ".git" and m.isfile() and has_git_dir)]
        try:
            tar.extractall(tmp, members=chosen, filter="data")
        except tarfile.FilterError as e:  # a member escaping the tree, a device file, ...
            raise BuildError(f"{sdist.name}: unsafe member refused: {e}") from e
        if has_git_dir:  # the submodule's worktree setting points back into the sdist layout
            config = str(tmp / ".git" / "config")
            with contextlib.suppress(proc.CommandError):  # not set: nothing to undo
                proc.run(["git", "config", "--file", config, "--unset", "core.worktree"])


def _fetch_git(dest: Path, ref: str, url: str) -> dict[str, Any]:
    try:
        return fetch_git(dest, url, ref)
    except (SourceError, ValueError) as e:
        raise BuildError(str(e)) from e


def _git_head(repo: Path) -> str:
    try:
        return git_head(repo)
    except SourceError as e:
        raise BuildError(str(e)) from e


def find_tool(name: str) -> str:
    """A build tool on PATH, else next to this interpreter (pip's cmake / ninja in the venv)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise BuildError(f"{name} not found on PATH or in {Path(sys.executable).parent}")
    return found


def cmake_configure_argv(
    src_dir: Path,
    build_dir: Path,
    backend: str = "cpu",
    extra_cmake_flags: Sequence[str] = (),
    *,
    cuda_architectures: str = "90",
    cmake: str = "cmake",
) -> list[str]:
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} not one of {', '.join(BACKENDS)}")
    argv = [cmake, "-S", str(src_dir), "-B", str(build_dir), "-G", "Ninja", *CMAKE_FLAGS]
    if backend == "cuda":
        argv += ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}"]
    return [*argv, *LINK_FLAGS, *extra_cmake_flags]


def cmake_build_argv(
    build_dir: Path, jobs: int | None = None, *, cmake: str = "cmake"
) -> list[str]:
    return [
        cmake,
        "--build",
        str(build_dir),
        "--target",
        *TARGETS,
        "-j",
        str(jobs or os.cpu_count() or 1),
    ]


def ccache_env(root: Path) -> dict[str, str]:
    """ccache rewrites absolute paths under CCACHE_BASEDIR relative to the cwd (the build dir,
    itself not hashed with NOHASHDIR). The build folder and the source's link sit side by side
    in `root` (`source_link`), so every build, of any commit and any instance, compiles
    `../llama.cpp/<file>` from `build/`. Measured: with the source at its own path (named for
    its commit) a second commit's build missed 196 objects of 196; with the link, an object
    whose source did not change between two commits is a hit."""
    return {"CCACHE_BASEDIR": str(Path(root).resolve()), "CCACHE_NOHASHDIR": "1"}


SOURCE_LINK = "llama.cpp"


def source_link(root: Path, src_dir: Path) -> Path:
    """`root/llama.cpp` -> src_dir: the path CMake and the compiler see the source by (CMake
    keeps a link's path as given). A build folder configured from another source starts over."""
    link = root / SOURCE_LINK
    if link.exists() and not link.is_symlink():
        raise BuildError(f"{link} exists and is not a link: move it away")
    if link.is_symlink() and link.resolve() != src_dir:
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(src_dir, target_is_directory=True)
    cache = root / "build" / "CMakeCache.txt"
    if cache.is_file() and f"CMAKE_HOME_DIRECTORY:INTERNAL={link}\n" not in cache.read_text():
        shutil.rmtree(cache.parent)  # configured from another path (an older layout)
    return link


def build_llamacpp(
    src_dir: Path,
    out_dir: Path,
    backend: str = "cpu",
    extra_cmake_flags: Sequence[str] = (),
    jobs: int | None = None,
    *,
    cuda_architectures: str = "90",
    log: Path | None = None,
) -> dict[str, Any]:
    """Configure and build llama-server + llama-quantize; install them with their shared libs
    into out_dir/bin (RUNPATH $ORIGIN), check they run from there, return provenance."""
    src_dir, out_dir = Path(src_dir).resolve(), Path(out_dir).resolve()
    if not (src_dir / "CMakeLists.txt").is_file():
        raise BuildError(f"{src_dir}: no CMakeLists.txt, not a llama.cpp source tree")
    # Beside bin/: not inside the source tree, which is another rule's output.
    build_dir = out_dir / "build"
    cmake, ninja = find_tool("cmake"), find_tool("ninja")
    no_amx = amx_advertised()
    if no_amx:  # first: a user's own CMAKE_*_FLAGS in cmake_flags still win
        extra_cmake_flags = [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}",
                             *extra_cmake_flags]  # fmt: skip
    configure = cmake_configure_argv(
        out_dir / SOURCE_LINK, build_dir, backend, extra_cmake_flags,
        cuda_architectures=cuda_architectures, cmake=cmake,
    )  # fmt: skip
    configure.append(f"-DCMAKE_MAKE_PROGRAM={ninja}")  # pip's ninja may not be on PATH
    build = cmake_build_argv(build_dir, jobs, cmake=cmake)
    env = os.environ | ccache_env(out_dir)
    # Streamed, not captured: a 12-minute build shows progress, and a failure keeps its output.
    log = Path(log or build_dir / "build.log")
    out_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir / f".{build_dir.name}.lock"):
        source_link(out_dir, src_dir)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        t0 = time.perf_counter()
        proc.run(configure, what="cmake configure", error=BuildError, env=env, log=log)
        proc.run(build, what="cmake --build", error=BuildError, env=env, log=log)
        seconds = round(time.perf_counter() - t0, 1)
        _install(build_dir / "bin", out_dir / "bin")
    server = out_dir / "bin" / "llama-server"
    version = proc.run([str(server), "--version"], what="llama-server --version", error=BuildError)
    return {
        "backend": backend,
        "amx": f"left out ({NO_AMX}): see enginebench.engines.build.NO_AMX" if no_amx else None,
        "src_dir": str(src_dir),
        "configure_argv": configure,
        "build_argv": build,
        "cmake_version": proc.run([cmake, "--version"], error=BuildError).splitlines()[0],
        "seconds": seconds,
        "log": str(log),
        "version": version.strip(),
        "bin": {
            p.name: sha256_file(p)
            for p in sorted((out_dir / "bin").iterdir())
            if p.is_file() and not p.is_symlink()
        },
    }


def build_tool(out_dir: Path, name: str, jobs: int | None = None) -> Path:
    """One more llama.cpp tool (llama-perplexity) from a finished build's folder, installed
    into out_dir/tools beside nothing it needs: it runs with LD_LIBRARY_PATH=out_dir/bin (the
    build's own libraries). Apart from bin/, so the build's record and what depends on it
    stay as they are."""
    out_dir = Path(out_dir).resolve()
    build_dir = out_dir / "build"
    if not (build_dir / "build.ninja").is_file():
        raise BuildError(f"{build_dir}: no finished build to add {name} to")
    argv = [find_tool("cmake"), "--build", str(build_dir), "--target", name,
            "-j", str(jobs or os.cpu_count() or 1)]  # fmt: skip
    with file_lock(out_dir / f".{build_dir.name}.lock"):
        proc.run(argv, what=f"cmake --build --target {name}", error=BuildError,
                 env=os.environ | ccache_env(out_dir))  # fmt: skip
        (out_dir / "tools").mkdir(exist_ok=True)
        # the tool is a thin executable over its own lib<name>-impl.so (this llama.cpp's layout)
        for lib in (build_dir / "bin").glob(f"lib{name}-impl.so*"):
            shutil.copy2(lib, out_dir / "tools" / lib.name, follow_symlinks=False)
        dest = out_dir / "tools" / name
        shutil.copy2(build_dir / "bin" / name, dest)
    return dest


def _install(built: Path, bin_dir: Path) -> None:
    """Copy the targets and every shared lib (keeping soname symlinks) into bin_dir."""
    with atomic_dir(bin_dir, overwrite=True) as tmp:
        for name in TARGETS:
            if not (built / name).is_file():
                raise BuildError(f"{built / name} was not built")
            shutil.copy2(built / name, tmp / name)
        for lib in sorted(built.glob("*.so*")):
            shutil.copy2(lib, tmp / lib.name, follow_symlinks=False)
    for name in TARGETS:
        _check_libs(bin_dir / name)


def _check_libs(binary: Path) -> None:
    """Every llama/ggml library must resolve inside the binary's own folder (not the build dir)."""
    if not shutil.which("ldd"):
        return
    out = proc.run(["ldd", str(binary)], error=BuildError)
    for line in out.splitlines():
        lib, _, where = line.strip().partition(" => ")
        if lib.startswith(("libllama", "libggml", "libmtmd")):
            path = where.split(" (")[0]
            if path == "not found" or Path(path).resolve().parent != binary.parent.resolve():
                raise BuildError(f"{binary.name}: {lib} resolves to {path}, not next to it")
