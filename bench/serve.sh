#!/usr/bin/env bash
# Throughput and tail latency of `rvm serve` with the hello guest, next to a
# native hyper server giving the same answer (the ceiling of the HTTP stack),
# both measured here and now with wrk. Not a test: it prints, it does not judge.
#
#   bench/serve.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }

scripts/setup >/dev/null
cargo build --release --locked -p rvm -p rvm-e2e --example native-hello
hello=example/target/wasm32-wasip2/release/hello.wasm

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=warn target/release/rvm serve --listen 127.0.0.1:8101 "$hello" & pids+=($!)
target/release/examples/native-hello 127.0.0.1:8102 2>/dev/null & pids+=($!)
for port in 8101 8102; do
    until curl -fs "http://127.0.0.1:$port/" >/dev/null; do sleep 0.2; done
done

# Prints "<requests/s> <p99 ms>" for one URL.
measure() {
    wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000 }
        END { printf "%.0f %.3f\n", rps, ms }'
}
wrk -t2 -c"$connections" -d2s "http://127.0.0.1:8101/" >/dev/null   # warm-up
read -r rvm_rps rvm_p99 < <(measure "http://127.0.0.1:8101/")
read -r native_rps native_p99 < <(measure "http://127.0.0.1:8102/")

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk: ${connections} connections, ${seconds}s, 2 threads"
printf "%-28s %10s req/s   p99 %7s ms\n" "rvm serve + hello.wasm" "$rvm_rps" "$rvm_p99"
printf "%-28s %10s req/s   p99 %7s ms\n" "native hyper (reference)" "$native_rps" "$native_p99"
awk -v a="$rvm_rps" -v b="$native_rps" 'BEGIN { printf "ratio rvm / native: %.2f\n", a / b }'
