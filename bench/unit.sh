#!/usr/bin/env bash
# Throughput and tail latency of the Unit module with the hello guest (one
# application process), next to a Unit `return` route (Unit answering by
# itself: the ceiling of its router), measured here and now with wrk.
# Not a test: it prints, it does not judge.
#
#   UNIT_SRC=/path/to/built/unit [rounds=N] bench/unit.sh [SECONDS] [CONNECTIONS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-32}
threads=${3:-1}
unit=${UNIT_SRC:-/opt/unit}
. bench/wrk.sh
. scripts/unitd.sh

scripts/setup >/dev/null
module=$(UNIT_SRC=$unit scripts/build-module)

unitd_start "$unit" "$module"
unitd_put "$(cat <<JSON
{
  "listeners": {
    "127.0.0.1:8201": { "pass": "applications/hello" },
    "127.0.0.1:8202": { "pass": "routes/plain" }
  },
  "routes": { "plain": [ { "action": { "return": 200 } } ] },
  "applications": {
    "hello": {
      "type": "wasm-wasi-component",
      "component": "$unitd_dir/hello.wasm",
      "processes": 1,
      "environment": { "RVM_THREADS": "$threads" }
    }
  }
}
JSON
)"
until curl -fs http://127.0.0.1:8201/ >/dev/null; do sleep 0.2; done

version=$("$unit/build/sbin/unitd" --version 2>&1 | awk '/version/ {print $NF; exit}')
compare "Unit + rvm module + hello.wasm" "http://127.0.0.1:8201/" "Unit return route" "http://127.0.0.1:8202/" \
    "Unit $version, 1 application process, RVM_THREADS=$threads"

# Where the CPU time of one more run of the module goes, per request: the
# application process is what this module costs; the router and wrk share the
# same cores, and whatever is left idle is lost to their waiting on each other.
router=$(pgrep -P "$unitd_pid" -f 'unit: router')
prototype=$(pgrep -P "$unitd_pid" -f 'prototype')
application=$(pgrep -P "$prototype" -f 'application')
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; }
idle_us() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.0f", $5 * 1e6 / hz }' /proc/stat; }
app0=$(cpu_us "$application") router0=$(cpu_us "$router") idle0=$(idle_us)
read -r rate _ < <(measure "http://127.0.0.1:8201/")
app1=$(cpu_us "$application") router1=$(cpu_us "$router") idle1=$(idle_us)
awk -v n=$((rate * seconds)) -v a=$((app1 - app0)) -v r=$((router1 - router0)) -v i=$((idle1 - idle0)) \
    -v cores="$(nproc)" -v s="$seconds" 'BEGIN {
    printf "CPU time per request in one more run (%.0f req/s, %.1f us of %d cores each):\n", n / s, cores * s * 1e6 / n, cores
    printf "  application process %.1f us, Unit router %.1f us, idle %.1f us\n", a / n, r / n, i / n }'

# How long one request takes with nothing else in flight: mostly the processes
# waking each other, which is what the idle time above is spent waiting for.
median_latency() {
    wrk -t1 -c1 -d"${seconds}s" --latency "$1" | awk '$1 == "50%" { print $2 }'
}
echo "median latency at one connection: module $(median_latency "http://127.0.0.1:8201/")," \
    "return route $(median_latency "http://127.0.0.1:8202/")"
