/* Reader of the native HDF5 layout ("ptyc-native", shared/FORMATS.md).
 *
 * Every defect of a file fails with one line that names the file, the problem and,
 * where it helps, what to do. Patterns are converted to float and moved to ptyc's
 * in-memory layout (zero frequency at [0][0]); positions given in metres are turned
 * into top-left object pixels. */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/h5util.h"
#include "data/native.h"
#include "pt_try.h"
#include "ptyc/dataset.h"

/* Largest pattern side accepted: far beyond any detector, small enough that M * M
 * and the index arithmetic never overflow. */
#define MAX_PATTERN_SIDE 65536
/* Largest number of probe modes accepted in /probe. */
#define MAX_PROBE_MODES 4096

/* ---- small helpers ----------------------------------------------------------------- */

/* Index of the first non-finite complex value, or -1. */
static long long first_non_finite_c32(const ptyc_c32 *v, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (!isfinite(v[i].re) || !isfinite(v[i].im))
      return (long long)i;
  return -1;
}

/* Case-insensitive string equality (ASCII). */
static int same_word(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
      return 0;
  return *a == *b;
}

/* Reads rows [first, first + count) of the first dimension of `dset` (all of each row)
 * into `buf` as `memtype`: an HDF5 hyperslab, so a share of a large file costs only its
 * own memory. Returns the H5Dread result (< 0 on failure). */
static herr_t read_rows(hid_t dset, hid_t memtype, int rank, const hsize_t *dims, int first,
                        int count, void *buf) {
  hsize_t start[PT_H5_MAX_RANK] = {0}, size[PT_H5_MAX_RANK];
  for (int d = 0; d < rank; d++)
    size[d] = dims[d];
  if (first == 0 && (hsize_t)count == dims[0])
    return H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  start[0] = (hsize_t)first;
  size[0] = (hsize_t)count;
  hid_t file_space = H5Dget_space(dset), mem_space = H5Screate_simple(rank, size, NULL);
  herr_t err = -1;
  if (file_space >= 0 && mem_space >= 0 &&
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, size, NULL) >= 0)
    err = H5Dread(dset, memtype, mem_space, file_space, H5P_DEFAULT, buf);
  if (mem_space >= 0)
    H5Sclose(mem_space);
  if (file_space >= 0)
    H5Sclose(file_space);
  return err;
}

/* ---- /dp --------------------------------------------------------------------------- */

/* Lists up to a few root members for the "no /dp" message, e.g. "/entry_1, /cxi_version". */
static void list_root(hid_t file, char *buf, size_t size, int *looks_cxi) {
  H5G_info_t ginfo;
  *looks_cxi = 0;
  buf[0] = '\0';
  if (H5Gget_info(file, &ginfo) < 0 || ginfo.nlinks == 0) {
    snprintf(buf, size, "nothing: the file is empty");
    return;
  }
  size_t used = 0;
  hsize_t shown = ginfo.nlinks < 6 ? ginfo.nlinks : 6;
  for (hsize_t i = 0; i < shown && used < size; i++) {
    char name[128];
    if (H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                           H5P_DEFAULT) < 0)
      continue;
    if (strcmp(name, "entry_1") == 0 || strcmp(name, "cxi_version") == 0)
      *looks_cxi = 1;
    used += (size_t)snprintf(buf + used, size - used, "%s/%s", used ? ", " : "", name);
  }
  if (ginfo.nlinks > shown && used < size)
    snprintf(buf + used, size - used, ", ... (%llu in all)", (unsigned long long)ginfo.nlinks);
}

/* Reads the dp_zero_frequency attribute (root first, then /dp): *corner = 1 for
 * "corner", 0 for "centre"/"center" or when absent. */
static ptyc_status read_layout(const char *path, hid_t file, hid_t dset, int *corner) {
  char value[64];
  *corner = 0;
  int got = pt_h5_attr_string(file, "dp_zero_frequency", value, sizeof value);
  if (got == 0)
    got = pt_h5_attr_string(dset, "dp_zero_frequency", value, sizeof value);
  if (got < 0)
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: attribute dp_zero_frequency is not a string; expected \"centre\" "
                     "or \"corner\"",
                     path);
  if (got == 0 || same_word(value, "centre") || same_word(value, "center"))
    return PTYC_OK;
  if (same_word(value, "corner")) {
    *corner = 1;
    return PTYC_OK;
  }
  return ptyc_fail(PTYC_E_FORMAT,
                   "%s: dp_zero_frequency is \"%s\"; expected \"centre\" (zero frequency at "
                   "index M/2) or \"corner\" (at [0][0])",
                   path, value);
}

static ptyc_status read_patterns(const char *path, hid_t file, ptyc_dataset *ds,
                                 pt_native_info *info, pt_share *share) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  float *tmp = NULL;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;

  int exists = pt_h5_dataset_exists(file, "dp");
  if (exists == 0) {
    char found[512];
    int looks_cxi = 0;
    list_root(file, found, sizeof found, &looks_cxi);
    PT_FAIL(PTYC_E_FORMAT,
            "%s: no /dp dataset, so not a ptyc-native file (found %s)%s: convert it to the "
            "native layout of FORMATS.md",
            path, found,
            looks_cxi ? "; it looks like CXI: use data.format = \"cxi\" or \"auto\"" : "");
  }
  PT_CHECK(pt_h5_open_dataset(path, file, "dp", &dset, &rank, dims));
  if (rank != 3)
    PT_FAIL(PTYC_E_FORMAT, "%s: /dp has %d dimension(s); expected (N, M, M) patterns", path,
            rank);
  if (dims[1] != dims[2])
    PT_FAIL(PTYC_E_FORMAT, "%s: /dp is %llux%llu; patterns must be square", path,
            (unsigned long long)dims[1], (unsigned long long)dims[2]);
  if (dims[0] == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /dp has no patterns (N = 0)", path);
  if (dims[1] == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /dp holds empty 0x0 patterns", path);
  if (dims[0] > INT_MAX || dims[1] > MAX_PATTERN_SIDE)
    PT_FAIL(PTYC_E_FORMAT, "%s: /dp is too large (%llu patterns of %llux%llu)", path,
            (unsigned long long)dims[0], (unsigned long long)dims[1],
            (unsigned long long)dims[2]);

  H5T_class_t cls = pt_h5_dataset_class(dset, info->dp_dtype, sizeof info->dp_dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT,
            "%s: /dp has unsupported type %s; expected float32, float64, uint16, uint32 or "
            "int32 intensities",
            path, info->dp_dtype);

  PT_CHECK(pt_share_locate(share, (int)dims[0], path));
  int n = share->count, m = (int)dims[1]; /* the patterns kept: all, or a share */
  size_t plane = (size_t)m * m, nbytes = 0;
  if (!pt_checked_product((size_t)n, plane, sizeof(float), &nbytes))
    PT_FAIL(PTYC_E_NOMEM, "%s: /dp (%d patterns of %dx%d) is too large for this machine", path,
            n, m, m);
  ds->patterns = malloc(nbytes);
  if (!ds->patterns)
    PT_FAIL(PTYC_E_NOMEM, "%s: cannot allocate %.2f GiB for /dp (%d patterns of %dx%d)", path,
            (double)nbytes / (1u << 30), n, m, m);
  ds->n_patterns = n;
  ds->m = m;
  /* HDF5 converts any integer or float type to float while reading. */
  if (read_rows(dset, H5T_NATIVE_FLOAT, 3, dims, share->first, n, ds->patterns) < 0)
    PT_CHECK(pt_h5_fail_read(path, "dp"));

  PT_CHECK(read_layout(path, file, dset, &info->dp_zero_at_corner));

  for (int j = 0; j < n; j++) {
    const float *p = ds->patterns + (size_t)j * plane;
    for (size_t i = 0; i < plane; i++) {
      if (!isfinite(p[i]))
        PT_FAIL(PTYC_E_FORMAT, "%s: /dp holds NaN or Inf (pattern %d)", path, share->first + j);
      if (p[i] < 0.0f)
        PT_FAIL(PTYC_E_FORMAT,
                "%s: /dp holds negative intensities (pattern %d, value %g): clip or offset "
                "the data to counts >= 0",
                path, share->first + j, (double)p[i]);
    }
  }

  if (!info->dp_zero_at_corner) {
    tmp = malloc(plane * sizeof *tmp);
    if (!tmp)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
    for (int j = 0; j < n; j++)
      pt_shift_plane_f32(ds->patterns + (size_t)j * plane, tmp, m, 1);
  }
fail:
  free(tmp);
  pt_h5_close_dataset(&dset);
  return st;
}

/* ---- geometry ---------------------------------------------------------------------- */

/* Reads one optional positive geometry attribute; 0 (or absent) leaves *value at 0. */
static ptyc_status read_geometry_attr(const char *path, hid_t file, const char *name,
                                      double *value) {
  double v = 0.0;
  *value = 0.0;
  int got = pt_h5_attr_double(file, name, &v);
  if (got < 0)
    return ptyc_fail(PTYC_E_FORMAT, "%s: root attribute %s is not a single number", path, name);
  if (got == 0 || v == 0.0)
    return PTYC_OK;
  if (!isfinite(v) || v < 0.0)
    return ptyc_fail(PTYC_E_FORMAT, "%s: root attribute %s = %g; expected a positive number "
                                    "(SI units)",
                     path, name, v);
  *value = v;
  return PTYC_OK;
}

static ptyc_status read_geometry(const char *path, hid_t file, ptyc_dataset *ds,
                                 pt_native_info *info) {
  PT_TRY(read_geometry_attr(path, file, "wavelength_m", &ds->wavelength_m));
  PT_TRY(read_geometry_attr(path, file, "energy_ev", &info->energy_ev));
  PT_TRY(read_geometry_attr(path, file, "detector_distance_m", &ds->detector_distance_m));
  PT_TRY(read_geometry_attr(path, file, "detector_pixel_size_m", &ds->detector_pixel_size_m));
  PT_TRY(read_geometry_attr(path, file, "object_pixel_size_m", &ds->object_pixel_size_m));
  if (ds->wavelength_m == 0.0 && info->energy_ev > 0.0)
    ds->wavelength_m = PT_HC_EV_M / info->energy_ev;
  if (ds->object_pixel_size_m == 0.0 && ds->wavelength_m > 0.0 &&
      ds->detector_distance_m > 0.0 && ds->detector_pixel_size_m > 0.0) {
    ds->object_pixel_size_m =
        ds->wavelength_m * ds->detector_distance_m / (ds->m * ds->detector_pixel_size_m);
    info->object_pixel_size_computed = 1;
  }
  return PTYC_OK;
}

/* ---- positions --------------------------------------------------------------------- */

static ptyc_status read_positions_px(const char *path, hid_t file, ptyc_dataset *ds,
                                     const pt_share *share) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];

  PT_CHECK(pt_h5_open_dataset(path, file, "positions_px", &dset, &rank, dims));
  if (rank != 2 || dims[1] != 2) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /positions_px is %s; expected (N, 2) (y, x) pairs", path, shape);
  }
  if (dims[0] != (hsize_t)share->n_total)
    PT_FAIL(PTYC_E_FORMAT, "%s: %d patterns but %llu positions in /positions_px", path,
            share->n_total, (unsigned long long)dims[0]);
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /positions_px has unsupported type %s; expected float64", path,
            dtype);
  ds->positions_px = malloc((size_t)ds->n_patterns * 2 * sizeof(double));
  if (!ds->positions_px)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /positions_px", path);
  if (read_rows(dset, H5T_NATIVE_DOUBLE, 2, dims, share->first, share->count,
                ds->positions_px) < 0)
    PT_CHECK(pt_h5_fail_read(path, "positions_px"));
fail:
  pt_h5_close_dataset(&dset);
  return st;
}

/* Reads the share's part of /probe_position_<axis>_m (N,) into every second element of
 * `dst`. */
static ptyc_status read_positions_m_axis(const char *path, hid_t file, const char *name,
                                         const pt_share *share, double *dst) {
  int n = share->count;
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];
  double *values = NULL;

  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  if (rank != 1) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected (N,) probe-centre positions in metres",
            path, name, shape);
  }
  if (dims[0] != (hsize_t)share->n_total)
    PT_FAIL(PTYC_E_FORMAT, "%s: %d patterns but %llu positions in /%s", path, share->n_total,
            (unsigned long long)dims[0], name);
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected float64", path, name,
            dtype);
  values = malloc((size_t)n * sizeof *values);
  if (!values)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
  if (read_rows(dset, H5T_NATIVE_DOUBLE, 1, dims, share->first, n, values) < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  for (int j = 0; j < n; j++)
    dst[2 * j] = values[j];
fail:
  free(values);
  pt_h5_close_dataset(&dset);
  return st;
}

/* Probe-centre positions in metres -> top-left corner in object pixels:
 * px = pos_m / object_pixel_size_m - M / 2. */
static ptyc_status read_positions_m(const char *path, hid_t file, ptyc_dataset *ds,
                                    const pt_share *share) {
  if (ds->object_pixel_size_m <= 0.0) {
    char missing[160] = "";
    size_t used = 0;
    if (ds->wavelength_m <= 0.0)
      used += (size_t)snprintf(missing + used, sizeof missing - used, "wavelength_m or energy_ev");
    if (ds->detector_distance_m <= 0.0)
      used += (size_t)snprintf(missing + used, sizeof missing - used, "%sdetector_distance_m",
                               used ? ", " : "");
    if (ds->detector_pixel_size_m <= 0.0)
      snprintf(missing + used, sizeof missing - used, "%sdetector_pixel_size_m",
               used ? ", " : "");
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: positions are in metres (/probe_position_y_m, /probe_position_x_m) "
                     "but the object pixel size is unknown (missing %s): add the root "
                     "attribute object_pixel_size_m, or wavelength_m (or energy_ev), "
                     "detector_distance_m and detector_pixel_size_m",
                     path, missing);
  }
  size_t count = (size_t)ds->n_patterns * 2;
  ds->positions_px = malloc(count * sizeof(double));
  if (!ds->positions_px)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory reading positions", path);
  PT_TRY(read_positions_m_axis(path, file, "probe_position_y_m", share, ds->positions_px));
  PT_TRY(read_positions_m_axis(path, file, "probe_position_x_m", share, ds->positions_px + 1));
  double half = ds->m / 2.0;
  for (size_t i = 0; i < count; i++)
    ds->positions_px[i] = ds->positions_px[i] / ds->object_pixel_size_m - half;
  ds->positions_from_metres = 1;
  return PTYC_OK;
}

static ptyc_status read_positions(const char *path, hid_t file, ptyc_dataset *ds,
                                  pt_native_info *info, const pt_share *share) {
  int has_px = pt_h5_dataset_exists(file, "positions_px");
  int has_y = pt_h5_dataset_exists(file, "probe_position_y_m");
  int has_x = pt_h5_dataset_exists(file, "probe_position_x_m");
  const char *name = "/positions_px";
  if (has_px != 0) {
    PT_TRY(read_positions_px(path, file, ds, share));
    snprintf(info->positions_source, sizeof info->positions_source, "/positions_px");
  } else if (has_y != 0 && has_x != 0) {
    PT_TRY(read_positions_m(path, file, ds, share));
    snprintf(info->positions_source, sizeof info->positions_source,
             "/probe_position_y_m + /probe_position_x_m");
    name = "/probe_position_*_m";
  } else if (has_y != 0 || has_x != 0) {
    return ptyc_fail(PTYC_E_FORMAT, "%s: found /probe_position_%s_m but no /probe_position_%s_m "
                                    "(both are needed)",
                     path, has_y ? "y" : "x", has_y ? "x" : "y");
  } else {
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: no /positions_px and no /probe_position_y_m + /probe_position_x_m: "
                     "the file must give the scan positions (for ptychodus or PtychoShelves "
                     "data, set data.positions_path to the file that holds them)",
                     path);
  }
  for (int j = 0; j < ds->n_patterns; j++)
    if (!isfinite(ds->positions_px[2 * j]) || !isfinite(ds->positions_px[2 * j + 1]))
      return ptyc_fail(PTYC_E_FORMAT, "%s: %s holds NaN or Inf (position %d)", path, name,
                       share->first + j);
  return PTYC_OK;
}

/* ---- /probe and /mask -------------------------------------------------------------- */

static ptyc_status read_probe(const char *path, hid_t file, ptyc_dataset *ds,
                              pt_native_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;

  if (pt_h5_dataset_exists(file, "probe") == 0)
    return PTYC_OK;
  PT_CHECK(pt_h5_open_dataset(path, file, "probe", &dset, &rank, dims));
  if (rank != 2 && rank != 3)
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe has %d dimension(s); expected (K, M, M) or (M, M)", path,
            rank);
  hsize_t k = rank == 3 ? dims[0] : 1, my = dims[rank - 2], mx = dims[rank - 1];
  if (my != (hsize_t)ds->m || mx != (hsize_t)ds->m)
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe is %llux%llu but patterns are %dx%d", path,
            (unsigned long long)my, (unsigned long long)mx, ds->m, ds->m);
  if (k == 0 || k > MAX_PROBE_MODES)
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe has %llu modes; expected 1 to %d", path,
            (unsigned long long)k, MAX_PROBE_MODES);

  size_t count = (size_t)k * ds->m * ds->m;
  PT_CHECK(pt_h5_read_c32(path, dset, "probe", count, &ds->probe, info->probe_dtype,
                          sizeof info->probe_dtype));
  ds->probe_modes = (int)k;
  long long bad = first_non_finite_c32(ds->probe, count);
  if (bad >= 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe holds NaN or Inf (mode %lld)", path,
            bad / ((long long)ds->m * ds->m));
  double power = 0.0;
  for (size_t i = 0; i < count; i++)
    power += pt_cabs2(ds->probe[i]);
  if (power == 0.0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /probe is zero everywhere: remove it to let ptyc make a probe",
            path);
fail:
  pt_h5_close_dataset(&dset);
  return st;
}

static ptyc_status read_mask(const char *path, hid_t file, ptyc_dataset *ds,
                             pt_native_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, native = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  double *values = NULL;
  uint8_t *tmp = NULL;
  char shape[128];

  if (pt_h5_dataset_exists(file, "mask") == 0)
    return PTYC_OK;
  PT_CHECK(pt_h5_open_dataset(path, file, "mask", &dset, &rank, dims));
  if (rank != 2 || dims[0] != (hsize_t)ds->m || dims[1] != (hsize_t)ds->m) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /mask is %s; expected (M, M) = (%d, %d) like the patterns", path,
            shape, ds->m, ds->m);
  }
  size_t plane = (size_t)ds->m * ds->m;
  ds->mask = malloc(plane);
  if (!ds->mask)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /mask", path);

  type = H5Dget_type(dset);
  if (type < 0)
    PT_CHECK(pt_h5_fail_read(path, "mask"));
  pt_h5_type_name(type, info->mask_dtype, sizeof info->mask_dtype);
  H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_ENUM && H5Tget_size(type) == 1) {
    /* h5py's bool: an enum {FALSE = 0, TRUE = 1} over int8. HDF5 does not convert
     * enums to integers, so read the raw byte values. */
    native = H5Tget_native_type(type, H5T_DIR_ASCEND);
    if (native < 0 || H5Dread(dset, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->mask) < 0)
      PT_CHECK(pt_h5_fail_read(path, "mask"));
    for (size_t i = 0; i < plane; i++)
      ds->mask[i] = ds->mask[i] != 0;
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    values = malloc(plane * sizeof *values);
    if (!values)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /mask", path);
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
      PT_CHECK(pt_h5_fail_read(path, "mask"));
    for (size_t i = 0; i < plane; i++)
      ds->mask[i] = values[i] != 0.0;
  } else {
    PT_FAIL(PTYC_E_FORMAT, "%s: /mask has unsupported type %s; expected uint8 or bool (1 = valid)",
            path, info->mask_dtype);
  }

  size_t valid = 0;
  for (size_t i = 0; i < plane; i++)
    valid += ds->mask[i];
  if (valid == 0)
    PT_FAIL(PTYC_E_FORMAT,
            "%s: /mask marks every detector pixel invalid (1 = valid, 0 = invalid)", path);

  if (!info->dp_zero_at_corner) {
    tmp = malloc(plane);
    if (!tmp)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
    pt_shift_plane_u8(ds->mask, tmp, ds->m, 1);
  }
fail:
  free(tmp);
  free(values);
  pt_h5_close_type(&native);
  pt_h5_close_type(&type);
  pt_h5_close_dataset(&dset);
  return st;
}

/* ---- public API -------------------------------------------------------------------- */

ptyc_status pt_native_read(const char *path, ptyc_dataset **out, pt_native_info *info_out) {
  pt_share all = {.part = 0, .parts = 1};
  return pt_native_read_share(path, &all, out, info_out);
}

ptyc_status pt_native_read_share(const char *path, pt_share *share, ptyc_dataset **out,
                                 pt_native_info *info_out) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  ptyc_dataset *ds = NULL;
  pt_native_info info;
  memset(&info, 0, sizeof info);

  if (!out || !path)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_read: NULL argument");
  *out = NULL;
  pt_h5_quiet();
  PT_CHECK(pt_h5_open_read(path, &file));
  ds = calloc(1, sizeof *ds);
  if (!ds)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
  snprintf(ds->format, sizeof ds->format, "ptyc-native");

  PT_CHECK(read_patterns(path, file, ds, &info, share));
  PT_CHECK(read_geometry(path, file, ds, &info));
  PT_CHECK(read_positions(path, file, ds, &info, share));
  PT_CHECK(read_probe(path, file, ds, &info));
  PT_CHECK(read_mask(path, file, ds, &info));
  info.has_truth = pt_h5_dataset_exists(file, "truth/object") == 1;

  pt_h5_close_file(&file);
  *out = ds;
  if (info_out)
    *info_out = info;
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  ptyc_dataset_free(ds);
  return st;
}

/* ptyc_dataset_read, which also knows the other formats, is in dataset_read.c. */

void ptyc_dataset_free(ptyc_dataset *ds) {
  if (!ds)
    return;
  free(ds->patterns);
  free(ds->positions_px);
  free(ds->mask);
  free(ds->probe);
  free(ds);
}

/* ---- ground truth ------------------------------------------------------------------ */

ptyc_status ptyc_truth_read(const char *path, ptyc_truth **out) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID, dset = H5I_INVALID_HID;
  ptyc_truth *truth = NULL;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char dtype[32];

  if (!path || !out)
    return ptyc_fail(PTYC_E_ARG, "ptyc_truth_read: NULL argument");
  *out = NULL;
  pt_h5_quiet();
  PT_CHECK(pt_h5_open_read(path, &file));
  if (pt_h5_dataset_exists(file, "truth/object") == 0)
    PT_FAIL(PTYC_E_FORMAT,
            "%s: no /truth/object (only simulated datasets carry a ground truth)", path);
  truth = calloc(1, sizeof *truth);
  if (!truth)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);

  PT_CHECK(pt_h5_open_dataset(path, file, "truth/object", &dset, &rank, dims));
  if (rank != 2 || dims[0] == 0 || dims[1] == 0 || dims[0] > INT_MAX || dims[1] > INT_MAX) {
    char shape[128];
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /truth/object is %s; expected (H, W)", path, shape);
  }
  truth->obj_h = (int)dims[0];
  truth->obj_w = (int)dims[1];
  PT_CHECK(pt_h5_read_c32(path, dset, "truth/object", (size_t)dims[0] * dims[1], &truth->object,
                          dtype, sizeof dtype));
  pt_h5_close_dataset(&dset);

  if (pt_h5_dataset_exists(file, "truth/probe") != 0) {
    PT_CHECK(pt_h5_open_dataset(path, file, "truth/probe", &dset, &rank, dims));
    if ((rank != 2 && rank != 3) || dims[rank - 1] != dims[rank - 2] || dims[rank - 1] == 0 ||
        dims[rank - 1] > MAX_PATTERN_SIDE || (rank == 3 && (dims[0] == 0 ||
                                                            dims[0] > MAX_PROBE_MODES))) {
      char shape[128];
      pt_h5_format_shape(shape, sizeof shape, rank, dims);
      PT_FAIL(PTYC_E_FORMAT, "%s: /truth/probe is %s; expected (K, M, M)", path, shape);
    }
    truth->probe_modes = rank == 3 ? (int)dims[0] : 1;
    truth->m = (int)dims[rank - 1];
    PT_CHECK(pt_h5_read_c32(path, dset, "truth/probe",
                            (size_t)truth->probe_modes * truth->m * truth->m, &truth->probe,
                            dtype, sizeof dtype));
  }
  pt_h5_close_dataset(&dset);
  pt_h5_close_file(&file);
  *out = truth;
  return PTYC_OK;
fail:
  pt_h5_close_dataset(&dset);
  pt_h5_close_file(&file);
  ptyc_truth_free(truth);
  return st;
}

void ptyc_truth_free(ptyc_truth *truth) {
  if (!truth)
    return;
  free(truth->object);
  free(truth->probe);
  free(truth);
}
