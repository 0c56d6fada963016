#!/usr/bin/env bash
# Single-node SLURM test cluster (munge + MariaDB + slurmdbd + slurmctld + slurmd),
# started WITHOUT systemd, everything (config, keys, databases, logs, pid files)
# under one state directory.
#
#   tests/slurm/cluster.sh up     STATE_DIR   # install packages if missing, start, wait until usable
#   tests/slurm/cluster.sh down   STATE_DIR   # stop exactly the daemons `up` started (by recorded PID)
#   tests/slurm/cluster.sh status STATE_DIR   # exit 0 when all recorded daemons run and sinfo answers
#   tests/slurm/cluster.sh env    STATE_DIR   # print `export SLURM_CONF=...` for eval
#
# Client commands find the cluster through SLURM_CONF=STATE_DIR/etc/slurm.conf
# (`source STATE_DIR/env.sh`); nothing is written to /etc/slurm, so snakemake
# started without SLURM_CONF never waits on a controller that is down.
#
# Ports (override by environment): SLURM_TEST_CTLD_PORT (6817), SLURM_TEST_SLURMD_PORT (6818),
# SLURM_TEST_DBD_PORT (6819), SLURM_TEST_MYSQL_PORT (16306).  Needs root.
# Exit status of `up`: 0 up, 3 packages missing and apt-get could not install them, else 1.
set -euo pipefail

CMD=${1:-}
STATE=${2:-}
if [[ -z "$CMD" || -z "$STATE" ]]; then
    echo "usage: $0 up|down|status|env STATE_DIR" >&2
    exit 2
fi
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)

CTLD_PORT=${SLURM_TEST_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_TEST_SLURMD_PORT:-6818}
DBD_PORT=${SLURM_TEST_DBD_PORT:-6819}
MYSQL_PORT=${SLURM_TEST_MYSQL_PORT:-16306}
CLUSTER=rltest
ACCOUNT=rltest
GPU_TYPE=h200 # the placeholder GPUs' type: a name the run plan knows (H200)
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=slurmtestpw

ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
MUNGE_DIR=$STATE/munge
MUNGE_SOCK=$MUNGE_DIR/run/munge.socket.2
MYSQL_DIR=$STATE/mysql
MYSQL_SOCK=$MYSQL_DIR/run/mysqld.sock
PIDS=$STATE/pids
SLURM_CONF=$ETC/slurm.conf
export SLURM_CONF

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { echo "[cluster.sh $(elapsed)s] $*"; }
die() { echo "[cluster.sh] ERROR: $*" >&2; exit 1; }

# Daemon names in start order; `down` stops them in reverse.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

pid_of() { # recorded pid of daemon $1 (empty if none)
    [[ -f "$PIDS" ]] || return 0
    awk -v n="$1" '$1 == n {print $2}' "$PIDS" | tail -1
}

alive() { # pid $1 alive and its executable is daemon $2 (guards against reused pids)
    local pid=$1 name=$2 comm
    [[ -n "$pid" && -d /proc/$pid ]] || return 1
    comm=$(cat /proc/"$pid"/comm 2>/dev/null || true)
    [[ "$comm" == "$name" || "$comm" == "${name:0:15}" ]] || return 1
    # zombie / exiting processes do not count
    [[ "$(awk '{print $3}' /proc/"$pid"/stat 2>/dev/null)" != Z ]]
}

record_pid() { # daemon, pid file, timeout seconds
    local name=$1 pidfile=$2 timeout=${3:-30} i pid
    for ((i = 0; i < timeout * 10; i++)); do
        if [[ -s "$pidfile" ]]; then
            pid=$(tr -dc 0-9 <"$pidfile")
            if alive "$pid" "$name"; then
                echo "$name $pid" >>"$PIDS"
                log "$name running, pid $pid"
                return 0
            fi
        fi
        sleep 0.1
    done
    die "$name did not start (no live pid in $pidfile); see $LOG"
}

all_up() {
    local d
    [[ -f "$PIDS" ]] || return 1
    for d in "${DAEMONS[@]}"; do
        alive "$(pid_of "$d")" "$d" || return 1
    done
}

install_packages() {
    local missing=() p
    for p in munge slurmctld slurmd slurm-client slurmdbd mariadb-server; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || { echo "[cluster.sh] ERROR: no apt-get to install ${missing[*]}" >&2; exit 3; }
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing[@]}" >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || true
        apt-get install -y -q "${missing[@]}" >>"$STATE/apt.log" 2>&1 || {
            echo "[cluster.sh] ERROR: apt-get install ${missing[*]} failed; see $STATE/apt.log" >&2
            exit 3
        }
    fi
    log "packages installed"
}

# ---------------------------------------------------------------- down
stop_jobs() {
    # Cancel the jobs of this cluster so that no slurmstepd outlives slurmd.
    alive "$(pid_of slurmctld)" slurmctld || return 0
    local jobs i
    jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
    [[ -z "$jobs" ]] && return 0
    log "cancelling jobs: $(echo $jobs)"
    timeout 5 scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ]] && return 0
        sleep 0.1
    done
}

our_stepds() { # slurmstepd processes spawned by our slurmd (they carry our SLURM_CONF)
    local p
    for p in /proc/[0-9]*; do
        [[ "$(cat "$p/comm" 2>/dev/null)" == slurmstepd ]] || continue
        tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF" && echo "${p#/proc/}"
    done
    return 0
}

gone() { # wait until pid $1 is reaped too (init reaps our orphans within ~2 s), max 10 s
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -d /proc/$1 ]] || return 0
        sleep 0.1
    done
}

stop_pid() { # name pid
    local name=$1 pid=$2 i
    alive "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        alive "$pid" "$name" || { log "$name ($pid) stopped"; return 0; }
        sleep 0.1
    done
    log "$name ($pid) ignored SIGTERM for 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" "$name" || return 0
        sleep 0.1
    done
    die "$name ($pid) still alive"
}

do_down() {
    [[ -f "$PIDS" ]] || { log "nothing recorded in $PIDS; nothing to stop"; return 0; }
    stop_jobs
    local i d pid
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        d=${DAEMONS[$i]}
        # every pid ever recorded for this daemon (a failed `up` may leave several)
        for pid in $(awk -v n="$d" '$1 == n {print $2}' "$PIDS"); do
            stop_pid "$d" "$pid"
        done
        if [[ "$d" == slurmd ]]; then
            for pid in $(our_stepds); do stop_pid slurmstepd "$pid"; done
        fi
    done
    # wait until init has reaped them as well, so that `ps` shows no zombie
    for pid in $(awk '{print $2}' "$PIDS"); do gone "$pid"; done
    unlink_etc_conf
    rm -f "$PIDS"
    log "down"
}

# ---------------------------------------------------------------- config
write_config() {
    mkdir -p "$ETC" "$RUN" "$LOG" "$STATE/slurm/state" "$STATE/slurm/spool" "$STATE/dev"
    local host cpus boards sockets cores threads realmem
    host=$(hostname -s)
    # Copy the node topology from slurmd -C, else the node drains on
    # "reconfigured socket/core boundaries".
    local conf
    conf=$(slurmd -C | head -1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$conf")
    boards=$(sed -n 's/.*Boards=\([0-9]*\).*/\1/p' <<<"$conf")
    sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$conf")
    cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$conf")
    threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$conf")
    realmem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$conf")
    [[ -n "$cpus" && -n "$realmem" ]] || die "cannot parse 'slurmd -C': $conf"

    # Placeholder GPU devices: gres.conf needs character devices (NVIDIA major 195),
    # plain files leave CUDA_VISIBLE_DEVICES empty. They have a type, as a site's GPUs do
    # (sbatch --gpus=TYPE:N asks for it; --gpus=N takes any type).
    local n
    for n in 0 1; do
        [[ -c "$STATE/dev/nvidia$n" ]] || { rm -f "$STATE/dev/nvidia$n"; mknod "$STATE/dev/nvidia$n" c 195 "$n"; }
    done

    cat >"$SLURM_CONF" <<EOF
# generated by tests/slurm/cluster.sh -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$STATE/slurm/state
SlurmdSpoolDir=$STATE/slurm/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_TYPE
# munge socket for the connections to slurmdbd (AuthInfo covers the rest)
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
# short timeouts: fail fast instead of waiting when something is down
MessageTimeout=5
TCPTimeout=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores:-1} ThreadsPerCore=${threads:-1} RealMemory=$realmem Gres=gpu:$GPU_TYPE:2 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF

    cat >"$ETC/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu Type=$GPU_TYPE File=$STATE/dev/nvidia[0-1]
EOF

    cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    chmod 600 "$ETC/slurmdbd.conf"

    cat >"$ETC/env.sh" <<EOF
export SLURM_CONF=$SLURM_CONF
EOF
    cp "$ETC/env.sh" "$STATE/env.sh"
}

# Snakemake's jobstep executor removes SLURM_* (SLURM_CONF too) from the
# environment of the `srun` it runs inside each job, so that srun reads the
# default /etc/slurm/slurm.conf.  While the cluster is up that path is a symlink
# to our slurm.conf; `down` removes it again (a client finding a slurm.conf
# whose controller is down waits ~9 s per command, e.g. in every snakemake start).
ETC_CONF=/etc/slurm/slurm.conf
link_etc_conf() {
    mkdir -p "$(dirname "$ETC_CONF")"
    if [[ -e "$ETC_CONF" || -L "$ETC_CONF" ]]; then
        if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$SLURM_CONF" ]]; then
            return 0
        elif [[ -L "$ETC_CONF" ]] && { [[ ! -e "$ETC_CONF" ]] ||
            grep -q '^# generated by tests/slurm/cluster.sh' "$ETC_CONF"; }; then
            rm -f "$ETC_CONF" # dangling, or left by another test cluster's state dir
        else
            die "$ETC_CONF exists and is not ours; refusing to replace it"
        fi
    fi
    ln -s "$SLURM_CONF" "$ETC_CONF"
    log "$ETC_CONF -> $SLURM_CONF"
}
unlink_etc_conf() {
    if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$SLURM_CONF" ]]; then
        rm -f "$ETC_CONF"
        log "removed $ETC_CONF"
    fi
    return 0
}

# ---------------------------------------------------------------- start
start_munge() {
    mkdir -p "$MUNGE_DIR/run"
    if [[ ! -s "$MUNGE_DIR/munge.key" ]]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge:munge "$MUNGE_DIR"
    chmod 700 "$MUNGE_DIR"
    chmod 755 "$MUNGE_DIR/run"
    chmod 600 "$MUNGE_DIR/munge.key"
    runuser -u munge -- test -r "$MUNGE_DIR/munge.key" ||
        die "user munge cannot reach $MUNGE_DIR (a parent directory is not world-searchable); use another STATE_DIR"
    rm -f "$MUNGE_DIR/munged.pid" "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
    # munged checks that the directories of its files are not writable by
    # others; --force accepts a state dir below a group-writable directory.
    runuser -u munge -- munged --force \
        --socket="$MUNGE_SOCK" --key-file="$MUNGE_DIR/munge.key" \
        --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" >"$LOG/munged.out" 2>&1 ||
        die "munged failed: $(cat "$LOG/munged.out")"
    record_pid munged "$MUNGE_DIR/munged.pid" 10
    munge -S "$MUNGE_SOCK" -n </dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null ||
        die "munge round trip failed"
}

mysql_client() { mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot "$@"; }

start_mariadb() {
    mkdir -p "$MYSQL_DIR/run" "$MYSQL_DIR/data"
    local fresh=0
    if [[ ! -d "$MYSQL_DIR/data/mysql" ]]; then
        fresh=1
        rm -rf "$MYSQL_DIR/data" && mkdir -p "$MYSQL_DIR/data"
        chown -R mysql:mysql "$MYSQL_DIR"
        mariadb-install-db --no-defaults --user=mysql --datadir="$MYSQL_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOG/mariadb-install-db.log" 2>&1 ||
            die "mariadb-install-db failed; see $LOG/mariadb-install-db.log"
        log "mariadb data dir initialised"
    fi
    chown -R mysql:mysql "$MYSQL_DIR"
    runuser -u mysql -- test -w "$MYSQL_DIR/data" ||
        die "user mysql cannot reach $MYSQL_DIR; use another STATE_DIR"
    rm -f "$MYSQL_DIR/run/mysqld.pid" "$MYSQL_SOCK"
    # mariadbd does not fork: detach it into its own session.
    setsid mariadbd --no-defaults --user=mysql --datadir="$MYSQL_DIR/data" \
        --socket="$MYSQL_SOCK" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
        --pid-file="$MYSQL_DIR/run/mysqld.pid" --log-error="$LOG/mariadb.log" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
        --innodb-flush-log-at-trx-commit=0 --innodb-lock-wait-timeout=900 \
        </dev/null >>"$LOG/mariadb.out" 2>&1 &
    record_pid mariadbd "$MYSQL_DIR/run/mysqld.pid" 60
    local i
    for ((i = 0; i < 300; i++)); do
        mysql_client -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    mysql_client -e 'SELECT 1' >/dev/null || die "mariadb does not answer; see $LOG/mariadb.log"
    mysql_client <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
    [[ $fresh == 1 ]] && log "database $DB_NAME and user $DB_USER created"
    return 0
}

start_slurmdbd() {
    rm -f "$RUN/slurmdbd.pid"
    # slurmdbd reads slurmdbd.conf next to $SLURM_CONF
    slurmdbd >"$LOG/slurmdbd.out" 2>&1 ||
        die "slurmdbd failed: $(cat "$LOG/slurmdbd.out")"
    record_pid slurmdbd "$RUN/slurmdbd.pid" 30
    local i
    for ((i = 0; i < 300; i++)); do
        timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "slurmdbd does not answer; see $LOG/slurmdbd.log"
}

sacctmgr_ensure() { # entity name [more args]: add only when missing
    local entity=$1 name=$2
    shift 2
    if [[ -z "$(sacctmgr -n -P list "$entity" "$name" format=$entity 2>/dev/null)" ]]; then
        sacctmgr -i add "$entity" "$name" "$@" >/dev/null || die "sacctmgr add $entity $name failed"
        log "sacctmgr: added $entity $name"
    fi
}

start_slurmctld() {
    rm -f "$RUN/slurmctld.pid"
    slurmctld -f "$SLURM_CONF" >"$LOG/slurmctld.out" 2>&1 ||
        die "slurmctld failed: $(cat "$LOG/slurmctld.out")"
    record_pid slurmctld "$RUN/slurmctld.pid" 30
}

start_slurmd() {
    rm -f "$RUN/slurmd.pid"
    slurmd -f "$SLURM_CONF" >"$LOG/slurmd.out" 2>&1 ||
        die "slurmd failed: $(cat "$LOG/slurmd.out")"
    record_pid slurmd "$RUN/slurmd.pid" 30
}

wait_usable() {
    local i state="" host
    host=$(hostname -s)
    for ((i = 0; i < 600; i++)); do
        state=$(timeout 5 sinfo -h -N -n "$host" -o %T 2>/dev/null | sort -u | head -1 || true)
        if [[ "$state" == idle ]] && timeout 5 sacct -n -X -S now-1minutes >/dev/null 2>&1; then
            return 0
        fi
        # A node left DOWN/DRAINED by an earlier run: resume it.
        if [[ "$state" == down* || "$state" == drain* ]] && ((i % 20 == 0)); then
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        fi
        sleep 0.1
    done
    die "node not idle after 60 s (state '${state}'): $(sinfo -N -o '%N %T %E' 2>&1 | tail -1)"
}

do_up() {
    if all_up && timeout 5 sinfo -h >/dev/null 2>&1; then
        log "already up (SLURM_CONF=$SLURM_CONF)"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "must run as root"
    # Stale state from an earlier run that crashed or was half stopped.
    if [[ -f "$PIDS" ]]; then
        log "stale pid records found, stopping what is left"
        do_down
    fi
    install_packages
    local sock
    for sock in "$MUNGE_SOCK" "$MYSQL_SOCK"; do
        ((${#sock} < 100)) || die "socket path too long for a unix socket: $sock; use a shorter STATE_DIR"
    done
    local port
    for port in "$CTLD_PORT" "$SLURMD_PORT" "$DBD_PORT" "$MYSQL_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port on 127.0.0.1 is in use (a cluster started from another STATE_DIR, or one whose pid records were lost?); set SLURM_TEST_*_PORT or stop it"
        fi
    done
    : >"$PIDS"
    trap 'rc=$?; if [[ $rc != 0 ]]; then echo "[cluster.sh] up failed; stopping what was started (logs: $LOG)" >&2; do_down >&2 || true; fi' EXIT
    write_config
    link_etc_conf
    start_munge
    start_mariadb
    start_slurmdbd
    sacctmgr_ensure cluster "$CLUSTER"
    start_slurmctld
    start_slurmd
    sacctmgr_ensure account "$ACCOUNT" cluster="$CLUSTER" description=test organization=test
    # root exists in slurmdbd from the start (account root); give it our account as default
    if [[ -z "$(sacctmgr -n -P list assoc user=root account="$ACCOUNT" cluster="$CLUSTER" format=user 2>/dev/null)" ]]; then
        sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null || die "sacctmgr add user root failed"
        log "sacctmgr: added user root to account $ACCOUNT"
    fi
    sacctmgr -i modify user root set defaultaccount="$ACCOUNT" >/dev/null 2>&1 || true
    wait_usable
    trap - EXIT
    log "up: node $(hostname -s) idle, sacct answers; bring-up took $(elapsed) s"
    log "use: export SLURM_CONF=$SLURM_CONF   (or: source $STATE/env.sh)"
}

do_status() {
    local d pid rc=0
    for d in "${DAEMONS[@]}"; do
        pid=$(pid_of "$d")
        if alive "$pid" "$d"; then echo "$d: running (pid $pid)"; else echo "$d: not running"; rc=1; fi
    done
    if [[ $rc == 0 ]]; then
        timeout 5 sinfo || rc=1
    fi
    return $rc
}

case "$CMD" in
up) do_up ;;
down) do_down ;;
status) do_status ;;
env) echo "export SLURM_CONF=$SLURM_CONF" ;;
*) echo "usage: $0 up|down|status|env STATE_DIR" >&2; exit 2 ;;
esac
