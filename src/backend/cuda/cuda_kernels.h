/* The CUDA kernels' launchers: thin extern "C" functions, callable from C, that queue
 * one op's kernels on `stream` and return cudaGetLastError(). They do no allocation
 * and no host synchronisation; the host side (cuda_ops.c) checks arguments, splits
 * big batches so that the per-position scratch fits, and checks the returned error.
 *
 * What each op computes is specified in include/ptyc/backend.h; the CPU reference is
 * src/backend/cpu/cpu_ops.c. "scratch" arguments are device memory owned by the backend
 * (pt_cuda_ctx.scratch); each launcher's comment says how many bytes it uses. */
#ifndef PT_CUDA_KERNELS_H
#define PT_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "ptyc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One launch's share of a batch: entries b = 0..n-1 are positions
 * order[first + b] of the scan (device pointers). */
typedef struct pt_cuda_batch {
  const double *positions; /* double [N][2] (y, x) */
  const int32_t *order;    /* int32 [N] */
  int first;               /* index into order of entry b = 0 */
  int n;                   /* entries in this launch */
  int m;                   /* M */
  int n_modes;             /* K */
  int obj_w;               /* object row length */
} pt_cuda_batch;

/* Most probe modes the kernels that keep a pixel's modes in registers take
 * (PT_MAX_MODES of src/backend/modes_math.h). */
#define PT_CUDA_MAX_MODES 16

/* Blocks of the first stage of the two-stage reductions (norm2, sum): the scratch
 * holds one double per block. */
#define PT_CUDA_REDUCE_BLOCKS 1024

/* Blocks that share one position's pixels in the per-position reductions
 * (fourier_residual, lsqml_steps): enough blocks to fill the GPU even for small
 * batches (about 1024 pixels each), few enough partial sums to stay tiny. */
#define PT_CUDA_MAX_BLOCKS_PER_POSITION 64
static inline int pt_cuda_blocks_per_position(int m) {
  size_t pixels = (size_t)m * m;
  size_t blocks = (pixels + 1023) / 1024;
  return blocks < PT_CUDA_MAX_BLOCKS_PER_POSITION ? (int)blocks
                                                  : PT_CUDA_MAX_BLOCKS_PER_POSITION;
}

/* Newton passes of the Poisson step search kept apart in scratch (one per step). */
#define PT_CUDA_POISSON_PASSES 3

/* Scratch per position, in bytes. fourier_residual keeps the cost partial sums and, for
 * the Poisson model, the (gradient, Hessian) partial sums of each Newton pass, the step
 * after each pass and the position's model intensity I (one float per pixel, so the
 * later Newton passes need not read the K waves again). lsqml_steps keeps the five
 * partial sums of each block. */
static inline size_t pt_cuda_fourier_doubles_per_position(int m, int poisson) {
  size_t bpp = (size_t)pt_cuda_blocks_per_position(m);
  return poisson ? bpp + PT_CUDA_POISSON_PASSES * bpp * 2 + (PT_CUDA_POISSON_PASSES + 1) : bpp;
}
static inline size_t pt_cuda_fourier_scratch_per_position(int m, int poisson) {
  return pt_cuda_fourier_doubles_per_position(m, poisson) * sizeof(double) +
         (poisson ? (size_t)m * m * sizeof(float) : 0);
}
static inline size_t pt_cuda_lsqml_scratch_per_position(int m) {
  return (size_t)pt_cuda_blocks_per_position(m) * 5 * sizeof(double);
}

/* Blocks of the Gram-matrix stage of orthogonalize_modes, per pair of modes. */
#define PT_CUDA_GRAM_BLOCKS 32
/* Bytes of scratch for orthogonalize_modes with k modes: the partial inner products
 * and the eigenvectors (the eigen-solver works in shared memory). */
static inline size_t pt_cuda_modes_scratch_nbytes(int k) {
  size_t pairs = (size_t)k * (k + 1) / 2;
  size_t doubles = pairs * PT_CUDA_GRAM_BLOCKS * 2 /* partials */ + 2 * (size_t)k * k;
  return doubles * sizeof(double);
}

/* Fails with cudaErrorNoKernelImageForDevice (or similar) when this build has no code
 * for the current device. Launches nothing. */
cudaError_t pt_cuda_check_kernel_image(void);

/* ---- element-wise and reductions (kernels_basic.cu) ---------------------------- */

cudaError_t pt_cuda_launch_scale(ptyc_c32 *x, size_t count, float s, cudaStream_t stream);
/* scratch: PT_CUDA_REDUCE_BLOCKS doubles. */
cudaError_t pt_cuda_launch_norm2(const ptyc_c32 *x, size_t count, double *out, int accumulate,
                                 double *scratch, cudaStream_t stream);
cudaError_t pt_cuda_launch_sum(const double *x, size_t count, double *out, int accumulate,
                               double *scratch, cudaStream_t stream);
cudaError_t pt_cuda_launch_axpy_mean(const float *weights, int n_weights, const ptyc_c32 *x,
                                     size_t count, ptyc_c32 *y, cudaStream_t stream);
/* scratch: one unsigned int (the bits of max(den)). */
cudaError_t pt_cuda_launch_precondition(const ptyc_c32 *num, size_t count, const float *den,
                                        size_t den_count, double damping, float beta,
                                        ptyc_c32 *target, unsigned *scratch,
                                        cudaStream_t stream);

/* ---- forward model (kernels_forward.cu) ---------------------------------------- */

/* scratch (ramps): batch.n * 2 * M complex values. */
cudaError_t pt_cuda_launch_shift_spectrum(pt_cuda_batch batch, const ptyc_c32 *spectrum,
                                          float scale, ptyc_c32 *out, ptyc_c32 *ramps,
                                          cudaStream_t stream);
cudaError_t pt_cuda_launch_unshift_accumulate(pt_cuda_batch batch, const ptyc_c32 *spectra,
                                              float scale, ptyc_c32 *acc, ptyc_c32 *ramps,
                                              cudaStream_t stream);
cudaError_t pt_cuda_launch_exit_waves(pt_cuda_batch batch, const ptyc_c32 *object,
                                      const ptyc_c32 *probes, ptyc_c32 *psi,
                                      cudaStream_t stream);
cudaError_t pt_cuda_launch_object_gradient(pt_cuda_batch batch, const ptyc_c32 *probes,
                                           const ptyc_c32 *chi, const float *weights,
                                           ptyc_c32 *num, float *den, cudaStream_t stream);
cudaError_t pt_cuda_launch_probe_gradient(pt_cuda_batch batch, const ptyc_c32 *object,
                                          const ptyc_c32 *chi, ptyc_c32 *g, float *den,
                                          cudaStream_t stream);

/* ---- 256 x 256 FFTs in one pass (kernels_fft256.cu) ------------------------------ */

/* Whether `device` runs pt_cuda_launch_fft256 (thread-block clusters: Hopper on); a
 * true answer also readies the kernels' shared memory there, so ask before launching. */
int pt_cuda_fft256_supported(int device);
/* `count` contiguous 256 x 256 C2C transforms in place, unnormalised as cuFFT's. */
cudaError_t pt_cuda_launch_fft256(ptyc_c32 *data, int count, int inverse, cudaStream_t stream);
/* psi[b][k] = F{probes[b][k] O_b} (forward) for the batch's entries, 256 x 256. */
cudaError_t pt_cuda_launch_fft256_exit_waves(pt_cuda_batch batch, const ptyc_c32 *object,
                                             const ptyc_c32 *probes, ptyc_c32 *psi,
                                             cudaStream_t stream);

/* ---- sub-pixel shifts by interpolation (kernels_interp.cu) ----------------------- */

/* Scratch (weights) of both: batch.n * PT_CUDA_INTERP_SCRATCH bytes. */
#define PT_CUDA_INTERP_SCRATCH (2 * 12 * sizeof(float)) /* 2 axes x PT_INTERP_TAPS */
/* psi may be NULL (then object is not read). */
cudaError_t pt_cuda_launch_interp_shift(pt_cuda_batch batch, const ptyc_c32 *probe,
                                        const ptyc_c32 *object, ptyc_c32 *probes,
                                        ptyc_c32 *psi, float *weights, cudaStream_t stream);
/* object may be NULL (then G = chi), den may be NULL. */
cudaError_t pt_cuda_launch_interp_unshift_accumulate(pt_cuda_batch batch,
                                                     const ptyc_c32 *object,
                                                     const ptyc_c32 *chi, ptyc_c32 *acc,
                                                     float *den, float *weights,
                                                     cudaStream_t stream);

/* Scratch per batch entry of interp_position_gradient: its weights and their
 * derivatives (4 x PT_INTERP_TAPS floats), then four partial sums per 32 x 32 tile. */
static inline size_t pt_cuda_interp_gradient_scratch_per_position(int m) {
  size_t tiles = (size_t)((m + 31) / 32) * ((m + 31) / 32);
  return 4 * 12 * sizeof(float) + tiles * 4 * sizeof(double);
}
cudaError_t pt_cuda_launch_interp_position_gradient(pt_cuda_batch batch, const ptyc_c32 *probe,
                                                    const ptyc_c32 *object,
                                                    const ptyc_c32 *grad_psi, double *out,
                                                    void *scratch, cudaStream_t stream);

/* ---- Fourier-space projection (kernels_fourier.cu) ----------------------------- */

/* poisson: 0 = Gaussian model, 1 = Poisson. scratch: batch.n *
 * pt_cuda_fourier_scratch_per_position(M, poisson) bytes. */
cudaError_t pt_cuda_launch_fourier_residual(pt_cuda_batch batch, int poisson,
                                            const float *patterns, const float *mask,
                                            ptyc_c32 *waves, double *cost, void *scratch,
                                            cudaStream_t stream);

/* ---- LSQML steps and probe modes (kernels_lsqml.cu) ----------------------------- */

/* alpha_object[b], alpha_probe[b] for b < batch.n. scratch: batch.n *
 * pt_cuda_lsqml_scratch_per_position(M) bytes. */
cudaError_t pt_cuda_launch_lsqml_steps(pt_cuda_batch batch, const ptyc_c32 *object,
                                       const ptyc_c32 *dobject, const ptyc_c32 *probes,
                                       const ptyc_c32 *dprobe, const ptyc_c32 *chi,
                                       double regularization, double max_step, int object_on,
                                       int probe_on, float *alpha_object, float *alpha_probe,
                                       double *scratch, cudaStream_t stream);
/* scratch: pt_cuda_modes_scratch_nbytes(k) bytes. */
cudaError_t pt_cuda_launch_orthogonalize_modes(ptyc_c32 *probe, int k, int m, void *scratch,
                                               cudaStream_t stream);

/* ---- autodiff (kernels_autodiff.cu) ------------------------------------------------- */

struct pt_optim_coeffs; /* src/backend/autodiff_math.h */

/* loss: a ptyc_loss. scratch: batch.n * pt_cuda_blocks_per_position(M) doubles. */
cudaError_t pt_cuda_launch_loss_gradient(pt_cuda_batch batch, int loss, const float *patterns,
                                         const float *mask, ptyc_c32 *waves, double *cost,
                                         double *scratch, cudaStream_t stream);
/* Any output may be NULL; grad_probes may equal probes. */
cudaError_t pt_cuda_launch_exit_waves_vjp(pt_cuda_batch batch, const ptyc_c32 *object,
                                          const ptyc_c32 *probes, const ptyc_c32 *grad_psi,
                                          ptyc_c32 *grad_object, float *illumination,
                                          ptyc_c32 *grad_probes, float *object_intensity,
                                          cudaStream_t stream);
/* Scratch per batch entry of shift_position_gradient: its ramps (2 M complex values)
 * and the four partial sums of each of its blocks. */
static inline size_t pt_cuda_shift_gradient_scratch_per_position(int m) {
  return 2 * (size_t)m * sizeof(ptyc_c32) +
         (size_t)pt_cuda_blocks_per_position(m) * 4 * sizeof(double);
}
cudaError_t pt_cuda_launch_shift_position_gradient(pt_cuda_batch batch,
                                                   const ptyc_c32 *spectrum, float scale,
                                                   const ptyc_c32 *grad_spectra, double *out,
                                                   void *scratch, cudaStream_t stream);
/* state: c32 m[count] then float v[count]. scratch: one unsigned (max(den) bits). */
cudaError_t pt_cuda_launch_optimizer_step(const struct pt_optim_coeffs *coeffs,
                                          float grad_scale, float den_mix, ptyc_c32 *param,
                                          const ptyc_c32 *grad, size_t count, const float *den,
                                          size_t den_count, void *state, unsigned *scratch,
                                          cudaStream_t stream);
/* positions: the scan's (written); limit_y, limit_x: the largest allowed corner.
 * scratch: one unsigned. */
cudaError_t pt_cuda_launch_position_step(pt_cuda_batch batch, double *positions,
                                         double limit_y, double limit_x,
                                         const struct pt_optim_coeffs *coeffs,
                                         double grad_scale, const double *grad,
                                         const float *den, size_t den_count, double *state,
                                         unsigned *scratch, cudaStream_t stream);
/* scratch: PT_CUDA_REDUCE_BLOCKS doubles. */
cudaError_t pt_cuda_launch_object_regularize(const ptyc_c32 *object, int h, int w,
                                             double l1_weight, double tv_weight,
                                             ptyc_c32 *grad, double *cost, double *scratch,
                                             cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
