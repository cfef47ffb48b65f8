#!/usr/bin/env bash
# Strong scaling of LSQML on several GPUs of one node (issue 6's target): the large
# preset (12000 positions, 512x512, 3 modes, 1e7 photons) reconstructed by the same job
# on 1, 2, 4 (and 8) GPUs. Prints per GPU count the median iteration time T_N, the
# efficiency T_1 / (N T_N), the peak memory ptyc allocated per GPU (the largest over
# the ranks) and the peak nvidia-smi saw per GPU (adds the CUDA context, cuFFT work
# areas and NCCL's buffers).
#   tests/bench/run_multi.sh [OUTDIR]
# Environment: GPUS="1 2 4 8" (counts to try; those above the visible GPUs are left
# out), ITERATIONS=10, BATCH=2048 (fixed, so that every count runs the same global
# batches; random batches touch most of the object, so larger batches mean fewer
# object reductions: on 4 x H200, 1024 gave 88 % / 73 % on 2 / 4 GPUs, 2048 gave
# 93 % / 84 %), PRESET=large, NOISE=gaussian, BUILD_DIR=build-bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench_out}
mkdir -p "$out"
build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${CMAKE_CUDA_ARCHITECTURES:+-DCMAKE_CUDA_ARCHITECTURES=$CMAKE_CUDA_ARCHITECTURES} >/dev/null
cmake --build "$build" -j"$(nproc)" --target ptyc >/dev/null
ptyc=./$build/ptyc
preset=${PRESET:-large}
[ -f "$out/$preset.h5" ] || "$ptyc" simulate --preset "$preset" -o "$out/$preset.h5"
visible=$("$ptyc" devices | grep -c '^cuda:' || true)
[ "$visible" -ge 1 ] || { echo "no usable GPU"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cat >"$out/multi.cfg" <<CFG
data = { path = "$(realpath "$out/$preset.h5")"; };
reconstructor = { iterations = ${ITERATIONS:-10}; batch_size = ${BATCH:-2048};
                  device = "cuda"; seed = 1; };
probe = { modes = 3; };
lsqml = { noise_model = "${NOISE:-gaussian}"; };
output = { png = false; };
CFG

printf "%-5s %12s %11s %15s %18s\n" GPUs "ms/iteration" efficiency "ptyc peak/GPU" "nvidia-smi peak/GPU"
t1=""
for n in ${GPUS:-1 2 4 8}; do
  [ "$n" -le "$visible" ] || continue
  log="$out/multi_$n.out"
  smi="$out/multi_$n.smi"
  nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 200 >"$smi" 2>/dev/null &
  smi_pid=$!
  if [ "$n" -eq 1 ]; then
    "$ptyc" run "$out/multi.cfg" --set reconstructor.gpus=1 \
      --set output.directory=\""$out/multi_$n"\" >"$log" 2>&1
  else
    "$ptyc" launch --nproc-per-node "$n" run "$out/multi.cfg" \
      --set output.directory=\""$out/multi_$n"\" >"$log" 2>&1
  fi
  kill "$smi_pid" 2>/dev/null || true
  wait "$smi_pid" 2>/dev/null || true
  # "done     10 iterations | median 123.4 ms/iteration | peak 12.34 GiB | ..."
  ms=$(sed -n 's/^done .*median \([0-9.]*\) ms.*/\1/p' "$log")
  peak=$(sed -n 's/^done .*peak \([0-9.]*\) GiB.*/\1/p' "$log")
  smi_peak=$(awk -F', ' -v n="$n" '$1 < n && $2 > max { max = $2 } END { printf "%.2f", max / 1024 }' "$smi")
  [ -n "$t1" ] || t1=$ms
  eff=$(awk -v t1="$t1" -v tn="$ms" -v n="$n" 'BEGIN { printf "%.1f %%", 100 * t1 / (n * tn) }')
  printf "%-5s %12s %11s %11s GiB %14s GiB\n" "$n" "$ms" "$eff" "$peak" "$smi_peak"
done
echo "(command: tests/bench/run_multi.sh $out; logs in $out/multi_N.out)"
