/* Starting probes (probe.init): the aperture model reproduces the simulator's probe
 * (same pupil, same defocus, given in radians or in metres), sizes its pupil from the
 * data when not told, the file's probe is used or ignored as asked, and the option
 * errors are one-line messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

#define PI 3.14159265358979323846

/* |<a, b>| / (|a| |b|): 1 when the two are equal up to a complex factor. */
static double similarity(const ptyc_c32 *a, const ptyc_c32 *b, size_t n) {
  double re = 0, im = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; i++) {
    re += (double)a[i].re * b[i].re + (double)a[i].im * b[i].im;
    im += (double)a[i].re * b[i].im - (double)a[i].im * b[i].re;
    na += pt_cabs2(a[i]);
    nb += pt_cabs2(b[i]);
  }
  return sqrt(re * re + im * im) / sqrt(na * nb);
}

/* The first probe mode ptyc_model_init makes (*st gets its status). */
static ptyc_c32 *initial_mode(const ptyc_dataset *ds, const ptyc_options *opts,
                              ptyc_status *st) {
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  ptyc_model model;
  ptyc_clear_error();
  *st = ptyc_model_init(be, ds, opts, &model);
  ptyc_c32 *mode = NULL;
  if (*st == PTYC_OK) {
    ptyc_recon recon = {0};
    REQUIRE_OK(ptyc_model_download(&model, &recon));
    mode = recon.probe; /* mode 0 first */
    free(recon.object);
    free(recon.positions_px);
    ptyc_model_free(&model);
  }
  ptyc_backend_free(be);
  return mode;
}

int main(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  p.n_positions = 60;
  ptyc_dataset *ds;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &ds, &truth));
  const int m = ds->m;
  const size_t image = (size_t)m * m;
  ptyc_status st;

  ptyc_options opts;
  ptyc_options_default(&opts);
  snprintf(opts.probe.init, sizeof opts.probe.init, "aperture");
  opts.probe.aperture_diameter_px = p.aperture_frac * m;

  /* the simulator's pupil and defocus (radians at the pupil edge) */
  opts.probe.defocus = p.defocus;
  ptyc_c32 *mode = initial_mode(ds, &opts, &st);
  EXPECT_OK(st);
  double s_rad = mode ? similarity(mode, truth->probe, image) : 0.0;
  free(mode);

  /* the same defocus as a distance: a = -pi lambda z (R / (M dx))^2 */
  double radius = 0.5 * opts.probe.aperture_diameter_px;
  double k_edge = radius / (m * ds->object_pixel_size_m);
  opts.probe.defocus = 0.0;
  opts.probe.defocus_m = -p.defocus / (PI * ds->wavelength_m * k_edge * k_edge);
  mode = initial_mode(ds, &opts, &st);
  EXPECT_OK(st);
  double s_m = mode ? similarity(mode, truth->probe, image) : 0.0;
  free(mode);

  /* the pupil measured from the mean pattern */
  opts.probe.defocus_m = 0.0;
  opts.probe.defocus = p.defocus;
  opts.probe.aperture_diameter_px = 0.0;
  mode = initial_mode(ds, &opts, &st);
  EXPECT_OK(st);
  double s_auto = mode ? similarity(mode, truth->probe, image) : 0.0;
  free(mode);
  printf("aperture probe vs the simulator's: %.5f (defocus in radians), %.5f (in metres, "
         "%.3g m), %.5f (pupil from the data)\n",
         s_rad, s_m, -p.defocus / (PI * ds->wavelength_m * k_edge * k_edge), s_auto);
  EXPECT(s_rad > 0.999);
  EXPECT(s_m > 0.999);
  EXPECT(s_auto > 0.95);

  /* option errors */
  opts.probe.defocus_m = 1e-6;
  mode = initial_mode(ds, &opts, &st);
  EXPECT(st == PTYC_E_CONFIG && strstr(ptyc_last_error(), "not both") != NULL);
  free(mode);
  snprintf(opts.probe.init, sizeof opts.probe.init, "file");
  mode = initial_mode(ds, &opts, &st);
  EXPECT(st == PTYC_E_CONFIG && strstr(ptyc_last_error(), "holds no probe") != NULL);
  free(mode);
  ptyc_options_default(&opts);
  opts.output.ptychodus = 1;
  double pixel = ds->object_pixel_size_m;
  ds->object_pixel_size_m = 0.0;
  mode = initial_mode(ds, &opts, &st);
  EXPECT(st == PTYC_E_CONFIG && strstr(ptyc_last_error(), "output.ptychodus") != NULL);
  EXPECT(strchr(ptyc_last_error(), '\n') == NULL);
  free(mode);
  ds->object_pixel_size_m = pixel;

  /* a probe in the file: "auto" and "file" take it, "data" does not */
  ds->probe = malloc(image * sizeof(ptyc_c32));
  ds->probe_modes = 1;
  memcpy(ds->probe, truth->probe, image * sizeof(ptyc_c32));
  const char *inits[3] = {"auto", "file", "data"};
  for (int i = 0; i < 3; i++) {
    ptyc_options_default(&opts);
    snprintf(opts.probe.init, sizeof opts.probe.init, "%s", inits[i]);
    mode = initial_mode(ds, &opts, &st);
    EXPECT_OK(st);
    double s = mode ? similarity(mode, truth->probe, image) : 0.0;
    if (i < 2)
      EXPECT_NEAR(s, 1.0, 1e-6);
    else
      EXPECT(s < 0.999999);
    free(mode);
  }

  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return TEST_RESULT();
}
