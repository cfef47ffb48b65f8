/* LSQML benchmark: ms per iteration (median of device-event timings after the first,
 * warm-up iteration), peak device memory, object NRMSE against the file's truth, and
 * the achieved fraction of a measured device-to-device copy bandwidth.
 *   bench_lsqml DATA.h5 [--device cuda|cpu] [--iterations 30] [--batch 96] [--modes 4]
 *               [--noise poisson|gaussian] [--patterns resident|stream] [--shift auto|interpolate|fourier] [--json OUT.json]
 * DATA.h5 may be "preset:NAME" to simulate that preset in memory instead of reading a file.
 * Not a test: run it through tests/bench/run.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#define CHECK(expr)                                                                       \
  do {                                                                                    \
    if ((expr) != PTYC_OK) {                                                              \
      fprintf(stderr, "bench_lsqml: %s: %s\n", #expr, ptyc_last_error());                 \
      return 1;                                                                           \
    }                                                                                     \
  } while (0)

/* Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB copy. */
static double copy_bandwidth(ptyc_backend *be) {
  size_t n = (size_t)1 << 30;
  ptyc_buf a, b;
  if (ptyc_buf_alloc(be, n, &a) != PTYC_OK) return 0;
  if (ptyc_buf_alloc(be, n, &b) != PTYC_OK) {
    ptyc_buf_free(be, &a);
    return 0;
  }
  ptyc_buf_zero(be, a, 0, n);
  double times[10], ms;
  for (int i = 0; i < 12; i++) {
    ptyc_timer_start(be);
    ptyc_buf_copy(be, b, 0, a, 0, n);
    ptyc_timer_stop(be, &ms);
    if (i >= 2) times[i - 2] = ms;
  }
  qsort(times, 10, sizeof times[0], bench_cmp_double);
  ptyc_buf_free(be, &a);
  ptyc_buf_free(be, &b);
  return 2.0 * n / (1e-3 * times[5]);
}

int main(int argc, char **argv) {
  const char *path = NULL, *json = NULL;
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.reconstructor.iterations = 30;
  opts.reconstructor.batch_size = 96;
  opts.probe.modes = 4;
  ptyc_device_kind device = PTYC_DEVICE_CUDA;
  for (int i = 1; i < argc; i++) {
    const char *next = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(argv[i], "--device")) device = !strcmp(next, "cpu") ? PTYC_DEVICE_CPU : PTYC_DEVICE_CUDA, i++;
    else if (!strcmp(argv[i], "--iterations")) opts.reconstructor.iterations = atoi(next), i++;
    else if (!strcmp(argv[i], "--batch")) opts.reconstructor.batch_size = atoi(next), i++;
    else if (!strcmp(argv[i], "--modes")) opts.probe.modes = atoi(next), i++;
    else if (!strcmp(argv[i], "--noise")) opts.lsqml.noise_model = !strcmp(next, "gaussian") ? PTYC_NOISE_GAUSSIAN : PTYC_NOISE_POISSON, i++;
    else if (!strcmp(argv[i], "--shift")) opts.probe.shift = bench_shift(next), i++;
    else if (!strcmp(argv[i], "--json")) json = next, i++;
    else if (!strcmp(argv[i], "--patterns")) opts.reconstructor.patterns = !strcmp(next, "stream") ? PTYC_PATTERNS_STREAM : PTYC_PATTERNS_RESIDENT, i++;
    else path = argv[i];
  }
  if (path == NULL) {
    fprintf(stderr, "usage: bench_lsqml DATA.h5 [--device cuda|cpu] [--iterations N] "
                    "[--batch B] [--modes K] [--noise poisson|gaussian] [--shift auto|interpolate|fourier] [--json OUT]\n");
    return 2;
  }
  ptyc_dataset *ds;
  ptyc_truth *truth;
  CHECK(bench_load(path, &ds, &truth));

  ptyc_backend *be;
  CHECK(ptyc_backend_create(device, 0, 0, &be));
  ptyc_device_info info;
  CHECK(ptyc_backend_device_info(be, &info));
  size_t free_before = info.memory_free;

  ptyc_model model;
  CHECK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_engine *engine;
  CHECK(ptyc_engine_create(&model, &opts, &engine));
  char shift[160];
  bench_shift_text(&model, &opts, shift, sizeof shift);
  int iterations = opts.reconstructor.iterations;
  double first_ms = 0, median_ms = 0, loss = 0;
  CHECK(bench_iterate(be, engine, iterations, 0, &first_ms, &median_ms, &loss));
  CHECK(ptyc_backend_device_info(be, &info));
  size_t used_by_process = free_before > info.memory_free ? free_before - info.memory_free : 0;

  double peak_gib = ptyc_backend_peak_bytes(be) / GIB; /* before the bandwidth test's buffers */
  double nrmse = 1.0;
  CHECK(bench_nrmse(&model, ds, truth, &nrmse));

  /* Traffic an iteration cannot avoid: the floor model, two FFT passes (read +
   * write) over all exit waves and six element-wise passes (read + write). */
  double waves_bytes = (double)ds->n_patterns * opts.probe.modes * ds->m * ds->m * 8.0;
  double floor_bytes = (2 + 6) * 2 * waves_bytes;
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  double bandwidth = copy_bandwidth(be); /* after the run: its buffers are not in the peak */
  double achieved = bandwidth > 0 ? floor_bytes / (1e-3 * median_ms) / bandwidth : 0;

  printf("device              %s (%s)\n", ptyc_backend_name(be), info.name);
  printf("problem             %d patterns %dx%d, %d modes, batch %d, %d iterations, %s, patterns %s\n",
         ds->n_patterns, ds->m, ds->m, opts.probe.modes, opts.reconstructor.batch_size,
         iterations, opts.lsqml.noise_model == PTYC_NOISE_POISSON ? "poisson" : "gaussian",
         opts.reconstructor.patterns == PTYC_PATTERNS_STREAM ? "streamed" : "resident");
  printf("shift               %s\n", shift);
  printf("ms/iteration        %.2f (median of %d, device events; first %.1f)\n", median_ms,
         iterations - 1, first_ms);
  printf("peak memory         %.3f GiB allocated by ptyc, %.3f GiB by the process (incl. FFT work areas)\n",
         peak_gib, used_by_process / GIB);
  printf("object NRMSE        %.4f after %d iterations (final loss %.4e)\n", nrmse, iterations, loss);
  printf("copy bandwidth      %.0f GB/s; floor-model traffic %.1f GB/iteration -> %.0f%% of it\n",
         bandwidth / 1e9, floor_bytes / 1e9, 100 * achieved);
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f, "{\"device\": \"%s\", \"gpu\": \"%s\", \"n_patterns\": %d, \"m\": %d, \"modes\": %d, "
                 "\"batch\": %d, \"iterations\": %d, \"shift\": \"%s\", \"ms_per_iteration_median\": %.3f, "
                 "\"peak_gib_ptyc\": %.4f, \"peak_gib_process\": %.4f, \"object_nrmse\": %.5f, "
                 "\"copy_bandwidth_gbs\": %.1f, \"bandwidth_fraction\": %.4f}\n",
              ptyc_backend_name(be), info.name, ds->n_patterns, ds->m, opts.probe.modes,
              opts.reconstructor.batch_size, iterations, strncmp(shift, "fourier", 7) ? "interpolate" : "fourier", median_ms, peak_gib,
              used_by_process / GIB, nrmse, bandwidth / 1e9, achieved);
      fclose(f);
    }
  }
  return 0;
}
