/* The CUDA backend's autodiff ops, host side: make the device current, split batches
 * whose per-position scratch would not fit, call the launchers (cuda_kernels.h,
 * kernels_autodiff.cu) and check them. Arguments were validated by
 * src/backend/backend.c. Nothing here allocates or waits for the device. */
#include <limits.h>

#include "backend/autodiff_math.h"
#include "backend/cuda/cuda_autodiff_ops.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_kernels.h"
#include "pt_try.h"

ptyc_status pt_cuda_loss_gradient(void *vctx, const ptyc_scan *scan, int first, int n,
                                  ptyc_loss loss, const float *patterns, const float *mask,
                                  ptyc_c32 *waves, double *cost) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (scan->n_modes > PT_CUDA_MAX_MODES)
    return ptyc_fail(PTYC_E_UNSUPPORTED, "loss_gradient: %d probe modes, the CUDA backend "
                     "takes at most %d", scan->n_modes, PT_CUDA_MAX_MODES);
  size_t per_entry = (size_t)pt_cuda_blocks_per_position(scan->m) * sizeof(double);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("loss_gradient", per_entry);
  size_t images = (size_t)scan->n_modes * scan->m * scan->m;
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_loss_gradient(pt_cuda_make_batch(scan, first + b0, count), (int)loss,
                                                patterns, mask, waves + (size_t)b0 * images,
                                                cost + b0, ctx->scratch, ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_exit_waves_vjp(void *vctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *object, const ptyc_c32 *probes,
                                   const ptyc_c32 *grad_psi, ptyc_c32 *grad_object,
                                   float *illumination, ptyc_c32 *grad_probes,
                                   float *object_intensity) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n == 0) return PTYC_OK;
  PT_LAUNCH(ctx, pt_cuda_launch_exit_waves_vjp(pt_cuda_make_batch(scan, first, n), object, probes,
                                               grad_psi, grad_object, illumination, grad_probes,
                                               object_intensity, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_shift_position_gradient(void *vctx, const ptyc_scan *scan, int first, int n,
                                            const ptyc_c32 *spectrum, float scale,
                                            const ptyc_c32 *grad_spectra, double *out) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t per_entry = pt_cuda_shift_gradient_scratch_per_position(scan->m);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("shift_position_gradient", per_entry);
  size_t images = (size_t)scan->n_modes * scan->m * scan->m;
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_shift_position_gradient(
                       pt_cuda_make_batch(scan, first + b0, count), spectrum, scale,
                       grad_spectra + (size_t)b0 * images, out + 4 * (size_t)b0, ctx->scratch,
                       ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_interp_position_gradient(void *vctx, const ptyc_scan *scan, int first, int n,
                                             const ptyc_c32 *probe, const ptyc_c32 *object,
                                             const ptyc_c32 *grad_psi, double *out) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t per_entry = pt_cuda_interp_gradient_scratch_per_position(scan->m);
  int step = pt_cuda_entries_per_launch(per_entry);
  if (step == 0) return pt_cuda_scratch_too_small("interp_position_gradient", per_entry);
  size_t images = (size_t)scan->n_modes * scan->m * scan->m;
  for (int b0 = 0; b0 < n; b0 += step) {
    int count = n - b0 < step ? n - b0 : step;
    PT_LAUNCH(ctx, pt_cuda_launch_interp_position_gradient(
                       pt_cuda_make_batch(scan, first + b0, count), probe, object,
                       grad_psi + (size_t)b0 * images, out + 4 * (size_t)b0, ctx->scratch,
                       ctx->stream));
  }
  return PTYC_OK;
}

ptyc_status pt_cuda_optimizer_step(void *vctx, const ptyc_optim_params *p, ptyc_c32 *param,
                                   const ptyc_c32 *grad, size_t count, const float *den,
                                   size_t den_count, void *state) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (count == 0) return PTYC_OK;
  pt_optim_coeffs c = pt_optim_coeffs_of(p);
  PT_LAUNCH(ctx, pt_cuda_launch_optimizer_step(&c, (float)p->grad_scale, (float)p->den_mix,
                                               param, grad, count, den, den_count, state,
                                               ctx->scratch, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_position_step(void *vctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_optim_params *p, const double *grad,
                                  const float *den, size_t den_count, double *state) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (n == 0) return PTYC_OK;
  pt_optim_coeffs c = pt_optim_coeffs_of(p);
  PT_LAUNCH(ctx, pt_cuda_launch_position_step(pt_cuda_make_batch(scan, first, n), scan->positions.ptr,
                                              scan->obj_h - scan->m, scan->obj_w - scan->m, &c,
                                              p->grad_scale, grad, den, den_count, state,
                                              ctx->scratch, ctx->stream));
  return PTYC_OK;
}

ptyc_status pt_cuda_object_regularize(void *vctx, const ptyc_c32 *object, int h, int w,
                                      double l1_weight, double tv_weight, ptyc_c32 *grad,
                                      double *cost) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_LAUNCH(ctx, pt_cuda_launch_object_regularize(object, h, w, l1_weight, tv_weight, grad, cost,
                                                  ctx->scratch, ctx->stream));
  return PTYC_OK;
}
