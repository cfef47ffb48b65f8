/* Element-wise ops and reductions: scale, norm2, sum, axpy_mean, precondition.
 * Each reduction accumulates in double, like the CPU reference, and in a fixed order
 * (block tree, then the blocks' partial sums one after the other), so results repeat
 * bit for bit from run to run. */
#include "backend/cuda/cuda_device_util.h"

/* Blocks of the grid-stride element-wise kernels: enough to fill any current GPU. */
#define ELEMENTWISE_MAX_BLOCKS 8192

/* ---- scale -------------------------------------------------------------------------- */

__global__ void scale_kernel(ptyc_c32 *__restrict__ x, size_t count, float s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x)
    store_c32(x + i, pt_cscale(load_c32(x + i), s));
}

extern "C" cudaError_t pt_cuda_launch_scale(ptyc_c32 *x, size_t count, float s,
                                            cudaStream_t stream) {
  unsigned blocks = pt_blocks(count, PT_THREADS);
  if (blocks > ELEMENTWISE_MAX_BLOCKS) blocks = ELEMENTWISE_MAX_BLOCKS;
  scale_kernel<<<blocks, PT_THREADS, 0, stream>>>(x, count, s);
  return cudaGetLastError();
}

/* ---- norm2 and sum: two stages -------------------------------------------------------
 * Stage 1: each block sums a grid-stride share into partial[blockIdx.x].
 * Stage 2: one block adds the partial sums and writes (or adds to) out[0]. */

__global__ void norm2_partial_kernel(const ptyc_c32 *__restrict__ x, size_t count,
                                     double *__restrict__ partial) {
  __shared__ double shared[32];
  double v[1] = {0.0};
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x) {
    ptyc_c32 z = ldg_c32(x + i);
    v[0] += (double)z.re * z.re + (double)z.im * z.im;
  }
  block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v[0];
}

__global__ void sum_partial_kernel(const double *__restrict__ x, size_t count,
                                   double *__restrict__ partial) {
  __shared__ double shared[32];
  double v[1] = {0.0};
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x)
    v[0] += __ldg(x + i);
  block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v[0];
}

__global__ void finish_sum_kernel(const double *__restrict__ partial, int n_partial,
                                  double *__restrict__ out, int accumulate) {
  __shared__ double shared[32];
  double v[1] = {0.0};
  for (int i = threadIdx.x; i < n_partial; i += blockDim.x) v[0] += partial[i];
  block_sum(v, shared);
  if (threadIdx.x == 0) *out = accumulate ? *out + v[0] : v[0];
}

static unsigned reduce_blocks(size_t count) {
  unsigned blocks = pt_blocks(count, PT_THREADS);
  return blocks > PT_CUDA_REDUCE_BLOCKS ? PT_CUDA_REDUCE_BLOCKS : blocks;
}

extern "C" cudaError_t pt_cuda_launch_norm2(const ptyc_c32 *x, size_t count, double *out,
                                            int accumulate, double *scratch,
                                            cudaStream_t stream) {
  unsigned blocks = reduce_blocks(count);
  norm2_partial_kernel<<<blocks, PT_THREADS, 0, stream>>>(x, count, scratch);
  PT_LAUNCH_CHECK();
  finish_sum_kernel<<<1, PT_THREADS, 0, stream>>>(scratch, (int)blocks, out, accumulate);
  return cudaGetLastError();
}

extern "C" cudaError_t pt_cuda_launch_sum(const double *x, size_t count, double *out,
                                          int accumulate, double *scratch,
                                          cudaStream_t stream) {
  unsigned blocks = reduce_blocks(count);
  sum_partial_kernel<<<blocks, PT_THREADS, 0, stream>>>(x, count, scratch);
  PT_LAUNCH_CHECK();
  finish_sum_kernel<<<1, PT_THREADS, 0, stream>>>(scratch, (int)blocks, out, accumulate);
  return cudaGetLastError();
}

/* ---- axpy_mean -------------------------------------------------------------------------
 * The weights are few (one per position of a batch): every block's first warp sums
 * them itself, which costs less than a separate kernel and needs no scratch. */

__global__ void axpy_mean_kernel(const float *__restrict__ weights, int n_weights,
                                 const ptyc_c32 *__restrict__ x, size_t count,
                                 ptyc_c32 *__restrict__ y) {
  __shared__ float a_shared;
  if (threadIdx.x < 32) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n_weights; i += 32) s += __ldg(weights + i);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (threadIdx.x == 0) a_shared = (float)(s / n_weights);
  }
  __syncthreads();
  const float a = a_shared;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x)
    store_c32(y + i, pt_cadd(load_c32(y + i), pt_cscale(ldg_c32(x + i), a)));
}

extern "C" cudaError_t pt_cuda_launch_axpy_mean(const float *weights, int n_weights,
                                                const ptyc_c32 *x, size_t count, ptyc_c32 *y,
                                                cudaStream_t stream) {
  unsigned blocks = pt_blocks(count, PT_THREADS);
  if (blocks > ELEMENTWISE_MAX_BLOCKS) blocks = ELEMENTWISE_MAX_BLOCKS;
  axpy_mean_kernel<<<blocks, PT_THREADS, 0, stream>>>(weights, n_weights, x, count, y);
  return cudaGetLastError();
}

/* ---- precondition ------------------------------------------------------------------------
 * 1. max(den) as the CPU takes it into max_bits (pt_max_positive_kernel).
 * 2. The element-wise update reads max_bits from device memory: no host round trip. */

/* target[r * den_count + d] for d along x (den[d] read once per thread), r along y. */
__global__ void precondition_kernel(const ptyc_c32 *__restrict__ num, size_t den_count,
                                    size_t repeats, const float *__restrict__ den,
                                    double damping, float beta,
                                    const unsigned *__restrict__ max_bits,
                                    ptyc_c32 *__restrict__ target) {
  size_t d = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (d >= den_count) return;
  float delta = (float)(damping * __uint_as_float(*max_bits));
  if (delta <= 0.f) delta = 1e-30f; /* as the CPU: an all-zero denominator */
  const float w = 1.f / (__ldg(den + d) + delta);
  for (size_t r = blockIdx.y; r < repeats; r += gridDim.y) {
    size_t i = r * den_count + d;
    store_c32(target + i, pt_cadd(pt_cscale(load_c32(target + i), beta),
                                  pt_cscale(ldg_c32(num + i), w)));
  }
}

extern "C" cudaError_t pt_cuda_launch_precondition(const ptyc_c32 *num, size_t count,
                                                   const float *den, size_t den_count,
                                                   double damping, float beta,
                                                   ptyc_c32 *target, unsigned *scratch,
                                                   cudaStream_t stream) {
  cudaError_t err = pt_launch_max_positive(den, den_count, scratch, stream);
  if (err != cudaSuccess) return err;
  size_t repeats = count / den_count;
  dim3 grid(pt_blocks(den_count, PT_THREADS),
            (unsigned)(repeats < PT_MAX_GRID_Y ? repeats : PT_MAX_GRID_Y));
  precondition_kernel<<<grid, PT_THREADS, 0, stream>>>(num, den_count, repeats, den, damping,
                                                       beta, scratch, target);
  return cudaGetLastError();
}

/* ---- build check ------------------------------------------------------------------------- */

extern "C" cudaError_t pt_cuda_check_kernel_image(void) {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, scale_kernel);
}
