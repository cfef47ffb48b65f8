/* ptyc_object_nrmse (src/compare.c): invariance to scale, phase ramp and grid offset,
 * and the expected value for a known error. The truth comes from the simulator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/compare.h"
#include "ptyc/simulate.h"
#include "rng.h"
#include "test_util.h"

typedef struct fixture {
  ptyc_dataset *data;
  ptyc_truth *truth;
  ptyc_compare_object true_obj;
} fixture;

static fixture make_fixture(int n_positions) {
  fixture f;
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  p.n_positions = n_positions;
  p.photons = 0;
  REQUIRE_OK(ptyc_simulate(&p, &f.data, &f.truth));
  f.true_obj.object = f.truth->object;
  f.true_obj.h = f.truth->obj_h;
  f.true_obj.w = f.truth->obj_w;
  f.true_obj.positions_px = f.data->positions_px;
  f.true_obj.n_positions = f.data->n_patterns;
  return f;
}

static void free_fixture(fixture *f) {
  ptyc_dataset_free(f->data);
  ptyc_truth_free(f->truth);
}

static double nrmse_of(const fixture *f, const ptyc_compare_object *recon, ptyc_compare_result *r) {
  REQUIRE_OK(ptyc_object_compare(recon, &f->true_obj, f->truth->probe, f->truth->probe_modes,
                                 f->truth->m, r));
  double plain = -1;
  REQUIRE_OK(ptyc_object_nrmse(recon, &f->true_obj, f->truth->probe, f->truth->probe_modes,
                               f->truth->m, &plain));
  EXPECT(plain == r->nrmse);
  return r->nrmse;
}

static void test_identical(const fixture *f) {
  ptyc_compare_result r;
  double e = nrmse_of(f, &f->true_obj, &r);
  EXPECT_LE(e, 1e-6);
  EXPECT(r.offset_y == 0 && r.offset_x == 0);
  EXPECT(r.n_pixels > 1000 && r.n_pixels <= (long)f->truth->obj_h * f->truth->obj_w);
  EXPECT_NEAR(r.scale.re, 1.0, 1e-6);
  EXPECT_NEAR(r.scale.im, 0.0, 1e-6);
}

/* recon = c exp(i g.r) truth on a larger grid, offset by (oy, ox), positions offset by
 * the same plus sub-pixel noise of zero mean; junk outside. */
static void test_scale_ramp_offset(const fixture *f, double g_y, double g_x) {
  const int oy = 7, ox = 4, h = f->true_obj.h + 12, w = f->true_obj.w + 9, n = f->true_obj.n_positions;
  ptyc_c32 *obj = malloc((size_t)h * w * sizeof *obj);
  double *pos = malloc((size_t)n * 2 * sizeof *pos);
  REQUIRE_OK(obj && pos ? PTYC_OK : PTYC_E_NOMEM);
  for (size_t i = 0; i < (size_t)h * w; i++)
    obj[i] = pt_c32((float)pt_rng_normal(3, 1, i), (float)pt_rng_normal(3, 2, i));
  const double c_abs = 2.5, c_arg = 1.2;
  for (int y = 0; y < f->true_obj.h; y++)
    for (int x = 0; x < f->true_obj.w; x++) {
      double ph = c_arg + g_y * y + g_x * x;
      ptyc_c32 e = pt_c32((float)(c_abs * cos(ph)), (float)(c_abs * sin(ph)));
      obj[(size_t)(y + oy) * w + (x + ox)] = pt_cmul(e, f->true_obj.object[(size_t)y * f->true_obj.w + x]);
    }
  for (int j = 0; j < n; j++) {
    double wobble = (j % 2 ? 0.2 : -0.2); /* mean zero */
    pos[2 * j] = f->true_obj.positions_px[2 * j] + oy + wobble;
    pos[2 * j + 1] = f->true_obj.positions_px[2 * j + 1] + ox - wobble;
  }
  ptyc_compare_object recon = {obj, h, w, pos, n};
  ptyc_compare_result r;
  double e = nrmse_of(f, &recon, &r);
  printf("ramp (%.3g, %.3g): nrmse %.3g, found g (%.6g, %.6g), |c| %.6g\n", g_y, g_x, e,
         r.ramp_y, r.ramp_x, sqrt(r.scale.re * r.scale.re + r.scale.im * r.scale.im));
  EXPECT_LE(e, 1e-4);
  EXPECT(r.offset_y == oy && r.offset_x == ox);
  EXPECT_NEAR(r.ramp_y, -g_y, 1e-6); /* the recon's ramp is undone */
  EXPECT_NEAR(r.ramp_x, -g_x, 1e-6);
  EXPECT_NEAR(sqrt(r.scale.re * r.scale.re + r.scale.im * r.scale.im), 1 / c_abs, 1e-5);

  /* a region that reaches outside the recon grid is an error */
  for (int j = 0; j < n; j++) pos[2 * j] += h; /* every pixel falls below the grid */
  EXPECT_STATUS(ptyc_object_compare(&recon, &f->true_obj, f->truth->probe, f->truth->probe_modes,
                                    f->truth->m, &r),
                PTYC_E_ARG);
  EXPECT(strstr(ptyc_last_error(), "outside") != NULL);
  ptyc_clear_error();
  free(obj);
  free(pos);
}

/* A pure-phase truth plus noise of fixed magnitude s per pixel: the best c shrinks the
 * recon by 1 / (1 + s^2), leaving NRMSE = s / sqrt(1 + s^2). */
static void test_known_noise(const fixture *f) {
  const int h = f->true_obj.h, w = f->true_obj.w;
  const double s = 0.1;
  ptyc_c32 *truth = malloc((size_t)h * w * sizeof *truth);
  ptyc_c32 *recon = malloc((size_t)h * w * sizeof *recon);
  REQUIRE_OK(truth && recon ? PTYC_OK : PTYC_E_NOMEM);
  for (size_t i = 0; i < (size_t)h * w; i++) {
    ptyc_c32 t = f->true_obj.object[i];
    double a = sqrt(pt_cabs2(t));
    truth[i] = pt_c32((float)(t.re / a), (float)(t.im / a));
    double th = 2 * 3.14159265358979 * pt_rng_uniform(5, 1, i);
    recon[i] = pt_cadd(truth[i], pt_c32((float)(s * cos(th)), (float)(s * sin(th))));
  }
  ptyc_compare_object t_obj = f->true_obj, r_obj = f->true_obj;
  t_obj.object = truth;
  r_obj.object = recon;
  ptyc_compare_result r;
  REQUIRE_OK(ptyc_object_compare(&r_obj, &t_obj, f->truth->probe, f->truth->probe_modes, f->truth->m, &r));
  double expected = s / sqrt(1 + s * s);
  printf("noise %.2f: nrmse %.5f, expected %.5f\n", s, r.nrmse, expected);
  EXPECT_NEAR(r.nrmse / expected, 1.0, 0.05);
  free(truth);
  free(recon);
}

static void test_bad_arguments(const fixture *f) {
  double e;
  ptyc_compare_object fewer = f->true_obj;
  fewer.n_positions -= 1;
  EXPECT_STATUS(ptyc_object_nrmse(&fewer, &f->true_obj, f->truth->probe, 2, f->truth->m, &e), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_object_nrmse(&f->true_obj, &f->true_obj, NULL, 2, f->truth->m, &e), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_object_nrmse(NULL, &f->true_obj, f->truth->probe, 2, f->truth->m, &e), PTYC_E_ARG);
  ptyc_clear_error();
}

int main(void) {
  fixture f = make_fixture(60);
  test_identical(&f);
  test_scale_ramp_offset(&f, 0.0, 0.0);
  test_scale_ramp_offset(&f, 0.013, -0.004);
  test_scale_ramp_offset(&f, 0.37, -0.81);
  test_scale_ramp_offset(&f, -2.9, 3.05); /* near the Nyquist limit */
  test_known_noise(&f);
  test_bad_arguments(&f);
  free_fixture(&f);
  /* a region wider than the first search window (256 px): the growing-window search */
  fixture big = make_fixture(1500);
  printf("large region: object %dx%d\n", big.true_obj.h, big.true_obj.w);
  EXPECT(big.true_obj.h > 400);
  test_scale_ramp_offset(&big, 0.0123456, -0.7654321);
  test_known_noise(&big);
  free_fixture(&big);
  return TEST_RESULT();
}
