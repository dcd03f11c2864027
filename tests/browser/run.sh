#!/usr/bin/env bash
# Browser test of `portcullis demo`: builds the binary, starts the demo with
# examples/demo.yaml in the background, drives it with Debian's Chromium through
# playwright-core (tests/browser/demo.spec.mjs), and stops it again.
# Installs what a fresh Debian machine with Rust lacks: chromium (apt), Node.js (apt)
# and the pinned playwright-core (npm ci). Screenshots and the demo's log go to
# tests/browser/artifacts/. Needs 127.0.0.1 ports 8080, 9101 and 9102 free.
set -euo pipefail
cd "$(dirname "$0")/../.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
HEALTH=http://127.0.0.1:8080/healthz
ARTIFACTS=tests/browser/artifacts

if [ ! -x "$CHROMIUM" ] || ! command -v node >/dev/null 2>&1; then
    apt-get update -qq
    [ -x "$CHROMIUM" ] || apt-get install -y -qq chromium
    command -v node >/dev/null 2>&1 || apt-get install -y -qq nodejs npm
fi
if [ ! -d tests/browser/node_modules/playwright-core ] ||
    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

cargo build --bin portcullis
bin="${CARGO_TARGET_DIR:-target}/debug/portcullis"

up() { curl -fsS -o /dev/null --max-time 2 "$HEALTH" 2>/dev/null; }
if up; then
    echo "something already answers on $HEALTH; stop it before running this test" >&2
    exit 1
fi

mkdir -p "$ARTIFACTS"
log="$ARTIFACTS/demo.log"
"$bin" demo -c examples/demo.yaml >"$log" 2>&1 &
demo_pid=$!
stop_demo() {
    kill -INT "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
}
trap stop_demo EXIT

for _ in $(seq 1 150); do
    up && break
    if ! kill -0 "$demo_pid" 2>/dev/null; then
        echo "the demo exited before it was ready:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
if ! up; then
    echo "the demo did not answer on $HEALTH within 30 s:" >&2
    cat "$log" >&2
    exit 1
fi

CHROMIUM="$CHROMIUM" node tests/browser/demo.spec.mjs
