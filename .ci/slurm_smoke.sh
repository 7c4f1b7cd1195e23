#!/usr/bin/env bash
# Smoke test of profiles/slurm on a real (one-machine) SLURM cluster.
#
# On a Debian machine, as root: installs SLURM + munge from apt (services kept from
# auto-starting), starts munged, slurmctld and slurmd by hand with all state in a
# temporary directory and two fake GPUs (gres.conf + mknod), runs part of the quick
# workflow through `snakemake --profile profiles/slurm` (two DDMNIST seeds: two training
# jobs at once), checks that every training job ran under SLURM with a GPU assigned by the
# scheduler (CUDA_VISIBLE_DEVICES), that two of them ran at the same time and that jobs
# running at the same time had different GPUs, then shuts the cluster down. Without real
# GPUs torch falls back to the CPU with a warning: expected. CI (.ci/run) runs it.
#
#   sudo .ci/slurm_smoke.sh                 # from the repository root, venv in .venv
#   SMOKE_TARGET=all .ci/slurm_smoke.sh     # the whole quick report (34 jobs, slower)
#
# Environment knobs:
#   SMOKE_TARGET     snakemake targets, space-separated (default: the metrics.json of two
#                    training runs, seeds 0 and 1 of DDMNIST C4 cnn)
#   SMOKE_TIMEOUT    seconds for the snakemake run (default 900)
#   SMOKE_KEEP=1     keep the cluster's state directory (logs) after the run
#   VENV             virtualenv to activate (default .venv; empty: use the current PATH)
#
# Outputs go to results/slurm_smoke (report: results/slurm_smoke/report.html, logs:
# results/slurm_smoke/logs), removed first; a quick or paper run in this checkout is left alone.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

RUN_NAME=slurm_smoke
RESULTS=results/$RUN_NAME
LOGS=$RESULTS/logs
REPORT=$RESULTS/report.html
TRAIN_RUNS=(ddmnist/C4/cnn/seed0 ddmnist/C4/cnn/seed1)   # two at once: one GPU each
SMOKE_TARGET=${SMOKE_TARGET:-$RESULTS/runs/${TRAIN_RUNS[0]}/metrics.json $RESULTS/runs/${TRAIN_RUNS[1]}/metrics.json}
read -ra TARGETS <<< "$SMOKE_TARGET"
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-900}
VENV=${VENV-.venv}
N_GPUS=2

T0=$(date +%s)
say() { printf '[slurm-smoke %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { say "FAIL: $*"; exit 1; }
slurm_version() { dpkg-query -W -f='slurm ${Version}' slurm-client 2>/dev/null || echo "slurm ?"; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts slurmd as root)"

if [ -n "$VENV" ]; then
    # shellcheck disable=SC1091
    . "$VENV/bin/activate"
fi
command -v snakemake >/dev/null || die "snakemake not on PATH (VENV=$VENV)"
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || die "snakemake-executor-plugin-slurm is not installed"

# ---------------------------------------------------------------- install -------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurmctld slurmd slurm-client munge"
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Debian's invoke-rc.d asks this script first; 101 = "action not allowed", so
        # the package scripts do not start munge/slurm services (we start them by hand).
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurmctld slurmd slurm-client munge)
    if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/tmp/slurm-smoke-apt.log 2>&1; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/tmp/slurm-smoke-apt.log 2>&1 \
            || { cat /tmp/slurm-smoke-apt.log; die "apt-get install failed"; }
    fi
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    say "installed: $(slurm_version)"
else
    say "SLURM already installed: $(slurm_version)"
fi
id munge >/dev/null 2>&1 || die "the munge package did not create the munge user"

# ---------------------------------------------------------------- cluster state -------
# SLURM_CONF alone is not enough: inside a job the slurm-jobstep executor drops every
# SLURM_* variable (SLURM_CONF included) before its nested `srun`, which then reads the
# default file. So the default file points to ours for the duration of the test.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
    die "$DEFAULT_CONF exists (a real SLURM setup, or another smoke test running); not touching it"
fi
STATE=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 755 "$STATE"
mkdir -p "$STATE"/{etc,log,run,spool/ctld,spool/d,dev,munge}
export SLURM_CONF=$STATE/etc/slurm.conf

cleanup() {
    local rc=$?
    set +e
    if [ -f "$STATE/run/slurmctld.pid" ]; then
        say "shutting the cluster down"
        scancel --full --quiet -u root 2>/dev/null
        scontrol shutdown 2>/dev/null   # stops slurmctld and every slurmd
        for _ in $(seq 20); do
            pgrep -F "$STATE/run/slurmctld.pid" >/dev/null 2>&1 \
                || pgrep -F "$STATE/run/slurmd.pid" >/dev/null 2>&1 || break
            sleep 0.5
        done
        for pidfile in "$STATE/run/slurmd.pid" "$STATE/run/slurmctld.pid"; do
            [ -f "$pidfile" ] && pkill -F "$pidfile" 2>/dev/null
        done
    fi
    [ -f "$STATE/munge/munged.pid" ] && pkill -F "$STATE/munge/munged.pid" 2>/dev/null
    [ "$(readlink "$DEFAULT_CONF" 2>/dev/null)" = "$SLURM_CONF" ] && rm -f "$DEFAULT_CONF"
    if [ "$rc" != 0 ]; then
        for f in "$STATE"/log/*.log; do
            [ -f "$f" ] || continue
            echo "----- tail of $f"; tail -n 30 "$f"
        done
    fi
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then
        say "cluster state kept in $STATE"
    else
        rm -rf "$STATE"
    fi
    say "done, exit status $rc, $(( $(date +%s) - T0 )) s in all"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# munge: its own key, socket and files; munged refuses group/world-writable paths.
chown munge:munge "$STATE/munge"
chmod 755 "$STATE/munge"   # the socket needs x for all; the key itself is 0400
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$STATE/munge/munge.key"
chmod 400 "$STATE/munge/munge.key"
MUNGE_SOCKET=$STATE/munge/munge.socket
runuser -u munge -- munged \
    --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed" \
    || { cat "$STATE/munge/munged.log" 2>/dev/null; die "munged did not start"; }

# Fake GPUs: character devices (/dev/null's numbers) that gres.conf hands out.
for i in $(seq 0 $((N_GPUS - 1))); do
    mknod "$STATE/dev/nvidia$i" c 1 3
done

NODE=$(hostname -s)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
# Declare at least 32 GB so the profile's train request (mem_mb) fits on a small CI
# machine; config_overrides keeps slurmd from draining the node for "Low RealMemory".
# Nothing enforces memory here (no cgroups, no accounting).
DECLARED_MEM=$(( MEM_MB > 32768 ? MEM_MB : 32768 ))
cat > "$STATE/etc/slurm.conf" <<EOF
ClusterName=smoke
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
DefMemPerCPU=500
MinJobAge=300
ReturnToService=2
MailProg=/bin/true
SchedulerType=sched/backfill
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$DECLARED_MEM Gres=gpu:$N_GPUS State=UNKNOWN
PartitionName=smoke Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
{
    echo "AutoDetect=off"
    for i in $(seq 0 $((N_GPUS - 1))); do
        echo "NodeName=$NODE Name=gpu File=$STATE/dev/nvidia$i"
    done
} > "$STATE/etc/gres.conf"

mkdir -p "$(dirname "$DEFAULT_CONF")"
ln -s "$SLURM_CONF" "$DEFAULT_CONF"

say "starting slurmctld and slurmd (state in $STATE)"
slurmctld -f "$SLURM_CONF" -i || die "slurmctld did not start"
slurmd -f "$SLURM_CONF" || die "slurmd did not start"
for _ in $(seq 60); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || { sinfo -N -l || true; die "node not idle (state: '${state:-?}')"; }
say "cluster up: $(sinfo -h -o '%P %D nodes %c cpus %G %T')"

# The scheduler hands out the fake GPUs: one job, one GPU, CUDA_VISIBLE_DEVICES set.
cvd=$(timeout 60 srun -n1 --gpus=1 --mem=100 -t 1 printenv CUDA_VISIBLE_DEVICES) \
    || die "srun --gpus=1 failed"
[[ "$cvd" =~ ^[0-9]+$ ]] || die "srun --gpus=1 gave CUDA_VISIBLE_DEVICES='$cvd'"
say "srun --gpus=1 -> CUDA_VISIBLE_DEVICES=$cvd"

# ---------------------------------------------------------------- the workflow --------
rm -rf "$RESULTS" "$REPORT"
# The profile is used as it is (default partition, no account); only the status polling
# is made faster for seconds-long jobs. The target goes first: --config takes several values.
say "snakemake --profile profiles/slurm --configfile config.quick.yaml $SMOKE_TARGET"
T_RUN=$(date +%s)
set +e
timeout "$SMOKE_TIMEOUT" snakemake "${TARGETS[@]}" \
    --profile profiles/slurm \
    --configfile config.quick.yaml \
    --config results="$RESULTS" report="$REPORT" run_name="$RUN_NAME" \
    --slurm-init-seconds-before-status-checks 5 \
    --seconds-between-status-checks 5 \
    --slurm-keep-successful-logs
rc=$?
set -e
say "snakemake exit status $rc after $(( $(date +%s) - T_RUN )) s"
[ "$rc" = 124 ] && die "snakemake ran past ${SMOKE_TIMEOUT} s"
[ "$rc" = 0 ] || die "snakemake failed"

# ---------------------------------------------------------------- checks --------------
for run in "${TRAIN_RUNS[@]}"; do
    [ -s "$RESULTS/runs/$run/metrics.json" ] || die "no metrics.json for $run"
    train_log=$LOGS/train/$run.log
    [ -f "$train_log" ] || die "no training log $train_log"
    device_line=$(grep -m1 '^device ' "$train_log" || true)
    say "training log of $run: $device_line"
    [[ "$device_line" =~ ^device\ cuda:GPU[0-9]+\ \(slurm\) ]] \
        || die "the training job $run did not get a SLURM-assigned GPU (see $train_log)"
done
grep -q 'CUDA is not available; using the CPU' "$train_log" \
    && say "(no real GPU here: torch fell back to the CPU, as expected)"
# Every training run of this test: a SLURM-assigned GPU, never two at once on one GPU, and at
# least two at once (else the test proved nothing about sharing).
python - "$RESULTS/runs" <<'EOF' || die "GPU assignment check failed"
import json, sys
from pathlib import Path
runs = {p.parent.relative_to(sys.argv[1]).as_posix(): json.loads(p.read_text())
        for p in sorted(Path(sys.argv[1]).rglob("train.json"))}
assert runs, "no train.json"
by_gpu = {}
for name, info in runs.items():
    assert info["device"].endswith("(slurm)"), (name, info["device"])
    if "started_at" in info and "finished_at" in info:
        by_gpu.setdefault(info["device"], []).append((info["started_at"], info["finished_at"], name))
for gpu, spans in by_gpu.items():
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        assert end <= start, f"{a} and {b} overlapped on {gpu}"
spans = sorted((info["started_at"], info["finished_at"], info["device"], name)
               for name, info in runs.items())
concurrent = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]
assert concurrent, f"no two training jobs ran at the same time: {spans}"
for a, b in concurrent:
    assert a[2] != b[2], f"{a[3]} and {b[3]} ran at the same time on {a[2]}"
devices = sorted({info["device"] for info in runs.values()})
print(f"[slurm-smoke] {len(runs)} training runs on {', '.join(devices)}; "
      f"{len(concurrent)} pair(s) ran at the same time, each pair on two different GPUs")
EOF
# What the profile asked SLURM for (finished jobs stay in slurmctld for MinJobAge=300 s).
train_job=$(squeue -h -t all -o '%i %k' | awk '$2 ~ /^rule_train_/ {print $1}' | head -n1)
[ -n "$train_job" ] || die "the training job is not known to SLURM"
request=$(scontrol show job "$train_job" | grep -oE '(TimeLimit|MinMemoryNode|TresPerJob|Partition)=[^ ]+' \
    | tr '\n' ' ')
say "SLURM job $train_job (train): $request"
[[ "$request" == *"TresPerJob=gres:gpu:1"* ]] || die "train job did not ask for --gpus=1"
say "OK: the workflow ran through profiles/slurm"
