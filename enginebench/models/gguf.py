"""HF -> GGUF with llama.cpp's own converter, then llama-quantize.

The converter is run from the llama.cpp source tree the engine was built from (converter, gguf-py
and the C++ loader must agree on the format), in a subprocess with an argv list.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from enginebench import proc
from enginebench.models.files import sha256_file

SHIM = Path(__file__).with_name("_convert_shim.py")
OUTTYPES = ("f32", "f16", "bf16", "q8_0", "auto")
# Names llama-quantize accepts (tools/quantize/quantize.cpp); COPY only re-writes the file.
_QUANT_NAMES = (
    "Q1_0 Q2_0 Q4_0 Q4_1 MXFP4_MOE Q5_0 Q5_1 IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M TQ1_0 TQ2_0 "
    "Q2_K Q2_K_S IQ3_XXS IQ3_S IQ3_M Q3_K IQ3_XS Q3_K_S Q3_K_M Q3_K_L IQ4_NL IQ4_XS Q4_K Q4_K_S "
    "Q4_K_M Q5_K Q5_K_S Q5_K_M Q6_K Q8_0 F16 BF16 F32 COPY"
)
QUANT_TYPES = tuple(_QUANT_NAMES.split())
# These quantize some tensors to types that llama.cpp refuses to make without an importance matrix.
NEEDS_IMATRIX = {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "Q2_K_S"}
_FALLBACK = re.compile(r"-> falling back to")  # one line per tensor, llama-quant.cpp


class ConversionError(RuntimeError):
    """A conversion or quantization step failed; the message is one line."""


def convert_hf_to_gguf(
    hf_dir: Path,
    out_file: Path,
    llama_cpp_src: Path,
    outtype: str = "f16",
    *,
    python: str | None = None,
    pre_tokenizer_fallback: str = "gpt-2",
    log: Path | None = None,
) -> dict[str, Any]:
    """Convert an HF model dir to one GGUF file (written atomically).

    pre_tokenizer_fallback: llama.cpp pre-tokenizer used for an unrecognized GPT-2 style BPE
    ("none" keeps the converter's refusal). python: interpreter with torch, transformers,
    sentencepiece and protobuf (default: this one).
    """
    hf_dir, out_file, src = Path(hf_dir), Path(out_file), Path(llama_cpp_src)
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype {outtype!r} not one of {', '.join(OUTTYPES)}")
    if not (hf_dir / "config.json").is_file():
        raise ConversionError(f"{hf_dir}: no config.json, not a Hugging Face model dir")
    if not (src / "convert_hf_to_gguf.py").is_file() or not (src / "gguf-py").is_dir():
        raise ConversionError(f"{src}: not a llama.cpp source tree (no convert_hf_to_gguf.py)")
    tmp = out_file.with_name(out_file.name + ".part")
    argv = [python or sys.executable, str(SHIM), str(src), pre_tokenizer_fallback, "--"]
    argv += [str(hf_dir), "--outfile", str(tmp), "--outtype", outtype]
    out, seconds = _run(argv, log, tmp, what="convert_hf_to_gguf.py")
    os.replace(tmp, out_file)
    fallback_used = "enginebench: unknown GPT-2 style BPE" in out
    return {
        "tool": "convert_hf_to_gguf.py",
        "llama_cpp_src": str(src.resolve()),
        "outtype": outtype,
        "pre_tokenizer": pre_tokenizer_fallback if fallback_used else "recognized",
        "sha256": sha256_file(out_file),
        "bytes": out_file.stat().st_size,
        "seconds": seconds,
    }


def convert_ggml_to_gguf(
    ggml_file: Path,
    out_file: Path,
    llama_cpp_src: Path,
    *,
    extra_args: tuple[str, ...] = (),
    python: str | None = None,
    log: Path | None = None,
) -> dict[str, Any]:
    """Legacy GGML (GGJT v3, e.g. *.ggmlv3.q4_0.bin) -> GGUF with convert_llama_ggml_to_gguf.py.

    extra_args go to the converter as is (--gqa 8 for 70B, --eps, --context-length, -m DIR).
    """
    ggml_file, out_file, src = Path(ggml_file), Path(out_file), Path(llama_cpp_src)
    script = src / "convert_llama_ggml_to_gguf.py"
    if not script.is_file():
        raise ConversionError(f"{src}: not a llama.cpp source tree (no {script.name})")
    with open(ggml_file, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        raise ConversionError(f"{ggml_file}: already GGUF, nothing to convert")
    if magic not in (b"lmgg", b"fmgg", b"tjgg"):
        raise ConversionError(f"{ggml_file}: not a GGML file (magic {magic!r})")
    tmp = out_file.with_name(out_file.name + ".part")
    argv = [python or sys.executable, str(script), "--input", str(ggml_file)]
    argv += ["--output", str(tmp), *extra_args]
    _, seconds = _run(argv, log, tmp, what=script.name)
    os.replace(tmp, out_file)
    return {
        "tool": script.name,
        "src_sha256": sha256_file(ggml_file),
        "sha256": sha256_file(out_file),
        "bytes": out_file.stat().st_size,
        "seconds": seconds,
    }


def quantize(
    llama_quantize_bin: Path,
    src_gguf: Path,
    dst_gguf: Path,
    qtype: str,
    *,
    imatrix: Path | None = None,
    threads: int | None = None,
    log: Path | None = None,
) -> dict[str, Any]:
    """Quantize with llama-quantize; fallbacks (rows not a multiple of the block) are counted.

    K-quants (Q4_K_M, ...) need tensor rows that are multiples of 256, else llama.cpp quantizes
    those tensors with another type: a "Q4_K_M" file is then not what its name says.
    """
    qtype = qtype.upper()
    if qtype not in QUANT_TYPES:
        raise ValueError(
            f"unknown quantization {qtype!r}; llama-quantize takes {' '.join(QUANT_TYPES)}"
        )
    if qtype in NEEDS_IMATRIX and imatrix is None:
        raise ValueError(f"{qtype} needs an importance matrix (imatrix=...)")
    src_gguf, dst_gguf = Path(src_gguf), Path(dst_gguf)
    if not src_gguf.is_file():
        raise ConversionError(f"{src_gguf}: no such GGUF file")
    tmp = dst_gguf.with_name(dst_gguf.name + ".part")
    argv = [str(llama_quantize_bin)]
    if imatrix is not None:
        argv += ["--imatrix", str(imatrix)]
    argv += [str(src_gguf), str(tmp), qtype]
    if threads:
        argv.append(str(threads))
    out, seconds = _run(argv, log, tmp, what="llama-quantize")
    os.replace(tmp, dst_gguf)
    return {
        "tool": "llama-quantize",
        "qtype": qtype,
        "src_sha256": sha256_file(src_gguf),
        "sha256": sha256_file(dst_gguf),
        "bytes": dst_gguf.stat().st_size,
        "fallback_tensors": len(_FALLBACK.findall(out)),
        "seconds": seconds,
    }


def _run(argv: list[str], log: Path | None, tmp: Path, *, what: str) -> tuple[str, float]:
    """Output and seconds of a step that writes `tmp`; a failed step leaves no `tmp` behind."""
    t0 = time.perf_counter()
    try:
        out = proc.run(argv, what=what, error=ConversionError, log=log)
    except ConversionError:
        tmp.unlink(missing_ok=True)
        raise
    return out, round(time.perf_counter() - t0, 3)
