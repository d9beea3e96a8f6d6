"""Byte-level BPE tokenizer trained on text every machine has (no hub access needed).

The corpus is the license texts Debian ships plus the CPython stdlib sources, read in sorted order
and capped, so the same machine image gives the same tokenizer. Another Python patch release or
distribution gives a different corpus: its sha256 is part of the provenance to make that visible.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from enginebench.jsonfile import write_json

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")  # ids 0..3, Llama-2 convention
UNK_ID, BOS_ID, EOS_ID, PAD_ID = range(4)
DEFAULT_CORPUS_BYTES = 4 << 20  # ~2.5 s of training on one core; enough for a 32k vocab

# Role markers are plain text: every engine's template renderer handles this, nothing special.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    description: dict[str, Any]


def default_corpus_roots() -> list[Path]:
    return [Path("/usr/share/common-licenses"), Path(sysconfig.get_paths()["stdlib"])]


def load_corpus(roots: list[Path] | None = None, max_bytes: int = DEFAULT_CORPUS_BYTES) -> Corpus:
    """Top-level regular files of each root (sorted, symlinks skipped: they duplicate text)."""
    roots = default_corpus_roots() if roots is None else roots
    texts: list[str] = []
    names: list[str] = []
    h = hashlib.sha256()
    total = 0
    for root in roots:
        if not root.is_dir():
            continue
        for f in sorted(root.iterdir()):
            if total >= max_bytes:
                break
            if f.is_symlink() or not f.is_file():
                continue
            data = f.read_bytes()[: max_bytes - total]
            h.update(data)
            total += len(data)
            texts.append(data.decode("utf-8", errors="replace"))
            names.append(str(f))
    if not texts:
        raise FileNotFoundError(f"no tokenizer corpus text found under {[str(r) for r in roots]}")
    desc = {
        "roots": [str(r) for r in roots],
        "files": len(names),
        "first": names[0],
        "last": names[-1],
        "bytes": total,
        "sha256": h.hexdigest(),
    }
    return Corpus(texts, desc)


def train_bpe(corpus: Corpus, vocab_size: int) -> Tokenizer:
    """GPT-2 style byte-level BPE; a small corpus may yield fewer tokens than vocab_size."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.texts, trainer)
    # Llama prepends BOS; the same rule goes to llama.cpp through add_bos_token below.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS_ID)]
    )
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != i:
            raise RuntimeError(f"special token {t!r} did not get id {i}")
    return tok


def save_tokenizer(tok: Tokenizer, out_dir: Path, model_max_length: int) -> None:
    """Write tokenizer.json + a tokenizer_config.json that old and new loaders all accept.

    transformers 5 would write tokenizer_class TokenizersBackend, which older transformers (used
    by other engines) cannot resolve; PreTrainedTokenizerFast loads everywhere.
    """
    tok.save(str(out_dir / "tokenizer.json"), pretty=True)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    config = {
        **specials,
        "add_bos_token": True,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    write_json(out_dir / "tokenizer_config.json", config)
    write_json(out_dir / "special_tokens_map.json", specials)


def copy_tokenizer(src: Path, out_dir: Path, model_max_length: int) -> Tokenizer:
    """Reuse the tokenizer of another synthetic model dir (same files, context length adapted)."""
    if not (src / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{src}: no tokenizer.json to copy")
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != i:
            raise ValueError(f"{src}: not a synthetic tokenizer ({t!r} is not id {i})")
    (out_dir / "tokenizer.json").write_bytes((src / "tokenizer.json").read_bytes())
    config = json.loads((src / "tokenizer_config.json").read_text())
    write_json(out_dir / "tokenizer_config.json", config | {"model_max_length": model_max_length})
    (out_dir / "special_tokens_map.json").write_bytes(
        (src / "special_tokens_map.json").read_bytes()
    )
    return tok
