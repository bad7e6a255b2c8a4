#!/usr/bin/env bash
# Runs one libFuzzer target of Fuzzing/ for a while (not a test; CI does not run it).
#
#   scripts/fuzz.sh FuzzPathNormalizer 600      # ten minutes on the path normalizer
#   scripts/fuzz.sh list                        # the targets
#   FUZZ_NO_BUILD=1 scripts/fuzz.sh FuzzCredentials 600 &   # a second one beside it, without building again
#
# Targets: FuzzPathNormalizer, FuzzRequestHeaders, FuzzCredentials, FuzzRedirectTarget. The seed corpus in
# Fuzzing/Corpus/TARGET is read, never written; what the run finds goes to fuzz-run/TARGET, and a crash or hang to
# fuzz-run/TARGET-crash-* (turn each into a unit test). The build line is the one ../shared/STACK.md found to work.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:?usage: scripts/fuzz.sh TARGET SECONDS (or: list)}"
if [ "$TARGET" = list ]; then
    ls "$ROOT/Fuzzing/Sources"
    exit 0
fi
SECONDS_TO_RUN="${2:-60}"
[ -d "$ROOT/Fuzzing/Sources/$TARGET" ] || { echo "no fuzz target '$TARGET' (scripts/fuzz.sh list)" >&2; exit 1; }
cd "$ROOT/Fuzzing"
# Builds every target at once: two builds in one build folder at the same time corrupt it, so run several
# fuzzers side by side with FUZZ_NO_BUILD=1 after one build.
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    swift build -c debug --sanitize=fuzzer --sanitize=address \
        -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp >&2
fi
mkdir -p "$ROOT/fuzz-run/$TARGET"
EXTRA=()
# Foundation's file APIs keep caches that LeakSanitizer reports at exit, once per run, whatever the input.
if [ "$TARGET" = FuzzConfiguration ]; then EXTRA+=(-detect_leaks=0); export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; fi
exec "$ROOT/Fuzzing/.build/debug/$TARGET" "$ROOT/fuzz-run/$TARGET" "$ROOT/Fuzzing/Corpus/$TARGET" \
    -max_total_time="$SECONDS_TO_RUN" -timeout=5 -rss_limit_mb=4096 -artifact_prefix="$ROOT/fuzz-run/$TARGET-" -print_final_stats=1 "${EXTRA[@]}"
