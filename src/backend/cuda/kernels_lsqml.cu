/* LSQML per-position step sizes and the orthogonalisation of the probe modes.
 *
 * lsqml_steps: grid (bpp, n) as in kernels_fourier.cu: the blocks of one position sum
 * the five terms of their pixel range in double and write them to scratch
 * ([n][bpp][5]); then one thread per position adds its partial sums in order and
 * solves with pt_lsqml_solve (src/backend/lsqml_math.h, shared with the CPU).
 *
 * orthogonalize_modes: Gram matrix <P_i, P_j> (i <= j) as partial sums of
 * PT_CUDA_GRAM_BLOCKS blocks per pair, then one warp adds them and runs the steps of
 * pt_hermitian_eigen (src/backend/modes_math.h, shared with the CPU) on the K x K
 * values in shared memory, then every pixel's K modes are recombined in registers: mode a =
 * sum_j vecs[a][j] P_j, in double, as the CPU. */
#include "backend/cuda/cuda_device_util.h"
#include "backend/lsqml_math.h"
#include "backend/modes_math.h"

static_assert(PT_CUDA_MAX_MODES == PT_MAX_MODES, "the mode limit of cuda_kernels.h");

/* ---- lsqml_steps ---------------------------------------------------------------------------- */

__global__ void lsqml_sums_kernel(pt_cuda_batch batch, const ptyc_c32 *__restrict__ object,
                                  const ptyc_c32 *__restrict__ dobject,
                                  const ptyc_c32 *__restrict__ probes,
                                  const ptyc_c32 *__restrict__ dprobe,
                                  const ptyc_c32 *__restrict__ chi, int bpp,
                                  double *__restrict__ part) {
  __shared__ double shared[5 * 32];
  const int m = batch.m, k_modes = batch.n_modes, pixels = m * m;
  const int per_block = (pixels + bpp - 1) / bpp;
  const int begin = blockIdx.x * per_block;
  const int end = min(pixels, begin + per_block);
  for (int b = blockIdx.y; b < batch.n; b += gridDim.y) {
    pt_patch patch = batch_patch(batch, b);
    const size_t base = (size_t)b * k_modes * pixels;
    double s[5] = {0.0, 0.0, 0.0, 0.0, 0.0}; /* a11, a22, a12, r1, r2 */
    for (int p = begin + threadIdx.x; p < end; p += blockDim.x) {
      const int y = p / m, x = p - y * m;
      const size_t o = object_index(patch, batch.obj_w, y, x);
      const ptyc_c32 obj = ldg_c32(object + o), dobj = ldg_c32(dobject + o);
      for (int k = 0; k < k_modes; k++) {
        const size_t i = base + (size_t)k * pixels + p;
        ptyc_c32 a = pt_cmul(dobj, ldg_c32(probes + i));
        ptyc_c32 c = pt_cmul(obj, ldg_c32(dprobe + (size_t)k * pixels + p));
        ptyc_c32 r = ldg_c32(chi + i);
        s[0] += pt_cabs2(a);
        s[1] += pt_cabs2(c);
        s[2] += (double)a.re * c.re + (double)a.im * c.im;
        s[3] += (double)a.re * r.re + (double)a.im * r.im;
        s[4] += (double)c.re * r.re + (double)c.im * r.im;
      }
    }
    block_sum(s, shared);
    if (threadIdx.x == 0) {
      double *t = part + ((size_t)b * bpp + blockIdx.x) * 5;
      for (int i = 0; i < 5; i++) t[i] = s[i];
    }
  }
}

/* One warp per position adds its blocks' five partial sums (pt_warp_sum), then lane 0
 * solves. */
__global__ void lsqml_solve_kernel(const double *__restrict__ part, int bpp, int n,
                                   double regularization, double max_step, int object_on,
                                   int probe_on, float *__restrict__ alpha_object,
                                   float *__restrict__ alpha_probe) {
  const int b = pt_warp_entry();
  if (b >= n) return;
  const double *t = part + (size_t)b * bpp * 5;
  pt_lsqml_sums s;
  s.a11 = pt_warp_sum(t + 0, bpp, 5);
  s.a22 = pt_warp_sum(t + 1, bpp, 5);
  s.a12 = pt_warp_sum(t + 2, bpp, 5);
  s.r1 = pt_warp_sum(t + 3, bpp, 5);
  s.r2 = pt_warp_sum(t + 4, bpp, 5);
  if ((threadIdx.x & 31) == 0)
    pt_lsqml_solve(s, regularization, max_step, object_on, probe_on, &alpha_object[b],
                   &alpha_probe[b]);
}

extern "C" cudaError_t pt_cuda_launch_lsqml_steps(pt_cuda_batch batch, const ptyc_c32 *object,
                                                  const ptyc_c32 *dobject,
                                                  const ptyc_c32 *probes,
                                                  const ptyc_c32 *dprobe, const ptyc_c32 *chi,
                                                  double regularization, double max_step,
                                                  int object_on, int probe_on,
                                                  float *alpha_object, float *alpha_probe,
                                                  double *scratch, cudaStream_t stream) {
  const int bpp = pt_cuda_blocks_per_position(batch.m);
  dim3 grid((unsigned)bpp, (unsigned)(batch.n < PT_MAX_GRID_Y ? batch.n : PT_MAX_GRID_Y));
  lsqml_sums_kernel<<<grid, PT_THREADS, 0, stream>>>(batch, object, dobject, probes, dprobe,
                                                     chi, bpp, scratch);
  PT_LAUNCH_CHECK();
  lsqml_solve_kernel<<<pt_blocks((size_t)batch.n, PT_WARPS_PER_BLOCK), PT_THREADS, 0, stream>>>(
      scratch, bpp, batch.n, regularization, max_step, object_on, probe_on, alpha_object,
      alpha_probe);
  return cudaGetLastError();
}

/* ---- orthogonalize_modes ---------------------------------------------------------------------- */

/* Where each piece of the modes scratch lies (see pt_cuda_modes_scratch_nbytes). */
struct modes_scratch {
  double *partial; /* [pairs][PT_CUDA_GRAM_BLOCKS][2] */
  ptyc_c64 *vecs;  /* [k][k], row a = coefficients of new mode a */
};

static modes_scratch modes_layout(void *scratch, int k) {
  modes_scratch s;
  size_t pairs = (size_t)k * (k + 1) / 2;
  s.partial = (double *)scratch;
  s.vecs = (ptyc_c64 *)(s.partial + pairs * PT_CUDA_GRAM_BLOCKS * 2);
  return s;
}

/* Pair index -> (i, j), i <= j, in the order (0,0), (0,1), .., (0,k-1), (1,1), ... */
__device__ __forceinline__ void pair_modes(int pair, int k, int *i, int *j) {
  int row = 0;
  while (pair >= k - row) {
    pair -= k - row;
    row++;
  }
  *i = row;
  *j = row + pair;
}

__global__ void gram_partial_kernel(const ptyc_c32 *__restrict__ probe, int k, int pixels,
                                    modes_scratch s) {
  __shared__ double shared[2 * 32];
  int i, j;
  pair_modes(blockIdx.y, k, &i, &j);
  const ptyc_c32 *pi = probe + (size_t)i * pixels, *pj = probe + (size_t)j * pixels;
  double v[2] = {0.0, 0.0};
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < pixels; t += gridDim.x * blockDim.x) {
    ptyc_c32 z = pt_cmulc(ldg_c32(pi + t), ldg_c32(pj + t));
    v[0] += z.re;
    v[1] += z.im;
  }
  block_sum(v, shared);
  if (threadIdx.x == 0) {
    double *t = s.partial + ((size_t)blockIdx.y * PT_CUDA_GRAM_BLOCKS + blockIdx.x) * 2;
    t[0] = v[0];
    t[1] = v[1];
  }
}

/* One warp: its lanes add the Gram matrix's partial sums (a pair each), then solve the
 * K x K problem in shared memory with pt_hermitian_eigen's steps, lane r taking entry r
 * of every rotation, so that a rotation is 3 dependent steps instead of 6 K. (One
 * thread ran it in 1.1 ms per call on the H100, in global or in shared memory alike.) */
__global__ void modes_eigen_kernel(int k, modes_scratch s) {
  constexpr int NMAX = 2 * PT_MAX_MODES;
  static_assert(NMAX <= 32, "a lane per row of the real embedding");
  __shared__ ptyc_c64 gram[PT_MAX_MODES * PT_MAX_MODES], vecs[PT_MAX_MODES * PT_MAX_MODES];
  __shared__ double sym[NMAX * NMAX], v[NMAX * NMAX], diag[NMAX], evals[PT_MAX_MODES];
  const int lane = threadIdx.x, n = 2 * k, pairs = k * (k + 1) / 2;
  for (int pair = lane; pair < pairs; pair += 32) {
    int i, j;
    pair_modes(pair, k, &i, &j);
    double re = 0.0, im = 0.0;
    const double *t = s.partial + (size_t)pair * PT_CUDA_GRAM_BLOCKS * 2;
    for (int blk = 0; blk < PT_CUDA_GRAM_BLOCKS; blk++) {
      re += t[2 * blk];
      im += t[2 * blk + 1];
    }
    gram[i * k + j].re = re;
    gram[i * k + j].im = im;
    gram[j * k + i].re = re;
    gram[j * k + i].im = -im;
  }
  __syncwarp();
  if (lane == 0) pt_hermitian_embed(k, gram, sym, v);
  __syncwarp();
  for (int sweep = 0; sweep < PT_JACOBI_SWEEPS; sweep++) {
    double off = 0.0, scale = 0.0; /* lane r: row r, then the lanes' sums in a fixed tree */
    if (lane < n)
      for (int q = 0; q < n; q++) {
        double x = sym[lane * n + q] * sym[lane * n + q];
        if (q != lane) off += x;
        scale += x;
      }
    for (int o = 16; o > 0; o >>= 1) {
      off += __shfl_down_sync(0xffffffffu, off, o);
      scale += __shfl_down_sync(0xffffffffu, scale, o);
    }
    /* lane 0's verdict for all: lanes must not part ways at the __syncwarp below */
    if (!__shfl_sync(0xffffffffu, pt_jacobi_unconverged(off, scale), 0)) break;
    for (int p = 0; p < n - 1; p++)
      for (int q = p + 1; q < n; q++) {
        double c, sn;
        if (!pt_jacobi_rotation(n, sym, p, q, &c, &sn)) continue; /* the same on every lane */
        __syncwarp();
        if (lane < n) pt_jacobi_columns(n, sym, v, p, q, c, sn, lane);
        __syncwarp();
        if (lane < n) pt_jacobi_rows(n, sym, p, q, c, sn, lane);
        __syncwarp();
      }
  }
  if (lane == 0) pt_hermitian_extract(k, sym, v, diag, evals, vecs);
  __syncwarp();
  for (int i = lane; i < k * k; i += 32) s.vecs[i] = vecs[i];
}

template <int KMAX>
__global__ void modes_recombine_kernel(ptyc_c32 *__restrict__ probe, int k, int pixels,
                                       modes_scratch s) {
  __shared__ ptyc_c64 vecs[KMAX * KMAX];
  for (int i = threadIdx.x; i < k * k; i += blockDim.x) vecs[i] = s.vecs[i];
  __syncthreads();
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < pixels; t += gridDim.x * blockDim.x) {
    ptyc_c32 old[KMAX];
#pragma unroll
    for (int j = 0; j < KMAX; j++)
      if (j < k) old[j] = load_c32(probe + (size_t)j * pixels + t);
#pragma unroll
    for (int a = 0; a < KMAX; a++) {
      if (a >= k) break;
      double re = 0.0, im = 0.0;
#pragma unroll
      for (int j = 0; j < KMAX; j++)
        if (j < k) {
          ptyc_c64 v = vecs[a * k + j];
          re += v.re * old[j].re - v.im * old[j].im;
          im += v.re * old[j].im + v.im * old[j].re;
        }
      store_c32(probe + (size_t)a * pixels + t, pt_c32((float)re, (float)im));
    }
  }
}

extern "C" cudaError_t pt_cuda_launch_orthogonalize_modes(ptyc_c32 *probe, int k, int m,
                                                          void *scratch, cudaStream_t stream) {
  if (k <= 1) return cudaSuccess; /* one mode: nothing to do (as the CPU) */
  const int pixels = m * m;
  modes_scratch s = modes_layout(scratch, k);
  dim3 grid(PT_CUDA_GRAM_BLOCKS, (unsigned)(k * (k + 1) / 2));
  gram_partial_kernel<<<grid, PT_THREADS, 0, stream>>>(probe, k, pixels, s);
  PT_LAUNCH_CHECK();
  modes_eigen_kernel<<<1, 32, 0, stream>>>(k, s);
  PT_LAUNCH_CHECK();
  unsigned blocks = pt_blocks((size_t)pixels, PT_THREADS);
  PT_DISPATCH_MODES(k, KMAX,
                    modes_recombine_kernel<KMAX><<<blocks, PT_THREADS, 0, stream>>>(
                        probe, k, pixels, s));
  return cudaGetLastError();
}
