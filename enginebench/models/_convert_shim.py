"""Run llama.cpp's convert_hf_to_gguf.py, letting an unknown GPT-2 style BPE through.

Run as a script: python _convert_shim.py LLAMA_CPP_SRC FALLBACK_PRE -- CONVERTER_ARGS...

The converter recognizes a BPE pre-tokenizer by the hash of how it encodes a probe string, so a
freshly trained tokenizer is always unknown and conversion stops. When tokenizer.json shows the
plain GPT-2 pre-tokenization (no normalizer, ByteLevel with its regex), llama.cpp's "gpt-2"
pre-tokenizer is exactly it, and we answer FALLBACK_PRE instead of failing. Any other tokenizer
still fails. The vendored files are left untouched: we patch the class in this process only.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any


def is_gpt2_style(tokenizer_json: Path) -> bool:
    try:
        tok = json.loads(tokenizer_json.read_text())
    except (OSError, ValueError):
        return False
    pre = tok.get("pre_tokenizer") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    return (
        tok.get("model", {}).get("type") == "BPE"
        and tok.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True) is True
    )


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[2] != "--":
        raise SystemExit("usage: _convert_shim.py LLAMA_CPP_SRC FALLBACK_PRE -- CONVERTER_ARGS...")
    src, fallback, args = Path(argv[0]), argv[1], argv[3:]
    script = src / "convert_hf_to_gguf.py"
    sys.path[:0] = [str(src), str(src / "gguf-py")]
    from conversion.base import TextModel  # the vendored package, found through sys.path

    original = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return str(original(self, tokenizer))
        except NotImplementedError:
            if fallback == "none" or not is_gpt2_style(Path(self.dir_model) / "tokenizer.json"):
                raise
            print(f"enginebench: unknown GPT-2 style BPE pre-tokenizer -> {fallback!r}", flush=True)
            return fallback

    TextModel.get_vocab_base_pre = get_vocab_base_pre  # type: ignore[method-assign]
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
