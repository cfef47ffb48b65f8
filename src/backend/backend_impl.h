/* The backend vtable (internal). Each device kind fills one static const table;
 * src/backend/backend.c wraps every slot with argument checks (public ptyc_* API).
 * Slots receive already-validated arguments. A NULL slot makes the wrapper return
 * PTYC_E_UNSUPPORTED. */
#ifndef PT_BACKEND_IMPL_H
#define PT_BACKEND_IMPL_H

#include "ptyc/backend.h"

typedef struct pt_backend_vtable {
  const char *name;
  void (*destroy)(void *ctx);
  ptyc_status (*device_info)(void *ctx, ptyc_device_info *info);
  ptyc_status (*sync)(void *ctx);
  ptyc_status (*timer_start)(void *ctx);
  ptyc_status (*timer_stop)(void *ctx, double *ms);
  /* NULL slot: no native stream (the CPU). */
  void *(*native_stream)(void *ctx, int *device);

  ptyc_status (*alloc)(void *ctx, size_t nbytes, void **ptr);
  void (*free)(void *ctx, void *ptr);
  ptyc_status (*upload)(void *ctx, void *dst, const void *src, size_t nbytes);
  ptyc_status (*download)(void *ctx, void *dst, const void *src, size_t nbytes);
  ptyc_status (*zero)(void *ctx, void *dst, size_t nbytes);
  ptyc_status (*copy)(void *ctx, void *dst, const void *src, size_t nbytes);

  ptyc_status (*host_alloc)(void *ctx, size_t nbytes, void **ptr);
  void (*host_free)(void *ctx, void *ptr);
  ptyc_status (*upload_async)(void *ctx, int group, void *dst, const void *src, size_t nbytes);
  ptyc_status (*upload_wait)(void *ctx, int group);

  ptyc_status (*fft_plan)(void *ctx, int m, int count, void **plan);
  ptyc_status (*fft_exec)(void *ctx, void *plan, ptyc_c32 *data, int inverse);
  /* The first `count` images, 0 < count < the planned count. */
  ptyc_status (*fft_exec_count)(void *ctx, void *plan, ptyc_c32 *data, int count, int inverse);
  /* Optional (NULL: exit_waves then fft_exec_count). n K <= the planned count. */
  ptyc_status (*fft_exit_waves)(void *ctx, void *plan, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi);
  void (*fft_free)(void *ctx, void *plan);

  ptyc_status (*scale)(void *ctx, ptyc_c32 *x, size_t count, float s);
  ptyc_status (*norm2)(void *ctx, const ptyc_c32 *x, size_t count, double *out, int accumulate);
  ptyc_status (*sum)(void *ctx, const double *x, size_t count, double *out, int accumulate);
  ptyc_status (*axpy_mean)(void *ctx, const float *weights, int n_weights, const ptyc_c32 *x,
                           size_t count, ptyc_c32 *y);
  ptyc_status (*precondition)(void *ctx, const ptyc_c32 *num, size_t count, const float *den,
                              size_t den_count, double damping, float beta, ptyc_c32 *target);

  ptyc_status (*shift_spectrum)(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *spectrum, float scale, ptyc_c32 *out);
  ptyc_status (*unshift_accumulate)(void *ctx, const ptyc_scan *scan, int first, int n,
                                    const ptyc_c32 *spectra, float scale, ptyc_c32 *acc);
  ptyc_status (*exit_waves)(void *ctx, const ptyc_scan *scan, int first, int n,
                            const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi);
  ptyc_status (*interp_shift)(void *ctx, const ptyc_scan *scan, int first, int n,
                              const ptyc_c32 *probe, const ptyc_c32 *object, ptyc_c32 *probes,
                              ptyc_c32 *psi);
  ptyc_status (*interp_unshift_accumulate)(void *ctx, const ptyc_scan *scan, int first, int n,
                                           const ptyc_c32 *object, const ptyc_c32 *chi,
                                           ptyc_c32 *acc, float *den);
  ptyc_status (*fourier_residual)(void *ctx, const ptyc_scan *scan, int first, int n,
                                  ptyc_noise_model noise_model, const float *patterns,
                                  const float *mask, ptyc_c32 *waves, double *cost);
  ptyc_status (*object_gradient)(void *ctx, const ptyc_scan *scan, int first, int n,
                                 const ptyc_c32 *probes, const ptyc_c32 *chi,
                                 const float *weights, ptyc_c32 *num, float *den);
  ptyc_status (*probe_gradient)(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *object, const ptyc_c32 *chi, ptyc_c32 *g,
                                float *den);
  ptyc_status (*lsqml_steps)(void *ctx, const ptyc_scan *scan, int first, int n,
                             const ptyc_c32 *object, const ptyc_c32 *dobject,
                             const ptyc_c32 *probes, const ptyc_c32 *dprobe,
                             const ptyc_c32 *chi, double regularization, double max_step,
                             int object_on, int probe_on, float *alpha);
  ptyc_status (*orthogonalize_modes)(void *ctx, ptyc_c32 *probe, int n_modes, int m);

  /* autodiff (include/ptyc/backend.h, "autodiff") */
  ptyc_status (*loss_gradient)(void *ctx, const ptyc_scan *scan, int first, int n,
                               ptyc_loss loss, const float *patterns, const float *mask,
                               ptyc_c32 *waves, double *cost);
  /* grad_probes may equal probes; the other outputs may be NULL. */
  ptyc_status (*exit_waves_vjp)(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *object, const ptyc_c32 *probes,
                                const ptyc_c32 *grad_psi, ptyc_c32 *grad_object,
                                float *illumination, ptyc_c32 *grad_probes,
                                float *object_intensity);
  ptyc_status (*shift_position_gradient)(void *ctx, const ptyc_scan *scan, int first, int n,
                                         const ptyc_c32 *spectrum, float scale,
                                         const ptyc_c32 *grad_spectra, double *out);
  ptyc_status (*interp_position_gradient)(void *ctx, const ptyc_scan *scan, int first, int n,
                                          const ptyc_c32 *probe, const ptyc_c32 *object,
                                          const ptyc_c32 *grad_psi, double *out);
  ptyc_status (*optimizer_step)(void *ctx, const ptyc_optim_params *p, ptyc_c32 *param,
                                const ptyc_c32 *grad, size_t count, const float *den,
                                size_t den_count, void *state);
  ptyc_status (*position_step)(void *ctx, const ptyc_scan *scan, int first, int n,
                               const ptyc_optim_params *p, const double *grad,
                               const float *den, size_t den_count, double *state);
  ptyc_status (*object_regularize)(void *ctx, const ptyc_c32 *object, int h, int w,
                                   double l1_weight, double tv_weight, ptyc_c32 *grad,
                                   double *cost);
} pt_backend_vtable;

/* Constructors of the device kinds: fill *vtable and *ctx. */
ptyc_status pt_cpu_backend_create(int threads, const pt_backend_vtable **vtable, void **ctx);
/* Defined only in builds with CUDA (PTYC_HAVE_CUDA), in src/backend/cuda/. */
ptyc_status pt_cuda_backend_create(int device_index, const pt_backend_vtable **vtable,
                                   void **ctx);
int pt_cuda_usable(char *why, size_t why_size);
int pt_cuda_device_count(void);
ptyc_status pt_cuda_device_info(int index, ptyc_device_info *info);

#endif
