/* The CUDA backend's host-side state and error macros (C11, internal to
 * src/backend/cuda/). Kernels and their launchers are declared in cuda_kernels.h. */
#ifndef PT_CUDA_INTERNAL_H
#define PT_CUDA_INTERNAL_H

#include <stddef.h>

#include <cuda_runtime_api.h>
#include <cufft.h>

#include "backend/backend_impl.h"

/* Device scratch for reductions, per-position partial sums and the Poisson model's
 * intensity cache, allocated once at create; an op whose batch needs more splits it
 * into several launches. 32 MiB holds a batch of 96 positions of 256 x 256 (Poisson
 * needs 256 KiB each); larger batches cost a few more launches, nothing else. */
#define PT_CUDA_SCRATCH_NBYTES ((size_t)32 << 20)
/* Pinned host staging buffer for small uploads (the per-iteration order array). */
#define PT_CUDA_STAGING_NBYTES ((size_t)1 << 20)

typedef struct pt_cuda_ctx {
  int device;             /* CUDA device ordinal among the visible ones */
  int sync_debug;         /* PTYC_SYNC_DEBUG=1: synchronise and check after each launch */
  cudaStream_t stream;    /* every copy, kernel and FFT of this backend */
  void *scratch;          /* device, PT_CUDA_SCRATCH_NBYTES */
  void *staging;          /* pinned host, PT_CUDA_STAGING_NBYTES */
  cudaEvent_t staging_free; /* recorded after the last copy out of `staging` */
  cudaEvent_t timer_begin, timer_end; /* ptyc_timer_start / ptyc_timer_stop */
  cudaStream_t copy_stream; /* ptyc_buf_upload_async: host-to-device copies that overlap */
  cudaEvent_t copy_fence;   /* "computation queued so far", waited for by each copy */
  cudaEvent_t copy_done[2]; /* the last copy of each group */
  int timer_started;
} pt_cuda_ctx;

/* Record a failed CUDA runtime / cuFFT call as the last error (statement, the
 * library's own text, file:line, current device) and return its ptyc_status. */
ptyc_status pt_cuda_error(cudaError_t err, const char *what, const char *file, int line);

/* Helpers of the op files (cuda_ops.c, cuda_autodiff_ops.c), in cuda_backend.c. */
struct pt_cuda_batch;
/* The kernels' view of batch entries [first, first + n) of a scan. */
struct pt_cuda_batch pt_cuda_make_batch(const ptyc_scan *scan, int first, int n);
/* Batch entries per launch when each needs `nbytes` of scratch (0 if not even one). */
int pt_cuda_entries_per_launch(size_t nbytes);
/* The error when even one entry's scratch does not fit. */
ptyc_status pt_cuda_scratch_too_small(const char *op, size_t nbytes);
ptyc_status pt_cufft_error(cufftResult err, const char *what, const char *file, int line);

/* Return from the current function with PTYC_E_DEVICE if `expr` fails. */
#define PT_CUDA(expr)                                                                  \
  do {                                                                                 \
    cudaError_t pt_cuda_err_ = (expr);                                                 \
    if (pt_cuda_err_ != cudaSuccess)                                                   \
      return pt_cuda_error(pt_cuda_err_, #expr, __FILE__, __LINE__);                   \
  } while (0)

#define PT_CUFFT(expr)                                                                 \
  do {                                                                                 \
    cufftResult pt_cufft_err_ = (expr);                                                \
    if (pt_cufft_err_ != CUFFT_SUCCESS)                                                \
      return pt_cufft_error(pt_cufft_err_, #expr, __FILE__, __LINE__);                 \
  } while (0)

/* As PT_CUDA, but store the status in the local `st` and jump to `fail`. */
#define PT_CUDA_CHECK(expr)                                                            \
  do {                                                                                 \
    cudaError_t pt_cuda_err_ = (expr);                                                 \
    if (pt_cuda_err_ != cudaSuccess) {                                                 \
      st = pt_cuda_error(pt_cuda_err_, #expr, __FILE__, __LINE__);                     \
      goto fail;                                                                       \
    }                                                                                  \
  } while (0)

/* A launcher call (cuda_kernels.h): check its launch error; with PTYC_SYNC_DEBUG=1 also
 * wait for the kernels, so that a fault is reported at the op that caused it. */
#define PT_LAUNCH(ctx, expr)                                                           \
  do {                                                                                 \
    PT_CUDA(expr);                                                                     \
    if ((ctx)->sync_debug) PT_CUDA(cudaStreamSynchronize((ctx)->stream));              \
  } while (0)

/* The ops' vtable slots (cuda_ops.c). */
ptyc_status pt_cuda_scale(void *ctx, ptyc_c32 *x, size_t count, float s);
ptyc_status pt_cuda_norm2(void *ctx, const ptyc_c32 *x, size_t count, double *out,
                          int accumulate);
ptyc_status pt_cuda_sum(void *ctx, const double *x, size_t count, double *out, int accumulate);
ptyc_status pt_cuda_axpy_mean(void *ctx, const float *weights, int n_weights,
                              const ptyc_c32 *x, size_t count, ptyc_c32 *y);
ptyc_status pt_cuda_precondition(void *ctx, const ptyc_c32 *num, size_t count, const float *den,
                                 size_t den_count, double damping, float beta,
                                 ptyc_c32 *target);
ptyc_status pt_cuda_shift_spectrum(void *ctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *spectrum, float scale, ptyc_c32 *out);
ptyc_status pt_cuda_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                       const ptyc_c32 *spectra, float scale, ptyc_c32 *acc);
ptyc_status pt_cuda_exit_waves(void *ctx, const ptyc_scan *scan, int first, int n,
                               const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi);
ptyc_status pt_cuda_interp_shift(void *ctx, const ptyc_scan *scan, int first, int n,
                                 const ptyc_c32 *probe, const ptyc_c32 *object, ptyc_c32 *probes,
                                 ptyc_c32 *psi);
ptyc_status pt_cuda_interp_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                              const ptyc_c32 *object, const ptyc_c32 *chi,
                                              ptyc_c32 *acc, float *den);
ptyc_status pt_cuda_fourier_residual(void *ctx, const ptyc_scan *scan, int first, int n,
                                     ptyc_noise_model noise_model, const float *patterns,
                                     const float *mask, ptyc_c32 *waves, double *cost);
ptyc_status pt_cuda_object_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                    const ptyc_c32 *probes, const ptyc_c32 *chi,
                                    const float *weights, ptyc_c32 *num, float *den);
ptyc_status pt_cuda_probe_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *object, const ptyc_c32 *chi, ptyc_c32 *g,
                                   float *den);
ptyc_status pt_cuda_lsqml_steps(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *object, const ptyc_c32 *dobject,
                                const ptyc_c32 *probes, const ptyc_c32 *dprobe,
                                const ptyc_c32 *chi, double regularization, double max_step,
                                int object_on, int probe_on, float *alpha);
ptyc_status pt_cuda_orthogonalize_modes(void *ctx, ptyc_c32 *probe, int n_modes, int m);

#endif
