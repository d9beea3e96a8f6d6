"""MLC-LLM's source archive: checked against its pin and unpacked; a build without the TVM wheel
refused at once (the build itself runs in the end-to-end workflow test, on the real archive)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from enginebench.engines.mlcbuild import MlcBuildError, build_mlc, unpack_source
from enginebench.models.files import sha256_file


def make_archive(path: Path, files: dict[str, str]) -> str:
    with tarfile.open(path, "w:xz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sha256_file(path)


TREE = {"mlc-llm/CMakeLists.txt": "project(mlc_llm)\n", "mlc-llm/python/mlc_llm/__init__.py": ""}


def test_unpacked_with_its_provenance(tmp_path: Path) -> None:
    sha = make_archive(tmp_path / "src.tar.xz", TREE)
    dest = tmp_path / "src"
    info = unpack_source(tmp_path / "src.tar.xz", sha, "c" * 40, dest)
    assert (dest / "CMakeLists.txt").read_text() == "project(mlc_llm)\n"
    assert (dest / "web").is_dir()  # the wheel's CMake install copies it; the archive trims it
    record = json.loads((dest / "enginebench-source.json").read_text())
    assert record == info == {"archive": str(tmp_path / "src.tar.xz"), "sha256": sha,
                              "commit": "c" * 40}  # fmt: skip


@pytest.mark.parametrize(
    ("files", "sha", "error"),
    [
        (TREE, "0" * 64, "sha256 is "),
        ({**TREE, "other/x": ""}, None, "expected one top-level folder, found 2"),
        ({"mlc-llm/README.md": ""}, None, "not an mlc-llm source tree"),
    ],
)
def test_a_wrong_archive_is_one_line_and_leaves_nothing(
    tmp_path: Path, files: dict[str, str], sha: str | None, error: str
) -> None:
    got = make_archive(tmp_path / "a.tar.xz", files)
    with pytest.raises(MlcBuildError, match=error) as err:
        unpack_source(tmp_path / "a.tar.xz", sha or got, "c" * 40, tmp_path / "src")
    assert "\n" not in str(err.value) and not (tmp_path / "src").exists()


def test_a_missing_archive_names_the_manifest(tmp_path: Path) -> None:
    with pytest.raises(MlcBuildError, match=r"no such source archive .*MANIFEST\.md"):
        unpack_source(tmp_path / "none.tar.xz", "0" * 64, "c" * 40, tmp_path / "src")


def test_build_needs_the_tvm_wheel(tmp_path: Path) -> None:
    # mlc-llm links the environment's apache-tvm runtime instead of compiling TVM's: an
    # environment without it is refused before any compiling, naming what is missing
    python = sys.executable  # the project's own environment: no apache-tvm
    with pytest.raises(MlcBuildError, match=r"apache-tvm or apache-tvm-ffi is not installed there"):
        build_mlc(tmp_path / "src", tmp_path / "build", python, log=tmp_path / "build.log")
    assert not (tmp_path / "build" / "cmake").exists()
