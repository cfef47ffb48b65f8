/* The CUDA backend's ops, host side: make the device current, split batches whose
 * per-position scratch would not fit, call the launchers (cuda_kernels.h) and check
 * them. Arguments were validated by src/backend/backend.c; what each op computes is
 * in include/ptyc/backend.h. Nothing here allocates or waits for the device. */
#include <limits.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_kernels.h"
#include "pt_try.h"

static size_t image_count(const ptyc_scan *scan) { return (size_t)scan->m * scan->m; }

/* ---- element-wise and reductions -------------------------------------------------------- */

ptyc_status pt_cuda_scale(void *vctx, ptyc_c32 *x, size_t count, float s) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_scale(x, count, s, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_norm2(void *vctx, const ptyc_c32 *x, size_t count, double *out,
                          int accumulate) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) {
    if (!accumulate) PT_CUDA(cudaMemsetAsync(out, 0, sizeof *out, ctx->stream));
    return PTYC_OK;
  }
  PT_LAUNCH(ctx, pt_cuda_launch_norm2(x, count, out, accumulate, ctx->scratch, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_sum(void *vctx, const double *x, size_t count, double *out, int accumulate) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) {
    if (!accumulate) PT_CUDA(cudaMemsetAsync(out, 0, sizeof *out, ctx->stream));
    return PTYC_OK;
  }
  PT_LAUNCH(ctx, pt_cuda_launch_sum(x, count, out, accumulate, ctx->scratch, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_axpy_mean(void *vctx, const float *weights, int n_weights,
                              const ptyc_c32 *x, size_t count, ptyc_c32 *y) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_axpy_mean(weights, n_weights, x, count, y, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_precondition(void *vctx, const ptyc_c32 *num, size_t count, const float *den,
                                 size_t den_count, double damping, float beta,
                                 ptyc_c32 *target) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_precondition(num, count, den, den_count, damping, beta, target,
                                             ctx->scratch, ctx->stream));
  return PTYC_OK;
}

/* ---- forward model ----------------------------------------------------------------------------
 * shift_spectrum and unshift_accumulate keep each entry's ramps (2 M complex values) in
 * scratch; a batch with more entries than fit is done in several launches. */

ptyc_status pt_cuda_shift_spectrum(void *vctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *spectrum, float scale, ptyc_c32 *out) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t per_entry = 2 * (size_t)scan->m * sizeof(ptyc_c32);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("shift_spectrum", per_entry);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_shift_spectrum(pt_cuda_make_batch(scan, first + b0, count), spectrum,
                                                 scale, out + (size_t)b0 * images,
                                                 ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_unshift_accumulate(void *vctx, const ptyc_scan *scan, int first, int n,
                                       const ptyc_c32 *spectra, float scale, ptyc_c32 *acc) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t per_entry = 2 * (size_t)scan->m * sizeof(ptyc_c32);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("unshift_accumulate", per_entry);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_unshift_accumulate(pt_cuda_make_batch(scan, first + b0, count),
                                                     spectra + (size_t)b0 * images, scale, acc,
                                                     ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_exit_waves(void *vctx, const ptyc_scan *scan, int first, int n,
                               const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_exit_waves(pt_cuda_make_batch(scan, first, n), object, probes, psi,
                                           ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_interp_shift(void *vctx, const ptyc_scan *scan, int first, int n,
                                 const ptyc_c32 *probe, const ptyc_c32 *object, ptyc_c32 *probes,
                                 ptyc_c32 *psi) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  int step = pt_cuda_entries_per_launch(PT_CUDA_INTERP_SCRATCH);
  if (step == 0) return pt_cuda_scratch_too_small("interp_shift", PT_CUDA_INTERP_SCRATCH);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    size_t at = (size_t)b0 * images;
    PT_LAUNCH(ctx, pt_cuda_launch_interp_shift(pt_cuda_make_batch(scan, first + b0, count), probe,
                                               object, probes + at, psi ? psi + at : NULL,
                                               ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_interp_unshift_accumulate(void *vctx, const ptyc_scan *scan, int first, int n,
                                              const ptyc_c32 *object, const ptyc_c32 *chi,
                                              ptyc_c32 *acc, float *den) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  int step = pt_cuda_entries_per_launch(PT_CUDA_INTERP_SCRATCH);
  if (step == 0)
    return pt_cuda_scratch_too_small("interp_unshift_accumulate", PT_CUDA_INTERP_SCRATCH);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_interp_unshift_accumulate(
                       pt_cuda_make_batch(scan, first + b0, count), object,
                       chi + (size_t)b0 * images, acc, den, ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_fourier_residual(void *vctx, const ptyc_scan *scan, int first, int n,
                                     ptyc_noise_model noise_model, const float *patterns,
                                     const float *mask, ptyc_c32 *waves, double *cost) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (scan->n_modes > PT_CUDA_MAX_MODES)
    return ptyc_fail(PTYC_E_UNSUPPORTED, "fourier_residual: %d probe modes, the CUDA backend "
                     "takes at most %d", scan->n_modes, PT_CUDA_MAX_MODES);
  int poisson = noise_model == PTYC_NOISE_POISSON;
  size_t per_entry = pt_cuda_fourier_scratch_per_position(scan->m, poisson);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("fourier_residual", per_entry);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_fourier_residual(pt_cuda_make_batch(scan, first + b0, count), poisson,
                                                   patterns, mask, waves + (size_t)b0 * images,
                                                   cost + b0, ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_object_gradient(void *vctx, const ptyc_scan *scan, int first, int n,
                                    const ptyc_c32 *probes, const ptyc_c32 *chi,
                                    const float *weights, ptyc_c32 *num, float *den) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_object_gradient(pt_cuda_make_batch(scan, first, n), probes, chi, weights,
                                                num, den, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_probe_gradient(void *vctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *object, const ptyc_c32 *chi, ptyc_c32 *g,
                                   float *den) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_probe_gradient(pt_cuda_make_batch(scan, first, n), object, chi, g, den,
                                               ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_lsqml_steps(void *vctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *object, const ptyc_c32 *dobject,
                                const ptyc_c32 *probes, const ptyc_c32 *dprobe,
                                const ptyc_c32 *chi, double regularization, double max_step,
                                int object_on, int probe_on, float *alpha) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t per_entry = pt_cuda_lsqml_scratch_per_position(scan->m);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("lsqml_steps", per_entry);
  size_t images = (size_t)scan->n_modes * image_count(scan);
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    size_t offset = (size_t)b0 * images;
    PT_LAUNCH(ctx, pt_cuda_launch_lsqml_steps(pt_cuda_make_batch(scan, first + b0, count), object,
                                              dobject, probes + offset, dprobe, chi + offset,
                                              regularization, max_step, object_on, probe_on,
                                              alpha + b0, alpha + n + b0, ctx->scratch,
                                              ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_orthogonalize_modes(void *vctx, ptyc_c32 *probe, int n_modes, int m) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n_modes <= 1) return PTYC_OK;
  size_t need = pt_cuda_modes_scratch_nbytes(n_modes);
  if (need > PT_CUDA_SCRATCH_NBYTES)
    return ptyc_fail(PTYC_E_UNSUPPORTED, "orthogonalize_modes: %d modes need %zu bytes of scratch",
                     n_modes, need);
  PT_LAUNCH(ctx, pt_cuda_launch_orthogonalize_modes(probe, n_modes, m, ctx->scratch,
                                                    ctx->stream));
  return PTYC_OK;
}
