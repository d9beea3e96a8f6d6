"""tools/offline-bundle-wheels.sh and tools/offline-install-wheels.sh (and the vLLM wrappers over
them): the pin lists parse, and a bundle of tiny synthetic wheels splits into parts that join, check
and install again. Offline: OFFLINE_WHEELS_FROM stands in for the download."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"
BUNDLE = TOOLS / "offline-bundle-wheels.sh"
INSTALL = TOOLS / "offline-install-wheels.sh"
PIN_LISTS = sorted(TOOLS.glob("*-wheels.txt"))
PIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")


def parse_pin_list(path: Path) -> list[str]:
    """The entries (no comments, no blank lines), as the bundler reads them."""
    entries = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [e for e in entries if e]


# --- the pin lists --------------------------------------------------------------------------------


def test_pin_lists_exist():
    names = {p.name for p in PIN_LISTS}
    assert {"vllm-h200-wheels.txt", "mlc-gpu-wheels.txt"} <= names


@pytest.mark.parametrize("path", PIN_LISTS, ids=lambda p: p.name)
def test_pin_list_lines_and_one_version_per_project(path: Path):
    entries = parse_pin_list(path)
    assert entries, f"{path.name} lists nothing"
    seen: dict[str, str] = {}
    for e in entries:
        assert PIN.match(e) or e.endswith(".whl"), f"{path.name}: {e!r}: not name==version, no .whl"
        if e.endswith(".whl"):
            continue
        name, version = e.split("==")
        key = canonicalize_name(name)
        assert key not in seen, f"{path.name}: {name} twice ({seen[key]} and {version})"
        seen[key] = version


def test_mlc_list_pins_the_tvm_pair_and_no_mlc_wheel_path():
    text = (TOOLS / "mlc-gpu-wheels.txt").read_text()
    entries = parse_pin_list(TOOLS / "mlc-gpu-wheels.txt")
    assert "apache-tvm==0.26.0" in entries
    assert "apache-tvm-ffi==0.1.13.post2" in entries
    # the mlc_llm wheel is built by the workflow: passed at bundle time, never a fixed path here
    assert not [e for e in entries if e.endswith(".whl")]
    assert "EXTRA_WHEELS" in text
    assert re.search(r"^# leave-out:\s*\S", text, re.M)


# --- synthetic wheels and bundles -----------------------------------------------------------------


def make_wheel(folder: Path, name: str, version: str, payload: bytes = b"", requires=()) -> Path:
    """A minimal valid py3-none-any wheel: module `name` with __version__ (and a data file)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{name}/blob.bin": payload,
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ).encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for arc, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    whl = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_STORED) as z:
        for arc, data in files.items():
            z.writestr(arc, data)
    return whl


# the tools' knobs: none leaks in from the caller's environment
KNOBS = "EXTRA_WHEELS PART_MIB PART_BYTES WHEEL_CHECK BUNDLE_NAME OFFLINE_WHEELS_FROM CHECK_IMPORTS"
KNOBS += " VLLM_SITE PYTHONPATH"


def run(args, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS.split()}
    env["PYTHON"] = sys.executable  # has pip and packaging
    env.update(extra)
    argv = [str(a) for a in args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def parts_of(out: Path) -> list[Path]:
    return sorted(out.glob("part-*"), key=lambda p: int(p.name.split("-")[1]))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """Three wheels (one pinned from a 'download' folder, one with a 200 kB payload, one by path),
    bundled in parts of 64 KiB."""
    tmp = tmp_path_factory.mktemp("bundle")
    dl, local = tmp / "downloaded", tmp / "local"
    dl.mkdir()
    local.mkdir()
    payload = os.urandom(200_000)
    make_wheel(dl, "ebtiny_a", "1.0")
    make_wheel(dl, "ebtiny_a", "2.0")  # another version: the pin picks 1.0
    make_wheel(dl, "ebtiny_big", "0.3", payload, requires=["ebtiny_a>=1"])
    extra = make_wheel(local, "ebtiny_extra", "0.1.dev0", requires=["ebtiny_absent"])
    pins = tmp / "test-wheels.txt"
    pins.write_text(
        "# a test list\n\nebtiny-a==1.0   # inline comment\nEbtiny_Big==0.3\n"
        "# leave-out: ebtiny-absent\n"
    )
    out = tmp / "out"
    r = run(
        [BUNDLE, pins, out],
        OFFLINE_WHEELS_FROM=str(dl),
        PART_BYTES="65536",
        EXTRA_WHEELS=f"  {extra}\n",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return {"tmp": tmp, "out": out, "payload": payload, "log": r.stdout + r.stderr, "dl": dl}


def test_bundle_parts_and_sums(bundle):
    out = bundle["out"]
    parts = parts_of(out)
    tar_parts = [p / "out-wheels.tar.part" for p in parts]
    assert all(p.is_file() for p in tar_parts)
    sizes = [p.stat().st_size for p in tar_parts]
    assert len(parts) >= 4 and all(s == 65536 for s in sizes[:-1]) and 0 < sizes[-1] <= 65536
    lines = (out / "SHA256SUMS").read_text().splitlines()
    sums = {name: sha for sha, name in (line.split("  ", 1) for line in lines)}
    joined = b"".join(p.read_bytes() for p in tar_parts)
    assert hashlib.sha256(joined).hexdigest() == sums["out-wheels.tar"]
    for k, p in enumerate(tar_parts, 1):
        assert sums[f"part-{k}/out-wheels.tar.part"] == sha256(p)
    assert (parts[0] / "SHA256SUMS").read_bytes() == (out / "SHA256SUMS").read_bytes()
    listed = [line.split()[0] for line in (out / "wheels.txt").read_text().splitlines()]
    assert listed == ["ebtiny-a==1.0", "ebtiny-big==0.3", "ebtiny-extra==0.1.dev0"]
    assert "left out on purpose: ebtiny_absent" in bundle["log"]


def test_install_round_trip(bundle):
    site = bundle["tmp"] / "site"
    r = run([INSTALL, bundle["out"], site], CHECK_IMPORTS="ebtiny_a ebtiny_big ebtiny_extra")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 wheels from" in r.stdout
    assert "ebtiny_a 1.0 | ebtiny_big 0.3 | ebtiny_extra 0.1.dev0" in r.stdout
    assert (site / "ebtiny_big" / "blob.bin").read_bytes() == bundle["payload"]


def test_vllm_install_wrapper_takes_part_folders_in_order(bundle):
    site = bundle["tmp"] / "vllm-site"
    parts = parts_of(bundle["out"])
    r = run(
        [TOOLS / "offline-install-vllm.sh", *parts], VLLM_SITE=str(site), CHECK_IMPORTS="ebtiny_a"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (site / "ebtiny_big" / "blob.bin").read_bytes() == bundle["payload"]


def test_install_refuses_parts_out_of_order_or_missing(bundle):
    parts = parts_of(bundle["out"])
    swapped = [parts[0], parts[2], parts[1], *parts[3:]]
    r = run([INSTALL, *swapped, bundle["tmp"] / "never"])
    assert r.returncode == 2 and "is not part 2" in r.stderr
    r = run([INSTALL, *parts[:-1], bundle["tmp"] / "never"])
    assert r.returncode == 2 and f"of {len(parts)}" in r.stderr
    assert not (bundle["tmp"] / "never").exists()


def test_install_checks_the_joined_tar_of_an_old_style_bundle(bundle, tmp_path):
    """Bundles of the old vLLM tools: SHA256SUMS holds the tar's sum only."""
    old = tmp_path / "old"
    for k, part in enumerate(parts_of(bundle["out"]), 1):
        (old / f"part-{k}").mkdir(parents=True)
        data = (part / "out-wheels.tar.part").read_bytes()
        (old / f"part-{k}" / "out-wheels.tar.part").write_bytes(data)
    tar_line = (bundle["out"] / "SHA256SUMS").read_text().splitlines()[0]
    (old / "part-1" / "SHA256SUMS").write_text(tar_line + "\n")
    damaged = old / "part-2" / "out-wheels.tar.part"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    r = run([INSTALL, old, tmp_path / "never"])
    assert r.returncode == 2 and "does not match" in r.stderr


def test_bundle_rejects_bad_lines_missing_pins_and_unmet_needs(bundle, tmp_path):
    def bundle_of(pins: Path, out: str, **extra: str):
        small = {"OFFLINE_WHEELS_FROM": str(bundle["dl"]), "PART_BYTES": "65536"}
        return run([BUNDLE, pins, tmp_path / out], **small, **extra)

    bad = tmp_path / "bad-wheels.txt"
    bad.write_text("ebtiny-a>=1.0\n")
    r = bundle_of(bad, "o1")
    assert r.returncode != 0 and "neither name==version nor a .whl path" in r.stderr
    missing = tmp_path / "missing-wheels.txt"
    missing.write_text("ebtiny-a==9.9\n")
    r = bundle_of(missing, "o2")
    assert r.returncode != 0 and "no wheel for ebtiny-a==9.9" in r.stderr
    unmet = tmp_path / "unmet-wheels.txt"
    unmet.write_text("ebtiny-big==0.3\n")  # needs ebtiny_a, not in the set
    r = bundle_of(unmet, "o3")
    assert r.returncode != 0 and "UNMET: ebtiny-big 0.3 needs ebtiny_a>=1" in r.stdout
    assert not (tmp_path / "o3").exists()
    r = bundle_of(unmet, "o4", WHEEL_CHECK="warn")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "o4" / "part-1" / "o4-wheels.tar.part").is_file()


def test_vllm_bundle_wrapper_reads_the_vllm_list(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    wrapper = TOOLS / "offline-bundle-vllm.sh"
    r = run([wrapper, tmp_path / "v"], OFFLINE_WHEELS_FROM=str(empty), PART_BYTES="65536")
    first = parse_pin_list(TOOLS / "vllm-h200-wheels.txt")[0]
    assert r.returncode != 0 and f"no wheel for {first}" in r.stderr
    r = run([TOOLS / "offline-install-vllm.sh"])
    assert r.returncode == 2 and "PARTS_DIR" in r.stderr


# --- tools/wheelset_check.py directly -------------------------------------------------------------

CHECK = TOOLS / "wheelset_check.py"
# a slice of the machine's list: names, and one known version
MACHINE = ["--machine-has", "numpy packaging torch", "--machine-versions", "torch==2.11.0"]


def wheelset_check(folder: Path, *options: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(CHECK), str(folder), *options]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def unmet(r: subprocess.CompletedProcess) -> list[str]:
    return [line.strip()[len("UNMET: ") :] for line in r.stdout.splitlines() if "UNMET: " in line]


@pytest.fixture
def clean_set(tmp_path) -> Path:
    """Two wheels whose needs are met by each other and the machine (markers that do not hold on
    CPython 3.12 linux x86_64 are skipped)."""
    make_wheel(tmp_path, "wsc_a", "1.0")
    needs = ["wsc-a>=1", "packaging>=20", "torch>=2", "foo; sys_platform == 'win32'"]
    needs += ["bar; extra == 'x'", "tomli; python_version < '3.11'"]
    make_wheel(tmp_path, "wsc_b", "2.0", requires=needs)
    return tmp_path


def test_wheelset_check_passes_a_clean_set(clean_set):
    r = wheelset_check(clean_set, *MACHINE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("offline-bundle-wheels: 2 wheels checked for CPython 3.12")
    assert "assumed on the machine (its version not known here): packaging >=20 (wsc-b)" in r.stdout
    assert not unmet(r)


def test_wheelset_check_fails_two_versions_of_a_project(clean_set):
    make_wheel(clean_set, "wsc_a", "1.1")
    r = wheelset_check(clean_set, *MACHINE)
    assert r.returncode == 1
    assert unmet(r) == ["two versions of wsc-a: 1.0 and 1.1"]


def test_wheelset_check_fails_unmet_requirements(tmp_path):
    make_wheel(tmp_path, "wsc_a", "1.0")
    make_wheel(tmp_path, "wsc_b", "2.0", requires=["wsc_absent", "wsc_a>=2", "torch<2"])
    r = wheelset_check(tmp_path, *MACHINE)
    assert r.returncode == 1
    assert unmet(r) == [
        "wsc-b 2.0 needs wsc_absent: neither in the set nor on the machine",
        "wsc-b 2.0 needs wsc_a>=2: the set has wsc-a 1.0",
        "wsc-b 2.0 needs torch<2: the machine has torch 2.11.0",
    ]
    r = wheelset_check(tmp_path, *MACHINE, "--messages", "offline-bundle")
    assert r.returncode == 1 and r.stdout.startswith("offline-bundle: 2 wheels; requirements")
    assert unmet(r)[0] == "wsc-b 2.0 needs wsc_absent: neither in the bundle nor on the machine"


def test_wheelset_check_passes_a_requirement_left_out(clean_set):
    make_wheel(clean_set, "wsc_c", "0.1", requires=["wsc_absent>=1"])
    assert wheelset_check(clean_set, *MACHINE).returncode == 1
    r = wheelset_check(clean_set, *MACHINE, "--leave-out", "other WSC.Absent")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "left out on purpose: wsc_absent>=1 (wsc-c 0.1)" in r.stdout


def test_wheelset_check_shadowing_the_machine_is_an_error_or_a_note(clean_set):
    make_wheel(clean_set, "numpy", "1.0")
    r = wheelset_check(clean_set, *MACHINE, "--shadow", "error")
    assert r.returncode == 1
    assert unmet(r) == [
        "numpy-1.0-py3-none-any.whl: the machine has numpy already (it would shadow it)"
    ]
    r = wheelset_check(clean_set, *MACHINE, "--shadow", "note")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        "note: numpy 1.0 shadows the machine's own numpy where the set is on the path" in r.stdout
    )


def test_wheelset_check_tags_up_to_the_newest_manylinux(clean_set):
    whl = make_wheel(clean_set, "wsc_c", "0.1")
    whl.rename(clean_set / "wsc_c-0.1-cp312-cp312-manylinux_2_34_x86_64.whl")
    r = wheelset_check(clean_set, *MACHINE, "--max-manylinux", "28")
    assert r.returncode == 1
    assert unmet(r) == [
        "wsc_c-0.1-cp312-cp312-manylinux_2_34_x86_64.whl: no tag that CPython 3.12 manylinux_2_28 "
        "x86_64 takes"
    ]
    assert wheelset_check(clean_set, *MACHINE, "--max-manylinux", "39").returncode == 0
    (clean_set / "wsc_c-0.1-cp312-cp312-manylinux_2_34_x86_64.whl").rename(
        clean_set / "wsc_c-0.1-cp311-cp311-manylinux_2_17_x86_64.whl"
    )
    assert wheelset_check(clean_set, *MACHINE, "--max-manylinux", "39").returncode == 1


def test_wheelset_check_roots_find_wheels_nothing_needs(clean_set):
    make_wheel(clean_set, "wsc_orphan", "0.1")
    r = wheelset_check(clean_set, *MACHINE, "--roots", "wsc-b wsc-absent-root")
    assert r.returncode == 1
    assert unmet(r) == ["wsc-orphan: in the set but needed by nothing the workflow uses"]
    assert wheelset_check(clean_set, *MACHINE, "--roots", "wsc-b wsc-orphan").returncode == 0


def test_wheelset_check_assumed_note(clean_set):
    note = ["--assumed-note", "packaging", "the machine's packaging may be newer"]
    r = wheelset_check(clean_set, *MACHINE, *note)
    assert r.returncode == 0 and "  note: the machine's packaging may be newer" in r.stdout
    r = wheelset_check(clean_set, *MACHINE, "--assumed-note", "wsc-absent", "never printed")
    assert "never printed" not in r.stdout


def test_bundle_scripts_call_the_shared_check():
    """Both bundlers check with tools/wheelset_check.py, each with its own settings."""
    bundle_sh = (TOOLS / "offline-bundle.sh").read_text()
    wheels_sh = BUNDLE.read_text()
    for text in (bundle_sh, wheels_sh):
        assert '"$REPO/tools/wheelset_check.py"' in text
        assert "packaging.tags" not in text  # no copy of the check left behind
    assert "--max-manylinux 28 --shadow error --roots" in bundle_sh
    assert "--max-manylinux 39 --shadow note --leave-out" in wheels_sh
