/* Writer of the native HDF5 layout ("ptyc-native", format_version 1; shared/FORMATS.md).
 *
 * The file is written to "<path>.tmp.<pid>" and renamed over `path` only when complete,
 * so a reader never sees half a file. Patterns go to disk with the zero frequency at
 * the centre (the format's default), the mask likewise; complex arrays are compounds
 * {r, i} of float32, which h5py reads as complex64. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/h5util.h"
#include "pt_try.h"
#include "ptyc/dataset.h"

/* /dp: float32 (N, M, M), one chunk per pattern, each pattern moved to the centre
 * layout through one M x M buffer (no full copy of the data). */
static ptyc_status write_patterns(const char *path, hid_t file, const ptyc_dataset *data) {
  ptyc_status st = PTYC_OK;
  hid_t space = H5I_INVALID_HID, mem_space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
  hid_t dset = H5I_INVALID_HID;
  size_t plane = (size_t)data->m * data->m;
  float *centred = malloc(plane * sizeof *centred);
  float *tmp = malloc(plane * sizeof *tmp);
  if (!centred || !tmp)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory writing /dp", path);

  hsize_t dims[3] = {(hsize_t)data->n_patterns, (hsize_t)data->m, (hsize_t)data->m};
  hsize_t one[3] = {1, (hsize_t)data->m, (hsize_t)data->m};
  space = H5Screate_simple(3, dims, NULL);
  mem_space = H5Screate_simple(3, one, NULL);
  dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (space < 0 || mem_space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 3, one) < 0)
    PT_CHECK(pt_h5_fail_write(path, "/dp"));
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 &&
      (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 1) < 0))
    PT_CHECK(pt_h5_fail_write(path, "/dp"));
  dset = H5Dcreate2(file, "dp", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0)
    PT_CHECK(pt_h5_fail_write(path, "/dp"));

  for (int j = 0; j < data->n_patterns; j++) {
    memcpy(centred, data->patterns + (size_t)j * plane, plane * sizeof *centred);
    pt_shift_plane_f32(centred, tmp, data->m, 0);
    hsize_t start[3] = {(hsize_t)j, 0, 0};
    if (H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, one, NULL) < 0 ||
        H5Dwrite(dset, H5T_NATIVE_FLOAT, mem_space, space, H5P_DEFAULT, centred) < 0)
      PT_CHECK(pt_h5_fail_write(path, "/dp"));
  }
  if (H5Dclose(dset) < 0) {
    dset = H5I_INVALID_HID;
    PT_CHECK(pt_h5_fail_write(path, "/dp"));
  }
  dset = H5I_INVALID_HID;
fail:
  pt_h5_close_dataset(&dset);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  pt_h5_close_space(&mem_space);
  pt_h5_close_space(&space);
  free(tmp);
  free(centred);
  return st;
}

/* A complex64 dataset (compound {r, i}) of the given shape. */
static ptyc_status write_c32(const char *path, hid_t loc, const char *name, int rank,
                             const hsize_t *dims, const ptyc_c32 *values) {
  hid_t file_type = pt_h5_c32_filetype();
  hid_t mem_type = pt_h5_c32_memtype("r", "i");
  int rc = -1;
  if (file_type >= 0 && mem_type >= 0)
    rc = pt_h5_write_dataset(loc, name, file_type, mem_type, rank, dims, values, 1);
  pt_h5_close_type(&file_type);
  pt_h5_close_type(&mem_type);
  if (rc < 0) {
    char what[64];
    snprintf(what, sizeof what, "/%s", name);
    return pt_h5_fail_write(path, what);
  }
  return PTYC_OK;
}

/* /mask: uint8 (M, M), zero frequency moved to the centre like the patterns. */
static ptyc_status write_mask(const char *path, hid_t file, const ptyc_dataset *data) {
  size_t plane = (size_t)data->m * data->m;
  uint8_t *centred = malloc(plane), *tmp = malloc(plane);
  ptyc_status st = PTYC_OK;
  if (!centred || !tmp) {
    st = ptyc_fail(PTYC_E_NOMEM, "%s: out of memory writing /mask", path);
  } else {
    for (size_t i = 0; i < plane; i++)
      centred[i] = data->mask[i] != 0;
    pt_shift_plane_u8(centred, tmp, data->m, 0);
    hsize_t dims[2] = {(hsize_t)data->m, (hsize_t)data->m};
    if (pt_h5_write_dataset(file, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dims, centred, 0) < 0)
      st = pt_h5_fail_write(path, "/mask");
  }
  free(tmp);
  free(centred);
  return st;
}

static ptyc_status write_truth(const char *path, hid_t file, const ptyc_truth *truth) {
  ptyc_status st = PTYC_OK;
  hid_t group = H5Gcreate2(file, "truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (group < 0)
    return pt_h5_fail_write(path, "/truth");
  if (truth->object) {
    hsize_t dims[2] = {(hsize_t)truth->obj_h, (hsize_t)truth->obj_w};
    PT_CHECK(write_c32(path, group, "object", 2, dims, truth->object));
  }
  if (truth->probe && truth->probe_modes > 0) {
    hsize_t dims[3] = {(hsize_t)truth->probe_modes, (hsize_t)truth->m, (hsize_t)truth->m};
    PT_CHECK(write_c32(path, group, "probe", 3, dims, truth->probe));
  }
fail:
  pt_h5_close_group(&group);
  return st;
}

/* Root attributes: format, version, layout, the nonzero geometry, generator attrs. */
static ptyc_status write_attributes(const char *path, hid_t file,
                                    const ptyc_dataset_write_args *args) {
  const ptyc_dataset *data = args->data;
  if (pt_h5_write_attr_string(file, "format", "ptyc-native") < 0 ||
      pt_h5_write_attr_int(file, "format_version", 1) < 0 ||
      pt_h5_write_attr_string(file, "dp_zero_frequency", "centre") < 0)
    return pt_h5_fail_write(path, "the format attributes");
  const struct {
    const char *name;
    double value;
  } geometry[] = {
      {"wavelength_m", data->wavelength_m},
      {"detector_distance_m", data->detector_distance_m},
      {"detector_pixel_size_m", data->detector_pixel_size_m},
      {"object_pixel_size_m", data->object_pixel_size_m},
  };
  for (size_t i = 0; i < sizeof geometry / sizeof geometry[0]; i++)
    if (geometry[i].value != 0.0 &&
        pt_h5_write_attr_double(file, geometry[i].name, geometry[i].value) < 0)
      return pt_h5_fail_write(path, geometry[i].name);
  for (int i = 0; i < args->n_attrs; i++) {
    const char *name = args->attrs[i].name;
    if (!name || !name[0])
      return ptyc_fail(PTYC_E_ARG, "%s: generator attribute %d has no name", path, i);
    if (H5Aexists(file, name) > 0)
      return ptyc_fail(PTYC_E_ARG, "%s: attribute %s given twice (or clashes with a format "
                                   "attribute)", path, name);
    if (pt_h5_write_attr_double(file, name, args->attrs[i].value) < 0)
      return pt_h5_fail_write(path, name);
  }
  return PTYC_OK;
}

/* Checks what the writer is given before it creates anything. */
static ptyc_status check_args(const char *path, const ptyc_dataset_write_args *args) {
  if (!path || !args || !args->data)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_write: NULL argument");
  const ptyc_dataset *data = args->data;
  if (data->n_patterns <= 0 || data->m <= 0 || !data->patterns || !data->positions_px)
    return ptyc_fail(PTYC_E_ARG, "%s: nothing to write (need patterns and positions, N and M "
                                 "> 0)", path);
  if (data->probe && data->probe_modes <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: a probe is given with %d modes", path, data->probe_modes);
  if (args->n_attrs < 0 || (args->n_attrs > 0 && !args->attrs))
    return ptyc_fail(PTYC_E_ARG, "%s: bad generator attribute list", path);
  const ptyc_truth *truth = args->truth;
  if (truth && truth->object && (truth->obj_h <= 0 || truth->obj_w <= 0))
    return ptyc_fail(PTYC_E_ARG, "%s: truth object is %dx%d", path, truth->obj_h, truth->obj_w);
  if (truth && truth->probe && truth->probe_modes > 0 && truth->m <= 0)
    return ptyc_fail(PTYC_E_ARG, "%s: truth probe has size %d", path, truth->m);
  return PTYC_OK;
}

ptyc_status ptyc_dataset_write(const char *path, const ptyc_dataset_write_args *args) {
  ptyc_status st = PTYC_OK;
  pt_h5_atomic out = {.file = H5I_INVALID_HID};

  PT_TRY(check_args(path, args));
  const ptyc_dataset *data = args->data;

  PT_CHECK(pt_h5_atomic_create(path, &out));
  hid_t file = out.file;

  PT_CHECK(write_patterns(path, file, data));
  hsize_t pos_dims[2] = {(hsize_t)data->n_patterns, 2};
  if (pt_h5_write_dataset(file, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pos_dims,
                          data->positions_px, 0) < 0)
    PT_CHECK(pt_h5_fail_write(path, "/positions_px"));
  if (data->probe) {
    hsize_t dims[3] = {(hsize_t)data->probe_modes, (hsize_t)data->m, (hsize_t)data->m};
    PT_CHECK(write_c32(path, file, "probe", 3, dims, data->probe));
  }
  if (data->mask)
    PT_CHECK(write_mask(path, file, data));
  if (args->truth && (args->truth->object || args->truth->probe))
    PT_CHECK(write_truth(path, file, args->truth));
  PT_CHECK(write_attributes(path, file, args));

  return pt_h5_atomic_commit(&out);
fail:
  pt_h5_atomic_abort(&out);
  return st;
}
