#!/usr/bin/env bash
# Builds and runs the whole test suite under one sanitizer: scripts/sanitize.sh thread|address
# Scratch path .build-tsan or .build-asan. The replica supervisors `gantry-shim` (linked
# statically) and `gantry-shim-nss` (the static standard library) do not start under TSan's
# runtime, so the end-to-end tests get the plain ones from the normal debug build, copied
# over the sanitized ones.
# Every process's reports (the test runner's and each daemon's) go to
# <scratch>/reports/<mode>.<pid>; a summary of them is printed at the end.
set -u
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
JOBS=${JOBS:-2}
mode=${1:?usage: scripts/sanitize.sh thread|address}
case $mode in
    thread) scratch=.build-tsan ;;
    address) scratch=.build-asan ;;
    *) echo "unknown sanitizer $mode" >&2; exit 2 ;;
esac
flags=(--scratch-path "$scratch" --sanitize="$mode")

"$SWIFT" build -j "$JOBS" --product gantry-shim || exit 1
"$SWIFT" build -j "$JOBS" --product gantry-shim-nss || exit 1
plain=$("$SWIFT" build --show-bin-path)
# Package.swift reads it: the sanitized build's small supervisor cannot be linked statically.
export GANTRY_SANITIZE=$mode
"$SWIFT" build -j "$JOBS" --build-tests "${flags[@]}" || exit 1
bin=$("$SWIFT" build "${flags[@]}" --show-bin-path)
cp -f "$plain/gantry-shim" "$bin/gantry-shim"
cp -f "$plain/gantry-shim-nss" "$bin/gantry-shim-nss"

reports=$PWD/$scratch/reports
rm -rf "$reports"; mkdir -p "$reports"
# Known false positives (Synchronization.Mutex, which TSan cannot see) are suppressed there.
export TSAN_OPTIONS="log_path=$reports/thread suppressions=$PWD/scripts/tsan.supp ${TSAN_OPTIONS:-}"
# Leak checking is off: the Swift runtime's metadata caches and globals make it noisy.
export ASAN_OPTIONS="log_path=$reports/address detect_leaks=0 ${ASAN_OPTIONS:-}"
GANTRY_BIN=$bin/gantry "$SWIFT" test -j "$JOBS" --skip-build "${flags[@]}" 2>&1 | tee "$scratch/test.log" | grep -E 'failed|recorded an issue|Test run with|Executed [0-9]+ test|error:' | tail -n 60
rc=${PIPESTATUS[0]}
n=$(ls "$reports" | wc -l)
echo "== $mode sanitizer: test exit $rc, $n report file(s) in $reports"
for f in "$reports"/*; do
    [ -e "$f" ] || continue
    echo "-- $f"
    grep -E '^(WARNING|ERROR|SUMMARY): (ThreadSanitizer|AddressSanitizer)' "$f" | sort | uniq -c
done
# A report fails the run even when every test passed (a daemon's race may not fail a test).
[ "$n" -gt 0 ] && [ "$rc" -eq 0 ] && rc=1
exit $rc
