"""Synthetic models: presets, reproducibility, a tokenizer every loader accepts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from enginebench.models import synthetic
from enginebench.models.files import hash_tree
from enginebench.models.synthetic import PRESETS, llama_config, synthesize, tensor_shapes


@pytest.mark.parametrize(
    ("preset", "n_params", "kv_heads", "vocab", "theta"),
    [  # the parameter counts of the real checkpoints
        ("tiny-llama", 5_245_184, 2, 4096, 10000.0),
        ("llama-2-7b", 6_738_415_616, 32, 32000, 10000.0),
        ("llama-2-13b", 13_015_864_320, 40, 32000, 10000.0),
        ("llama-3-8b", 8_030_261_248, 8, 128256, 500000.0),
    ],
)
def test_preset_shapes_without_weights(
    preset: str, n_params: int, kv_heads: int, vocab: int, theta: float
) -> None:
    config = llama_config(preset)
    assert config.num_key_value_heads == kv_heads and config.vocab_size == vocab
    assert dict(config.rope_parameters or {})["rope_theta"] == theta
    shapes = tensor_shapes(config)  # meta device: nothing is allocated
    assert sum(math.prod(s) for s in shapes.values()) == n_params


def test_llama_3_8b_matches_the_real_architecture() -> None:
    c = llama_config("llama-3-8b")
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (4096, 14336, 32)
    assert c.max_position_embeddings == 8192
    # default dtypes: what the real checkpoints ship in
    assert json.loads(c.to_json_string())["dtype"] == "bfloat16"
    assert json.loads(llama_config("llama-2-7b").to_json_string())["dtype"] == "float16"


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model preset 'gpt-5'"):
        synthesize("gpt-5", tmp_path / "a")
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        synthesize("tiny-llama", tmp_path / "a", dtype="int4")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        synthesize("tiny-llama", tmp_path / "b")
    assert set(PRESETS) >= {"tiny-llama", "llama-2-7b", "llama-2-13b", "llama-3-8b"}


def test_same_seed_same_bytes(tiny_model_dir: Path, tmp_path: Path) -> None:
    info = synthesize("tiny-llama", tmp_path / "again", seed=0)
    assert info["files"] == hash_tree(tiny_model_dir)
    assert info["tokenizer_corpus"]["bytes"] > 1_000_000
    other = synthesize("tiny-llama", tmp_path / "seed1", seed=1)
    assert other["files"]["model.safetensors"] != info["files"]["model.safetensors"]
    assert other["files"]["tokenizer.json"] == info["files"]["tokenizer.json"]


def test_tokenizer_from_another_model(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = synthesize("tiny-llama", tmp_path / "c", tokenizer_from=tiny_model_dir)
    assert copied["files"] == hash_tree(tiny_model_dir)
    small = synthetic.Preset(256, 768, 1, 4, 2, 1000, 512, 10000.0, "float32")
    monkeypatch.setitem(synthetic.PRESETS, "small-vocab", small)
    with pytest.raises(ValueError, match="4096 tokens, preset small-vocab only 1000"):
        synthesize("small-vocab", tmp_path / "d", tokenizer_from=tiny_model_dir)


def test_shards_hold_the_same_tensors(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    sharded = tmp_path / "sharded"
    synthesize("tiny-llama", sharded, seed=0, max_shard_bytes=8 << 20)
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    whole = load_file(tiny_model_dir / "model.safetensors")
    parts: dict = {}
    for f in sorted(sharded.glob("model-*.safetensors")):
        parts |= load_file(f)
    assert parts.keys() == whole.keys()
    assert all(parts[k].equal(whole[k]) for k in whole)


def test_files_that_engines_read(tiny_model_dir: Path) -> None:
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["torch_dtype"] == "float32" and cfg["rope_theta"] == 10000.0
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    gen = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert "max_new_tokens" not in gen and "max_length" not in gen
    tok_cfg = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_tokenizer_specials_and_chat(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert [tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id] == [0, 1, 2, 3]
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<unk>", "<s>", "</s>", "<pad>"]
    assert len(tok) == 4096
    ids = tok("def main():\n    return 'héllo 🦙'").input_ids
    assert ids[0] == 1 and 0 not in ids  # BOS first; byte-level: nothing is unknown
    assert tok.decode(ids, skip_special_tokens=True) == "def main():\n    return 'héllo 🦙'"
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<s><|user|>\nhi</s>\n<|assistant|>\n"


def test_transformers_loads_and_generates(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.dtype == torch.float32
    out = model.generate(torch.tensor([[1, 100, 200]]), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 7)
