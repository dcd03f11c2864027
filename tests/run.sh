#!/usr/bin/env bash
# The whole test suite: unit tests, loopback integration tests, and the commands.
# Installs anything the tests need that a fresh Debian machine with Rust lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --lib --bins --tests
