/* The CPU backend: host memory, FFTW single-precision plans and the device query.
 * The numerical ops are in cpu_ops.c. */
#include <fftw3.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_impl.h"
#include "backend/cpu/cpu_autodiff_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "pt_try.h"

PT_STATIC_ASSERT(sizeof(fftwf_complex) == sizeof(ptyc_c32), "ptyc_c32 must match fftwf_complex");

typedef struct cpu_fft {
  fftwf_plan forward, inverse;
  int m, count;
} cpu_fft;

static void cpu_destroy(void *ctx) {
  free(((pt_cpu_ctx *)ctx)->scratch);
  free(ctx);
}

void *pt_cpu_scratch(pt_cpu_ctx *ctx, size_t nbytes) {
  if (nbytes <= ctx->scratch_nbytes) return ctx->scratch;
  void *grown = realloc(ctx->scratch, nbytes);
  if (grown == NULL) return NULL;
  ctx->scratch = grown;
  ctx->scratch_nbytes = nbytes;
  return grown;
}

static ptyc_status cpu_sync(void *ctx) { return PTYC_OK; }

static ptyc_status cpu_timer_start(void *ctx) {
  ((pt_cpu_ctx *)ctx)->timer_start_s = omp_get_wtime();
  return PTYC_OK;
}

static ptyc_status cpu_timer_stop(void *ctx, double *ms) {
  *ms = 1e3 * (omp_get_wtime() - ((pt_cpu_ctx *)ctx)->timer_start_s);
  return PTYC_OK;
}

static void read_cpu_model(char *name, size_t size) {
  snprintf(name, size, "CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      const char *colon = strchr(line, ':');
      if (colon) {
        snprintf(name, size, "%s", colon + 2);
        name[strcspn(name, "\n")] = '\0';
      }
      break;
    }
  }
  fclose(f);
}

static ptyc_status cpu_device_info(void *ctx, ptyc_device_info *info) {
  pt_cpu_ctx *cpu = ctx;
  read_cpu_model(info->name, sizeof info->name);
  long page = sysconf(_SC_PAGESIZE);
  info->memory_total = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)page;
  info->memory_free = (size_t)sysconf(_SC_AVPHYS_PAGES) * (size_t)page;
  info->threads = cpu->threads;
  return PTYC_OK;
}

static ptyc_status cpu_alloc(void *ctx, size_t nbytes, void **ptr) {
  *ptr = fftwf_malloc(nbytes); /* SIMD-aligned, as FFTW's plans expect */
  if (*ptr == NULL)
    return ptyc_fail(PTYC_E_NOMEM, "out of host memory allocating %.1f MiB",
                     nbytes / 1048576.0);
  return PTYC_OK;
}

static void cpu_free(void *ctx, void *ptr) { fftwf_free(ptr); }

static ptyc_status cpu_memcpy(void *ctx, void *dst, const void *src, size_t nbytes) {
  memmove(dst, src, nbytes);
  return PTYC_OK;
}

static ptyc_status cpu_zero(void *ctx, void *dst, size_t nbytes) {
  memset(dst, 0, nbytes);
  return PTYC_OK;
}

static ptyc_status cpu_host_alloc(void *ctx, size_t nbytes, void **ptr) {
  *ptr = malloc(nbytes);
  if (*ptr == NULL)
    return ptyc_fail(PTYC_E_NOMEM, "out of host memory allocating %.1f MiB", nbytes / 1048576.0);
  return PTYC_OK;
}

static void cpu_host_free(void *ctx, void *ptr) { free(ptr); }

/* The CPU computes in order: a copy is done when it returns. */
static ptyc_status cpu_upload_async(void *ctx, int group, void *dst, const void *src,
                                    size_t nbytes) {
  memcpy(dst, src, nbytes);
  return PTYC_OK;
}

static ptyc_status cpu_upload_wait(void *ctx, int group) { return PTYC_OK; }

/* One single-transform plan per direction, executed on each image of a batch in
 * parallel with fftwf_execute_dft (thread-safe on new arrays). */
static ptyc_status cpu_fft_plan(void *ctx, int m, int count, void **plan) {
  cpu_fft *p = calloc(1, sizeof *p);
  fftwf_complex *scratch = fftwf_malloc(sizeof(fftwf_complex) * (size_t)m * m);
  if (p == NULL || scratch == NULL) {
    free(p);
    fftwf_free(scratch);
    return ptyc_fail(PTYC_E_NOMEM, "out of memory planning a %d x %d FFT", m, m);
  }
  /* Images after the first start at multiples of m*m*8 bytes: only when that keeps
   * FFTW's SIMD alignment may the plan assume it. */
  unsigned flags = FFTW_ESTIMATE; /* deterministic: MEASURE picks plans by timing */
  if (((size_t)m * m * sizeof(fftwf_complex)) % 64 != 0) flags |= FFTW_UNALIGNED;
  p->forward = fftwf_plan_dft_2d(m, m, scratch, scratch, FFTW_FORWARD, flags);
  p->inverse = fftwf_plan_dft_2d(m, m, scratch, scratch, FFTW_BACKWARD, flags);
  fftwf_free(scratch);
  if (p->forward == NULL || p->inverse == NULL) {
    if (p->forward) fftwf_destroy_plan(p->forward);
    if (p->inverse) fftwf_destroy_plan(p->inverse);
    free(p);
    return ptyc_fail(PTYC_E_DEVICE, "FFTW could not plan a %d x %d transform", m, m);
  }
  p->m = m;
  p->count = count;
  *plan = p;
  return PTYC_OK;
}

/* The first `count` images (a plan's transforms are all alike: any count works). */
static ptyc_status cpu_fft_exec_count(void *ctx, void *plan, ptyc_c32 *data, int count,
                                      int inverse) {
  pt_cpu_ctx *cpu = ctx;
  cpu_fft *p = plan;
  fftwf_plan fp = inverse ? p->inverse : p->forward;
  size_t image = (size_t)p->m * p->m;
#pragma omp parallel for schedule(static) num_threads(cpu->threads) if (count > 1)
  for (int i = 0; i < count; i++) {
    fftwf_complex *x = (fftwf_complex *)(data + (size_t)i * image);
    fftwf_execute_dft(fp, x, x);
  }
  return PTYC_OK;
}

static ptyc_status cpu_fft_exec(void *ctx, void *plan, ptyc_c32 *data, int inverse) {
  return cpu_fft_exec_count(ctx, plan, data, ((cpu_fft *)plan)->count, inverse);
}

static void cpu_fft_free(void *ctx, void *plan) {
  cpu_fft *p = plan;
  if (p == NULL) return;
  fftwf_destroy_plan(p->forward);
  fftwf_destroy_plan(p->inverse);
  free(p);
}

static const pt_backend_vtable cpu_vtable = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .device_info = cpu_device_info,
    .sync = cpu_sync,
    .timer_start = cpu_timer_start,
    .timer_stop = cpu_timer_stop,
    .native_stream = NULL, /* host memory, synchronous ops */
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .zero = cpu_zero,
    .copy = cpu_memcpy,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .upload_async = cpu_upload_async,
    .upload_wait = cpu_upload_wait,
    .fft_plan = cpu_fft_plan,
    .fft_exec = cpu_fft_exec,
    .fft_exec_count = cpu_fft_exec_count,
    .fft_free = cpu_fft_free,
    .scale = pt_cpu_scale,
    .norm2 = pt_cpu_norm2,
    .sum = pt_cpu_sum,
    .axpy_mean = pt_cpu_axpy_mean,
    .precondition = pt_cpu_precondition,
    .shift_spectrum = pt_cpu_shift_spectrum,
    .unshift_accumulate = pt_cpu_unshift_accumulate,
    .exit_waves = pt_cpu_exit_waves,
    .interp_shift = pt_cpu_interp_shift,
    .interp_unshift_accumulate = pt_cpu_interp_unshift_accumulate,
    .fourier_residual = pt_cpu_fourier_residual,
    .object_gradient = pt_cpu_object_gradient,
    .probe_gradient = pt_cpu_probe_gradient,
    .lsqml_steps = pt_cpu_lsqml_steps,
    .orthogonalize_modes = pt_cpu_orthogonalize_modes,
    .loss_gradient = pt_cpu_loss_gradient,
    .exit_waves_vjp = pt_cpu_exit_waves_vjp,
    .shift_position_gradient = pt_cpu_shift_position_gradient,
    .interp_position_gradient = pt_cpu_interp_position_gradient,
    .optimizer_step = pt_cpu_optimizer_step,
    .position_step = pt_cpu_position_step,
    .object_regularize = pt_cpu_object_regularize,
};

ptyc_status pt_cpu_backend_create(int threads, const pt_backend_vtable **vtable, void **ctx) {
  pt_cpu_ctx *cpu = calloc(1, sizeof *cpu);
  if (cpu == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the CPU backend");
  /* 0 = OpenMP's default: OMP_NUM_THREADS if set, else all cores. */
  cpu->threads = threads > 0 ? threads : omp_get_max_threads();
  *vtable = &cpu_vtable;
  *ctx = cpu;
  return PTYC_OK;
}
