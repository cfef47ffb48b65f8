/* The backend: device memory, batched FFTs and the numerical ops the engines need.
 *
 * One interface for every device kind; `cpu` (FFTW + OpenMP) is the reference and
 * `cuda` is tested against it op by op. Engines see only this header.
 *
 * All ops are asynchronous on devices that can be: they are queued in order on the
 * backend's one stream. Only ptyc_buf_download() and ptyc_backend_sync() wait.
 *
 * Batch notation used by the op descriptions below. An op works on `n` scan positions
 * of the current order: for b in 0..n-1, j = order[first + b] is the position index,
 * (py, px) = positions[j], y0 = floor(py), x0 = floor(px), fy = py - y0, fx = px - x0.
 * O_b is the object patch O[y0 : y0+M, x0 : x0+M]; callers guarantee it lies inside
 * the object (the model checks this once). Arrays named [n][K][M][M] hold one M x M
 * image per batch entry and probe mode. Complex buffers are ptyc_c32. */
#ifndef PTYC_BACKEND_H
#define PTYC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ptyc/options.h"
#include "ptyc/status.h"
#include "ptyc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_backend ptyc_backend;
typedef struct ptyc_fft ptyc_fft;

/* A block of backend memory (device memory on a GPU). `ptr` is NOT host-readable on
 * devices; read it with ptyc_buf_download. A zero buffer {NULL, 0} means "none". */
typedef struct ptyc_buf {
  void *ptr;
  size_t nbytes;
} ptyc_buf;

/* The scan geometry shared by the batch ops. */
typedef struct ptyc_scan {
  int m;           /* probe window / pattern size M */
  int n_modes;     /* probe modes K */
  int obj_h, obj_w;
  ptyc_buf positions; /* double [N][2] (y, x) top-left, object pixels */
  ptyc_buf order;     /* int32 [N]: this iteration's order of positions */
  int n_positions;    /* N */
} ptyc_scan;

/* ---- lifetime and devices ---------------------------------------------------------- */

typedef struct ptyc_device_info {
  char name[128];          /* e.g. "NVIDIA H100 80GB HBM3" or the CPU model */
  size_t memory_total;     /* bytes */
  size_t memory_free;      /* bytes */
  int compute_major, compute_minor; /* CUDA compute capability; 0 for the CPU */
  int threads;             /* CPU threads the backend uses */
} ptyc_device_info;

/* Creates a backend of `kind` (CPU or CUDA; never AUTO: the caller resolves it).
 * `device_index` picks among visible GPUs; `threads` (0 = default) sets CPU threads. */
ptyc_status ptyc_backend_create(ptyc_device_kind kind, int device_index, int threads,
                                ptyc_backend **out);
void ptyc_backend_free(ptyc_backend *be);
const char *ptyc_backend_name(const ptyc_backend *be); /* "cpu" or "cuda" */
ptyc_status ptyc_backend_device_info(ptyc_backend *be, ptyc_device_info *info);
/* Bytes currently allocated through this backend and the peak since creation. */
size_t ptyc_backend_bytes_in_use(const ptyc_backend *be);
size_t ptyc_backend_peak_bytes(const ptyc_backend *be);
ptyc_status ptyc_backend_sync(ptyc_backend *be);
/* A stopwatch on the backend's queue: the time of the work queued between start and
 * stop (device events on GPUs, the wall clock on the CPU). stop waits for that work. */
ptyc_status ptyc_timer_start(ptyc_backend *be);
ptyc_status ptyc_timer_stop(ptyc_backend *be, double *ms);
/* The device kind's own queue, for libraries that must run in order with the backend's
 * work (NCCL): the CUDA backend's cudaStream_t, with its CUDA device ordinal in
 * *device. NULL and -1 for the CPU, whose ops run synchronously on host memory. */
void *ptyc_backend_native_stream(ptyc_backend *be, int *device);

/* Whether a usable CUDA device is visible. On 0, `why` says why not (no CUDA in this
 * build, CUDA_VISIBLE_DEVICES empty, driver too old, no device). */
int ptyc_cuda_usable(char *why, size_t why_size);
/* Number of visible CUDA devices (0 without CUDA) and their descriptions. */
int ptyc_cuda_device_count(void);
ptyc_status ptyc_cuda_device_info(int index, ptyc_device_info *info);

/* ---- memory --------------------------------------------------------------------------- */

ptyc_status ptyc_buf_alloc(ptyc_backend *be, size_t nbytes, ptyc_buf *out);
void ptyc_buf_free(ptyc_backend *be, ptyc_buf *buf); /* NULL-safe; resets *buf */
ptyc_status ptyc_buf_upload(ptyc_backend *be, ptyc_buf dst, size_t dst_offset,
                            const void *src, size_t nbytes);
/* Waits for queued work, then copies to the host. */
ptyc_status ptyc_buf_download(ptyc_backend *be, void *dst, ptyc_buf src, size_t src_offset,
                              size_t nbytes);
ptyc_status ptyc_buf_zero(ptyc_backend *be, ptyc_buf dst, size_t offset, size_t nbytes);
ptyc_status ptyc_buf_copy(ptyc_backend *be, ptyc_buf dst, size_t dst_offset, ptyc_buf src,
                          size_t src_offset, size_t nbytes);

/* ---- streaming from host memory ----------------------------------------------------------
 * For data larger than the device: host memory the device can read asynchronously, and
 * copies that overlap computation. On the CPU these are plain memory and memcpy. */

/* Host memory for asynchronous uploads (page-locked on GPUs). */
ptyc_status ptyc_host_alloc(ptyc_backend *be, size_t nbytes, void **ptr);
void ptyc_host_free(ptyc_backend *be, void *ptr); /* NULL-safe */
/* Queues dst[dst_offset ..] = src on the backend's copy queue, after the computation
 * queued so far (so it never overwrites data still in use), and returns at once. `src`
 * comes from ptyc_host_alloc and must not change until the copy is done. `group` (0 or 1)
 * names the copies for ptyc_buf_upload_wait. */
ptyc_status ptyc_buf_upload_async(ptyc_backend *be, int group, ptyc_buf dst, size_t dst_offset,
                                  const void *src, size_t nbytes);
/* Computation queued from now on waits for the copies queued so far in `group`. */
ptyc_status ptyc_buf_upload_wait(ptyc_backend *be, int group);

/* ---- FFT -------------------------------------------------------------------------------- */

/* Plans `count` unnormalised 2-D transforms of M x M complex images stored one after
 * the other. Plans are made once, before the iterations. */
ptyc_status ptyc_fft_plan(ptyc_backend *be, int m, int count, ptyc_fft **out);
/* In place on the first `count` images of `data`: forward (sign -1) if !inverse,
 * else the inverse WITHOUT the 1/M^2 factor. */
ptyc_status ptyc_fft_exec(ptyc_backend *be, ptyc_fft *plan, ptyc_buf data, int inverse);
/* The same on the first `count` images only, 0 <= count <= the planned count: for
 * batches whose size varies (a rank's part of a minibatch). Nothing is planned here:
 * the CPU loops over `count` images; CUDA runs `count` as chunks of power-of-two
 * sub-plans that ptyc_fft_plan made, sharing one work area. */
ptyc_status ptyc_fft_exec_count(ptyc_backend *be, ptyc_fft *plan, ptyc_buf data, int count,
                                int inverse);
/* psi[b][k] = F{probes[b][k] * O_b} (forward, unnormalised) for batch entries
 * [first, first + n): ptyc_op_exit_waves then ptyc_fft_exec_count on n K images, which is
 * what backends without a fused version run. CUDA's 256 x 256 transform on Hopper
 * multiplies as it loads, so the exit waves never pass through memory. `plan` is for M x M
 * and at least n K images; probes and psi must not overlap. */
ptyc_status ptyc_fft_exit_waves(ptyc_backend *be, ptyc_fft *plan, const ptyc_scan *scan,
                                int first, int n, ptyc_buf object, ptyc_buf probes,
                                ptyc_buf psi);
void ptyc_fft_free(ptyc_backend *be, ptyc_fft *plan);

/* ---- element-wise and reductions ----------------------------------------------------- */

/* x[i] *= s for the first `count` complex values. */
ptyc_status ptyc_op_scale(ptyc_backend *be, ptyc_buf x, size_t count, float s);
/* out[0] (double) = sum |x[i]|^2 over `count` complex values, or += if accumulate. */
ptyc_status ptyc_op_norm2(ptyc_backend *be, ptyc_buf x, size_t count, ptyc_buf out,
                          int accumulate);
/* out[0] (double) = sum x[i] over `count` doubles, or += if accumulate. */
ptyc_status ptyc_op_sum(ptyc_backend *be, ptyc_buf x, size_t count, ptyc_buf out,
                        int accumulate);
/* y[i] += mean(weights[0..n_weights)) * x[i] for `count` complex values; weights are
 * float on the backend, so no host round trip is needed. */
ptyc_status ptyc_op_axpy_mean(ptyc_backend *be, ptyc_buf weights, int n_weights, ptyc_buf x,
                              size_t count, ptyc_buf y);
/* Preconditioned update: target[i] = beta * target[i] + num[i] / (den[i % den_count] +
 * damping * max(den)), for `count` complex values (count % den_count == 0). */
ptyc_status ptyc_op_precondition(ptyc_backend *be, ptyc_buf num, size_t count, ptyc_buf den,
                                 size_t den_count, double damping, float beta,
                                 ptyc_buf target);

/* ---- forward model ------------------------------------------------------------------- */

/* out[b][k][u][v] = scale * spectrum[k][u][v] * exp(-2 pi i (fu(u) fy + fv(v) fx) / M)
 * with fu, fv = pt_freq_index. With spectrum = F{P} and scale = 1/M^2, an inverse FFT of
 * `out` gives every probe mode shifted by the sub-pixel fraction of each position. */
ptyc_status ptyc_op_shift_spectrum(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf spectrum, float scale, ptyc_buf out);
/* The adjoint, summed over the batch:
 * acc[k][u][v] += scale * sum_b spectra[b][k][u][v] * exp(+2 pi i (fu fy + fv fx) / M). */
ptyc_status ptyc_op_unshift_accumulate(ptyc_backend *be, const ptyc_scan *scan, int first,
                                       int n, ptyc_buf spectra, float scale, ptyc_buf acc);
/* The same shift by interpolation instead (src/backend/interp_math.h: a band-limited
 * filter of 12 taps per axis, zero outside the window): probes[b][k] = S_b probe[k], the
 * probe modes moved by the sub-pixel fraction (fy, fx) of entry b. If psi is not {NULL},
 * also psi[b][k] = probes[b][k] * O_b (the exit waves, in the same pass). */
ptyc_status ptyc_op_interp_shift(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                 ptyc_buf probe, ptyc_buf object, ptyc_buf probes,
                                 ptyc_buf psi);
/* Its adjoint, summed over the batch: acc[k] += sum_b S_b^T G[b][k], where
 * G[b][k] = conj(O_b) * chi[b][k] if object is given, else chi[b][k] itself;
 * den[y][x] += sum_b |O_b[y][x]|^2 (skipped if den is {NULL}; needs the object). */
ptyc_status ptyc_op_interp_unshift_accumulate(ptyc_backend *be, const ptyc_scan *scan,
                                              int first, int n, ptyc_buf object, ptyc_buf chi,
                                              ptyc_buf acc, ptyc_buf den);
/* psi[b][k] = probes[b][k] * O_b (element-wise). */
ptyc_status ptyc_op_exit_waves(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                               ptyc_buf object, ptyc_buf probes, ptyc_buf psi);

/* Fourier-space projection. In: waves[b][k] = Psi = F{psi}. Out: waves[b][k] =
 * (Psi' - Psi) / M^2, so that an inverse FFT gives the real-space exit-wave update chi.
 * d = patterns[j] (intensities, FFT layout), I = sum_k |Psi_k|^2, mask (float [M][M],
 * 1 valid / 0 invalid, or {NULL}) removes pixels: their update is 0 and they add no cost.
 *  gaussian: Psi' = Psi sqrt(d) / sqrt(I + eps); cost_b = sum (sqrt(I) - sqrt(d))^2
 *  poisson:  Psi' = Psi (1 + x_b r), r = d / (I + eps) - 1, x_b in [0, 1] minimising the
 *            negative log-likelihood sum I' - d log I' (3 Newton steps from 0.5);
 *            cost_b = sum I - d + d log(d / I) (the deviance, >= 0).
 * The element math (epsilons, Newton steps) is shared host/device code in
 * src/backend/fourier_math.h, so every backend computes the same function.
 * cost (double [n]) receives cost_b. */
ptyc_status ptyc_op_fourier_residual(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                     ptyc_noise_model noise_model, ptyc_buf patterns,
                                     ptyc_buf mask, ptyc_buf waves, ptyc_buf cost);

/* Object update numerator and illumination:
 * num[y0+y][x0+x] += w_b * sum_k conj(probes[b][k][y][x]) * chi[b][k][y][x]
 * den[y0+y][x0+x] += sum_k |probes[b][k][y][x]|^2          (skipped if den is {NULL})
 * w_b = weights[b] (float [n]) or 1 if weights is {NULL}. */
ptyc_status ptyc_op_object_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                    ptyc_buf probes, ptyc_buf chi, ptyc_buf weights,
                                    ptyc_buf num, ptyc_buf den);
/* Probe update terms per position: g[b][k] = conj(O_b) * chi[b][k];
 * den[y][x] += sum_b |O_b[y][x]|^2 (skipped if den is {NULL}). */
ptyc_status ptyc_op_probe_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf object, ptyc_buf chi, ptyc_buf g, ptyc_buf den);

/* LSQML per-position step sizes (Odstrcil et al. 2018, eq. 25-27). For each b, with
 * a = dO_b * probes[b][k], c = O_b * dprobe[k] (dprobe unshifted, see lsqml.c) summed over
 * k and pixels: A11 = sum|a|^2, A22 = sum|c|^2, A12 = sum Re(conj a c),
 * r1 = sum Re(conj a chi), r2 = sum Re(conj c chi). Solves
 *   [A11 + lam*s, A12; A12, A22 + lam*s] [aO; aP] = [r1; r2], s = (A11 + A22)/2,
 * lam = regularization; with only one of object/probe optimised, the 1x1 system.
 * Each step is clamped to [0, max_step]. alpha (float [2][n]) receives aO then aP. */
ptyc_status ptyc_op_lsqml_steps(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                ptyc_buf object, ptyc_buf dobject, ptyc_buf probes,
                                ptyc_buf dprobe, ptyc_buf chi, double regularization,
                                double max_step, int object_on, int probe_on, ptyc_buf alpha);

/* Orthogonalises the K probe modes (eigenvectors of their K x K Gram matrix), strongest
 * first; total power is kept. */
ptyc_status ptyc_op_orthogonalize_modes(ptyc_backend *be, ptyc_buf probe, int n_modes, int m);

/* ---- autodiff: costs, vector-Jacobian products, optimizers ----------------------------
 * Gradients are Wirtinger gradients: for a real cost C and a complex z, the gradient is
 * g = dC/d(conj z) = (dC/d Re z + i dC/d Im z) / 2 (so dC = 2 Re(conj(g) dz)); for a real
 * x it is dC/dx. The per-element math is shared host/device code in
 * src/backend/autodiff_math.h. */

/* Cost and its gradient. In: waves[b][k] = Psi (far field of every mode). Out:
 * waves[b][k] = dC/d(conj Psi) = l'(I) Psi, cost[b] (double [n]) = sum over pixels of
 * l(I, d), with I = sum_k |Psi_k|^2, d = patterns[j] and l the `loss` (ptyc_loss).
 * Masked pixels (mask float [M][M], 0 = invalid, or {NULL}) add no cost and get a zero
 * gradient. */
ptyc_status ptyc_op_loss_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                  ptyc_loss loss, ptyc_buf patterns, ptyc_buf mask,
                                  ptyc_buf waves, ptyc_buf cost);

/* VJP of psi[b][k] = probes[b][k] * O_b (ptyc_op_exit_waves). With grad_psi = dC/d(conj psi):
 *   grad_object[y0+y][x0+x] += sum_k conj(probes[b][k][y][x]) grad_psi[b][k][y][x]
 *   illumination[y0+y][x0+x] += sum_k |probes[b][k][y][x]|^2       (float [H][W])
 *   grad_probes[b][k] = conj(O_b) * grad_psi[b][k]                  (may BE `probes`)
 *   object_intensity[y][x] += sum_b |O_b[y][x]|^2                    (float [M][M])
 * Any of the four outputs may be {NULL} (not computed); grad_probes may be the same
 * buffer as probes (overwritten in place), no other output may overlap an input. */
ptyc_status ptyc_op_exit_waves_vjp(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf object, ptyc_buf probes, ptyc_buf grad_psi,
                                   ptyc_buf grad_object, ptyc_buf illumination,
                                   ptyc_buf grad_probes, ptyc_buf object_intensity);

/* Position part of the VJP of the sub-pixel shift (ptyc_op_shift_spectrum):
 * with S[b][k][u][v] = scale * spectrum[k][u][v] * exp(-2 pi i (fu fy_b + fv fx_b) / M) and
 * grad_spectra = dC/d(conj S), for each batch entry b (double [n][4]):
 *   out[b][0] = dC/dy_b = (4 pi / M) sum_k,u,v fu Im(conj(grad S) S)
 *   out[b][1] = dC/dx_b = (4 pi / M) sum_k,u,v fv Im(conj(grad S) S)
 *   out[b][2] = sum |dS/dy|^2 = sum (2 pi fu / M)^2 |S|^2,  out[b][3] the same in x
 * (dS/dy = -2 pi i fu / M S). The last two are the curvature scale of a Gauss-Newton
 * step; the spectrum part of the VJP is ptyc_op_unshift_accumulate. */
ptyc_status ptyc_op_shift_position_gradient(ptyc_backend *be, const ptyc_scan *scan, int first,
                                            int n, ptyc_buf spectrum, float scale,
                                            ptyc_buf grad_spectra, ptyc_buf out);

/* Position part of the VJP of the interpolated shift and exit waves (ptyc_op_interp_shift
 * with psi: psi[b][k] = (S_b probe[k]) O_b). With grad_psi = dC/d(conj psi) and D_y, D_x
 * the filter with the weights' derivative along one axis (dS_b/dfy, dS_b/dfx), for each
 * batch entry b (double [n][4]):
 *   out[b][0] = dC/dy_b = 2 Re sum_k,pixels conj(grad_psi[b][k]) O_b (D_y probe[k])
 *   out[b][1] = dC/dx_b, the same with D_x
 *   out[b][2] = sum_k,pixels |D_y probe[k]|^2 / M^2, out[b][3] the same with D_x.
 * The last two are ptyc_op_shift_position_gradient's curvature terms: that op sums over
 * spectra, which by Parseval is 1/M^2 of the sum over pixels, so a position step is
 * scaled alike for both shifts. The probe part of the VJP is
 * ptyc_op_interp_unshift_accumulate with the object, the object part
 * ptyc_op_exit_waves_vjp. */
ptyc_status ptyc_op_interp_position_gradient(ptyc_backend *be, const ptyc_scan *scan, int first,
                                             int n, ptyc_buf probe, ptyc_buf object,
                                             ptyc_buf grad_psi, ptyc_buf out);

/* One optimizer update (the host computes nothing per element). */
typedef struct ptyc_optim_params {
  ptyc_optimizer kind;  /* SGD, ADAM or RMSPROP */
  double step;          /* learning rate */
  double momentum;      /* SGD: 0 = none */
  int nesterov;         /* SGD */
  double beta1, beta2;  /* Adam: decays of the mean and mean square */
  double alpha;         /* RMSprop: decay of the mean square */
  double epsilon;       /* Adam, RMSprop */
  int t;                /* 1-based number of this update (Adam's bias correction; SGD's
                           momentum starts at the first gradient when t == 1) */
  double grad_scale;    /* the gradient is multiplied by this first */
  double den_mix;       /* with a den buffer: see ptyc_op_optimizer_step */
} ptyc_optim_params;

/* param[i] += update(g_i), for `count` complex values, with the normalised gradient
 *   g_i = grad_scale * grad[i] / ((1 - den_mix) den[i % den_count] + den_mix max(den))
 * (g_i = 0 where that denominator is 0; den {NULL}: g_i = grad_scale * grad[i]) and the
 * rule's state (c32 m[count] then float v[count]: 12 * count bytes, zero at the start).
 * Complex values share one mean square v = mean |g|^2. */
ptyc_status ptyc_op_optimizer_step(ptyc_backend *be, const ptyc_optim_params *p,
                                   ptyc_buf param, ptyc_buf grad, size_t count, ptyc_buf den,
                                   size_t den_count, ptyc_buf state);

/* The positions of batch entries b: j = order[first + b], axis a (0 = y, 1 = x):
 *   g = grad_scale * grad[b][a] / (grad[b][2 + a] * max(den))   (0 if that is not > 0;
 *       den {NULL}: max(den) = 1), i.e. a gradient from ptyc_op_shift_position_gradient
 *       over its curvature,
 *   positions[j][a] += update(g) with the state double [N][4] (m_y, m_x, v_y, v_x) of j,
 *   the move limited to PT_POSITION_MAX_MOVE_PX and the position clamped to
 *   [0, obj_h - M] x [0, obj_w - M] so that its patch stays inside the object. */
ptyc_status ptyc_op_position_step(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                  const ptyc_optim_params *p, ptyc_buf grad, ptyc_buf den,
                                  size_t den_count, ptyc_buf state);

/* Object regularisers R = l1_weight sum s(O) + tv_weight sum s(grad O), with the smoothed
 * magnitude s(z) = sqrt(|z|^2 + eps^2) and s(grad O) = sqrt(|Dy O|^2 + |Dx O|^2 + eps^2)
 * (forward differences, zero across the last row and column):
 * grad[i] += dR/d(conj O[i]) for the h x w object; cost[0] (double) += R. */
ptyc_status ptyc_op_object_regularize(ptyc_backend *be, ptyc_buf object, int h, int w,
                                      double l1_weight, double tv_weight, ptyc_buf grad,
                                      ptyc_buf cost);

#ifdef __cplusplus
}
#endif
#endif
