#!/usr/bin/env bash
# Take down what tests/slurm/slurm_up.sh started: cancel every job of the test cluster, stop slurmd,
# slurmctld and (only if slurm_up.sh started it) munged, each by the process id in its pid file,
# wait until they are gone, and remove the /etc/slurm/slurm.conf link to STATE_DIR/slurm.conf.
# Logs stay in STATE_DIR/log. Safe to run twice.
#
#   tests/slurm/slurm_down.sh [STATE_DIR]   (default: $ENGINEBENCH_SLURM_DIR or /tmp/enginebench-slurm)
#
# Unset SLURM_CONF afterwards: Slurm's tools pointed at a cluster that is down wait ~10 s per call.
set -uo pipefail

state=${1:-${ENGINEBENCH_SLURM_DIR:-/tmp/enginebench-slurm}}
log() { printf 'slurm_down: %s\n' "$*" >&2; }
t0=$(date +%s.%N)

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

if [ -f "$state/slurm.conf" ] && alive "$(cat "$state/slurmctld.pid" 2>/dev/null)"; then
    export SLURM_CONF="$state/slurm.conf"
    # Jobs first: slurmstepd (and the job's processes) outlive slurmd unless the jobs are cancelled.
    if scancel --quiet --partition=debug 2>/dev/null; then
        for _ in $(seq 150); do
            [ -z "$(squeue -h -t RUNNING,COMPLETING,PENDING,CONFIGURING -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi
# The daemons: TERM all at once (each takes ~2 s to exit), KILL what is left after 10 s.
pids=()
for name in slurmd slurmctld munged; do      # munged.pid exists only if slurm_up.sh started munged
    file="$state/$name.pid"
    [ -s "$file" ] || continue
    pid=$(tr -dc 0-9 <"$file")
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); fi
done
for _ in $(seq 100); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
done
for pid in "${left[@]}"; do log "process $pid ignored TERM; killing it"; kill -KILL "$pid" 2>/dev/null; done
rm -f "$state"/{slurmd,slurmctld,munged}.pid
# The link slurm_up.sh made (only if it still points here).
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$state/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi

awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "TIMING stop_s=%.1f\n", b - a }' >&2
