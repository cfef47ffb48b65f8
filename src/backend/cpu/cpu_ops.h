/* The CPU reference ops (plain loops, double accumulation); see include/ptyc/backend.h
 * for what each computes. */
#ifndef PT_CPU_OPS_H
#define PT_CPU_OPS_H

#include "ptyc/backend.h"

typedef struct pt_cpu_ctx {
  int threads;
  double timer_start_s; /* ptyc_timer_start's wall clock */
  void *scratch;        /* ops' work space: grows to the largest need, then is reused */
  size_t scratch_nbytes;
} pt_cpu_ctx;

/* At least `nbytes` of work space, valid until the next call; NULL when out of memory.
 * It grows during the first iteration only: later iterations ask for the same sizes. */
void *pt_cpu_scratch(pt_cpu_ctx *ctx, size_t nbytes);

ptyc_status pt_cpu_scale(void *ctx, ptyc_c32 *x, size_t count, float s);
ptyc_status pt_cpu_norm2(void *ctx, const ptyc_c32 *x, size_t count, double *out, int accumulate);
ptyc_status pt_cpu_sum(void *ctx, const double *x, size_t count, double *out, int accumulate);
ptyc_status pt_cpu_axpy_mean(void *ctx, const float *weights, int n_weights, const ptyc_c32 *x,
                             size_t count, ptyc_c32 *y);
ptyc_status pt_cpu_precondition(void *ctx, const ptyc_c32 *num, size_t count, const float *den,
                                size_t den_count, double damping, float beta, ptyc_c32 *target);
ptyc_status pt_cpu_shift_spectrum(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_c32 *spectrum, float scale, ptyc_c32 *out);
ptyc_status pt_cpu_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                      const ptyc_c32 *spectra, float scale, ptyc_c32 *acc);
ptyc_status pt_cpu_exit_waves(void *ctx, const ptyc_scan *scan, int first, int n,
                              const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi);
ptyc_status pt_cpu_interp_shift(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *probe, const ptyc_c32 *object, ptyc_c32 *probes,
                                ptyc_c32 *psi);
ptyc_status pt_cpu_interp_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                             const ptyc_c32 *object, const ptyc_c32 *chi,
                                             ptyc_c32 *acc, float *den);
ptyc_status pt_cpu_interp_position_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                            const ptyc_c32 *probe, const ptyc_c32 *object,
                                            const ptyc_c32 *grad_psi, double *out);
ptyc_status pt_cpu_fourier_residual(void *ctx, const ptyc_scan *scan, int first, int n,
                                    ptyc_noise_model noise_model, const float *patterns,
                                    const float *mask, ptyc_c32 *waves, double *cost);
ptyc_status pt_cpu_object_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *probes, const ptyc_c32 *chi,
                                   const float *weights, ptyc_c32 *num, float *den);
ptyc_status pt_cpu_probe_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_c32 *object, const ptyc_c32 *chi, ptyc_c32 *g,
                                  float *den);
ptyc_status pt_cpu_lsqml_steps(void *ctx, const ptyc_scan *scan, int first, int n,
                               const ptyc_c32 *object, const ptyc_c32 *dobject,
                               const ptyc_c32 *probes, const ptyc_c32 *dprobe,
                               const ptyc_c32 *chi, double regularization, double max_step,
                               int object_on, int probe_on, float *alpha);
ptyc_status pt_cpu_orthogonalize_modes(void *ctx, ptyc_c32 *probe, int n_modes, int m);

#endif
