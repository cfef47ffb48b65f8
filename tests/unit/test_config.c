/* Job-file tests: defaults, every kind of error and its message, --set overrides,
 * relative paths, the round trip through ptyc_options_to_text(), and the shipped
 * shipped configs/ files. Job files are written into a fresh temporary directory. */
#define _XOPEN_SOURCE 700 /* mkdtemp, realpath, getcwd, chdir */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/options.h"
#include "test_util.h"

/* The last error contains `text`. */
#define EXPECT_ERROR_HAS(text)                                                        \
  do {                                                                                \
    if (!strstr(ptyc_last_error(), (text))) {                                         \
      fprintf(stderr, "%s:%d: FAILED: last error \"%s\" does not contain \"%s\"\n",   \
              __FILE__, __LINE__, ptyc_last_error(), (text));                         \
      pt_test_failures++;                                                             \
    }                                                                                 \
  } while (0)

#define EXPECT_STREQ(a, b)                                                            \
  do {                                                                                \
    const char *expect_a_ = (a), *expect_b_ = (b);                                    \
    if (strcmp(expect_a_, expect_b_) != 0) {                                          \
      fprintf(stderr, "%s:%d: FAILED: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,       \
              __LINE__, #a, #b, expect_a_, expect_b_);                                \
      pt_test_failures++;                                                             \
    }                                                                                 \
  } while (0)

/* The temporary directory and the job files written into it. */
typedef struct scratch {
  char dir[256];
  char paths[8][320];
  int n_paths;
} scratch;

/* Writes `text` to dir/name and returns the file's path (kept in `sc`). */
static const char *write_file(scratch *sc, const char *name, const char *text) {
  char path[320];
  snprintf(path, sizeof path, "%s/%s", sc->dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
  for (int i = 0; i < sc->n_paths; i++)
    if (strcmp(sc->paths[i], path) == 0)
      return sc->paths[i];
  if (sc->n_paths == 8) {
    fprintf(stderr, "write_file: too many scratch files\n");
    exit(1);
  }
  memcpy(sc->paths[sc->n_paths], path, sizeof path);
  return sc->paths[sc->n_paths++];
}

/* A job file holding only data.path plus `rest`. */
static const char *write_job(scratch *sc, const char *rest) {
  char text[2048];
  snprintf(text, sizeof text, "data = { path = \"scan.h5\"; };\n%s", rest);
  return write_file(sc, "job.cfg", text);
}

/* Loading `text` fails with PTYC_E_CONFIG and a message containing `want`. */
#define EXPECT_JOB_FAILS(sc, text, want)                                              \
  do {                                                                                \
    ptyc_options o_;                                                                  \
    ptyc_clear_error();                                                               \
    EXPECT_STATUS(ptyc_options_load(write_file((sc), "job.cfg", (text)), NULL, 0, &o_), \
                  PTYC_E_CONFIG);                                                     \
    EXPECT_ERROR_HAS(want);                                                           \
  } while (0)

/* Loading a valid job with one override fails with a message containing `want`. */
#define EXPECT_SET_FAILS(sc, set, want)                                               \
  do {                                                                                \
    ptyc_options o_;                                                                  \
    const char *set_[] = {(set)};                                                     \
    ptyc_clear_error();                                                               \
    EXPECT_STATUS(ptyc_options_load(write_job((sc), ""), set_, 1, &o_), PTYC_E_CONFIG); \
    EXPECT_ERROR_HAS(want);                                                           \
  } while (0)

static int same_param(const ptyc_autodiff_param_options *a, const ptyc_autodiff_param_options *b) {
  return a->optimizer == b->optimizer && a->step == b->step && a->start == b->start &&
         a->stop == b->stop;
}

static int same_autodiff(const ptyc_autodiff_options *a, const ptyc_autodiff_options *b) {
  return a->loss == b->loss && a->optimizer == b->optimizer && a->momentum == b->momentum &&
         a->nesterov == b->nesterov && a->adam_beta1 == b->adam_beta1 &&
         a->adam_beta2 == b->adam_beta2 && a->rmsprop_alpha == b->rmsprop_alpha &&
         a->epsilon == b->epsilon && a->illumination_mix == b->illumination_mix &&
         a->l1_weight == b->l1_weight && a->tv_weight == b->tv_weight &&
         a->positions_optimizable == b->positions_optimizable &&
         same_param(&a->object, &b->object) && same_param(&a->probe, &b->probe) &&
         same_param(&a->positions, &b->positions);
}

static int same_options(const ptyc_options *a, const ptyc_options *b) {
  return strcmp(a->data.path, b->data.path) == 0 &&
         strcmp(a->data.format, b->data.format) == 0 &&
         strcmp(a->reconstructor.engine, b->reconstructor.engine) == 0 &&
         a->reconstructor.iterations == b->reconstructor.iterations &&
         a->reconstructor.batch_size == b->reconstructor.batch_size &&
         a->reconstructor.device == b->reconstructor.device &&
         a->reconstructor.seed == b->reconstructor.seed &&
         a->reconstructor.batch_order == b->reconstructor.batch_order &&
         a->reconstructor.memory_fraction == b->reconstructor.memory_fraction &&
         a->reconstructor.threads == b->reconstructor.threads &&
         a->object.optimizable == b->object.optimizable &&
         a->object.padding_px == b->object.padding_px && a->probe.modes == b->probe.modes &&
         a->probe.optimizable == b->probe.optimizable &&
         a->probe.orthogonalize == b->probe.orthogonalize &&
         a->probe.extra_mode_power == b->probe.extra_mode_power &&
         a->lsqml.noise_model == b->lsqml.noise_model &&
         a->lsqml.object_damping == b->lsqml.object_damping &&
         a->lsqml.probe_damping == b->lsqml.probe_damping &&
         a->lsqml.step_regularization == b->lsqml.step_regularization &&
         a->lsqml.max_step == b->lsqml.max_step &&
         strcmp(a->output.directory, b->output.directory) == 0 &&
         a->output.every == b->output.every && a->output.png == b->output.png &&
         same_autodiff(&a->autodiff, &b->autodiff);
}

/* `path` ends with `tail`. */
static int ends_with(const char *path, const char *tail) {
  size_t n = strlen(path), m = strlen(tail);
  return n >= m && strcmp(path + n - m, tail) == 0;
}

static void test_defaults(void) {
  ptyc_options o;
  ptyc_options_default(&o);
  EXPECT_STREQ(o.data.path, "");
  EXPECT_STREQ(o.data.format, "auto");
  EXPECT_STREQ(o.reconstructor.engine, "lsqml");
  EXPECT(o.reconstructor.iterations == 50);
  EXPECT(o.reconstructor.batch_size == 64);
  EXPECT(o.reconstructor.device == PTYC_DEVICE_AUTO);
  EXPECT(o.reconstructor.seed == 1);
  EXPECT(o.reconstructor.batch_order == PTYC_BATCH_RANDOM);
  EXPECT(o.reconstructor.memory_fraction == 0.9);
  EXPECT(o.reconstructor.threads == 0);
  EXPECT(o.object.optimizable == 1);
  EXPECT(o.object.padding_px == 8);
  EXPECT(o.probe.modes == 1);
  EXPECT(o.probe.optimizable == 1);
  EXPECT(o.probe.orthogonalize == 1);
  EXPECT(o.probe.extra_mode_power == 0.1);
  EXPECT(o.lsqml.noise_model == PTYC_NOISE_GAUSSIAN);
  EXPECT(o.lsqml.object_damping == 0.1);
  EXPECT(o.lsqml.probe_damping == 0.1);
  EXPECT(o.lsqml.step_regularization == 0.01);
  EXPECT(o.lsqml.max_step == 2.0);
  EXPECT_STREQ(o.output.directory, "ptyc_out");
  EXPECT(o.output.every == 0);
  EXPECT(o.output.png == 1);
}

/* A job with only data.path takes every other default; relative paths resolve
 * against the job file's directory. */
static void test_minimal_job_and_paths(scratch *sc) {
  ptyc_options o, want;
  char expect[1200];
  REQUIRE_OK(ptyc_options_load(write_job(sc, ""), NULL, 0, &o));
  ptyc_options_default(&want);
  snprintf(want.data.path, sizeof want.data.path, "%s/scan.h5", sc->dir);
  snprintf(want.output.directory, sizeof want.output.directory, "%s/ptyc_out", sc->dir);
  EXPECT(same_options(&o, &want));
  EXPECT_STREQ(o.data.path, want.data.path);
  EXPECT_STREQ(o.output.directory, want.output.directory);

  /* "." components go, ".." stays, absolute paths are kept */
  const char *job = write_file(sc, "job.cfg",
                               "data = { path = \"./sub/../x.h5\"; };\n"
                               "output = { directory = \"/abs/out\"; };\n");
  REQUIRE_OK(ptyc_options_load(job, NULL, 0, &o));
  snprintf(expect, sizeof expect, "%s/sub/../x.h5", sc->dir);
  EXPECT_STREQ(o.data.path, expect);
  EXPECT_STREQ(o.output.directory, "/abs/out");

  /* a job path relative to the current directory resolves to absolute paths */
  char cwd[1024], here[1024];
  REQUIRE_OK(getcwd(cwd, sizeof cwd) ? PTYC_OK : PTYC_E_IO);
  REQUIRE_OK(chdir(sc->dir) == 0 ? PTYC_OK : PTYC_E_IO);
  REQUIRE_OK(getcwd(here, sizeof here) ? PTYC_OK : PTYC_E_IO);
  write_job(sc, "");
  EXPECT_OK(ptyc_options_load("job.cfg", NULL, 0, &o));
  snprintf(expect, sizeof expect, "%s/scan.h5", here);
  EXPECT_STREQ(o.data.path, expect);
  EXPECT_OK(ptyc_options_load("./job.cfg", NULL, 0, &o));
  EXPECT_STREQ(o.data.path, expect);

  /* a relative path from --set is relative to the current directory */
  const char *set[] = {"data.path=other.h5", "output.directory=res"};
  EXPECT_OK(ptyc_options_load(sc->paths[0], set, 2, &o));
  snprintf(expect, sizeof expect, "%s/other.h5", here);
  EXPECT_STREQ(o.data.path, expect);
  snprintf(expect, sizeof expect, "%s/res", here);
  EXPECT_STREQ(o.output.directory, expect);
  REQUIRE_OK(chdir(cwd) == 0 ? PTYC_OK : PTYC_E_IO);
}

static void test_values(scratch *sc) {
  ptyc_options o;
  const char *job = write_job(sc,
                              "reconstructor = {\n"
                              "  engine = \"autodiff\";\n"
                              "  iterations = 7;\n"
                              "  batch_size = \"auto\";\n"
                              "  device = \"cuda\";\n"
                              "  seed = 12345678901234L;\n"
                              "  batch_order = \"compact\";\n"
                              "  memory_fraction = 1;\n" /* an integer for a float key */
                              "  threads = 3;\n"
                              "};\n"
                              "object = { optimizable = false; padding_px = 0; };\n"
                              "probe = { modes = 16; orthogonalize = false; extra_mode_power = 0; };\n"
                              "lsqml = { noise_model = \"poisson\"; max_step = 2.5e-1; };\n"
                              "output = { every = 5; png = false; };\n");
  REQUIRE_OK(ptyc_options_load(job, NULL, 0, &o));
  EXPECT_STREQ(o.reconstructor.engine, "autodiff");
  EXPECT(o.reconstructor.iterations == 7);
  EXPECT(o.reconstructor.batch_size == 0);
  EXPECT(o.reconstructor.device == PTYC_DEVICE_CUDA);
  EXPECT(o.reconstructor.seed == 12345678901234ULL);
  EXPECT(o.reconstructor.batch_order == PTYC_BATCH_COMPACT);
  EXPECT(o.reconstructor.memory_fraction == 1.0);
  EXPECT(o.reconstructor.threads == 3);
  EXPECT(o.object.optimizable == 0);
  EXPECT(o.object.padding_px == 0);
  EXPECT(o.probe.modes == 16);
  EXPECT(o.probe.optimizable == 1);
  EXPECT(o.probe.orthogonalize == 0);
  EXPECT(o.probe.extra_mode_power == 0.0);
  EXPECT(o.lsqml.noise_model == PTYC_NOISE_POISSON);
  EXPECT(o.lsqml.max_step == 0.25);
  EXPECT(o.output.every == 5);
  EXPECT(o.output.png == 0);

  /* @include is relative to the job file; errors name the included file */
  write_file(sc, "inc.cfg", "probe = { modes = 3; };\n");
  REQUIRE_OK(ptyc_options_load(write_job(sc, "@include \"inc.cfg\"\n"), NULL, 0, &o));
  EXPECT(o.probe.modes == 3);
  write_file(sc, "inc.cfg", "\nprobe = { modes = 0; };\n");
  EXPECT_STATUS(ptyc_options_load(write_job(sc, "@include \"inc.cfg\"\n"), NULL, 0, &o),
                PTYC_E_CONFIG);
  EXPECT_ERROR_HAS("inc.cfg:2: probe.modes: expected an integer from 1 to 16, got 0");
}

static void test_file_errors(scratch *sc) {
  ptyc_options o;
  char path[400];

  snprintf(path, sizeof path, "%s/nope.cfg", sc->dir);
  EXPECT_STATUS(ptyc_options_load(path, NULL, 0, &o), PTYC_E_CONFIG);
  EXPECT_ERROR_HAS("nope.cfg: cannot read: No such file or directory");
  EXPECT_STATUS(ptyc_options_load(sc->dir, NULL, 0, &o), PTYC_E_CONFIG);
  EXPECT_ERROR_HAS(": cannot read: Is a directory");

  EXPECT_JOB_FAILS(sc, "data = {\n  path = \"a.h5\";\n  format = ;\n};\n",
                   "job.cfg:3: syntax error");
  EXPECT(strchr(ptyc_last_error(), '\n') == NULL);
  EXPECT_JOB_FAILS(sc, "data = {\n  path = \"a.h5\";\n  path = \"b.h5\";\n};\n",
                   "job.cfg:3: duplicate setting name");

  /* unknown keys and groups, with and without a suggestion */
  EXPECT_JOB_FAILS(sc,
                   "data = { path = \"a.h5\"; };\n\nreconstructor = {\n"
                   "  iteratons = 10;\n};\n",
                   "job.cfg:4: unknown key 'reconstructor.iteratons'; "
                   "did you mean 'reconstructor.iterations'?");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nobject = { modes = 2; };\n",
                   "job.cfg:2: unknown key 'object.modes'; did you mean 'probe.modes'?");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nprobe = { colour = 2; };\n",
                   "job.cfg:2: unknown key 'probe.colour'");
  EXPECT(strstr(ptyc_last_error(), "did you mean") == NULL);
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstrutor = { iterations = 5; };\n",
                   "job.cfg:2: unknown group 'reconstrutor'; did you mean 'reconstructor'?");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nsolver = { };\n",
                   "job.cfg:2: unknown group 'solver'");
  EXPECT(strstr(ptyc_last_error(), "did you mean") == NULL);

  /* wrong types */
  EXPECT_JOB_FAILS(sc,
                   "data = { path = \"a.h5\"; };\n\n\nreconstructor = {\n"
                   "  iterations = \"ten\";\n};\n",
                   "job.cfg:5: reconstructor.iterations: expected an integer >= 1, got a string");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { iterations = 10.0; };\n",
                   "job.cfg:2: reconstructor.iterations: expected an integer >= 1, got a float");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nobject = { optimizable = 1; };\n",
                   "job.cfg:2: object.optimizable: expected true or false, got an integer");
  EXPECT_JOB_FAILS(sc, "data = { path = 5; };\n",
                   "job.cfg:1: data.path: expected a non-empty string (a path), got an integer");
  EXPECT_JOB_FAILS(sc,
                   "data = { path = \"a.h5\"; };\n\n\n\n\n\nlsqml = { noise_model = \"gauss\"; };\n",
                   "job.cfg:7: lsqml.noise_model: expected one of \"gaussian\", \"poisson\", "
                   "got \"gauss\"");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { engine = \"ePIE\"; };\n",
                   "job.cfg:2: reconstructor.engine: expected one of \"lsqml\", \"autodiff\", "
                   "got \"ePIE\"");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { batch_size = \"big\"; };\n",
                   "job.cfg:2: reconstructor.batch_size: expected an integer >= 1 or \"auto\", "
                   "got \"big\"");

  /* out of range */
  EXPECT_JOB_FAILS(sc,
                   "data = { path = \"a.h5\"; };\n\n\nreconstructor = {\n  iterations = 0;\n};\n",
                   "job.cfg:5: reconstructor.iterations: expected an integer >= 1, got 0");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nprobe = { modes = 17; };\n",
                   "job.cfg:2: probe.modes: expected an integer from 1 to 16, got 17");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { memory_fraction = 0; };\n",
                   "job.cfg:2: reconstructor.memory_fraction: expected a number > 0 and <= 1, "
                   "got 0");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { memory_fraction = 1.5; };\n",
                   "got 1.5");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nlsqml = { object_damping = 10.5; };\n",
                   "job.cfg:2: lsqml.object_damping: expected a number > 0 and <= 10, got 10.5");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nlsqml = { step_regularization = -1e-3; };\n",
                   "expected a number >= 0, got -0.001");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nreconstructor = { seed = -1; };\n",
                   "job.cfg:2: reconstructor.seed: expected an integer >= 0, got -1");
  EXPECT_JOB_FAILS(sc, "data = { path = \"\"; };\n",
                   "job.cfg:1: data.path: expected a non-empty string (a path), got \"\"");

  /* data.path is required */
  EXPECT_JOB_FAILS(sc, "reconstructor = { iterations = 5; };\n",
                   "job.cfg: data.path is required (the dataset file)");
  EXPECT_JOB_FAILS(sc, "", "job.cfg: data.path is required (the dataset file)");

  /* the shape of the file: groups of single values only */
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\niterations = 5;\n",
                   "job.cfg:2: 'iterations' must be inside a group; "
                   "did you mean 'reconstructor.iterations'?");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nfoo = 5;\n",
                   "job.cfg:2: 'foo' must be inside a group");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nprobe = ( 1, 2 );\n",
                   "job.cfg:2: 'probe' must be a group");
  EXPECT_JOB_FAILS(sc,
                   "data = { path = \"a.h5\"; };\nreconstructor = {\n"
                   "  iterations = { n = 5; };\n};\n",
                   "job.cfg:3: reconstructor.iterations: expected an integer >= 1, got a group");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nprobe = {\n  modes = [1, 2];\n};\n",
                   "job.cfg:3: probe.modes: expected an integer from 1 to 16, got an array");
  EXPECT_JOB_FAILS(sc, "data = { path = \"a.h5\"; };\nprobe = {\n  modes = (1, \"x\");\n};\n",
                   "job.cfg:3: probe.modes: expected an integer from 1 to 16, got a list");
  EXPECT_JOB_FAILS(sc, "data = {\n  path = \"a.h5\";\n  inner = { x = 1; };\n};\n",
                   "job.cfg:3: unknown key 'data.inner'");

  /* a failed load leaves the options untouched */
  ptyc_options_default(&o);
  o.probe.modes = 3;
  write_file(sc, "job.cfg", "data = { path = \"a.h5\"; };\nprobe = { modes = 0; };\n");
  EXPECT_STATUS(ptyc_options_load(sc->paths[0], NULL, 0, &o), PTYC_E_CONFIG);
  EXPECT(o.probe.modes == 3);
}

static void test_overrides(scratch *sc) {
  ptyc_options o;
  const char *set[] = {
      "reconstructor.iterations=100",   "lsqml.noise_model=poisson",
      "probe.optimizable=false",         "lsqml.max_step=2",
      "lsqml.object_damping = 0.25",     "reconstructor.device=\"cpu\"",
      "reconstructor.batch_size='auto'", "reconstructor.seed=9000000000",
      "probe.modes=3",                   "probe.modes=4", /* the last one wins */
  };
  REQUIRE_OK(ptyc_options_load(write_job(sc, "reconstructor = { iterations = 5; };\n"), set,
                               (int)(sizeof set / sizeof set[0]), &o));
  EXPECT(o.reconstructor.iterations == 100);
  EXPECT(o.lsqml.noise_model == PTYC_NOISE_POISSON);
  EXPECT(o.probe.optimizable == 0);
  EXPECT(o.lsqml.max_step == 2.0);
  EXPECT(o.lsqml.object_damping == 0.25);
  EXPECT(o.reconstructor.device == PTYC_DEVICE_CPU);
  EXPECT(o.reconstructor.batch_size == 0);
  EXPECT(o.reconstructor.seed == 9000000000ULL);
  EXPECT(o.probe.modes == 4);

  EXPECT_SET_FAILS(sc, "reconstructor.iterations=abc",
                   "--set reconstructor.iterations=abc: reconstructor.iterations: "
                   "expected an integer >= 1, got a string");
  EXPECT_SET_FAILS(sc, "reconstructor.iterations=2.5",
                   "--set reconstructor.iterations=2.5: reconstructor.iterations: "
                   "expected an integer >= 1, got a float");
  EXPECT_SET_FAILS(sc, "reconstructor.iterations=0", "expected an integer >= 1, got 0");
  EXPECT_SET_FAILS(sc, "reconstructor.iterations=\"5\"", "got a string");
  EXPECT_SET_FAILS(sc, "reconstructor.iterations=3000000000",
                   "reconstructor.iterations: expected at most 2147483647, got 3000000000");
  EXPECT_SET_FAILS(sc, "reconstructor.seed=99999999999999999999",
                   "expected an integer >= 0, got an integer beyond 64 bits");
  EXPECT_SET_FAILS(sc, "lsqml.noise_model=gauss",
                   "--set lsqml.noise_model=gauss: lsqml.noise_model: expected one of "
                   "\"gaussian\", \"poisson\", got \"gauss\"");
  EXPECT_SET_FAILS(sc, "output.png=yes", "output.png: expected true or false, got a string");
  EXPECT_SET_FAILS(sc, "lsqml.max_step=inf", "lsqml.max_step: expected a number > 0, got a string");
  EXPECT_SET_FAILS(sc, "data.path=", "data.path: expected a non-empty string (a path), got \"\"");
  EXPECT_SET_FAILS(sc, "reconstructor.iteratons=5",
                   "--set reconstructor.iteratons=5: unknown key 'reconstructor.iteratons'; "
                   "did you mean 'reconstructor.iterations'?");
  EXPECT_SET_FAILS(sc, "iterations=5",
                   "unknown key 'iterations'; did you mean 'reconstructor.iterations'?");
  EXPECT_SET_FAILS(sc, "lsqml.noise=poisson",
                   "unknown key 'lsqml.noise'; did you mean 'lsqml.noise_model'?");
  EXPECT_SET_FAILS(sc, "probe.banana=5", "--set probe.banana=5: unknown key 'probe.banana'");
  EXPECT(strstr(ptyc_last_error(), "did you mean") == NULL);
  EXPECT_SET_FAILS(sc, "reconstructor.iterations", "--set reconstructor.iterations: expected "
                                                   "group.key=value");

  /* overrides work without a job file too */
  const char *only[] = {"data.path=/d/x.h5", "output.directory=/o"};
  EXPECT_OK(ptyc_options_load(NULL, only, 2, &o));
  EXPECT_STREQ(o.data.path, "/d/x.h5");
  EXPECT_STATUS(ptyc_options_load(NULL, NULL, 0, &o), PTYC_E_CONFIG);
  EXPECT_ERROR_HAS("data.path is required");
}

/* to_text writes every key; loading that text gives the same options back. */
static void expect_round_trip(scratch *sc, const ptyc_options *o) {
  char *text = NULL;
  REQUIRE_OK(ptyc_options_to_text(o, &text));
  ptyc_options back;
  const char *path = write_file(sc, "roundtrip.cfg", text);
  EXPECT_OK(ptyc_options_load(path, NULL, 0, &back));
  if (!same_options(o, &back)) {
    fprintf(stderr, "%s:%d: FAILED: round trip changed the options; text was:\n%s\n",
            __FILE__, __LINE__, text);
    pt_test_failures++;
  }
  free(text);
}

static void test_round_trip(scratch *sc) {
  ptyc_options o;
  REQUIRE_OK(ptyc_options_load(write_job(sc, ""), NULL, 0, &o));
  expect_round_trip(sc, &o);

  char *text = NULL;
  REQUIRE_OK(ptyc_options_to_text(&o, &text));
  const char *every_key[] = {"data = {", "path =", "format =", "reconstructor = {",
                             "engine =", "iterations =", "batch_size =", "device =",
                             "seed =", "batch_order =", "memory_fraction =", "threads =",
                             "object = {", "optimizable =", "padding_px =", "probe = {",
                             "modes =", "orthogonalize =", "extra_mode_power =",
                             "lsqml = {", "noise_model =", "object_damping =",
                             "probe_damping =", "step_regularization =", "max_step =",
                             "output = {", "directory =", "every =", "png ="};
  for (size_t i = 0; i < sizeof every_key / sizeof every_key[0]; i++)
    if (!strstr(text, every_key[i])) {
      fprintf(stderr, "%s:%d: FAILED: to_text lacks \"%s\"\n", __FILE__, __LINE__,
              every_key[i]);
      pt_test_failures++;
    }
  free(text);

  /* awkward values: no-default enums, large seeds, floats that need all 17 digits,
   * whole-number floats, "auto", and quotes and backslashes in paths */
  o.reconstructor.batch_size = 0;
  o.reconstructor.device = PTYC_DEVICE_CUDA;
  o.reconstructor.batch_order = PTYC_BATCH_COMPACT;
  o.reconstructor.seed = 9223372036854775807ULL;
  o.reconstructor.memory_fraction = 1.0 / 3.0;
  o.reconstructor.threads = 12;
  o.object.optimizable = 0;
  o.probe.modes = 5;
  o.probe.extra_mode_power = 0.0;
  o.lsqml.noise_model = PTYC_NOISE_POISSON;
  o.lsqml.max_step = 3.0;
  o.lsqml.step_regularization = 1e-300;
  o.output.every = 10;
  o.output.png = 0;
  snprintf(o.reconstructor.engine, sizeof o.reconstructor.engine, "autodiff");
  snprintf(o.data.path, sizeof o.data.path, "%s/we\"ird\\name\t.h5", sc->dir);
  expect_round_trip(sc, &o);

  o.reconstructor.seed = 3000000000ULL;
  expect_round_trip(sc, &o);

  o.reconstructor.device = (ptyc_device_kind)7;
  EXPECT_STATUS(ptyc_options_to_text(&o, &text), PTYC_E_ARG);
}

/* The configs shipped in configs/ load; default.cfg gives the defaults. */
static void test_shipped_configs(void) {
  char repo[1024];
  const char *data = getenv("PTYC_TEST_DATA");
  if (data) {
    snprintf(repo, sizeof repo, "%s/..", data);
  } else {
    /* __FILE__ is <repo>/tests/unit/test_config.c in a CMake build */
    snprintf(repo, sizeof repo, "%s", __FILE__);
    for (int up = 0; up < 3; up++) {
      char *slash = strrchr(repo, '/');
      if (slash)
        *slash = '\0';
      else
        snprintf(repo, sizeof repo, ".");
    }
  }
  char path[1200];
  ptyc_options o, want;

  snprintf(path, sizeof path, "%s/configs/default.cfg", repo);
  REQUIRE_OK(ptyc_options_load(path, NULL, 0, &o));
  ptyc_options_default(&want);
  EXPECT(ends_with(o.data.path, "/configs/../data/small.h5"));
  EXPECT(ends_with(o.output.directory, "/configs/ptyc_out"));
  memcpy(want.data.path, o.data.path, sizeof want.data.path);
  memcpy(want.output.directory, o.output.directory, sizeof want.output.directory);
  EXPECT(same_options(&o, &want)); /* default.cfg states the true defaults */

  const char *small[] = {"small_cpu.cfg", "small_poisson.cfg"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/configs/%s", repo, small[i]);
    REQUIRE_OK(ptyc_options_load(path, NULL, 0, &o));
    EXPECT(ends_with(o.data.path, "/configs/../data/small.h5"));
    EXPECT_STREQ(o.reconstructor.engine, "lsqml");
    EXPECT(o.reconstructor.iterations == 50);
    EXPECT(o.reconstructor.batch_size == 48);
    EXPECT(o.reconstructor.device == PTYC_DEVICE_AUTO);
    EXPECT(o.probe.modes == 2);
    EXPECT(o.lsqml.noise_model == (i == 0 ? PTYC_NOISE_GAUSSIAN : PTYC_NOISE_POISSON));
    EXPECT(strstr(o.output.directory, "/configs/../out/small") != NULL);
  }

  snprintf(path, sizeof path, "%s/configs/small_autodiff.cfg", repo);
  REQUIRE_OK(ptyc_options_load(path, NULL, 0, &o));
  EXPECT_STREQ(o.reconstructor.engine, "autodiff");
  EXPECT(o.reconstructor.iterations == 40 && o.reconstructor.batch_size == 48);
  EXPECT(o.probe.modes == 2);
  EXPECT(o.autodiff.loss == PTYC_LOSS_AMPLITUDE && o.autodiff.optimizer == PTYC_OPTIMIZER_SGD);

  snprintf(path, sizeof path, "%s/configs/medium_gpu.cfg", repo);
  REQUIRE_OK(ptyc_options_load(path, NULL, 0, &o));
  EXPECT(ends_with(o.data.path, "/configs/../data/medium.h5"));
  EXPECT(o.reconstructor.iterations == 30);
  EXPECT(o.reconstructor.batch_size == 96);
  EXPECT(o.reconstructor.device == PTYC_DEVICE_CUDA);
  EXPECT(o.probe.modes == 4);
  EXPECT(o.lsqml.noise_model == PTYC_NOISE_POISSON);
}

int main(void) {
  scratch sc = {.n_paths = 0};
  const char *tmp = getenv("TMPDIR");
  snprintf(sc.dir, sizeof sc.dir, "%s/ptyc_config_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  char *canonical = NULL;
  if (!mkdtemp(sc.dir) || !(canonical = realpath(sc.dir, NULL))) {
    perror("mkdtemp");
    return 1;
  }
  /* the canonical name, as the loader writes resolved paths */
  snprintf(sc.dir, sizeof sc.dir, "%s", canonical);
  free(canonical);
  write_job(&sc, ""); /* sc.paths[0] is always job.cfg */

  test_defaults();
  test_minimal_job_and_paths(&sc);
  test_values(&sc);
  test_file_errors(&sc);
  test_overrides(&sc);
  test_round_trip(&sc);
  test_shipped_configs();

  for (int i = 0; i < sc.n_paths; i++)
    remove(sc.paths[i]);
  rmdir(sc.dir);
  return TEST_RESULT();
}
