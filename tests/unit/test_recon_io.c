/* recon.h5 round trip, atomic writes, and the PNG previews (src/data/recon_h5.c,
 * src/output/png.c). */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_config.h"
#include "ptyc/dataset.h"
#include "ptyc/recon_io.h"
#include "test_util.h"

/* Number of entries of `dir` whose name contains `part`. */
static int count_entries(const char *dir, const char *part) {
  int count = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    count += strstr(e->d_name, part) != NULL;
  if (d)
    closedir(d);
  return count;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[1024];
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    remove(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

/* ---- recon.h5 ---------------------------------------------------------------------- */

enum { H = 7, W = 9, K = 2, M = 4, N = 3, ITERS = 5 };

typedef struct recon_arrays {
  ptyc_c32 object[H * W], probe[K * M * M];
  double positions[N * 2], loss[ITERS], times[ITERS];
} recon_arrays;

/* A recon pointing at `a`, filled with values that depend on `salt`. */
static ptyc_recon make_recon(recon_arrays *a, float salt, char *config) {
  for (int i = 0; i < H * W; i++)
    a->object[i] = pt_c32(salt + 0.5f * i, -0.25f * i);
  for (int i = 0; i < K * M * M; i++)
    a->probe[i] = pt_c32(1.0f / (i + 1), salt * i);
  for (int i = 0; i < N * 2; i++)
    a->positions[i] = 1.5 * i + salt;
  for (int i = 0; i < ITERS; i++) {
    a->loss[i] = exp(-0.5 * i) + salt;
    a->times[i] = 0.01 * (i + 1);
  }
  ptyc_recon r;
  memset(&r, 0, sizeof r);
  r.object = a->object;
  r.obj_h = H;
  r.obj_w = W;
  r.probe = a->probe;
  r.n_modes = K;
  r.m = M;
  r.positions_px = a->positions;
  r.n_positions = N;
  r.loss = a->loss;
  r.iteration_time_s = a->times;
  r.n_iterations = ITERS;
  r.iterations = 100;
  snprintf(r.engine, sizeof r.engine, "lsqml");
  r.config_text = config;
  r.object_pixel_size_m = 1.25e-8;
  return r;
}

static void test_recon_round_trip(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/recon.h5", dir);

  /* A config longer than HDF5's 64 KiB limit for compact attributes. */
  size_t config_len = 100000;
  char *config = malloc(config_len + 1);
  for (size_t i = 0; i < config_len; i++)
    config[i] = (i % 61 == 60) ? '\n' : (char)('a' + i % 26);
  config[config_len] = '\0';

  char small_config[] = "reconstructor = { engine = \"lsqml\"; };\n";
  recon_arrays first, second;
  ptyc_recon r1 = make_recon(&first, 0.0f, small_config);
  ptyc_recon r2 = make_recon(&second, 3.0f, config);
  EXPECT_OK(ptyc_recon_write(path, &r1));
  /* Overwriting goes through a temporary too; the second write wins. */
  EXPECT_OK(ptyc_recon_write(path, &r2));
  EXPECT(count_entries(dir, ".tmp.") == 0);

  ptyc_recon *back = NULL;
  EXPECT_OK(ptyc_recon_read(path, &back));
  if (back) {
    EXPECT(back->obj_h == H && back->obj_w == W && back->n_modes == K && back->m == M);
    EXPECT(back->n_positions == N && back->n_iterations == ITERS && back->iterations == 100);
    EXPECT(memcmp(back->object, second.object, sizeof second.object) == 0);
    EXPECT(memcmp(back->probe, second.probe, sizeof second.probe) == 0);
    EXPECT(memcmp(back->positions_px, second.positions, sizeof second.positions) == 0);
    EXPECT(memcmp(back->loss, second.loss, sizeof second.loss) == 0);
    EXPECT(memcmp(back->iteration_time_s, second.times, sizeof second.times) == 0);
    EXPECT(strcmp(back->engine, "lsqml") == 0);
    EXPECT(back->config_text && strcmp(back->config_text, config) == 0);
    EXPECT_NEAR(back->object_pixel_size_m, 1.25e-8, 0.0);
    ptyc_recon_free(back);
  }

  /* A snapshot before the first iteration: empty curves. */
  r1.n_iterations = 0;
  r1.loss = NULL;
  r1.iteration_time_s = NULL;
  r1.config_text = NULL;
  EXPECT_OK(ptyc_recon_write(path, &r1));
  back = NULL;
  EXPECT_OK(ptyc_recon_read(path, &back));
  if (back) {
    EXPECT(back->n_iterations == 0 && back->loss == NULL);
    EXPECT(back->config_text && back->config_text[0] == '\0');
    ptyc_recon_free(back);
  }

  /* Errors: a missing directory, nothing to write, and a file that is not a recon. */
  char bad[600];
  snprintf(bad, sizeof bad, "%s/no_such_dir/recon.h5", dir);
  EXPECT_STATUS(ptyc_recon_write(bad, &r2), PTYC_E_IO);
  EXPECT(strstr(ptyc_last_error(), "no_such_dir") != NULL);
  ptyc_recon empty;
  memset(&empty, 0, sizeof empty);
  EXPECT_STATUS(ptyc_recon_write(path, &empty), PTYC_E_ARG);
  EXPECT(count_entries(dir, ".tmp.") == 0);

  float patterns[1 * 2 * 2] = {1, 2, 3, 4};
  double positions[2] = {0, 0};
  ptyc_dataset data;
  memset(&data, 0, sizeof data);
  data.n_patterns = 1;
  data.m = 2;
  data.patterns = patterns;
  data.positions_px = positions;
  ptyc_dataset_write_args args = {&data, NULL, NULL, 0};
  char dataset_path[512];
  snprintf(dataset_path, sizeof dataset_path, "%s/data.h5", dir);
  EXPECT_OK(ptyc_dataset_write(dataset_path, &args));
  back = NULL;
  EXPECT_STATUS(ptyc_recon_read(dataset_path, &back), PTYC_E_FORMAT);
  EXPECT(strstr(ptyc_last_error(), "ptyc-native") != NULL);
  EXPECT(back == NULL);
  snprintf(bad, sizeof bad, "%s/missing.h5", dir);
  EXPECT_STATUS(ptyc_recon_read(bad, &back), PTYC_E_IO);
  free(config);
}

/* ---- PNG --------------------------------------------------------------------------- */

/* Checks the PNG signature and reads width and height from the IHDR chunk. */
static int png_size(const char *path, unsigned *w, unsigned *h) {
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[24];
  FILE *f = fopen(path, "rb");
  if (!f)
    return 0;
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  if (got != sizeof head || memcmp(head, signature, 8) != 0 || memcmp(head + 12, "IHDR", 4) != 0)
    return 0;
  *w = (unsigned)head[16] << 24 | (unsigned)head[17] << 16 | (unsigned)head[18] << 8 | head[19];
  *h = (unsigned)head[20] << 24 | (unsigned)head[21] << 16 | (unsigned)head[22] << 8 | head[23];
  return 1;
}

#define EXPECT_PNG(path, want_w, want_h)                                               \
  do {                                                                                 \
    unsigned w_ = 0, h_ = 0;                                                           \
    EXPECT(png_size((path), &w_, &h_));                                                \
    EXPECT(w_ == (unsigned)(want_w) && h_ == (unsigned)(want_h));                      \
  } while (0)

static void test_png(const char *dir) {
  char path[512];
  enum { PH = 20, PW = 30, PM = 16, PK = 3 };
  float gray[PH * PW];
  ptyc_c32 object[PH * PW], probe[PK * PM * PM];
  for (int i = 0; i < PH * PW; i++) {
    gray[i] = sinf(0.05f * i);
    object[i] = pt_c32(cosf(0.03f * i) * (1 + i % 7), sinf(0.03f * i));
  }
  gray[3] = NAN; /* non-finite pixels are drawn black, not a failure */
  for (int i = 0; i < PK * PM * PM; i++)
    probe[i] = pt_c32(expf(-0.01f * (i % (PM * PM))), 0.1f * (i / (PM * PM)));

  snprintf(path, sizeof path, "%s/gray.png", dir);
  EXPECT_OK(ptyc_png_write_gray(path, gray, PH, PW));
  EXPECT_PNG(path, PW, PH);

  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s/object", dir);
  EXPECT_OK(ptyc_png_write_object(prefix, object, PH, PW));
  snprintf(path, sizeof path, "%s/object_phase.png", dir);
  EXPECT_PNG(path, PW, PH);
  snprintf(path, sizeof path, "%s/object_amplitude.png", dir);
  EXPECT_PNG(path, PW, PH);

  snprintf(path, sizeof path, "%s/probe.png", dir);
  EXPECT_OK(ptyc_png_write_probe(path, probe, PK, PM));
  EXPECT_PNG(path, PK * PM + (PK - 1) * 2, PM);

  /* Cost curves: normal, with non-positive and non-finite values, one point, none, flat. */
  double curve[200];
  for (int i = 0; i < 200; i++)
    curve[i] = 10.0 * exp(-0.05 * i) + 1e-3;
  const struct {
    int n, spoil;
  } cases[] = {{200, 0}, {200, 1}, {1, 0}, {0, 0}, {2, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double values[200];
    memcpy(values, curve, sizeof values);
    if (cases[c].spoil == 1) {
      values[10] = 0.0;
      values[11] = -5.0;
      values[50] = NAN;
      values[199] = INFINITY;
    }
    if (cases[c].spoil == 2)
      values[0] = values[1] = -1.0;
    snprintf(path, sizeof path, "%s/curve%zu.png", dir, c);
    EXPECT_OK(ptyc_png_write_curve(path, values, cases[c].n));
    EXPECT_PNG(path, 640, 360);
  }
  double flat[3] = {2.0, 2.0, 2.0};
  snprintf(path, sizeof path, "%s/flat.png", dir);
  EXPECT_OK(ptyc_png_write_curve(path, flat, 3));
  EXPECT_PNG(path, 640, 360);

  EXPECT(count_entries(dir, ".tmp.") == 0);

  /* Errors: no such directory, bad sizes. */
  snprintf(path, sizeof path, "%s/no_such_dir/x.png", dir);
  EXPECT_STATUS(ptyc_png_write_gray(path, gray, PH, PW), PTYC_E_IO);
  EXPECT(strstr(ptyc_last_error(), "no_such_dir") != NULL);
  snprintf(path, sizeof path, "%s/bad.png", dir);
  EXPECT_STATUS(ptyc_png_write_gray(path, gray, 0, PW), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_png_write_probe(path, probe, 0, PM), PTYC_E_ARG);
  EXPECT(count_entries(dir, "bad.png") == 0);
}

int main(void) {
  char dir[] = "/tmp/ptyc_test_recon_io_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_recon_round_trip(dir);
  test_png(dir);
  remove_dir(dir);
  return TEST_RESULT();
}
