/* LSQML on the GPU follows the CPU: relative cost difference <= 1e-3 at each of 20
 * iterations on the small preset, and the same quality against the truth, for both
 * noise models with the Fourier shift and for the interpolated shift. Exit 77
 * (skipped) where no usable GPU is visible. */
#include <math.h>
#include <stdlib.h>

#include "ptyc/compare.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

#define ITERATIONS 20

static void run(ptyc_device_kind kind, const ptyc_dataset *ds, const ptyc_truth *truth,
                ptyc_noise_model noise, ptyc_subpixel_shift shift, ptyc_patterns_place place,
                double *losses, double *nrmse) {
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.probe.shift = shift; /* explicit: "auto" would pick the filter on the GPU only */
  opts.reconstructor.batch_size = 48;
  opts.probe.modes = 2;
  opts.lsqml.noise_model = noise;
  opts.reconstructor.patterns = place;
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(kind, 0, 2, &be));
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, &opts, &engine));
  for (int it = 0; it < ITERATIONS; it++) REQUIRE_OK(ptyc_engine_step(engine, it, &losses[it]));
  ptyc_recon recon = {0};
  REQUIRE_OK(ptyc_model_download(&model, &recon));
  ptyc_compare_object rec = {recon.object, recon.obj_h, recon.obj_w, recon.positions_px, recon.n_positions};
  ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, ds->positions_px, ds->n_patterns};
  REQUIRE_OK(ptyc_object_nrmse(&rec, &tru, truth->probe, truth->probe_modes, truth->m, nrmse));
  free(recon.object), free(recon.probe), free(recon.positions_px);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  ptyc_backend_free(be);
}

int main(void) {
  char why[256];
  if (!ptyc_cuda_usable(why, sizeof why)) {
    printf("skipped: %s\n", why);
    return PT_TEST_SKIP;
  }
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  ptyc_dataset *ds;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &ds, &truth));
  static const struct {
    ptyc_noise_model noise;
    ptyc_subpixel_shift shift;
    const char *name;
  } cases[] = {{PTYC_NOISE_GAUSSIAN, PTYC_SHIFT_FOURIER, "gaussian"},
               {PTYC_NOISE_POISSON, PTYC_SHIFT_FOURIER, "poisson"},
               {PTYC_NOISE_GAUSSIAN, PTYC_SHIFT_INTERPOLATE, "gaussian, interpolated shift"}};
  for (int m = 0; m < 3; m++) {
    double cpu[ITERATIONS], gpu[ITERATIONS], streamed[ITERATIONS], nrmse_cpu, nrmse_gpu,
        nrmse_streamed, worst = 0, worst_streamed = 0;
    run(PTYC_DEVICE_CPU, ds, truth, cases[m].noise, cases[m].shift, PTYC_PATTERNS_RESIDENT, cpu, &nrmse_cpu);
    run(PTYC_DEVICE_CUDA, ds, truth, cases[m].noise, cases[m].shift, PTYC_PATTERNS_RESIDENT, gpu, &nrmse_gpu);
    /* Streaming from page-locked memory gives the resident result (float atomics in the
     * object scatter make it differ by rounding only). */
    run(PTYC_DEVICE_CUDA, ds, truth, cases[m].noise, cases[m].shift, PTYC_PATTERNS_STREAM, streamed, &nrmse_streamed);
    for (int it = 0; it < ITERATIONS; it++) {
      double rel = fabs(streamed[it] - gpu[it]) / gpu[it];
      if (rel > worst_streamed) worst_streamed = rel;
      EXPECT_LE(rel, 1e-4);
    }
    printf("%s: streamed vs resident on the GPU: worst relative cost difference %.2e\n",
           cases[m].name, worst_streamed);
    EXPECT_NEAR(nrmse_streamed, nrmse_gpu, 1e-3);
    for (int it = 0; it < ITERATIONS; it++) {
      double rel = fabs(gpu[it] - cpu[it]) / cpu[it];
      if (rel > worst) worst = rel;
      EXPECT_LE(rel, 1e-3);
    }
    printf("%s: worst relative cost difference %.2e over %d iterations; NRMSE cpu %.4f gpu %.4f\n",
           cases[m].name, worst, ITERATIONS, nrmse_cpu, nrmse_gpu);
    EXPECT_NEAR(nrmse_gpu, nrmse_cpu, 0.01);
  }
  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return TEST_RESULT();
}
