#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for a bounded time, then sorts what it found.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_EACH (default 60)] [TARGET...]
# BUILD_DIR was configured with -DPTYC_FUZZ=ON -DCMAKE_C_COMPILER=clang. Targets:
# config, set, dataset (default: all).
#
# Each target starts from its seed corpus and regressions/<target>/; new interesting
# inputs go to BUILD_DIR/fuzz/work/<target> (kept between runs, never into the
# repository). The fuzzer runs in fork mode and goes on after a finding, so one run
# reports every kind of finding. Each finding is then replayed alone and sorted:
#   ptyc      the fault is in ptyc's code, or in a library writing into a buffer ptyc
#             allocated, or a broken check of the fuzz target (a multi-line error, an
#             accepted dataset with NaN, an HDF5 identifier left open): the script fails;
#   libhdf5   the fault is inside libhdf5 on memory of its own (a corrupt-file bug of
#             HDF5 that ptyc cannot prevent by checking what it reads): reported and
#             kept in BUILD_DIR/fuzz/libhdf5/, but not a failure (see README.md);
#   gone      the input no longer fails (fixed since it was found).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [SECONDS_EACH] [TARGET...]}
build=$(cd "$build" && pwd)
seconds=${2:-60}
shift $(($# >= 2 ? 2 : 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config set dataset)

# Scratch files in a private directory, on a RAM disk when there is one: each input is
# written to a file, and rewriting a file on ext4 forces it to disk (20x slower).
# Fuzzing processes killed on a finding leave theirs behind: the directory goes at exit.
shm=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=/dev/shm
TMPDIR=$(mktemp -d "$shm/ptyc_fuzz.XXXXXX") || exit 2
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
# Leaks inside libconfig and libhdf5 are upstream's (lsan.supp says which); UB stops.
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export OMP_NUM_THREADS=1

declare -A corpus=([config]=corpus_config [set]=corpus_set [dataset]=corpus_h5)

# The first frame of a sanitizer stack (read on stdin) that is neither the sanitizer
# runtime nor the C library: where the fault really is.
culprit_frame() {
  grep -E '^ +#[0-9]+ 0x' | grep -vE '__interceptor_|__asan|__sanitizer|__ubsan|__lsan|compiler-rt|libclang_rt|/libc\.so|libc_start|/sysdeps/|string/\.\./|stdlib/|nptl/|signal/|fuzzer::|fuzz_[a-z]+\+0x' | head -1
}

# The first stack after the report's headline (read on stdin): where the fault is.
fault_stack() {
  awk '/ERROR: |runtime error|ALARM|out-of-memory|deadly signal/ { on = 1 }
       on && /^ +#[0-9]+ 0x/ { print; seen = 1; next }
       on && seen { exit }'
}
# The stack under "allocated by thread" (read on stdin): who owns the memory hit.
alloc_stack() {
  awk '/allocated by thread/ { on = 1; next }
       on && /^ +#[0-9]+ 0x/ { print; seen = 1; next }
       on && seen { exit }'
}

# Sorts one finding: prints "ptyc", "libhdf5" or "gone", and its report to $3.
classify() {
  local exe=$1 input=$2 report=$3 limits=(-timeout=10 -rss_limit_mb=2048)
  # Out of memory: find the one large malloc, whose stack says who asked for it.
  case "$(basename "$input")" in oom-*) limits+=(-malloc_limit_mb=1024) ;; esac
  ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" "$exe" "${limits[@]}" \
    "$input" >"$report" 2>&1 </dev/null
  if [ $? -eq 0 ]; then echo gone; return; fi
  # the stack of the fault, and the one of the allocation it hit, if any
  local fault alloc
  fault=$(fault_stack <"$report" | culprit_frame)
  alloc=$(alloc_stack <"$report" | culprit_frame)
  if [[ "$fault" == *libhdf5* ]] && [[ "$alloc" != */src/* ]] && [[ "$alloc" != */engines/* ]]; then
    echo libhdf5
  else
    echo ptyc
  fi
}

status=0
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/fuzz_$t"
  [ -x "$exe" ] || { echo "run.sh: no $exe (configure with -DPTYC_FUZZ=ON and clang)" >&2; exit 2; }
  work="$build/fuzz/work/$t"
  found="$build/fuzz/found/$t"
  rm -rf "$found"
  mkdir -p "$work" "$found" "$build/fuzz/libhdf5"
  log="$build/fuzz/$t.log"
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a small file that makes
  # ptyc use (or ask for, in one malloc) over 2 GB is a finding too.
  "$exe" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$found/" \
    "$work" "$here/${corpus[$t]}" "$here/regressions/$t" </dev/null >"$log" 2>&1
  rc=$?
  execs=$(grep -oE '^#[0-9]+:' "$log" | tail -1 | tr -d '#:')
  echo "fuzz_$t: ${execs:-?} inputs in ${seconds} s (log $log)"
  # In fork mode libFuzzer exits non-zero after any finding; without one it is broken.
  if [ "$rc" -ne 0 ] && [ -z "$(ls "$found")" ]; then
    echo "  libFuzzer failed (exit $rc) without a finding: see $log"
    status=1
  fi

  for input in "$found"/*; do
    [ -e "$input" ] || continue
    report="$input.txt"
    case "$input" in *.txt) continue ;; esac
    kind=$(classify "$exe" "$input" "$report")
    summary=$(grep -m1 -E 'SUMMARY|ERROR:|runtime error|one-line|breaks a promise|left [0-9]+ HDF5|round trip|does not load back' "$report")
    where=$(fault_stack <"$report" | culprit_frame | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ +(in )?//; s/ *\(BuildId: [0-9a-f]+\)//')
    case "$kind" in
      gone) echo "  gone:    $(basename "$input") no longer fails" ;;
      libhdf5)
        cp "$input" "$build/fuzz/libhdf5/"
        echo "  libhdf5: $(basename "$input"): $summary"
        echo "           at $where (an HDF5 bug on a corrupt file; input kept in $build/fuzz/libhdf5/)" ;;
      *)
        status=1
        echo "  PTYC:    $(basename "$input"): $summary"
        echo "           at $where"
        echo "           report: $report; replay: $exe $input" ;;
    esac
  done
done
exit $status
