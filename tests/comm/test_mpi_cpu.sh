#!/usr/bin/env bash
# Several ranks on the CPU through MPI (ptyc launch -> mpirun):
#   - 2 and 3 ranks (unequal shares) give the 1-rank reconstruction: relative object
#     difference <= 1e-4 after 20 iterations, for both engines (lsqml, autodiff); also
#     with spatially compact batches and streamed patterns, where some ranks own none of
#     a batch, and for autodiff with position refinement on;
#   - only rank 0 prints progress and writes: one output set, one log line per iteration;
#   - an error on rank 1 (the test hook PTYC_TEST_FAIL_RANK) ends every rank within
#     seconds, with a non-zero exit, rank 1's error, and no recon.h5.
#   test_mpi_cpu.sh PTYC RECON_DIFF REPO
set -u
ptyc=$1
recon_diff=$2
repo=$3
data="$repo/data/small.h5"
[ -f "$data" ] || { echo "no $data"; exit 77; }
"$ptyc" --version | grep -q "ranks: mpi" || { echo "this ptyc has no MPI: skipped"; exit 77; }
command -v "${PTYC_MPIRUN:-mpirun}" >/dev/null || { echo "no mpirun: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAILED: $*" >&2; fails=$((fails + 1)); }
# Open MPI refuses to start as root unless told so (ptyc launch does this itself; the
# failure case below runs mpirun through it as well).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMP_NUM_THREADS # each rank then takes cores / ranks threads

cat >"$tmp/job.cfg" <<CFG
data = { path = "$data"; };
reconstructor = { iterations = 20; batch_size = 24; device = "cpu"; seed = 7; };
probe = { modes = 2; };
output = { png = false; };
CFG

# run NAME RANKS [--set ...]: one reconstruction into $tmp/NAME
run() {
  local name=$1 ranks=$2
  shift 2
  local launch=()
  [ "$ranks" -gt 1 ] && launch=("$ptyc" launch --nproc-per-node "$ranks")
  if [ "$ranks" -gt 1 ]; then
    timeout 300 "${launch[@]}" run "$tmp/job.cfg" --set output.directory=\""$tmp/$name"\" "$@" \
      >"$tmp/$name.out" 2>"$tmp/$name.err"
  else
    timeout 300 "$ptyc" run "$tmp/job.cfg" --set output.directory=\""$tmp/$name"\" "$@" \
      >"$tmp/$name.out" 2>"$tmp/$name.err"
  fi
  local code=$?
  [ $code -eq 0 ] || fail "$name ($ranks ranks) exited $code: $(tail -5 "$tmp/$name.err")"
}

# same REFERENCE NAME: the object of NAME is that of REFERENCE within 1e-4
same() {
  local line
  line=$("$recon_diff" "$tmp/$1/recon.h5" "$tmp/$2/recon.h5" 1e-4)
  local code=$?
  echo "$2 vs $1: $line"
  [ $code -eq 0 ] || fail "$2 differs from $1: $line"
}

run one 1
run two 2
run three 3
same one two
same one three

# Compact batches: a contiguous share may own none of a batch; streamed patterns go
# through the double-buffered feed.
compact=(--set reconstructor.batch_order=\"compact\")
run one_compact 1 "${compact[@]}"
run three_compact 3 "${compact[@]}" --set reconstructor.patterns=\"stream\"
same one_compact three_compact

# The autodiff engine: the same equalities. With position refinement (from iteration
# 5) on compact batches and streamed patterns, the positions must agree as well.
autodiff=(--set reconstructor.engine=\"autodiff\")
run ad_one 1 "${autodiff[@]}"
run ad_two 2 "${autodiff[@]}"
run ad_three 3 "${autodiff[@]}"
same ad_one ad_two
same ad_one ad_three
refine=("${autodiff[@]}" --set autodiff.positions_optimizable=true
  --set autodiff.positions_start=5 "${compact[@]}")
run ad_pos_one 1 "${refine[@]}"
run ad_pos_three 3 "${refine[@]}" --set reconstructor.patterns=\"stream\"
same ad_pos_one ad_pos_three
if [ -f "$tmp/ad_pos_one/recon.h5" ] && [ -f "$tmp/ad_pos_three/recon.h5" ]; then
  line=$("$recon_diff" "$tmp/ad_pos_one/recon.h5" "$tmp/ad_pos_three/recon.h5" 1e-4)
  moved=$("$recon_diff" "$tmp/ad_one/recon.h5" "$tmp/ad_pos_one/recon.h5" 1 |
    sed -n 's/.*positions \([^ ]*\) px.*/\1/p')
  echo "refinement moved positions by up to $moved px"
  awk -v m="$moved" 'BEGIN { exit !(m > 1e-3) }' || fail "position refinement moved nothing ($moved px)"
  diff=$(echo "$line" | sed -n 's/.*positions \([^ ]*\) px.*/\1/p')
  awk -v d="$diff" 'BEGIN { exit !(d <= 1e-3) }' ||
    fail "3-rank refined positions differ from 1 rank's by $diff px"
fi

# One output set: rank 0 alone printed and wrote.
for name in two three; do
  n_iter=$(grep -c "^iter " "$tmp/$name.out")
  [ "$n_iter" -eq 20 ] || fail "$name printed $n_iter iteration lines, expected 20 (rank 0 only)"
  [ "$(grep -c '^done ' "$tmp/$name.out")" -eq 1 ] || fail "$name printed more than one done line"
  n_log=$(wc -l <"$tmp/$name/log.jsonl")
  [ "$n_log" -eq 20 ] || fail "$name/log.jsonl has $n_log lines, expected 20"
  grep -q "^ranks .*[23] (mpi" "$tmp/$name.out" || fail "$name did not report its ranks"
  extra=$(ls "$tmp/$name" | grep -v -x -e recon.h5 -e log.jsonl)
  [ -z "$extra" ] || fail "$name wrote more than one output set: $extra"
done

# An error on rank 1 ends all ranks promptly, non-zero, with rank 1's message.
start=$(date +%s)
PTYC_TEST_FAIL_RANK=1 timeout 120 "$ptyc" launch --nproc-per-node 3 run "$tmp/job.cfg" \
  --set output.directory=\""$tmp/failed"\" --set reconstructor.iterations=200 \
  >"$tmp/failed.out" 2>"$tmp/failed.err"
code=$?
elapsed=$(($(date +%s) - start))
echo "injected failure on rank 1: exit $code after ${elapsed}s"
[ $code -ne 0 ] || fail "an error on rank 1 exited 0"
[ $code -ne 124 ] || fail "an error on rank 1 left the other ranks hanging (timeout)"
[ $elapsed -le 30 ] || fail "an error on rank 1 took ${elapsed}s to end the job"
grep -q "\[rank 1\] ptyc run: error: injected failure" "$tmp/failed.err" ||
  fail "rank 1's error is missing: $(cat "$tmp/failed.err")"
[ ! -e "$tmp/failed/recon.h5" ] || fail "a failed multi-rank run wrote recon.h5"

[ $fails -eq 0 ] && echo "all multi-rank CPU checks passed"
exit $((fails > 0))
