#!/usr/bin/env bash
# What one request costs the engine alone (no HTTP, no Unit): `App::handle` on
# a hello guest (Rust's; `--guest hello_py`, Python's), next to the bare minimum
# of a fresh instance per request in the same wasmtime engine, measured here and
# now. Not a test: it prints, it does not judge. The front ends' own share is
# what bench/serve.sh and bench/unit.sh measure beyond this.
#
#   bench/engine.sh [--guest NAME]                 time per request
#   bench/engine.sh --instructions [--guest NAME]  instructions per request, counted by valgrind
#
# Time moves with the machine's neighbours (one build's ratio was 1.42, 1.55 and
# 1.14 in three runs minutes apart here); the instructions a request executes do not,
# so `--instructions` tells whether a change to the engine made a request cheaper
# on any day. What it leaves out: time in the kernel (the memory reset's page
# scan) and what sharing the caches of a busy machine adds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
# The release profile, whole-program optimised as the module and `rvm` ship, and
# the one the other benchmarks build, so its dependencies are compiled once.
build=(cargo bench --locked --profile release -p rvm-engine --bench handle)

instructions= guest=hello
while (($#)); do
    case $1 in
        --instructions) instructions=1 ;;
        --guest) guest=$2; shift ;;
        *) echo "usage: bench/engine.sh [--instructions] [--guest hello|hello_py]" >&2; exit 1 ;;
    esac
    shift
done
if [ -z "$instructions" ]; then
    exec "${build[@]}" -- --guest "$guest"
fi

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
bench=$("${build[@]}" --no-run --message-format=json \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
# Instructions per request of one kind (rvm or bare): only the function that
# makes the counted requests is counted, and the file's totals are its.
per_request() {
    local requests
    requests=$(valgrind --tool=callgrind --callgrind-out-file="$counts" \
        --toggle-collect='handle::counted_requests*' "$bench" --instructions "$1" \
        --guest "$guest" 2>/dev/null \
        | sed -n 's/^requests counted: \([0-9]*\)$/\1/p')
    awk -v n="$requests" '/^totals:/ && n { printf "%.0f", $2 / n; found = 1 }
        END { if (!found) { print "no counts from callgrind" > "/dev/stderr"; exit 1 } }' "$counts"
}
rvm=$(per_request rvm)
bare=$(per_request bare)
echo "instructions executed per request of $guest (valgrind's callgrind)"
printf '%-44s %8d\n' "App::handle (rvm engine)" "$rvm" "fresh instance, bare WASI (reference)" "$bare"
awk -v a="$rvm" -v b="$bare" 'BEGIN { printf "ratio: %.3f\n", a / b }'
