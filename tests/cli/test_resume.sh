#!/usr/bin/env bash
# Checkpoints and --resume end to end:
#   - 10 iterations uninterrupted == 4 iterations, then --resume to 10, byte for byte
#     (object, probe, positions and loss, dumped exactly by h5dump as hex floats);
#   - a checkpoint of another job or dataset, too few iterations, or no checkpoint at
#     all: one-line refusals that change nothing;
#   - SIGINT to a run of a larger simulated dataset after its first iteration: exit
#     130, a one-line message naming the resume command, a checkpoint, a log.jsonl
#     that matches it; then SIGTERM to the resumed run (exit 143); then a resume to
#     completion equal to an uninterrupted run.
#   test_resume.sh PTYC REPO
set -u
ptyc=$1
repo=$2
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAILED: $*" >&2; fails=$((fails + 1)); }
# ctest runs tests side by side on few cores: idle OpenMP threads should sleep, not spin.
export OMP_WAIT_POLICY=passive

data="$repo/data/small.h5"
[ -f "$data" ] || { echo "no $data"; exit 77; }
command -v h5dump >/dev/null || { echo "no h5dump (hdf5-tools)"; exit 77; }

# The arrays of a result as exact text (hex floats), without the file name line.
dump() { h5dump -d /object -d /probe -d /positions_px -d /loss -m '%a' "$1" | tail -n +2; }
same_result() {
  dump "$1" >"$tmp/a.txt" 2>&1
  dump "$2" >"$tmp/b.txt" 2>&1
  grep -q "DATASET \"/object\"" "$tmp/a.txt" || return 1
  cmp -s "$tmp/a.txt" "$tmp/b.txt"
}
attr() { h5dump -a "/$2" "$1" | sed -n 's/^ *(0): *//p' | head -1; }

cat >"$tmp/job.cfg" <<CFG
data = { path = "$data"; };
reconstructor = { iterations = 10; batch_size = 48; device = "cpu"; threads = 2; };
probe = { modes = 2; };
lsqml = { momentum = 0.5; };
output = { directory = "$tmp/full"; png = false; };
CFG
# (lsqml.momentum makes lsqml keep state beyond the model: the resume must carry it.)

# ---- 10 == 4 + resume to 10 ----------------------------------------------------------
"$ptyc" run "$tmp/job.cfg" --quiet >"$tmp/log" 2>&1 || fail "full run: $(cat "$tmp/log")"
"$ptyc" run "$tmp/job.cfg" --quiet --set output.directory="$tmp/part" \
  --set reconstructor.iterations=4 --set output.checkpoint_every=3 >"$tmp/log" 2>&1 ||
  fail "4-iteration run: $(cat "$tmp/log")"
[ -s "$tmp/part/checkpoint.h5" ] || fail "no checkpoint.h5 after a run with checkpoint_every"
[ "$(attr "$tmp/part/checkpoint.h5" n_iterations_done)" = "4" ] ||
  fail "the final checkpoint should hold 4 iterations: $(attr "$tmp/part/checkpoint.h5" n_iterations_done)"
"$ptyc" run "$tmp/job.cfg" --set output.directory="$tmp/part" --set output.checkpoint_every=3 \
  --resume >"$tmp/log" 2>&1 ||
  fail "resume: $(tail -3 "$tmp/log")"
grep -q "^resume .*after iteration 4 of 10" "$tmp/log" || fail "resume line: $(head -20 "$tmp/log")"
grep -qE "^iter +5/10 " "$tmp/log" || fail "the resumed run should start at iteration 5"
grep -qE "^iter +4/10 " "$tmp/log" && fail "the resumed run repeated iteration 4"
same_result "$tmp/full/recon.h5" "$tmp/part/recon.h5" ||
  fail "4 + resume to 10 differs from 10 uninterrupted: $(diff "$tmp/a.txt" "$tmp/b.txt" | head -5)"
[ "$(attr "$tmp/part/checkpoint.h5" n_iterations_done)" = "10" ] ||
  fail "the resumed run's final checkpoint should hold 10 iterations"
[ "$(wc -l <"$tmp/part/log.jsonl")" -eq 10 ] || fail "log.jsonl should hold 10 records"
for i in $(seq 1 10); do
  sed -n "${i}p" "$tmp/part/log.jsonl" | grep -qE "^\{\"iteration\": $i, \"loss\": [-0-9.e+]+, .*\}$" ||
    fail "log.jsonl record $i: $(sed -n "${i}p" "$tmp/part/log.jsonl")"
done

# ---- refusals: one line, exit 1, nothing changed ---------------------------------------
cp "$tmp/part/recon.h5" "$tmp/recon.before"
cp "$tmp/part/checkpoint.h5" "$tmp/checkpoint.before"
refuse() { # PATTERN -- extra arguments
  local pattern=$1
  shift 2
  "$ptyc" run "$tmp/job.cfg" --quiet --set output.directory="$tmp/part" --resume "$@" \
    >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq 1 ] || fail "resume $* exited $rc, expected 1: $(cat "$tmp/err")"
  grep -qE "$pattern" "$tmp/err" || fail "resume $* stderr lacks /$pattern/: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "resume $* printed more than one line: $(cat "$tmp/err")"
}
refuse "different job \(lsqml.max_step = 2.0 there, lsqml.max_step = 1.5 now\)" -- \
  --set lsqml.max_step=1.5 --set reconstructor.iterations=12
"$ptyc" simulate --size 32 --positions 60 --seed 5 -o "$tmp/other.h5" >/dev/null ||
  fail "simulate other.h5"
refuse "different dataset" -- --set data.path="$tmp/other.h5" --set reconstructor.iterations=12
refuse "already holds 10 iterations.*set it to 10 or more" -- --set reconstructor.iterations=6
refuse "no checkpoint to resume from" -- --set output.directory="$tmp/empty"
[ ! -e "$tmp/empty" ] || fail "a refused resume created its output directory"
cmp -s "$tmp/recon.before" "$tmp/part/recon.h5" || fail "a refused resume changed recon.h5"
cmp -s "$tmp/checkpoint.before" "$tmp/part/checkpoint.h5" || fail "a refused resume changed checkpoint.h5"
# A recon.h5 put where the checkpoint should be is no checkpoint.
cp "$tmp/part/recon.h5" "$tmp/part/checkpoint.h5"
refuse "not a ptyc checkpoint" -- --set reconstructor.iterations=12

# ---- SIGINT and SIGTERM during a larger run --------------------------------------------
"$ptyc" simulate --size 64 --positions 400 --modes 1 --seed 2 -o "$tmp/big.h5" >/dev/null ||
  fail "simulate big.h5"
cat >"$tmp/big.cfg" <<CFG
data = { path = "$tmp/big.h5"; };
reconstructor = { iterations = 30; device = "cpu"; threads = 2; };
output = { directory = "$tmp/big"; png = false; };
CFG

# Starts `ptyc run big.cfg ARGS` in the background (pid in $pid) and waits until its
# log.jsonl holds more than `after` records.
start_and_wait() {
  local after=$1
  shift
  "$ptyc" run "$tmp/big.cfg" "$@" >"$tmp/big.out" 2>"$tmp/big.err" &
  pid=$!
  for _ in $(seq 1 1200); do
    [ -f "$tmp/big/log.jsonl" ] && [ "$(wc -l <"$tmp/big/log.jsonl")" -gt "$after" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# Sends signal $1 to $pid, waits for it; checks exit code $2 and the message.
stop_with() {
  local sig=$1 code=$2
  kill "-$sig" "$pid"
  wait "$pid"
  local rc=$?
  pid=""
  [ "$rc" -eq "$code" ] || fail "SIG$sig: exit $rc, expected $code: $(cat "$tmp/big.err")"
  [ "$(wc -l <"$tmp/big.err")" -eq 1 ] || fail "SIG$sig: more than one line: $(cat "$tmp/big.err")"
  grep -qE "^ptyc run: interrupted by SIG$sig after iteration [0-9]+ of 30: wrote .*checkpoint.h5.*; continue with: ptyc run .*big.cfg --resume$" \
    "$tmp/big.err" || fail "SIG$sig message: $(cat "$tmp/big.err")"
  local done_ck done_log
  done_ck=$(attr "$tmp/big/checkpoint.h5" n_iterations_done)
  done_log=$(wc -l <"$tmp/big/log.jsonl")
  grep -q "after iteration $done_ck of 30" "$tmp/big.err" ||
    fail "SIG$sig: the checkpoint holds $done_ck iterations, the message says otherwise"
  [ "$done_log" -eq "$done_ck" ] || fail "SIG$sig: log.jsonl has $done_log records, checkpoint $done_ck"
  [ -s "$tmp/big/recon.h5" ] || fail "SIG$sig: no recon.h5 written"
  ls "$tmp/big" | grep -q tmp && fail "SIG$sig: a temporary file was left behind"
  echo "SIG$sig stopped the run after iteration $done_ck"
}

if start_and_wait 0; then
  stop_with INT 130
else
  fail "the big run did not start: $(cat "$tmp/big.err")"
fi
first=$(attr "$tmp/big/checkpoint.h5" n_iterations_done)
if start_and_wait "$first" --resume; then
  stop_with TERM 143
else
  fail "the resumed big run did not go on: $(cat "$tmp/big.err")"
fi
"$ptyc" run "$tmp/big.cfg" --resume --quiet >"$tmp/big.out" 2>"$tmp/big.err" ||
  fail "final resume: $(cat "$tmp/big.err")"
[ "$(wc -l <"$tmp/big/log.jsonl")" -eq 30 ] || fail "big log.jsonl should hold 30 records"
"$ptyc" run "$tmp/big.cfg" --quiet --set output.directory="$tmp/big_full" >/dev/null 2>&1 ||
  fail "uninterrupted big run"
same_result "$tmp/big_full/recon.h5" "$tmp/big/recon.h5" ||
  fail "interrupted twice and resumed differs from uninterrupted"

[ "$fails" -eq 0 ] && echo ok
exit $((fails > 0))
