#!/usr/bin/env bash
# Builds the two libFuzzer targets (release, -sanitize=fuzzer,address) and runs each for
# FUZZ_SECONDS. Usage: scripts/fuzz.sh [manifest] [scheduler]   (default: both)
# Environment: FUZZ_SECONDS (60), JOBS (2), FUZZ_FLAGS (extra libFuzzer flags),
# FUZZ_AVOID (GANTRY_FUZZ_AVOID for the scheduler target), SWIFT (swift).
set -u
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
JOBS=${JOBS:-2}
SECONDS_EACH=${FUZZ_SECONDS:-60}
DIR=.build-fuzz
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(manifest scheduler)

build=("$SWIFT" build -j "$JOBS" -c release --scratch-path "$DIR"
       -Xswiftc -sanitize=fuzzer,address -Xswiftc -DGANTRY_FUZZ -Xswiftc -g
       # ld.gold fails on libFuzzer's objects here (an internal error); lld links them.
       -Xswiftc -use-ld=lld)
for t in "${targets[@]}"; do
    "${build[@]}" --product "fuzz-$t" || exit 1
done
bin=$("${build[@]}" --show-bin-path)

status=0
for t in "${targets[@]}"; do
    corpus=$DIR/corpus-$t artifacts=$DIR/artifacts-$t log=$DIR/fuzz-$t.log
    mkdir -p "$corpus" "$artifacts"
    dict=(); [ -f "Fuzz/$t.dict" ] && dict=(-dict="Fuzz/$t.dict")
    echo "== fuzz-$t for $SECONDS_EACH s (corpus $corpus, seeds Fuzz/corpus/$t, log $log)"
    # New inputs go to the first directory; the committed seeds are only read.
    # The Swift runtime's own backtracer would run inside ASan on a trap; libFuzzer prints the stack.
    SWIFT_BACKTRACE=enable=no GANTRY_FUZZ_AVOID=${FUZZ_AVOID:-} "$bin/fuzz-$t" "$corpus" "Fuzz/corpus/$t" \
        -max_total_time="$SECONDS_EACH" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        "${dict[@]}" ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^SUMMARY|Fatal error|fuzz-(manifest|scheduler): |Test unit written|^Done [0-9]+ runs' "$log" | tail -n 20
    if [ $rc -ne 0 ]; then
        echo "fuzz-$t: exit $rc (crash or failed check; input in $artifacts/). Reproduce: $bin/fuzz-$t $artifacts/<crash-file>"
        status=1
    fi
done
exit $status
