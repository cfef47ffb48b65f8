#!/usr/bin/env bash
# Builds ptyc, makes the medium preset and benchmarks LSQML then autodiff on the GPU with
# their default settings (issues 3 and 4: 4096 positions, 256x256, 4 modes, 1e7 photons
# Poisson; batch 96, 30 iterations).
#   tests/bench/run.sh [OUTDIR]  (prints both; writes OUTDIR/bench_lsqml.json and
#                                 OUTDIR/bench_autodiff.json)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench_out}
mkdir -p "$out"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release ${CMAKE_CUDA_ARCHITECTURES:+-DCMAKE_CUDA_ARCHITECTURES=$CMAKE_CUDA_ARCHITECTURES} >/dev/null
cmake --build build-bench -j"$(nproc)" --target ptyc bench_lsqml bench_autodiff >/dev/null
[ -f "$out/medium.h5" ] || ./build-bench/ptyc simulate --preset medium -o "$out/medium.h5"
./build-bench/tests/bench_lsqml "$out/medium.h5" --device "${DEVICE:-cuda}" --iterations 30 \
  --batch 96 --modes 4 --noise "${NOISE:-gaussian}" --json "$out/bench_lsqml.json"
./build-bench/tests/bench_autodiff "$out/medium.h5" --device "${DEVICE:-cuda}" --iterations 30 \
  --batch 96 --modes 4 --json "$out/bench_autodiff.json"
