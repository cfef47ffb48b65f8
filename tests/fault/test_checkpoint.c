/* Checkpoints under faults (src/data/checkpoint_h5.c, src/checkpoint.c, src/run.c):
 *   - a round trip keeps every field;
 *   - a write that fails half-way, or a writer killed with SIGKILL at a random moment,
 *     leaves the previous checkpoint whole and no temporary file behind;
 *   - a checkpoint of another job, another dataset or another engine is refused with
 *     a message naming the difference; a recon.h5 or a truncated file is refused;
 *   - a run stopped by a signal and resumed ends bit for bit where an uninterrupted run
 *     does;
 *   - a model that turns NaN is reported with its iteration and never replaces the last
 *     good checkpoint. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ptyc/checkpoint.h"
#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/recon_io.h"
#include "ptyc/run.h"
#include "test_util.h"

static char tmp_dir[256];

/* Number of entries of `dir` whose name contains `part`. */
static int count_entries(const char *dir, const char *part) {
  int count = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) count += strstr(e->d_name, part) != NULL;
  if (d) closedir(d);
  return count;
}

/* rm -r of a directory holding only files and directories of files. */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[1024];
  struct stat sb;
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
      remove_tree(path);
    else
      remove(path);
  }
  if (d) closedir(d);
  rmdir(dir);
}

/* ---- a synthetic checkpoint ---------------------------------------------------------- */

typedef struct fake {
  ptyc_recon recon;
  ptyc_checkpoint_info info;
  double peak[8];
  unsigned char blob[37];
} fake;

/* A checkpoint of an h x w object whose values depend on `salt`. The arrays are
 * malloc'd; free with fake_free. */
static void fake_make(fake *f, int h, int w, float salt, char *job) {
  memset(f, 0, sizeof *f);
  ptyc_recon *r = &f->recon;
  r->obj_h = h;
  r->obj_w = w;
  r->n_modes = 2;
  r->m = 8;
  r->n_positions = 5;
  r->n_iterations = 3;
  r->iterations = 10;
  snprintf(r->engine, sizeof r->engine, "lsqml");
  r->config_text = job;
  r->object = malloc(sizeof(ptyc_c32) * (size_t)h * w);
  r->probe = malloc(sizeof(ptyc_c32) * 2 * 8 * 8);
  r->positions_px = malloc(sizeof(double) * 10);
  r->loss = malloc(sizeof(double) * 3);
  r->iteration_time_s = malloc(sizeof(double) * 3);
  for (size_t i = 0; i < (size_t)h * w; i++) r->object[i] = pt_c32(salt + 1e-3f * (float)(i % 1000), -salt);
  for (int i = 0; i < 2 * 8 * 8; i++) r->probe[i] = pt_c32(salt * i, 1.0f / (i + 1));
  for (int i = 0; i < 10; i++) r->positions_px[i] = 0.25 * i + salt;
  for (int i = 0; i < 3; i++) {
    r->loss[i] = 1.0 / (i + 1) + salt;
    r->iteration_time_s[i] = 0.01 * (i + 1);
    f->peak[i] = 0.5 + i;
  }
  for (size_t i = 0; i < sizeof f->blob; i++) f->blob[i] = (unsigned char)(i * 7 + (int)salt);
  f->info.job = job;
  f->info.dataset_hash = 0xfedcba9876543210ull;
  f->info.engine_state = f->blob;
  f->info.engine_state_nbytes = sizeof f->blob;
  f->info.peak_gib = f->peak;
  f->info.threads = 2;
  snprintf(f->info.device, sizeof f->info.device, "cpu");
}

static void fake_free(fake *f) {
  free(f->recon.object);
  free(f->recon.probe);
  free(f->recon.positions_px);
  free(f->recon.loss);
  free(f->recon.iteration_time_s);
}

/* Whether the checkpoint at `path` reads back as exactly `f`. */
static int same_as(const char *path, const fake *f) {
  ptyc_recon *r = NULL;
  ptyc_checkpoint_info info;
  if (ptyc_checkpoint_read(path, &r, &info) != PTYC_OK) {
    fprintf(stderr, "  cannot read %s: %s\n", path, ptyc_last_error());
    return 0;
  }
  const ptyc_recon *w = &f->recon;
  size_t obj = (size_t)w->obj_h * w->obj_w;
  int same = r->obj_h == w->obj_h && r->obj_w == w->obj_w && r->n_modes == w->n_modes &&
             r->m == w->m && r->n_positions == w->n_positions &&
             r->n_iterations == w->n_iterations && strcmp(r->engine, w->engine) == 0 &&
             memcmp(r->object, w->object, sizeof(ptyc_c32) * obj) == 0 &&
             memcmp(r->probe, w->probe, sizeof(ptyc_c32) * 2 * 8 * 8) == 0 &&
             memcmp(r->positions_px, w->positions_px, sizeof(double) * 10) == 0 &&
             memcmp(r->loss, w->loss, sizeof(double) * 3) == 0 &&
             memcmp(r->iteration_time_s, w->iteration_time_s, sizeof(double) * 3) == 0 &&
             strcmp(info.job, f->info.job) == 0 && info.dataset_hash == f->info.dataset_hash &&
             info.engine_state_nbytes == sizeof f->blob &&
             memcmp(info.engine_state, f->blob, sizeof f->blob) == 0 && info.peak_gib &&
             memcmp(info.peak_gib, f->peak, sizeof(double) * 3) == 0 && info.threads == 2 &&
             strcmp(info.device, "cpu") == 0;
  ptyc_recon_free(r);
  ptyc_checkpoint_info_free(&info);
  return same;
}

static void test_round_trip(void) {
  char path[512], job[] = "reconstructor = {\n  seed = 1;\n};\n";
  snprintf(path, sizeof path, "%s/round/checkpoint.h5", tmp_dir);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/round", tmp_dir);
  mkdir(dir, 0775);
  fake a;
  fake_make(&a, 7, 9, 1.0f, job);
  EXPECT_OK(ptyc_checkpoint_write(path, &a.recon, &a.info));
  EXPECT(same_as(path, &a));
  EXPECT(count_entries(dir, "tmp") == 0);

  /* A checkpoint is also a recon.h5 that every reader of results opens. */
  ptyc_recon *as_recon = NULL;
  EXPECT_OK(ptyc_recon_read(path, &as_recon));
  EXPECT(as_recon && as_recon->obj_w == 9);
  ptyc_recon_free(as_recon);

  /* ... but a recon.h5 is not a checkpoint. */
  char recon_path[600];
  snprintf(recon_path, sizeof recon_path, "%s/recon.h5", dir);
  EXPECT_OK(ptyc_recon_write(recon_path, &a.recon));
  ptyc_recon *r = NULL;
  ptyc_checkpoint_info info;
  EXPECT_STATUS(ptyc_checkpoint_read(recon_path, &r, &info), PTYC_E_FORMAT);
  EXPECT(strstr(ptyc_last_error(), "not a ptyc checkpoint") != NULL);
  EXPECT(r == NULL && info.job == NULL);

  /* A truncated checkpoint is an error, not a crash. */
  FILE *f = fopen(path, "rb");
  char buf[4096];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  char cut_path[600];
  snprintf(cut_path, sizeof cut_path, "%s/cut.h5", dir);
  f = fopen(cut_path, "wb");
  if (f) {
    fwrite(buf, 1, n / 2, f);
    fclose(f);
  }
  EXPECT(ptyc_checkpoint_read(cut_path, &r, &info) != PTYC_OK);
  EXPECT(r == NULL);
  fake_free(&a);
}

/* A write that fails after the file was half made keeps the old checkpoint whole. */
static void test_failed_write_keeps_old(void) {
  char dir[400], path[512], job[] = "probe = {\n  modes = 2;\n};\n";
  snprintf(dir, sizeof dir, "%s/failed", tmp_dir);
  snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
  mkdir(dir, 0775);
  fake a, b;
  fake_make(&a, 6, 6, 1.0f, job);
  fake_make(&b, 6, 6, 2.0f, job);
  EXPECT_OK(ptyc_checkpoint_write(path, &a.recon, &a.info));

  /* Fails after the recon.h5 part is on disk: engine state announced but missing. */
  b.info.engine_state = NULL;
  EXPECT_STATUS(ptyc_checkpoint_write(path, &b.recon, &b.info), PTYC_E_ARG);
  EXPECT(same_as(path, &a));
  EXPECT(count_entries(dir, "tmp") == 0);

  /* Fails before anything: no such directory. */
  char nowhere[600];
  snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/checkpoint.h5", dir);
  EXPECT(ptyc_checkpoint_write(nowhere, &a.recon, &a.info) != PTYC_OK);
  fake_free(&a);
  fake_free(&b);
}

/* A writer killed with SIGKILL at any moment leaves the old checkpoint or the new one,
 * complete: never a half-written file under the checkpoint's name. */
static void test_killed_writer(void) {
  char dir[400], path[512], job[] = "object = {\n  padding_px = 8;\n};\n";
  snprintf(dir, sizeof dir, "%s/killed", tmp_dir);
  snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
  mkdir(dir, 0775);
  fake a, b;
  fake_make(&a, 1200, 1100, 1.0f, job); /* about 10 MB each: a write takes a while */
  fake_make(&b, 1200, 1100, 2.0f, job);
  REQUIRE_OK(ptyc_checkpoint_write(path, &a.recon, &a.info));

  int saw_old = 0, saw_new = 0;
  for (int trial = 0; trial < 6; trial++) {
    pid_t child = fork();
    if (child == 0) { /* keep rewriting the new checkpoint until killed */
      for (;;)
        if (ptyc_checkpoint_write(path, &b.recon, &b.info) != PTYC_OK) _exit(3);
    }
    struct timespec pause = {0, 2000000L * (1 + 7 * trial)}; /* 2 to 86 ms */
    nanosleep(&pause, NULL);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT(WIFSIGNALED(status)); /* it was still writing, not failing */
    int is_old = same_as(path, &a), is_new = !is_old && same_as(path, &b);
    EXPECT(is_old || is_new);
    saw_old += is_old;
    saw_new += is_new;
  }
  printf("killed writer: old checkpoint %d times, new one %d times, never half\n", saw_old,
         saw_new);
  fake_free(&a);
  fake_free(&b);
}

/* ---- refusing another job's checkpoint ------------------------------------------------- */

static void test_refusal(void) {
  ptyc_options base, other;
  const char *set_base[] = {"data.path=/data/a.h5", "reconstructor.iterations=10"};
  REQUIRE_OK(ptyc_options_load(NULL, set_base, 2, &base));

  char *job = NULL, *same = NULL, *changed = NULL;
  REQUIRE_OK(ptyc_checkpoint_job_text(&base, &job));
  /* How far, where and how fast to run may change between the runs ... */
  const char *set_same[] = {"data.path=/moved/a.h5", "reconstructor.iterations=500",
                            "reconstructor.threads=3", "output.directory=/elsewhere",
                            "output.checkpoint_every=7", "reconstructor.device=cpu"};
  REQUIRE_OK(ptyc_options_load(NULL, set_same, 6, &other));
  REQUIRE_OK(ptyc_checkpoint_job_text(&other, &same));
  EXPECT(strcmp(job, same) == 0);
  /* ... what decides the result may not. */
  const char *set_changed[] = {"data.path=/data/a.h5", "lsqml.max_step=1.5"};
  REQUIRE_OK(ptyc_options_load(NULL, set_changed, 2, &other));
  REQUIRE_OK(ptyc_checkpoint_job_text(&other, &changed));
  EXPECT(strcmp(job, changed) != 0);

  ptyc_recon recon = {0};
  snprintf(recon.engine, sizeof recon.engine, "lsqml");
  ptyc_checkpoint_info info = {.job = job, .dataset_hash = 42};
  EXPECT_OK(ptyc_checkpoint_check("ck.h5", &recon, &info, "lsqml", same, 42));
  EXPECT_STATUS(ptyc_checkpoint_check("ck.h5", &recon, &info, "lsqml", changed, 42),
                PTYC_E_CONFIG);
  EXPECT(strstr(ptyc_last_error(), "different job (lsqml.max_step = 2.0 there, "
                                   "lsqml.max_step = 1.5 now)") != NULL);
  EXPECT(strstr(ptyc_last_error(), "--resume") != NULL);
  EXPECT_STATUS(ptyc_checkpoint_check("ck.h5", &recon, &info, "lsqml", job, 43), PTYC_E_CONFIG);
  EXPECT(strstr(ptyc_last_error(), "different dataset") != NULL);
  EXPECT_STATUS(ptyc_checkpoint_check("ck.h5", &recon, &info, "autodiff", job, 42),
                PTYC_E_CONFIG);
  EXPECT(strstr(ptyc_last_error(), "engine \"lsqml\"") != NULL);

  /* The dataset hash sees a single changed pattern value and position. */
  float patterns[2 * 4 * 4] = {0};
  double positions[4] = {0, 0, 1, 1};
  ptyc_dataset ds = {.n_patterns = 2, .m = 4, .patterns = patterns, .positions_px = positions};
  uint64_t h0 = ptyc_dataset_hash(&ds);
  EXPECT(h0 == ptyc_dataset_hash(&ds));
  patterns[17] = 1e-30f;
  uint64_t h1 = ptyc_dataset_hash(&ds);
  positions[3] = 1.0000001;
  EXPECT(h1 != h0 && ptyc_dataset_hash(&ds) != h1);
  free(job);
  free(same);
  free(changed);
}

/* ---- the run driver ---------------------------------------------------------------------- */

/* Loads the options of a small CPU run into `opts`; `extra` are more --set strings. */
static void run_options(const char *data, const char *out_dir, int iterations,
                        int checkpoint_every, ptyc_options *opts) {
  char set[4][PTYC_PATH_MAX + 64];
  snprintf(set[0], sizeof set[0], "data.path=%s", data);
  snprintf(set[1], sizeof set[1], "output.directory=%s", out_dir);
  snprintf(set[2], sizeof set[2], "reconstructor.iterations=%d", iterations);
  snprintf(set[3], sizeof set[3], "output.checkpoint_every=%d", checkpoint_every);
  const char *sets[] = {set[0], set[1], set[2], set[3], "reconstructor.device=cpu",
                        "reconstructor.threads=2", "reconstructor.batch_size=48",
                        "output.png=false"};
  REQUIRE_OK(ptyc_options_load(NULL, sets, 8, opts));
}

static ptyc_recon *read_recon(const char *dir, const char *name) {
  char path[PTYC_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ptyc_recon *r = NULL;
  EXPECT_OK(ptyc_recon_read(path, &r));
  return r;
}

/* Same object, probe and positions, bit for bit. */
static int same_model(const ptyc_recon *a, const ptyc_recon *b) {
  return a && b && a->obj_h == b->obj_h && a->obj_w == b->obj_w && a->n_modes == b->n_modes &&
         a->m == b->m && a->n_positions == b->n_positions &&
         memcmp(a->object, b->object, sizeof(ptyc_c32) * a->obj_h * a->obj_w) == 0 &&
         memcmp(a->probe, b->probe, sizeof(ptyc_c32) * a->n_modes * a->m * a->m) == 0 &&
         memcmp(a->positions_px, b->positions_px, sizeof(double) * 2 * a->n_positions) == 0;
}

static void test_interrupt_and_resume(const char *data) {
  char full[512], part[512];
  snprintf(full, sizeof full, "%s/full", tmp_dir);
  snprintf(part, sizeof part, "%s/part", tmp_dir);
  ptyc_options opts;
  ptyc_run_result result;
  ptyc_run_flags flags = {.quiet = 1};

  run_options(data, full, 5, 0, &opts);
  REQUIRE_OK(ptyc_run_job(&opts, &flags, &result));

  /* A stop request that is already pending: the run stops after its first iteration. */
  volatile sig_atomic_t stop = SIGTERM;
  flags.stop_signal = &stop;
  run_options(data, part, 5, 0, &opts);
  EXPECT_STATUS(ptyc_run_job(&opts, &flags, &result), PTYC_E_INTERRUPTED);
  EXPECT(strstr(ptyc_last_error(), "SIGTERM after iteration 1 of 5") != NULL);
  EXPECT(result.iterations_done == 1 && result.checkpoint_iteration == 1);

  /* Resumed (stopped once more on the way), then to the end. */
  flags.resume = 1;
  EXPECT_STATUS(ptyc_run_job(&opts, &flags, &result), PTYC_E_INTERRUPTED);
  EXPECT(result.iterations_done == 2);
  stop = 0;
  EXPECT_OK(ptyc_run_job(&opts, &flags, &result));
  EXPECT(result.resumed_at == 2 && result.iterations_done == 5);

  ptyc_recon *a = read_recon(full, "recon.h5"), *b = read_recon(part, "recon.h5");
  EXPECT(same_model(a, b));
  EXPECT(b && b->n_iterations == 5 && memcmp(a->loss, b->loss, 5 * sizeof(double)) == 0);
  ptyc_recon_free(a);
  ptyc_recon_free(b);
}

static void test_nan_keeps_last_good(const char *data) {
  char dir[512];
  ptyc_options opts;
  ptyc_run_result result;
  ptyc_run_flags flags = {.quiet = 1};

  /* The object turns NaN after iteration 5; checkpoints every 2: the cost of
   * iteration 6 is NaN, and the checkpoint of iteration 4 stays. */
  snprintf(dir, sizeof dir, "%s/nan_cost", tmp_dir);
  run_options(data, dir, 10, 2, &opts);
  flags.fault_nan_after = 5;
  EXPECT_STATUS(ptyc_run_job(&opts, &flags, &result), PTYC_E_NUMERIC);
  EXPECT(strstr(ptyc_last_error(), "iteration 6") != NULL);
  EXPECT(strstr(ptyc_last_error(), "(after iteration 4) is kept") != NULL);
  ptyc_recon *ck = read_recon(dir, "checkpoint.h5");
  EXPECT(ck && ck->n_iterations == 4);
  ptyc_recon_free(ck);

  /* The object turns NaN in iteration 4, a checkpoint is due after it: it is not
   * written, the one of iteration 2 stays, and the run stops there. */
  snprintf(dir, sizeof dir, "%s/nan_model", tmp_dir);
  run_options(data, dir, 10, 2, &opts);
  flags.fault_nan_after = 4;
  EXPECT_STATUS(ptyc_run_job(&opts, &flags, &result), PTYC_E_NUMERIC);
  EXPECT(strstr(ptyc_last_error(), "object became non-finite") != NULL);
  EXPECT(strstr(ptyc_last_error(), "iteration 4") != NULL);
  ck = read_recon(dir, "checkpoint.h5");
  EXPECT(ck && ck->n_iterations == 2);
  ptyc_recon_free(ck);
  EXPECT(count_entries(dir, "tmp") == 0);

  /* The kept checkpoint resumes: the fault is gone, so the run now completes. */
  flags.fault_nan_after = 0;
  flags.resume = 1;
  EXPECT_OK(ptyc_run_job(&opts, &flags, &result));
  EXPECT(result.resumed_at == 2);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ptyc_test_checkpoint_%ld", (long)getpid());
  mkdir(tmp_dir, 0775);
  test_round_trip();
  test_failed_write_keeps_old();
  test_killed_writer();
  test_refusal();

  const char *data_dir = getenv("PTYC_TEST_DATA");
  char data[1024];
  snprintf(data, sizeof data, "%s/small.h5", data_dir ? data_dir : "data");
  if (access(data, R_OK) == 0) {
    test_interrupt_and_resume(data);
    test_nan_keeps_last_good(data);
  } else {
    printf("no %s: run-driver cases skipped\n", data);
  }
  remove_tree(tmp_dir);
  return TEST_RESULT();
}
