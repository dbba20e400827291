# Shared by the benchmark scripts (sourced): measure two URLs with wrk in the
# same run and print both and their ratio. Needs $seconds and $connections;
# $rounds (default 5) runs alternate between the two URLs, so that a slow
# spell of a shared machine hits both, and the median of each is compared.

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
rounds=${rounds:-5}

# Prints "<requests/s> <p99 ms>" for one URL.
measure() {
    wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; if (v ~ /us$/) ms = v / 1000; else if (v ~ /ms$/) ms = v + 0; else ms = v * 1000 }
        END { printf "%.0f %.3f\n", rps, ms }'
}

# Reads "<requests/s> <p99 ms>" lines; prints the median run (by requests/s)
# and the best one, each with its own p99.
summarize() {
    sort -n | awk '{ rps[NR] = $1; p99[NR] = $2 }
        END { m = int((NR + 1) / 2); printf "%s %s %s %s\n", rps[m], p99[m], rps[NR], p99[NR] }'
}

# compare LABEL URL REFERENCE-LABEL REFERENCE-URL [NOTE]
compare() {
    wrk -t2 -c"$connections" -d2s "$2" >/dev/null   # warm-up
    local runs ref_runs round
    runs=$(mktemp) ref_runs=$(mktemp)
    for round in $(seq "$rounds"); do
        measure "$2" | tee -a "$runs" | sed "s/^/round $round: $1: /; s/$/ ms p99/" >&2
        measure "$4" | tee -a "$ref_runs" | sed "s/^/round $round: $3: /; s/$/ ms p99/" >&2
    done
    local rps p99 best best_p99 ref_rps ref_p99 ref_best ref_best_p99
    read -r rps p99 best best_p99 < <(summarize <"$runs")
    read -r ref_rps ref_p99 ref_best ref_best_p99 < <(summarize <"$ref_runs")
    rm -f "$runs" "$ref_runs"
    echo
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "wrk: ${connections} connections, 2 threads, ${rounds} alternating rounds of ${seconds}s${5:+; $5}"
    printf "%-34s %29s %29s\n" "" "median run" "best run"
    printf "%-34s %8s req/s %7s ms p99 %8s req/s %7s ms p99\n" \
        "$1" "$rps" "$p99" "$best" "$best_p99"
    printf "%-34s %8s req/s %7s ms p99 %8s req/s %7s ms p99\n" \
        "$3 (reference)" "$ref_rps" "$ref_p99" "$ref_best" "$ref_best_p99"
    awk -v a="$rps" -v b="$ref_rps" 'BEGIN { printf "ratio of medians: %.2f\n", a / b }'
}
