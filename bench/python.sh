#!/usr/bin/env bash
# The Python hello (componentize-py, a plain wasi:http/proxy component) through
# `rvm serve`, against `wasmtime serve` 48 on the same component, in rounds
# that alternate between them: first with a fresh instance per request on both
# sides, then with rvm reusing instances (RVM_INSTANCE_REUSE), against the same
# `wasmtime serve` without reuse. With UNIT_SRC naming a built Unit tree, last
# the Unit module (built as it ships) with one application process per core
# against the same `wasmtime serve`, fresh instances on both sides.
# Not a test: it prints, it does not judge.
#
#   [UNIT_SRC=/path/to/built/unit] [rounds=N] bench/python.sh [SECONDS] [CONNECTIONS]
#
# Needs `wasmtime` 48 on PATH; installs wasmtime-cli 48 with cargo when missing
# (a long build).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/wrk.sh

cargo build --release --locked -p rvm
wasmtime_version=48.0.8
if ! wasmtime --version 2>/dev/null | grep -q "^wasmtime $wasmtime_version"; then
    cargo install --locked wasmtime-cli --version "$wasmtime_version"
fi
hello=example/target/python/hello_py.wasm

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=warn target/release/rvm serve --listen 127.0.0.1:8301 "$hello" &
pids+=($!)
RUST_LOG=warn RVM_INSTANCE_REUSE=1000 target/release/rvm serve --listen 127.0.0.1:8302 "$hello" &
pids+=($!)
wasmtime serve -Scli -Opooling-allocator=y --addr 127.0.0.1:8303 "$hello" 2>/dev/null &
pids+=($!)
for port in 8301 8302 8303; do
    until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.2; done
done

note="Python hello ($(stat -c %s "$hello") bytes), fresh instances" compare \
    "rvm serve" "http://127.0.0.1:8301/" \
    "wasmtime serve $wasmtime_version" "http://127.0.0.1:8303/"
echo
note="Python hello, rvm reusing instances (RVM_INSTANCE_REUSE=1000), wasmtime without" compare \
    "rvm serve, reuse" "http://127.0.0.1:8302/" \
    "wasmtime serve $wasmtime_version" "http://127.0.0.1:8303/"

[ -n "${UNIT_SRC:-}" ] || exit 0
. scripts/unitd.sh
module=$(scripts/build-module)
unitd_start "$UNIT_SRC" "$module"
trap 'unitd_stop; kill "${pids[@]}" 2>/dev/null || true' EXIT
cp "$hello" "$unitd_dir/"
chmod a+r "$unitd_dir/$(basename "$hello")"
unitd_put "$(cat <<JSON
{
  "listeners": { "127.0.0.1:8304": { "pass": "applications/hello_py" } },
  "applications": {
    "hello_py": {
      "type": "wasm-wasi-component",
      "component": "$unitd_dir/$(basename "$hello")",
      "processes": $(nproc)
    }
  }
}
JSON
)"
until curl -fs -o /dev/null "http://127.0.0.1:8304/"; do sleep 0.2; done
echo
note="Python hello, fresh instances, Unit at $UNIT_SRC with $(nproc) application processes" compare \
    "Unit + rvm module" "http://127.0.0.1:8304/" \
    "wasmtime serve $wasmtime_version" "http://127.0.0.1:8303/"
