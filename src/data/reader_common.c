/* Helpers shared by the CXI, ptychodus and PtychoShelves readers (see readers.h). */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"

int pt_same_word(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
      return 0;
  return *a == *b;
}

void pt_append(char *buf, size_t size, const char *fmt, ...) {
  size_t used = strlen(buf);
  if (used + 3 >= size)
    return;
  if (used > 0) {
    memcpy(buf + used, "; ", 3);
    used += 2;
  }
  va_list args;
  va_start(args, fmt);
  vsnprintf(buf + used, size - used, fmt, args);
  va_end(args);
}

/* ---- patterns ---------------------------------------------------------------------- */

ptyc_status pt_read_layout_attr(const char *path, hid_t loc, const char *where, int *corner) {
  char value[64];
  *corner = -1;
  int got = pt_h5_attr_string(loc, "dp_zero_frequency", value, sizeof value);
  if (got == 0)
    return PTYC_OK;
  if (got > 0 && pt_same_word(value, "corner"))
    *corner = 1;
  else if (got > 0 && (pt_same_word(value, "centre") || pt_same_word(value, "center")))
    *corner = 0;
  else
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: attribute dp_zero_frequency of %s is %s%s%s; expected \"centre\" "
                     "or \"corner\"",
                     path, where, got > 0 ? "\"" : "not a string", got > 0 ? value : "",
                     got > 0 ? "\"" : "");
  return PTYC_OK;
}

/* Source index, in an axis of `full` elements, of index i of its central crop of
 * `kept` elements (around the zero frequency: index full/2, or 0 at the corner). */
static int crop_source(int i, int kept, int full, int zero_at_corner) {
  if (zero_at_corner)
    return (pt_freq_index(i, kept) + full) % full;
  return i + full / 2 - kept / 2;
}

void pt_square_crop(const void *in, void *out, size_t elem, int planes, int h, int w,
                    int zero_at_corner) {
  int m = h < w ? h : w;
  for (int p = 0; p < planes; p++)
    for (int y = 0; y < m; y++) {
      int sy = crop_source(y, m, h, zero_at_corner);
      for (int x = 0; x < m; x++) {
        int sx = crop_source(x, m, w, zero_at_corner);
        memcpy((char *)out + (((size_t)p * m + y) * m + x) * elem,
               (const char *)in + (((size_t)p * h + sy) * w + sx) * elem, elem);
      }
    }
}

ptyc_status pt_read_patterns(const char *path, hid_t file, const char *name, ptyc_dataset *ds,
                             pt_read_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128];
  float *frames = NULL;
  pt_native_info *file_info = &info->file;

  if (pt_h5_dataset_exists(file, name) == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /%s (the diffraction patterns)", path, name);
  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  pt_h5_format_shape(shape, sizeof shape, rank, dims);
  if (rank != 3)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected (N, M, M) patterns", path, name, shape);
  if (dims[0] == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has no patterns (N = 0)", path, name);
  if (dims[1] < 2 || dims[2] < 2)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s holds empty or 1-pixel patterns %s", path, name, shape);
  if (dims[0] > INT_MAX || dims[1] > PT_MAX_PATTERN_SIDE || dims[2] > PT_MAX_PATTERN_SIDE)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is too large %s", path, name, shape);

  H5T_class_t cls = pt_h5_dataset_class(dset, file_info->dp_dtype, sizeof file_info->dp_dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected integer or float "
                           "intensities",
            path, name, file_info->dp_dtype);

  /* The layout: the root attribute, else the dataset's, else the centre. */
  int corner = -1;
  char where[128];
  PT_CHECK(pt_read_layout_attr(path, file, "the root", &corner));
  if (corner < 0) {
    snprintf(where, sizeof where, "/%s", name);
    PT_CHECK(pt_read_layout_attr(path, dset, where, &corner));
  }
  file_info->dp_zero_at_corner = corner == 1;

  int n = (int)dims[0], h = (int)dims[1], w = (int)dims[2], m = h < w ? h : w;
  size_t plane = (size_t)h * w, nbytes = 0;
  if (!pt_checked_product((size_t)n, plane, sizeof(float), &nbytes))
    PT_FAIL(PTYC_E_NOMEM, "%s: /%s %s is too large for this machine", path, name, shape);
  frames = malloc(nbytes);
  if (!frames)
    PT_FAIL(PTYC_E_NOMEM, "%s: cannot allocate %.2f GiB for /%s %s", path,
            (double)nbytes / (1u << 30), name, shape);
  if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, frames) < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  for (size_t i = 0; i < (size_t)n * plane; i++)
    if (!isfinite(frames[i]))
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s holds NaN or Inf (pattern %zu)", path, name, i / plane);
  if (h != w) {
    float *square = malloc((size_t)n * m * m * sizeof *square);
    if (!square)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory cropping /%s to %dx%d", path, name, m, m);
    pt_square_crop(frames, square, sizeof *frames, n, h, w, file_info->dp_zero_at_corner);
    free(frames);
    frames = square;
    pt_append(info->notes, sizeof info->notes,
              "the %dx%d frames were cropped to the central %dx%d (ptyc needs square "
              "patterns)", h, w, m, m);
  }
  ds->patterns = frames;
  frames = NULL;
  ds->n_patterns = n;
  ds->m = m;
  info->frame_h = h;
  info->frame_w = w;
  if (!file_info->dp_zero_at_corner)
    PT_CHECK(pt_dataset_shift_layout(ds, 1));
fail:
  free(frames);
  pt_h5_close_dataset(&dset);
  return st;
}

ptyc_status pt_check_intensities(const char *path, const ptyc_dataset *ds) {
  size_t plane = (size_t)ds->m * ds->m;
  for (size_t i = 0; i < (size_t)ds->n_patterns * plane; i++)
    if (ds->patterns[i] < 0.0f)
      return ptyc_fail(PTYC_E_FORMAT,
                       "%s: negative intensity %g in pattern %zu: set data.threshold (counts "
                       "below it become 0) or fix the data",
                       path, (double)ds->patterns[i], i / plane);
  return PTYC_OK;
}

ptyc_status pt_dataset_shift_layout(ptyc_dataset *ds, int to_corner) {
  size_t plane = (size_t)ds->m * ds->m;
  float *tmp = malloc(plane * sizeof *tmp);
  if (!tmp)
    return ptyc_fail(PTYC_E_NOMEM, "out of memory moving the zero frequency of %dx%d patterns",
                     ds->m, ds->m);
  for (int j = 0; j < ds->n_patterns; j++)
    pt_shift_plane_f32(ds->patterns + (size_t)j * plane, tmp, ds->m, to_corner);
  if (ds->mask)
    pt_shift_plane_u8(ds->mask, (uint8_t *)tmp, ds->m, to_corner);
  free(tmp);
  return PTYC_OK;
}

/* ---- vectors, masks, probes -------------------------------------------------------- */

ptyc_status pt_read_vector(const char *path, hid_t file, const char *name, double **out,
                           int *n) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];
  double *values = NULL;
  *out = NULL;
  *n = 0;

  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  pt_h5_format_shape(shape, sizeof shape, rank, dims);
  hsize_t count = rank == 1 ? dims[0] : 0;
  if (rank == 2 && (dims[0] == 1 || dims[1] == 1))
    count = dims[0] * dims[1]; /* a MATLAB column or row vector */
  if (count == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected a non-empty vector (N,)", path, name, shape);
  if (count > INT_MAX)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is too long %s", path, name, shape);
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected numbers (float64)", path,
            name, dtype);
  values = malloc((size_t)count * sizeof *values);
  if (!values)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  for (hsize_t i = 0; i < count; i++)
    if (!isfinite(values[i]))
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s holds NaN or Inf (element %llu)", path, name,
              (unsigned long long)i);
  *out = values;
  *n = (int)count;
  values = NULL;
fail:
  free(values);
  pt_h5_close_dataset(&dset);
  return st;
}

ptyc_status pt_read_mask_plane(const char *path, hid_t file, const char *name, int h, int w,
                               int nonzero_is_valid, uint8_t **out, char *dtype,
                               size_t dtype_size) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, native = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128];
  double *values = NULL;
  uint8_t *mask = NULL;
  size_t plane = (size_t)h * w;
  *out = NULL;

  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  if (rank != 2 || dims[0] != (hsize_t)h || dims[1] != (hsize_t)w) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected (%d, %d) like the patterns", path, name,
            shape, h, w);
  }
  mask = malloc(plane);
  values = malloc(plane * sizeof *values);
  if (!mask || !values)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
  type = H5Dget_type(dset);
  if (type < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  pt_h5_type_name(type, dtype, dtype_size);
  H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_ENUM && H5Tget_size(type) == 1) {
    /* h5py's bool, an enum over int8: HDF5 does not convert enums, read the bytes. */
    native = H5Tget_native_type(type, H5T_DIR_ASCEND);
    if (native < 0 || H5Dread(dset, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
    for (size_t i = 0; i < plane; i++)
      values[i] = mask[i];
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
  } else {
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected integers or bool", path,
            name, dtype);
  }
  for (size_t i = 0; i < plane; i++)
    mask[i] = nonzero_is_valid ? values[i] != 0.0 : values[i] == 0.0;
  *out = mask;
  mask = NULL;
fail:
  free(mask);
  free(values);
  pt_h5_close_type(&native);
  pt_h5_close_type(&type);
  pt_h5_close_dataset(&dset);
  return st;
}

ptyc_status pt_read_probe(const char *path, hid_t file, const char *name, int m,
                          ptyc_c32 **out, int *modes, int *side_found, char *dtype,
                          size_t dtype_size) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128];
  ptyc_c32 *values = NULL;
  *out = NULL;
  *modes = 0;
  *side_found = 0;

  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  pt_h5_format_shape(shape, sizeof shape, rank, dims);
  if (rank < 2 || rank > 4)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected (M, M), (K, M, M) or (1, K, M, M)", path,
            name, shape);
  hsize_t k = rank >= 3 ? dims[rank - 3] : 1, sets = rank == 4 ? dims[0] : 1;
  hsize_t my = dims[rank - 2], mx = dims[rank - 1];
  if (my != mx || my == 0 || k == 0 || sets == 0 || k > PT_MAX_PROBE_MODES)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected K square modes, 1 <= K <= %d", path, name,
            shape, PT_MAX_PROBE_MODES);
  if (my != (hsize_t)m) {
    *side_found = my > INT_MAX ? INT_MAX : (int)my;
    goto fail; /* not an error here: the caller decides */
  }
  /* Several coherent sets (ptychodus' OPR modes): all are read, the first is kept. */
  size_t count = (size_t)sets * k * m * m, kept = (size_t)k * m * m;
  PT_CHECK(pt_h5_read_c32(path, dset, name, count, &values, dtype, dtype_size));
  double power = 0.0;
  for (size_t i = 0; i < kept; i++) {
    if (!isfinite(values[i].re) || !isfinite(values[i].im))
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s holds NaN or Inf (mode %zu)", path, name,
              i / ((size_t)m * m));
    power += pt_cabs2(values[i]);
  }
  if (!(power > 0.0))
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is zero everywhere: remove it or set probe.init = \"data\"",
            path, name);
  *out = values;
  *modes = (int)k;
  *side_found = m;
  values = NULL;
fail:
  free(values);
  pt_h5_close_dataset(&dset);
  return st;
}

/* ---- geometry ---------------------------------------------------------------------- */

ptyc_status pt_read_positive_attr(const char *path, hid_t loc, const char *where,
                                  const char *name, double *value) {
  double v = 0.0;
  *value = 0.0;
  int got = pt_h5_attr_double(loc, name, &v);
  if (got < 0)
    return ptyc_fail(PTYC_E_FORMAT, "%s: attribute %s of %s is not a single number", path, name,
                     where);
  if (got == 0 || v == 0.0)
    return PTYC_OK;
  if (!isfinite(v) || v < 0.0)
    return ptyc_fail(PTYC_E_FORMAT, "%s: attribute %s of %s = %g; expected a positive number "
                                    "(SI units)",
                     path, name, where, v);
  *value = v;
  return PTYC_OK;
}

ptyc_status pt_read_positive_scalar(const char *path, hid_t file, const char *name,
                                    double *value) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char dtype[32];
  *value = 0.0;
  int exists = pt_h5_dataset_exists(file, name);
  if (exists == 0)
    return PTYC_OK;
  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  hsize_t count = 1;
  for (int d = 0; d < rank; d++)
    count *= dims[d];
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (count != 1 || (cls != H5T_FLOAT && cls != H5T_INTEGER))
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is not a single number (%s)", path, name, dtype);
  double v = 0.0;
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  if (!isfinite(v) || v < 0.0)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s = %g; expected a positive number (SI units)", path, name, v);
  *value = v;
fail:
  pt_h5_close_dataset(&dset);
  return st;
}

void pt_finish_geometry(const ptyc_data_options *opts, ptyc_dataset *ds, pt_native_info *info) {
  int overridden = 0;
  if (opts->energy_ev > 0.0) {
    info->energy_ev = opts->energy_ev;
    ds->wavelength_m = PT_HC_EV_M / opts->energy_ev;
    overridden = 1;
  } else if (ds->wavelength_m == 0.0 && info->energy_ev > 0.0) {
    ds->wavelength_m = PT_HC_EV_M / info->energy_ev;
  }
  if (opts->detector_distance_m > 0.0) {
    ds->detector_distance_m = opts->detector_distance_m;
    overridden = 1;
  }
  if (opts->detector_pixel_size_m > 0.0) {
    ds->detector_pixel_size_m = opts->detector_pixel_size_m;
    overridden = 1;
  }
  int computable = ds->wavelength_m > 0.0 && ds->detector_distance_m > 0.0 &&
                   ds->detector_pixel_size_m > 0.0 && ds->m > 0;
  if (opts->object_pixel_size_m > 0.0) {
    ds->object_pixel_size_m = opts->object_pixel_size_m;
    info->object_pixel_size_computed = 0;
  } else if (computable && (ds->object_pixel_size_m == 0.0 || overridden)) {
    /* far field: the object pixel is the inverse of the detector's angular extent */
    ds->object_pixel_size_m =
        ds->wavelength_m * ds->detector_distance_m / (ds->m * ds->detector_pixel_size_m);
    info->object_pixel_size_computed = 1;
  }
}

ptyc_status pt_positions_from_metres(const char *path, const char *what, ptyc_dataset *ds,
                                     const double *y_m, const double *x_m, double pixel_y_m,
                                     double pixel_x_m) {
  if (!(pixel_y_m > 0.0) || !(pixel_x_m > 0.0)) {
    char missing[160] = "";
    if (ds->wavelength_m <= 0.0)
      pt_append(missing, sizeof missing, "energy");
    if (ds->detector_distance_m <= 0.0)
      pt_append(missing, sizeof missing, "detector distance");
    if (ds->detector_pixel_size_m <= 0.0)
      pt_append(missing, sizeof missing, "detector pixel size");
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: %s are in metres but the object pixel size is unknown (missing: "
                     "%s): set data.object_pixel_size_m, or data.energy_ev, "
                     "data.detector_distance_m and data.detector_pixel_size_m",
                     path, what, missing[0] ? missing : "object pixel size");
  }
  ds->positions_px = malloc((size_t)ds->n_patterns * 2 * sizeof(double));
  if (!ds->positions_px)
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory for %d positions", path, ds->n_patterns);
  double half = ds->m / 2.0;
  for (int j = 0; j < ds->n_patterns; j++) {
    ds->positions_px[2 * j] = y_m[j] / pixel_y_m - half;
    ds->positions_px[2 * j + 1] = x_m[j] / pixel_x_m - half;
  }
  ds->positions_from_metres = 1;
  return PTYC_OK;
}
