#!/usr/bin/env bash
# Bring up a private single-node Slurm (slurmctld + slurmd, munge auth) on this host for tests.
#
#   tests/slurm/slurm_up.sh [STATE_DIR]        (default: $ENGINEBENCH_SLURM_DIR or /tmp/enginebench-slurm)
#   eval "$(tests/slurm/slurm_up.sh)"          # the last line printed on stdout is `export SLURM_CONF=...`
#   tests/slurm/slurm_down.sh [STATE_DIR]
#
# What it does, in order (each step prints `TIMING <step>_s=<seconds>` on stderr):
#   1. install Debian's slurm-wlm + munge with apt-get if a daemon or client is missing
#      (only as root and only where apt-get exists);
#   2. start munged unless a munged already answers (a site's own munged is reused, never stopped);
#   3. write STATE_DIR/slurm.conf for this host only: its short host name, its real CPU count and
#      memory (from `slurmd -C`), one partition `debug` (the default), no accounting (no slurmdbd),
#      MinJobAge=600 s (the executor plugin's `squeue` status check needs finished jobs to stay
#      visible), and ENGINEBENCH_SLURM_FAKE_GPUS (1, the default, or 0) pretend GPUs;
#   4. start slurmctld and slurmd with SLURM_CONF=STATE_DIR/slurm.conf and wait until `sinfo` shows
#      the node idle.
#
# The configuration lives in STATE_DIR; /etc/slurm/slurm.conf is a symbolic link to it, because a
# job's inner `srun` (snakemake-executor-plugin-slurm-jobstep) drops SLURM_CONF from its environment
# and then only finds Slurm's default path. slurm_down.sh removes the link again: Slurm's tools with a
# configuration but no controller wait ~10 s per call, and snakemake-executor-plugin-slurm runs
# `scontrol show config` whenever snakemake starts; with no configuration at all it fails at once.
# An /etc/slurm/slurm.conf that is not ours (a real cluster) is never touched: exit 3.
#
# Exit status: 0 up; 3 cannot run here (not root, Slurm missing and no apt-get, not Linux) -> callers
# skip; anything else: a real failure (the daemon logs are printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-${ENGINEBENCH_SLURM_DIR:-/tmp/enginebench-slurm}}
fake_gpus=${ENGINEBENCH_SLURM_FAKE_GPUS:-1}
ready_timeout=${ENGINEBENCH_SLURM_READY_TIMEOUT:-60}

log() { printf 'slurm_up: %s\n' "$*" >&2; }
cannot() { log "CANNOT RUN HERE: $*"; exit 3; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(uname -s)" = Linux ] || cannot "not Linux"
[ "$(id -u)" -eq 0 ] || cannot "not root (daemons and apt-get need root)"
etc_conf=/etc/slurm/slurm.conf
marker="# Written by tests/slurm/slurm_up.sh"
if [ -e "$etc_conf" ] || [ -L "$etc_conf" ]; then
    # Ours (a link to a configuration with our marker, or a dangling link) may be replaced.
    if [ -L "$etc_conf" ] && { [ ! -e "$etc_conf" ] || grep -qF "$marker" "$etc_conf"; }; then :; else
        cannot "$etc_conf exists and was not written by slurm_up.sh (a real Slurm installation?)"
    fi
fi
[[ "$fake_gpus" =~ ^[01]$ ]] || { log "ENGINEBENCH_SLURM_FAKE_GPUS must be 0 or 1"; exit 2; }

# A previous run that was not taken down (a killed test session) is taken down first.
if compgen -G "$state/*.pid" >/dev/null; then
    log "stopping a previous instance in $state"
    "$here/slurm_down.sh" "$state" || true
fi

case "$state" in /?*/*|/tmp/?*) ;; *) log "refusing state dir '$state' (give an absolute path below a folder)"; exit 2 ;; esac
rm -rf "$state"
mkdir -p "$state"/{ctld,spool,log}

# 1. Install.
t0=$(now)
need=()
for tool in slurmctld slurmd sbatch squeue sinfo scontrol srun munged munge; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || cannot "missing ${need[*]} and no apt-get to install them"
    log "installing slurm-wlm and munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurm-wlm munge)
    apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=120)
    # An image without package lists (or stale ones) needs an update first; try without it first.
    if ! apt-get install "${apt_opts[@]}" "${pkgs[@]}" >"$state/log/apt.log" 2>&1; then
        apt-get update -q >>"$state/log/apt.log" 2>&1 || { tail -20 "$state/log/apt.log" >&2; exit 1; }
        apt-get install "${apt_opts[@]}" "${pkgs[@]}" >>"$state/log/apt.log" 2>&1 \
            || { tail -20 "$state/log/apt.log" >&2; exit 1; }
    fi
fi
echo "TIMING install_s=$(elapsed "$t0")" >&2

# 2. munge: reuse a running munged, else start one as the munge user.
t0=$(now)
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "reusing the running munged"
else
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null || { log "munged does not answer"; exit 1; }
    cp /run/munge/munged.pid "$state/munged.pid"   # ours: slurm_down.sh stops it
fi
echo "TIMING munge_s=$(elapsed "$t0")" >&2

# 3. slurm.conf for this host.
host=$(hostname -s)
# `slurmd -C` prints this node's real hardware line: NodeName=... CPUs=... RealMemory=...
node_hw=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
gres_line=""
if [ "$fake_gpus" -gt 0 ]; then
    # A pretend GPU: Slurm 22.05 drops a gpu GRES without a device file, so /dev/null stands in (one
    # file, hence one GPU). Slurm then accepts `--gpus=1`, runs GPU jobs one at a time and sets
    # CUDA_VISIBLE_DEVICES=0 for them; with task/none nothing is bound. Enough to test the
    # submission path on a CPU host.
    gres_line="Gres=gpu:1"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null Count=1\n' "$host" >"$state/gres.conf"
fi
cat >"$state/slurm.conf" <<EOF
$marker for a throwaway single-node test cluster.
ClusterName=enginebench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=${ENGINEBENCH_SLURMCTLD_PORT:-6817}
SlurmdPort=${ENGINEBENCH_SLURMD_PORT:-6818}
# No cgroups: plain process tracking works in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# No accounting database: sacct cannot answer, hence the plugin setting slurm-status-command: squeue.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# ...but every finished job is still recorded, one line each (the tests read it).
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
# Finished jobs stay visible to squeue for 10 minutes (>= 3 x the plugin's first status check).
MinJobAge=600
SchedulerType=sched/backfill
DefMemPerCPU=1000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $node_hw $gres_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# 4. Daemons.
t0=$(now)
export SLURM_CONF="$state/slurm.conf"
mkdir -p /etc/slurm
ln -sfn "$state/slurm.conf" "$etc_conf"
slurmctld -c          # -c: no state from an earlier cluster
slurmd
ok=""
deadline=$(( $(date +%s) + ready_timeout ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    for daemon in slurmctld slurmd; do
        pid=$(cat "$state/$daemon.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then st="$daemon exited"; break 2; fi
    done
    st=$(sinfo -h -N -n "$host" -o %T 2>/dev/null || true)
    if [ "$st" = idle ]; then ok=1; break; fi
    # A node that comes up "down"/"drained" (e.g. after an unclean stop) is put back in service.
    case "$st" in down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;; esac
    sleep 0.25
done
if [ -z "$ok" ]; then
    log "node $host not idle (state: ${st:-none}, waited at most ${ready_timeout}s); daemon logs:"
    tail -n 30 "$state"/log/*.log >&2 || true
    "$here/slurm_down.sh" "$state" || true
    exit 1
fi
echo "TIMING start_s=$(elapsed "$t0")" >&2
log "up: $(sinfo -h -o '%P %D %c %m %G %T' | tr '\n' ' ')"
echo "export SLURM_CONF=$state/slurm.conf"
