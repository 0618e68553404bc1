#!/usr/bin/env bash
# Start (or stop) a private single-node Slurm cluster for the Slurm launcher's tests:
#
#   scripts/slurm.sh up     install slurm-wlm and munge with apt-get when absent (needs root), write
#                           .services/slurm/slurm.conf (private ports, state in .services/slurm),
#                           start munged, slurmctld and slurmd, wait until a partition answers,
#                           and print `export TRIALBOOK_TEST_SLURM_CONF=...`
#   scripts/slurm.sh down   stop the daemons started here
#
# Nothing under /etc/slurm is touched: clients find the cluster through SLURM_CONF. Idempotent: a
# cluster already answering is reused. Exits non-zero (and prints why) when Slurm cannot be had.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$PWD/.services/slurm
CONF=$DIR/slurm.conf
CTLD_PORT=${TRIALBOOK_SLURMCTLD_PORT:-6917}
SLURMD_PORT=${TRIALBOOK_SLURMD_PORT:-6918}
export SLURM_CONF=$CONF

log() { echo "slurm: $*" >&2; }

ping_cluster() { sinfo -h -o "%a" 2>/dev/null | grep -q up; }

install() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
    if [ "$(id -u)" != 0 ]; then log "slurm-wlm and munge are not installed (not root)"; return 1; fi
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$CONF" <<EOF
ClusterName=trialbook
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
ReturnToService=2
MinJobAge=600
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n >/dev/null 2>&1 </dev/null; then return 0; fi
    [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create >/dev/null 2>&1 || return 1; }
    chown munge: /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge: /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged || return 1
    for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 </dev/null && return 0; sleep 0.25; done
    return 1
}

up() {
    install || { log "cannot install slurm-wlm and munge"; return 1; }
    # a cluster already answering on our ports (started here or from another checkout) is reused
    [ -f "$CONF" ] || write_conf
    if ping_cluster; then echo "export TRIALBOOK_TEST_SLURM_CONF=$CONF"; return 0; fi
    if [ "$(id -u)" != 0 ]; then log "starting the Slurm daemons needs root"; return 1; fi
    write_conf
    start_munge || { log "munged did not start"; return 1; }
    slurmctld -c >/dev/null 2>&1 || { log "slurmctld did not start (see $DIR/slurmctld.log)"; return 1; }
    slurmd -c >/dev/null 2>&1 || { log "slurmd did not start (see $DIR/slurmd.log)"; return 1; }
    for _ in $(seq 1 60); do
        if ping_cluster && sinfo -h -o "%T" | grep -q -E "idle|mix|alloc"; then
            echo "export TRIALBOOK_TEST_SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.5
    done
    log "the Slurm node did not become idle within 30 s (see $DIR/*.log)"
    return 1
}

down() {
    local f pid
    for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        rm -f "$f"
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up | down" >&2; exit 2 ;;
esac
