/* Reader of ptychodus datasets: two files.
 *
 *   data.path            diffraction file, /dp (N, M, M), zero frequency at the centre
 *                        (PtychoShelves' layout, which ptychodus writes)
 *   data.positions_path  ptychodus product file (AdvancedPhotonSource/ptychodus, HDF5):
 *       /probe_position_x_m, /probe_position_y_m   (P,) probe centres, metres
 *       /probe_position_indexes                    optional (P,) pattern of each position
 *       /probe  (K, M, M) or (1, K, M, M) complex, attributes pixel_width_m,
 *               pixel_height_m: the object pixel size (x, y)
 *       /object attributes pixel_width_m, pixel_height_m (used if /probe has none)
 *       root attributes probe_energy_eV, detector_object_distance_m
 *
 * With /probe_position_indexes, position p belongs to pattern indexes[p] (patterns that
 * no position names are left out); without it positions and patterns pair in order and
 * their counts must match. The product's probe is the initial probe guess when it has
 * the patterns' size. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"

/* Keeps the patterns named by `indexes` (n of them), in that order. */
static ptyc_status select_patterns(const char *product, ptyc_dataset *ds, const double *indexes,
                                   int n) {
  size_t plane = (size_t)ds->m * ds->m;
  for (int p = 0; p < n; p++)
    if (indexes[p] != floor(indexes[p]) || indexes[p] < 0 || indexes[p] >= ds->n_patterns)
      return ptyc_fail(PTYC_E_FORMAT,
                       "%s: /probe_position_indexes[%d] = %g names no pattern (the "
                       "diffraction file has %d, numbered from 0)",
                       product, p, indexes[p], ds->n_patterns);
  float *kept = malloc((size_t)n * plane * sizeof *kept);
  if (!kept)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory selecting %d patterns", product, n);
  for (int p = 0; p < n; p++)
    memcpy(kept + (size_t)p * plane, ds->patterns + (size_t)indexes[p] * plane,
           plane * sizeof *kept);
  free(ds->patterns);
  ds->patterns = kept;
  ds->n_patterns = n;
  return PTYC_OK;
}

/* The object pixel size (x, y) from /probe's attributes, else /object's; 0 if none. */
static ptyc_status read_pixel_size(const char *product, hid_t file, double *pixel_x,
                                   double *pixel_y) {
  const char *holders[] = {"probe", "object"};
  *pixel_x = *pixel_y = 0.0;
  for (int h = 0; h < 2 && !(*pixel_x > 0.0 && *pixel_y > 0.0); h++) {
    if (pt_h5_dataset_exists(file, holders[h]) != 1)
      continue;
    hid_t dset = H5Dopen2(file, holders[h], H5P_DEFAULT);
    if (dset < 0)
      return pt_h5_fail_read(product, holders[h]);
    char where[32];
    snprintf(where, sizeof where, "/%s", holders[h]);
    ptyc_status st = pt_read_positive_attr(product, dset, where, "pixel_width_m", pixel_x);
    if (st == PTYC_OK)
      st = pt_read_positive_attr(product, dset, where, "pixel_height_m", pixel_y);
    H5Dclose(dset);
    PT_TRY(st);
    if (*pixel_x > 0.0 && !(*pixel_y > 0.0))
      *pixel_y = *pixel_x; /* one given: square pixels */
    if (*pixel_y > 0.0 && !(*pixel_x > 0.0))
      *pixel_x = *pixel_y;
  }
  return PTYC_OK;
}

ptyc_status pt_ptychodus_read(const ptyc_data_options *opts, const char *product,
                              ptyc_dataset **out, pt_read_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  ptyc_dataset *ds = NULL;
  double *x_m = NULL, *y_m = NULL, *indexes = NULL;
  const char *path = opts->path;
  *out = NULL;

  if (!product || !product[0])
    PT_FAIL(PTYC_E_CONFIG,
            "%s: a ptychodus dataset needs its product file (positions, probe, pixel size): "
            "set data.positions_path",
            path);
  snprintf(info->positions_path, sizeof info->positions_path, "%s", product);
  ds = calloc(1, sizeof *ds);
  if (!ds)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
  snprintf(ds->format, sizeof ds->format, "ptychodus");

  /* The diffraction file. */
  PT_CHECK(pt_h5_open_read(path, &file));
  PT_CHECK(pt_read_patterns(path, file, "dp", ds, info));
  pt_h5_close_file(&file);

  /* The product file: positions first, they decide which patterns are used. */
  PT_CHECK(pt_h5_open_read(product, &file));
  const char *names[2] = {"probe_position_x_m", "probe_position_y_m"};
  for (int a = 0; a < 2; a++)
    if (pt_h5_dataset_exists(file, names[a]) == 0)
      PT_FAIL(PTYC_E_FORMAT, "%s: no /%s, so not a ptychodus product file: check "
                             "data.positions_path",
              product, names[a]);
  int n_x = 0, n_y = 0, n_index = 0;
  PT_CHECK(pt_read_vector(product, file, names[0], &x_m, &n_x));
  PT_CHECK(pt_read_vector(product, file, names[1], &y_m, &n_y));
  if (n_x != n_y)
    PT_FAIL(PTYC_E_FORMAT, "%s: %d x positions but %d y positions", product, n_x, n_y);
  if (pt_h5_dataset_exists(file, "probe_position_indexes") != 0) {
    PT_CHECK(pt_read_vector(product, file, "probe_position_indexes", &indexes, &n_index));
    if (n_index != n_x)
      PT_FAIL(PTYC_E_FORMAT, "%s: %d positions but %d entries in /probe_position_indexes",
              product, n_x, n_index);
    PT_CHECK(select_patterns(product, ds, indexes, n_x));
  } else if (n_x != ds->n_patterns) {
    PT_FAIL(PTYC_E_FORMAT, "%s has %d patterns but %s has %d positions (and no "
                           "/probe_position_indexes to pair them)",
            path, ds->n_patterns, product, n_x);
  }

  /* Geometry: the product's, then the job's keys. */
  double pixel_x = 0.0, pixel_y = 0.0;
  PT_CHECK(pt_read_positive_attr(product, file, "the root", "probe_energy_eV",
                                 &info->file.energy_ev));
  PT_CHECK(pt_read_positive_attr(product, file, "the root", "detector_object_distance_m",
                                 &ds->detector_distance_m));
  PT_CHECK(read_pixel_size(product, file, &pixel_x, &pixel_y));
  ds->object_pixel_size_m = pixel_x;
  pt_finish_geometry(opts, ds, &info->file);
  if (opts->object_pixel_size_m > 0.0 || !(pixel_x > 0.0))
    pixel_x = pixel_y = ds->object_pixel_size_m;
  if (ds->detector_pixel_size_m == 0.0 && ds->wavelength_m > 0.0 &&
      ds->detector_distance_m > 0.0 && pixel_x > 0.0)
    ds->detector_pixel_size_m = ds->wavelength_m * ds->detector_distance_m / (ds->m * pixel_x);
  PT_CHECK(pt_positions_from_metres(product, "/probe_position_x_m, /probe_position_y_m", ds,
                                    y_m, x_m, pixel_y, pixel_x));
  snprintf(info->file.positions_source, sizeof info->file.positions_source,
           "/probe_position_y_m + /probe_position_x_m");

  /* The product's probe, as the initial guess when it fits. */
  if (pt_h5_dataset_exists(file, "probe") != 0) {
    int side = 0;
    PT_CHECK(pt_read_probe(product, file, "probe", ds->m, &ds->probe, &ds->probe_modes, &side,
                           info->file.probe_dtype, sizeof info->file.probe_dtype));
    if (!ds->probe) {
      pt_append(info->notes, sizeof info->notes,
                "the product's probe (%dx%d) does not match the %dx%d patterns: not used", side,
                side, ds->m, ds->m);
      info->file.probe_dtype[0] = '\0';
    }
  }
  pt_h5_close_file(&file);
  free(x_m);
  free(y_m);
  free(indexes);
  *out = ds;
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  free(x_m);
  free(y_m);
  free(indexes);
  ptyc_dataset_free(ds);
  return st;
}
