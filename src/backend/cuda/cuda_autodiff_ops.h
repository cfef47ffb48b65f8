/* The CUDA backend's autodiff ops, host side (cuda_autodiff_ops.c); see the "autodiff"
 * section of include/ptyc/backend.h for what each computes. */
#ifndef PT_CUDA_AUTODIFF_OPS_H
#define PT_CUDA_AUTODIFF_OPS_H

#include "ptyc/backend.h"

ptyc_status pt_cuda_loss_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                  ptyc_loss loss, const float *patterns, const float *mask,
                                  ptyc_c32 *waves, double *cost);
ptyc_status pt_cuda_exit_waves_vjp(void *ctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *object, const ptyc_c32 *probes,
                                   const ptyc_c32 *grad_psi, ptyc_c32 *grad_object,
                                   float *illumination, ptyc_c32 *grad_probes,
                                   float *object_intensity);
ptyc_status pt_cuda_shift_position_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                            const ptyc_c32 *spectrum, float scale,
                                            const ptyc_c32 *grad_spectra, double *out);
ptyc_status pt_cuda_interp_position_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                             const ptyc_c32 *probe, const ptyc_c32 *object,
                                             const ptyc_c32 *grad_psi, double *out);
ptyc_status pt_cuda_optimizer_step(void *ctx, const ptyc_optim_params *p, ptyc_c32 *param,
                                   const ptyc_c32 *grad, size_t count, const float *den,
                                   size_t den_count, void *state);
ptyc_status pt_cuda_position_step(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_optim_params *p, const double *grad,
                                  const float *den, size_t den_count, double *state);
ptyc_status pt_cuda_object_regularize(void *ctx, const ptyc_c32 *object, int h, int w,
                                      double l1_weight, double tv_weight, ptyc_c32 *grad,
                                      double *cost);

#endif
