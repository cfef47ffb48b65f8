/* recon.h5: the reconstruction output of shared/FORMATS.md ("ptyc-recon", version 1).
 *
 *   /object (H, W) complex64, /probe (K, M, M) complex64, /positions_px (N, 2) float64,
 *   /loss and /iteration_time_s (iterations done,) float64; root attributes engine,
 *   iterations, n_iterations_done, ptyc_version, config, object_pixel_size_m, format,
 *   format_version.
 *
 * Written atomically: "<path>.tmp.<pid>" first, renamed over `path` when complete, so a
 * snapshot being rewritten is never seen half-written. */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "data/h5util.h"
#include "pt_try.h"
#include "ptyc/recon_io.h"

static ptyc_status check_recon(const char *path, const ptyc_recon *r) {
  if (!path || !r)
    return ptyc_fail(PTYC_E_ARG, "ptyc_recon_write: NULL argument");
  if (!r->object || r->obj_h <= 0 || r->obj_w <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: no object to write (%dx%d)", path, r->obj_h, r->obj_w);
  if (!r->probe || r->n_modes <= 0 || r->m <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: no probe to write (%d modes of %dx%d)", path, r->n_modes,
                     r->m, r->m);
  if (r->n_positions < 0 || (r->n_positions > 0 && !r->positions_px))
    return ptyc_fail(PTYC_E_ARG, "%s: %d positions but no position array", path,
                     r->n_positions);
  if (r->n_iterations < 0 || (r->n_iterations > 0 && !r->loss))
    return ptyc_fail(PTYC_E_ARG, "%s: %d iterations but no loss array", path, r->n_iterations);
  return PTYC_OK;
}

/* A complex64 dataset (compound {r, i}, as h5py writes complex64). */
static ptyc_status write_c32(const char *path, hid_t file, const char *name, int rank,
                             const hsize_t *dims, const ptyc_c32 *values) {
  hid_t file_type = pt_h5_c32_filetype();
  hid_t mem_type = pt_h5_c32_memtype("r", "i");
  int rc = -1;
  if (file_type >= 0 && mem_type >= 0)
    rc = pt_h5_write_dataset(file, name, file_type, mem_type, rank, dims, values, 0);
  pt_h5_close_type(&file_type);
  pt_h5_close_type(&mem_type);
  return rc < 0 ? pt_h5_fail_write(path, name) : PTYC_OK;
}

static ptyc_status write_doubles(const char *path, hid_t file, const char *name, int rank,
                                 const hsize_t *dims, const double *values) {
  if (pt_h5_write_dataset(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, values, 0) < 0)
    return pt_h5_fail_write(path, name);
  return PTYC_OK;
}

ptyc_status ptyc_recon_write(const char *path, const ptyc_recon *recon) {
  ptyc_status st = PTYC_OK;
  pt_h5_atomic out = {.file = H5I_INVALID_HID};
  double *zero_times = NULL;

  PT_TRY(check_recon(path, recon));

  PT_CHECK(pt_h5_atomic_create(path, &out));
  hid_t file = out.file;

  hsize_t obj_dims[2] = {(hsize_t)recon->obj_h, (hsize_t)recon->obj_w};
  PT_CHECK(write_c32(path, file, "object", 2, obj_dims, recon->object));
  hsize_t probe_dims[3] = {(hsize_t)recon->n_modes, (hsize_t)recon->m, (hsize_t)recon->m};
  PT_CHECK(write_c32(path, file, "probe", 3, probe_dims, recon->probe));
  hsize_t pos_dims[2] = {(hsize_t)recon->n_positions, 2};
  PT_CHECK(write_doubles(path, file, "positions_px", 2, pos_dims, recon->positions_px));

  /* Per-iteration curves, as long as the iterations done so far. */
  hsize_t iter_dims[1] = {(hsize_t)recon->n_iterations};
  const double *times = recon->iteration_time_s;
  if (!times && recon->n_iterations > 0) {
    zero_times = calloc((size_t)recon->n_iterations, sizeof *zero_times);
    if (!zero_times)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
    times = zero_times;
  }
  PT_CHECK(write_doubles(path, file, "loss", 1, iter_dims, recon->loss));
  PT_CHECK(write_doubles(path, file, "iteration_time_s", 1, iter_dims, times));

  if (pt_h5_write_attr_string(file, "format", "ptyc-recon") < 0 ||
      pt_h5_write_attr_int(file, "format_version", 1) < 0 ||
      pt_h5_write_attr_string(file, "engine", recon->engine) < 0 ||
      pt_h5_write_attr_int(file, "iterations", recon->iterations) < 0 ||
      pt_h5_write_attr_int(file, "n_iterations_done", recon->n_iterations) < 0 ||
      pt_h5_write_attr_string(file, "ptyc_version", PTYC_VERSION_STRING) < 0 ||
      pt_h5_write_attr_string(file, "config", recon->config_text ? recon->config_text : "") < 0 ||
      pt_h5_write_attr_double(file, "object_pixel_size_m", recon->object_pixel_size_m) < 0)
    PT_CHECK(pt_h5_fail_write(path, "the attributes"));

  st = pt_h5_atomic_commit(&out);
  free(zero_times);
  return st;
fail:
  pt_h5_atomic_abort(&out);
  free(zero_times);
  return st;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Reads a complex dataset of rank `min_rank`..3 into *out; dims are returned. */
static ptyc_status read_complex(const char *path, hid_t file, const char *name, int min_rank,
                                int *rank, hsize_t dims[PT_H5_MAX_RANK], ptyc_c32 **out) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  char dtype[32], shape[128];
  size_t count = 1;

  if (pt_h5_dataset_exists(file, name) == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /%s: not a complete ptyc reconstruction", path, name);
  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, rank, dims));
  int ok = *rank >= min_rank && *rank <= 3;
  for (int d = 0; ok && d < *rank; d++) {
    ok = dims[d] > 0 && dims[d] <= INT_MAX;
    count *= ok ? (size_t)dims[d] : 1;
  }
  if (!ok) {
    pt_h5_format_shape(shape, sizeof shape, *rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has the unexpected shape %s", path, name, shape);
  }
  PT_CHECK(pt_h5_read_c32(path, dset, name, count, out, dtype, sizeof dtype));
fail:
  pt_h5_close_dataset(&dset);
  return st;
}

/* Reads a float64 dataset of shape (n,) or (n, cols) into *out (NULL when n = 0). */
static ptyc_status read_doubles(const char *path, hid_t file, const char *name, int cols,
                                int *n, double **out) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];
  *out = NULL;
  *n = 0;

  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  int want_rank = cols > 1 ? 2 : 1;
  if (rank != want_rank || (cols > 1 && dims[1] != (hsize_t)cols) || dims[0] > INT_MAX) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has the unexpected shape %s", path, name, shape);
  }
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected float64", path, name,
            dtype);
  *n = (int)dims[0];
  if (*n > 0) {
    *out = malloc((size_t)*n * (size_t)cols * sizeof(double));
    if (!*out)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
  }
fail:
  pt_h5_close_dataset(&dset);
  return st;
}

ptyc_status ptyc_recon_read(const char *path, ptyc_recon **out) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  ptyc_recon *r = NULL;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char format[64];

  if (!path || !out)
    return ptyc_fail(PTYC_E_ARG, "ptyc_recon_read: NULL argument");
  *out = NULL;
  pt_h5_quiet();
  PT_CHECK(pt_h5_open_read(path, &file));
  if (pt_h5_attr_string(file, "format", format, sizeof format) == 1 &&
      strcmp(format, "ptyc-recon") != 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: format is \"%s\", not a ptyc reconstruction (\"ptyc-recon\")",
            path, format);
  r = calloc(1, sizeof *r);
  if (!r)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);

  PT_CHECK(read_complex(path, file, "object", 2, &rank, dims, &r->object));
  if (rank != 2)
    PT_FAIL(PTYC_E_FORMAT, "%s: /object has %d dimensions; expected (H, W)", path, rank);
  r->obj_h = (int)dims[0];
  r->obj_w = (int)dims[1];

  PT_CHECK(read_complex(path, file, "probe", 2, &rank, dims, &r->probe));
  if (dims[rank - 1] != dims[rank - 2])
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe modes are not square", path);
  r->n_modes = rank == 3 ? (int)dims[0] : 1;
  r->m = (int)dims[rank - 1];

  if (pt_h5_dataset_exists(file, "positions_px") != 0)
    PT_CHECK(read_doubles(path, file, "positions_px", 2, &r->n_positions, &r->positions_px));
  if (pt_h5_dataset_exists(file, "loss") != 0)
    PT_CHECK(read_doubles(path, file, "loss", 1, &r->n_iterations, &r->loss));
  if (pt_h5_dataset_exists(file, "iteration_time_s") != 0) {
    int n_times = 0;
    PT_CHECK(read_doubles(path, file, "iteration_time_s", 1, &n_times, &r->iteration_time_s));
    if (n_times != r->n_iterations)
      PT_FAIL(PTYC_E_FORMAT, "%s: /loss has %d entries but /iteration_time_s has %d", path,
              r->n_iterations, n_times);
  }

  double value = 0.0;
  if (pt_h5_attr_double(file, "iterations", &value) == 1)
    r->iterations = (int)value;
  if (pt_h5_attr_double(file, "object_pixel_size_m", &value) == 1)
    r->object_pixel_size_m = value;
  pt_h5_attr_string(file, "engine", r->engine, sizeof r->engine);
  if (pt_h5_attr_string_alloc(file, "config", &r->config_text) < 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: attribute config is not a string", path);

  pt_h5_close_file(&file);
  *out = r;
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  ptyc_recon_free(r);
  return st;
}

void ptyc_recon_free(ptyc_recon *recon) {
  if (!recon)
    return;
  free(recon->object);
  free(recon->probe);
  free(recon->positions_px);
  free(recon->loss);
  free(recon->iteration_time_s);
  free(recon->config_text);
  free(recon);
}
