#!/usr/bin/env bash
# Load benchmark: requests/s and latency (p50/p99) of
#   direct          wrk -> upstream nginx
#   nginx           wrk -> nginx reverse proxy -> upstream nginx
#   portcullis      wrk -> target/release/portcullis (log_level: warn) -> upstream nginx
#   portcullis-info the same with log_level: info (one access-log line per request)
# all on 127.0.0.1, in one run on this machine, rounds interleaved, medians reported.
#
# Usage: bash benches/load.sh
# Knobs (environment): DURATION=15 WARMUP=3 CONNECTIONS=32 ROUNDS=3 LOAD_MAX=0.7
#   LOAD_WAIT_MAX=600 BASE_PORT=18080 SKIP_BUILD=1 (use the existing binary as is)
#   TARGETS="direct nginx portcullis portcullis-info" (a subset, e.g. for a quick look)
#   BASELINE_BIN=/path/to/another/portcullis adds the target "baseline": that binary
#   with the "portcullis" config, for before/after comparisons in one run
#   NGINX_WORKERS=auto KEEP_TMP=1 (keep configs and logs for inspection)
#   QUIET_MAX=10 QUIET_WAIT_MAX=120 (before each run, wait until the machine is less
#   than QUIET_MAX % busy) DISTURBED=20 (flag runs where something else used more
#   than this % of a core, and repeat such a run up to RETRIES=2 times)
#
# Exits non-zero only when the setup fails (install, build, start, sanity check),
# never because of the numbers.

set -euo pipefail

DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
LOAD_MAX=${LOAD_MAX:-0.7}
LOAD_WAIT_MAX=${LOAD_WAIT_MAX:-600}
BASE_PORT=${BASE_PORT:-18080}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT_MAX=${QUIET_WAIT_MAX:-120}
DISTURBED=${DISTURBED:-20}
RETRIES=${RETRIES:-2}
HOST_HEADER=bench.local

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$REPO/target/release/portcullis
TMP=$(mktemp -d /tmp/portcullis-load.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
PIDS=()          # every long-running process we started
WRK_PID=

die() { echo "load.sh: setup failed: $*" >&2; exit 1; }
log() { echo "# $*"; }

cleanup() {
    local pid
    [[ -n $WRK_PID ]] && kill "$WRK_PID" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${KEEP_TMP:-} ]]; then
        echo "# kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
need_install=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${need_install[@]}" >"$TMP/apt.log" 2>&1; then
        apt-get update >>"$TMP/apt.log" 2>&1 || true
        apt-get install -y "${need_install[@]}" >>"$TMP/apt.log" 2>&1 \
            || { tail -20 "$TMP/apt.log" >&2; die "apt-get install ${need_install[*]}"; }
    fi
    # Debian's postinst may start a system nginx on :80; we never use it, stop it if so.
    if [[ -f /run/nginx.pid ]] && [[ " ${need_install[*]} " == *" nginx-light "* ]]; then
        kill -QUIT "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- build
if [[ -z ${SKIP_BUILD:-} ]]; then
    log "cargo build --release --bin portcullis (no-op when up to date)"
    (cd "$REPO" && cargo build --release --bin portcullis) >"$TMP/build.log" 2>&1 \
        || { tail -30 "$TMP/build.log" >&2; die "cargo build --release"; }
fi
[[ -x $BIN ]] || die "$BIN missing"

# ---------------------------------------------------------------- ports
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_port=$BASE_PORT
pick_port() {
    while ! port_free "$next_port"; do next_port=$((next_port + 1)); done
    PORT=$next_port
    next_port=$((next_port + 1))
}
pick_port; P_UP=$PORT
pick_port; P_NGINX=$PORT
pick_port; P_PC=$PORT
pick_port; P_PCINFO=$PORT
pick_port; P_BASE=$PORT

# ---------------------------------------------------------------- configs
mkdir -p "$TMP/up" "$TMP/px"
nginx_common() { # $1 = prefix dir, $2 = workers
    cat <<EOF
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
EOF
}
{
    nginx_common "$TMP/up" 1
    cat <<EOF
    server {
        listen 127.0.0.1:$P_UP;
        default_type text/plain;
        location / { return 200 "ok\n"; }
    }
}
EOF
} >"$TMP/up/nginx.conf"
{
    nginx_common "$TMP/px" "$NGINX_WORKERS"
    cat <<EOF
    upstream backend {
        server 127.0.0.1:$P_UP;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        server_name $HOST_HEADER;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/px/nginx.conf"
pc_config() { # $1 = port, $2 = log level
    cat <<EOF
insecure_server: true
address: 127.0.0.1:$1
log_level: $2
routes:
  - from: http://$HOST_HEADER
    to: http://127.0.0.1:$P_UP
    allow_public_unauthenticated_access: true
EOF
}
pc_config "$P_PC" warn >"$TMP/portcullis-warn.yaml"
pc_config "$P_PCINFO" info >"$TMP/portcullis-info.yaml"

# ---------------------------------------------------------------- start
start_nginx() { # $1 = dir
    "$NGINX" -p "$1" -e "$1/error.log" -c "$1/nginx.conf" -g 'daemon off;' \
        >"$1/stdout.log" 2>&1 &
    PIDS+=($!)
}
start_portcullis() { # $1 = config
    "$BIN" -c "$1" >/dev/null 2>&1 &
    PIDS+=($!)
}
start_nginx "$TMP/up";  PID_UP=${PIDS[-1]}
start_nginx "$TMP/px";  PID_NGINX=${PIDS[-1]}
start_portcullis "$TMP/portcullis-warn.yaml"; PID_PC=${PIDS[-1]}
start_portcullis "$TMP/portcullis-info.yaml"; PID_PCINFO=${PIDS[-1]}
PID_BASE=
if [[ -n ${BASELINE_BIN:-} ]]; then
    [[ -x $BASELINE_BIN ]] || die "$BASELINE_BIN missing"
    pc_config "$P_BASE" warn >"$TMP/baseline.yaml"
    "$BASELINE_BIN" -c "$TMP/baseline.yaml" >/dev/null 2>&1 &
    PIDS+=($!); PID_BASE=$!
fi

wait_http() { # $1 = name, $2 = pid, $3 = url, $4 = expected body
    local body
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || die "$1 exited at start (see $TMP, KEEP_TMP=1 keeps it)"
        if body=$(curl -sf -m 2 -H "Host: $HOST_HEADER" "$3" 2>/dev/null) && [[ $body == "$4" ]]; then
            return 0
        fi
        sleep 0.2
    done
    die "$1 did not answer $3 with '$4'"
}
wait_http upstream "$PID_UP" "http://127.0.0.1:$P_UP/" ok
wait_http nginx "$PID_NGINX" "http://127.0.0.1:$P_NGINX/" ok
wait_http portcullis "$PID_PC" "http://127.0.0.1:$P_PC/healthz" OK
wait_http portcullis-info "$PID_PCINFO" "http://127.0.0.1:$P_PCINFO/healthz" OK
# Sanity: the proxied route really reaches the upstream.
wait_http portcullis "$PID_PC" "http://127.0.0.1:$P_PC/" ok
wait_http portcullis-info "$PID_PCINFO" "http://127.0.0.1:$P_PCINFO/" ok
if [[ -n $PID_BASE ]]; then
    wait_http baseline "$PID_BASE" "http://127.0.0.1:$P_BASE/" ok
fi

# ---------------------------------------------------------------- measuring helpers
load1() { cut -d' ' -f1 /proc/loadavg; }

# CPU ticks (utime+stime, all threads) of a process and its direct children.
proc_ticks() {
    local total=0 p t
    for p in "$@" $(for q in "$@"; do pgrep -P "$q" 2>/dev/null || true; done); do
        t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
# "user system" CPU ticks of a process (all threads) and its direct children.
proc_ticks_us() {
    local p
    for p in "$@" $(for q in "$@"; do pgrep -P "$q" 2>/dev/null || true; done); do
        awk '{sub(/^.*\) /, ""); print $12, $13}' "/proc/$p/stat" 2>/dev/null || true
    done | awk '{u += $1; s += $2} END{print u + 0, s + 0}'
}
# Busy ticks of the whole machine, excluding irq/softirq (not charged to processes).
sys_ticks() { awk '/^cpu /{print $2 + $3 + $4; exit}' /proc/stat; }

# wrk latency value ("812.00us", "1.23ms", "2.01s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "nan" }'
}

declare -A PORT_OF=([direct]=$P_UP [nginx]=$P_NGINX [portcullis]=$P_PC [portcullis-info]=$P_PCINFO)
declare -A PROC_OF=([direct]="" [nginx]=$PID_NGINX [portcullis]=$PID_PC [portcullis-info]=$PID_PCINFO)
if [[ -n $PID_BASE ]]; then PORT_OF[baseline]=$P_BASE; PROC_OF[baseline]=$PID_BASE; fi
read -r -a TARGETS <<<"${TARGETS:-direct nginx portcullis portcullis-info}"
for t in "${TARGETS[@]}"; do [[ -n ${PORT_OF[$t]:-} ]] || die "unknown target '$t'"; done

run_wrk() { # $1 = port, $2 = seconds, $3 = output file
    wrk -t1 -c"$CONNECTIONS" -d"${2}s" --latency -H "Host: $HOST_HEADER" \
        "http://127.0.0.1:$1/" >"$3" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed: $(cat "$3")"
    WRK_PID=
}


# CPU seconds (user+sys) of this shell's finished, waited-for children (bash `times`),
# into CHILD_CPU. Not a $(...) function: a subshell would see only its own children.
children_cpu() {
    times >"$TMP/times.txt"
    CHILD_CPU=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); t += a[1] * 60 + a[2] }
        printf "%.3f", t }' "$TMP/times.txt")
}

# Busy % of the whole machine (100 = every core) over $1 seconds.
machine_busy() {
    local a b
    a=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit}' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8; exit}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0)}'
}
# Our servers are idle between runs, so a busy machine means someone else is working:
# wait (up to QUIET_WAIT_MAX seconds) until it is below QUIET_MAX % for 2 s.
quiet_check() {
    local busy waited=0
    while busy=$(machine_busy 2); ((busy > QUIET_MAX)); do
        if ((waited >= QUIET_WAIT_MAX)); then
            log "machine still ${busy}% busy after ${waited}s; measuring anyway"
            return 0
        fi
        ((waited == 0)) && log "machine ${busy}% busy before $1; waiting"
        sleep 3
        waited=$((waited + 5))
    done
}

RESULTS=$TMP/results.tsv   # target round load1 rps p50 p99 errors proxy_cpu other_cpu user_us sys_us
: >"$RESULTS"
ALL_SERVERS=("$PID_UP" "$PID_NGINX" "$PID_PC" "$PID_PCINFO")

measure_once() { # $1 = target, $2 = round; sets ROW (tsv), LINE (printable), OTHER
    local t=$1 port=${PORT_OF[$1]} out=$TMP/wrk-$1-$2.txt
    quiet_check "$t"
    run_wrk "$port" "$WARMUP" "$TMP/warmup-$1-$2.txt"
    local l1 s0 s1 o0 o1 x0="0 0" x1="0 0" c0 c1 n0 n1
    l1=$(load1)
    s0=$(sys_ticks); o0=$(proc_ticks "${ALL_SERVERS[@]}"); children_cpu; c0=$CHILD_CPU
    [[ -n ${PROC_OF[$t]} ]] && x0=$(proc_ticks_us "${PROC_OF[$t]}")
    n0=$(date +%s%N)
    run_wrk "$port" "$DURATION" "$out"
    n1=$(date +%s%N)
    s1=$(sys_ticks); o1=$(proc_ticks "${ALL_SERVERS[@]}"); children_cpu; c1=$CHILD_CPU
    [[ -n ${PROC_OF[$t]} ]] && x1=$(proc_ticks_us "${PROC_OF[$t]}")

    local rps p50 p99 errors other_cpu
    rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
    [[ -n $rps ]] || die "could not parse wrk output: $(cat "$out")"
    p50=$(to_ms "$(awk '$1 == "50%"{print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%"{print $2}' "$out")")
    errors=$(awk '/Non-2xx or 3xx responses:/{n += $NF}
                  /Socket errors:/{gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                  END{print n + 0}' "$out")
    # CPU of the proxy under test: % of one core, and user/system microseconds per
    # request (wrk's count over the run; both are over the same wall-clock window).
    local proxy_cpu=- user_us=- sys_us=- reqs
    reqs=$(awk '/requests in/{print $1; exit}' "$out")
    if [[ -n ${PROC_OF[$t]} ]]; then
        read -r proxy_cpu user_us sys_us < <(awk -v x0="$x0" -v x1="$x1" -v a="$n0" \
            -v b="$n1" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{split(x0, p, " "); split(x1, q, " ");
            u = (q[1] - p[1]) / hz; s = (q[2] - p[2]) / hz;
            printf "%.0f %.1f %.1f\n", 100 * (u + s) / ((b - a) / 1e9), 1e6 * u / n, 1e6 * s / n}')
    fi
    # Machine busy time (user+nice+system) minus our servers minus wrk: an estimate of
    # what something else on the machine (say, a compiler) used during the run.
    other_cpu=$(awk -v d=$(((s1 - s0) - (o1 - o0))) -v w0="$c0" -v w1="$c1" -v a="$n0" \
        -v b="$n1" -v hz="$CLK_TCK" \
        'BEGIN{v = 100 * (d / hz - (w1 - w0)) / ((b - a) / 1e9); if (v < 0) v = 0; printf "%.0f", v}')
    ROW=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$t" "$2" "$l1" "$rps" "$p50" \
        "$p99" "$errors" "$proxy_cpu" "$other_cpu" "$user_us" "$sys_us")
    LINE=$(printf '%-16s %5s %6s %10s %8s %8s %6s %9s %8s %8s %9s' "$t" "$2" "$l1" "$rps" "$p50" \
        "$p99" "$errors" "$proxy_cpu" "$user_us" "$sys_us" "$other_cpu")
    OTHER=$other_cpu
}

# One measured run; repeated (up to RETRIES times) while something else disturbed it.
# Only the last attempt counts.
measure() { # $1 = target, $2 = round
    local attempt
    for attempt in $(seq 0 "$RETRIES"); do
        measure_once "$1" "$2"
        if ((OTHER <= DISTURBED)); then
            echo "$LINE"
            break
        elif ((attempt < RETRIES)); then
            echo "$LINE disturbed, repeating"
        else
            echo "$LINE disturbed"
        fi
    done
    echo "$ROW" >>"$RESULTS"
}

# ---------------------------------------------------------------- wait for a quiet machine
waited=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN{exit !(l >= m)}'; do
    if ((waited >= LOAD_WAIT_MAX)); then
        echo "WARNING: 1-minute load average still $(load1) (>= $LOAD_MAX) after ${waited}s;" \
            "measuring anyway, numbers may be disturbed" >&2
        break
    fi
    ((waited == 0)) && log "waiting for 1-minute load average < $LOAD_MAX (now $(load1))"
    sleep 10
    waited=$((waited + 10))
done
log "load average before measuring: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited}s)"

# ---------------------------------------------------------------- run
NGINX_WORKER_COUNT=$(pgrep -P "$PID_NGINX" | wc -l)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $(uname -r)"
echo "# $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX" -v 2>&1 | cut -d' ' -f3);" \
    "portcullis $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(
        cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo '+dirty')"
echo "# wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -H 'Host: $HOST_HEADER' (after a ${WARMUP}s warm-up);" \
    "$ROUNDS rounds, interleaved"
echo "# upstream: nginx, 1 worker, return 200 \"ok\\n\"; nginx proxy: $NGINX_WORKER_COUNT worker(s)" \
    "(worker_processes $NGINX_WORKERS), keepalive 64, access_log off"
echo "# portcullis: $(ls /proc/"$PID_PC"/task | wc -l) threads, default runtime; 'portcullis' = log_level warn," \
    "'portcullis-info' = log_level info, output to /dev/null"
echo
printf '%-16s %5s %6s %10s %8s %8s %6s %9s %8s %8s %9s\n' target round load1 req/s p50_ms \
    p99_ms errors proxy_cpu% user_us sys_us other_cpu%
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        measure "$t" "$round"
    done
done

# ---------------------------------------------------------------- summary
hwm() { awk '/^VmHWM:/{print $2, $3}' "/proc/$1/status"; }
for pid in "$PID_PC" "$PID_PCINFO"; do
    kill -0 "$pid" 2>/dev/null || die "portcullis (pid $pid) died during the run"
done
median() { # $1 = target, $2 = column (1-based in results.tsv)
    awk -F'\t' -v t="$1" -v c="$2" '$1 == t && $c != "-" {print $c}' "$RESULTS" | sort -g |
        awk '{v[NR] = $1} END{if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
             else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
echo
echo "Medians of $ROUNDS rounds:"
echo
echo "| target | req/s | p50 (ms) | p99 (ms) | proxy CPU (% of a core) | proxy user µs/req | proxy sys µs/req | errors (sum) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
declare -A MED_RPS MED_P50 MED_P99
for t in "${TARGETS[@]}"; do
    MED_RPS[$t]=$(median "$t" 4); MED_P50[$t]=$(median "$t" 5); MED_P99[$t]=$(median "$t" 6)
    errs=$(awk -F'\t' -v t="$t" '$1 == t {n += $7} END{print n + 0}' "$RESULTS")
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$t" "${MED_RPS[$t]}" "${MED_P50[$t]}" \
        "${MED_P99[$t]}" "$(median "$t" 8)" "$(median "$t" 10)" "$(median "$t" 11)" "$errs"
done
n_dist=$(awk -F'\t' -v d="$DISTURBED" '$9 > d' "$RESULTS" | wc -l)
echo
echo "Counted runs where something else used more than $DISTURBED% of a core:" \
    "$n_dist of $((ROUNDS * ${#TARGETS[@]}))."
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }
for t in portcullis portcullis-info; do
    [[ -n ${MED_RPS[$t]:-} && -n ${MED_RPS[nginx]:-} ]] || continue
    echo "$t / nginx: req/s $(ratio "${MED_RPS[$t]}" "${MED_RPS[nginx]}")," \
        "p50 $(ratio "${MED_P50[$t]}" "${MED_P50[nginx]}")," \
        "p99 $(ratio "${MED_P99[$t]}" "${MED_P99[nginx]}")"
done
echo
echo "portcullis peak RSS (VmHWM): warn $(hwm "$PID_PC"), info $(hwm "$PID_PCINFO")"
