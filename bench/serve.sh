#!/usr/bin/env bash
# Throughput and tail latency of `rvm serve` with the hello guest, next to a
# native hyper server giving the same answer (the ceiling of the HTTP stack),
# both measured here and now with wrk. Not a test: it prints, it does not judge.
#
#   [rounds=N] bench/serve.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/wrk.sh

cargo build --release --locked -p rvm --bin rvm -p rvm-e2e --example native-hello
hello=example/target/wasm32-wasip2/release/hello.wasm

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=warn target/release/rvm serve --listen 127.0.0.1:8101 "$hello" & pids+=($!)
target/release/examples/native-hello 127.0.0.1:8102 2>/dev/null & pids+=($!)
for port in 8101 8102; do
    until curl -fs "http://127.0.0.1:$port/" >/dev/null; do sleep 0.2; done
done

compare "rvm serve + hello.wasm" "http://127.0.0.1:8101/" "native hyper" "http://127.0.0.1:8102/"
