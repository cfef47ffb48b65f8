/* `ptyc info`: what a dataset holds and what a reconstruction of it will need.
 *
 * The dataset is read as a run reads it (pt_dataset_read_info: any format, the job's
 * `data` options applied), so `info` reports exactly the errors a run would, then
 * summarised: format and files, layout, the options applied, positions and the object
 * they span, geometry, probe and mask, counts, and the memory a run with the default
 * options will take (the model's own plan plus the lsqml engine's, for the given modes
 * and batch size). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"
#include "ptyc/dataset.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/options.h"

/* Batch size assumed when the caller gives none. */
#define DESCRIBE_DEFAULT_BATCH 64

/* "1.50 GiB", "12.3 MiB" or "4.0 KiB". */
static void format_bytes(char *buf, size_t size, double nbytes) {
  const double kib = 1024.0, mib = kib * 1024.0, gib = mib * 1024.0;
  if (nbytes >= gib)
    snprintf(buf, size, "%.2f GiB", nbytes / gib);
  else if (nbytes >= mib)
    snprintf(buf, size, "%.1f MiB", nbytes / mib);
  else
    snprintf(buf, size, "%.1f KiB", nbytes / kib);
}

/* Prints the geometry line: what the file gives, or that it gives none. */
static void print_geometry(FILE *out, const ptyc_dataset *ds, const pt_native_info *info) {
  if (ds->wavelength_m == 0.0 && ds->detector_distance_m == 0.0 &&
      ds->detector_pixel_size_m == 0.0 && ds->object_pixel_size_m == 0.0) {
    fprintf(out, "  %-12s none given (not needed with /positions_px)\n", "geometry");
    return;
  }
  fprintf(out, "  %-12s", "geometry");
  const char *sep = " ";
  if (ds->wavelength_m > 0.0) {
    fprintf(out, "%swavelength %.4g m", sep, ds->wavelength_m);
    if (info->energy_ev > 0.0)
      fprintf(out, " (%.6g eV)", info->energy_ev);
    sep = ", ";
  }
  if (ds->detector_distance_m > 0.0) {
    fprintf(out, "%sdetector distance %.4g m", sep, ds->detector_distance_m);
    sep = ", ";
  }
  if (ds->detector_pixel_size_m > 0.0) {
    fprintf(out, "%sdetector pixel %.4g m", sep, ds->detector_pixel_size_m);
    sep = ", ";
  }
  if (ds->object_pixel_size_m > 0.0)
    fprintf(out, "%sobject pixel %.4g m%s", sep, ds->object_pixel_size_m,
            info->object_pixel_size_computed ? " (from wavelength, distance and pixel size)"
                                             : "");
  fprintf(out, "\n");
}

ptyc_status ptyc_dataset_describe(const char *path, int n_modes, int batch_size, FILE *out) {
  if (!path || !out)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_describe: NULL argument");
  ptyc_options defaults;
  ptyc_options_default(&defaults);
  if (strlen(path) >= sizeof defaults.data.path)
    return ptyc_fail(PTYC_E_ARG, "%.80s...: path too long", path);
  snprintf(defaults.data.path, sizeof defaults.data.path, "%s", path);
  return ptyc_dataset_describe_opts(&defaults.data, n_modes, batch_size, out);
}

ptyc_status ptyc_dataset_describe_opts(const ptyc_data_options *data_opts, int n_modes,
                                       int batch_size, FILE *out) {
  ptyc_dataset *ds = NULL;
  static const pt_read_info no_info;
  pt_read_info read = no_info;
  const pt_native_info *info = &read.file;
  if (!data_opts || !out)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_describe: NULL argument");
  const char *path = data_opts->path;
  PT_TRY(pt_dataset_read_info(data_opts, &ds, &read));

  const int n = ds->n_patterns, m = ds->m;
  const size_t plane = (size_t)m * m;
  if (n_modes <= 0)
    n_modes = ds->probe_modes > 0 ? ds->probe_modes : 1;
  if (batch_size <= 0)
    batch_size = n < DESCRIBE_DEFAULT_BATCH ? n : DESCRIBE_DEFAULT_BATCH;
  if (batch_size > n)
    batch_size = n;

  /* Positions: their extent, and the object a run with the default options makes. */
  double y_min = ds->positions_px[0], y_max = y_min;
  double x_min = ds->positions_px[1], x_max = x_min;
  for (int j = 1; j < n; j++) {
    double y = ds->positions_px[2 * j], x = ds->positions_px[2 * j + 1];
    y_min = y < y_min ? y : y_min;
    y_max = y > y_max ? y : y_max;
    x_min = x < x_min ? x : x_min;
    x_max = x > x_max ? x : x_max;
  }
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.probe.modes = n_modes;
  int obj_h = 0, obj_w = 0;
  size_t model_nbytes = 0;
  ptyc_model_plan(ds, &opts, &obj_h, &obj_w, &model_nbytes);

  /* Total counts per pattern. */
  double sum_mean = 0.0, sum_min = INFINITY, sum_max = 0.0;
  for (int j = 0; j < n; j++) {
    double sum = 0.0;
    const float *p = ds->patterns + (size_t)j * plane;
    for (size_t i = 0; i < plane; i++)
      sum += p[i];
    sum_mean += sum / n;
    sum_min = sum < sum_min ? sum : sum_min;
    sum_max = sum > sum_max ? sum : sum_max;
  }

  fprintf(out, "%s\n", path);
  fprintf(out, "  %-12s %s\n", "format", ds->format);
  if (read.positions_path[0])
    fprintf(out, "  %-12s %s (positions%s)\n", "second file", read.positions_path,
            strcmp(ds->format, "ptychodus") == 0 ? ", probe, pixel size" : "");
  fprintf(out, "  %-12s N = %d, M = %d, %s, zero frequency at the %s in the file\n",
          "patterns", n, m, info->dp_dtype,
          info->dp_zero_at_corner ? "corner [0][0]" : "centre (index M/2)");
  fprintf(out, "  %-12s %s\n", "options", read.applied[0] ? read.applied : "none");
  if (read.notes[0])
    fprintf(out, "  %-12s %s\n", "note", read.notes);
  fprintf(out, "  %-12s %s; y %.2f .. %.2f, x %.2f .. %.2f px (extent %.1f x %.1f px)\n",
          "positions", info->positions_source, y_min, y_max, x_min, x_max, y_max - y_min,
          x_max - x_min);
  fprintf(out, "  %-12s %d x %d px (every probe window, object.padding_px = %d)\n", "object", obj_h,
          obj_w, opts.object.padding_px);
  print_geometry(out, ds, info);
  if (ds->probe)
    fprintf(out, "  %-12s %d mode(s) of %dx%d (%s)\n", "probe", ds->probe_modes, m, m,
            info->probe_dtype);
  else
    fprintf(out, "  %-12s none: ptyc makes one from the data\n", "probe");
  if (ds->mask) {
    size_t valid = 0;
    for (size_t i = 0; i < plane; i++)
      valid += ds->mask[i];
    fprintf(out, "  %-12s %zu of %zu pixels valid (%s)\n", "mask", valid, plane,
            info->mask_dtype[0] ? info->mask_dtype : "from the options");
  } else {
    fprintf(out, "  %-12s none: every pixel valid\n", "mask");
  }
  fprintf(out, "  %-12s per pattern: mean %.4g, min %.4g, max %.4g\n", "counts", sum_mean,
          sum_min, sum_max);
  if (info->has_truth)
    fprintf(out, "  %-12s /truth/object present (simulated data)\n", "truth");

  /* Memory: the model's arrays (patterns among them) plus the engine's work space. */
  double pattern_bytes = (double)n * plane * sizeof(float);
  double model_bytes = (double)model_nbytes - pattern_bytes;
  ptyc_model model;
  memset(&model, 0, sizeof model);
  model.n_positions = n;
  model.m = m;
  model.n_modes = n_modes;
  model.obj_h = obj_h;
  model.obj_w = obj_w;
  size_t engine_bytes = 0;
  ptyc_options defaults;
  ptyc_options_default(&defaults);
  ptyc_status plan = ptyc_engine_plan_bytes("lsqml", &model, &defaults, batch_size, &engine_bytes);

  char b_patterns[32], b_model[32], b_engine[32], b_total[32];
  format_bytes(b_patterns, sizeof b_patterns, pattern_bytes);
  format_bytes(b_model, sizeof b_model, model_bytes);
  if (plan == PTYC_OK) {
    format_bytes(b_engine, sizeof b_engine, (double)engine_bytes);
    format_bytes(b_total, sizeof b_total, pattern_bytes + model_bytes + (double)engine_bytes);
    fprintf(out, "  %-12s %s = patterns %s + object/probe/positions %s + lsqml work %s "
                 "(%d mode(s), batch %d)\n",
            "memory", b_total, b_patterns, b_model, b_engine, n_modes, batch_size);
  } else {
    fprintf(out, "  %-12s patterns %s + object/probe/positions %s + lsqml work unknown (%s)\n",
            "memory", b_patterns, b_model, ptyc_last_error());
  }
  ptyc_dataset_free(ds);
  return PTYC_OK;
}
