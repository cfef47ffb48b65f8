#!/usr/bin/env bash
# The ptyc program end to end: help and version, one-line errors with a non-zero exit
# for bad jobs and data (and nothing written), a short real run and its outputs.
#   test_cli.sh PTYC REPO
set -u
ptyc=$1
repo=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAILED: $*" >&2; fails=$((fails + 1)); }

# expect CODE PATTERN -- command...: exit code and a stderr line matching PATTERN
expect() {
  local code=$1 pattern=$2
  shift 3
  "$@" >"$tmp/stdout" 2>"$tmp/err"
  local got=$?
  [ "$got" -eq "$code" ] || fail "'$*' exited $got, expected $code: $(cat "$tmp/err")"
  if [ -n "$pattern" ]; then
    grep -qE "$pattern" "$tmp/err" || fail "'$*' stderr lacks /$pattern/: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" -le 2 ] || fail "'$*' printed more than a short error: $(cat "$tmp/err")"
  fi
}

data="$repo/data/small.h5"
[ -f "$data" ] || { echo "no $data"; exit 77; }

"$ptyc" --version | grep -q "^ptyc " || fail "--version"
for cmd in run simulate info devices compare; do
  "$ptyc" $cmd --help | grep -q "usage: ptyc $cmd" || fail "$cmd --help"
done
expect 2 "unknown command" -- "$ptyc" frobnicate
expect 2 "no job file" -- "$ptyc" run
expect 1 "cannot read" -- "$ptyc" run "$tmp/missing.cfg"

# The run's header says which sub-pixel shift the model uses and why: as set, or what
# "auto" chose (on the CPU always the Fourier ramp).
expect 0 "" -- "$ptyc" run "$repo/configs/small_autodiff.cfg" --set probe.shift=interpolate \
  --set reconstructor.iterations=1 --set output.directory="$tmp/autodiff_interpolate"
grep -q '^shift    interpolate (as set by probe.shift' "$tmp/stdout" ||
  fail "autodiff with probe.shift=interpolate: no shift line in $(cat "$tmp/stdout")"
expect 0 "" -- "$ptyc" run "$repo/configs/small_autodiff.cfg" --set reconstructor.device=cpu \
  --set reconstructor.iterations=1 --set output.directory="$tmp/autodiff_auto"
grep -q '^shift    fourier (auto: on a CPU' "$tmp/stdout" ||
  fail "autodiff with probe.shift=auto on the CPU: no shift line in $(cat "$tmp/stdout")"

# A misspelt key: file:line, the nearest key, and no output directory created.
cat >"$tmp/typo.cfg" <<CFG
data = { path = "$data"; };
reconstructor = { iteratons = 3; };
output = { directory = "$tmp/typo_out"; };
CFG
expect 1 "typo.cfg:2: .*reconstructor.iterations" -- "$ptyc" run "$tmp/typo.cfg"
[ ! -e "$tmp/typo_out" ] || fail "a rejected job wrote $tmp/typo_out"

cat >"$tmp/job.cfg" <<CFG
data = { path = "$data"; };
reconstructor = { iterations = 3; batch_size = 48; device = "cpu"; };
probe = { modes = 2; };
output = { directory = "$tmp/out"; };
CFG
expect 1 "reconstructor.iterations" -- "$ptyc" run "$tmp/job.cfg" --set reconstructor.iterations=abc
expect 1 "range|>= 1" -- "$ptyc" run "$tmp/job.cfg" --set reconstructor.iterations=0
[ ! -e "$tmp/out" ] || fail "a rejected --set wrote $tmp/out"

# Bad data: a text file named .h5, and a missing file; nothing written.
echo "not hdf5" >"$tmp/bad.h5"
expect 1 "bad.h5" -- "$ptyc" run "$tmp/job.cfg" --set data.path="$tmp/bad.h5"
expect 1 "nope.h5" -- "$ptyc" run "$tmp/job.cfg" --set data.path="$tmp/nope.h5"
[ ! -e "$tmp/out" ] || fail "rejected data wrote $tmp/out"

# A file on which libhdf5 1.10 itself crashes: still one line saying what is wrong and a
# non-zero exit (a fixed libhdf5 gives ptyc's own error instead; both pass).
crash="$repo/tests/fuzz/libhdf5_findings/segv_null_H5F__accum_read.h5"
if [ -f "$crash" ]; then
  "$ptyc" info "$crash" >"$tmp/stdout" 2>"$tmp/err" && fail "ptyc info succeeded on a corrupt file"
  grep -q "error" "$tmp/err" || fail "no error line for a corrupt file: $(cat "$tmp/err")"
fi

# device "cuda" without a usable GPU is an error, not a silent CPU run.
if "$ptyc" devices | grep -q "none usable"; then
  expect 1 "cuda" -- "$ptyc" run "$tmp/job.cfg" --set reconstructor.device=cuda
  PTYC_DEVICE=cuda "$ptyc" run "$tmp/job.cfg" >/dev/null 2>&1 && fail "PTYC_DEVICE=cuda ran without a GPU"
fi

# A real run: outputs, one log record per iteration, the resolved job stored.
"$ptyc" run "$tmp/job.cfg" >"$tmp/run.log" 2>&1 || fail "run: $(tail -3 "$tmp/run.log")"
for f in recon.h5 object_phase.png object_amplitude.png probe.png cost.png log.jsonl; do
  [ -s "$tmp/out/$f" ] || fail "run did not write $f"
done
[ "$(wc -l <"$tmp/out/log.jsonl")" -eq 3 ] || fail "log.jsonl should hold 3 records"
grep -qE "^iter +3/3 \| loss" "$tmp/run.log" || fail "no progress line: $(cat "$tmp/run.log")"
grep -q "iterations = 3" "$tmp/run.log" || fail "the resolved job was not printed"
"$ptyc" compare "$tmp/out/recon.h5" "$data" | grep -q "object_nrmse" || fail "compare"
ls "$tmp/out" | grep -q "tmp" && fail "a temporary file was left behind"

[ "$fails" -eq 0 ] && echo ok
exit $((fails > 0))
