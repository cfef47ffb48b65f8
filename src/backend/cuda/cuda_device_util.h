/* Device-side helpers shared by the .cu files (CUDA C++ only; never included from C):
 * complex loads and stores, batch geometry, block reductions and launch shapes. */
#ifndef PT_CUDA_DEVICE_UTIL_H
#define PT_CUDA_DEVICE_UTIL_H

#ifndef __CUDACC__
#error "cuda_device_util.h is for .cu files only"
#endif

#include <math.h>

#include "backend/cuda/cuda_kernels.h"
#include "ptyc/types.h"

/* Threads per block of every kernel unless it says otherwise. */
#define PT_THREADS 256
/* Largest grid.y; kernels loop when the batch needs more rows. */
#define PT_MAX_GRID_Y 65535

/* Complex values move as one 8-byte float2 access (ptyc_c32 alone is only 4-byte
 * aligned, so the compiler would split it into two 4-byte accesses). Buffers come from
 * cudaMalloc and hold whole complex values, so they are 8-byte aligned. */
__device__ __forceinline__ ptyc_c32 load_c32(const ptyc_c32 *p) {
  float2 v = *reinterpret_cast<const float2 *>(p);
  return pt_c32(v.x, v.y);
}
/* Read-only data, through the non-coherent cache. */
__device__ __forceinline__ ptyc_c32 ldg_c32(const ptyc_c32 *p) {
  float2 v = __ldg(reinterpret_cast<const float2 *>(p));
  return pt_c32(v.x, v.y);
}
__device__ __forceinline__ void store_c32(ptyc_c32 *p, ptyc_c32 z) {
  *reinterpret_cast<float2 *>(p) = make_float2(z.re, z.im);
}

/* Adds (re, im) to *p atomically: one 8-byte atomic on Hopper, two 4-byte ones before. */
__device__ __forceinline__ void atomic_add_c32(ptyc_c32 *p, float re, float im) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2 *>(p), make_float2(re, im));
#else
  atomicAdd(&p->re, re);
  atomicAdd(&p->im, im);
#endif
}

/* Where batch entry b sits, exactly as the CPU's batch_position(). */
struct pt_patch {
  int j;      /* position index (order[first + b]) */
  int y0, x0; /* integer top-left corner in the object */
  double fy, fx;
};

__device__ __forceinline__ pt_patch batch_patch(const pt_cuda_batch &batch, int b) {
  pt_patch p;
  p.j = __ldg(batch.order + batch.first + b);
  double py = __ldg(batch.positions + 2 * (size_t)p.j);
  double px = __ldg(batch.positions + 2 * (size_t)p.j + 1);
  p.y0 = (int)floor(py);
  p.x0 = (int)floor(px);
  p.fy = py - p.y0;
  p.fx = px - p.x0;
  return p;
}

/* Offset in the object of pixel (y, x) of the patch. */
__device__ __forceinline__ size_t object_index(const pt_patch &p, int obj_w, int y, int x) {
  return (size_t)(p.y0 + y) * obj_w + (p.x0 + x);
}

/* Sums v over the block (blockDim.x a multiple of 32, at most 1024). The result is
 * valid in thread 0. `shared` holds 32 doubles per value. Every thread must call it.
 * The order of the additions is fixed, so results repeat bit for bit. */
template <int N>
__device__ __forceinline__ void block_sum(double (&v)[N], double *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < N; i++)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v[i] += __shfl_down_sync(0xffffffffu, v[i], off);
  __syncthreads(); /* `shared` may still be read by a previous call */
  if (lane == 0)
#pragma unroll
    for (int i = 0; i < N; i++) shared[i * 32 + warp] = v[i];
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int i = 0; i < N; i++) {
      v[i] = lane < n_warps ? shared[i * 32 + lane] : 0.0;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v[i] += __shfl_down_sync(0xffffffffu, v[i], off);
    }
  }
}

/* Ceiling division for launch shapes. */
static inline unsigned pt_blocks(size_t count, unsigned per_block) {
  return (unsigned)((count + per_block - 1) / per_block);
}

/* grid.y for `rows` rows of work: at most PT_MAX_GRID_Y (the kernels loop over the rest). */
static inline unsigned pt_grid_rows(size_t rows) {
  return (unsigned)(rows < PT_MAX_GRID_Y ? rows : PT_MAX_GRID_Y);
}

/* The sum of x[i * stride] for i < count over the lanes of one warp, valid in lane 0:
 * lane l adds i = l, l + 32, ... in order, then the lanes' sums meet in a fixed tree, so
 * the result repeats bit for bit. A warp per sum instead of a thread: the loads are
 * issued together rather than one latency after another (a thread adding 64 partial
 * sums took 8 us per batch on the H100). */
__device__ __forceinline__ double pt_warp_sum(const double *__restrict__ x, int count,
                                              int stride) {
  const int lane = threadIdx.x & 31;
  double s = 0.0;
  for (int i = lane; i < count; i += 32) s += x[(size_t)i * stride];
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
  return s;
}

/* Warps per block of the kernels that give each batch entry one warp. */
#define PT_WARPS_PER_BLOCK (PT_THREADS / 32)

/* The batch entry of this thread's warp when every entry has one warp. */
__device__ __forceinline__ int pt_warp_entry(void) {
  return (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
}

/* out[b] = the bpp partial sums of entry b (part[b][0..bpp)), for b < n: the second
 * stage of the per-entry reductions. One warp per entry. */
static __global__ void pt_finish_entry_sums_kernel(const double *__restrict__ part, int bpp,
                                                   int n, double *__restrict__ out) {
  const int b = pt_warp_entry();
  if (b >= n) return;
  const double s = pt_warp_sum(part + (size_t)b * bpp, bpp, 1);
  if ((threadIdx.x & 31) == 0) out[b] = s;
}

static inline cudaError_t pt_launch_finish_entry_sums(const double *part, int bpp, int n,
                                                      double *out, cudaStream_t stream) {
  pt_finish_entry_sums_kernel<<<pt_blocks((size_t)n, PT_WARPS_PER_BLOCK), PT_THREADS, 0,
                                stream>>>(part, bpp, n, out);
  return cudaGetLastError();
}

/* max(x) as the CPU takes it (the largest x[i] > 0, else 0; NaN ignored) into
 * *max_bits, which must start at 0: every candidate is >= 0, and such floats order like
 * their bits read as unsigned integers, so an integer atomicMax gives the exact max.
 * Each block reduces first and adds one atomic (one per warp, 64 Ki of them on one
 * address, took 30 us per call on the H100). Each thread keeps four loads in flight:
 * with one, and 512 blocks, the object's 3.2 M values (medium preset) took 12 us. */
#define PT_MAX_BLOCKS 2048
static __global__ void pt_max_positive_kernel(const float *__restrict__ x, size_t count,
                                              unsigned *__restrict__ max_bits) {
  __shared__ float warp_max[32];
  float mx = 0.f;
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  for (; i + 3 * stride < count; i += 4 * stride) {
    const float a = __ldg(x + i), b = __ldg(x + i + stride), c = __ldg(x + i + 2 * stride),
                d = __ldg(x + i + 3 * stride);
    /* comparisons, not fmaxf: a NaN must lose, as on the CPU */
    if (a > mx) mx = a;
    if (b > mx) mx = b;
    if (c > mx) mx = c;
    if (d > mx) mx = d;
  }
  for (; i < count; i += stride) {
    float v = __ldg(x + i);
    if (v > mx) mx = v;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_down_sync(0xffffffffu, mx, off));
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = mx;
  __syncthreads();
  if (threadIdx.x >= 32) return;
  mx = threadIdx.x < (blockDim.x >> 5) ? warp_max[threadIdx.x] : 0.f;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_down_sync(0xffffffffu, mx, off));
  if (threadIdx.x == 0) atomicMax(max_bits, __float_as_uint(mx));
}

/* Zeroes *max_bits and launches the kernel above on the stream. */
static inline cudaError_t pt_launch_max_positive(const float *x, size_t count,
                                                 unsigned *max_bits, cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(max_bits, 0, sizeof *max_bits, stream);
  if (err != cudaSuccess) return err;
  unsigned blocks = pt_blocks(count, PT_THREADS);
  if (blocks > PT_MAX_BLOCKS) blocks = PT_MAX_BLOCKS;
  if (blocks == 0) blocks = 1;
  pt_max_positive_kernel<<<blocks, PT_THREADS, 0, stream>>>(x, count, max_bits);
  return cudaGetLastError();
}

/* The smallest compile-time mode count >= k among 1, 2, 4, 8, 16 (PT_MAX_MODES): the
 * kernels that keep every mode of a pixel in registers are instantiated for these. */
#define PT_DISPATCH_MODES(k, KMAX, ...)                                                  \
  do {                                                                                   \
    if ((k) <= 1) {                                                                      \
      constexpr int KMAX = 1;                                                            \
      __VA_ARGS__;                                                                       \
    } else if ((k) <= 2) {                                                               \
      constexpr int KMAX = 2;                                                            \
      __VA_ARGS__;                                                                       \
    } else if ((k) <= 4) {                                                               \
      constexpr int KMAX = 4;                                                            \
      __VA_ARGS__;                                                                       \
    } else if ((k) <= 8) {                                                               \
      constexpr int KMAX = 8;                                                            \
      __VA_ARGS__;                                                                       \
    } else {                                                                             \
      constexpr int KMAX = 16;                                                           \
      __VA_ARGS__;                                                                       \
    }                                                                                    \
  } while (0)

/* Returns the launch error, if any, from the enclosing launcher. */
#define PT_LAUNCH_CHECK()                                                                \
  do {                                                                                   \
    cudaError_t pt_launch_err_ = cudaGetLastError();                                     \
    if (pt_launch_err_ != cudaSuccess) return pt_launch_err_;                            \
  } while (0)

#endif
