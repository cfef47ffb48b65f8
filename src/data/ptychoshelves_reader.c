/* Reader of PtychoShelves (and fold_slice) datasets: two files.
 *
 *   data.path            data_roi0_dp.hdf5: /dp (N, M, M), zero frequency at the centre
 *   data.positions_path  data_roi0_para.hdf5: /ppX, /ppY (N,) probe centres in metres
 *                        (MATLAB's (N, 1) or (1, N) vectors are accepted); "" = the
 *                        file next to data.path with "_dp." replaced by "_para."
 *
 * PtychoShelves keeps the geometry in its MATLAB scripts, not in these files; the root
 * attributes of the native format (energy_ev or wavelength_m, detector_distance_m,
 * detector_pixel_size_m, object_pixel_size_m) are read from either file when present,
 * and data.energy_ev, data.detector_distance_m, data.detector_pixel_size_m or
 * data.object_pixel_size_m supply or override them.
 *
 * Files written by MATLAB's h5write hold each pattern transposed (MATLAB is
 * column-major): set data.transpose_patterns = true for those. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"

/* Native-style geometry attributes of one file's root; a value given by an earlier
 * file is kept. */
static ptyc_status read_root_geometry(const char *path, hid_t file, ptyc_dataset *ds,
                                      pt_native_info *info) {
  struct {
    const char *name;
    double *value;
  } attrs[] = {
      {"wavelength_m", &ds->wavelength_m},
      {"energy_ev", &info->energy_ev},
      {"detector_distance_m", &ds->detector_distance_m},
      {"detector_pixel_size_m", &ds->detector_pixel_size_m},
      {"object_pixel_size_m", &ds->object_pixel_size_m},
  };
  for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
    double v = 0.0;
    PT_TRY(pt_read_positive_attr(path, file, "the root", attrs[i].name, &v));
    if (*attrs[i].value == 0.0)
      *attrs[i].value = v;
  }
  return PTYC_OK;
}

ptyc_status pt_ptychoshelves_read(const ptyc_data_options *opts, const char *para,
                                  ptyc_dataset **out, pt_read_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  ptyc_dataset *ds = NULL;
  double *x_m = NULL, *y_m = NULL;
  const char *path = opts->path;
  *out = NULL;

  if (!para || !para[0])
    PT_FAIL(PTYC_E_CONFIG,
            "%s: a PtychoShelves dataset needs its parameter file with /ppX and /ppY: set "
            "data.positions_path (or name the files *_dp.hdf5 and *_para.hdf5)",
            path);
  snprintf(info->positions_path, sizeof info->positions_path, "%s", para);
  ds = calloc(1, sizeof *ds);
  if (!ds)
    PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
  snprintf(ds->format, sizeof ds->format, "ptychoshelves");

  PT_CHECK(pt_h5_open_read(path, &file));
  PT_CHECK(pt_read_patterns(path, file, "dp", ds, info));
  PT_CHECK(read_root_geometry(path, file, ds, &info->file));
  pt_h5_close_file(&file);

  PT_CHECK(pt_h5_open_read(para, &file));
  const char *names[2] = {"ppX", "ppY"};
  for (int a = 0; a < 2; a++)
    if (pt_h5_dataset_exists(file, names[a]) == 0)
      PT_FAIL(PTYC_E_FORMAT, "%s: no /%s, so not a PtychoShelves parameter file: check "
                             "data.positions_path",
              para, names[a]);
  int n_x = 0, n_y = 0;
  PT_CHECK(pt_read_vector(para, file, "ppX", &x_m, &n_x));
  PT_CHECK(pt_read_vector(para, file, "ppY", &y_m, &n_y));
  if (n_x != n_y)
    PT_FAIL(PTYC_E_FORMAT, "%s: %d values in /ppX but %d in /ppY", para, n_x, n_y);
  if (n_x != ds->n_patterns)
    PT_FAIL(PTYC_E_FORMAT, "%s has %d patterns but %s has %d positions", path, ds->n_patterns,
            para, n_x);
  PT_CHECK(read_root_geometry(para, file, ds, &info->file));
  pt_h5_close_file(&file);

  pt_finish_geometry(opts, ds, &info->file);
  PT_CHECK(pt_positions_from_metres(para, "/ppX, /ppY", ds, y_m, x_m, ds->object_pixel_size_m,
                                    ds->object_pixel_size_m));
  snprintf(info->file.positions_source, sizeof info->file.positions_source, "/ppY + /ppX");
  free(x_m);
  free(y_m);
  *out = ds;
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  free(x_m);
  free(y_m);
  ptyc_dataset_free(ds);
  return st;
}
