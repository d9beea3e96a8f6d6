"""Shared helpers of the loadgen tests (no tests here): the ShareGPT fixture, a tiny tokenizer.

The tokenizer is a byte-level BPE trained in a fraction of a second on a few KB of text from
this repository's sources, saved as a Hugging Face directory (as models/synthetic.py does for
the real tiny model), so nothing is downloaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SHAREGPT_SMALL = Path(__file__).parent / "data" / "sharegpt_small.json"
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def _corpus() -> list[str]:
    root = Path(__file__).resolve().parents[1]
    texts = [json.dumps(json.loads(SHAREGPT_SMALL.read_text(encoding="utf-8"))[:8])]
    for path in sorted((root / "enginebench").rglob("*.py"))[:12]:
        texts.append(path.read_text(encoding="utf-8"))
    return texts


def make_tokenizer_dir(out: Path, vocab_size: int = 600) -> Path:
    """Train and save a tiny HF tokenizer (BOS added like Llama's) into `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "model_max_length": 4096,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def save_random_prompts(
    path: Path, tokenizer: Path, n: int, input_len: int, output_len: int
) -> Path:
    """A materialized prompt file of `n` random prompts (`bench --save-prompts`), for sweeps."""
    subprocess.run(
        [sys.executable, "-m", "enginebench", "bench", "--save-prompts", str(path),
         "--dataset-name", "random", "--num-prompts", str(n), "--random-input-len",
         str(input_len), "--random-output-len", str(output_len), "--tokenizer", str(tokenizer)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path
