/* probe.shift = "auto" (model.c: resolve_shift): the model measures how far the pupil,
 * the mean pattern's bright disc, reaches and takes the interpolating filter only on a
 * GPU and only for a pupil within the filter's band; "fourier" and "interpolate" are
 * kept as set. The CPU cases always run; the GPU cases where a GPU is usable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/interp_math.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

/* The shift the model chooses on `kind` for the dataset, and the pupil's reach. */
static ptyc_subpixel_shift chosen(ptyc_device_kind kind, const ptyc_dataset *ds,
                                  ptyc_subpixel_shift asked, double *reach) {
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(kind, 0, 2, &be));
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.probe.shift = asked;
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_subpixel_shift shift = model.shift;
  *reach = model.pupil_reach;
  ptyc_model_free(&model);
  ptyc_backend_free(be);
  return shift;
}

static const char *word(ptyc_subpixel_shift s) {
  return s == PTYC_SHIFT_INTERPOLATE ? "interpolate" : s == PTYC_SHIFT_FOURIER ? "fourier" : "auto";
}

int main(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  p.n_positions = 60;
  ptyc_dataset *narrow, *broad;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &narrow, &truth));
  ptyc_truth_free(truth);
  const double narrow_frac = p.aperture_frac;
  p.aperture_frac = 0.8; /* a pupil reaching 0.4 cycles per pixel */
  REQUIRE_OK(ptyc_simulate(&p, &broad, &truth));
  ptyc_truth_free(truth);

  /* the reach is the pupil's radius (aperture_frac / 2 of the detector) within a pixel */
  double reach_narrow, reach_broad;
  EXPECT(chosen(PTYC_DEVICE_CPU, narrow, PTYC_SHIFT_AUTO, &reach_narrow) == PTYC_SHIFT_FOURIER);
  EXPECT(chosen(PTYC_DEVICE_CPU, broad, PTYC_SHIFT_AUTO, &reach_broad) == PTYC_SHIFT_FOURIER);
  printf("pupil reach: %.3f (aperture %.2f of M), %.3f (aperture 0.80); filter band %.2f\n",
         reach_narrow, narrow_frac, reach_broad, PT_INTERP_ACCURATE_BAND);
  EXPECT_NEAR(reach_narrow, narrow_frac / 2, 1.5 / narrow->m);
  EXPECT_NEAR(reach_broad, 0.4, 1.5 / broad->m);
  EXPECT(chosen(PTYC_DEVICE_CPU, narrow, PTYC_SHIFT_INTERPOLATE, &reach_narrow) ==
         PTYC_SHIFT_INTERPOLATE);
  EXPECT(chosen(PTYC_DEVICE_CPU, broad, PTYC_SHIFT_INTERPOLATE, &reach_broad) ==
         PTYC_SHIFT_INTERPOLATE);

  char why[256];
  if (ptyc_cuda_usable(why, sizeof why)) {
    ptyc_subpixel_shift a = chosen(PTYC_DEVICE_CUDA, narrow, PTYC_SHIFT_AUTO, &reach_narrow);
    ptyc_subpixel_shift b = chosen(PTYC_DEVICE_CUDA, broad, PTYC_SHIFT_AUTO, &reach_broad);
    ptyc_subpixel_shift c = chosen(PTYC_DEVICE_CUDA, narrow, PTYC_SHIFT_FOURIER, &reach_narrow);
    printf("on the GPU, auto: %s (narrow pupil), %s (broad); fourier kept: %s\n", word(a),
           word(b), word(c));
    EXPECT(a == PTYC_SHIFT_INTERPOLATE);
    EXPECT(b == PTYC_SHIFT_FOURIER);
    EXPECT(c == PTYC_SHIFT_FOURIER);
  } else {
    printf("GPU cases not run: %s\n", why);
  }
  ptyc_dataset_free(narrow);
  ptyc_dataset_free(broad);
  return TEST_RESULT();
}
