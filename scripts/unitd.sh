# A throwaway unitd from a built Unit tree, with this project's module and the
# example guests installed in a directory of its own: for the scripts that need
# Unit running outside the test suite (the module's profile-guided build and its
# benchmark). Source it from the project root.
#
#   unitd_start UNIT_TREE MODULE.so   start it; sets unitd_dir and unitd_pid,
#                                     and stops it when the script exits
#   unitd_put CONFIG_JSON             PUT a whole config (guests are in $unitd_dir)
#   unitd_stop                        stop it and wait: its application processes
#                                     quit as Unit tells them, and exit cleanly

unitd_start() {
    local unit=$1 module=$2
    [ -x "$unit/build/sbin/unitd" ] || {
        echo "needs a built Unit tree in UNIT_SRC (now: $unit): see README, NGINX Unit module" >&2
        return 1
    }
    unitd_dir=$(mktemp -d)
    mkdir -p "$unitd_dir"/{modules,state,tmp}
    chmod 1777 "$unitd_dir/tmp"
    cp "$module" "$unitd_dir/modules/rvm.unit.so"
    cp example/target/wasm32-wasip2/release/*.wasm "$unitd_dir/"
    # Unit started as root runs applications as nobody.
    chmod -R a+rX "$unitd_dir"
    # Run from its own directory, so that nothing it leaves in its working
    # directory outlives it.
    local unitd
    unitd=$(realpath "$unit/build/sbin/unitd")
    (cd "$unitd_dir" && exec "$unitd" --no-daemon --control "unix:$unitd_dir/control.sock" \
        --pid "$unitd_dir/unit.pid" --log "$unitd_dir/unit.log" --modulesdir "$unitd_dir/modules" \
        --statedir "$unitd_dir/state" --tmpdir "$unitd_dir/tmp") &
    unitd_pid=$!
    trap unitd_stop EXIT
    until [ -S "$unitd_dir/control.sock" ]; do
        kill -0 "$unitd_pid" 2>/dev/null || { echo "unitd did not start" >&2; return 1; }
        sleep 0.1
    done
}

unitd_put() {
    curl -fsS --unix-socket "$unitd_dir/control.sock" -X PUT http://localhost/config -d "$1" >/dev/null \
        || { echo "unitd refused the config; its log:" >&2; tail -5 "$unitd_dir/unit.log" >&2; return 1; }
}

unitd_stop() {
    [ -n "${unitd_pid:-}" ] || return 0
    kill "$unitd_pid" 2>/dev/null || true
    wait "$unitd_pid" 2>/dev/null || true
    rm -rf "$unitd_dir"
    unitd_pid=
}
