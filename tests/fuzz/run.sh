#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...] - builds the libFuzzer targets with clang (TD_FUZZ=ON,
# build dir build-fuzz, or $TD_FUZZ_BUILD) and runs each for SECONDS (default 60), seeded from
# tests/fuzz/corpus/<target>/, $TD_FUZZ_JOBS targets at a time (default 1: the machine has 2
# shared cores; scripts/test.sh runs 2). New interesting inputs go to a work corpus in the build
# dir (the seeds in tests/fuzz/corpus/ are read, never written); crashing, leaking and timing-out
# inputs are kept in <build>/fuzz-work/artifacts/<target>/. Prints the executions per target and
# the findings; exits 1 when anything was found (so CI fails on a new crasher).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${TD_FUZZ_BUILD:-$root/build-fuzz}
work=$build/fuzz-work

all=(config yaml_tree ce_json ce_http ce_redis percent base64 time units interpolate redis_url cesql
     creds jsonschema ce_kafka ce_amqp json_text)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

max_len() {
    case $1 in
    config) echo 16384 ;;
    yaml_tree | ce_json | ce_http | ce_redis | ce_kafka | ce_amqp | jsonschema | json_text) echo 4096 ;;
    creds) echo 1024 ;;
    cesql) echo 2048 ;;
    interpolate | redis_url | base64) echo 512 ;;
    percent) echo 256 ;;
    time | units) echo 64 ;;
    *) echo 4096 ;;
    esac
}

command -v clang >/dev/null || { echo "run.sh: clang is missing (scripts/setup-debian.sh)" >&2; exit 2; }
CC=clang cmake -S "$root" -B "$build" -DTD_FUZZ=ON -DTD_TESTS_INTEGRATION=OFF >/dev/null
cmake --build "$build" -j"${TD_FUZZ_BUILD_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
jobs=${TD_FUZZ_JOBS:-1}
mkdir -p "$work"

# Runs one target; writes its summary line to $work/<target>.summary; returns 1 on a finding.
run_one() {
    local t=$1
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    local log=$work/$t.log
    local dict=()
    [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
    echo "run.sh: fuzz_$t for ${secs}s (log $log)"
    local rc=0
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        -artifact_prefix="$work/artifacts/$t/" "$work/corpus/$t" "$here/corpus/$t" \
        </dev/null >"$log" 2>&1 || rc=$?
    local execs ncorpus nart status=ok
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    ncorpus=$(find "$work/corpus/$t" -type f | wc -l)
    nart=$(find "$work/artifacts/$t" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$nart" -gt 0 ]; then
        status="FOUND (exit $rc, $nart artifacts in $work/artifacts/$t)"
        grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz invariant)' "$log" || true
    fi
    printf '%-12s %12s execs  %5s corpus  %s\n' "$t" "${execs:-?}" "$ncorpus" "$status" \
        >"$work/$t.summary"
    [ "$status" = ok ]
}

found=0
pids=()
for t in "${targets[@]}"; do
    rm -f "$work/$t.summary"
    run_one "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || found=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || found=1
done
echo "run.sh: summary (${secs}s per target, $jobs at a time)"
for t in "${targets[@]}"; do
    printf '  %s' "$(cat "$work/$t.summary" 2>/dev/null || echo "$t: no summary")"
    echo
done
exit $found
