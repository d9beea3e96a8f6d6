"""The package installer: pip's settings carried over to uv, and pip where they cannot be."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from enginebench.engines import installer
from enginebench.engines.installer import ENV_VAR, installer_for, pip_settings, uv_options
from enginebench.proc import CommandError


def test_pip_settings_translate_to_uv_options() -> None:
    settings = {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": "file:///a/simple https://b.example/simple",
        "find-links": "/opt/wheels",
        "constraint": "/etc/c.txt",
        "no-index": "false",
        "timeout": "180",
        "cert": "/etc/ca.pem",
        "disable-pip-version-check": "1",
    }
    options, env, unknown = uv_options(settings)
    assert options == [
        "--constraint", "/etc/c.txt",
        "--extra-index-url", "file:///a/simple", "--extra-index-url", "https://b.example/simple",
        "--find-links", "/opt/wheels",
        "--index-url", "https://mirror.example/simple",
    ]  # fmt: skip
    assert env == {"UV_HTTP_TIMEOUT": "180", "SSL_CERT_FILE": "/etc/ca.pem"}
    assert unknown == []
    assert uv_options({"no-index": "t"})[0] == ["--no-index"]  # pip's booleans
    assert uv_options({"no-index": "off", "pre": "no"})[0] == []
    assert uv_options({"no-index": "maybe"})[2] == ["no-index"]  # pip's to judge
    assert uv_options({"no-binary": ":all:", "quiet": "1"})[2] == ["no-binary"]
    assert uv_options({"trusted-host": "a.example b.example", "retries": "9"})[:2] == (
        ["--allow-insecure-host", "a.example", "--allow-insecure-host", "b.example"],
        {"UV_HTTP_RETRIES": "9"},
    )


def test_pip_settings_read_pips_own_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `pip config list`: a PIP_* variable wins over the config files."""
    monkeypatch.setenv("PIP_FIND_LINKS", "/nowhere/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/simple")
    got = pip_settings(sys.executable)
    assert got["find-links"] == "/nowhere/wheels"
    assert got["index-url"] == "https://mirror.invalid/simple"


def test_pip_settings_read_multiline_empty_and_aliased_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip prints values as Python literals: a multi-line list arrives whole; an empty value is
    ignored, as pip ignores it; `default-timeout` is `timeout`."""
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nextra-index-url =\n    https://a.example/simple\n    https://b.example/simple\n"
        "index-url = https://mirror.example/simple\ndefault-timeout = 7\n"
        "[install]\nno-index = t\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "")  # "unset" in an image: pip keeps the file's
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "9")  # a PIP_* variable wins over the files
    got = pip_settings(sys.executable)
    assert got["extra-index-url"].split() == [
        "https://a.example/simple",
        "https://b.example/simple",
    ]
    assert got["index-url"] == "https://mirror.example/simple"
    assert got["no-index"] == "t" and got["timeout"] == "9"
    options, env, unknown = uv_options(got)
    assert options.count("--extra-index-url") == 2 and "--no-index" in options
    assert env["UV_HTTP_TIMEOUT"] == "9" and "config-file" not in unknown


def test_the_installer_is_uv_unless_a_pip_setting_has_no_uv_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PIP_FIND_LINKS", "/nowhere/wheels")
    how = installer_for(sys.executable)
    assert how.name == "uv" and how.uv is not None  # uv is a workflow dependency
    argv = how.argv(["-r", "req.txt"])
    assert argv[:6] == [how.uv, "pip", "install", "--no-config", "--python", sys.executable]
    assert argv[argv.index("--index-strategy") + 1] == "unsafe-best-match"  # as pip
    assert argv[argv.index("--find-links") + 1] == "/nowhere/wheels"
    assert argv[-2:] == ["-r", "req.txt"]
    monkeypatch.setenv("PIP_NO_BINARY", ":all:")  # uv's --no-binary differs: pip decides
    how = installer_for(sys.executable)
    assert how.name == "pip" and "no-binary" in how.why
    assert how.argv(["x"]) == [sys.executable, "-m", "pip", "install", "x"]
    monkeypatch.setenv(ENV_VAR, "uv")  # asked for: an error naming the setting and the fix
    with pytest.raises(CommandError, match=f"no option for: no-binary.*{ENV_VAR}=pip"):
        installer_for(sys.executable)


def test_the_installer_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "pip")
    assert installer_for(sys.executable).name == "pip"
    monkeypatch.setenv(ENV_VAR, "conda")
    with pytest.raises(CommandError, match=f"{ENV_VAR}='conda'"):
        installer_for(sys.executable)
    monkeypatch.setenv(ENV_VAR, "uv")
    monkeypatch.setattr(installer, "find_uv", lambda: None)
    with pytest.raises(CommandError, match=r"uv >= 0\.9 is not installed"):
        installer_for(sys.executable)
