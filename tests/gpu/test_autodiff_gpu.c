/* Autodiff on the GPU follows the CPU: on the small preset (batch 48, 2 modes) the cost
 * of every iteration agrees to RELATIVE_TOL, and the object NRMSE against the truth to
 * 0.01, with the default settings, with the Poisson cost, and with position refinement
 * (the Fourier shift, and the interpolated one).
 * One line per iteration and per comparison. Exit 77 (skipped) where no usable GPU is
 * visible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/compare.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

#define ITERATIONS 20
/* Float rounding differs between the backends (FMA, atomics, cuFFT vs FFTW, ~1e-6) and
 * grows slowly through the iterations of a converging reconstruction; the LSQML GPU test
 * uses the same bound. */
#define RELATIVE_TOL 1e-3

static void run(ptyc_device_kind kind, const ptyc_dataset *ds, const ptyc_truth *truth,
                const ptyc_options *opts, double *losses, double *nrmse) {
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(kind, 0, 2, &be));
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, opts, &model));
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, opts, &engine));
  for (int it = 0; it < ITERATIONS; it++) REQUIRE_OK(ptyc_engine_step(engine, it, &losses[it]));
  ptyc_recon recon = {0};
  REQUIRE_OK(ptyc_model_download(&model, &recon));
  ptyc_compare_object rec = {recon.object, recon.obj_h, recon.obj_w, recon.positions_px, recon.n_positions};
  ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, ds->positions_px, ds->n_patterns};
  REQUIRE_OK(ptyc_object_nrmse(&rec, &tru, truth->probe, truth->probe_modes, truth->m, nrmse));
  free(recon.object), free(recon.probe), free(recon.positions_px);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0);
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
  static const char *names[] = {"defaults (sgd, amplitude)", "poisson", "positions from 5",
                                "interpolated shift, positions from 5"};
  for (int c = 0; c < 4; c++) {
    ptyc_options opts;
    ptyc_options_default(&opts);
    snprintf(opts.reconstructor.engine, sizeof opts.reconstructor.engine, "autodiff");
    opts.reconstructor.batch_size = 48;
    opts.probe.modes = 2;
    if (c == 1) opts.autodiff.loss = PTYC_LOSS_POISSON;
    /* explicit: "auto" would pick the filter on the GPU only */
    opts.probe.shift = c == 3 ? PTYC_SHIFT_INTERPOLATE : PTYC_SHIFT_FOURIER;
    if (c >= 2) {
      opts.autodiff.positions_optimizable = 1;
      opts.autodiff.positions.start = 5;
    }
    double cpu[ITERATIONS], gpu[ITERATIONS], nrmse_cpu, nrmse_gpu, worst = 0;
    run(PTYC_DEVICE_CPU, ds, truth, &opts, cpu, &nrmse_cpu);
    run(PTYC_DEVICE_CUDA, ds, truth, &opts, gpu, &nrmse_gpu);
    printf("%s\n", names[c]);
    for (int it = 0; it < ITERATIONS; it++) {
      double rel = fabs(gpu[it] - cpu[it]) / cpu[it];
      if (rel > worst) worst = rel;
      printf("  iteration %2d: cost cpu %.6e gpu %.6e, relative difference %.2e%s\n", it + 1, cpu[it],
             gpu[it], rel, rel <= RELATIVE_TOL ? "" : "  FAILED");
      EXPECT_LE(rel, RELATIVE_TOL);
    }
    printf("  worst relative cost difference %.2e over %d iterations; NRMSE cpu %.4f gpu %.4f%s\n", worst,
           ITERATIONS, nrmse_cpu, nrmse_gpu, fabs(nrmse_gpu - nrmse_cpu) <= 0.01 ? "" : "  FAILED");
    EXPECT_NEAR(nrmse_gpu, nrmse_cpu, 0.01);
  }
  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return TEST_RESULT();
}
