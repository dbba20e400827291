#!/usr/bin/env bash
# Builds the Python guests with componentize-py (`pip install componentize-py`):
#   example/python/build.sh  →  example/target/python/rvm_py.wasm (the `rvm` world)
#                               example/target/python/hello_py.wasm (wasi:http/proxy)
# The WASI packages the `rvm` world includes come, at build time, from the
# `wit/deps` folder of the wasip2 crate the Rust guests depend on.
set -euo pipefail
cd "$(dirname "$0")"
deps=$(cd .. && cargo metadata --format-version 1 --locked | python3 -c '
import json, os, sys
packages = json.load(sys.stdin)["packages"]
wasip2 = next(p for p in packages if p["name"] == "wasip2")
print(os.path.join(os.path.dirname(wasip2["manifest_path"]), "wit", "deps"))')
wit=$(mktemp -d)
trap 'rm -rf "$wit"' EXIT
mkdir "$wit/deps"
cp "$deps"/*.wit "$wit/deps/"
cp ../../wit/world.wit "$wit/"
mkdir -p ../target/python
componentize-py -d "$wit" -w rvm:lambda/rvm componentize app -o ../target/python/rvm_py.wasm
proxy=$(sed -n 's/^ *include \(wasi:http\/proxy@[0-9.]*\);$/\1/p' ../../wit/world.wit)
componentize-py -d "$wit" -w "$proxy" componentize hello -o ../target/python/hello_py.wasm
