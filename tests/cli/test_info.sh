#!/usr/bin/env bash
# `ptyc info`: usage, errors, and the summary of the demo dataset.
#   $1 = path of the ptyc binary, $2 = repository root.
# Exit 77 (skipped) when the demo dataset data/small.h5 is not there; the error checks,
# which need no data, run first either way.
set -u
ptyc="$1"
root="$2"
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --help: usage on stdout, exit 0
out="$("$ptyc" info --help)"; rc=$?
[ "$rc" -eq 0 ] || fail "info --help exited $rc"
grep -q "usage: ptyc info" <<<"$out" || fail "info --help printed no usage"

# usage errors: exit 2
"$ptyc" info >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "info without a file exited $rc, expected 2"
"$ptyc" info x.h5 --modes zero >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "info --modes zero exited $rc, expected 2"
"$ptyc" info x.h5 --bogus >/dev/null 2>&1; rc=$?
[ "$rc" -eq 2 ] || fail "info --bogus exited $rc, expected 2"

# a missing file: exit 1, one line on stderr naming the file
"$ptyc" info "$work/missing.h5" >"$work/out" 2>"$work/err"; rc=$?
[ "$rc" -eq 1 ] || fail "info on a missing file exited $rc, expected 1"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "info on a missing file printed $(wc -l <"$work/err") lines on stderr"
grep -q "^ptyc info: error: .*missing.h5" "$work/err" || fail "unexpected error: $(cat "$work/err")"

# a text file named .h5
echo "not hdf5" >"$work/text.h5"
"$ptyc" info "$work/text.h5" >/dev/null 2>"$work/err"; rc=$?
[ "$rc" -eq 1 ] || fail "info on a text file exited $rc, expected 1"
grep -q "not an HDF5 file" "$work/err" || fail "unexpected error: $(cat "$work/err")"

data="$root/data/small.h5"
if [ ! -f "$data" ]; then
  [ "$failures" -eq 0 ] || exit 1
  echo "skipped: $data not found"
  exit 77
fi

out="$("$ptyc" info "$data" --modes 2 --batch 16 2>"$work/err")"; rc=$?
[ "$rc" -eq 0 ] || fail "info $data exited $rc: $(cat "$work/err")"
for want in "ptyc-native" "patterns" "N = " "positions" "object" "counts" "memory" "lsqml"; do
  grep -q -- "$want" <<<"$out" || fail "info output lacks \"$want\""
done
grep -Eq "[0-9.]+ (KiB|MiB|GiB)" <<<"$out" || fail "info output shows no memory size"
grep -q "2 mode(s), batch 16" <<<"$out" || fail "info ignored --modes/--batch"

if [ "$failures" -ne 0 ]; then
  echo "$out" >&2
  exit 1
fi
echo ok
