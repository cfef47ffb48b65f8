/* The CUDA backend, host side: device queries, lifetime, memory and cuFFT plans.
 * The ops are in cuda_ops.c, the kernels in *.cu.
 *
 * Everything this backend does is queued on its one stream, in order; only download
 * and sync wait for it. Every entry point first makes the backend's device current, so
 * several backends (on several devices) can live in one thread. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_autodiff_ops.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_kernels.h"
#include "pt_try.h"

PT_STATIC_ASSERT(sizeof(cufftComplex) == sizeof(ptyc_c32), "ptyc_c32 must match cufftComplex");

/* A plan of `count` transforms, and for ptyc_fft_exec_count the sub-plans of 1, 2, 4, ...
 * transforms (every power of two below `count`): any smaller count runs as at most
 * log2(count) + 1 chunks, with nothing planned in the loop. All plans share one work
 * area (cufftSetAutoAllocation off), the size of the largest one's, so the sub-plans
 * add no work memory. */
#define CUDA_FFT_MAX_CHUNKS 31

/* On Hopper and later, 256 x 256 transforms run as our one-pass kernel
 * (kernels_fft256.cu: 0.16 vs cuFFT's 0.30 ms for 384 images on the H100) and no cuFFT
 * plan is made. */
typedef struct cuda_fft {
  int fft256;                              /* our kernel does every transform */
  cufftHandle handle;                      /* all `count` transforms */
  int have_handle;                         /* `handle` was made (free must destroy it) */
  int m, count;
  int n_chunks;                            /* chunk[i] does 2^i transforms */
  cufftHandle chunk[CUDA_FFT_MAX_CHUNKS];
  void *work;                              /* device work area shared by all plans */
} cuda_fft;

/* ---- errors ---------------------------------------------------------------------------- */

/* The path from "src/" on, which is what a reader of the message needs. */
static const char *short_path(const char *file) {
  const char *src = strstr(file, "src/");
  return src ? src : file;
}

static int current_device(void) {
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) device = -1;
  return device;
}

ptyc_status pt_cuda_error(cudaError_t err, const char *what, const char *file, int line) {
  int device = current_device();
  (void)cudaGetLastError(); /* handled here: keep it from resurfacing at the next check */
  return ptyc_fail(PTYC_E_DEVICE, "%s: %s (%s) at %s:%d (device %d)", what,
                   cudaGetErrorString(err), cudaGetErrorName(err), short_path(file), line,
                   device);
}

static const char *cufft_result_text(cufftResult err) {
  switch (err) {
  case CUFFT_SUCCESS: return "success";
  case CUFFT_INVALID_PLAN: return "invalid plan";
  case CUFFT_ALLOC_FAILED: return "allocation failed (out of GPU memory?)";
  case CUFFT_INVALID_TYPE: return "invalid type";
  case CUFFT_INVALID_VALUE: return "invalid value";
  case CUFFT_INTERNAL_ERROR: return "internal error";
  case CUFFT_EXEC_FAILED: return "execution failed";
  case CUFFT_SETUP_FAILED: return "setup failed (is the driver new enough?)";
  case CUFFT_INVALID_SIZE: return "invalid size";
  case CUFFT_UNALIGNED_DATA: return "unaligned data";
  case CUFFT_INVALID_DEVICE: return "invalid device";
  case CUFFT_NO_WORKSPACE: return "no workspace";
  case CUFFT_NOT_IMPLEMENTED: return "not implemented";
  case CUFFT_NOT_SUPPORTED: return "not supported";
  default: return "unknown cuFFT error";
  }
}

ptyc_status pt_cufft_error(cufftResult err, const char *what, const char *file, int line) {
  int device = current_device();
  (void)cudaGetLastError();
  return ptyc_fail(PTYC_E_DEVICE, "%s: cuFFT error %d, %s, at %s:%d (device %d)", what,
                   (int)err, cufft_result_text(err), short_path(file), line, device);
}

/* ---- devices ---------------------------------------------------------------------------- */

static void say(char *why, size_t why_size, const char *text) {
  if (why && why_size) snprintf(why, why_size, "%s", text);
}

int pt_cuda_usable(char *why, size_t why_size) {
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  if (visible && visible[0] == '\0') {
    say(why, why_size, "CUDA_VISIBLE_DEVICES is set but empty, so no GPU is visible");
    return 0;
  }
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaGetLastError(); /* a failed query must not surface as a later kernel error */
  if (err == cudaErrorInsufficientDriver) {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    (void)cudaGetLastError();
    if (driver == 0) { /* the runtime found no libcuda at all */
      say(why, why_size, "no NVIDIA driver is installed (libcuda.so not found)");
      return 0;
    }
    if (why && why_size)
      snprintf(why, why_size,
               "the NVIDIA driver is too old for this build (driver supports CUDA %d.%d, "
               "ptyc uses CUDA %d.%d): update the driver",
               driver / 1000, (driver % 1000) / 10, runtime / 1000, (runtime % 1000) / 10);
    return 0;
  }
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    say(why, why_size, "no CUDA device found (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    return 0;
  }
  if (err != cudaSuccess) {
    if (why && why_size)
      snprintf(why, why_size, "CUDA could not start: %s (%s)", cudaGetErrorString(err),
               cudaGetErrorName(err));
    return 0;
  }
  say(why, why_size, "");
  return 1;
}

int pt_cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    count = 0;
  }
  return count;
}

static ptyc_status check_device_index(int index) {
  int count = pt_cuda_device_count();
  if (index < 0 || index >= count)
    return ptyc_fail(PTYC_E_ARG,
                     "CUDA device %d requested but %d visible: check CUDA_VISIBLE_DEVICES "
                     "and the number of ranks per node",
                     index, count);
  return PTYC_OK;
}

ptyc_status pt_cuda_device_info(int index, ptyc_device_info *info) {
  PT_TRY(check_device_index(index));
  struct cudaDeviceProp prop;
  PT_CUDA(cudaGetDeviceProperties(&prop, index));
  const char *nul = memchr(prop.name, '\0', sizeof prop.name); /* ours may be shorter */
  size_t len = nul ? (size_t)(nul - prop.name) : sizeof prop.name;
  if (len >= sizeof info->name) len = sizeof info->name - 1;
  memcpy(info->name, prop.name, len);
  info->name[len] = '\0';
  info->compute_major = prop.major;
  info->compute_minor = prop.minor;
  info->threads = 0;
  /* cudaMemGetInfo reports the current device: switch to `index`, then back. */
  int previous = 0;
  PT_CUDA(cudaGetDevice(&previous));
  PT_CUDA(cudaSetDevice(index));
  size_t free_bytes = 0, total_bytes = 0;
  cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
  PT_CUDA(cudaSetDevice(previous));
  PT_CUDA(err);
  info->memory_total = total_bytes;
  info->memory_free = free_bytes;
  return PTYC_OK;
}

/* ---- helpers of the op files -------------------------------------------------------------- */

pt_cuda_batch pt_cuda_make_batch(const ptyc_scan *scan, int first, int n) {
  pt_cuda_batch batch;
  batch.positions = scan->positions.ptr;
  batch.order = scan->order.ptr;
  batch.first = first;
  batch.n = n;
  batch.m = scan->m;
  batch.n_modes = scan->n_modes;
  batch.obj_w = scan->obj_w;
  return batch;
}

int pt_cuda_entries_per_launch(size_t nbytes) {
  size_t entries = PT_CUDA_SCRATCH_NBYTES / nbytes;
  return entries > INT_MAX ? INT_MAX : (int)entries;
}

ptyc_status pt_cuda_scratch_too_small(const char *op, size_t nbytes) {
  return ptyc_fail(PTYC_E_UNSUPPORTED,
                   "%s needs %zu bytes of scratch per position, more than the CUDA backend's "
                   "%zu: the probe window is too large for this build",
                   op, nbytes, (size_t)PT_CUDA_SCRATCH_NBYTES);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void cuda_destroy(void *vctx) {
  pt_cuda_ctx *ctx = vctx;
  if (ctx == NULL) return;
  /* Best effort: a failed teardown has nobody left to report to. */
  if (cudaSetDevice(ctx->device) == cudaSuccess) {
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    if (ctx->copy_stream) cudaStreamSynchronize(ctx->copy_stream);
    if (ctx->copy_fence) cudaEventDestroy(ctx->copy_fence);
    for (int g = 0; g < 2; g++)
      if (ctx->copy_done[g]) cudaEventDestroy(ctx->copy_done[g]);
    if (ctx->copy_stream) cudaStreamDestroy(ctx->copy_stream);
    if (ctx->staging_free) cudaEventDestroy(ctx->staging_free);
    if (ctx->timer_begin) cudaEventDestroy(ctx->timer_begin);
    if (ctx->timer_end) cudaEventDestroy(ctx->timer_end);
    if (ctx->staging) cudaFreeHost(ctx->staging);
    if (ctx->scratch) cudaFree(ctx->scratch);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
  }
  (void)cudaGetLastError();
  free(ctx);
}

static ptyc_status cuda_device_info(void *vctx, ptyc_device_info *info) {
  pt_cuda_ctx *ctx = vctx;
  return pt_cuda_device_info(ctx->device, info);
}

static ptyc_status cuda_sync(void *vctx) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaStreamSynchronize(ctx->stream));
  return PTYC_OK;
}

/* The stopwatch: events on the stream, so it times the device work queued between
 * start and stop, not the host's queueing. */
static ptyc_status cuda_timer_start(void *vctx) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaEventRecord(ctx->timer_begin, ctx->stream));
  ctx->timer_started = 1;
  return PTYC_OK;
}

static ptyc_status cuda_timer_stop(void *vctx, double *ms) {
  pt_cuda_ctx *ctx = vctx;
  if (!ctx->timer_started)
    return ptyc_fail(PTYC_E_ARG, "ptyc_timer_stop: the timer was not started");
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaEventRecord(ctx->timer_end, ctx->stream));
  PT_CUDA(cudaEventSynchronize(ctx->timer_end));
  float elapsed = 0.f;
  PT_CUDA(cudaEventElapsedTime(&elapsed, ctx->timer_begin, ctx->timer_end));
  ctx->timer_started = 0;
  *ms = elapsed;
  return PTYC_OK;
}

/* The build's kernels must exist for this device's architecture; say how to fix it. */
static ptyc_status check_kernel_image(int device) {
  cudaError_t err = pt_cuda_check_kernel_image();
  if (err == cudaSuccess) return PTYC_OK;
  (void)cudaGetLastError();
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction ||
      err == cudaErrorUnsupportedPtxVersion)
    return ptyc_fail(PTYC_E_DEVICE,
                     "this ptyc has no GPU code for device %d (compute capability %d.%d): "
                     "rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d (%s)",
                     device, major, minor, major, minor, cudaGetErrorString(err));
  return pt_cuda_error(err, "pt_cuda_check_kernel_image()", __FILE__, __LINE__);
}

/* ---- memory ------------------------------------------------------------------------------ */

static ptyc_status cuda_alloc(void *vctx, size_t nbytes, void **ptr) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  cudaError_t err = cudaMalloc(ptr, nbytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    *ptr = NULL;
    return ptyc_fail(PTYC_E_NOMEM,
                     "out of GPU memory on device %d: %.1f MiB requested, %.1f MiB free of "
                     "%.1f MiB: lower reconstructor.batch_size or memory_fraction",
                     ctx->device, nbytes / 1048576.0, free_bytes / 1048576.0,
                     total_bytes / 1048576.0);
  }
  PT_CUDA(err);
  return PTYC_OK;
}

static void cuda_free(void *vctx, void *ptr) {
  pt_cuda_ctx *ctx = vctx;
  if (ptr == NULL) return;
  /* cudaFree waits for the device; the buffer may still be in use by queued work. */
  if (cudaSetDevice(ctx->device) != cudaSuccess || cudaFree(ptr) != cudaSuccess)
    (void)cudaGetLastError();
}

/* Small uploads (the per-iteration order array) go through the pinned staging buffer
 * and return at once: we only wait for the previous copy out of the staging buffer,
 * queued long ago. Large uploads (at init) copy from pageable memory and wait, so that
 * the caller may free `src` as soon as we return. */
static ptyc_status cuda_upload(void *vctx, void *dst, const void *src, size_t nbytes) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (nbytes <= PT_CUDA_STAGING_NBYTES) {
    PT_CUDA(cudaEventSynchronize(ctx->staging_free));
    memcpy(ctx->staging, src, nbytes);
    PT_CUDA(cudaMemcpyAsync(dst, ctx->staging, nbytes, cudaMemcpyHostToDevice, ctx->stream));
    PT_CUDA(cudaEventRecord(ctx->staging_free, ctx->stream));
    return PTYC_OK;
  }
  PT_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, ctx->stream));
  PT_CUDA(cudaStreamSynchronize(ctx->stream));
  return PTYC_OK;
}

static ptyc_status cuda_download(void *vctx, void *dst, const void *src, size_t nbytes) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, ctx->stream));
  PT_CUDA(cudaStreamSynchronize(ctx->stream));
  return PTYC_OK;
}

static ptyc_status cuda_zero(void *vctx, void *dst, size_t nbytes) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaMemsetAsync(dst, 0, nbytes, ctx->stream));
  return PTYC_OK;
}

static ptyc_status cuda_copy(void *vctx, void *dst, const void *src, size_t nbytes) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, ctx->stream));
  return PTYC_OK;
}

/* ---- FFT ----------------------------------------------------------------------------------- */

/* Makes one plan of `count` contiguous M x M C2C transforms without a work area of its
 * own; *work_nbytes receives the work area it needs. The 64-bit interface takes
 * batches beyond 2^31 values. */
static cufftResult make_plan(int m, int count, cudaStream_t stream, cufftHandle *handle,
                             size_t *work_nbytes) {
  cufftResult err = cufftCreate(handle);
  if (err != CUFFT_SUCCESS) return err;
  long long dims[2] = {m, m};
  err = cufftSetAutoAllocation(*handle, 0);
  if (err == CUFFT_SUCCESS)
    err = cufftMakePlanMany64(*handle, 2, dims, NULL, 1, 0, NULL, 1, 0, CUFFT_C2C, count,
                              work_nbytes);
  if (err == CUFFT_SUCCESS) err = cufftSetStream(*handle, stream);
  if (err != CUFFT_SUCCESS) cufftDestroy(*handle);
  return err;
}

static void cuda_fft_free(void *vctx, void *plan);

/* `count` contiguous M x M C2C transforms on the backend's stream, and the sub-plans of
 * ptyc_fft_exec_count; the shared work area is allocated here, once. */
static ptyc_status cuda_fft_plan(void *vctx, int m, int count, void **plan) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  cuda_fft *p = calloc(1, sizeof *p);
  if (p == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory planning an FFT");
  p->m = m;
  p->count = count;
  if (m == 256 && pt_cuda_fft256_supported(ctx->device)) {
    p->fft256 = 1;
    *plan = p;
    return PTYC_OK;
  }
  size_t work = 0, need = 0;
  int failed_count = count;
  cufftResult err = make_plan(m, count, ctx->stream, &p->handle, &work);
  p->have_handle = err == CUFFT_SUCCESS;
  for (int i = 0; err == CUFFT_SUCCESS && i < CUDA_FFT_MAX_CHUNKS && (1 << i) < count; i++) {
    failed_count = 1 << i;
    err = make_plan(m, 1 << i, ctx->stream, &p->chunk[i], &need);
    if (err == CUFFT_SUCCESS) {
      p->n_chunks = i + 1;
      if (need > work) work = need;
    }
  }
  if (err != CUFFT_SUCCESS) {
    cuda_fft_free(vctx, p);
    (void)cudaGetLastError();
    return ptyc_fail(PTYC_E_DEVICE,
                     "cuFFT could not plan %d transforms of %d x %d: error %d, %s, at %s:%d "
                     "(device %d)",
                     failed_count, m, m, (int)err, cufft_result_text(err),
                     short_path(__FILE__), __LINE__, ctx->device);
  }
  if (work > 0) {
    cudaError_t cerr = cudaMalloc(&p->work, work);
    if (cerr != cudaSuccess) {
      p->work = NULL;
      cuda_fft_free(vctx, p);
      (void)cudaGetLastError();
      return ptyc_fail(PTYC_E_NOMEM, "out of GPU memory on device %d for the %.1f MiB work "
                                     "area of %d FFTs of %d x %d: lower "
                                     "reconstructor.batch_size",
                       ctx->device, work / 1048576.0, count, m, m);
    }
  }
  err = cufftSetWorkArea(p->handle, p->work);
  for (int i = 0; err == CUFFT_SUCCESS && i < p->n_chunks; i++)
    err = cufftSetWorkArea(p->chunk[i], p->work);
  if (err != CUFFT_SUCCESS) {
    cuda_fft_free(vctx, p);
    return pt_cufft_error(err, "cufftSetWorkArea(plan, work)", __FILE__, __LINE__);
  }
  *plan = p;
  return PTYC_OK;
}

static ptyc_status cuda_fft_exec(void *vctx, void *plan, ptyc_c32 *data, int inverse) {
  pt_cuda_ctx *ctx = vctx;
  cuda_fft *p = plan;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (p->fft256) {
    PT_LAUNCH(ctx, pt_cuda_launch_fft256(data, p->count, inverse, ctx->stream));
    return PTYC_OK;
  }
  cufftComplex *x = (cufftComplex *)data;
  PT_CUFFT(cufftExecC2C(p->handle, x, x, inverse ? CUFFT_INVERSE : CUFFT_FORWARD));
  if (ctx->sync_debug) PT_CUDA(cudaStreamSynchronize(ctx->stream));
  return PTYC_OK;
}

/* The first `count` < p->count images as power-of-two chunks, largest first: 13 = 8 + 4 + 1
 * (ptyc_fft_exec_count runs the whole plan when all are asked for). */
static ptyc_status cuda_fft_exec_count(void *vctx, void *plan, ptyc_c32 *data, int count,
                                       int inverse) {
  pt_cuda_ctx *ctx = vctx;
  cuda_fft *p = plan;
  PT_CUDA(cudaSetDevice(ctx->device));
  size_t image = (size_t)p->m * p->m, done = 0;
  if (p->fft256) {
    PT_LAUNCH(ctx, pt_cuda_launch_fft256(data, count, inverse, ctx->stream));
    return PTYC_OK;
  }
  for (int i = p->n_chunks - 1; i >= 0; i--) {
    if ((count & (1 << i)) == 0) continue;
    cufftComplex *x = (cufftComplex *)(data + done * image);
    PT_CUFFT(cufftExecC2C(p->chunk[i], x, x, inverse ? CUFFT_INVERSE : CUFFT_FORWARD));
    done += (size_t)1 << i;
  }
  if (ctx->sync_debug) PT_CUDA(cudaStreamSynchronize(ctx->stream));
  return PTYC_OK;
}

/* The exit waves' transforms: fused on the one-pass kernel, else exit_waves then the
 * plan's transforms. */
static ptyc_status cuda_fft_exit_waves(void *vctx, void *plan, const ptyc_scan *scan, int first,
                                       int n, const ptyc_c32 *object, const ptyc_c32 *probes,
                                       ptyc_c32 *psi) {
  pt_cuda_ctx *ctx = vctx;
  cuda_fft *p = plan;
  PT_CUDA(cudaSetDevice(ctx->device));
  if (p->fft256) {
    PT_LAUNCH(ctx, pt_cuda_launch_fft256_exit_waves(pt_cuda_make_batch(scan, first, n), object,
                                                    probes, psi, ctx->stream));
    return PTYC_OK;
  }
  PT_TRY(pt_cuda_exit_waves(vctx, scan, first, n, object, probes, psi));
  const int count = n * scan->n_modes; /* the chunks cover only counts below the plan's */
  return count == p->count ? cuda_fft_exec(vctx, plan, psi, 0)
                           : cuda_fft_exec_count(vctx, plan, psi, count, 0);
}

static void cuda_fft_free(void *vctx, void *plan) {
  pt_cuda_ctx *ctx = vctx;
  cuda_fft *p = plan;
  if (p == NULL) return;
  if (cudaSetDevice(ctx->device) == cudaSuccess) {
    if (p->have_handle) cufftDestroy(p->handle);
    for (int i = 0; i < p->n_chunks; i++) cufftDestroy(p->chunk[i]);
    if (p->work) cudaFree(p->work);
  }
  (void)cudaGetLastError();
  free(p);
}

/* The stream NCCL queues its collectives on, so they run in order with our ops. */
static void *cuda_native_stream(void *vctx, int *device) {
  pt_cuda_ctx *ctx = vctx;
  if (device) *device = ctx->device;
  return ctx->stream;
}

/* ---- the table ------------------------------------------------------------------------------- */

/* ---- streaming from host memory ----------------------------------------------------------- */

static ptyc_status cuda_host_alloc(void *vctx, size_t nbytes, void **ptr) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  cudaError_t err = cudaHostAlloc(ptr, nbytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    *ptr = NULL;
    (void)cudaGetLastError();
    return ptyc_fail(PTYC_E_NOMEM, "cannot page-lock %.2f GiB of host memory for streaming "
                                   "(%s): free host memory or lower the data size",
                     nbytes / 1073741824.0, cudaGetErrorString(err));
  }
  return PTYC_OK;
}

static void cuda_host_free(void *vctx, void *ptr) {
  (void)vctx;
  cudaFreeHost(ptr);
}

/* The copy stream first waits for the computation queued so far (a fence event), so a
 * copy never overwrites a buffer a queued kernel still reads; the compute stream waits
 * for the group's last copy only when ptyc_buf_upload_wait says so. */
static ptyc_status cuda_upload_async(void *vctx, int group, void *dst, const void *src,
                                     size_t nbytes) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaEventRecord(ctx->copy_fence, ctx->stream));
  PT_CUDA(cudaStreamWaitEvent(ctx->copy_stream, ctx->copy_fence, 0));
  PT_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, ctx->copy_stream));
  PT_CUDA(cudaEventRecord(ctx->copy_done[group], ctx->copy_stream));
  return PTYC_OK;
}

static ptyc_status cuda_upload_wait(void *vctx, int group) {
  pt_cuda_ctx *ctx = vctx;
  PT_CUDA(cudaSetDevice(ctx->device));
  PT_CUDA(cudaStreamWaitEvent(ctx->stream, ctx->copy_done[group], 0));
  return PTYC_OK;
}

static const pt_backend_vtable cuda_vtable = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .device_info = cuda_device_info,
    .sync = cuda_sync,
    .timer_start = cuda_timer_start,
    .timer_stop = cuda_timer_stop,
    .native_stream = cuda_native_stream,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .copy = cuda_copy,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .upload_async = cuda_upload_async,
    .upload_wait = cuda_upload_wait,
    .fft_plan = cuda_fft_plan,
    .fft_exec = cuda_fft_exec,
    .fft_exec_count = cuda_fft_exec_count,
    .fft_exit_waves = cuda_fft_exit_waves,
    .fft_free = cuda_fft_free,
    .scale = pt_cuda_scale,
    .norm2 = pt_cuda_norm2,
    .sum = pt_cuda_sum,
    .axpy_mean = pt_cuda_axpy_mean,
    .precondition = pt_cuda_precondition,
    .shift_spectrum = pt_cuda_shift_spectrum,
    .unshift_accumulate = pt_cuda_unshift_accumulate,
    .exit_waves = pt_cuda_exit_waves,
    .interp_shift = pt_cuda_interp_shift,
    .interp_unshift_accumulate = pt_cuda_interp_unshift_accumulate,
    .fourier_residual = pt_cuda_fourier_residual,
    .object_gradient = pt_cuda_object_gradient,
    .probe_gradient = pt_cuda_probe_gradient,
    .lsqml_steps = pt_cuda_lsqml_steps,
    .orthogonalize_modes = pt_cuda_orthogonalize_modes,
    .loss_gradient = pt_cuda_loss_gradient,
    .exit_waves_vjp = pt_cuda_exit_waves_vjp,
    .shift_position_gradient = pt_cuda_shift_position_gradient,
    .interp_position_gradient = pt_cuda_interp_position_gradient,
    .optimizer_step = pt_cuda_optimizer_step,
    .position_step = pt_cuda_position_step,
    .object_regularize = pt_cuda_object_regularize,
};

ptyc_status pt_cuda_backend_create(int device_index, const pt_backend_vtable **vtable,
                                   void **out) {
  *out = NULL;
  char why[256];
  if (!pt_cuda_usable(why, sizeof why))
    return ptyc_fail(PTYC_E_DEVICE, "no usable CUDA device: %s", why);
  PT_TRY(check_device_index(device_index));
  pt_cuda_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the CUDA backend");
  ptyc_status st = PTYC_OK;
  ctx->device = device_index;
  const char *debug = getenv("PTYC_SYNC_DEBUG");
  ctx->sync_debug = debug != NULL && strcmp(debug, "1") == 0;

  PT_CUDA_CHECK(cudaSetDevice(device_index));
  PT_CHECK(check_kernel_image(device_index));
  /* Non-blocking: no implicit ordering with work other libraries put on the legacy
   * default stream; ptyc_backend_sync() is the one way to wait for this backend. */
  PT_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
  PT_CUDA_CHECK(cudaMalloc(&ctx->scratch, PT_CUDA_SCRATCH_NBYTES));
  PT_CUDA_CHECK(cudaMallocHost(&ctx->staging, PT_CUDA_STAGING_NBYTES));
  PT_CUDA_CHECK(cudaEventCreateWithFlags(&ctx->staging_free, cudaEventDisableTiming));
  PT_CUDA_CHECK(cudaEventCreate(&ctx->timer_begin));
  PT_CUDA_CHECK(cudaEventCreate(&ctx->timer_end));
  PT_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking));
  PT_CUDA_CHECK(cudaEventCreateWithFlags(&ctx->copy_fence, cudaEventDisableTiming));
  for (int g = 0; g < 2; g++)
    PT_CUDA_CHECK(cudaEventCreateWithFlags(&ctx->copy_done[g], cudaEventDisableTiming));
  *vtable = &cuda_vtable;
  *out = ctx;
  return PTYC_OK;
fail:
  cuda_destroy(ctx);
  return st;
}
