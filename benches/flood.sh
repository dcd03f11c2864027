#!/usr/bin/env bash
# Bounded connection flood: thousands of idle connections, slow-header clients and a
# client that stops reading, against portcullis started with a 4096-descriptor limit
# (soft and hard) and no max_connections (so the derived default applies), all on
# 127.0.0.1 and each phase bounded in count and time. Reports what stayed up:
# /healthz on a kept connection and on a new one, the proxy's descriptor count, when
# slow clients were closed, and when the stalled response's upstream side was closed.
#
# Usage: bash benches/flood.sh   (knobs: IDLE=6000 SLOW=300 PHASE=12 NOFILE=4096
#   BIN=target/debug/portcullis, BASELINE=1 for a binary without timeout_send; the client needs IDLE+SLOW descriptors itself)

set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/target/debug/portcullis}
NOFILE=${NOFILE:-4096}
TMP=$(mktemp -d /tmp/portcullis-flood.XXXXXX)
PID=

cleanup() {
    [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

[[ -x $BIN ]] || { echo "flood.sh: $BIN missing (cargo build --bin portcullis)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
UPSTREAM=$(free_port)
# A binary from before timeout_send existed (BASELINE=1) runs without that key.
SEND="timeout_send: 5s"
[[ ${BASELINE:-0} == 1 ]] && SEND=""
cat > "$TMP/flood.yaml" <<YAML
address: 127.0.0.1:$PORT
insecure_server: true
log_level: warn
timeout_read_header: 5s
$SEND
routes:
  - from: https://app.example.com
    to: http://127.0.0.1:$UPSTREAM
    allow_public_unauthenticated_access: true
YAML
(ulimit -Sn "$NOFILE" && ulimit -Hn "$NOFILE" && exec "$BIN" -c "$TMP/flood.yaml") \
    >"$TMP/proxy.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
    (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
echo "# portcullis pid $PID, open-file limit $NOFILE (max_connections derived from it: $(( (NOFILE - 256) / 2 )), unless BASELINE)"
ulimit -Sn "$(ulimit -Hn)"
python3 "$REPO/benches/flood.py" "$PORT" "$PID" "$UPSTREAM"
kill -0 "$PID" && echo "# portcullis still running"
echo "# proxy log lines: $(wc -l < "$TMP/proxy.log") (accept failed: $(grep -c "accept failed" "$TMP/proxy.log" || true), limit reached: $(grep -c "connection limit reached" "$TMP/proxy.log" || true))"
