/* Autodiff on the simulated small preset reaches the known truth with DEFAULT settings:
 * object NRMSE <= 0.15 (global complex scale and phase ramp removed, illuminated region)
 * within 40 iterations, batch 48, 2 probe modes, on the CPU. Also: every cost and
 * optimizer runs and lowers the cost; refined positions approach the true ones from a
 * perturbed start and stay inside the object. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/compare.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "rng.h"
#include "test_util.h"

typedef struct result {
  double nrmse, first_loss, last_loss, ms_per_iteration;
  double position_error;  /* rms distance to the true positions (pixels), after */
  double position_error0; /* the same before the first iteration */
  int positions_inside;   /* every patch inside the object at the end */
} result;

/* RMS distance between model positions and the truth (the file's positions moved onto
 * the object grid), after removing the mean offset (a global shift is not observable). */
static double position_rms(const double *pos, const ptyc_dataset *ds, const double offset[2]) {
  int n = ds->n_patterns;
  double mean[2] = {0, 0}, sum = 0;
  for (int j = 0; j < n; j++)
    for (int a = 0; a < 2; a++) mean[a] += (pos[2 * j + a] - ds->positions_px[2 * j + a] - offset[a]) / n;
  for (int j = 0; j < n; j++)
    for (int a = 0; a < 2; a++) {
      double d = pos[2 * j + a] - ds->positions_px[2 * j + a] - offset[a] - mean[a];
      sum += d * d;
    }
  return sqrt(sum / n);
}

/* Reconstructs with `opts` (perturbing the initial positions by up to `jitter_px`). */
static result reconstruct(const ptyc_dataset *ds, const ptyc_truth *truth,
                          const ptyc_options *opts, double jitter_px) {
  result r = {0};
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, opts, &model));
  if (jitter_px > 0) {
    for (int j = 0; j < model.n_positions; j++)
      for (int a = 0; a < 2; a++)
        model.positions_host[2 * j + a] += jitter_px * (2.0 * pt_rng_uniform(7, 3 + a, j) - 1.0);
    REQUIRE_OK(ptyc_buf_upload(be, model.positions, 0, model.positions_host,
                               model.positions.nbytes));
  }
  r.position_error0 = position_rms(model.positions_host, ds, model.offset_px);
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, opts, &engine));
  int iterations = opts->reconstructor.iterations;
  double total_ms = 0;
  for (int it = 0; it < iterations; it++) {
    double loss, ms;
    REQUIRE_OK(ptyc_timer_start(be));
    REQUIRE_OK(ptyc_engine_step(engine, it, &loss));
    REQUIRE_OK(ptyc_timer_stop(be, &ms));
    if (it > 0) total_ms += ms;
    if (it == 0) r.first_loss = loss;
    r.last_loss = loss;
  }
  r.ms_per_iteration = iterations > 1 ? total_ms / (iterations - 1) : 0;
  ptyc_recon recon = {0};
  REQUIRE_OK(ptyc_model_download(&model, &recon));
  r.position_error = position_rms(recon.positions_px, ds, model.offset_px);
  r.positions_inside = 1;
  for (int j = 0; j < recon.n_positions; j++)
    for (int a = 0; a < 2; a++) {
      double p = recon.positions_px[2 * j + a], limit = (a ? recon.obj_w : recon.obj_h) - recon.m;
      if (!(p >= 0 && p <= limit)) r.positions_inside = 0;
    }
  ptyc_compare_object rec = {recon.object, recon.obj_h, recon.obj_w, recon.positions_px,
                             recon.n_positions};
  ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, ds->positions_px,
                             ds->n_patterns};
  r.nrmse = 1.0;
  REQUIRE_OK(ptyc_object_nrmse(&rec, &tru, truth->probe, truth->probe_modes, truth->m, &r.nrmse));
  free(recon.object), free(recon.probe), free(recon.positions_px);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0);
  ptyc_backend_free(be);
  return r;
}

static void base_options(ptyc_options *opts, int iterations) {
  ptyc_options_default(opts);
  snprintf(opts->reconstructor.engine, sizeof opts->reconstructor.engine, "autodiff");
  opts->reconstructor.iterations = iterations;
  opts->reconstructor.batch_size = 48;
  opts->probe.modes = 2;
}

/* Runs iterations [from, to) of a fresh engine on a model holding `object`, `probe` and
 * `positions` (NULL: the model's start), after loading `blob`; returns the losses and,
 * when asked, the model and the engine state at the end. */
static void run_span(ptyc_backend *be, const ptyc_dataset *ds, const ptyc_options *opts, int from,
                     int to, ptyc_recon *state_in, void *blob, size_t blob_nbytes, double *losses,
                     ptyc_recon *state_out, void **blob_out, size_t *blob_out_nbytes) {
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, opts, &model));
  if (state_in) {
    REQUIRE_OK(ptyc_buf_upload(be, model.object, 0, state_in->object, model.object.nbytes));
    REQUIRE_OK(ptyc_buf_upload(be, model.probe, 0, state_in->probe, model.probe.nbytes));
    REQUIRE_OK(ptyc_buf_upload(be, model.positions, 0, state_in->positions_px, model.positions.nbytes));
  }
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, opts, &engine));
  if (blob) REQUIRE_OK(ptyc_engine_load_state(engine, blob, blob_nbytes));
  for (int it = from; it < to; it++) REQUIRE_OK(ptyc_engine_step(engine, it, &losses[it]));
  if (state_out) REQUIRE_OK(ptyc_model_download(&model, state_out));
  if (blob_out) REQUIRE_OK(ptyc_engine_save_state(engine, blob_out, blob_out_nbytes));
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
}

/* Stopping after 6 iterations and going on from the saved model and engine state gives
 * the uninterrupted run bit for bit (optimizer moments, update counts, positions). */
static void test_resume(const ptyc_dataset *ds) {
  enum { STOP = 6, END = 12 };
  ptyc_options opts;
  ptyc_options_default(&opts);
  snprintf(opts.reconstructor.engine, sizeof opts.reconstructor.engine, "autodiff");
  opts.reconstructor.batch_size = 48;
  opts.probe.modes = 2;
  opts.autodiff.positions_optimizable = 1;
  opts.autodiff.positions.start = 3;
  opts.autodiff.probe.optimizer = PTYC_OPTIMIZER_ADAM;
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  double straight[END], resumed[END];
  ptyc_recon end_a = {0}, middle = {0}, end_b = {0};
  run_span(be, ds, &opts, 0, END, NULL, NULL, 0, straight, &end_a, NULL, NULL);
  void *blob = NULL;
  size_t nbytes = 0;
  run_span(be, ds, &opts, 0, STOP, NULL, NULL, 0, resumed, &middle, &blob, &nbytes);
  run_span(be, ds, &opts, STOP, END, &middle, blob, nbytes, resumed, &end_b, NULL, NULL);
  int same = memcmp(straight, resumed, sizeof straight) == 0 &&
             memcmp(end_a.object, end_b.object, sizeof(ptyc_c32) * end_a.obj_h * end_a.obj_w) == 0 &&
             memcmp(end_a.positions_px, end_b.positions_px, sizeof(double) * 2 * end_a.n_positions) == 0;
  printf("autodiff resumed after %d of %d iterations from %zu bytes of engine state: %s\n", STOP, END,
         nbytes, same ? "identical" : "DIFFERENT");
  EXPECT(same);
  EXPECT(nbytes > 0);
  free(blob);
  ptyc_recon *rs[] = {&end_a, &middle, &end_b};
  for (int i = 0; i < 3; i++) free(rs[i]->object), free(rs[i]->probe), free(rs[i]->positions_px);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0);
  ptyc_backend_free(be);
}

/* Patterns streamed from host memory batch by batch give the resident run bit for bit. */
static void test_streaming(const ptyc_dataset *ds) {
  ptyc_options opts;
  ptyc_options_default(&opts);
  snprintf(opts.reconstructor.engine, sizeof opts.reconstructor.engine, "autodiff");
  opts.reconstructor.batch_size = 40; /* 4 batches of 36: the feed's two slots alternate */
  opts.probe.modes = 2;
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  double losses[2][5];
  ptyc_recon out[2] = {{0}, {0}};
  ptyc_patterns_place places[2] = {PTYC_PATTERNS_RESIDENT, PTYC_PATTERNS_STREAM};
  for (int i = 0; i < 2; i++) {
    opts.reconstructor.patterns = places[i];
    run_span(be, ds, &opts, 0, 5, NULL, NULL, 0, losses[i], &out[i], NULL, NULL);
  }
  int same = memcmp(losses[0], losses[1], sizeof losses[0]) == 0 &&
             memcmp(out[0].object, out[1].object, sizeof(ptyc_c32) * out[0].obj_h * out[0].obj_w) == 0;
  printf("autodiff with streamed patterns, 5 iterations: %s the resident run\n",
         same ? "identical to" : "DIFFERENT from");
  EXPECT(same);
  for (int i = 0; i < 2; i++) free(out[i].object), free(out[i].probe), free(out[i].positions_px);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0);
  ptyc_backend_free(be);
}

int main(int argc, char **argv) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  ptyc_dataset *ds;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &ds, &truth));
  ptyc_options opts;

  /* 1. The quality target with default settings. */
  base_options(&opts, 40);
  result r = reconstruct(ds, truth, &opts, 0.0);
  printf("autodiff defaults (sgd, amplitude), batch 48, 40 iterations: object NRMSE %.4f, "
         "loss %.4g -> %.4g, %.1f ms/iteration\n",
         r.nrmse, r.first_loss, r.last_loss, r.ms_per_iteration);
  EXPECT_LE(r.nrmse, 0.15);
  EXPECT(r.last_loss < r.first_loss);

  /* 1b. The same with the probe moved by interpolation (probe.shift = "interpolate"):
   *     the data were simulated with the exact Fourier shift, so this also bounds the
   *     model error of the 12-tap filter. */
  base_options(&opts, 40);
  opts.probe.shift = PTYC_SHIFT_INTERPOLATE;
  r = reconstruct(ds, truth, &opts, 0.0);
  printf("autodiff interpolated shift, batch 48, 40 iterations: object NRMSE %.4f, "
         "loss %.4g -> %.4g, %.1f ms/iteration\n",
         r.nrmse, r.first_loss, r.last_loss, r.ms_per_iteration);
  EXPECT_LE(r.nrmse, 0.15);
  EXPECT(r.last_loss < r.first_loss);

  /* 2. Every cost and optimizer runs and lowers the cost (short runs, no quality bound
   *    beyond "better than the start"). */
  static const struct {
    ptyc_loss loss;
    ptyc_optimizer rule;
    const char *name;
  } variants[] = {
      {PTYC_LOSS_POISSON, PTYC_OPTIMIZER_SGD, "poisson + sgd"},
      {PTYC_LOSS_INTENSITY, PTYC_OPTIMIZER_SGD, "intensity + sgd"},
      {PTYC_LOSS_AMPLITUDE, PTYC_OPTIMIZER_ADAM, "amplitude + adam"},
      {PTYC_LOSS_AMPLITUDE, PTYC_OPTIMIZER_RMSPROP, "amplitude + rmsprop"},
  };
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    base_options(&opts, 15);
    opts.autodiff.loss = variants[i].loss;
    opts.autodiff.optimizer = variants[i].rule;
    r = reconstruct(ds, truth, &opts, 0.0);
    printf("autodiff %-20s 15 iterations: object NRMSE %.4f, loss %.4g -> %.4g\n",
           variants[i].name, r.nrmse, r.first_loss, r.last_loss);
    EXPECT(r.last_loss < r.first_loss);
    EXPECT_LE(r.nrmse, 0.6);
  }

  /* 3. Position refinement from positions perturbed by up to 1.5 pixels: they move
   *    towards the truth and every patch stays inside the object. */
  base_options(&opts, 40);
  opts.autodiff.positions_optimizable = 1;
  opts.autodiff.positions.start = 5;
  r = reconstruct(ds, truth, &opts, 1.5);
  printf("autodiff positions from iteration 5: position error %.3f -> %.3f px, object NRMSE %.4f\n",
         r.position_error0, r.position_error, r.nrmse);
  EXPECT_LE(r.position_error, 0.5 * r.position_error0);
  EXPECT(r.positions_inside);
  opts.probe.shift = PTYC_SHIFT_INTERPOLATE; /* the gradient through the filter's weights */
  r = reconstruct(ds, truth, &opts, 1.5);
  printf("autodiff positions from iteration 5, interpolated shift: position error %.3f -> %.3f px, "
         "object NRMSE %.4f\n", r.position_error0, r.position_error, r.nrmse);
  EXPECT_LE(r.position_error, 0.5 * r.position_error0);
  EXPECT(r.positions_inside);

  /* 4. Regularisers run and keep the quality. */
  base_options(&opts, 20);
  opts.autodiff.tv_weight = 1e-3;
  opts.autodiff.l1_weight = 1e-4;
  r = reconstruct(ds, truth, &opts, 0.0);
  printf("autodiff with L1 1e-4 and TV 1e-3, 20 iterations: object NRMSE %.4f, loss %.4g -> %.4g\n",
         r.nrmse, r.first_loss, r.last_loss);
  EXPECT(r.last_loss < r.first_loss);

  /* 5. Checkpoints. */
  test_resume(ds);
  /* 6. Streamed patterns. */
  test_streaming(ds);

  (void)argc;
  (void)argv;
  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return TEST_RESULT();
}
