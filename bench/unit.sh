#!/usr/bin/env bash
# Throughput and tail latency of the Unit module with the hello guest (one
# application process), next to a Unit `return` route (Unit answering by
# itself: the ceiling of its router) and a C application answering the same
# with libunit alone (the ceiling of any application process of Unit's, wasm
# or not), measured here and now with wrk.
# Not a test: it prints, it does not judge.
#
#   UNIT_SRC=/path/to/built/unit [rounds=N] bench/unit.sh [SECONDS] [CONNECTIONS] [THREADS]
#
# The tree may be NGINX Unit's or FreeUnit's; the script says which it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${3:-1}
unit=${UNIT_SRC:-/opt/unit}
. bench/wrk.sh
. scripts/unitd.sh

module=$(UNIT_SRC=$unit scripts/build-module)
family="NGINX Unit"
head -1 "$unit/README.md" | grep -q FreeUnit && family=FreeUnit
tree="$family $(sed -n 's/^#define NXT_VERSION "\(.*\)"/\1/p' "$unit/build/include/nxt_version.h") ($unit)"

unitd_start "$unit" "$module"
cc -O2 -I"$unit/src" -I"$unit/build/include" bench/libunit_hello.c "$unit/build/lib/libunit.a" \
    -lpthread -o "$unitd_dir/libunit_hello"
chmod a+rx "$unitd_dir/libunit_hello"
unitd_put "$(cat <<JSON
{
  "listeners": {
    "127.0.0.1:8201": { "pass": "applications/hello" },
    "127.0.0.1:8202": { "pass": "routes/plain" },
    "127.0.0.1:8203": { "pass": "applications/libunit" }
  },
  "routes": { "plain": [ { "action": { "return": 200 } } ] },
  "applications": {
    "hello": {
      "type": "wasm-wasi-component",
      "component": "$unitd_dir/hello.wasm",
      "processes": 1,
      "environment": { "RVM_THREADS": "$threads" }
    },
    "libunit": { "type": "external", "executable": "$unitd_dir/libunit_hello", "processes": 1 }
  }
}
JSON
)"
for port in 8201 8203; do
    until curl -fs "http://127.0.0.1:$port/" >/dev/null; do sleep 0.2; done
done

note="$tree, 1 application process, RVM_THREADS=$threads" compare \
    "Unit + rvm module + hello.wasm" "http://127.0.0.1:8201/" \
    "Unit + C libunit app" "http://127.0.0.1:8203/" \
    "Unit return route" "http://127.0.0.1:8202/"

# Where the CPU time of one more run of each application goes, per request:
# the application process is what the module (or the C app) costs; the router
# and wrk share the same cores, and whatever is left idle is lost to their
# waiting on each other.
router=$(pgrep -P "$unitd_pid" -f 'unit: router')
prototype() { pgrep -P "$unitd_pid" -f "\"$1\" prototype"; }
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; }
idle_us() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.0f", $5 * 1e6 / hz }' /proc/stat; }
# cpu_per_request LABEL URL APPLICATION-PID
cpu_per_request() {
    local app0 router0 idle0 app1 router1 idle1 rate
    app0=$(cpu_us "$3") router0=$(cpu_us "$router") idle0=$(idle_us)
    read -r rate _ < <(measure "$2")
    app1=$(cpu_us "$3") router1=$(cpu_us "$router") idle1=$(idle_us)
    awk -v l="$1" -v n=$((rate * seconds)) -v a=$((app1 - app0)) -v r=$((router1 - router0)) \
        -v i=$((idle1 - idle0)) -v cores="$(nproc)" -v s="$seconds" 'BEGIN {
        printf "  %s (%.0f req/s, %.1f us of %d cores each): application process %.1f us,", l, n / s, cores * s * 1e6 / n, cores, a / n
        printf " Unit router %.1f us, idle %.1f us\n", r / n, i / n }'
}
echo "CPU time per request in one more run of each:"
cpu_per_request "rvm module" "http://127.0.0.1:8201/" "$(pgrep -P "$(prototype hello)")"
cpu_per_request "C libunit app" "http://127.0.0.1:8203/" "$(pgrep -P "$(prototype libunit)")"

# How long one request takes with nothing else in flight: mostly the processes
# waking each other, which is what the idle time above is spent waiting for.
median_latency() {
    wrk -t1 -c1 -d"${seconds}s" --latency "$1" | awk '$1 == "50%" { print $2 }'
}
echo "median latency at one connection: module $(median_latency "http://127.0.0.1:8201/")," \
    "C libunit app $(median_latency "http://127.0.0.1:8203/"), return route $(median_latency "http://127.0.0.1:8202/")"
