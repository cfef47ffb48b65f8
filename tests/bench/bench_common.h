/* What the engine benchmarks share: the data (a file or an in-memory preset), the timed
 * iterations (device events, median after the first, warm-up iteration) and the object
 * NRMSE against the truth. Header-only: each benchmark is one program. */
#ifndef PTYC_BENCH_COMMON_H
#define PTYC_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/compare.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* --shift fourier|interpolate|auto */
static ptyc_subpixel_shift bench_shift(const char *word) {
  return !strcmp(word, "fourier")       ? PTYC_SHIFT_FOURIER
         : !strcmp(word, "interpolate") ? PTYC_SHIFT_INTERPOLATE
                                        : PTYC_SHIFT_AUTO;
}

/* The shift the model uses, and why: "interpolate (auto: ...)". */
static void bench_shift_text(const ptyc_model *model, const ptyc_options *opts, char *text,
                             size_t size) {
  snprintf(text, size, "%s (%s)", model->shift == PTYC_SHIFT_INTERPOLATE ? "interpolate" : "fourier",
           ptyc_model_shift_reason(model, opts));
}

static int bench_cmp_double(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

/* DATA.h5 with /truth, or "preset:NAME" simulated in memory. */
static ptyc_status bench_load(const char *path, ptyc_dataset **ds, ptyc_truth **truth) {
  if (strncmp(path, "preset:", 7) == 0) {
    ptyc_sim_params p;
    ptyc_status st = ptyc_sim_preset(path + 7, &p);
    return st != PTYC_OK ? st : ptyc_simulate(&p, ds, truth);
  }
  ptyc_status st = ptyc_dataset_read(path, "auto", ds);
  return st != PTYC_OK ? st : ptyc_truth_read(path, truth);
}

/* Runs `iterations` steps, each timed with the backend's stopwatch; *median_ms is the
 * median of all but the first. `print` adds one line per iteration. */
static ptyc_status bench_iterate(ptyc_backend *be, ptyc_engine *engine, int iterations,
                                 int print, double *first_ms, double *median_ms,
                                 double *loss) {
  double *ms = calloc((size_t)iterations, sizeof(double));
  if (ms == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory");
  ptyc_status st = PTYC_OK;
  for (int it = 0; it < iterations && st == PTYC_OK; it++) {
    st = ptyc_timer_start(be);
    if (st == PTYC_OK) st = ptyc_engine_step(engine, it, loss);
    if (st == PTYC_OK) st = ptyc_timer_stop(be, &ms[it]);
    if (st == PTYC_OK && print)
      printf("iter %3d/%d | loss %.4e | %8.2f ms\n", it + 1, iterations, *loss, ms[it]);
  }
  if (st == PTYC_OK) {
    *first_ms = ms[0];
    qsort(ms + 1, (size_t)iterations - 1, sizeof(double), bench_cmp_double);
    *median_ms = iterations > 1 ? ms[1 + (iterations - 1) / 2] : ms[0];
  }
  free(ms);
  return st;
}

/* Object NRMSE of the model against the truth (src/compare.c). */
static ptyc_status bench_nrmse(ptyc_model *model, const ptyc_dataset *ds,
                               const ptyc_truth *truth, double *nrmse) {
  ptyc_recon recon = {0};
  ptyc_status st = ptyc_model_download(model, &recon);
  if (st == PTYC_OK) {
    ptyc_compare_object rec = {recon.object, recon.obj_h, recon.obj_w, recon.positions_px,
                               recon.n_positions};
    ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, ds->positions_px,
                               ds->n_patterns};
    st = ptyc_object_nrmse(&rec, &tru, truth->probe, truth->probe_modes, truth->m, nrmse);
  }
  free(recon.object);
  free(recon.probe);
  free(recon.positions_px);
  return st;
}

#endif
