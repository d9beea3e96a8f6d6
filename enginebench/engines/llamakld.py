"""llama.cpp's `llama-perplexity --kl-divergence`: the full-vocabulary KL of a quantized GGUF
against its f16, on llama.cpp's own logits (tools/perplexity/perplexity.cpp: the base run saves
each position's log-probabilities, the second compares; half of each `-c` chunk is scored). A
cross-check beside fidelity's API figure, which sees only the top-k."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enginebench import proc

_STATS = {
    "kld_mean": r"Mean\s+KLD:\s+([-\d.]+)",
    "kld_p99": r"99\.0%\s+KLD:\s+([-\d.]+)",
    "kld_max": r"Maximum KLD:\s+([-\d.]+)",
    "same_top_percent": r"Same top p:\s+([-\d.]+)",
    "ppl_ratio": r"Mean PPL\(Q\)/PPL\(base\)\s+:\s+([-\d.]+)",
}


class KldError(RuntimeError):
    pass


def kld_argv(
    tool: str | os.PathLike[str], gguf: str | os.PathLike[str], base: str | os.PathLike[str],
    *, text: str | os.PathLike[str] | None = None, ctx: int = 128, extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """The base run (`text` given: the f16 GGUF's log-probabilities over it, saved to `base`)
    or the comparison (no text: `gguf` against the saved `base`)."""
    argv = [str(tool), "-m", str(gguf), "-c", str(ctx), "--kl-divergence-base", str(base)]
    argv += ["-f", str(text)] if text is not None else ["--kl-divergence"]
    return [*argv, *extra]


KLD_ATTEMPTS = 3  # comparison runs before giving up (their output can lose its end)


def parse_kld(output: str) -> dict[str, Any]:
    """The KL statistics llama-perplexity prints (Same top p in %)."""
    found = {k: re.search(p, output) for k, p in _STATS.items()}
    if found["kld_mean"] is None:
        raise KldError("llama-perplexity printed no KL divergence statistics")
    return {k: float(m.group(1)) if m else None for k, m in found.items()}


def measure_kld(
    tool: str, base_gguf: str, gguf: str, text: str, bin_dir: str | os.PathLike[str], *,
    ctx: int = 128, extra: Sequence[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """`gguf`'s KL statistics against `base_gguf` on `text`: the base run saves its
    log-probabilities (to a temporary file), the comparison reads them. Each run's output is
    printed; a failed one raises KldError with the tool's own line."""
    env = tool_env(tool, bin_dir)
    with tempfile.TemporaryDirectory(prefix="enginebench-kld-") as tmp:
        saved, text_file = Path(tmp) / "base.kld", Path(tmp) / "text.txt"
        text_file.write_text(text)
        base_argv = kld_argv(tool, base_gguf, saved, text=text_file, ctx=ctx, extra=extra)
        argv = kld_argv(tool, gguf, saved, ctx=ctx, extra=extra)
        print(" ".join(base_argv), flush=True)
        print(proc.run(base_argv, what="llama-perplexity", error=KldError, env=env)[-3000:])
        attempt = 0
        while True:
            attempt += 1
            print(" ".join(argv), flush=True)
            output = proc.run(argv, what="llama-perplexity", error=KldError, env=env)
            print(output[-3000:], flush=True)
            try:
                return {"base_argv": base_argv, "argv": argv, **parse_kld(output)}
            except KldError:
                # llama.cpp's logger is asynchronous and never flushed at exit (a leaked
                # singleton, llama.cpp#22142): a run that exits 0 can lose its last lines, the
                # statistics among them (seen once in ~10 runs: chunks 1-6 of 7, then nothing)
                if attempt == KLD_ATTEMPTS:
                    raise
                print(f"no statistics in the output (attempt {attempt}): running it again")


def tool_env(tool: str | os.PathLike[str], bin_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The tool finds its own library beside it and the build's in its bin/."""
    dirs = [str(Path(tool).resolve().parent), str(Path(bin_dir).resolve())]
    if os.environ.get("LD_LIBRARY_PATH"):  # the machine's own (CUDA's) after
        dirs.append(os.environ["LD_LIBRARY_PATH"])
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(dirs)}
