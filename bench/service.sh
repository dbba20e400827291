#!/usr/bin/env bash
# The RVM service (`rvm server`), measured here and now, each figure next to a
# reference from the same run. Not a test: it prints, it does not judge.
#
#   [rounds=N] bench/service.sh [SECONDS] [CONNECTIONS]
#
# 1. hello invoked by name, against `rvm serve` of the same component (wrk);
# 2. deploy → first answer, for hello and the Python guest, with the compiled
#    code cache empty (the deploy compiles) and holding it (a redeploy);
# 3. a restart holding 100 distinct hello-sized components, until every one
#    answers, with the cache warm;
# 4. the resident memory of a server holding them, against one holding none.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/wrk.sh

cargo build --release --locked -p rvm
rvm=target/release/rvm
hello=example/target/wasm32-wasip2/release/hello.wasm
python=example/target/python/rvm_py.wasm
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

# start STORE CACHE INVOKE-PORT ADMIN-PORT: an `rvm server`, once it answers.
start() {
    RUST_LOG=warn RVM_CACHE_DIR=$2 "$rvm" server --store "$1" \
        --listen "127.0.0.1:$3" --admin "127.0.0.1:$4" &
    pids+=($!)
    until curl -fs -o /dev/null "http://127.0.0.1:$4/deploy"; do sleep 0.01; done
}
stop() {
    kill "${pids[-1]}"
    wait "${pids[-1]}" 2>/dev/null || true
    unset 'pids[-1]'
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
deploy() { curl -fs --data-binary @"$2" "http://127.0.0.1:$admin/deploy/$1" >/dev/null; }
answers() { curl -fs -o /dev/null "http://127.0.0.1:$invoke/$1/"; }

invoke=8111 admin=8112
start "$work/store" "$work/cache" "$invoke" "$admin"
deploy hello "$hello"
RUST_LOG=warn "$rvm" serve --listen 127.0.0.1:8113 "$hello" &
pids+=($!)
until curl -fs -o /dev/null http://127.0.0.1:8113/; do sleep 0.1; done
compare "rvm server, hello by name" "http://127.0.0.1:$invoke/hello/" \
    "rvm serve, hello" "http://127.0.0.1:8113/"
kill "${pids[-1]}"
unset 'pids[-1]'

echo
echo "deploy → first answer (ms), compiled code cache empty / holding it"
for guest in hello python; do
    file=$hello
    [ $guest = python ] && file=$python
    name=first-$guest
    started=$(now_ms)
    deploy "$name" "$file"
    until answers "$name"; do sleep 0.01; done
    cold=$(($(now_ms) - started))
    curl -fs -X DELETE "http://127.0.0.1:$admin/deploy/$name" >/dev/null
    started=$(now_ms)
    deploy "$name" "$file"
    until answers "$name"; do sleep 0.01; done
    warm=$(($(now_ms) - started))
    printf '  %-8s %8d %8d   (%s bytes)\n' "$guest" "$cold" "$warm" "$(stat -c %s "$file")"
done
stop

# 100 distinct components: hello, each with a custom section of its own.
mkdir "$work/many"
python3 - "$hello" "$work/many" <<'PY'
import sys
hello = open(sys.argv[1], "rb").read()
for n in range(100):
    name = b"rvm-bench"
    payload = bytes([len(name)]) + name + n.to_bytes(4, "little")
    open(f"{sys.argv[2]}/c{n}.wasm", "wb").write(hello + bytes([0, len(payload)]) + payload)
PY
invoke=8121 admin=8122
start "$work/many-store" "$work/cache" "$invoke" "$admin"
idle_kib=$(awk '/VmRSS/ { print $2 }' "/proc/${pids[-1]}/status")
for n in $(seq 0 99); do deploy "c$n" "$work/many/c$n.wasm"; done
stop
started=$(now_ms)
start "$work/many-store" "$work/cache" "$invoke" "$admin"
for n in $(seq 0 99); do until answers "c$n"; do sleep 0.01; done; done
restart=$(($(now_ms) - started))
loaded_kib=$(awk '/VmRSS/ { print $2 }' "/proc/${pids[-1]}/status")
echo
echo "restart holding 100 components until all answer, cache warm: ${restart} ms"
echo "resident memory: ${loaded_kib} KiB holding 100 components, ${idle_kib} KiB holding none"
