/* ptychodus_product.h5: a reconstruction as a ptychodus product file, so that results
 * open in the ptychodus GUI (layout in include/ptyc/recon_io.h; it follows ptychodus'
 * own HDF5 product reader: root metadata attributes, probe positions in metres, /probe
 * and /object with their pixel sizes, the loss curve).
 *
 * Positions: ptyc keeps top-left corners of the probe window in object pixels; ptychodus
 * keeps probe centres in metres and maps them to the object with
 *   x_px = (x_m - center_x_m) / pixel_width_m + W / 2,
 * so with the object's centre at 0, x_m = pixel * (x_top_left + M / 2 - W / 2) (and the
 * same in y). Complex arrays are compounds {r, i} of float32, which h5py (and so
 * ptychodus) reads as complex64.
 *
 * Written atomically: "<path>.tmp.<pid>", renamed over `path` when complete. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "data/h5util.h"
#include "pt_try.h"
#include "ptyc/recon_io.h"

static ptyc_status check_recon(const char *path, const ptyc_recon *r) {
  if (!path || !r)
    return ptyc_fail(PTYC_E_ARG, "ptyc_ptychodus_write: NULL argument");
  if (!r->object || r->obj_h <= 0 || r->obj_w <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: no object to write (%dx%d)", path, r->obj_h, r->obj_w);
  if (!r->probe || r->n_modes <= 0 || r->m <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: no probe to write (%d modes of %dx%d)", path, r->n_modes,
                     r->m, r->m);
  if (r->n_positions <= 0 || !r->positions_px)
    return ptyc_fail(PTYC_E_ARG, "%s: no positions to write", path);
  if (r->n_iterations < 0 || (r->n_iterations > 0 && !r->loss))
    return ptyc_fail(PTYC_E_ARG, "%s: %d iterations but no loss array", path, r->n_iterations);
  if (!(r->object_pixel_size_m > 0.0))
    return ptyc_fail(PTYC_E_ARG, "%s: a ptychodus product needs the object pixel size (it gives "
                                 "positions in metres): set data.object_pixel_size_m",
                     path);
  return PTYC_OK;
}

/* A complex64 dataset with the pixel-size attributes ptychodus reads (and, for the
 * object, its centre). */
static ptyc_status write_image(const char *path, hid_t file, const char *name, int rank,
                               const hsize_t *dims, const ptyc_c32 *values, double pixel_m,
                               int with_centre) {
  hid_t file_type = pt_h5_c32_filetype(), mem_type = pt_h5_c32_memtype("r", "i");
  hid_t dset = H5I_INVALID_HID;
  int rc = -1;
  if (file_type >= 0 && mem_type >= 0)
    rc = pt_h5_write_dataset(file, name, file_type, mem_type, rank, dims, values, 0);
  pt_h5_close_type(&file_type);
  pt_h5_close_type(&mem_type);
  if (rc == 0) {
    dset = H5Dopen2(file, name, H5P_DEFAULT);
    rc = dset < 0 || pt_h5_write_attr_double(dset, "pixel_width_m", pixel_m) < 0 ||
                 pt_h5_write_attr_double(dset, "pixel_height_m", pixel_m) < 0 ||
                 (with_centre && (pt_h5_write_attr_double(dset, "center_x_m", 0.0) < 0 ||
                                  pt_h5_write_attr_double(dset, "center_y_m", 0.0) < 0))
             ? -1
             : 0;
    if (dset >= 0 && H5Dclose(dset) < 0)
      rc = -1;
  }
  return rc < 0 ? pt_h5_fail_write(path, name) : PTYC_OK;
}

/* A 1-D dataset of `n` values (n may be 0: an empty array). */
static ptyc_status write_vector(const char *path, hid_t file, const char *name, hid_t file_type,
                                hid_t mem_type, hsize_t n, const void *values) {
  hsize_t dims[1] = {n};
  if (pt_h5_write_dataset(file, name, file_type, mem_type, 1, dims, values, 0) < 0)
    return pt_h5_fail_write(path, name);
  return PTYC_OK;
}

/* Positions (probe centres in metres about the object's centre), their indexes and the
 * loss curve with its epochs. */
static ptyc_status write_vectors(const char *path, hid_t file, const ptyc_recon *r) {
  ptyc_status st = PTYC_OK;
  int n = r->n_positions, iters = r->n_iterations;
  double *x_m = malloc((size_t)n * sizeof *x_m), *y_m = malloc((size_t)n * sizeof *y_m);
  long long *indexes = malloc((size_t)n * sizeof *indexes);
  long long *epochs = malloc((size_t)(iters > 0 ? iters : 1) * sizeof *epochs);
  double empty = 0.0;
  if (!x_m || !y_m || !indexes || !epochs)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
  double dx = r->object_pixel_size_m, half_m = r->m / 2.0;
  for (int j = 0; j < n; j++) {
    y_m[j] = dx * (r->positions_px[2 * j] + half_m - r->obj_h / 2.0);
    x_m[j] = dx * (r->positions_px[2 * j + 1] + half_m - r->obj_w / 2.0);
    indexes[j] = j;
  }
  for (int i = 0; i < iters; i++)
    epochs[i] = i;
  PT_CHECK(write_vector(path, file, "probe_position_indexes", H5T_STD_I64LE, H5T_NATIVE_LLONG,
                        (hsize_t)n, indexes));
  PT_CHECK(write_vector(path, file, "probe_position_x_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        (hsize_t)n, x_m));
  PT_CHECK(write_vector(path, file, "probe_position_y_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        (hsize_t)n, y_m));
  PT_CHECK(write_vector(path, file, "loss_epochs", H5T_STD_I64LE, H5T_NATIVE_LLONG,
                        (hsize_t)iters, epochs));
  PT_CHECK(write_vector(path, file, "loss_values", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        (hsize_t)iters, r->loss));
  /* One object slice: no spacing between layers. */
  PT_CHECK(write_vector(path, file, "object_layer_spacing_m", H5T_IEEE_F64LE,
                        H5T_NATIVE_DOUBLE, 0, &empty));
  /* The names of older ptychodus releases. */
  PT_CHECK(write_vector(path, file, "object_layer_distance_m", H5T_IEEE_F64LE,
                        H5T_NATIVE_DOUBLE, 0, &empty));
  PT_CHECK(write_vector(path, file, "costs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)iters,
                        r->loss));
fail:
  free(x_m);
  free(y_m);
  free(indexes);
  free(epochs);
  return st;
}

/* The root metadata ptychodus' reader requires (it fails on a missing one). */
static ptyc_status write_metadata(const char *path, hid_t file, const ptyc_recon *r,
                                  const char *name) {
  char comments[256];
  snprintf(comments, sizeof comments, "ptyc %s, engine %s, %d of %d iterations",
           PTYC_VERSION_STRING, r->engine[0] ? r->engine : "?", r->n_iterations, r->iterations);
  double energy_ev = r->wavelength_m > 0.0 ? PT_HC_EV_M / r->wavelength_m : 0.0;
  if (pt_h5_write_attr_string(file, "name", name && name[0] ? name : "ptyc") < 0 ||
      pt_h5_write_attr_string(file, "comments", comments) < 0 ||
      pt_h5_write_attr_double(file, "detector_object_distance_m", r->detector_distance_m) < 0 ||
      pt_h5_write_attr_double(file, "probe_energy_eV", energy_ev) < 0 ||
      pt_h5_write_attr_double(file, "probe_photon_count", 0.0) < 0 ||
      pt_h5_write_attr_double(file, "exposure_time_s", 0.0) < 0 ||
      pt_h5_write_attr_double(file, "mass_attenuation_m2_kg", 0.0) < 0 ||
      pt_h5_write_attr_double(file, "tomography_angle_deg", 0.0) < 0)
    return pt_h5_fail_write(path, "the metadata attributes");
  return PTYC_OK;
}

ptyc_status ptyc_ptychodus_write(const char *path, const ptyc_recon *recon, const char *name) {
  ptyc_status st = PTYC_OK;
  pt_h5_atomic out = {.file = H5I_INVALID_HID};

  PT_TRY(check_recon(path, recon));

  PT_CHECK(pt_h5_atomic_create(path, &out));
  hid_t file = out.file;

  PT_CHECK(write_metadata(path, file, recon, name));
  PT_CHECK(write_vectors(path, file, recon));
  hsize_t probe_dims[3] = {(hsize_t)recon->n_modes, (hsize_t)recon->m, (hsize_t)recon->m};
  PT_CHECK(write_image(path, file, "probe", 3, probe_dims, recon->probe,
                       recon->object_pixel_size_m, 0));
  hsize_t obj_dims[2] = {(hsize_t)recon->obj_h, (hsize_t)recon->obj_w};
  PT_CHECK(write_image(path, file, "object", 2, obj_dims, recon->object,
                       recon->object_pixel_size_m, 1));

  return pt_h5_atomic_commit(&out);
fail:
  pt_h5_atomic_abort(&out);
  return st;
}
