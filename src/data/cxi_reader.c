/* Reader of CXI 1.6 far-field ptychography files (cxidb.org; shared/FORMATS.md).
 *
 *   /entry_1/data_1/data                        (N, M, M) patterns (often a soft link to
 *                                               /entry_1/instrument_1/detector_1/data)
 *   /entry_1/sample_1/geometry_1/translation    (N, 3) metres, the SAMPLE's translation
 *                                               (or /entry_1/data_1/translation)
 *   /entry_1/instrument_1/source_1/energy       photon energy, joules
 *   /entry_1/instrument_1/detector_1/distance   metres
 *   /entry_1/instrument_1/detector_1/x_pixel_size, y_pixel_size   metres
 *   /entry_1/instrument_1/detector_1/mask       optional bit field, nonzero = invalid
 *   /entry_1/instrument_1/source_1/illumination optional probe guess (M, M) or (K, M, M)
 *
 * The probe moves over the sample by minus the sample's translation, so the probe
 * centre is (y, x) = (-translation[j][1], -translation[j][0]); in object pixels of size
 * wavelength * distance / (M * pixel), and as top-left corners: px = centre / dx - M / 2.
 * Patterns are raw detector frames: zero frequency at the centre unless a
 * dp_zero_frequency attribute (root or dataset) or data.zero_frequency says otherwise. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"

#define CXI_DATA "entry_1/data_1/data"
#define CXI_DETECTOR_DATA "entry_1/instrument_1/detector_1/data"
#define CXI_TRANSLATION "entry_1/sample_1/geometry_1/translation"
#define CXI_DATA_TRANSLATION "entry_1/data_1/translation"
#define CXI_ENERGY "entry_1/instrument_1/source_1/energy"
#define CXI_DISTANCE "entry_1/instrument_1/detector_1/distance"
#define CXI_X_PIXEL "entry_1/instrument_1/detector_1/x_pixel_size"
#define CXI_Y_PIXEL "entry_1/instrument_1/detector_1/y_pixel_size"
#define CXI_MASK "entry_1/instrument_1/detector_1/mask"
#define CXI_ILLUMINATION "entry_1/instrument_1/source_1/illumination"

/* Relative tolerance between x and y pixel sizes still taken as square pixels. */
#define SQUARE_PIXEL_TOLERANCE 1e-6

/* Photon energy, distance and detector pixel size. */
static ptyc_status read_geometry(const char *path, hid_t file, ptyc_dataset *ds,
                                 pt_native_info *info) {
  double energy_j = 0.0, x_pixel = 0.0, y_pixel = 0.0;
  PT_TRY(pt_read_positive_scalar(path, file, CXI_ENERGY, &energy_j));
  PT_TRY(pt_read_positive_scalar(path, file, CXI_DISTANCE, &ds->detector_distance_m));
  PT_TRY(pt_read_positive_scalar(path, file, CXI_X_PIXEL, &x_pixel));
  PT_TRY(pt_read_positive_scalar(path, file, CXI_Y_PIXEL, &y_pixel));
  if (energy_j > 0.0) {
    ds->wavelength_m = PT_HC_J_M / energy_j;
    info->energy_ev = PT_HC_EV_M / ds->wavelength_m;
  }
  if (x_pixel > 0.0 && y_pixel > 0.0 &&
      fabs(x_pixel - y_pixel) > SQUARE_PIXEL_TOLERANCE * fmax(x_pixel, y_pixel))
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: detector pixels are %g x %g m (x, y); ptyc needs square pixels", path,
                     x_pixel, y_pixel);
  ds->detector_pixel_size_m = x_pixel > 0.0 ? x_pixel : y_pixel;
  return PTYC_OK;
}

/* The sample translations -> probe positions (top-left, object pixels). */
static ptyc_status read_translations(const char *path, hid_t file, ptyc_dataset *ds,
                                     pt_native_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];
  double *xyz = NULL, *y_m = NULL, *x_m = NULL;

  const char *name = CXI_TRANSLATION;
  if (pt_h5_dataset_exists(file, name) == 0)
    name = CXI_DATA_TRANSLATION;
  if (pt_h5_dataset_exists(file, name) == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /%s (nor /%s): a CXI ptychography file must give the "
                           "sample translations",
            path, CXI_TRANSLATION, CXI_DATA_TRANSLATION);
  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  pt_h5_format_shape(shape, sizeof shape, rank, dims);
  if (rank != 2 || (dims[1] != 2 && dims[1] != 3))
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %s; expected (N, 3) translations (x, y, z) in metres",
            path, name, shape);
  if (dims[0] != (hsize_t)ds->n_patterns)
    PT_FAIL(PTYC_E_FORMAT, "%s: %d patterns but %llu translations in /%s", path,
            ds->n_patterns, (unsigned long long)dims[0], name);
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has unsupported type %s; expected float64", path, name,
            dtype);
  int n = ds->n_patterns, cols = (int)dims[1];
  xyz = malloc((size_t)n * cols * sizeof *xyz);
  y_m = malloc((size_t)n * sizeof *y_m);
  x_m = malloc((size_t)n * sizeof *x_m);
  if (!xyz || !y_m || !x_m)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, xyz) < 0)
    PT_CHECK(pt_h5_fail_read(path, name));
  for (int j = 0; j < n; j++) {
    if (!isfinite(xyz[(size_t)j * cols]) || !isfinite(xyz[(size_t)j * cols + 1]))
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s holds NaN or Inf (translation %d)", path, name, j);
    /* the probe moves by minus the sample's translation: x = column 0, y = column 1 */
    x_m[j] = -xyz[(size_t)j * cols];
    y_m[j] = -xyz[(size_t)j * cols + 1];
  }
  char what[160];
  snprintf(what, sizeof what, "the translations of /%s", name);
  PT_CHECK(pt_positions_from_metres(path, what, ds, y_m, x_m, ds->object_pixel_size_m,
                                    ds->object_pixel_size_m));
  snprintf(info->positions_source, sizeof info->positions_source, "minus /%.50s", name);
fail:
  free(xyz);
  free(y_m);
  free(x_m);
  pt_h5_close_dataset(&dset);
  return st;
}

/* The detector mask (bit field, nonzero = invalid), squared like the frames and moved
 * to the FFT layout. */
static ptyc_status read_mask(const char *path, hid_t file, ptyc_dataset *ds, pt_read_info *info) {
  uint8_t *mask = NULL;
  int h = info->frame_h, w = info->frame_w;
  PT_TRY(pt_read_mask_plane(path, file, CXI_MASK, h, w, 0, &mask, info->file.mask_dtype,
                            sizeof info->file.mask_dtype));
  ds->mask = malloc((size_t)ds->m * ds->m);
  uint8_t *tmp = malloc((size_t)ds->m * ds->m);
  if (!ds->mask || !tmp) {
    free(mask);
    free(tmp);
    return ptyc_fail(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, CXI_MASK);
  }
  pt_square_crop(mask, ds->mask, 1, 1, h, w, info->file.dp_zero_at_corner);
  if (!info->file.dp_zero_at_corner)
    pt_shift_plane_u8(ds->mask, tmp, ds->m, 1);
  free(mask);
  free(tmp);
  return PTYC_OK;
}

ptyc_status pt_cxi_read(const ptyc_data_options *opts, ptyc_dataset **out, pt_read_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  ptyc_dataset *ds = NULL;
  const char *path = opts->path;
  *out = NULL;

  PT_CHECK(pt_h5_open_read(path, &file));
  if (pt_h5_dataset_exists(file, "entry_1") == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /entry_1 group, so not a CXI file: check data.format",
            path);
  ds = calloc(1, sizeof *ds);
  if (!ds)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
  snprintf(ds->format, sizeof ds->format, "cxi");

  const char *data = CXI_DATA;
  if (pt_h5_dataset_exists(file, data) == 0)
    data = CXI_DETECTOR_DATA;
  if (pt_h5_dataset_exists(file, data) == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /%s (nor /%s): the CXI file holds no patterns", path,
            CXI_DATA, CXI_DETECTOR_DATA);
  PT_CHECK(pt_read_patterns(path, file, data, ds, info));

  PT_CHECK(read_geometry(path, file, ds, &info->file));
  pt_finish_geometry(opts, ds, &info->file);
  PT_CHECK(read_translations(path, file, ds, &info->file));

  if (pt_h5_dataset_exists(file, CXI_MASK) != 0)
    PT_CHECK(read_mask(path, file, ds, info));
  if (pt_h5_dataset_exists(file, CXI_ILLUMINATION) != 0) {
    int side = 0;
    PT_CHECK(pt_read_probe(path, file, CXI_ILLUMINATION, ds->m, &ds->probe, &ds->probe_modes,
                           &side, info->file.probe_dtype, sizeof info->file.probe_dtype));
    if (!ds->probe)
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s is %dx%d but patterns are %dx%d", path, CXI_ILLUMINATION,
              side, side, ds->m, ds->m);
  }
  pt_h5_close_file(&file);
  *out = ds;
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  ptyc_dataset_free(ds);
  return st;
}
