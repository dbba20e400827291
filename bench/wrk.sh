# Shared by the HTTP benchmark scripts, sourced from the project's root with
# their arguments: [SECONDS] [CONNECTIONS] of each wrk run. Sets the machine
# up, then measures a URL and its references with wrk in the same run and
# prints each and the first's ratio to the others. $rounds (default 5) runs
# alternate between the URLs, so that a slow spell of a shared machine hits all
# of them, and the median of each is compared.

seconds=${1:-5}
connections=${2:-32}
rounds=${rounds:-5}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
scripts/setup >/dev/null

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

# compare LABEL URL REFERENCE-LABEL REFERENCE-URL [REFERENCE-LABEL REFERENCE-URL]...
# Measures each in every round, in that order; $note, if set, is printed with
# the setup.
compare() {
    local labels=() urls=() runs=() medians=() i round width=0
    while (($# >= 2)); do
        labels+=("$1") urls+=("$2")
        ((${#1} > width)) && width=${#1}
        shift 2
    done
    width=$((width + 12))   # room for " (reference)"
    for i in "${!urls[@]}"; do
        wrk -t2 -c"$connections" -d2s "${urls[i]}" >/dev/null   # warm-up
        runs+=("$(mktemp)")
    done
    for round in $(seq "$rounds"); do
        for i in "${!urls[@]}"; do
            measure "${urls[i]}" | tee -a "${runs[i]}" \
                | sed "s/^/round $round: ${labels[i]}: /; s/$/ ms p99/" >&2
        done
    done
    echo
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "wrk: ${connections} connections, 2 threads, ${rounds} alternating rounds of ${seconds}s${note:+; $note}"
    printf "%-${width}s %29s %29s\n" "" "median run" "best run"
    local rps p99 best best_p99 label
    for i in "${!urls[@]}"; do
        read -r rps p99 best best_p99 < <(summarize <"${runs[i]}")
        rm -f "${runs[i]}"
        medians+=("$rps")
        label=${labels[i]}
        ((i > 0)) && label="$label (reference)"
        printf "%-${width}s %8s req/s %7s ms p99 %8s req/s %7s ms p99\n" \
            "$label" "$rps" "$p99" "$best" "$best_p99"
    done
    for ((i = 1; i < ${#urls[@]}; i++)); do
        awk -v a="${medians[0]}" -v b="${medians[i]}" -v l="${labels[i]}" \
            'BEGIN { printf "ratio of medians to %s: %.2f\n", l, a / b }'
    done
}
