"""HF -> GGUF -> quantized GGUF on the tiny model, and llama.cpp tokenizing exactly like HF."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from enginebench.models import gguf, synthetic
from enginebench.models.gguf import ConversionError

pytestmark = pytest.mark.engines

SAMPLES = [
    "Hello world",
    " leading space",
    "trailing space ",
    "  two  spaces\tand a tab",
    "line one\nline two\n\n\nthree blank",
    "def main():\n    return 42",
    "Ünïcödé: naïve café, Straße",
    "日本語のテキスト",
    "emoji 🦙🚀 and ZWJ 👩‍👩‍👧",
    "numbers 3 33 333 3333 3.14159",
    "I've they're we'll 'RE",
    "<s> looks special but is text",
    "GNU GENERAL PUBLIC LICENSE Version 3",
    "",
    "a" * 300,
]

# GGUF metadata, read by the vendored gguf-py in a child process (it must not shadow anything
# imported here).
_READ_GGUF = """
import json, sys
sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader
r = GGUFReader(sys.argv[2])
def val(k):
    f = r.fields[k]
    return f.contents()
keys = ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
        "llama.embedding_length", "llama.block_count"]
out = {k: val(k) for k in keys if k in r.fields}
out["tokens"] = val("tokenizer.ggml.tokens")
print(json.dumps(out))
"""


def _gguf_meta(src: Path, path: Path) -> dict:
    argv = [sys.executable, "-c", _READ_GGUF, str(src / "gguf-py"), str(path)]
    return json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)


def test_converted_metadata_matches_hf(
    tiny_gguf: Path, tiny_model_dir: Path, llama_cpp_src: Path
) -> None:
    from transformers import AutoTokenizer

    assert tiny_gguf.read_bytes()[:4] == b"GGUF"
    meta = _gguf_meta(llama_cpp_src, tiny_gguf)
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert meta["tokenizer.ggml.add_bos_token"] is True
    assert "<|assistant|>" in meta["tokenizer.chat_template"]
    assert (meta["llama.embedding_length"], meta["llama.block_count"]) == (256, 4)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert meta["tokens"] == tok.convert_ids_to_tokens(list(range(len(tok))))


def test_unknown_pretokenizer_is_refused_without_the_fallback(
    tiny_model_dir: Path, llama_cpp_src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.gguf"
    with pytest.raises(ConversionError, match="BPE pre-tokenizer was not recognized") as e:
        gguf.convert_hf_to_gguf(
            tiny_model_dir, out, llama_cpp_src, "f16", pre_tokenizer_fallback="none"
        )
    assert "\n" not in str(e.value)
    assert not out.exists() and not (tmp_path / "x.gguf.part").exists()


def test_conversion_argument_errors(
    tmp_path: Path, tiny_model_dir: Path, llama_cpp_src: Path
) -> None:
    with pytest.raises(ValueError, match="outtype 'q4'"):
        gguf.convert_hf_to_gguf(tiny_model_dir, tmp_path / "x", tmp_path, "q4")
    with pytest.raises(ConversionError, match=r"not a llama\.cpp source tree"):
        gguf.convert_hf_to_gguf(tiny_model_dir, tmp_path / "x", tmp_path, "f16")
    with pytest.raises(ConversionError, match=r"no config\.json"):
        gguf.convert_hf_to_gguf(tmp_path, tmp_path / "x", tmp_path, "f16")


def test_ggml_conversion_checks_and_reports(llama_cpp_src: Path, tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF0000")
    with pytest.raises(ConversionError, match="already GGUF"):
        gguf.convert_ggml_to_gguf(tmp_path / "m.gguf", tmp_path / "y", llama_cpp_src)
    # a truncated GGJT v3 header: the converter runs and fails, we get one line back
    (tmp_path / "m.bin").write_bytes(b"tjgg" + (3).to_bytes(4, "little") + bytes(8))
    with pytest.raises(ConversionError, match=r"convert_llama_ggml_to_gguf\.py failed") as e:
        gguf.convert_ggml_to_gguf(tmp_path / "m.bin", tmp_path / "y.gguf", llama_cpp_src)
    assert "\n" not in str(e.value) and not (tmp_path / "y.gguf").exists()


@pytest.mark.parametrize("qtype", ["Q8_0", "q4_k_m"])
def test_quantize(tiny_gguf: Path, llama_quantize_bin: Path, tmp_path: Path, qtype: str) -> None:
    out = tmp_path / f"{qtype}.gguf"
    info = gguf.quantize(llama_quantize_bin, tiny_gguf, out, qtype)
    assert info["qtype"] == qtype.upper() and info["fallback_tensors"] == 0
    assert out.read_bytes()[:4] == b"GGUF"
    assert info["bytes"] < tiny_gguf.stat().st_size * 0.6


def test_quantize_argument_errors(tiny_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown quantization 'Q3_X'.*Q4_K_M"):
        gguf.quantize(Path("llama-quantize"), tiny_gguf, tmp_path / "x", "Q3_X")
    with pytest.raises(ValueError, match="IQ2_XS needs an importance matrix"):
        gguf.quantize(Path("llama-quantize"), tiny_gguf, tmp_path / "x", "IQ2_XS")
    with pytest.raises(ConversionError, match="no such GGUF"):
        gguf.quantize(Path("llama-quantize"), tmp_path / "absent", tmp_path / "x", "Q8_0")


def test_rows_not_multiple_of_256_are_reported(
    llama_cpp_src: Path, llama_quantize_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = synthetic.Preset(320, 768, 1, 4, 2, 4096, 512, 10000.0, "float32")
    monkeypatch.setitem(synthetic.PRESETS, "odd", odd)
    synthetic.synthesize("odd", tmp_path / "hf")
    gguf.convert_hf_to_gguf(tmp_path / "hf", tmp_path / "f16.gguf", llama_cpp_src)
    info = gguf.quantize(llama_quantize_bin, tmp_path / "f16.gguf", tmp_path / "q.gguf", "Q4_K_M")
    assert info["fallback_tensors"] > 0  # the file is not the Q4_K_M its name says


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tiny_server(llama_server_bin: Path, tiny_gguf_q4: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    argv = [str(llama_server_bin), "-m", str(tiny_gguf_q4), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "-c", "1024", "-np", "1", "-t", "1"]
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama-server exited: {(tmp_path / 'server.log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        log.close()


def test_llama_cpp_tokenizes_like_hf(tiny_server: str, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for text in SAMPLES:
        body = json.dumps({"content": text, "add_special": True}).encode()
        req = urllib.request.Request(
            f"{tiny_server}/tokenize", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            got = json.loads(r.read())["tokens"]
        assert got == tok(text).input_ids, text
