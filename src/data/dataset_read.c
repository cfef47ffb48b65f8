/* Reading a dataset as a job describes it: the format (named, or detected by "auto"),
 * the second file of two-file formats, data.zero_frequency, then the options of
 * dataset_options.c. See readers.h for the steps.
 *
 * "auto" looks at the file's top level:
 *   /entry_1 (or /cxi_version)                           -> CXI
 *   /dp with /positions_px or /probe_position_*_m         -> native
 *   /dp alone, and a second file (data.positions_path, or the PtychoShelves sibling
 *   "<stem>_para.<ext>" of "<stem>_dp.<ext>") holding
 *       /ppX and /ppY                                     -> PtychoShelves
 *       /probe_position_x_m                               -> ptychodus
 *   anything else (also /dp alone without a second file) -> native, whose reader says
 *                                                            what the file lacks */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/readers.h"
#include "pt_try.h"

typedef enum format_kind {
  FORMAT_NATIVE,
  FORMAT_CXI,
  FORMAT_PTYCHODUS,
  FORMAT_PTYCHOSHELVES
} format_kind;

/* The PtychoShelves sibling of `path`: "<dir>/<stem>_para.<ext>" for
 * "<dir>/<stem>_dp.<ext>" (the last "_dp." of the file name). 0 if the name has none. */
static int sibling_para_path(const char *path, char *buf, size_t size) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dp = NULL;
  for (const char *s = strstr(base, "_dp."); s; s = strstr(s + 1, "_dp."))
    dp = s;
  if (!dp)
    return 0;
  int n = snprintf(buf, size, "%.*s_para.%s", (int)(dp - path), path, dp + 4);
  return n > 0 && (size_t)n < size;
}

/* The second file of a two-file dataset: data.positions_path, else the PtychoShelves
 * sibling when it exists; "" when neither. */
static void second_file(const ptyc_data_options *opts, char *buf, size_t size) {
  buf[0] = '\0';
  if (opts->positions_path[0]) {
    snprintf(buf, size, "%s", opts->positions_path);
    return;
  }
  char sibling[PTYC_PATH_MAX + 16];
  if (sibling_para_path(opts->path, sibling, sizeof sibling) && strlen(sibling) < size &&
      access(sibling, F_OK) == 0)
    memcpy(buf, sibling, strlen(sibling) + 1);
}

/* Which reader a two-file dataset needs, from what its second file holds. */
static ptyc_status detect_second(const char *path, const char *second, format_kind *kind) {
  hid_t file = H5I_INVALID_HID;
  PT_TRY(pt_h5_open_read(second, &file));
  int shelves = pt_h5_dataset_exists(file, "ppX") != 0 && pt_h5_dataset_exists(file, "ppY") != 0;
  int product = pt_h5_dataset_exists(file, "probe_position_x_m") != 0;
  pt_h5_close_file(&file);
  if (shelves) {
    *kind = FORMAT_PTYCHOSHELVES;
    return PTYC_OK;
  }
  if (product) {
    *kind = FORMAT_PTYCHODUS;
    return PTYC_OK;
  }
  return ptyc_fail(PTYC_E_FORMAT,
                   "%s: holds neither /ppX + /ppY (PtychoShelves) nor /probe_position_x_m "
                   "(ptychodus product), so it cannot give the positions of %s",
                   second, path);
}

/* "auto": the format of opts->path (and its second file). */
static ptyc_status detect(const ptyc_data_options *opts, format_kind *kind, char *second,
                          size_t size) {
  hid_t file = H5I_INVALID_HID;
  const char *path = opts->path;
  second[0] = '\0';
  PT_TRY(pt_h5_open_read(path, &file));
  int cxi = pt_h5_dataset_exists(file, "entry_1") != 0 ||
            pt_h5_dataset_exists(file, "cxi_version") != 0;
  int dp = pt_h5_dataset_exists(file, "dp") == 1;
  int positions = pt_h5_dataset_exists(file, "positions_px") != 0 ||
                  pt_h5_dataset_exists(file, "probe_position_y_m") != 0 ||
                  pt_h5_dataset_exists(file, "probe_position_x_m") != 0;
  pt_h5_close_file(&file);

  *kind = FORMAT_NATIVE;
  if (cxi) {
    *kind = FORMAT_CXI;
  } else if (dp && !positions) {
    /* Without a second file the native reader explains what is wrong: /dp first. */
    second_file(opts, second, size);
    if (second[0])
      PT_TRY(detect_second(path, second, kind));
  }
  return PTYC_OK;
}

/* Applies the geometry keys to a dataset read by the native reader, rescaling positions
 * that came from metres when the object pixel size changes. */
static void native_geometry(const ptyc_data_options *opts, ptyc_dataset *ds,
                            pt_native_info *info) {
  double before = ds->object_pixel_size_m;
  pt_finish_geometry(opts, ds, info);
  double after = ds->object_pixel_size_m;
  if (ds->positions_from_metres && before > 0.0 && after > 0.0 && after != before) {
    double half = ds->m / 2.0;
    for (int i = 0; i < 2 * ds->n_patterns; i++)
      ds->positions_px[i] = (ds->positions_px[i] + half) * before / after - half;
  }
}

/* data.zero_frequency: -1 = "auto", 1 = "corner", 0 = "centre"/"center". */
static ptyc_status wanted_layout(const ptyc_data_options *opts, int *corner) {
  const char *word = opts->zero_frequency;
  if (!word[0] || pt_same_word(word, "auto"))
    *corner = -1;
  else if (pt_same_word(word, "corner"))
    *corner = 1;
  else if (pt_same_word(word, "centre") || pt_same_word(word, "center"))
    *corner = 0;
  else
    return ptyc_fail(PTYC_E_CONFIG,
                     "data.zero_frequency = \"%s\": expected \"auto\", \"centre\" or \"corner\"",
                     word);
  return PTYC_OK;
}

/* Positions that span more pixels than any object could hold are wrong units, not a
 * scan; rejecting them here also keeps the object size of the model (an int, and its
 * byte counts) far from overflow. */
#define MAX_POSITIONS_SPAN_PX 1048576.0

static ptyc_status check_positions_span(const char *path, const ptyc_dataset *ds) {
  double lo[2] = {ds->positions_px[0], ds->positions_px[1]}, hi[2] = {lo[0], lo[1]};
  for (int j = 1; j < ds->n_patterns; j++)
    for (int a = 0; a < 2; a++) {
      lo[a] = fmin(lo[a], ds->positions_px[2 * j + a]);
      hi[a] = fmax(hi[a], ds->positions_px[2 * j + a]);
    }
  for (int a = 0; a < 2; a++)
    if (!(hi[a] - lo[a] <= MAX_POSITIONS_SPAN_PX) || !(fabs(lo[a]) <= 1e12))
      return ptyc_fail(PTYC_E_FORMAT, "%s: the positions span %.3g x %.3g object pixels (from "
                                      "%.3g, %.3g), more than %.0f: check their units and the "
                                      "object pixel size", path, hi[0] - lo[0], hi[1] - lo[1],
                       lo[0], lo[1], MAX_POSITIONS_SPAN_PX);
  return PTYC_OK;
}

ptyc_status pt_dataset_read_info(const ptyc_data_options *opts, ptyc_dataset **out,
                                 pt_read_info *info_out) {
  pt_share all = {.part = 0, .parts = 1};
  return pt_dataset_read_share_info(opts, &all, out, info_out);
}

ptyc_status pt_dataset_read_share_info(const ptyc_data_options *opts, pt_share *share,
                                       ptyc_dataset **out, pt_read_info *info_out) {
  if (!out || !opts || !share)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_read_opts: NULL argument");
  *out = NULL;
  ptyc_status st = PTYC_OK;
  ptyc_dataset *ds = NULL;
  pt_read_info *info = calloc(1, sizeof *info); /* large: kept off the stack */
  char *second = malloc(PTYC_PATH_MAX);
  if (!info || !second)
    PT_FAIL(PTYC_E_NOMEM, "out of memory");
  if (!opts->path[0])
    PT_FAIL(PTYC_E_ARG, "no dataset file given (data.path)");
  pt_h5_quiet();

  int corner = -1;
  PT_CHECK(wanted_layout(opts, &corner));
  const char *format = opts->format[0] ? opts->format : "auto";
  format_kind kind = FORMAT_NATIVE;
  second[0] = '\0';
  if (strcmp(format, "auto") == 0) {
    PT_CHECK(detect(opts, &kind, second, PTYC_PATH_MAX));
  } else if (strcmp(format, "native") == 0) {
    kind = FORMAT_NATIVE;
  } else if (strcmp(format, "cxi") == 0) {
    kind = FORMAT_CXI;
  } else if (strcmp(format, "ptychodus") == 0) {
    kind = FORMAT_PTYCHODUS;
    snprintf(second, PTYC_PATH_MAX, "%s", opts->positions_path);
  } else if (strcmp(format, "ptychoshelves") == 0) {
    kind = FORMAT_PTYCHOSHELVES;
    second_file(opts, second, PTYC_PATH_MAX);
    if (!second[0] && !opts->positions_path[0]) {
      char sibling[PTYC_PATH_MAX + 16];
      if (sibling_para_path(opts->path, sibling, sizeof sibling))
        PT_FAIL(PTYC_E_IO, "%s: no such file (the PtychoShelves parameter file of %s): set "
                           "data.positions_path",
                sibling, opts->path);
    }
  } else {
    PT_FAIL(PTYC_E_ARG,
            "%s: unknown data format \"%s\": use \"auto\", \"native\", \"cxi\", \"ptychodus\" "
            "or \"ptychoshelves\"",
            opts->path, format);
  }

  switch (kind) {
  case FORMAT_NATIVE:
    PT_CHECK(pt_native_read_share(opts->path, share, &ds, &info->file));
    native_geometry(opts, ds, &info->file);
    break;
  case FORMAT_CXI:
    PT_CHECK(pt_cxi_read(opts, &ds, info));
    break;
  case FORMAT_PTYCHODUS:
    PT_CHECK(pt_ptychodus_read(opts, second, &ds, info));
    break;
  case FORMAT_PTYCHOSHELVES:
    PT_CHECK(pt_ptychoshelves_read(opts, second, &ds, info));
    break;
  }
  if (kind != FORMAT_NATIVE) /* read whole: keep this rank's share (all with one rank) */
    PT_CHECK(pt_share_keep(share, ds, opts->path));

  if (opts->positions_path[0] && !info->positions_path[0])
    pt_append(info->notes, sizeof info->notes,
              "data.positions_path is not used: the %s file gives its own positions",
              ds->format);

  /* data.zero_frequency overrides what the reader took from the file. */
  if (corner >= 0 && corner != info->file.dp_zero_at_corner) {
    PT_CHECK(pt_dataset_shift_layout(ds, info->file.dp_zero_at_corner));
    info->file.dp_zero_at_corner = corner;
    pt_append(info->applied, sizeof info->applied, "zero frequency taken at the %s",
              corner ? "corner" : "centre");
  }
  PT_CHECK(pt_dataset_apply_options(opts, info->file.dp_zero_at_corner, ds, info));
  PT_CHECK(pt_check_intensities(opts->path, ds));
  PT_CHECK(check_positions_span(opts->path, ds));

  *out = ds;
  ds = NULL;
  if (info_out)
    *info_out = *info;
fail:
  ptyc_dataset_free(ds);
  free(info);
  free(second);
  return st;
}

ptyc_status ptyc_dataset_read_opts(const ptyc_data_options *opts, ptyc_dataset **out) {
  return pt_dataset_read_info(opts, out, NULL);
}

ptyc_status ptyc_dataset_read(const char *path, const char *format, ptyc_dataset **out) {
  if (!path || !out)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_read: NULL argument");
  *out = NULL;
  ptyc_options opts;
  ptyc_options_default(&opts);
  if (strlen(path) >= sizeof opts.data.path)
    return ptyc_fail(PTYC_E_ARG, "%.80s...: path too long", path);
  if (format && strlen(format) >= sizeof opts.data.format)
    return ptyc_fail(PTYC_E_ARG, "%s: unknown data format \"%.40s...\"", path, format);
  snprintf(opts.data.path, sizeof opts.data.path, "%s", path);
  snprintf(opts.data.format, sizeof opts.data.format, "%s", format ? format : "auto");
  return pt_dataset_read_info(&opts.data, out, NULL);
}
