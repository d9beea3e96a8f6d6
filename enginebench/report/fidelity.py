"""The fidelity table: each engine x model x quant's distance from the reference model
(enginebench.fidelity.score) beside its speed, one row each, and the figure of speed against
KL (each quant a point)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from enginebench.fidelity.score import DEFINITIONS
from enginebench.jsonfile import read_json
from enginebench.metric_registry import Column
from enginebench.report.columns import present
from enginebench.report.decode import per_second
from enginebench.report.render import Table, page_html, to_markdown, write_csv
from enginebench.report.tables import valid
from enginebench.report.tidy import read_results

PathLike = str | os.PathLike[str]

COLUMNS = [
    Column("model", "model", "text"),
    Column("engine", "engine", "text"),
    Column("quant", "quant", "text"),
    Column("engine version", "engine_version", "text"),
    Column("top-1 agreement", "top1_agreement", "ratio"),
    Column("exact match (tokens)", "exact_match_tokens", "num"),
    Column("full matches", "full_match_fraction", "ratio"),
    Column("KL mean (nats)", "kl_mean", "sci"),
    Column("KL P99 (nats)", "kl_p99", "sci"),
    Column("chosen logprob error", "logprob_err_mean", "ratio"),
    Column("top-k", "top_k", "int"),
    Column("prompts", "prompts", "int"),
    Column("failed", "failed", "int"),
    Column("scored by", "scored_by", "text"),
    Column("llama-perplexity KL vs f16 (nats)", "kld_mean", "sci", optional=True),
    Column("llama-perplexity same top vs f16 (%)", "same_top_percent", "sec", optional=True),
    Column("decode (tok/s)", "decode_tok_s", "tok", optional=True),
    Column("peak output (tok/s)", "peak_output_tok_s", "tok", optional=True),
    Column("reference", "reference", "text"),
]

NOTES = (
    *(f"{k}: {v}." for k, v in DEFINITIONS.items()),
    "reference: the model's HF weights in transformers (dtype and device named per row), run "
    "over the prompt and the engine's own greedy tokens (teacher-forced), so every position "
    "compares the same context. Failed requests are counted, not scored.",
    "scored by: token ids (the engine names each token's id, or its text maps to one), or text "
    "(an engine that returns no logprobs: its greedy text against the reference's, exact match "
    "only).",
    "A synthetic model's random weights make this a measure of each engine's and quantization's "
    "numerical error on that weight distribution (its next-token distributions are near "
    "uniform, so small errors flip the argmax), not of task accuracy.",
    "llama-perplexity (llama.cpp only): llama.cpp's own full-vocabulary KL(f16 || this GGUF) and "
    "how often both have the same top token, on the text of the same prompts (half of each "
    "128-token chunk scored): a cross-check against llama.cpp's f16 rather than the reference, "
    "over the whole vocabulary rather than the top-k.",
    "decode: 1000 / median TPOT of the decode sweep's single stream; peak output: the highest "
    "output throughput of a steady-state point of the other sweeps (results/comparison.*).",
)


def _speeds(results: PathLike | None, decode_sweeps: Sequence[str]) -> pd.DataFrame:
    """(engine, model, quant) -> decode tok/s and peak steady output tok/s."""
    keys = ["engine", "model", "quant"]
    if results is None:
        return pd.DataFrame(columns=[*keys, "decode_tok_s", "peak_output_tok_s"])
    tidy = read_results(results)
    single = tidy[
        tidy["sweep"].isin(list(decode_sweeps)) & (tidy["mode"] == "concurrency")
        & (tidy["load"] == 1)
    ]  # fmt: skip
    decode = (
        single.assign(decode_tok_s=single["p50_tpot_ms"].map(per_second))
        .groupby(keys)["decode_tok_s"]
        .median()
    )
    load = tidy[~tidy["sweep"].isin(list(decode_sweeps))]
    load = load[load["validity"].map(valid)] if len(load) else load
    peak = load.groupby(keys)["output_throughput"].max().rename("peak_output_tok_s")
    return pd.concat([decode, peak], axis=1).reset_index()


def fidelity_frame(
    scores: Sequence[PathLike], results: PathLike | None = None, decode_sweeps: Sequence[str] = (),
    kld: Sequence[PathLike] = (),
) -> pd.DataFrame:  # fmt: skip
    rows = []
    for path in scores:
        s = read_json(path)
        ref = s["reference"]
        by = [f"{s[k]} {w}" for k, w in (("scored_by_ids", "ids"), ("scored_by_text", "text"))
              if s[k]]  # fmt: skip
        rows.append(
            {**{k: s.get(k) for k in (c.key for c in COLUMNS)},
             "scored_by": ", ".join(by) or None,
             "reference": f"transformers {ref['versions']['transformers']}, {ref['dtype']} on "
                          f"{ref['device']}"}
        )  # fmt: skip
    keys = ["engine", "model", "quant"]
    frame = pd.DataFrame(rows, columns=[c.key for c in COLUMNS if c.key not in _JOINED])
    frame = frame.merge(_speeds(results, decode_sweeps), how="left", on=keys)
    checks = [read_json(p) for p in kld]
    cross = pd.DataFrame(
        [{k: c.get(k) for k in (*keys, "kld_mean", "same_top_percent")} for c in checks],
        columns=[*keys, "kld_mean", "same_top_percent"],
    )
    frame = frame.merge(cross, how="left", on=keys)
    return frame.sort_values(["model", "engine", "quant"], kind="stable").reset_index(drop=True)


_JOINED = ("decode_tok_s", "peak_output_tok_s", "kld_mean", "same_top_percent")


def write_fidelity(frame: pd.DataFrame, csv: PathLike, md: PathLike, html: PathLike) -> None:
    for path in (csv, md, html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    cols = present(COLUMNS, frame)
    write_csv(frame, cols, Path(csv))
    title = "Fidelity: each engine x quant against the reference model"
    Path(md).write_text(f"# {title}\n\n{to_markdown(frame, cols, NOTES)}")
    Path(html).write_text(page_html(title, [Table(frame, cols, title, None, NOTES)]))


def plot_fidelity(frame: pd.DataFrame, png: PathLike, svg: PathLike) -> None:
    """Speed (decode tok/s, else peak output tok/s) against KL mean, a panel per model, each
    engine x quant a labelled point."""
    models = sorted(frame["model"].unique()) or ["(none)"]
    fig = Figure(figsize=(6.4 * len(models), 4.8), layout="constrained")
    for ax, model in zip(fig.subplots(1, len(models), squeeze=False)[0], models, strict=True):
        rows = frame[frame["model"] == model]
        speed = "decode_tok_s" if rows["decode_tok_s"].notna().any() else "peak_output_tok_s"
        drawn = rows.dropna(subset=["kl_mean", speed])
        drawn = drawn[drawn["kl_mean"] > 0]
        for r in drawn.to_dict("records"):
            ax.scatter(r["kl_mean"], r[speed])
            ax.annotate(f"{r['engine']} {r['quant']}", (r["kl_mean"], r[speed]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")  # fmt: skip
        if len(drawn):
            ax.set_xscale("log")
        ax.set_xlabel("KL(reference || engine), mean over positions (nats, top-k + rest)")
        ax.set_ylabel("decode (tok/s)" if speed == "decode_tok_s" else "peak output (tok/s)")
        ax.set_title(f"{model}: speed against fidelity (left: closer to the reference)")
        ax.grid(True, alpha=0.3)
    for path in (png, svg):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
