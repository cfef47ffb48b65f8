/* fourier_residual: the Fourier-space projection of every batch entry and its cost.
 *
 * Launch shape: grid (bpp, n): bpp = pt_cuda_blocks_per_position(M) blocks share the
 * pixels of one entry, each a contiguous range (so warps read consecutive values).
 * Per-entry sums (cost, Newton terms) are reduced per block in double and written as
 * partial sums to scratch; whoever needs the total adds the bpp partials in order, so
 * results repeat bit for bit and no host synchronisation is needed.
 *
 * Gaussian: one pass: I = sum_k |Psi_k|^2 in registers, all K residuals written at once.
 * Poisson: the step x_b needs sums over all pixels of the entry for each of the three
 * Newton steps, so the entry is read in passes:
 *   pass 0:  I from the waves, kept in scratch; cost partials; Newton terms at x0 = 0.5
 *   pass s:  x_s = update(x_{s-1}, sums of pass s-1); Newton terms at x_s from the kept
 *            I and the data (8 bytes a pixel instead of 8 K + 4)      (s = 1, 2)
 *   apply:   x_3 = update(x_2, sums of pass 2); waves *= r x_3 / M^2; cost[b] written.
 * The kept intensities of a 96-entry batch (25 MB at M = 256) mostly stay in L2 between
 * the passes.
 *
 * Scratch layout for a launch of n entries:
 *   doubles  cost_part   [n][bpp]
 *   doubles  newton_part [PT_CUDA_POISSON_PASSES][n][bpp][2]   (gradient, Hessian)
 *   doubles  steps       [n][PT_CUDA_POISSON_PASSES + 1]        (x_0, x_1, x_2, x_3)
 *   floats   intensity   [n][M * M]                             (Poisson only) */
#include "backend/cuda/cuda_device_util.h"
#include "backend/fourier_math.h"

static_assert(PT_CUDA_POISSON_PASSES == PT_POISSON_NEWTON_STEPS,
              "one scratch pass per Newton step of fourier_math.h");

/* Pixel range [begin, end) of block blk among bpp blocks of an entry. */
__device__ __forceinline__ void block_pixels(int pixels, int bpp, int blk, int *begin,
                                             int *end) {
  int per_block = (pixels + bpp - 1) / bpp;
  *begin = blk * per_block;
  *end = min(pixels, *begin + per_block);
}

__device__ __forceinline__ bool pixel_valid(const float *__restrict__ mask, int p) {
  return mask == nullptr || __ldg(mask + p) > 0.f;
}

/* I = sum_k |Psi_k|^2 in float, modes in order (as the CPU). */
__device__ __forceinline__ float pixel_intensity(const ptyc_c32 *__restrict__ w, int k_modes,
                                                 int pixels) {
  float intensity = 0.f;
  for (int k = 0; k < k_modes; k++) intensity += pt_cabs2(ldg_c32(w + (size_t)k * pixels));
  return intensity;
}

/* ---- Gaussian ------------------------------------------------------------------------------ */

template <int KMAX>
__global__ void gaussian_residual_kernel(pt_cuda_batch batch, const float *__restrict__ patterns,
                                         const float *__restrict__ mask,
                                         ptyc_c32 *__restrict__ waves, double *__restrict__ cost_part,
                                         int bpp) {
  __shared__ double shared[32];
  const int k_modes = batch.n_modes, pixels = batch.m * batch.m;
  const float inv_pixels = 1.f / (float)pixels;
  int begin, end;
  block_pixels(pixels, bpp, blockIdx.x, &begin, &end);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    const float *d = patterns + (size_t)__ldg(batch.order + batch.first + b) * pixels;
    ptyc_c32 *wb = waves + (size_t)b * k_modes * pixels;
    double cost[1] = {0.0};
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      ptyc_c32 w[KMAX];
      float intensity = 0.f;
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) {
          w[k] = load_c32(wb + (size_t)k * pixels + p);
          intensity += pt_cabs2(w[k]);
        }
      float factor = 0.f;
      if (pixel_valid(mask, p)) {
        float data = __ldg(d + p);
        factor = pt_gaussian_factor(intensity, data) * inv_pixels;
        cost[0] += pt_gaussian_cost(intensity, data);
      }
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) store_c32(wb + (size_t)k * pixels + p, pt_cscale(w[k], factor));
    }
    block_sum(cost, shared);
    if (threadIdx.x == 0) cost_part[(size_t)b * bpp + blockIdx.x] = cost[0];
  }
}

/* ---- Poisson -------------------------------------------------------------------------------- */

struct poisson_scratch {
  double *cost_part;   /* [n][bpp] */
  double *newton_part; /* [passes][n][bpp][2] */
  double *steps;       /* [n][passes + 1] */
  float *intensity;    /* [n][pixels] */
  int n, bpp;
  __device__ double *newton(int pass, int b, int blk) const {
    return newton_part + (((size_t)pass * n + b) * bpp + blk) * 2;
  }
  __device__ double *step(int b, int pass) const {
    return steps + (size_t)b * (PT_CUDA_POISSON_PASSES + 1) + pass;
  }
};

/* x_pass of entry b: x_0 = start, else one Newton update of x_{pass-1} with the summed
 * terms of pass-1. Called by one thread. */
__device__ double poisson_step(const poisson_scratch &s, int b, int pass) {
  if (pass == 0) return PT_POISSON_STEP_START;
  double grad = 0.0, hess = 0.0;
  for (int i = 0; i < s.bpp; i++) {
    const double *t = s.newton(pass - 1, b, i);
    grad += t[0];
    hess += t[1];
  }
  return pt_poisson_newton_update(*s.step(b, pass - 1), grad, hess);
}

__global__ void poisson_pass_kernel(pt_cuda_batch batch, int pass,
                                    const float *__restrict__ patterns,
                                    const float *__restrict__ mask,
                                    const ptyc_c32 *__restrict__ waves, poisson_scratch s) {
  __shared__ double shared[3 * 32];
  __shared__ double x_shared;
  const int k_modes = batch.n_modes, pixels = batch.m * batch.m;
  int begin, end;
  block_pixels(pixels, s.bpp, blockIdx.x, &begin, &end);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    if (threadIdx.x == 0) {
      double x = poisson_step(s, b, pass);
      x_shared = x;
      if (blockIdx.x == 0) *s.step(b, pass) = x; /* read by the next pass only */
    }
    __syncthreads();
    const double x = x_shared;
    const float *d = patterns + (size_t)__ldg(batch.order + batch.first + b) * pixels;
    const ptyc_c32 *wb = waves + (size_t)b * k_modes * pixels;
    float *ib = s.intensity + (size_t)b * pixels;
    double sums[3] = {0.0, 0.0, 0.0}; /* gradient, Hessian, cost */
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      if (!pixel_valid(mask, p)) continue;
      float intensity;
      if (pass == 0) {
        intensity = pixel_intensity(wb + p, k_modes, pixels);
        ib[p] = intensity;
      } else {
        intensity = ib[p]; /* written by pass 0, an earlier launch */
      }
      float data = __ldg(d + p);
      pt_poisson_newton_terms(intensity, data, x, &sums[0], &sums[1]);
      if (pass == 0) sums[2] += pt_poisson_cost(intensity, data);
    }
    block_sum(sums, shared); /* also keeps x_shared until every thread has read it */
    if (threadIdx.x == 0) {
      double *t = s.newton(pass, b, blockIdx.x);
      t[0] = sums[0];
      t[1] = sums[1];
      if (pass == 0) s.cost_part[(size_t)b * s.bpp + blockIdx.x] = sums[2];
    }
  }
}

template <int KMAX>
__global__ void poisson_apply_kernel(pt_cuda_batch batch, const float *__restrict__ patterns,
                                     const float *__restrict__ mask,
                                     ptyc_c32 *__restrict__ waves, double *__restrict__ cost,
                                     poisson_scratch s) {
  __shared__ float scale_shared;
  const int k_modes = batch.n_modes, pixels = batch.m * batch.m;
  int begin, end;
  block_pixels(pixels, s.bpp, blockIdx.x, &begin, &end);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    __syncthreads(); /* every thread has read scale_shared of the previous entry */
    if (threadIdx.x == 0) {
      double x = poisson_step(s, b, PT_CUDA_POISSON_PASSES);
      scale_shared = (float)x / (float)pixels;
      if (blockIdx.x == 0) {
        *s.step(b, PT_CUDA_POISSON_PASSES) = x;
        double c = 0.0;
        for (int i = 0; i < s.bpp; i++) c += s.cost_part[(size_t)b * s.bpp + i];
        cost[b] = c;
      }
    }
    __syncthreads();
    const float scale = scale_shared;
    const float *d = patterns + (size_t)__ldg(batch.order + batch.first + b) * pixels;
    ptyc_c32 *wb = waves + (size_t)b * k_modes * pixels;
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      ptyc_c32 w[KMAX];
      float intensity = 0.f;
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) {
          w[k] = load_c32(wb + (size_t)k * pixels + p);
          intensity += pt_cabs2(w[k]);
        }
      float factor = pixel_valid(mask, p) ? pt_poisson_ratio(intensity, __ldg(d + p)) * scale : 0.f;
#pragma unroll
      for (int k = 0; k < KMAX; k++)
        if (k < k_modes) store_c32(wb + (size_t)k * pixels + p, pt_cscale(w[k], factor));
    }
  }
}

extern "C" cudaError_t pt_cuda_launch_fourier_residual(pt_cuda_batch batch, int poisson,
                                                       const float *patterns, const float *mask,
                                                       ptyc_c32 *waves, double *cost,
                                                       void *scratch_bytes, cudaStream_t stream) {
  double *scratch = (double *)scratch_bytes;
  const int bpp = pt_cuda_blocks_per_position(batch.m);
  const int n = batch.n;
  dim3 grid((unsigned)bpp, (unsigned)(n < PT_MAX_GRID_Y ? n : PT_MAX_GRID_Y));
  if (!poisson) {
    PT_DISPATCH_MODES(batch.n_modes, KMAX,
                      gaussian_residual_kernel<KMAX><<<grid, PT_THREADS, 0, stream>>>(
                          batch, patterns, mask, waves, scratch, bpp));
    PT_LAUNCH_CHECK();
    return pt_launch_finish_entry_sums(scratch, bpp, n, cost, stream);
  }
  poisson_scratch s;
  s.cost_part = scratch;
  s.newton_part = scratch + (size_t)n * bpp;
  s.steps = s.newton_part + (size_t)PT_CUDA_POISSON_PASSES * n * bpp * 2;
  s.intensity = (float *)(scratch + (size_t)n * pt_cuda_fourier_doubles_per_position(batch.m, 1));
  s.n = n;
  s.bpp = bpp;
  for (int pass = 0; pass < PT_CUDA_POISSON_PASSES; pass++) {
    poisson_pass_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, pass, patterns, mask, waves, s);
    PT_LAUNCH_CHECK();
  }
  PT_DISPATCH_MODES(batch.n_modes, KMAX,
                    poisson_apply_kernel<KMAX><<<grid, PT_THREADS, 0, stream>>>(
                        batch, patterns, mask, waves, cost, s));
  return cudaGetLastError();
}
