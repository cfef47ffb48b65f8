/* Streaming the patterns from host memory batch by batch gives the resident path's
 * result: bit for bit on the CPU (same ops, same order), for both batch orders. */
#include <stdlib.h>
#include <string.h>

#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

static ptyc_c32 *run(const ptyc_dataset *ds, ptyc_patterns_place place, ptyc_batch_order order,
                     size_t *count) {
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.reconstructor.batch_size = 40; /* 144 / 40: batches of 36, the double buffer cycles */
  opts.reconstructor.batch_order = order;
  opts.reconstructor.patterns = place;
  opts.probe.modes = 2;
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, &opts, &model));
  EXPECT(model.streaming == (place == PTYC_PATTERNS_STREAM));
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, &opts, &engine));
  for (int it = 0; it < 6; it++) {
    double loss;
    REQUIRE_OK(ptyc_engine_step(engine, it, &loss));
  }
  ptyc_recon recon = {0};
  REQUIRE_OK(ptyc_model_download(&model, &recon));
  *count = (size_t)recon.obj_h * recon.obj_w;
  free(recon.probe), free(recon.positions_px);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0);
  ptyc_backend_free(be);
  return recon.object;
}

int main(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  ptyc_dataset *ds;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &ds, &truth));
  ptyc_batch_order orders[2] = {PTYC_BATCH_RANDOM, PTYC_BATCH_COMPACT};
  for (int o = 0; o < 2; o++) {
    size_t n1, n2;
    ptyc_c32 *resident = run(ds, PTYC_PATTERNS_RESIDENT, orders[o], &n1);
    ptyc_c32 *streamed = run(ds, PTYC_PATTERNS_STREAM, orders[o], &n2);
    EXPECT(n1 == n2);
    EXPECT(memcmp(resident, streamed, sizeof(ptyc_c32) * n1) == 0);
    free(resident);
    free(streamed);
  }
  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return TEST_RESULT();
}
