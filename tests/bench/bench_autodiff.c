/* Autodiff benchmark: ms per iteration (median of device-event timings after the first,
 * warm-up iteration), peak device memory and object NRMSE against the truth, with the
 * engine's default settings unless told otherwise.
 *   bench_autodiff DATA.h5|preset:NAME [--device cuda|cpu] [--iterations 30] [--batch 96]
 *                  [--modes 4] [--loss amplitude|intensity|poisson]
 *                  [--optimizer sgd|adam|rmsprop] [--positions] [--shift auto|interpolate|fourier] [--json OUT.json]
 * The GPU setup: bench_autodiff preset:medium (4096 x 256x256, 4 modes, 1e7
 * photons), batch 96, 30 iterations. Not a test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#define CHECK(expr)                                                                       \
  do {                                                                                    \
    if ((expr) != PTYC_OK) {                                                              \
      fprintf(stderr, "bench_autodiff: %s: %s\n", #expr, ptyc_last_error());              \
      return 1;                                                                           \
    }                                                                                     \
  } while (0)

static int word(const char *text, const char *const *words) {
  for (int i = 0; words[i]; i++)
    if (strcmp(text, words[i]) == 0) return i;
  return 0;
}

int main(int argc, char **argv) {
  static const char *const losses[] = {"amplitude", "intensity", "poisson", NULL};
  static const char *const rules[] = {"sgd", "adam", "rmsprop", NULL};
  const char *path = NULL, *json = NULL;
  ptyc_options opts;
  ptyc_options_default(&opts);
  snprintf(opts.reconstructor.engine, sizeof opts.reconstructor.engine, "autodiff");
  opts.reconstructor.iterations = 30;
  opts.reconstructor.batch_size = 96;
  opts.reconstructor.patterns = PTYC_PATTERNS_RESIDENT;
  opts.probe.modes = 4;
  ptyc_device_kind device = PTYC_DEVICE_CUDA;
  for (int i = 1; i < argc; i++) {
    const char *next = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(argv[i], "--device")) device = !strcmp(next, "cpu") ? PTYC_DEVICE_CPU : PTYC_DEVICE_CUDA, i++;
    else if (!strcmp(argv[i], "--iterations")) opts.reconstructor.iterations = atoi(next), i++;
    else if (!strcmp(argv[i], "--batch")) opts.reconstructor.batch_size = atoi(next), i++;
    else if (!strcmp(argv[i], "--modes")) opts.probe.modes = atoi(next), i++;
    else if (!strcmp(argv[i], "--loss")) opts.autodiff.loss = (ptyc_loss)word(next, losses), i++;
    else if (!strcmp(argv[i], "--optimizer")) opts.autodiff.optimizer = (ptyc_optimizer)word(next, rules), i++;
    else if (!strcmp(argv[i], "--positions")) opts.autodiff.positions_optimizable = 1;
    else if (!strcmp(argv[i], "--shift")) opts.probe.shift = bench_shift(next), i++;
    else if (!strcmp(argv[i], "--json")) json = next, i++;
    else path = argv[i];
  }
  if (path == NULL || opts.reconstructor.iterations < 1) {
    fprintf(stderr, "usage: bench_autodiff DATA.h5|preset:NAME [--device cuda|cpu] [--iterations N] "
                    "[--batch B] [--modes K] [--loss L] [--optimizer O] [--positions] [--shift auto|interpolate|fourier] [--json OUT]\n");
    return 2;
  }
  ptyc_dataset *ds;
  ptyc_truth *truth;
  CHECK(bench_load(path, &ds, &truth));
  ptyc_backend *be;
  CHECK(ptyc_backend_create(device, 0, 0, &be));
  ptyc_device_info info;
  CHECK(ptyc_backend_device_info(be, &info));
  ptyc_model model;
  CHECK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_engine *engine;
  CHECK(ptyc_engine_create(&model, &opts, &engine));
  char shift[160];
  bench_shift_text(&model, &opts, shift, sizeof shift);
  int iterations = opts.reconstructor.iterations;
  double first_ms = 0, median_ms = 0, loss = 0, nrmse = 1.0;
  CHECK(bench_iterate(be, engine, iterations, 1, &first_ms, &median_ms, &loss));
  CHECK(bench_nrmse(&model, ds, truth, &nrmse));
  double peak_gib = ptyc_backend_peak_bytes(be) / GIB;
  printf("device              %s (%s)\n", ptyc_backend_name(be), info.name);
  printf("problem             %d patterns %dx%d, %d modes, batch %d, %d iterations, loss %s, optimizer %s\n",
         ds->n_patterns, ds->m, ds->m, opts.probe.modes, opts.reconstructor.batch_size, iterations,
         losses[opts.autodiff.loss], rules[opts.autodiff.optimizer]);
  printf("shift               %s\n", shift);
  printf("ms/iteration        %.2f (median of %d, device events; first %.1f)\n", median_ms,
         iterations - 1, first_ms);
  printf("peak memory         %.3f GiB allocated by ptyc\n", peak_gib);
  printf("object NRMSE        %.4f after %d iterations (final loss %.4e)\n", nrmse, iterations, loss);
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f, "{\"engine\": \"autodiff\", \"device\": \"%s\", \"gpu\": \"%s\", \"n_patterns\": %d, "
                 "\"m\": %d, \"modes\": %d, \"batch\": %d, \"iterations\": %d, "
                 "\"shift\": \"%s\", \"ms_per_iteration_median\": %.3f, \"peak_gib_ptyc\": %.4f, \"object_nrmse\": %.5f}\n",
              ptyc_backend_name(be), info.name, ds->n_patterns, ds->m, opts.probe.modes,
              opts.reconstructor.batch_size, iterations, strncmp(shift, "fourier", 7) ? "interpolate" : "fourier", median_ms, peak_gib, nrmse);
      fclose(f);
    }
  }
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  ptyc_backend_free(be);
  ptyc_dataset_free(ds);
  ptyc_truth_free(truth);
  return 0;
}
