#!/usr/bin/env bash
# Several GPUs (labels comm, gpu): 2 ranks on 2 GPUs through NCCL give the 1-GPU
# reconstruction (relative object difference <= 1e-4 after 20 iterations), as do the
# MPI host-copy path (PTYC_NCCL=0) and `ptyc run` launching itself on the visible GPUs,
# for both engines (autodiff with position refinement on);
# more ranks than GPUs on a node is a clear error. Exit 77 (skipped) with fewer than
# two usable GPUs or without MPI.
#   test_nccl_gpu.sh PTYC RECON_DIFF REPO
set -u
ptyc=$1
recon_diff=$2
repo=$3
data="$repo/data/small.h5"
[ -f "$data" ] || { echo "no $data"; exit 77; }
gpus=$("$ptyc" devices | grep -c '^cuda:')
[ "$gpus" -ge 2 ] || { echo "$gpus usable GPU(s): skipped"; exit 77; }
"$ptyc" --version | grep -q "ranks: mpi" || { echo "this ptyc has no MPI: skipped"; exit 77; }
command -v "${PTYC_MPIRUN:-mpirun}" >/dev/null || { echo "no mpirun: skipped"; exit 77; }
nccl=0
"$ptyc" --version | grep -q "nccl [0-9]" && nccl=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAILED: $*" >&2; fails=$((fails + 1)); }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cat >"$tmp/job.cfg" <<CFG
data = { path = "$data"; };
reconstructor = { iterations = 20; batch_size = 48; device = "cuda"; seed = 3; };
probe = { modes = 2; };
output = { png = false; };
CFG

# run NAME COMMAND...: one reconstruction into $tmp/NAME
run() {
  local name=$1
  shift
  timeout 300 "$@" --set output.directory=\""$tmp/$name"\" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local code=$?
  [ $code -eq 0 ] || fail "$name exited $code: $(tail -5 "$tmp/$name.err")"
}

same() {
  local line
  line=$("$recon_diff" "$tmp/$1/recon.h5" "$tmp/$2/recon.h5" 1e-4)
  local code=$?
  echo "$2 vs $1: $line"
  [ $code -eq 0 ] || fail "$2 differs from $1: $line"
}

run one "$ptyc" run "$tmp/job.cfg" --set reconstructor.gpus=1
run two "$ptyc" launch --nproc-per-node 2 run "$tmp/job.cfg"
same one two
if [ $nccl -eq 1 ]; then
  grep -q "^ranks .*2 (nccl" "$tmp/two.out" || fail "2 ranks did not use NCCL: $(grep ^ranks "$tmp/two.out")"
fi
PTYC_NCCL=0 run host_copies "$ptyc" launch --nproc-per-node 2 run "$tmp/job.cfg"
grep -q "^ranks .*(mpi (host copies)" "$tmp/host_copies.out" || fail "PTYC_NCCL=0 did not use MPI"
same one host_copies

# Without a launcher, `ptyc run` starts one rank per visible GPU (here the first two).
CUDA_VISIBLE_DEVICES=0,1 run auto "$ptyc" run "$tmp/job.cfg"
grep -qE "^ranks +2 " "$tmp/auto.out" || fail "ptyc run did not start 2 ranks on 2 GPUs"
same one auto

# The autodiff engine, refining positions from iteration 5.
autodiff=(--set reconstructor.engine=\"autodiff\" --set autodiff.positions_optimizable=true
  --set autodiff.positions_start=5)
run ad_one "$ptyc" run "$tmp/job.cfg" --set reconstructor.gpus=1 "${autodiff[@]}"
run ad_two "$ptyc" launch --nproc-per-node 2 run "$tmp/job.cfg" "${autodiff[@]}"
same ad_one ad_two
PTYC_NCCL=0 run ad_host_copies "$ptyc" launch --nproc-per-node 2 run "$tmp/job.cfg" "${autodiff[@]}"
same ad_one ad_host_copies

# One GPU per rank: more ranks than GPUs on a node is an error, not a hang.
timeout 120 "$ptyc" launch --nproc-per-node $((gpus + 1)) run "$tmp/job.cfg" \
  --set output.directory=\""$tmp/too_many"\" >"$tmp/too_many.out" 2>"$tmp/too_many.err"
code=$?
[ $code -ne 0 ] && [ $code -ne 124 ] || fail "$((gpus + 1)) ranks on $gpus GPUs exited $code"
grep -q "ranks on this node but $gpus visible GPU" "$tmp/too_many.err" ||
  fail "no clear error for too many ranks: $(head -3 "$tmp/too_many.err")"

[ $fails -eq 0 ] && echo "all multi-GPU checks passed"
exit $((fails > 0))
