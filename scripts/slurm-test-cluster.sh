#!/usr/bin/env bash
# A real Slurm cluster (two nodes by default) on this one machine, for the slurm backend's tests.
#
#   scripts/slurm-test-cluster.sh install   apt-get the Debian packages (root; once)
#   eval "$(scripts/slurm-test-cluster.sh start)"   start munged, slurmctld, one slurmd per node
#   scripts/slurm-test-cluster.sh status    daemons, nodes, queue
#   scripts/slurm-test-cluster.sh stop      cancel jobs, stop the daemons it started (by pid)
#
# The nodes (node1, node2, ...) are all 127.0.0.1 with their own slurmd port (Debian's Slurm is
# built with MULTIPLE_SLURMD). Each has fake GPUs of type t4: gres.conf points at
# character devices made with mknod (Slurm rejects plain files), so Slurm schedules them
# and sets CUDA_VISIBLE_DEVICES per step. There is no accounting database: finished jobs
# stay in `scontrol show job` for a day (MinJobAge) and are written to a jobcomp file.
#
# Everything lives under $VFT_SLURM_DIR (default: $TMPDIR or /tmp, then vft-slurm-test).
# VFT_SLURM_NODES (default 2) and VFT_SLURM_GPUS (default 2 per node) size the cluster.
# `start` prints only `export SLURM_CONF=...` on stdout; progress goes to stderr.
set -euo pipefail
shopt -s nullglob

DIR=${VFT_SLURM_DIR:-${TMPDIR:-/tmp}/vft-slurm-test}
CONF=$DIR/slurm.conf
NODES=()
for ((i = 1; i <= ${VFT_SLURM_NODES:-2}; i++)); do NODES+=("node$i"); done
GPUS_PER_NODE=${VFT_SLURM_GPUS:-2}
SBIN=${VFT_SLURM_SBIN:-/usr/sbin}

say() { echo "slurm-test-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

alive() { # pid file -> true if that process runs and is still the daemon it names
    local pid name
    [[ -f $1 ]] || return 1
    pid=$(cat "$1")
    name=$(basename "$1" .pid)
    name=${name%%-*} # slurmd-node1 -> slurmd
    kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]
}

free_ports() { # N free TCP ports on 127.0.0.1, chosen by the kernel
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

cmd_install() {
    if command -v sbatch >/dev/null && [[ -x $SBIN/slurmctld && -x $SBIN/slurmd && -x $SBIN/munged ]]; then
        say "already installed: $("$SBIN/slurmctld" -V)"
        return
    fi
    [[ $(id -u) == 0 ]] || die "install needs root (apt-get)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        slurmctld slurmd slurm-client munge
}

start_munge() {
    # one munged per machine: reuse a running one, never start a second
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running"
        return
    fi
    mkdir -p /run/munge
    chown munge:munge /run/munge
    chmod 0755 /run/munge
    [[ -f /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (run: $0 install)"
    runuser -u munge -- "$SBIN/munged"
    for _ in $(seq 50); do
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
            cp /run/munge/munged.pid "$DIR/munged.pid"  # ours: stop will end it
            return
        fi
        sleep 0.1
    done
    die "munged did not start"
}

write_config() {
    local ports
    read -r -a ports <<<"$(free_ports $((1 + ${#NODES[@]})))"
    local cpus
    cpus=$(nproc)
    mkdir -p "$DIR/state" "$DIR/log" "$DIR/dev"
    cat >"$CONF" <<EOF
# written by scripts/slurm-test-cluster.sh
ClusterName=vfttest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool-%n
SlurmctldPidFile=$DIR/state/slurmctld.pid
SlurmdPidFile=$DIR/state/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MinJobAge=86400
KillWait=10
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
GresTypes=gpu
EOF
    : >"$DIR/gres.conf"
    local i=0 node d
    for node in "${NODES[@]}"; do
        i=$((i + 1))
        echo "NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 Port=${ports[$i]}" \
            "CPUs=$cpus Gres=gpu:t4:$GPUS_PER_NODE State=UNKNOWN" >>"$CONF"
        for ((d = 0; d < GPUS_PER_NODE; d++)); do
            # a character device (same numbers as /dev/null): gres wants a device, not a file
            [[ -c $DIR/dev/$node-gpu$d ]] || mknod "$DIR/dev/$node-gpu$d" c 1 3
        done
        echo "NodeName=$node Name=gpu Type=t4 File=$DIR/dev/$node-gpu[0-$((GPUS_PER_NODE - 1))]" \
            >>"$DIR/gres.conf"
    done
    echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP" \
        >>"$CONF"
}

cmd_start() {
    command -v slurmctld >/dev/null || [[ -x $SBIN/slurmctld ]] || die "Slurm is not installed (run: $0 install)"
    [[ $(id -u) == 0 ]] || die "start needs root (slurmd runs jobs as their user)"
    export SLURM_CONF=$CONF
    if alive "$DIR/slurmctld.pid"; then
        say "already running (stop it first to restart)"
        echo "export SLURM_CONF=$CONF"
        return
    fi
    local t0=$SECONDS
    rm -rf "$DIR/state" "$DIR"/spool-* "$DIR/log" "$DIR/jobcomp.txt" "$DIR"/slurmd-*.pid
    mkdir -p "$DIR"
    write_config
    start_munge
    # -D: stay in the foreground so $! is the daemon itself; setsid: out of our session
    setsid "$SBIN/slurmctld" -D -c -f "$CONF" >"$DIR/log/slurmctld.out" 2>&1 </dev/null &
    echo $! >"$DIR/slurmctld.pid"
    for _ in $(seq 100); do
        scontrol ping >/dev/null 2>&1 && break
        alive "$DIR/slurmctld.pid" || die "slurmctld exited; see $DIR/log/slurmctld.log"
        sleep 0.1
    done
    local node
    for node in "${NODES[@]}"; do
        setsid "$SBIN/slurmd" -D -N "$node" -f "$CONF" >"$DIR/log/slurmd-$node.out" 2>&1 </dev/null &
        echo $! >"$DIR/slurmd-$node.pid"
    done
    for _ in $(seq 200); do
        if [[ $(sinfo -h -N -o '%t' 2>/dev/null | grep -c '^idle') == "${#NODES[@]}" ]]; then
            say "up in $((SECONDS - t0)) s: ${#NODES[@]} nodes x $GPUS_PER_NODE fake t4 GPUs ($DIR)"
            echo "export SLURM_CONF=$CONF"
            return
        fi
        for node in "${NODES[@]}"; do
            alive "$DIR/slurmd-$node.pid" || die "slurmd $node exited; see $DIR/log/slurmd-$node.log"
        done
        sleep 0.1
    done
    die "nodes did not become idle: $(sinfo -h -N -o '%N %t %E' | tr '\n' ';')"
}

stop_pid() { # pid file: SIGTERM, wait up to 10 s, then SIGKILL (only the daemon it names)
    local file=$1 pid
    [[ -f $file ]] || return 0
    if alive "$file"; then
        pid=$(cat "$file")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            alive "$file" || break
            sleep 0.1
        done
        alive "$file" && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

cmd_stop() {
    export SLURM_CONF=$CONF
    if alive "$DIR/slurmctld.pid"; then
        # jobs first, so no job's processes outlive the cluster
        local jobs
        jobs=$(squeue -h -o '%i' 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for _ in $(seq 150); do
                [[ -z $(squeue -h -o '%i' 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    local file
    for file in "$DIR"/slurmd-*.pid; do  # every slurmd started, whatever VFT_SLURM_NODES says now
        stop_pid "$file"
    done
    stop_pid "$DIR/slurmctld.pid"
    stop_pid "$DIR/munged.pid"  # only present when this script started munged
    say "stopped"
}

cmd_status() {
    export SLURM_CONF=$CONF
    local file name
    for file in "$DIR/slurmctld.pid" "$DIR"/slurmd-*.pid; do
        name=$(basename "$file" .pid)
        if alive "$file"; then
            echo "$name: running (pid $(cat "$file"))"
        else
            echo "$name: not running"
        fi
    done
    if alive "$DIR/munged.pid"; then
        echo "munged: running (pid $(cat "$DIR/munged.pid"))"
    else
        echo "munged: not started by this script"
    fi
    if scontrol ping >/dev/null 2>&1; then
        echo "export SLURM_CONF=$CONF"
        sinfo -N -o '%N %t %G'
        squeue
    else
        echo "controller: not answering"
        return 1
    fi
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
