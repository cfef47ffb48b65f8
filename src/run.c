/* `ptyc run`: device choice, dataset, memory plan, iterations, outputs, checkpoints. */
#define _POSIX_C_SOURCE 200809L /* open, getpid, access, clock_gettime */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "ptyc/checkpoint.h"
#include "ptyc/dataset.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/recon_io.h"
#include "ptyc/run.h"
#include "backend/interp_math.h"
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
static size_t plan_total(const ptyc_model *shape, const ptyc_options *opts, size_t model_bytes,
                         int batch) {
  size_t engine_bytes = 0;
  if (ptyc_engine_plan_bytes(opts->reconstructor.engine, shape, opts, batch, &engine_bytes) !=
      PTYC_OK)
    return (size_t)-1;
  return model_bytes + engine_bytes;
}

/* The largest batch whose plan fits `budget` bytes, or 0. */
static int largest_batch(const ptyc_model *shape, const ptyc_options *opts, size_t model_bytes,
                         double budget) {
  int fits = 0;
  for (int lo = 1, hi = shape->n_positions; lo <= hi;) {
    int mid = lo + (hi - lo) / 2;
    if ((double)plan_total(shape, opts, model_bytes, mid) <= budget) {
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
                               size_t *planned, FILE *out, ptyc_comm *comm) {
  ptyc_device_info info;
  PT_TRY(ptyc_backend_device_info(be, &info));
  ptyc_model shape = {0};
  size_t model_bytes;
  ptyc_model_plan(ds, opts, &shape.obj_h, &shape.obj_w, &model_bytes);
  shape.n_positions = ds->n_patterns;
  shape.m = ds->m;
  shape.n_modes = opts->probe.modes;
  shape.n_patterns_held = ptyc_dataset_patterns_held(ds); /* this rank's share */
  size_t pattern_bytes = (size_t)shape.n_patterns_held * ds->m * ds->m * sizeof(float);
  double budget = opts->reconstructor.memory_fraction * (double)info.memory_free;
  int cpu = strcmp(ptyc_backend_name(be), "cpu") == 0;
  int wanted = opts->reconstructor.batch_size; /* 0 = auto */

  ptyc_patterns_place place = opts->reconstructor.patterns;
  if (place == PTYC_PATTERNS_AUTO) {
    int fits_resident = largest_batch(&shape, opts, model_bytes, budget);
    place = (cpu || fits_resident >= (wanted > 0 ? wanted : 1)) ? PTYC_PATTERNS_RESIDENT
                                                                : PTYC_PATTERNS_STREAM;
  }
  opts->reconstructor.patterns = place;
  shape.streaming = place == PTYC_PATTERNS_STREAM;
  size_t device_model_bytes = model_bytes - (shape.streaming ? pattern_bytes : 0);
  int fits = largest_batch(&shape, opts, device_model_bytes, budget);
  if (wanted == 0) {
    /* On a CPU large batches only cost memory; keep LSQML's usual minibatch there. */
    int cap = cpu ? 64 : ds->n_patterns;
    opts->reconstructor.batch_size = fits < cap ? fits : cap;
    if (opts->reconstructor.batch_size == 0) opts->reconstructor.batch_size = 1;
    /* Several ranks make one global batch: all take the smallest that fits everywhere. */
    double minus_batch = -opts->reconstructor.batch_size;
    PT_TRY(ptyc_comm_allreduce_host(comm, &minus_batch, 1, PTYC_COMM_MAX));
    opts->reconstructor.batch_size = (int)-minus_batch;
  }
  int batch = opts->reconstructor.batch_size;
  *planned = plan_total(&shape, opts, device_model_bytes, batch);
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
                     plan_total(&shape, opts, device_model_bytes, 1) / GIB, budget / GIB,
                     ptyc_backend_name(be));
  }
  return PTYC_OK;
}

/* Copies the model to `recon` and checks that it is finite, so that a diverged state
 * never replaces a good checkpoint or output. `done` = iterations done so far. */
static ptyc_status download_state(ptyc_model *model, ptyc_recon *recon, int done) {
  PT_TRY(ptyc_model_download(model, recon));
  const float *values[2] = {(const float *)recon->object, (const float *)recon->probe};
  size_t counts[2] = {2 * (size_t)recon->obj_h * recon->obj_w,
                      2 * (size_t)recon->n_modes * recon->m * recon->m};
  const char *names[2] = {"object", "probe"};
  for (int a = 0; a < 2; a++)
    for (size_t i = 0; i < counts[a]; i++)
      if (!isfinite(values[a][i]))
        return ptyc_fail(PTYC_E_NUMERIC, "the %s became non-finite (%g) in iteration %d: "
                                         "the reconstruction diverged (check the data, or "
                                         "lower lsqml.max_step)", names[a], values[a][i], done);
  return PTYC_OK;
}

/* recon.h5 and the PNG previews of `recon` (see download_state). */
static ptyc_status write_outputs(ptyc_recon *recon, const char *dir, int png, int ptychodus) {
  char path[PTYC_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/recon.h5", dir);
  PT_TRY(ptyc_recon_write(path, recon));
  if (ptychodus) { /* output.ptychodus: the same result as a ptychodus product file */
    snprintf(path, sizeof path, "%s/ptychodus_product.h5", dir);
    PT_TRY(ptyc_ptychodus_write(path, recon, NULL));
  }
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

/* ---- checkpoints and log.jsonl -------------------------------------------------------- */

/* Everything a checkpoint of this run needs besides the model. */
typedef struct checkpointing {
  char path[PTYC_PATH_MAX + 32]; /* <output.directory>/checkpoint.h5 */
  char *job_text;                /* ptyc_checkpoint_job_text() of this job */
  uint64_t dataset_hash;
  int threads;                   /* CPU threads (0 on a GPU) */
  const char *device;
  int last_good;                 /* iterations in the last checkpoint written or resumed
                                    from by this run; -1 if none */
} checkpointing;

/* Writes checkpoint.h5 from `recon` (already downloaded and checked). */
static ptyc_status write_checkpoint(checkpointing *ck, ptyc_engine *engine,
                                    const ptyc_recon *recon, double *peak_gib) {
  ptyc_checkpoint_info info = {.job = ck->job_text, .dataset_hash = ck->dataset_hash,
                               .peak_gib = peak_gib, .threads = ck->threads};
  snprintf(info.device, sizeof info.device, "%s", ck->device);
  PT_TRY(ptyc_engine_save_state(engine, &info.engine_state, &info.engine_state_nbytes));
  ptyc_status st = ptyc_checkpoint_write(ck->path, recon, &info);
  free(info.engine_state);
  if (st == PTYC_OK) ck->last_good = recon->n_iterations;
  return st;
}

/* Reads the checkpoint to resume from and checks that it belongs to this job and can
 * go on to `iterations`. */
static ptyc_status read_resume_checkpoint(const checkpointing *ck, const char *engine,
                                          int iterations, ptyc_recon **saved,
                                          ptyc_checkpoint_info *info) {
  if (access(ck->path, F_OK) != 0)
    return ptyc_fail(PTYC_E_IO, "%s: no checkpoint to resume from (one is written every "
                                "output.checkpoint_every iterations and when a run is "
                                "interrupted): run without --resume to start afresh", ck->path);
  PT_TRY(ptyc_checkpoint_read(ck->path, saved, info));
  PT_TRY(ptyc_checkpoint_check(ck->path, *saved, info, engine, ck->job_text,
                               ck->dataset_hash));
  if ((*saved)->n_iterations > iterations)
    return ptyc_fail(PTYC_E_CONFIG, "%s already holds %d iterations but "
                                    "reconstructor.iterations = %d: set it to %d or more to "
                                    "continue", ck->path, (*saved)->n_iterations, iterations,
                     (*saved)->n_iterations);
  return PTYC_OK;
}

/* Puts a checkpoint's object, probe and positions into a freshly built model. */
static ptyc_status restore_model(ptyc_model *model, const ptyc_recon *saved, const char *path) {
  if (saved->obj_h != model->obj_h || saved->obj_w != model->obj_w || saved->m != model->m ||
      saved->n_modes != model->n_modes || saved->n_positions != model->n_positions)
    return ptyc_fail(PTYC_E_FORMAT, "%s holds an object of %d x %d, %d probe modes of %d x %d "
                                    "and %d positions, but this job makes %d x %d, %d of %d x %d "
                                    "and %d: it belongs to another job or build",
                     path, saved->obj_h, saved->obj_w, saved->n_modes, saved->m, saved->m,
                     saved->n_positions, model->obj_h, model->obj_w, model->n_modes, model->m,
                     model->m, model->n_positions);
  ptyc_backend *be = model->be;
  PT_TRY(ptyc_buf_upload(be, model->object, 0, saved->object, model->object.nbytes));
  PT_TRY(ptyc_buf_upload(be, model->probe, 0, saved->probe, model->probe.nbytes));
  PT_TRY(ptyc_buf_upload(be, model->positions, 0, saved->positions_px, model->positions.nbytes));
  memcpy(model->positions_host, saved->positions_px, model->positions.nbytes);
  return PTYC_OK;
}

/* One log.jsonl record (with its newline) into buf; returns its length. A null
 * peak_gib (NaN) is written as JSON null. */
static int log_record(char *buf, size_t size, int iteration, double loss, double time_s,
                      double peak_gib) {
  char peak[32];
  if (isnan(peak_gib))
    snprintf(peak, sizeof peak, "null");
  else
    snprintf(peak, sizeof peak, "%.4f", peak_gib);
  int n = snprintf(buf, size, "{\"iteration\": %d, \"loss\": %.9g, \"time_ms\": %.3f, "
                   "\"peak_gib\": %s}\n", iteration, loss, 1e3 * time_s, peak);
  return n < (int)size ? n : (int)size - 1;
}

/* Opens log.jsonl for appending one record per iteration. Each record goes out in
 * one write() on an O_APPEND descriptor, so the file never holds half a record. A
 * fresh run starts it empty; a resumed run first replaces it atomically (temporary
 * file, then rename) by the records of the `done` iterations of the checkpoint. */
static ptyc_status open_log(const char *path, const ptyc_recon *recon, const double *peak_gib,
                            int done, int *fd) {
  char tmp[PTYC_PATH_MAX + 64], line[256];
  *fd = -1;
  if (done > 0) {
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return ptyc_fail(PTYC_E_IO, "cannot write %s: %s", tmp, strerror(errno));
    for (int i = 0; i < done; i++) {
      int n = log_record(line, sizeof line, i + 1, recon->loss[i], recon->iteration_time_s[i],
                         peak_gib[i]);
      fwrite(line, 1, (size_t)n, f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
      int err = errno;
      remove(tmp);
      return ptyc_fail(PTYC_E_IO, "cannot write %s: %s", path, strerror(err));
    }
  }
  *fd = open(path, O_WRONLY | O_CREAT | O_APPEND | (done > 0 ? 0 : O_TRUNC), 0664);
  if (*fd < 0) return ptyc_fail(PTYC_E_IO, "cannot write %s: %s", path, strerror(errno));
  return PTYC_OK;
}

static ptyc_status append_log(int fd, const char *path, int iteration, double loss,
                              double time_s, double peak_gib) {
  char line[256];
  int n = log_record(line, sizeof line, iteration, loss, time_s, peak_gib);
  ssize_t written;
  do
    written = write(fd, line, (size_t)n);
  while (written < 0 && errno == EINTR);
  if (written != n)
    return ptyc_fail(PTYC_E_IO, "cannot write %s: %s", path,
                     written < 0 ? strerror(errno) : "short write (disk full?)");
  return PTYC_OK;
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

/* Adds to the last error which checkpoint a failed run leaves behind. */
static ptyc_status note_checkpoint(ptyc_status st, const checkpointing *ck) {
  char message[1024];
  snprintf(message, sizeof message, "%s", ptyc_last_error());
  if (ck->last_good >= 0)
    return ptyc_fail(st, "%s; %s (after iteration %d) is kept", message, ck->path,
                     ck->last_good);
  return ptyc_fail(st, "%s; no checkpoint was written", message);
}

/* ---- several ranks (include/ptyc/comm.h) ------------------------------------------------ */

/* This rank's device and CPU threads. A GPU: local rank % visible GPUs, and no more
 * ranks on a node than GPUs (NCCL cannot share a GPU between ranks). The CPU: the
 * ranks of a node share its cores, cores / ranks threads each, unless
 * reconstructor.threads or OMP_NUM_THREADS says otherwise. */
static ptyc_status place_rank(ptyc_comm *comm, ptyc_device_kind device,
                              const ptyc_options *opts, int *device_index, int *threads) {
  int local_rank = ptyc_comm_local_rank(comm), local_size = ptyc_comm_local_size(comm);
  *device_index = 0;
  *threads = opts->reconstructor.threads;
  if (device == PTYC_DEVICE_CUDA) {
    int visible = ptyc_cuda_device_count();
    if (ptyc_comm_size(comm) > 1 && local_size > visible)
      return ptyc_fail(PTYC_E_CONFIG, "%d ranks on this node but %d visible GPU(s): NCCL "
                                      "cannot share a GPU between ranks; start at most %d "
                                      "rank(s) per node (ptyc launch --nproc-per-node %d) or "
                                      "use reconstructor.device = \"cpu\"",
                       local_size, visible, visible, visible);
    *device_index = visible > 0 ? local_rank % visible : 0;
    return PTYC_OK;
  }
  if (*threads == 0 && local_size > 1 && getenv("OMP_NUM_THREADS") == NULL) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *threads = cores > local_size ? (int)(cores / local_size) : 1;
  }
  return PTYC_OK;
}

/* The dataset's fingerprint for checkpoints. With several ranks each hashes its share
 * and the R hashes are folded in rank order: datasets are told apart as well, but the
 * value depends on R, so a checkpoint resumes on as many ranks as wrote it. */
static ptyc_status dataset_hash(ptyc_comm *comm, const ptyc_dataset *ds, uint64_t *hash) {
  *hash = ptyc_dataset_hash(ds);
  int ranks = ptyc_comm_size(comm), rank = ptyc_comm_rank(comm);
  if (ranks == 1) return PTYC_OK;
  double *parts = calloc(2 * (size_t)ranks, sizeof *parts); /* 32-bit halves: exact */
  if (parts == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory");
  parts[2 * rank] = (double)(*hash >> 32);
  parts[2 * rank + 1] = (double)(*hash & 0xffffffffu);
  ptyc_status st = ptyc_comm_allreduce_host(comm, parts, 2 * (size_t)ranks, PTYC_COMM_SUM);
  uint64_t folded = 14695981039346656037ull; /* FNV-1a over the rank hashes */
  for (int r = 0; st == PTYC_OK && r < ranks; r++) {
    folded ^= ((uint64_t)parts[2 * r] << 32) | (uint64_t)parts[2 * r + 1];
    folded *= 1099511628211ull;
  }
  if (st == PTYC_OK) *hash = folded;
  free(parts);
  return st;
}

/* Test hook (tests/comm/): PTYC_TEST_FAIL_RANK=r makes rank r fail after its first
 * iteration, as a device fault would, to check that every rank then stops promptly. */
static ptyc_status injected_failure(int rank, int iteration) {
  const char *s = getenv("PTYC_TEST_FAIL_RANK");
  char *end = NULL;
  if (s == NULL || *s == '\0' || strtol(s, &end, 10) != rank || *end != '\0') return PTYC_OK;
  return ptyc_fail(PTYC_E_DEVICE, "injected failure on rank %d after iteration %d (test hook "
                                  "PTYC_TEST_FAIL_RANK)", rank, iteration);
}

/* A stop signal may reach the ranks in different iterations: all stop after the
 * iteration in which any of them saw one (a maximum over ranks, once per iteration),
 * and every rank then reports that signal. */
static ptyc_status agree_stop(ptyc_comm *comm, volatile sig_atomic_t *stop_signal, int *stop) {
  double s = *stop;
  PT_TRY(ptyc_comm_allreduce_host(comm, &s, 1, PTYC_COMM_MAX));
  *stop = (int)s;
  if (*stop && stop_signal) *stop_signal = (sig_atomic_t)*stop;
  return PTYC_OK;
}

ptyc_status ptyc_run_job(const ptyc_options *opts_in, const ptyc_run_flags *flags,
                         ptyc_run_result *result) {
  ptyc_options opts = *opts_in;
  int quiet = flags && flags->quiet;
  int resume = flags && flags->resume;
  volatile sig_atomic_t *stop_signal = flags ? flags->stop_signal : NULL;
  ptyc_comm *comm = flags ? flags->comm : NULL; /* NULL: one rank */
  int rank = ptyc_comm_rank(comm), ranks = ptyc_comm_size(comm);
  int bound = 0;                      /* comm bound to the backend: unbind at the end */
  FILE *out = quiet || rank != 0 ? NULL : stdout; /* only rank 0 prints progress */
  ptyc_status st = PTYC_OK;
  ptyc_dataset *ds = NULL;
  ptyc_backend *be = NULL;
  ptyc_model model = {0};
  ptyc_engine *engine = NULL;
  ptyc_recon recon = {0};
  ptyc_recon *saved = NULL;           /* the checkpoint resumed from */
  ptyc_checkpoint_info saved_info = {0};
  checkpointing ck = {.last_good = -1};
  double *peak_gib = NULL;            /* [iterations] for log.jsonl and checkpoints */
  int log_fd = -1;
  int iterations = opts.reconstructor.iterations;
  int every = opts.output.every, checkpoint_every = opts.output.checkpoint_every;
  int start = 0;                      /* first iteration this run computes */
  memset(result, 0, sizeof *result);
  result->checkpoint_iteration = -1;

  char notice[320];
  ptyc_device_kind device;
  PT_CHECK(ptyc_resolve_device(opts.reconstructor.device, &device, notice, sizeof notice));
  if (notice[0] && rank == 0) fprintf(stderr, "ptyc: note: %s\n", notice);

  /* Only engines that split their batches over ranks run on several. */
  if (ranks > 1 && !ptyc_engine_data_parallel(opts.reconstructor.engine))
    PT_FAIL(PTYC_E_CONFIG, "reconstructor.engine = \"%s\" runs on one rank only (this job "
                           "has %d): start one process, or set reconstructor.gpus = 1 for "
                           "'ptyc run' on a node with several GPUs",
            opts.reconstructor.engine, ranks);
  int device_index = 0, threads = opts.reconstructor.threads;
  PT_CHECK(place_rank(comm, device, &opts, &device_index, &threads));
  PT_CHECK(ptyc_dataset_read_share(&opts.data, comm, &ds)); /* one rank: all patterns */
  if (opts.probe.modes > 16)
    PT_FAIL(PTYC_E_CONFIG, "probe.modes = %d: at most 16 modes", opts.probe.modes);
  PT_CHECK(ptyc_backend_create(device, device_index, threads, &be));
  snprintf(result->device, sizeof result->device, "%s", ptyc_backend_name(be));
  PT_CHECK(ptyc_comm_bind(comm, be)); /* collective; NCCL on GPUs when built with it */
  bound = 1;

  ptyc_device_info info;
  PT_CHECK(ptyc_backend_device_info(be, &info));
  if (out) {
    fprintf(out, "ptyc %s | engine %s | device %s (%s%s)\n", PTYC_VERSION_STRING,
            opts.reconstructor.engine, ptyc_backend_name(be), info.name,
            device == PTYC_DEVICE_CPU ? "" : "");
    if (device == PTYC_DEVICE_CPU) fprintf(out, "threads  %d%s\n", info.threads,
                                           ranks > 1 ? " per rank" : "");
    if (ranks > 1)
      fprintf(out, "ranks    %d (%s, %d per node), each with its share of the patterns\n",
              ranks, ptyc_comm_name(comm), ptyc_comm_local_size(comm));
    fprintf(out, "dataset  %s: %s, %d patterns of %d x %d%s%s\n", opts.data.path, ds->format,
            ds->n_patterns, ds->m, ds->m,
            strcmp(opts.probe.init, "aperture") == 0 ? ", aperture probe"
            : ds->probe && strcmp(opts.probe.init, "data") != 0 ? ", probe from file"
                                                                : ", probe from data",
            ds->mask ? ", mask" : "");
  }
  size_t planned = 0;
  PT_CHECK(plan_memory(be, ds, &opts, &planned, out, comm));
  PT_CHECK(ptyc_options_to_text(&opts, &recon.config_text));
  if (out) fprintf(out, "---- resolved job ----\n%s----------------------\n", recon.config_text);

  /* What identifies this job's checkpoints; with --resume, the one to continue. */
  snprintf(ck.path, sizeof ck.path, "%s/checkpoint.h5", opts.output.directory);
  PT_CHECK(dataset_hash(comm, ds, &ck.dataset_hash));
  ck.threads = device == PTYC_DEVICE_CPU ? info.threads : 0;
  ck.device = ptyc_backend_name(be);
  PT_CHECK(ptyc_checkpoint_job_text(&opts, &ck.job_text));
  if (resume) {
    PT_CHECK(read_resume_checkpoint(&ck, opts.reconstructor.engine, iterations, &saved,
                                    &saved_info));
    start = saved->n_iterations;
    if ((strcmp(saved_info.device, ck.device) != 0 || saved_info.threads != ck.threads) &&
        rank == 0)
      fprintf(stderr, "ptyc: note: the checkpoint was computed on %s with %d threads, this run "
                      "uses %s with %d: the result may differ from an uninterrupted run in the "
                      "last bits\n", saved_info.device, saved_info.threads, ck.device,
              ck.threads);
    if (out) fprintf(out, "resume   %s after iteration %d of %d\n", ck.path, start, iterations);
  }

  PT_CHECK(ptyc_model_init_comm(be, comm, ds, &opts, &model));
  if (out)
    fprintf(out, "shift    %s (%s; pupil to %.3f, filter band %.2f cycles per pixel)\n",
            model.shift == PTYC_SHIFT_INTERPOLATE ? "interpolate" : "fourier",
            ptyc_model_shift_reason(&model, &opts), model.pupil_reach, PT_INTERP_ACCURATE_BAND);
  ptyc_dataset_free(ds);
  ds = NULL;
  if (saved) PT_CHECK(restore_model(&model, saved, ck.path));
  /* Replicas start from rank 0's object and probe to the last bit. */
  PT_CHECK(ptyc_comm_broadcast(comm, model.object, 0, model.object.nbytes, 0));
  PT_CHECK(ptyc_comm_broadcast(comm, model.probe, 0, model.probe.nbytes, 0));
  PT_CHECK(ptyc_engine_create(&model, &opts, &engine));
  if (saved)
    PT_CHECK(ptyc_engine_load_state(engine, saved_info.engine_state,
                                    saved_info.engine_state_nbytes));

  recon.loss = calloc(iterations, sizeof(double));
  recon.iteration_time_s = calloc(iterations, sizeof(double));
  peak_gib = calloc(iterations, sizeof(double));
  if (!recon.loss || !recon.iteration_time_s || !peak_gib) PT_FAIL(PTYC_E_NOMEM, "out of memory");
  recon.iterations = iterations;
  recon.n_iterations = start;
  snprintf(recon.engine, sizeof recon.engine, "%s", opts.reconstructor.engine);
  if (saved) {
    memcpy(recon.loss, saved->loss, sizeof(double) * start);
    if (saved->iteration_time_s)
      memcpy(recon.iteration_time_s, saved->iteration_time_s, sizeof(double) * start);
    for (int i = 0; i < start; i++) peak_gib[i] = saved_info.peak_gib ? saved_info.peak_gib[i] : NAN;
    ck.last_good = start;
  }

  /* Everything is accepted: from here on, outputs may be written (by rank 0 only). */
  char log_path[PTYC_PATH_MAX + 16];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", opts.output.directory);
  if (rank == 0) {
    PT_CHECK(make_directory(opts.output.directory));
    PT_CHECK(open_log(log_path, &recon, peak_gib, start, &log_fd));
  }
  int bar = !quiet && rank == 0 && isatty(STDERR_FILENO);

  for (int it = start; it < iterations; it++) {
    double t0 = now_s(), loss = 0.0;
    st = ptyc_engine_step(engine, it, &loss);
    if (st == PTYC_OK && !isfinite(loss))
      st = ptyc_fail(PTYC_E_NUMERIC, "the cost became %g at iteration %d: the reconstruction "
                                     "diverged (check the data, or lower the step sizes)",
                     loss, it + 1);
    if (st == PTYC_OK && it == start) st = injected_failure(rank, it + 1);
    if (st != PTYC_OK) {
      st = note_checkpoint(st, &ck);
      goto fail;
    }
    if (flags && flags->fault_nan_after == it + 1)
      PT_CHECK(ptyc_op_scale(be, model.object, (size_t)model.obj_h * model.obj_w, NAN));
    double dt = now_s() - t0;
    recon.loss[it] = loss;
    recon.iteration_time_s[it] = dt;
    recon.n_iterations = it + 1;
    double gib = ptyc_backend_peak_bytes(be) / GIB;
    peak_gib[it] = gib;
    if (rank == 0) PT_CHECK(append_log(log_fd, log_path, it + 1, loss, dt, gib));
    if (out) fprintf(out, "iter %4d/%d | loss %.4e | %8.1f ms | %.2f GiB\n", it + 1, iterations,
                     loss, 1e3 * dt, gib);
    if (bar) progress_bar(it + 1, iterations, loss);

    /* Between iterations: checkpoints (every K and at the end; always when stopped by a
     * signal), snapshots, and the signal check. */
    int last = it + 1 == iterations;
    int stop = stop_signal && !last ? (int)*stop_signal : 0; /* after the last: just finish */
    if (ranks > 1 && !last) PT_CHECK(agree_stop(comm, stop_signal, &stop));
    int checkpoint_due = stop || (checkpoint_every > 0 && ((it + 1) % checkpoint_every == 0 || last));
    int snapshot_due = stop || (every > 0 && (it + 1) % every == 0 && !last);
    if (rank != 0) checkpoint_due = snapshot_due = 0; /* replicas: rank 0 writes */
    if (checkpoint_due || snapshot_due) {
      st = download_state(&model, &recon, it + 1);
      if (st != PTYC_OK) {
        st = note_checkpoint(st, &ck);
        goto fail;
      }
    }
    if (checkpoint_due) PT_CHECK(write_checkpoint(&ck, engine, &recon, peak_gib));
    if (snapshot_due)
      PT_CHECK(write_outputs(&recon, opts.output.directory, opts.output.png,
                             opts.output.ptychodus));
    if (stop) {
      result->iterations_done = it + 1;
      result->checkpoint_iteration = ck.last_good;
      PT_FAIL(PTYC_E_INTERRUPTED, "interrupted by %s after iteration %d of %d: wrote %s and "
                                  "the outputs", signal_name(stop), it + 1, iterations, ck.path);
    }
  }
  if (rank == 0) {
    st = download_state(&model, &recon, iterations);
    if (st != PTYC_OK) {
      st = note_checkpoint(st, &ck);
      goto fail;
    }
    PT_CHECK(write_outputs(&recon, opts.output.directory, opts.output.png,
                           opts.output.ptychodus));
  }

  result->iterations_done = recon.n_iterations;
  result->final_loss = iterations > 0 ? recon.loss[iterations - 1] : 0.0;
  result->resumed_at = start;
  result->checkpoint_iteration = ck.last_good;
  /* The first iteration carries one-off costs (page faults, FFT warm-up): leave it out. */
  int skip = iterations > 2 ? 1 : 0;
  result->median_iteration_ms = 1e3 * median(recon.iteration_time_s + skip, iterations - skip);
  result->peak_device_bytes = ptyc_backend_peak_bytes(be);
  if (ranks > 1) { /* the busiest rank's figures */
    double worst[2] = {(double)result->peak_device_bytes, result->median_iteration_ms};
    PT_CHECK(ptyc_comm_allreduce_host(comm, worst, 2, PTYC_COMM_MAX));
    result->peak_device_bytes = (size_t)worst[0];
    result->median_iteration_ms = worst[1];
  }
  if (out)
    fprintf(out, "done     %d iterations | median %.1f ms/iteration | peak %.2f GiB | %s/recon.h5\n",
            iterations, result->median_iteration_ms, result->peak_device_bytes / GIB,
            opts.output.directory);
fail:
  if (log_fd >= 0) close(log_fd);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  if (bound) ptyc_comm_unbind(comm, st != PTYC_OK && st != PTYC_E_INTERRUPTED);
  ptyc_backend_free(be);
  ptyc_dataset_free(ds);
  ptyc_recon_free(saved);
  ptyc_checkpoint_info_free(&saved_info);
  free(ck.job_text);
  free(peak_gib);
  free(recon.object);
  free(recon.probe);
  free(recon.positions_px);
  free(recon.loss);
  free(recon.iteration_time_s);
  free(recon.config_text);
  return st;
}
