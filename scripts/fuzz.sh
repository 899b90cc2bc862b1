#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time: scripts/fuzz.sh BUILD_DIR SECONDS
# (`make fuzz`: 300 s each; `make test`: a short run as the fuzz_smoke test). Each target starts
# from its committed seeds (tests/fuzz/corpus/<target>) plus what earlier runs in BUILD_DIR found;
# a crash, a leak, a timeout or a sanitizer report fails the run and leaves the input that caused
# it under BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD_DIR SECONDS}
seconds=${2:-300}
here=$(cd "$(dirname "$0")/.." && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for target in fuzz_parsers fuzz_native_api fuzz_docker_plugin; do
    bin="$build/tests/fuzz/$target"
    [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz-build)" >&2; exit 1; }
    corpus="$build/fuzz-corpus/$target"
    mkdir -p "$corpus"
    echo "fuzz: $target for ${seconds}s"
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$target-" "$corpus" "$here/tests/fuzz/corpus/${target#fuzz_}" \
        >"$build/fuzz-$target.log" 2>&1; then
        echo "fuzz: $target FAILED; last lines of $build/fuzz-$target.log:" >&2
        tail -40 "$build/fuzz-$target.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/fuzz-$target.log" | tr '\n' ' '
        echo
    fi
done
exit $status
