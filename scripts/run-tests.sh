#!/bin/bash
# Runs every test suite and prints one closing line "N passed, N failed".
#
# A suite is a program or script that prints "ok - name" or "not ok - name"
# per test (tests/lib/harness.h does this for C). A suite that exits non-zero
# without reporting a failure, or reports nothing at all, counts as one
# failure, so a crash can never pass silently. Each suite's full output is
# kept under $OUT/test-logs/; failures are echoed with their log tail.
#
# usage: scripts/run-tests.sh --out BUILD_DIR SUITE...
set -u

out=build/san
if [ "${1:-}" = --out ]; then out=$2; shift 2; fi

export FW_ROOT=$PWD
export FW_BUILD=$PWD/$out
if [ -z "${FW_SHARED:-}" ] && [ -d ../shared ]; then
    FW_SHARED=$(cd ../shared && pwd)
fi
export FW_SHARED=${FW_SHARED:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suite_timeout=${FW_SUITE_TIMEOUT:-900}

logs=$out/test-logs
mkdir -p "$logs"
total_pass=0
total_fail=0
t0=$(date +%s)

for suite in "$@"; do
    name=${suite#"$out"/}
    name=${name#tests/}
    log=$logs/$(printf '%s' "$name" | tr '/' '_').log
    start=$(date +%s%N)
    timeout --kill-after=10 "$suite_timeout" "$suite" </dev/null >"$log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
    pass=$(grep -c '^ok ' "$log")
    fail=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        [ "$rc" -eq 124 ] && why="timed out after ${suite_timeout}s" || why="exited with status $rc"
        echo "not ok - $name $why" >>"$log"
        fail=1
    elif [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
        echo "not ok - $name ran no test" >>"$log"
        fail=1
    fi
    if [ "$fail" -eq 0 ]; then
        printf '  PASS  %-40s %4d passed  (%ss)\n' "$name" "$pass" "$secs"
    else
        printf '  FAIL  %-40s %4d passed, %d failed  (%ss)  log: %s\n' "$name" "$pass" "$fail" "$secs" "$log"
        grep -E '^(not ok|#)' "$log" | head -40 | sed 's/^/        /'
        echo "        --- last lines of the log ---"
        tail -15 "$log" | sed 's/^/        /'
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

echo "  ($(( $(date +%s) - t0 ))s, logs in $logs)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
