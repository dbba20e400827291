#!/usr/bin/env bash
# Throughput and tail latency of the Unit module with the hello guest (one
# application process), next to a Unit `return` route (Unit answering by
# itself: the ceiling of its router), measured here and now with wrk.
# Not a test: it prints, it does not judge.
#
#   UNIT_SRC=/path/to/built/unit bench/unit.sh [SECONDS] [CONNECTIONS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
threads=${3:-1}
unit=${UNIT_SRC:-/opt/unit}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
[ -x "$unit/build/sbin/unitd" ] || { echo "needs a built Unit tree in UNIT_SRC (now: $unit)"; exit 1; }

scripts/setup >/dev/null
UNIT_SRC=$unit cargo build --release --locked -p nxt_rvm

dir=$(mktemp -d)
mkdir -p "$dir"/{modules,state,tmp}
chmod 1777 "$dir/tmp"
cp target/release/libnxt_rvm.so "$dir/modules/rvm.unit.so"
cp example/target/wasm32-wasip2/release/hello.wasm "$dir/"
chmod -R a+rX "$dir"
"$unit/build/sbin/unitd" --no-daemon --control "unix:$dir/control.sock" --pid "$dir/unit.pid" \
    --log "$dir/unit.log" --modulesdir "$dir/modules" --statedir "$dir/state" --tmpdir "$dir/tmp" &
unitd=$!
trap 'kill $unitd 2>/dev/null; wait $unitd 2>/dev/null; rm -rf "$dir"' EXIT
until [ -S "$dir/control.sock" ]; do sleep 0.1; done
curl -fs --unix-socket "$dir/control.sock" -X PUT http://localhost/config -d @- >/dev/null <<JSON
{
  "listeners": {
    "127.0.0.1:8201": { "pass": "applications/hello" },
    "127.0.0.1:8202": { "pass": "routes/plain" }
  },
  "routes": { "plain": [ { "action": { "return": 200 } } ] },
  "applications": {
    "hello": {
      "type": "wasm-wasi-component",
      "component": "$dir/hello.wasm",
      "processes": 1,
      "environment": { "RVM_THREADS": "$threads" }
    }
  }
}
JSON
until curl -fs http://127.0.0.1:8201/ >/dev/null; do sleep 0.2; done

# Prints "<requests/s> <p99 ms>" for one URL.
measure() {
    wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000 }
        END { printf "%.0f %.3f\n", rps, ms }'
}
wrk -t2 -c"$connections" -d2s "http://127.0.0.1:8201/" >/dev/null   # warm-up
read -r module_rps module_p99 < <(measure "http://127.0.0.1:8201/")
read -r return_rps return_p99 < <(measure "http://127.0.0.1:8202/")

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "Unit $("$unit/build/sbin/unitd" --version 2>&1 | awk '/version/ {print $NF; exit}'); wrk: ${connections} connections, ${seconds}s, 2 threads; RVM_THREADS=${threads}, 1 process"
printf "%-32s %10s req/s   p99 %7s ms\n" "Unit + rvm module + hello.wasm" "$module_rps" "$module_p99"
printf "%-32s %10s req/s   p99 %7s ms\n" "Unit return route (reference)" "$return_rps" "$return_p99"
awk -v a="$module_rps" -v b="$return_rps" 'BEGIN { printf "ratio module / return: %.2f\n", a / b }'
