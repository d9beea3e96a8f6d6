#!/usr/bin/env bash
# Copy a finished run's small outputs into a results folder of the docs (docs/results/<host>/run-N):
#
#     tools/publish-run.sh RESULTS DEST        # RESULTS: the workflow's results/ folder
#
# DEST receives the tidy table (results.csv/.parquet), the comparison, capacity and decode tables,
# the plots, the report and provenance pages, the bandwidth used by the roofline, and
# runs/<engine>_<model>_<quant>_<sweep>/ with each point's summary, its per-request records
# (gzipped: they are most of a run's size, and every device call carries the whole tree),
# server.json (argv, environment, versions) and the engine table; llama-bench's JSON as
# runs/llama-bench_<engine>_<quant>.json; the fidelity table and figure, and each engine x quant's
# fidelity files (what it answered, gzipped; its server; its score; llama-perplexity's KL) as
# runs/<engine>_<model>_<quant>_fidelity/. The prompt files (results/datasets) stay behind: the
# workflow remakes them from the config.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 RESULTS DEST" >&2; exit 2; }
SRC=$1 DEST=$2
[ -f "$SRC/results.csv" ] || { echo "publish-run: $SRC has no results.csv (run the aggregates first)" >&2; exit 2; }
mkdir -p "$DEST/runs"
cp "$SRC"/results.{csv,parquet} "$SRC"/{comparison,capacity}.{csv,md,html} "$DEST"/
# a run without a decode sweep has no decode table
for f in report.html provenance.html hardware/bandwidth.json decode.{csv,md,html} \
         fidelity.{csv,md,html}; do
    [ -f "$SRC/$f" ] && cp "$SRC/$f" "$DEST/"
done
[ -d "$SRC/plots" ] && cp -r "$SRC/plots" "$DEST/"
for table in "$SRC"/*/*/*/*/table.csv; do
    run=$(dirname "$table")
    IFS=/ read -r engine model quant sweep <<< "${run#"$SRC"/}"
    out="$DEST/runs/${engine}_${model}_${quant}_${sweep}"
    mkdir -p "$out/points"
    cp "$run"/server.json "$run"/table.{csv,md,html} "$out"/
    cp "$run"/points/*.json "$out/points/"
    for rec in "$run"/points/*.jsonl; do gzip -9 -c "$rec" > "$out/points/$(basename "$rec").gz"; done
done
for bench in "$SRC"/*/*/*/llama-bench.json; do
    [ -f "$bench" ] || continue
    IFS=/ read -r engine _model quant _ <<< "${bench#"$SRC"/}"
    cp "$bench" "$DEST/runs/llama-bench_${engine}_${quant}.json"
done
for score in "$SRC"/*/*/*/fidelity-score.json; do
    [ -f "$score" ] || continue
    run=$(dirname "$score")
    IFS=/ read -r engine model quant <<< "${run#"$SRC"/}"
    out="$DEST/runs/${engine}_${model}_${quant}_fidelity"
    mkdir -p "$out"
    cp "$run"/fidelity-{score,server}.json "$out"/
    gzip -9 -c "$run/fidelity-engine.jsonl" > "$out/fidelity-engine.jsonl.gz"
    [ -f "$run/llama-kld.json" ] && cp "$run/llama-kld.json" "$out"/
done
echo "publish-run: $(du -sh "$DEST" | cut -f1) in $DEST"
