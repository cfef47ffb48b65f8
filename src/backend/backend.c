/* Public backend API: argument checks around the device kind's vtable, and the
 * allocation accounting (bytes in use, peak) shared by all kinds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "build_config.h"
#include "pt_try.h"

struct ptyc_backend {
  const pt_backend_vtable *vt;
  void *ctx;
  size_t bytes_in_use;
  size_t peak_bytes;
};

struct ptyc_fft {
  void *impl;
  int m, count;
};

#define SLOT(be, slot)                                                                     \
  do {                                                                                     \
    if ((be) == NULL)                                                                      \
      return ptyc_fail(PTYC_E_ARG, "%s: backend is NULL", __func__);                       \
    if ((be)->vt->slot == NULL)                                                            \
      return ptyc_fail(PTYC_E_UNSUPPORTED, "the %s backend has no %s op", (be)->vt->name,  \
                       #slot);                                                             \
  } while (0)

/* A buffer must exist and hold at least `need` bytes. */
static ptyc_status need_bytes(const char *op, const char *what, ptyc_buf buf, size_t need) {
  if (buf.ptr == NULL)
    return ptyc_fail(PTYC_E_ARG, "%s: %s buffer is missing", op, what);
  if (buf.nbytes < need)
    return ptyc_fail(PTYC_E_ARG, "%s: %s buffer holds %zu bytes, needs %zu", op, what,
                     buf.nbytes, need);
  return PTYC_OK;
}

/* Optional buffers may be {NULL}; when given they must be large enough. */
static ptyc_status need_optional(const char *op, const char *what, ptyc_buf buf, size_t need) {
  return buf.ptr == NULL ? PTYC_OK : need_bytes(op, what, buf, need);
}

static ptyc_status check_batch(const char *op, const ptyc_scan *scan, int first, int n) {
  if (scan == NULL || scan->m <= 0 || scan->n_modes <= 0 || scan->obj_h < scan->m ||
      scan->obj_w < scan->m)
    return ptyc_fail(PTYC_E_ARG, "%s: invalid scan geometry", op);
  if (first < 0 || n < 0 || first + n > scan->n_positions)
    return ptyc_fail(PTYC_E_ARG, "%s: batch [%d, %d) outside %d positions", op, first,
                     first + n, scan->n_positions);
  PT_TRY(need_bytes(op, "positions", scan->positions,
                    (size_t)scan->n_positions * 2 * sizeof(double)));
  PT_TRY(need_bytes(op, "order", scan->order, (size_t)scan->n_positions * sizeof(int32_t)));
  return PTYC_OK;
}

static size_t images_bytes(const ptyc_scan *scan, int n) {
  return (size_t)n * scan->n_modes * scan->m * scan->m * sizeof(ptyc_c32);
}
static size_t object_count(const ptyc_scan *scan) { return (size_t)scan->obj_h * scan->obj_w; }

/* ---- lifetime -------------------------------------------------------------------------- */

ptyc_status ptyc_backend_create(ptyc_device_kind kind, int device_index, int threads,
                                ptyc_backend **out) {
  if (out == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_backend_create: out is NULL");
  *out = NULL;
  ptyc_backend *be = calloc(1, sizeof *be);
  if (be == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating a backend");
  ptyc_status st;
  switch (kind) {
  case PTYC_DEVICE_CPU:
    st = pt_cpu_backend_create(threads, &be->vt, &be->ctx);
    break;
  case PTYC_DEVICE_CUDA:
#if PTYC_HAVE_CUDA
    st = pt_cuda_backend_create(device_index, &be->vt, &be->ctx);
#else
    st = ptyc_fail(PTYC_E_UNSUPPORTED,
                   "this ptyc was built without CUDA; rebuild with -DPTYC_CUDA=ON or use "
                   "reconstructor.device = \"cpu\"");
#endif
    break;
  default:
    st = ptyc_fail(PTYC_E_ARG, "ptyc_backend_create: resolve device \"auto\" first");
  }
  if (st != PTYC_OK) {
    free(be);
    return st;
  }
  *out = be;
  return PTYC_OK;
}

void ptyc_backend_free(ptyc_backend *be) {
  if (be == NULL) return;
  be->vt->destroy(be->ctx);
  free(be);
}

const char *ptyc_backend_name(const ptyc_backend *be) { return be ? be->vt->name : "none"; }

ptyc_status ptyc_backend_device_info(ptyc_backend *be, ptyc_device_info *info) {
  SLOT(be, device_info);
  memset(info, 0, sizeof *info);
  return be->vt->device_info(be->ctx, info);
}

size_t ptyc_backend_bytes_in_use(const ptyc_backend *be) { return be ? be->bytes_in_use : 0; }
size_t ptyc_backend_peak_bytes(const ptyc_backend *be) { return be ? be->peak_bytes : 0; }

ptyc_status ptyc_backend_sync(ptyc_backend *be) {
  SLOT(be, sync);
  return be->vt->sync(be->ctx);
}

ptyc_status ptyc_timer_start(ptyc_backend *be) {
  SLOT(be, timer_start);
  return be->vt->timer_start(be->ctx);
}

ptyc_status ptyc_timer_stop(ptyc_backend *be, double *ms) {
  SLOT(be, timer_stop);
  return be->vt->timer_stop(be->ctx, ms);
}

void *ptyc_backend_native_stream(ptyc_backend *be, int *device) {
  if (device) *device = -1;
  if (be == NULL || be->vt->native_stream == NULL) return NULL;
  return be->vt->native_stream(be->ctx, device);
}

int ptyc_cuda_usable(char *why, size_t why_size) {
#if PTYC_HAVE_CUDA
  return pt_cuda_usable(why, why_size);
#else
  if (why && why_size) snprintf(why, why_size, "this ptyc was built without CUDA");
  return 0;
#endif
}

int ptyc_cuda_device_count(void) {
#if PTYC_HAVE_CUDA
  return pt_cuda_device_count();
#else
  return 0;
#endif
}

ptyc_status ptyc_cuda_device_info(int index, ptyc_device_info *info) {
#if PTYC_HAVE_CUDA
  memset(info, 0, sizeof *info);
  return pt_cuda_device_info(index, info);
#else
  (void)index;
  (void)info;
  return ptyc_fail(PTYC_E_UNSUPPORTED, "this ptyc was built without CUDA");
#endif
}

/* ---- memory ---------------------------------------------------------------------------- */

ptyc_status ptyc_buf_alloc(ptyc_backend *be, size_t nbytes, ptyc_buf *out) {
  SLOT(be, alloc);
  out->ptr = NULL;
  out->nbytes = 0;
  if (nbytes == 0) return ptyc_fail(PTYC_E_ARG, "ptyc_buf_alloc: zero bytes requested");
  PT_TRY(be->vt->alloc(be->ctx, nbytes, &out->ptr));
  out->nbytes = nbytes;
  be->bytes_in_use += nbytes;
  if (be->bytes_in_use > be->peak_bytes) be->peak_bytes = be->bytes_in_use;
  return PTYC_OK;
}

void ptyc_buf_free(ptyc_backend *be, ptyc_buf *buf) {
  if (be == NULL || buf == NULL || buf->ptr == NULL) return;
  be->vt->free(be->ctx, buf->ptr);
  be->bytes_in_use -= buf->nbytes;
  buf->ptr = NULL;
  buf->nbytes = 0;
}

static ptyc_status check_range(const char *op, ptyc_buf buf, size_t offset, size_t nbytes) {
  if (buf.ptr == NULL) return ptyc_fail(PTYC_E_ARG, "%s: buffer is missing", op);
  if (offset > buf.nbytes || nbytes > buf.nbytes - offset)
    return ptyc_fail(PTYC_E_ARG, "%s: bytes [%zu, %zu) outside a buffer of %zu", op, offset,
                     offset + nbytes, buf.nbytes);
  return PTYC_OK;
}

ptyc_status ptyc_buf_upload(ptyc_backend *be, ptyc_buf dst, size_t dst_offset, const void *src,
                            size_t nbytes) {
  SLOT(be, upload);
  PT_TRY(check_range("ptyc_buf_upload", dst, dst_offset, nbytes));
  if (nbytes == 0) return PTYC_OK;
  return be->vt->upload(be->ctx, (char *)dst.ptr + dst_offset, src, nbytes);
}

ptyc_status ptyc_buf_download(ptyc_backend *be, void *dst, ptyc_buf src, size_t src_offset,
                              size_t nbytes) {
  SLOT(be, download);
  PT_TRY(check_range("ptyc_buf_download", src, src_offset, nbytes));
  if (nbytes == 0) return PTYC_OK;
  return be->vt->download(be->ctx, dst, (const char *)src.ptr + src_offset, nbytes);
}

ptyc_status ptyc_buf_zero(ptyc_backend *be, ptyc_buf dst, size_t offset, size_t nbytes) {
  SLOT(be, zero);
  PT_TRY(check_range("ptyc_buf_zero", dst, offset, nbytes));
  if (nbytes == 0) return PTYC_OK;
  return be->vt->zero(be->ctx, (char *)dst.ptr + offset, nbytes);
}

ptyc_status ptyc_buf_copy(ptyc_backend *be, ptyc_buf dst, size_t dst_offset, ptyc_buf src,
                          size_t src_offset, size_t nbytes) {
  SLOT(be, copy);
  PT_TRY(check_range("ptyc_buf_copy", dst, dst_offset, nbytes));
  PT_TRY(check_range("ptyc_buf_copy", src, src_offset, nbytes));
  if (nbytes == 0) return PTYC_OK;
  return be->vt->copy(be->ctx, (char *)dst.ptr + dst_offset,
                      (const char *)src.ptr + src_offset, nbytes);
}

/* ---- streaming from host memory ------------------------------------------------------------ */

ptyc_status ptyc_host_alloc(ptyc_backend *be, size_t nbytes, void **ptr) {
  SLOT(be, host_alloc);
  *ptr = NULL;
  if (nbytes == 0) return ptyc_fail(PTYC_E_ARG, "ptyc_host_alloc: zero bytes requested");
  return be->vt->host_alloc(be->ctx, nbytes, ptr);
}

void ptyc_host_free(ptyc_backend *be, void *ptr) {
  if (be == NULL || ptr == NULL) return;
  be->vt->host_free(be->ctx, ptr);
}

ptyc_status ptyc_buf_upload_async(ptyc_backend *be, int group, ptyc_buf dst, size_t dst_offset,
                                  const void *src, size_t nbytes) {
  SLOT(be, upload_async);
  if (group < 0 || group > 1) return ptyc_fail(PTYC_E_ARG, "%s: group must be 0 or 1", __func__);
  PT_TRY(check_range(__func__, dst, dst_offset, nbytes));
  if (nbytes == 0) return PTYC_OK;
  return be->vt->upload_async(be->ctx, group, (char *)dst.ptr + dst_offset, src, nbytes);
}

ptyc_status ptyc_buf_upload_wait(ptyc_backend *be, int group) {
  SLOT(be, upload_wait);
  if (group < 0 || group > 1) return ptyc_fail(PTYC_E_ARG, "%s: group must be 0 or 1", __func__);
  return be->vt->upload_wait(be->ctx, group);
}

/* ---- FFT --------------------------------------------------------------------------------- */

ptyc_status ptyc_fft_plan(ptyc_backend *be, int m, int count, ptyc_fft **out) {
  SLOT(be, fft_plan);
  *out = NULL;
  if (m <= 0 || count <= 0)
    return ptyc_fail(PTYC_E_ARG, "ptyc_fft_plan: invalid size %d x %d, count %d", m, m, count);
  ptyc_fft *plan = calloc(1, sizeof *plan);
  if (plan == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory planning an FFT");
  ptyc_status st = be->vt->fft_plan(be->ctx, m, count, &plan->impl);
  if (st != PTYC_OK) {
    free(plan);
    return st;
  }
  plan->m = m;
  plan->count = count;
  *out = plan;
  return PTYC_OK;
}

ptyc_status ptyc_fft_exec(ptyc_backend *be, ptyc_fft *plan, ptyc_buf data, int inverse) {
  SLOT(be, fft_exec);
  if (plan == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_fft_exec: plan is NULL");
  PT_TRY(need_bytes("ptyc_fft_exec", "data", data,
                    (size_t)plan->count * plan->m * plan->m * sizeof(ptyc_c32)));
  return be->vt->fft_exec(be->ctx, plan->impl, data.ptr, inverse);
}

ptyc_status ptyc_fft_exec_count(ptyc_backend *be, ptyc_fft *plan, ptyc_buf data, int count,
                                int inverse) {
  SLOT(be, fft_exec);
  if (plan == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_fft_exec_count: plan is NULL");
  if (count < 0 || count > plan->count)
    return ptyc_fail(PTYC_E_ARG, "ptyc_fft_exec_count: %d transforms asked of a plan for %d",
                     count, plan->count);
  if (count == 0) return PTYC_OK;
  PT_TRY(need_bytes("ptyc_fft_exec_count", "data", data,
                    (size_t)count * plan->m * plan->m * sizeof(ptyc_c32)));
  if (count == plan->count) return be->vt->fft_exec(be->ctx, plan->impl, data.ptr, inverse);
  SLOT(be, fft_exec_count);
  return be->vt->fft_exec_count(be->ctx, plan->impl, data.ptr, count, inverse);
}

ptyc_status ptyc_fft_exit_waves(ptyc_backend *be, ptyc_fft *plan, const ptyc_scan *scan,
                                int first, int n, ptyc_buf object, ptyc_buf probes,
                                ptyc_buf psi) {
  if (plan == NULL) return ptyc_fail(PTYC_E_ARG, "%s: plan is NULL", __func__);
  PT_TRY(check_batch(__func__, scan, first, n));
  if (plan->m != scan->m || (long long)n * scan->n_modes > plan->count)
    return ptyc_fail(PTYC_E_ARG, "%s: %d images of %d x %d asked of a plan for %d of %d x %d",
                     __func__, n * scan->n_modes, scan->m, scan->m, plan->count, plan->m, plan->m);
  if (be->vt->fft_exit_waves == NULL) {
    PT_TRY(ptyc_op_exit_waves(be, scan, first, n, object, probes, psi));
    return ptyc_fft_exec_count(be, plan, psi, n * scan->n_modes, 0);
  }
  PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "psi", psi, images_bytes(scan, n)));
  if (n == 0) return PTYC_OK;
  return be->vt->fft_exit_waves(be->ctx, plan->impl, scan, first, n, object.ptr, probes.ptr,
                                psi.ptr);
}

void ptyc_fft_free(ptyc_backend *be, ptyc_fft *plan) {
  if (be == NULL || plan == NULL) return;
  be->vt->fft_free(be->ctx, plan->impl);
  free(plan);
}

/* ---- element-wise and reductions ------------------------------------------------------ */

ptyc_status ptyc_op_scale(ptyc_backend *be, ptyc_buf x, size_t count, float s) {
  SLOT(be, scale);
  PT_TRY(need_bytes(__func__, "x", x, count * sizeof(ptyc_c32)));
  return be->vt->scale(be->ctx, x.ptr, count, s);
}

ptyc_status ptyc_op_norm2(ptyc_backend *be, ptyc_buf x, size_t count, ptyc_buf out,
                          int accumulate) {
  SLOT(be, norm2);
  PT_TRY(need_bytes(__func__, "x", x, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "out", out, sizeof(double)));
  return be->vt->norm2(be->ctx, x.ptr, count, out.ptr, accumulate);
}

ptyc_status ptyc_op_sum(ptyc_backend *be, ptyc_buf x, size_t count, ptyc_buf out,
                        int accumulate) {
  SLOT(be, sum);
  PT_TRY(need_bytes(__func__, "x", x, count * sizeof(double)));
  PT_TRY(need_bytes(__func__, "out", out, sizeof(double)));
  return be->vt->sum(be->ctx, x.ptr, count, out.ptr, accumulate);
}

ptyc_status ptyc_op_axpy_mean(ptyc_backend *be, ptyc_buf weights, int n_weights, ptyc_buf x,
                              size_t count, ptyc_buf y) {
  SLOT(be, axpy_mean);
  if (n_weights <= 0) return ptyc_fail(PTYC_E_ARG, "%s: no weights", __func__);
  PT_TRY(need_bytes(__func__, "weights", weights, (size_t)n_weights * sizeof(float)));
  PT_TRY(need_bytes(__func__, "x", x, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "y", y, count * sizeof(ptyc_c32)));
  return be->vt->axpy_mean(be->ctx, weights.ptr, n_weights, x.ptr, count, y.ptr);
}

ptyc_status ptyc_op_precondition(ptyc_backend *be, ptyc_buf num, size_t count, ptyc_buf den,
                                 size_t den_count, double damping, float beta,
                                 ptyc_buf target) {
  SLOT(be, precondition);
  if (den_count == 0 || count % den_count != 0)
    return ptyc_fail(PTYC_E_ARG, "%s: count %zu is not a multiple of den_count %zu", __func__,
                     count, den_count);
  PT_TRY(need_bytes(__func__, "num", num, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "den", den, den_count * sizeof(float)));
  PT_TRY(need_bytes(__func__, "target", target, count * sizeof(ptyc_c32)));
  return be->vt->precondition(be->ctx, num.ptr, count, den.ptr, den_count, damping, beta,
                              target.ptr);
}

/* ---- forward model ---------------------------------------------------------------------- */

ptyc_status ptyc_op_shift_spectrum(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf spectrum, float scale, ptyc_buf out) {
  SLOT(be, shift_spectrum);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "spectrum", spectrum, images_bytes(scan, 1)));
  PT_TRY(need_bytes(__func__, "out", out, images_bytes(scan, n)));
  return be->vt->shift_spectrum(be->ctx, scan, first, n, spectrum.ptr, scale, out.ptr);
}

ptyc_status ptyc_op_unshift_accumulate(ptyc_backend *be, const ptyc_scan *scan, int first,
                                       int n, ptyc_buf spectra, float scale, ptyc_buf acc) {
  SLOT(be, unshift_accumulate);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "spectra", spectra, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "acc", acc, images_bytes(scan, 1)));
  return be->vt->unshift_accumulate(be->ctx, scan, first, n, spectra.ptr, scale, acc.ptr);
}

ptyc_status ptyc_op_exit_waves(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                               ptyc_buf object, ptyc_buf probes, ptyc_buf psi) {
  SLOT(be, exit_waves);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "psi", psi, images_bytes(scan, n)));
  return be->vt->exit_waves(be->ctx, scan, first, n, object.ptr, probes.ptr, psi.ptr);
}

ptyc_status ptyc_op_interp_shift(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                 ptyc_buf probe, ptyc_buf object, ptyc_buf probes,
                                 ptyc_buf psi) {
  SLOT(be, interp_shift);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "probe", probe, images_bytes(scan, 1)));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  if (psi.ptr != NULL) {
    PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
    PT_TRY(need_bytes(__func__, "psi", psi, images_bytes(scan, n)));
  }
  return be->vt->interp_shift(be->ctx, scan, first, n, probe.ptr, object.ptr, probes.ptr,
                              psi.ptr);
}

ptyc_status ptyc_op_interp_unshift_accumulate(ptyc_backend *be, const ptyc_scan *scan,
                                              int first, int n, ptyc_buf object, ptyc_buf chi,
                                              ptyc_buf acc, ptyc_buf den) {
  SLOT(be, interp_unshift_accumulate);
  PT_TRY(check_batch(__func__, scan, first, n));
  if (den.ptr != NULL && object.ptr == NULL)
    return ptyc_fail(PTYC_E_ARG, "%s: den needs the object", __func__);
  PT_TRY(need_optional(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "chi", chi, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "acc", acc, images_bytes(scan, 1)));
  PT_TRY(need_optional(__func__, "den", den, (size_t)scan->m * scan->m * sizeof(float)));
  return be->vt->interp_unshift_accumulate(be->ctx, scan, first, n, object.ptr, chi.ptr,
                                           acc.ptr, den.ptr);
}

ptyc_status ptyc_op_fourier_residual(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                     ptyc_noise_model noise_model, ptyc_buf patterns,
                                     ptyc_buf mask, ptyc_buf waves, ptyc_buf cost) {
  SLOT(be, fourier_residual);
  PT_TRY(check_batch(__func__, scan, first, n));
  size_t pixels = (size_t)scan->m * scan->m;
  PT_TRY(need_bytes(__func__, "patterns", patterns,
                    (size_t)scan->n_positions * pixels * sizeof(float)));
  PT_TRY(need_optional(__func__, "mask", mask, pixels * sizeof(float)));
  PT_TRY(need_bytes(__func__, "waves", waves, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "cost", cost, (size_t)n * sizeof(double)));
  return be->vt->fourier_residual(be->ctx, scan, first, n, noise_model, patterns.ptr, mask.ptr,
                                  waves.ptr, cost.ptr);
}

ptyc_status ptyc_op_object_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                    ptyc_buf probes, ptyc_buf chi, ptyc_buf weights,
                                    ptyc_buf num, ptyc_buf den) {
  SLOT(be, object_gradient);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "chi", chi, images_bytes(scan, n)));
  PT_TRY(need_optional(__func__, "weights", weights, (size_t)n * sizeof(float)));
  PT_TRY(need_bytes(__func__, "num", num, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_optional(__func__, "den", den, object_count(scan) * sizeof(float)));
  return be->vt->object_gradient(be->ctx, scan, first, n, probes.ptr, chi.ptr, weights.ptr,
                                 num.ptr, den.ptr);
}

ptyc_status ptyc_op_probe_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf object, ptyc_buf chi, ptyc_buf g, ptyc_buf den) {
  SLOT(be, probe_gradient);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "chi", chi, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "g", g, images_bytes(scan, n)));
  PT_TRY(need_optional(__func__, "den", den, (size_t)scan->m * scan->m * sizeof(float)));
  return be->vt->probe_gradient(be->ctx, scan, first, n, object.ptr, chi.ptr, g.ptr, den.ptr);
}

ptyc_status ptyc_op_lsqml_steps(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                ptyc_buf object, ptyc_buf dobject, ptyc_buf probes,
                                ptyc_buf dprobe, ptyc_buf chi, double regularization,
                                double max_step, int object_on, int probe_on, ptyc_buf alpha) {
  SLOT(be, lsqml_steps);
  PT_TRY(check_batch(__func__, scan, first, n));
  size_t obj_bytes = object_count(scan) * sizeof(ptyc_c32);
  PT_TRY(need_bytes(__func__, "object", object, obj_bytes));
  PT_TRY(need_bytes(__func__, "dobject", dobject, obj_bytes));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "dprobe", dprobe, images_bytes(scan, 1)));
  PT_TRY(need_bytes(__func__, "chi", chi, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "alpha", alpha, 2 * (size_t)n * sizeof(float)));
  if (regularization < 0 || max_step <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: regularization must be >= 0 and max_step > 0", __func__);
  return be->vt->lsqml_steps(be->ctx, scan, first, n, object.ptr, dobject.ptr, probes.ptr,
                             dprobe.ptr, chi.ptr, regularization, max_step, object_on,
                             probe_on, alpha.ptr);
}

ptyc_status ptyc_op_orthogonalize_modes(ptyc_backend *be, ptyc_buf probe, int n_modes, int m) {
  SLOT(be, orthogonalize_modes);
  if (n_modes < 1 || n_modes > 16 || m <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: %d modes of %d x %d (1..16 modes)", __func__, n_modes, m,
                     m);
  PT_TRY(need_bytes(__func__, "probe", probe, (size_t)n_modes * m * m * sizeof(ptyc_c32)));
  return be->vt->orthogonalize_modes(be->ctx, probe.ptr, n_modes, m);
}

/* ---- autodiff ----------------------------------------------------------------------------- */

ptyc_status ptyc_op_loss_gradient(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                  ptyc_loss loss, ptyc_buf patterns, ptyc_buf mask,
                                  ptyc_buf waves, ptyc_buf cost) {
  SLOT(be, loss_gradient);
  PT_TRY(check_batch(__func__, scan, first, n));
  if (loss != PTYC_LOSS_AMPLITUDE && loss != PTYC_LOSS_INTENSITY && loss != PTYC_LOSS_POISSON)
    return ptyc_fail(PTYC_E_ARG, "%s: unknown loss %d", __func__, (int)loss);
  size_t pixels = (size_t)scan->m * scan->m;
  PT_TRY(need_bytes(__func__, "patterns", patterns,
                    (size_t)scan->n_positions * pixels * sizeof(float)));
  PT_TRY(need_optional(__func__, "mask", mask, pixels * sizeof(float)));
  PT_TRY(need_bytes(__func__, "waves", waves, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "cost", cost, (size_t)n * sizeof(double)));
  return be->vt->loss_gradient(be->ctx, scan, first, n, loss, patterns.ptr, mask.ptr, waves.ptr,
                               cost.ptr);
}

ptyc_status ptyc_op_exit_waves_vjp(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                   ptyc_buf object, ptyc_buf probes, ptyc_buf grad_psi,
                                   ptyc_buf grad_object, ptyc_buf illumination,
                                   ptyc_buf grad_probes, ptyc_buf object_intensity) {
  SLOT(be, exit_waves_vjp);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "probes", probes, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "grad_psi", grad_psi, images_bytes(scan, n)));
  PT_TRY(need_optional(__func__, "grad_object", grad_object,
                       object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_optional(__func__, "illumination", illumination,
                       object_count(scan) * sizeof(float)));
  PT_TRY(need_optional(__func__, "grad_probes", grad_probes, images_bytes(scan, n)));
  PT_TRY(need_optional(__func__, "object_intensity", object_intensity,
                       (size_t)scan->m * scan->m * sizeof(float)));
  if (grad_probes.ptr != NULL && grad_probes.ptr == grad_psi.ptr)
    return ptyc_fail(PTYC_E_ARG, "%s: grad_probes may be probes, not grad_psi", __func__);
  return be->vt->exit_waves_vjp(be->ctx, scan, first, n, object.ptr, probes.ptr, grad_psi.ptr,
                                grad_object.ptr, illumination.ptr, grad_probes.ptr,
                                object_intensity.ptr);
}

ptyc_status ptyc_op_shift_position_gradient(ptyc_backend *be, const ptyc_scan *scan, int first,
                                            int n, ptyc_buf spectrum, float scale,
                                            ptyc_buf grad_spectra, ptyc_buf out) {
  SLOT(be, shift_position_gradient);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "spectrum", spectrum, images_bytes(scan, 1)));
  PT_TRY(need_bytes(__func__, "grad_spectra", grad_spectra, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "out", out, (size_t)n * 4 * sizeof(double)));
  return be->vt->shift_position_gradient(be->ctx, scan, first, n, spectrum.ptr, scale,
                                         grad_spectra.ptr, out.ptr);
}

ptyc_status ptyc_op_interp_position_gradient(ptyc_backend *be, const ptyc_scan *scan, int first,
                                             int n, ptyc_buf probe, ptyc_buf object,
                                             ptyc_buf grad_psi, ptyc_buf out) {
  SLOT(be, interp_position_gradient);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(need_bytes(__func__, "probe", probe, images_bytes(scan, 1)));
  PT_TRY(need_bytes(__func__, "object", object, object_count(scan) * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "grad_psi", grad_psi, images_bytes(scan, n)));
  PT_TRY(need_bytes(__func__, "out", out, (size_t)n * 4 * sizeof(double)));
  return be->vt->interp_position_gradient(be->ctx, scan, first, n, probe.ptr, object.ptr,
                                          grad_psi.ptr, out.ptr);
}

/* The hyper-parameters of an update are within their ranges. */
static ptyc_status check_optim(const char *op, const ptyc_optim_params *p) {
  if (p == NULL) return ptyc_fail(PTYC_E_ARG, "%s: no optimizer parameters", op);
  if (p->kind != PTYC_OPTIMIZER_SGD && p->kind != PTYC_OPTIMIZER_ADAM &&
      p->kind != PTYC_OPTIMIZER_RMSPROP)
    return ptyc_fail(PTYC_E_ARG, "%s: optimizer %d is not sgd, adam or rmsprop (resolve "
                                 "\"default\" first)", op, (int)p->kind);
  if (!(p->step >= 0) || !(p->momentum >= 0 && p->momentum < 1) ||
      !(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) ||
      !(p->alpha >= 0 && p->alpha < 1) || !(p->epsilon > 0) || p->t < 1 ||
      !(p->den_mix >= 0 && p->den_mix <= 1) || !isfinite(p->grad_scale))
    return ptyc_fail(PTYC_E_ARG, "%s: optimizer parameters out of range (step %g, momentum "
                                 "%g, betas %g %g, alpha %g, epsilon %g, t %d, mix %g)",
                     op, p->step, p->momentum, p->beta1, p->beta2, p->alpha, p->epsilon, p->t,
                     p->den_mix);
  return PTYC_OK;
}

ptyc_status ptyc_op_optimizer_step(ptyc_backend *be, const ptyc_optim_params *p,
                                   ptyc_buf param, ptyc_buf grad, size_t count, ptyc_buf den,
                                   size_t den_count, ptyc_buf state) {
  SLOT(be, optimizer_step);
  PT_TRY(check_optim(__func__, p));
  PT_TRY(need_bytes(__func__, "param", param, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "grad", grad, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "state", state, count * (sizeof(ptyc_c32) + sizeof(float))));
  if (den.ptr != NULL) {
    if (den_count == 0 || count % den_count != 0)
      return ptyc_fail(PTYC_E_ARG, "%s: count %zu is not a multiple of den_count %zu",
                       __func__, count, den_count);
    PT_TRY(need_bytes(__func__, "den", den, den_count * sizeof(float)));
  }
  return be->vt->optimizer_step(be->ctx, p, param.ptr, grad.ptr, count, den.ptr,
                                den.ptr ? den_count : 0, state.ptr);
}

ptyc_status ptyc_op_position_step(ptyc_backend *be, const ptyc_scan *scan, int first, int n,
                                  const ptyc_optim_params *p, ptyc_buf grad, ptyc_buf den,
                                  size_t den_count, ptyc_buf state) {
  SLOT(be, position_step);
  PT_TRY(check_batch(__func__, scan, first, n));
  PT_TRY(check_optim(__func__, p));
  PT_TRY(need_bytes(__func__, "grad", grad, (size_t)n * 4 * sizeof(double)));
  PT_TRY(need_bytes(__func__, "state", state, (size_t)scan->n_positions * 4 * sizeof(double)));
  if (den.ptr != NULL) {
    if (den_count == 0) return ptyc_fail(PTYC_E_ARG, "%s: den_count is 0", __func__);
    PT_TRY(need_bytes(__func__, "den", den, den_count * sizeof(float)));
  }
  return be->vt->position_step(be->ctx, scan, first, n, p, grad.ptr, den.ptr,
                               den.ptr ? den_count : 0, state.ptr);
}

ptyc_status ptyc_op_object_regularize(ptyc_backend *be, ptyc_buf object, int h, int w,
                                      double l1_weight, double tv_weight, ptyc_buf grad,
                                      ptyc_buf cost) {
  SLOT(be, object_regularize);
  if (h <= 0 || w <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: invalid object size %d x %d", __func__, h, w);
  if (!(l1_weight >= 0) || !(tv_weight >= 0))
    return ptyc_fail(PTYC_E_ARG, "%s: weights must be >= 0 (%g, %g)", __func__, l1_weight,
                     tv_weight);
  size_t count = (size_t)h * w;
  PT_TRY(need_bytes(__func__, "object", object, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "grad", grad, count * sizeof(ptyc_c32)));
  PT_TRY(need_bytes(__func__, "cost", cost, sizeof(double)));
  if (grad.ptr == object.ptr)
    return ptyc_fail(PTYC_E_ARG, "%s: grad must not be the object", __func__);
  return be->vt->object_regularize(be->ctx, object.ptr, h, w, l1_weight, tv_weight, grad.ptr,
                                   cost.ptr);
}
