"""Seeded random-weight Llama models in Hugging Face layout, made without network access.

Weights are drawn tensor by tensor (each from its own generator seeded by seed and tensor name) and
written shard by shard, so a 13B preset never holds more than one shard in memory and the values
do not depend on the order of tensors or on the dtype beyond rounding.

Default dtype: the tiny preset is float32 (CPU engines run it as is); the big presets use the dtype
their real checkpoints ship in (Llama 2: float16, Llama 3: bfloat16). Engines may still cast
(vLLM turns float32 into bfloat16 unless --dtype float32).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from enginebench.jsonfile import write_json
from enginebench.models.files import atomic_dir, hash_tree
from enginebench.models.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    copy_tokenizer,
    load_corpus,
    save_tokenizer,
    train_bpe,
)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
INIT_STD = 0.02  # transformers' Llama initializer_range
MAX_TOKENIZER_VOCAB = 32000  # the local corpus yields ~37k merges at most; more only costs time


@dataclass(frozen=True)
class Preset:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    ctx: int
    rope_theta: float
    dtype: str
    rms_eps: float = 1e-5


PRESETS: dict[str, Preset] = {
    "tiny-llama": Preset(256, 768, 4, 4, 2, 4096, 4096, 10000.0, "float32"),
    "llama-2-7b": Preset(4096, 11008, 32, 32, 32, 32000, 4096, 10000.0, "float16"),
    "llama-2-13b": Preset(5120, 13824, 40, 40, 40, 32000, 4096, 10000.0, "float16"),
    "llama-3-8b": Preset(4096, 14336, 32, 32, 8, 128256, 8192, 500000.0, "bfloat16"),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def llama_config(preset: str, dtype: str | None = None) -> LlamaConfig:
    p = get_preset(preset)
    return LlamaConfig(
        hidden_size=p.hidden,
        intermediate_size=p.intermediate,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        vocab_size=p.vocab,
        max_position_embeddings=p.ctx,
        rope_parameters={"rope_type": "default", "rope_theta": p.rope_theta},
        rms_norm_eps=p.rms_eps,
        initializer_range=INIT_STD,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=False,
        dtype=_check_dtype(dtype or p.dtype),
    )


def tensor_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes exactly as transformers names them, without allocating."""
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def synthesize(
    preset: str,
    out_dir: Path,
    *,
    seed: int = 0,
    dtype: str | None = None,
    max_shard_bytes: int = 4 << 30,
    overwrite: bool = False,
    tokenizer_from: Path | None = None,
) -> dict[str, Any]:
    """Write a random-weight HF model dir; the same arguments give byte-identical files.

    The tokenizer is trained on this machine's local text (its corpus is machine-dependent, see
    tokenizer.py); tokenizer_from copies the tokenizer of an earlier synthetic model instead, so a
    model made on another machine (the GPU host) can share one tokenizer.
    """
    p = get_preset(preset)
    dtype = _check_dtype(dtype or p.dtype)
    config = llama_config(preset, dtype)
    t0 = time.perf_counter()
    with atomic_dir(Path(out_dir), overwrite=overwrite) as tmp:
        if tokenizer_from is None:
            corpus = load_corpus()
            tok = train_bpe(corpus, min(p.vocab, MAX_TOKENIZER_VOCAB))
            save_tokenizer(tok, tmp, p.ctx)
            corpus_desc: dict[str, Any] = corpus.description
        else:
            tok = copy_tokenizer(Path(tokenizer_from), tmp, p.ctx)
            corpus_desc = {"copied_from": str(Path(tokenizer_from).resolve())}
        if tok.get_vocab_size() > p.vocab:
            n = tok.get_vocab_size()
            raise ValueError(f"the tokenizer has {n} tokens, preset {preset} only {p.vocab}")
        _write_config(config, p, dtype, tmp)
        _write_weights(tensor_shapes(config), seed, DTYPES[dtype], tmp, max_shard_bytes)
        files = hash_tree(tmp)
    return {
        "source": "synthetic",
        "preset": preset,
        "architecture": asdict(p) | {"dtype": dtype},
        "seed": seed,
        "dtype": dtype,
        "tokenizer_vocab": tok.get_vocab_size(),
        "tokenizer_corpus": corpus_desc,
        "files": files,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return dtype


def _write_config(config: LlamaConfig, p: Preset, dtype: str, out: Path) -> None:
    cfg = json.loads(config.to_json_string())
    # Loaders built on transformers 4.x read these legacy keys instead of dtype / rope_parameters.
    cfg.update(torch_dtype=dtype, rope_theta=p.rope_theta, architectures=["LlamaForCausalLM"])
    write_json(out / "config.json", cfg)
    # No max_new_tokens here: vLLM would turn it into every request's default max_tokens.
    write_json(
        out / "generation_config.json",
        {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID},
    )


def _tensor(name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> torch.Tensor:
    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=dtype)  # RMSNorm starts at identity, as in transformers
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * INIT_STD).to(dtype)


def _write_weights(
    shapes: dict[str, tuple[int, ...]], seed: int, dtype: torch.dtype, out: Path, max_shard: int
) -> None:
    itemsize = torch.empty((), dtype=dtype).element_size()
    shards: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        n = itemsize * math.prod(shape)
        if shards[-1] and size + n > max_shard:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += n
    names = [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    if len(shards) == 1:
        names = ["model.safetensors"]
    # One generator per tensor, so tensors can be drawn in parallel (torch releases the GIL) with
    # the same bytes: llama-2-7b took 17 s on the GPU host's 16 cores, 6.3 GB peak RSS.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for fname, keys in zip(names, shards, strict=True):
            tensors = pool.map(lambda k: _tensor(k, shapes[k], seed, dtype), keys)
            # transformers refuses safetensors files without format=pt
            save_file(dict(zip(keys, tensors, strict=True)), out / fname, metadata={"format": "pt"})
    if len(shards) > 1:
        total = itemsize * sum(math.prod(s) for s in shapes.values())
        weight_map = {k: fname for fname, keys in zip(names, shards, strict=True) for k in keys}
        write_json(
            out / "model.safetensors.index.json",
            {"metadata": {"total_size": total}, "weight_map": weight_map},
        )
