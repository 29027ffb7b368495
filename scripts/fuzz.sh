#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that sees untrusted bytes (issue 12 point 10).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]      (default: 600 s, every target)
#
# The targets live in fuzz/ (its own cargo workspace, built by `cargo fuzz` with libFuzzer's
# coverage instrumentation); their bodies are fuzz/src/lib.rs, which the ordinary test suite also
# runs over seeds and mutations (crates/server/tests/fuzz_bodies.rs). This script writes those
# seeds into fuzz/corpus/<target>/, builds the targets and runs each for the given time, two at a
# time. The machine's toolchain is stable, so no sanitizer is used (-s none): a panic, an abort,
# a timeout (-timeout=10) or memory beyond -rss_limit_mb is a finding, written to fuzz/artifacts/.
# Environment: JOBS (targets run at once, default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(jws_compact dpop_proof request_object client_metadata form_and_credentials client_certificate)
fi
jobs="${JOBS:-2}"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

echo "[fuzz] writing seeds to fuzz/corpus/"
STRONGROOM_FUZZ_SEEDS="$PWD/fuzz/corpus" cargo test -q -p strongroom-server --test fuzz_bodies >/dev/null

# The fuzz build keeps its instrumented artifacts apart, in fuzz/target.
unset CARGO_TARGET_DIR
cd fuzz
echo "[fuzz] building the targets"
cargo fuzz build -s none --release
mkdir -p logs
running=0
for t in "${targets[@]}"; do
    echo "[fuzz] $t for ${secs}s (log fuzz/logs/$t.log)"
    cargo fuzz run -s none --release "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1 &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
status=0
wait || status=$?
for t in "${targets[@]}"; do
    printf '[fuzz] %-22s %s\n' "$t" "$(grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "logs/$t.log" | tail -1)"
    if grep -qE 'panicked|deadly signal|ERROR: libFuzzer' "logs/$t.log"; then
        echo "[fuzz] $t: FINDING, see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit "$status"
