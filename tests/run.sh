#!/usr/bin/env bash
# The whole test suite: unit tests, loopback integration tests (including the
# end-to-end sign-in against the npm package oidc-provider), and the commands.
# Installs what a fresh Debian machine with Rust lacks: Node packages for the
# real OpenID Provider (Node.js itself from apt if missing) and redis-server (apt).
# The Redis tests start their own redis-server on 127.0.0.1 (a free port and a
# private data directory each) and stop it when they finish.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
export PORTCULLIS_TEST_REDIS_SERVER=${PORTCULLIS_TEST_REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
if [ ! -d tests/e2e/node_modules/oidc-provider ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
fi
cargo test --locked --lib --bins --tests
# deploy/: Kubernetes manifests against the API schemas, the systemd unit, the
# Dockerfile, and the shipped configurations through `portcullis check`.
bash tests/deploy/check.sh
# The demo in a real browser: Debian's Chromium driven by playwright-core.
bash tests/browser/run.sh
