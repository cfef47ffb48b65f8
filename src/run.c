/* `ptyc run`: device choice, dataset, memory plan, iterations, outputs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "ptyc/dataset.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/recon_io.h"
#include "ptyc/run.h"
#include "pt_try.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MIB (1024.0 * 1024.0)

ptyc_status ptyc_resolve_device(ptyc_device_kind requested, ptyc_device_kind *resolved,
                                char *notice, size_t notice_size) {
  const char *env = getenv("PTYC_DEVICE");
  if (notice_size) notice[0] = '\0';
  if (env && *env) {
    if (strcmp(env, "cpu") == 0)
      requested = PTYC_DEVICE_CPU;
    else if (strcmp(env, "cuda") == 0)
      requested = PTYC_DEVICE_CUDA;
    else if (strcmp(env, "auto") != 0)
      return ptyc_fail(PTYC_E_CONFIG, "PTYC_DEVICE=%s: expected cpu, cuda or auto", env);
    else
      requested = PTYC_DEVICE_AUTO;
  }
  char why[256];
  int usable = ptyc_cuda_usable(why, sizeof why);
  if (requested == PTYC_DEVICE_CUDA && !usable)
    return ptyc_fail(PTYC_E_DEVICE, "device \"cuda\" was asked for but %s; use "
                                    "reconstructor.device = \"cpu\" (or PTYC_DEVICE=cpu)", why);
  if (requested == PTYC_DEVICE_AUTO) {
    requested = usable ? PTYC_DEVICE_CUDA : PTYC_DEVICE_CPU;
    if (!usable) snprintf(notice, notice_size, "no usable GPU (%s): running on the CPU", why);
  }
  *resolved = requested;
  return PTYC_OK;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

static double median(const double *x, int n) {
  if (n <= 0) return 0.0;
  double *s = malloc(sizeof(double) * n);
  if (s == NULL) return x[n - 1];
  memcpy(s, x, sizeof(double) * n);
  qsort(s, n, sizeof *s, cmp_double);
  double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  free(s);
  return med;
}

/* mkdir -p */
static ptyc_status make_directory(const char *path) {
  char buf[PTYC_PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0775) != 0 && errno != EEXIST)
      return ptyc_fail(PTYC_E_IO, "cannot create directory %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0775) != 0 && errno != EEXIST)
    return ptyc_fail(PTYC_E_IO, "cannot create output.directory %s: %s", buf, strerror(errno));
  return PTYC_OK;
}

/* Device bytes for a batch size: the model plus the engine's buffers. */
static size_t plan_total(const ptyc_model *shape, const char *engine, size_t model_bytes,
                         int batch) {
  size_t engine_bytes = 0;
  if (ptyc_engine_plan_bytes(engine, shape, batch, &engine_bytes) != PTYC_OK) return (size_t)-1;
  return model_bytes + engine_bytes;
}

/* The largest batch whose plan fits `budget` bytes, or 0. */
static int largest_batch(const ptyc_model *shape, const char *engine, size_t model_bytes,
                         double budget) {
  int fits = 0;
  for (int lo = 1, hi = shape->n_positions; lo <= hi;) {
    int mid = lo + (hi - lo) / 2;
    if ((double)plan_total(shape, engine, model_bytes, mid) <= budget) {
      fits = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return fits;
}

/* Chooses where the patterns live ("auto": on the device when they fit with at least the
 * asked-for batch, else streamed from page-locked host memory) and the batch size
 * ("auto" = the largest that fits), and fails early, with the figures and a batch size
 * that would fit, if the plan exceeds free memory. */
static ptyc_status plan_memory(ptyc_backend *be, const ptyc_dataset *ds, ptyc_options *opts,
                               size_t *planned, FILE *out) {
  ptyc_device_info info;
  PT_TRY(ptyc_backend_device_info(be, &info));
  ptyc_model shape = {0};
  size_t model_bytes;
  ptyc_model_plan(ds, opts, &shape.obj_h, &shape.obj_w, &model_bytes);
  shape.n_positions = ds->n_patterns;
  shape.m = ds->m;
  shape.n_modes = opts->probe.modes;
  size_t pattern_bytes = (size_t)ds->n_patterns * ds->m * ds->m * sizeof(float);
  double budget = opts->reconstructor.memory_fraction * (double)info.memory_free;
  const char *engine = opts->reconstructor.engine;
  int cpu = strcmp(ptyc_backend_name(be), "cpu") == 0;
  int wanted = opts->reconstructor.batch_size; /* 0 = auto */

  ptyc_patterns_place place = opts->reconstructor.patterns;
  if (place == PTYC_PATTERNS_AUTO) {
    int fits_resident = largest_batch(&shape, engine, model_bytes, budget);
    place = (cpu || fits_resident >= (wanted > 0 ? wanted : 1)) ? PTYC_PATTERNS_RESIDENT
                                                                : PTYC_PATTERNS_STREAM;
  }
  opts->reconstructor.patterns = place;
  shape.streaming = place == PTYC_PATTERNS_STREAM;
  size_t device_model_bytes = model_bytes - (shape.streaming ? pattern_bytes : 0);
  int fits = largest_batch(&shape, engine, device_model_bytes, budget);
  if (wanted == 0) {
    /* On a CPU large batches only cost memory; keep LSQML's usual minibatch there. */
    int cap = cpu ? 64 : ds->n_patterns;
    opts->reconstructor.batch_size = fits < cap ? fits : cap;
    if (opts->reconstructor.batch_size == 0) opts->reconstructor.batch_size = 1;
  }
  int batch = opts->reconstructor.batch_size;
  *planned = plan_total(&shape, engine, device_model_bytes, batch);
  if (out) {
    fprintf(out, "memory   %.2f GiB on %s (%.2f GiB free; patterns %.2f GiB, object %d x %d, "
                 "batch %d)\n", *planned / GIB, ptyc_backend_name(be), info.memory_free / GIB,
            pattern_bytes / GIB, shape.obj_h, shape.obj_w, batch);
    if (!cpu)
      fprintf(out, "patterns %s\n", shape.streaming
                  ? "streamed from page-locked host memory, two batches in flight"
                  : "resident on the device");
  }
  if ((double)*planned > budget) {
    if (fits > 0)
      return ptyc_fail(PTYC_E_NOMEM, "the reconstruction needs %.2f GiB but %.0f%% of the "
                                     "%.2f GiB free is %.2f GiB: set reconstructor.batch_size "
                                     "to %d or less (or \"auto\")",
                       *planned / GIB, 100 * opts->reconstructor.memory_fraction,
                       info.memory_free / GIB, budget / GIB, fits);
    return ptyc_fail(PTYC_E_NOMEM, "the reconstruction needs %.2f GiB even with batch 1 but "
                                   "only %.2f GiB may be used on %s: use a device with more "
                                   "memory, reconstructor.patterns = \"stream\", or bin the "
                                   "patterns",
                     plan_total(&shape, engine, device_model_bytes, 1) / GIB, budget / GIB,
                     ptyc_backend_name(be));
  }
  return PTYC_OK;
}

/* recon.h5 and the PNG previews of the current state. */
static ptyc_status write_outputs(ptyc_model *model, ptyc_recon *recon, const char *dir,
                                 int png) {
  char path[PTYC_PATH_MAX + 64];
  PT_TRY(ptyc_model_download(model, recon));
  snprintf(path, sizeof path, "%s/recon.h5", dir);
  PT_TRY(ptyc_recon_write(path, recon));
  if (!png) return PTYC_OK;
  snprintf(path, sizeof path, "%s/object", dir);
  PT_TRY(ptyc_png_write_object(path, recon->object, recon->obj_h, recon->obj_w));
  snprintf(path, sizeof path, "%s/probe.png", dir);
  PT_TRY(ptyc_png_write_probe(path, recon->probe, recon->n_modes, recon->m));
  snprintf(path, sizeof path, "%s/cost.png", dir);
  return ptyc_png_write_curve(path, recon->loss, recon->n_iterations);
}

static void progress_bar(int done, int total, double loss) {
  int width = 30, filled = total > 0 ? done * width / total : width;
  fprintf(stderr, "\r[");
  for (int i = 0; i < width; i++) fputc(i < filled ? '#' : '.', stderr);
  fprintf(stderr, "] %d/%d loss %.3e", done, total, loss);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

ptyc_status ptyc_run_job(const ptyc_options *opts_in, const ptyc_run_flags *flags,
                         ptyc_run_result *result) {
  ptyc_options opts = *opts_in;
  int quiet = flags && flags->quiet;
  FILE *out = quiet ? NULL : stdout;
  ptyc_status st = PTYC_OK;
  ptyc_dataset *ds = NULL;
  ptyc_backend *be = NULL;
  ptyc_model model = {0};
  ptyc_engine *engine = NULL;
  ptyc_recon recon = {0};
  FILE *log = NULL;
  int iterations = opts.reconstructor.iterations;
  memset(result, 0, sizeof *result);

  char notice[320];
  ptyc_device_kind device;
  PT_CHECK(ptyc_resolve_device(opts.reconstructor.device, &device, notice, sizeof notice));
  if (notice[0]) fprintf(stderr, "ptyc: note: %s\n", notice);

  PT_CHECK(ptyc_dataset_read(opts.data.path, opts.data.format, &ds));
  if (opts.probe.modes > 16)
    PT_FAIL(PTYC_E_CONFIG, "probe.modes = %d: at most 16 modes", opts.probe.modes);
  PT_CHECK(ptyc_backend_create(device, 0, opts.reconstructor.threads, &be));
  snprintf(result->device, sizeof result->device, "%s", ptyc_backend_name(be));

  ptyc_device_info info;
  PT_CHECK(ptyc_backend_device_info(be, &info));
  if (out) {
    fprintf(out, "ptyc %s | engine %s | device %s (%s%s)\n", PTYC_VERSION_STRING,
            opts.reconstructor.engine, ptyc_backend_name(be), info.name,
            device == PTYC_DEVICE_CPU ? "" : "");
    if (device == PTYC_DEVICE_CPU) fprintf(out, "threads  %d\n", info.threads);
    fprintf(out, "dataset  %s: %s, %d patterns of %d x %d%s%s\n", opts.data.path, ds->format,
            ds->n_patterns, ds->m, ds->m, ds->probe ? ", probe from file" : ", probe from data",
            ds->mask ? ", mask" : "");
  }
  size_t planned = 0;
  PT_CHECK(plan_memory(be, ds, &opts, &planned, out));
  PT_CHECK(ptyc_options_to_text(&opts, &recon.config_text));
  if (out) fprintf(out, "---- resolved job ----\n%s----------------------\n", recon.config_text);

  PT_CHECK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_dataset_free(ds);
  ds = NULL;
  PT_CHECK(ptyc_engine_create(&model, &opts, &engine));

  /* Everything is accepted: from here on, outputs may be written. */
  PT_CHECK(make_directory(opts.output.directory));
  char log_path[PTYC_PATH_MAX + 16];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", opts.output.directory);
  log = fopen(log_path, "w");
  if (log == NULL) PT_FAIL(PTYC_E_IO, "cannot write %s: %s", log_path, strerror(errno));

  recon.loss = calloc(iterations, sizeof(double));
  recon.iteration_time_s = calloc(iterations, sizeof(double));
  if (!recon.loss || !recon.iteration_time_s) PT_FAIL(PTYC_E_NOMEM, "out of memory");
  recon.iterations = iterations;
  snprintf(recon.engine, sizeof recon.engine, "%s", opts.reconstructor.engine);
  int bar = !quiet && isatty(STDERR_FILENO);

  for (int it = 0; it < iterations; it++) {
    double t0 = now_s(), loss = 0.0;
    PT_CHECK(ptyc_engine_step(engine, it, &loss));
    double dt = now_s() - t0;
    recon.loss[it] = loss;
    recon.iteration_time_s[it] = dt;
    recon.n_iterations = it + 1;
    double gib = ptyc_backend_peak_bytes(be) / GIB;
    fprintf(log, "{\"iteration\": %d, \"loss\": %.9g, \"time_ms\": %.3f, \"peak_gib\": %.4f}\n",
            it + 1, loss, 1e3 * dt, gib);
    fflush(log);
    if (out) fprintf(out, "iter %4d/%d | loss %.4e | %8.1f ms | %.2f GiB\n", it + 1, iterations,
                     loss, 1e3 * dt, gib);
    if (bar) progress_bar(it + 1, iterations, loss);
    if (opts.output.every > 0 && (it + 1) % opts.output.every == 0 && it + 1 < iterations)
      PT_CHECK(write_outputs(&model, &recon, opts.output.directory, opts.output.png));
  }
  PT_CHECK(write_outputs(&model, &recon, opts.output.directory, opts.output.png));

  result->iterations_done = recon.n_iterations;
  result->final_loss = iterations > 0 ? recon.loss[iterations - 1] : 0.0;
  /* The first iteration carries one-off costs (page faults, FFT warm-up): leave it out. */
  int skip = iterations > 2 ? 1 : 0;
  result->median_iteration_ms = 1e3 * median(recon.iteration_time_s + skip, iterations - skip);
  result->peak_device_bytes = ptyc_backend_peak_bytes(be);
  if (out)
    fprintf(out, "done     %d iterations | median %.1f ms/iteration | peak %.2f GiB | %s/recon.h5\n",
            iterations, result->median_iteration_ms, result->peak_device_bytes / GIB,
            opts.output.directory);
fail:
  if (log) fclose(log);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  ptyc_backend_free(be);
  ptyc_dataset_free(ds);
  free(recon.object);
  free(recon.probe);
  free(recon.positions_px);
  free(recon.loss);
  free(recon.iteration_time_s);
  free(recon.config_text);
  return st;
}
