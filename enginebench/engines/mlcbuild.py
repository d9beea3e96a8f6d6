"""MLC-LLM from a pinned source archive: checked and unpacked, then built into a wheel by its
environment's Python and installed beside that environment.

MLC publishes its wheels only on its own index; the archive holds mlc-llm at a pinned commit with
its submodules, patched to build against PyPI's `apache-tvm` (the compiler: LLVM and CUDA code
generation) and to serve tokenizers through PyPI's `tokenizers` instead of a Rust crate
(envs/sources/MANIFEST.md lists each upstream and each patch). What is compiled here is mlc-llm's
C++ runtime (libmlc_llm, device-independent: the CUDA runtime comes with the TVM wheel), through
its own scikit-build-core project. The wheel goes into `<build>/site`, which the engine's jobs
put on PYTHONPATH: the environment (torch, TVM) stays shared and unchanged, one build per
archive x environment.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from enginebench import proc
from enginebench.engines.build import ccache_env
from enginebench.engines.source import RECORD
from enginebench.jsonfile import write_json
from enginebench.models.files import atomic_dir, file_lock, sha256_file


class MlcBuildError(RuntimeError):
    """The source archive or the build is not what it should be; the message is one line."""


# CMake definitions of the build (recorded): tokenizers through the CPython shim (no cargo), no
# libbacktrace (it would be downloaded). Kept stable: ccache's keys depend on them.
CMAKE_DEFINES = {
    "TOKENIZERS_CPP_PY_SHIM": "ON",
    "CARGO_EXECUTABLE": "/bin/true",
    "TVM_FFI_USE_LIBBACKTRACE": "OFF",
}
# TVM's runtime is the environment's apache-tvm wheel's, not compiled again: the wheel is built
# from the tree's TVM commit (envs/sources/MANIFEST.md) and it is the runtime a server runs anyway:
# `import mlc_llm` imports tvm first, so libmlc_llm's NEEDED libtvm_runtime.so / libtvm_ffi.so
# resolve by soname to the wheel's, already loaded (seen in /proc/<pid>/maps; the copies the
# build used to compile and ship were never loaded). mlc-llm's CMake takes TVM from TVM_SOURCE_DIR:
# it gets this stand-in, whose targets are the wheel's libraries with the tree's headers, so
# TVM's runtime and tvm-ffi (~40% of the build's compile time) are not compiled. mlc-llm's own
# objects are compiled exactly as before (same headers, definitions and flags).
TVM_STANDIN = """\
# Written by enginebench (mlcbuild.py): TVM from the apache-tvm wheel, headers from the tree
include({tree}/cmake/utils/Utils.cmake)
add_library(tvm_ffi_header INTERFACE)
target_compile_features(tvm_ffi_header INTERFACE cxx_std_17)
if(CMAKE_CXX_BYTE_ORDER STREQUAL "BIG_ENDIAN")
  target_compile_definitions(tvm_ffi_header INTERFACE TVM_FFI_CMAKE_LITTLE_ENDIAN=0)
elseif(CMAKE_CXX_BYTE_ORDER STREQUAL "LITTLE_ENDIAN")
  target_compile_definitions(tvm_ffi_header INTERFACE TVM_FFI_CMAKE_LITTLE_ENDIAN=1)
endif()
target_include_directories(tvm_ffi_header INTERFACE {ffi_tree}/include
                                                    {ffi_tree}/3rdparty/dlpack/include)
add_library(tvm_runtime INTERFACE)
target_link_libraries(tvm_runtime INTERFACE {runtime} {ffi})
add_library(tvm_runtime_extra INTERFACE)
target_link_libraries(tvm_runtime_extra INTERFACE {runtime_extra})
"""
# the runtime only: code generation (LLVM, CUDA) is the apache-tvm wheel's
CONFIG_CMAKE = "set(TVM_SOURCE_DIR {standin})\nset(USE_CUDA OFF)\nset(USE_LLVM OFF)\n"
# Everything the recipe writes: the build rule's param, so a change to it rebuilds.
RECIPE = {"cmake_defines": CMAKE_DEFINES, "config_cmake": CONFIG_CMAKE, "tvm": TVM_STANDIN}


def unpack_source(archive: Path, sha256: str, commit: str, dest: Path) -> dict[str, Any]:
    """The archive's one top-level folder as `dest`, once its sha256 is the pinned one; the
    provenance (archive, sha256, commit) is written inside as enginebench-source.json."""
    archive = Path(archive)
    if not archive.is_file():
        raise MlcBuildError(f"{archive}: no such source archive (see envs/sources/MANIFEST.md)")
    got = sha256_file(archive)
    if got != sha256:
        raise MlcBuildError(f"{archive}: sha256 is {got}, the config pins {sha256}")
    with tarfile.open(archive) as tar, atomic_dir(dest, overwrite=True) as tmp:
        members = tar.getmembers()
        tops = {PurePosixPath(m.name).parts[0] for m in members}
        if len(tops) != 1:
            raise MlcBuildError(f"{archive}: expected one top-level folder, found {len(tops)}")
        for m in members:
            m.name = str(PurePosixPath(*PurePosixPath(m.name).parts[1:]) or ".")
        tar.extractall(tmp, members=[m for m in members if m.name != "."], filter="data")
        if not (tmp / "CMakeLists.txt").is_file() or not (tmp / "python" / "mlc_llm").is_dir():
            raise MlcBuildError(f"{archive}: not an mlc-llm source tree")
        # the archive is trimmed (web/ left out), and the wheel's CMake install copies web/
        (tmp / "web").mkdir(exist_ok=True)
        info = {"archive": str(archive), "sha256": sha256, "commit": commit}
        write_json(tmp / RECORD, info)
    return info


# the environment's C headers (the tokenizer shim) and where its tvm and tvm_ffi packages are,
# found without importing them (an empty line: not installed)
_PROBE = """import importlib.util, sysconfig
print(sysconfig.get_paths()["include"])
for name in ("tvm", "tvm_ffi"):
    spec = importlib.util.find_spec(name)
    print(spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else "")
"""


def build_mlc(
    src: Path, out: Path, python: str, jobs: int | None = None, log: Path | None = None
) -> dict[str, Any]:
    """Build the mlc_llm wheel from `src` with `python` (its environment holds apache-tvm,
    scikit-build-core, cmake and ninja) and install it into `out/site`; check it imports there.
    The CMake build folder (`out/cmake`) persists, and ccache shares objects across builds."""
    src, out = Path(src).resolve(), Path(out).resolve()
    build_dir, dist, site = out / "cmake", out / "dist", out / "site"
    log = Path(log or out / "build.log")
    include, tvm_pkg, ffi_pkg = proc.run(
        [python, "-c", _PROBE], what="find apache-tvm", error=MlcBuildError, stderr=False
    ).splitlines()[-3:]
    if not (tvm_pkg and ffi_pkg):
        raise MlcBuildError(
            f"{python}: apache-tvm or apache-tvm-ffi is not installed there; MLC-LLM builds "
            "against them (their runtime is the one it runs)"
        )
    wheel_libs = {  # what the stand-in's targets link, by name
        "runtime": Path(tvm_pkg, "lib", "libtvm_runtime.so"),
        "runtime_extra": Path(tvm_pkg, "lib", "libtvm_runtime_extra.so"),
        "ffi": Path(ffi_pkg, "lib", "libtvm_ffi.so"),
    }
    if missing := [str(f) for f in wheel_libs.values() if not f.is_file()]:
        raise MlcBuildError(
            f"{python}: no {', '.join(missing)}: not the apache-tvm wheel MLC-LLM links "
            "(envs/mlc-llm.yaml pins it)"
        )
    defines = {**CMAKE_DEFINES, "TOKENIZERS_CPP_PY_INCLUDE": include}
    if shutil.which("ccache"):
        defines |= {f"CMAKE_{lang}_COMPILER_LAUNCHER": "ccache" for lang in ("C", "CXX")}
    settings = [f"build-dir={build_dir}", *(f"cmake.define.{k}={v}" for k, v in defines.items())]
    wheel_argv = [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                  str(dist), str(src), *(f"--config-settings={s}" for s in settings)]  # fmt: skip
    # pip's cmake and ninja (the environment's bin) before the system's (Debian's cmake is older
    # than the 3.26 this tree needs); the environment shared by every build: one root for ccache
    env = os.environ | ccache_env(out.parent.parent)
    env |= {"PATH": f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}",
            "CMAKE_BUILD_PARALLEL_LEVEL": str(jobs or os.cpu_count() or 1)}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".build.lock"):
        standin = build_dir / "tvm-standin"
        standin.mkdir(parents=True, exist_ok=True)
        tree = src / "3rdparty" / "tvm"
        (standin / "CMakeLists.txt").write_text(
            TVM_STANDIN.format(tree=tree, ffi_tree=tree / "3rdparty" / "tvm-ffi", **wheel_libs)
        )
        (standin / "include").unlink(missing_ok=True)
        (standin / "include").symlink_to(tree / "include")  # mlc-llm reads TVM_SOURCE_DIR/include
        (build_dir / "config.cmake").write_text(CONFIG_CMAKE.format(standin=standin))
        shutil.rmtree(dist, ignore_errors=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc.run(wheel_argv, what="pip wheel mlc-llm", error=MlcBuildError, env=env, log=log)
        seconds = round(time.perf_counter() - t0, 1)
        (wheel,) = dist.glob("mlc_llm-*.whl")
        with atomic_dir(site, overwrite=True) as tmp:
            install = [
                python,
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--target",
                str(tmp),
                str(wheel),
            ]
            proc.run(install, what="pip install --target", error=MlcBuildError, log=log)
    run_env = {"PYTHONPATH": str(site)}
    check = "import mlc_llm, tvm; print(mlc_llm.__file__); print(tvm.__version__)"
    found = proc.run([python, "-c", check], what="import mlc_llm", stderr=False,
                     error=MlcBuildError, env=os.environ | run_env)  # fmt: skip
    where, tvm_version = found.split()[-2:]
    if not where.startswith(str(site)):
        raise MlcBuildError(f"import mlc_llm found {where}, not the build in {site}")
    return {
        "python": python,
        "env": run_env,  # what every job that runs this build sets
        "src_dir": str(src),
        "tvm_version": tvm_version,
        "cmake_defines": defines,
        "config_cmake": CONFIG_CMAKE.format(standin=standin),
        "tvm_runtime": [str(f) for f in wheel_libs.values()],  # linked, not built: the wheel's
        "wheel_argv": wheel_argv,
        "wheel": wheel.name,
        "wheel_sha256": sha256_file(wheel),
        "seconds": seconds,
        "log": str(log),
    }
