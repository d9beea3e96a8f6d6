"""Client-side tokenizer: the one `vllm bench serve` would load (transformers AutoTokenizer).

transformers is imported lazily: a run from a materialized prompt file against a server that
reports usage never needs it, and its import costs seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, cast

from enginebench.loadgen.errors import BenchError


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer the load generator uses."""

    vocab_size: int
    all_special_ids: list[int]

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: list[int], **kwargs: Any) -> str: ...


# The classes AutoTokenizer resolves to the generic fast tokenizer (tokenizer.json as it is):
# loaded by that class directly, the same object without AutoTokenizer's import of torch (its
# config classes import it: 3-4 s of every load generator's start, while the server waits).
_GENERIC = ("PreTrainedTokenizerFast", "TokenizersBackend")


def _tokenizer_class(path: Path) -> str | None:
    """The `tokenizer_class` a local tokenizer directory declares, None when it declares none."""
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("tokenizer_class") if isinstance(config, dict) else None
    return name if isinstance(name, str) else None


def tokenizer_class(name_or_path: str) -> Any:
    """The transformers class that loads this tokenizer, imported (the costly part of a load:
    a sweep imports it once, before its points, see benchproc)."""
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise BenchError(f"cannot import transformers ({exc})", "pip install transformers") from exc
    local = Path(name_or_path)
    generic = local.is_dir() and _tokenizer_class(local) in _GENERIC
    # an attribute of transformers' lazy module: AutoTokenizer's import only when used
    return transformers.PreTrainedTokenizerFast if generic else transformers.AutoTokenizer


def load_tokenizer(name_or_path: str) -> Tokenizer:
    """Load a tokenizer from a local directory (or a hub id already in the local cache): the
    class AutoTokenizer would choose."""
    if not Path(name_or_path).exists() and "/" not in name_or_path:
        raise BenchError(
            f"tokenizer {name_or_path!r} is neither a local directory nor a hub id",
            "pass --tokenizer DIR (a directory with tokenizer.json / tokenizer_config.json)",
        )
    try:
        cls = tokenizer_class(name_or_path)
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # e.g. "sequence longer than model_max_length" (ShareGPT)
        tok = cls.from_pretrained(name_or_path)
    except BenchError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(
            f"cannot load tokenizer {name_or_path!r}: {first}",
            "pass --tokenizer DIR pointing at a local Hugging Face tokenizer directory",
        ) from exc
    return cast(Tokenizer, tok)


def count_tokens(tok: Tokenizer, text: str, add_special_tokens: bool = False) -> int:
    return len(tok.encode(text, add_special_tokens=add_special_tokens))


def tokenizer_for(args: Any, required: bool) -> Tokenizer | None:
    """`--tokenizer`, else `--model` when it is a local directory (vLLM's default), else None."""
    if args.tokenizer:
        return load_tokenizer(args.tokenizer)
    if args.model and Path(args.model).is_dir():
        return load_tokenizer(args.model)
    if required:
        raise BenchError(
            f"--dataset-name {args.dataset_name} needs a tokenizer",
            "pass --tokenizer DIR (a local Hugging Face tokenizer directory)",
        )
    return None
