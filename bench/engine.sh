#!/usr/bin/env bash
# What one request costs the engine alone (no HTTP, no Unit): `App::handle` on
# the hello guest, next to the bare minimum of a fresh instance per request in
# the same wasmtime engine, measured here and now. Not a test: it prints, it
# does not judge. The front ends' own share is what bench/serve.sh and
# bench/unit.sh measure beyond this.
#
#   bench/engine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
# The release profile, whole-program optimised as the module and `rvm` ship, and
# the one the other benchmarks build, so its dependencies are compiled once.
cargo bench --locked --profile release -p rvm-engine --bench handle
