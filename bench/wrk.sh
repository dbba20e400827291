# Shared by the benchmark scripts (sourced): measure two URLs with wrk in the
# same run and print both and their ratio. Needs $seconds and $connections.

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }

# Prints "<requests/s> <p99 ms>" for one URL.
measure() {
    wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000 }
        END { printf "%.0f %.3f\n", rps, ms }'
}

# compare LABEL URL REFERENCE-LABEL REFERENCE-URL [NOTE]
compare() {
    wrk -t2 -c"$connections" -d2s "$2" >/dev/null   # warm-up
    local rps p99 ref_rps ref_p99
    read -r rps p99 < <(measure "$2")
    read -r ref_rps ref_p99 < <(measure "$4")
    echo
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "wrk: ${connections} connections, ${seconds}s, 2 threads${5:+; $5}"
    printf "%-34s %10s req/s   p99 %7s ms\n" "$1" "$rps" "$p99"
    printf "%-34s %10s req/s   p99 %7s ms\n" "$3 (reference)" "$ref_rps" "$ref_p99"
    awk -v a="$rps" -v b="$ref_rps" 'BEGIN { printf "ratio: %.2f\n", a / b }'
}
