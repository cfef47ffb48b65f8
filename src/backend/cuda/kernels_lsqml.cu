/* LSQML per-position step sizes and the orthogonalisation of the probe modes.
 *
 * lsqml_steps: grid (bpp, n) as in kernels_fourier.cu: the blocks of one position sum
 * the five terms of their pixel range in double and write them to scratch
 * ([n][bpp][5]); then one thread per position adds its partial sums in order and
 * solves with pt_lsqml_solve (src/backend/lsqml_math.h, shared with the CPU).
 *
 * orthogonalize_modes: Gram matrix <P_i, P_j> (i <= j) as partial sums of
 * PT_CUDA_GRAM_BLOCKS blocks per pair, then ONE thread adds them and runs
 * pt_hermitian_eigen (src/backend/modes_math.h, shared with the CPU) on K x K values in
 * scratch, then every pixel's K modes are recombined in registers: mode a =
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

__global__ void lsqml_solve_kernel(const double *__restrict__ part, int bpp, int n,
                                   double regularization, double max_step, int object_on,
                                   int probe_on, float *__restrict__ alpha_object,
                                   float *__restrict__ alpha_probe) {
  int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= n) return;
  pt_lsqml_sums s = {0.0, 0.0, 0.0, 0.0, 0.0};
  for (int i = 0; i < bpp; i++) {
    const double *t = part + ((size_t)b * bpp + i) * 5;
    s.a11 += t[0];
    s.a22 += t[1];
    s.a12 += t[2];
    s.r1 += t[3];
    s.r2 += t[4];
  }
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
  lsqml_solve_kernel<<<pt_blocks((size_t)batch.n, PT_THREADS), PT_THREADS, 0, stream>>>(
      scratch, bpp, batch.n, regularization, max_step, object_on, probe_on, alpha_object,
      alpha_probe);
  return cudaGetLastError();
}

/* ---- orthogonalize_modes ---------------------------------------------------------------------- */

/* Where each piece of the modes scratch lies (see pt_cuda_modes_scratch_nbytes). */
struct modes_scratch {
  double *partial; /* [pairs][PT_CUDA_GRAM_BLOCKS][2] */
  ptyc_c64 *gram;  /* [k][k] */
  ptyc_c64 *vecs;  /* [k][k], row a = coefficients of new mode a */
  double *evals;   /* [k] */
  double *work;    /* 2 (2k)^2 + 2k */
};

static modes_scratch modes_layout(void *scratch, int k) {
  modes_scratch s;
  size_t pairs = (size_t)k * (k + 1) / 2;
  s.partial = (double *)scratch;
  s.gram = (ptyc_c64 *)(s.partial + pairs * PT_CUDA_GRAM_BLOCKS * 2);
  s.vecs = s.gram + (size_t)k * k;
  s.evals = (double *)(s.vecs + (size_t)k * k);
  s.work = s.evals + k;
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

/* One thread: the K x K problem is tiny; its work space lives in scratch, not in local
 * memory (a large per-thread frame would reserve local memory for every thread the GPU
 * can hold). */
__global__ void modes_eigen_kernel(int k, modes_scratch s) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  int pair = 0;
  for (int i = 0; i < k; i++)
    for (int j = i; j < k; j++, pair++) {
      double re = 0.0, im = 0.0;
      const double *t = s.partial + (size_t)pair * PT_CUDA_GRAM_BLOCKS * 2;
      for (int blk = 0; blk < PT_CUDA_GRAM_BLOCKS; blk++) {
        re += t[2 * blk];
        im += t[2 * blk + 1];
      }
      s.gram[i * k + j].re = re;
      s.gram[i * k + j].im = im;
      s.gram[j * k + i].re = re;
      s.gram[j * k + i].im = -im;
    }
  for (int i = 0; i < k * k; i++) s.vecs[i].re = s.vecs[i].im = 0.0;
  pt_hermitian_eigen(k, s.gram, s.evals, s.vecs, s.work);
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
  modes_eigen_kernel<<<1, 1, 0, stream>>>(k, s);
  PT_LAUNCH_CHECK();
  unsigned blocks = pt_blocks((size_t)pixels, PT_THREADS);
  PT_DISPATCH_MODES(k, KMAX,
                    modes_recombine_kernel<KMAX><<<blocks, PT_THREADS, 0, stream>>>(
                        probe, k, pixels, s));
  return cudaGetLastError();
}
