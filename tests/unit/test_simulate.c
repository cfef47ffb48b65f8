/* The simulator (src/simulate.c): presets, determinism, geometry of the scan, probe
 * modes, photon scale, and the forward model against a plain DFT written here. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ptyc/simulate.h"
#include "test_util.h"

#define PI 3.14159265358979323846

/* Small parameters for quick cases. */
static ptyc_sim_params quick_params(int m, int n_positions, int n_modes, double photons) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  p.defocus *= (double)m / p.m; /* keep the beam's relative size */
  p.m = m;
  p.n_positions = n_positions;
  p.n_modes = n_modes;
  p.photons = photons;
  return p;
}

static void test_presets(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  EXPECT(p.m == 64 && p.n_positions >= 140 && p.n_positions <= 160 && p.n_modes == 2);
  EXPECT(p.photons == 1e6 && p.jitter_px == 0.5 && p.overlap == 0.7 && p.seed == 1);
  EXPECT(p.wavelength_m == 1.24e-10 && p.detector_distance_m == 2.0 && p.detector_pixel_size_m == 75e-6);
  EXPECT(p.aperture_frac > 0 && p.aperture_frac < 1 && p.defocus > 0);
  REQUIRE_OK(ptyc_sim_preset("medium", &p));
  EXPECT(p.m == 256 && p.n_positions == 4096 && p.n_modes == 4 && p.photons == 1e7);
  REQUIRE_OK(ptyc_sim_preset("large", &p));
  EXPECT(p.m == 512 && p.n_positions >= 11000 && p.n_positions <= 13000 && p.n_modes == 3);
  EXPECT(p.photons == 1e7 && p.overlap == 0.7);
  EXPECT_STATUS(ptyc_sim_preset("x", &p), PTYC_E_ARG);
  EXPECT(strstr(ptyc_last_error(), "unknown preset 'x'; choose small, medium or large") != NULL);
  ptyc_clear_error();
  /* bad parameters are refused with a message */
  ptyc_dataset *d = NULL;
  ptyc_truth *t = NULL;
  ptyc_sim_params bad = quick_params(64, 10, 1, 0);
  bad.m = 63;
  EXPECT_STATUS(ptyc_simulate(&bad, &d, &t), PTYC_E_ARG);
  bad = quick_params(64, 10, 1, 0);
  bad.n_modes = 0;
  EXPECT_STATUS(ptyc_simulate(&bad, &d, &t), PTYC_E_ARG);
  bad = quick_params(64, 0, 1, 0);
  EXPECT_STATUS(ptyc_simulate(&bad, &d, &t), PTYC_E_ARG);
  EXPECT(d == NULL && t == NULL);
}

static int same_results(const ptyc_dataset *a, const ptyc_truth *ta, const ptyc_dataset *b,
                        const ptyc_truth *tb) {
  size_t mm = (size_t)a->m * a->m;
  return a->n_patterns == b->n_patterns && a->m == b->m && ta->obj_h == tb->obj_h &&
         ta->obj_w == tb->obj_w &&
         memcmp(a->patterns, b->patterns, a->n_patterns * mm * sizeof(float)) == 0 &&
         memcmp(a->positions_px, b->positions_px, a->n_patterns * 2 * sizeof(double)) == 0 &&
         memcmp(ta->object, tb->object, (size_t)ta->obj_h * ta->obj_w * sizeof(ptyc_c32)) == 0 &&
         memcmp(ta->probe, tb->probe, ta->probe_modes * mm * sizeof(ptyc_c32)) == 0;
}

/* Same seed, same bytes (also with another thread count); another seed, other data. */
static void test_determinism(void) {
  ptyc_sim_params p = quick_params(32, 40, 2, 1e5);
  ptyc_dataset *a = NULL, *b = NULL, *c = NULL;
  ptyc_truth *ta = NULL, *tb = NULL, *tc = NULL;
  int threads = omp_get_max_threads();
  REQUIRE_OK(ptyc_simulate(&p, &a, &ta));
  omp_set_num_threads(threads > 1 ? 1 : 2);
  REQUIRE_OK(ptyc_simulate(&p, &b, &tb));
  omp_set_num_threads(threads);
  EXPECT(same_results(a, ta, b, tb));
  p.seed = 2;
  REQUIRE_OK(ptyc_simulate(&p, &c, &tc));
  EXPECT(memcmp(a->patterns, c->patterns, (size_t)a->n_patterns * 32 * 32 * sizeof(float)) != 0);
  EXPECT(memcmp(ta->object, tc->object, (size_t)ta->obj_h * ta->obj_w * sizeof(ptyc_c32)) != 0);
  ptyc_dataset_free(a);
  ptyc_dataset_free(b);
  ptyc_dataset_free(c);
  ptyc_truth_free(ta);
  ptyc_truth_free(tb);
  ptyc_truth_free(tc);
}

/* 2 sqrt(2) x the rms radius of sum_k |P_k|^2 (the simulator's definition). */
static double probe_diameter(const ptyc_truth *t) {
  int m = t->m;
  double s = 0, sy = 0, sx = 0, syy = 0, sxx = 0;
  for (int k = 0; k < t->probe_modes; k++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        double i = pt_cabs2(t->probe[((size_t)k * m + y) * m + x]);
        s += i;
        sy += i * y;
        sx += i * x;
        syy += i * y * y;
        sxx += i * x * x;
      }
  double cy = sy / s, cx = sx / s;
  return 2 * sqrt(2 * (syy / s - cy * cy + sxx / s - cx * cx));
}

static void test_small_preset(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  ptyc_dataset *d = NULL;
  ptyc_truth *t = NULL;
  REQUIRE_OK(ptyc_simulate(&p, &d, &t));
  const int m = p.m, n = p.n_positions;
  const size_t mm = (size_t)m * m;
  EXPECT(d->n_patterns == n && d->m == m && t->m == m && t->probe_modes == p.n_modes);
  EXPECT(strcmp(d->format, "ptyc-native") == 0);
  EXPECT(d->mask == NULL);
  EXPECT_NEAR(d->object_pixel_size_m, 1.24e-10 * 2.0 / (64 * 75e-6), 1e-15);

  /* positions: positive, inside the object, the window too */
  double min_pos = 1e300;
  int fractional = 0;
  for (int j = 0; j < n; j++) {
    double y = d->positions_px[2 * j], x = d->positions_px[2 * j + 1];
    if (y < min_pos) min_pos = y;
    if (x < min_pos) min_pos = x;
    EXPECT(floor(y) + m <= t->obj_h && floor(x) + m <= t->obj_w);
    fractional += y != floor(y) || x != floor(x);
  }
  EXPECT(min_pos > 0);
  EXPECT(fractional > n / 2); /* jitter gives sub-pixel positions */
  EXPECT_LE(t->obj_h, 4 * m); /* scan extent + window + margin, not much more */

  /* overlap: 1 - mean nearest-neighbour distance / probe diameter */
  double nn = 0;
  for (int i = 0; i < n; i++) {
    double best = 1e300;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double dy = d->positions_px[2 * i] - d->positions_px[2 * j];
      double dx = d->positions_px[2 * i + 1] - d->positions_px[2 * j + 1];
      if (dy * dy + dx * dx < best) best = dy * dy + dx * dx;
    }
    nn += sqrt(best) / n;
  }
  double overlap = 1 - nn / probe_diameter(t);
  printf("small: object %dx%d, probe diameter %.1f px, overlap %.3f\n", t->obj_h, t->obj_w,
         probe_diameter(t), overlap);
  EXPECT_NEAR(overlap, 0.7, 0.1);

  /* probe modes: orthogonal, powers decreasing */
  double norm2[8];
  for (int k = 0; k < t->probe_modes; k++) {
    norm2[k] = 0;
    for (size_t i = 0; i < mm; i++) norm2[k] += pt_cabs2(t->probe[k * mm + i]);
  }
  for (int k = 1; k < t->probe_modes; k++) EXPECT(norm2[k] < norm2[k - 1]);
  for (int i = 0; i < t->probe_modes; i++)
    for (int j = 0; j < i; j++) {
      double re = 0, im = 0;
      for (size_t q = 0; q < mm; q++) {
        ptyc_c32 a = t->probe[j * mm + q], b = t->probe[i * mm + q];
        re += (double)a.re * b.re + (double)a.im * b.im;
        im += (double)a.re * b.im - (double)a.im * b.re;
      }
      EXPECT_LE(sqrt(re * re + im * im) / sqrt(norm2[i] * norm2[j]), 1e-6);
    }
  /* most of the probe's energy in the central part of the window */
  double centre = 0, all = 0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double i = pt_cabs2(t->probe[(size_t)y * m + x]);
      all += i;
      if (abs(y - m / 2) < m / 4 && abs(x - m / 2) < m / 4) centre += i;
    }
  EXPECT(centre > 0.8 * all);

  /* photons: integer counts with the requested mean total */
  double total = 0;
  int integral = 1;
  for (size_t i = 0; i < (size_t)n * mm; i++) {
    total += d->patterns[i];
    if (d->patterns[i] != floorf(d->patterns[i]) || d->patterns[i] < 0) integral = 0;
  }
  printf("small: mean counts per pattern %.6g (asked %.6g)\n", total / n, p.photons);
  EXPECT(integral);
  EXPECT_NEAR(total / n / p.photons, 1.0, 0.01);
  /* the zero frequency sits at [0][0]: the bright centre of the far field */
  EXPECT(d->patterns[0] > d->patterns[(size_t)(m / 2) * m + m / 2]);
  ptyc_dataset_free(d);
  ptyc_truth_free(t);
}

/* 1-D DFT of length m, stride `stride`, in place on a row or column of a [m][m] array:
 * out[k] = sum_n in[n] exp(sign 2 pi i k n / m). */
static void dft_1d(double (*a)[2], int m, int stride, int sign) {
  double tmp[64][2];
  for (int k = 0; k < m; k++) {
    double re = 0, im = 0;
    for (int j = 0; j < m; j++) {
      double ang = sign * 2 * PI * (double)k * j / m;
      re += a[j * stride][0] * cos(ang) - a[j * stride][1] * sin(ang);
      im += a[j * stride][0] * sin(ang) + a[j * stride][1] * cos(ang);
    }
    tmp[k][0] = re;
    tmp[k][1] = im;
  }
  for (int k = 0; k < m; k++) {
    a[k * stride][0] = tmp[k][0];
    a[k * stride][1] = tmp[k][1];
  }
}

static void dft_2d(double (*a)[2], int m, int sign) {
  for (int y = 0; y < m; y++) dft_1d(a + y * m, m, 1, sign);
  for (int x = 0; x < m; x++) dft_1d(a + x, m, m, sign);
}

/* The noiseless patterns equal the model of types.h evaluated with plain DFTs on the
 * truth object and the truth probe. */
static void test_forward_model(void) {
  enum { M = 16 };
  ptyc_sim_params p = quick_params(M, 10, 2, 0.0);
  ptyc_dataset *d = NULL;
  ptyc_truth *t = NULL;
  REQUIRE_OK(ptyc_simulate(&p, &d, &t));
  double probe_hat[2][M * M][2], psi[M * M][2], intensity[M * M];
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < M * M; i++) {
      probe_hat[k][i][0] = t->probe[k * M * M + i].re;
      probe_hat[k][i][1] = t->probe[k * M * M + i].im;
    }
    dft_2d(probe_hat[k], M, -1);
  }
  double worst = 0, peak = 0, total = 0;
  for (int j = 0; j < d->n_patterns; j++) {
    double y0 = floor(d->positions_px[2 * j]), x0 = floor(d->positions_px[2 * j + 1]);
    double fy = d->positions_px[2 * j] - y0, fx = d->positions_px[2 * j + 1] - x0;
    memset(intensity, 0, sizeof intensity);
    for (int k = 0; k < 2; k++) {
      /* shift: F^-1{ F{P} exp(-2 pi i (u fy + v fx) / M) } */
      for (int y = 0; y < M; y++)
        for (int x = 0; x < M; x++) {
          double ang = -2 * PI * (pt_freq_index(y, M) * fy + pt_freq_index(x, M) * fx) / M;
          const double *h = probe_hat[k][y * M + x];
          psi[y * M + x][0] = h[0] * cos(ang) - h[1] * sin(ang);
          psi[y * M + x][1] = h[0] * sin(ang) + h[1] * cos(ang);
        }
      dft_2d(psi, M, +1);
      for (int y = 0; y < M; y++)
        for (int x = 0; x < M; x++) {
          ptyc_c32 o = t->object[(size_t)(y0 + y) * t->obj_w + (size_t)(x0 + x)];
          double pr = psi[y * M + x][0] / (M * M), pi = psi[y * M + x][1] / (M * M);
          psi[y * M + x][0] = pr * o.re - pi * o.im;
          psi[y * M + x][1] = pr * o.im + pi * o.re;
        }
      dft_2d(psi, M, -1);
      for (int i = 0; i < M * M; i++) intensity[i] += psi[i][0] * psi[i][0] + psi[i][1] * psi[i][1];
    }
    for (int i = 0; i < M * M; i++) {
      double diff = fabs(intensity[i] - d->patterns[(size_t)j * M * M + i]);
      if (diff > worst) worst = diff;
      if (intensity[i] > peak) peak = intensity[i];
      total += d->patterns[(size_t)j * M * M + i];
    }
  }
  /* float storage of probe, object and patterns: ~1e-7 relative */
  EXPECT_LE(worst / peak, 2e-6);
  /* noiseless data keep the nominal scale of 1e6 counts per pattern */
  EXPECT_NEAR(total / d->n_patterns / 1e6, 1.0, 1e-5);
  ptyc_dataset_free(d);
  ptyc_truth_free(t);
}

/* Round trip through the native writer and readers. */
static void test_write_read(void) {
  ptyc_sim_params p = quick_params(32, 20, 2, 1e5);
  const char *path = "test_simulate_roundtrip.h5";
  REQUIRE_OK(ptyc_simulate_write(&p, path));
  ptyc_dataset *a = NULL, *b = NULL;
  ptyc_truth *ta = NULL, *tb = NULL;
  REQUIRE_OK(ptyc_simulate(&p, &a, &ta));
  REQUIRE_OK(ptyc_dataset_read(path, "auto", &b));
  REQUIRE_OK(ptyc_truth_read(path, &tb));
  EXPECT(same_results(a, ta, b, tb));
  EXPECT_NEAR(b->wavelength_m, 1.24e-10, 1e-20);
  ptyc_dataset_free(a);
  ptyc_dataset_free(b);
  ptyc_truth_free(ta);
  ptyc_truth_free(tb);
  remove(path);
}

int main(void) {
  test_presets();
  test_determinism();
  test_small_preset();
  test_forward_model();
  test_write_read();
  return TEST_RESULT();
}
