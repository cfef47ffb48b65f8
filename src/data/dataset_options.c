/* The `data` options that act on a dataset in memory, whatever its format
 * (ptyc_dataset_apply_options in include/ptyc/dataset.h):
 *
 *   1. mask file    /mask of data.mask_path (1 = valid) AND the file's own mask
 *   2. threshold    counts below it become 0
 *   3. saturation   a pixel reaching it in any pattern is masked (the mask is one per
 *                   detector pixel, shared by every pattern)
 *   4. patterns     transpose, then mirror in x and / or y
 *   5. crop         the central crop x crop pixels
 *   6. bin          sums of bin x bin blocks
 *   7. positions    transpose, then negate x and / or y
 *
 * Patterns and mask are in ptyc's FFT layout (zero frequency at [0][0]). Mirroring maps
 * frequency f to -f, so the zero frequency stays where it is (for even M a plain
 * reversal of the centred array would move it by one pixel). Cropping keeps the
 * frequencies -crop/2 .. crop - crop/2 - 1 (the centred window around index M/2);
 * binning sums the blocks of the centred layout, whose block M'/2 holds the zero
 * frequency.
 *
 * Geometry follows the far-field sampling: the object pixel is
 * wavelength * distance / (M * detector pixel). Cropping to C pixels makes it M / C
 * times larger, so positions (top-left corners, px = centre / pixel - M / 2) scale by
 * C / M; binning by b makes the detector pixel b times larger and M b times smaller,
 * leaving the object pixel as it was, so only the top-left corner moves, by
 * (M - M / b) / 2. A probe from the file follows transposes and mirrors (the same
 * index maps in real space, which the DFT turns into the frequency maps) and is dropped
 * when cropping or binning change its sampling. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "pt_try.h"

/* Appends to info->applied (or nothing without info). */
#define APPLIED(info, ...)                                                                 \
  do {                                                                                     \
    if (info)                                                                              \
      pt_append((info)->applied, sizeof (info)->applied, __VA_ARGS__);                     \
  } while (0)

/* ---- element maps on M x M planes -------------------------------------------------- */

/* The kinds of reorientation, applied plane by plane. */
typedef enum plane_map { MAP_TRANSPOSE, MAP_FLIP_X, MAP_FLIP_Y } plane_map;

/* Source index of destination (y, x) under `map`, on an M x M plane whose index 0 is
 * the origin (frequency 0, or the DFT origin of a real-space probe). */
static size_t map_source(plane_map map, int y, int x, int m) {
  switch (map) {
  case MAP_TRANSPOSE:
    return (size_t)x * m + y;
  case MAP_FLIP_X:
    return (size_t)y * m + (m - x) % m;
  case MAP_FLIP_Y:
    return (size_t)((m - y) % m) * m + x;
  }
  return (size_t)y * m + x;
}

/* Applies `map` to `count` consecutive planes of `elem` bytes each, through `tmp` (one
 * plane). */
static void map_planes(void *data, size_t elem, int count, int m, plane_map map, void *tmp) {
  size_t plane = (size_t)m * m;
  for (int p = 0; p < count; p++) {
    char *base = (char *)data + (size_t)p * plane * elem;
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++)
        memcpy((char *)tmp + ((size_t)y * m + x) * elem, base + map_source(map, y, x, m) * elem,
               elem);
    memcpy(base, tmp, plane * elem);
  }
}

/* Applies `map` to the patterns, the mask and the probe. */
static ptyc_status map_dataset(ptyc_dataset *ds, plane_map map) {
  size_t plane = (size_t)ds->m * ds->m;
  void *tmp = malloc(plane * sizeof(ptyc_c32));
  if (!tmp)
    return ptyc_fail(PTYC_E_NOMEM, "out of memory reorienting %dx%d patterns", ds->m, ds->m);
  map_planes(ds->patterns, sizeof(float), ds->n_patterns, ds->m, map, tmp);
  if (ds->mask)
    map_planes(ds->mask, 1, 1, ds->m, map, tmp);
  if (ds->probe)
    map_planes(ds->probe, sizeof(ptyc_c32), ds->probe_modes, ds->m, map, tmp);
  free(tmp);
  return PTYC_OK;
}

/* ---- 1 to 3: mask file, threshold, saturation -------------------------------------- */

static size_t count_invalid(const uint8_t *mask, size_t plane) {
  size_t invalid = 0;
  for (size_t i = 0; i < plane; i++)
    invalid += mask[i] == 0;
  return invalid;
}

/* A mask of all-valid pixels, if the dataset has none yet. */
static ptyc_status ensure_mask(ptyc_dataset *ds) {
  if (ds->mask)
    return PTYC_OK;
  size_t plane = (size_t)ds->m * ds->m;
  ds->mask = malloc(plane);
  if (!ds->mask)
    return ptyc_fail(PTYC_E_NOMEM, "out of memory for a %dx%d mask", ds->m, ds->m);
  memset(ds->mask, 1, plane);
  return PTYC_OK;
}

static ptyc_status apply_mask_file(const ptyc_data_options *opts, int file_zero_at_corner,
                                   ptyc_dataset *ds, pt_read_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  uint8_t *mask = NULL, *tmp = NULL;
  const char *path = opts->mask_path;
  char dtype[32];
  size_t plane = (size_t)ds->m * ds->m;

  PT_CHECK(pt_h5_open_read(path, &file));
  if (pt_h5_dataset_exists(file, "mask") == 0)
    PT_FAIL(PTYC_E_FORMAT, "%s: no /mask dataset (data.mask_path needs an (M, M) /mask, "
                           "1 = valid pixel)",
            path);
  PT_CHECK(pt_read_mask_plane(path, file, "mask", ds->m, ds->m, 1, &mask, dtype, sizeof dtype));

  /* Its layout: its own attribute, else data.zero_frequency, else the data file's. */
  int corner = -1;
  PT_CHECK(pt_read_layout_attr(path, file, "the root", &corner));
  if (corner < 0) {
    hid_t dset = H5Dopen2(file, "mask", H5P_DEFAULT);
    if (dset < 0)
      PT_CHECK(pt_h5_fail_read(path, "mask"));
    st = pt_read_layout_attr(path, dset, "/mask", &corner);
    H5Dclose(dset);
    PT_CHECK(st);
  }
  if (corner < 0) {
    if (pt_same_word(opts->zero_frequency, "corner"))
      corner = 1;
    else if (pt_same_word(opts->zero_frequency, "centre") ||
             pt_same_word(opts->zero_frequency, "center"))
      corner = 0;
    else
      corner = file_zero_at_corner;
  }
  if (!corner) {
    tmp = malloc(plane);
    if (!tmp)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory", path);
    pt_shift_plane_u8(mask, tmp, ds->m, 1);
  }
  PT_CHECK(ensure_mask(ds));
  for (size_t i = 0; i < plane; i++)
    ds->mask[i] = ds->mask[i] && mask[i];
  APPLIED(info, "mask file %s (%zu of %zu pixels invalid)", path, count_invalid(mask, plane),
          plane);
fail:
  free(tmp);
  free(mask);
  pt_h5_close_file(&file);
  return st;
}

static void apply_threshold(double threshold, ptyc_dataset *ds, pt_read_info *info) {
  size_t total = (size_t)ds->n_patterns * ds->m * ds->m, zeroed = 0;
  for (size_t i = 0; i < total; i++)
    if (ds->patterns[i] < threshold) {
      zeroed += ds->patterns[i] != 0.0f;
      ds->patterns[i] = 0.0f;
    }
  APPLIED(info, "threshold %g (%zu values set to 0)", threshold, zeroed);
}

static ptyc_status apply_saturation(double saturation, ptyc_dataset *ds, pt_read_info *info) {
  size_t plane = (size_t)ds->m * ds->m, masked = 0;
  for (size_t i = 0; i < plane; i++) {
    int saturated = 0;
    for (int j = 0; j < ds->n_patterns && !saturated; j++)
      saturated = ds->patterns[(size_t)j * plane + i] >= saturation;
    if (saturated && (!ds->mask || ds->mask[i])) {
      PT_TRY(ensure_mask(ds)); /* a mask only once a pixel needs one */
      ds->mask[i] = 0;
      masked++;
    }
  }
  APPLIED(info, "saturation %g (%zu pixels masked)", saturation, masked);
  return PTYC_OK;
}

/* ---- 5, 6: crop and bin ------------------------------------------------------------ */

/* Drops a file probe whose sampling no longer matches the patterns. */
static void drop_probe(ptyc_dataset *ds, const char *why, pt_read_info *info) {
  if (!ds->probe)
    return;
  free(ds->probe);
  ds->probe = NULL;
  ds->probe_modes = 0;
  if (info)
    pt_append(info->notes, sizeof info->notes, "the file's probe is not used (%s)", why);
}

static ptyc_status apply_crop(int c, ptyc_dataset *ds, pt_read_info *info) {
  int m = ds->m;
  if (c < 2 || c > m)
    return ptyc_fail(PTYC_E_CONFIG, "data.crop = %d: expected 2 to %d (the patterns are %dx%d) "
                                    "or 0 for no crop",
                     c, m, m, m);
  if (c == m)
    return PTYC_OK;
  size_t old_plane = (size_t)m * m, new_plane = (size_t)c * c;
  /* destination index i of the crop holds frequency f = pt_freq_index(i, c), found at
   * index f mod m of the full pattern */
  int *source = malloc((size_t)c * sizeof *source);
  float *patterns = malloc((size_t)ds->n_patterns * new_plane * sizeof *patterns);
  uint8_t *mask = ds->mask ? malloc(new_plane) : NULL;
  if (!source || !patterns || (ds->mask && !mask)) {
    free(source);
    free(patterns);
    free(mask);
    return ptyc_fail(PTYC_E_NOMEM, "out of memory cropping %d patterns to %dx%d",
                     ds->n_patterns, c, c);
  }
  for (int i = 0; i < c; i++)
    source[i] = (pt_freq_index(i, c) + m) % m;
  for (int j = 0; j < ds->n_patterns; j++)
    for (int y = 0; y < c; y++)
      for (int x = 0; x < c; x++)
        patterns[(size_t)j * new_plane + (size_t)y * c + x] =
            ds->patterns[(size_t)j * old_plane + (size_t)source[y] * m + source[x]];
  if (mask)
    for (int y = 0; y < c; y++)
      for (int x = 0; x < c; x++)
        mask[(size_t)y * c + x] = ds->mask[(size_t)source[y] * m + source[x]];
  free(source);
  free(ds->patterns);
  free(ds->mask);
  ds->patterns = patterns;
  ds->mask = mask;
  ds->m = c;

  double scale = (double)c / m; /* object pixels grow by m / c */
  for (int i = 0; i < 2 * ds->n_patterns; i++)
    ds->positions_px[i] *= scale;
  ds->object_pixel_size_m /= scale;
  drop_probe(ds, "patterns cropped", info);
  APPLIED(info, "crop %d -> %d (object pixel x %.4g)", m, c, 1.0 / scale);
  return PTYC_OK;
}

/* Sums b x b blocks of an M x M plane in FFT layout into an (M/b) x (M/b) plane in FFT
 * layout (`centred` and `work` are work planes of M*M floats each). */
static void bin_plane(const float *in, float *out, int m, int b, float *centred, float *work) {
  int mb = m / b;
  memcpy(centred, in, (size_t)m * m * sizeof *centred);
  pt_shift_plane_f32(centred, work, m, 0);
  for (int y = 0; y < mb; y++)
    for (int x = 0; x < mb; x++) {
      double sum = 0.0;
      for (int dy = 0; dy < b; dy++)
        for (int dx = 0; dx < b; dx++)
          sum += centred[(size_t)(y * b + dy) * m + x * b + dx];
      out[(size_t)y * mb + x] = (float)sum;
    }
  pt_shift_plane_f32(out, work, mb, 1);
}

static ptyc_status apply_bin(int b, ptyc_dataset *ds, pt_read_info *info) {
  int m = ds->m;
  if (m % b != 0 || m / b < 2)
    return ptyc_fail(PTYC_E_CONFIG, "data.bin = %d does not divide the pattern size %d (after "
                                    "any crop): choose a divisor of %d, or set data.crop to a "
                                    "multiple of %d",
                     b, m, m, b);
  int mb = m / b;
  size_t plane = (size_t)m * m, new_plane = (size_t)mb * mb;
  float *patterns = malloc((size_t)ds->n_patterns * new_plane * sizeof *patterns);
  float *centred = malloc(plane * sizeof *centred);
  float *tmp = malloc(plane * sizeof *tmp);
  uint8_t *mask = ds->mask ? malloc(new_plane) : NULL;
  ptyc_status st = PTYC_OK;
  if (!patterns || !centred || !tmp || (ds->mask && !mask))
    PT_FAIL(PTYC_E_NOMEM, "out of memory binning %d patterns by %d", ds->n_patterns, b);
  for (int j = 0; j < ds->n_patterns; j++)
    bin_plane(ds->patterns + (size_t)j * plane, patterns + (size_t)j * new_plane, m, b, centred,
              tmp);
  if (mask) {
    /* a binned pixel is valid only if all its detector pixels are: bin the count of
     * invalid pixels and keep the blocks that have none */
    float *invalid = malloc(plane * sizeof *invalid), *sums = malloc(new_plane * sizeof *sums);
    if (!invalid || !sums) {
      free(invalid);
      free(sums);
      PT_FAIL(PTYC_E_NOMEM, "out of memory binning the mask by %d", b);
    }
    for (size_t i = 0; i < plane; i++)
      invalid[i] = ds->mask[i] ? 0.0f : 1.0f;
    bin_plane(invalid, sums, m, b, centred, tmp);
    for (size_t i = 0; i < new_plane; i++)
      mask[i] = sums[i] == 0.0f;
    free(invalid);
    free(sums);
  }
  free(ds->patterns);
  free(ds->mask);
  ds->patterns = patterns;
  ds->mask = mask;
  patterns = NULL;
  mask = NULL;
  ds->m = mb;

  /* the object pixel is unchanged; the window's top-left corner moves by (M - M/b) / 2 */
  double shift = (m - mb) / 2.0;
  for (int i = 0; i < 2 * ds->n_patterns; i++)
    ds->positions_px[i] += shift;
  ds->detector_pixel_size_m *= b;
  drop_probe(ds, "patterns binned", info);
  APPLIED(info, "bin %d (%d -> %d)", b, m, mb);
fail:
  free(patterns);
  free(centred);
  free(tmp);
  free(mask);
  return st;
}

/* ---- 7: positions ------------------------------------------------------------------ */

static void reorient_positions(const ptyc_data_options *opts, ptyc_dataset *ds,
                               pt_read_info *info) {
  /* Negating a probe centre c = top-left + M/2 gives the top-left -c - M/2. */
  for (int j = 0; j < ds->n_patterns; j++) {
    double *yx = ds->positions_px + 2 * j;
    if (opts->transpose_positions) {
      double t = yx[0];
      yx[0] = yx[1];
      yx[1] = t;
    }
    if (opts->flip_positions_x)
      yx[1] = -yx[1] - ds->m;
    if (opts->flip_positions_y)
      yx[0] = -yx[0] - ds->m;
  }
  if (opts->transpose_positions)
    APPLIED(info, "positions transposed");
  if (opts->flip_positions_x)
    APPLIED(info, "positions flipped in x");
  if (opts->flip_positions_y)
    APPLIED(info, "positions flipped in y");
}

/* ---- all of them ------------------------------------------------------------------- */

ptyc_status pt_dataset_apply_options(const ptyc_data_options *opts, int file_zero_at_corner,
                                     ptyc_dataset *ds, pt_read_info *info) {
  if (!opts || !ds || !ds->patterns || !ds->positions_px || ds->m <= 0 || ds->n_patterns <= 0)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_apply_options: NULL or empty argument");
  if (opts->crop < 0 || opts->bin < 0 || !(opts->threshold >= 0.0) ||
      !(opts->saturation >= 0.0))
    return ptyc_fail(PTYC_E_CONFIG, "data.crop, data.bin, data.threshold and data.saturation "
                                    "must be >= 0 (got %d, %d, %g, %g)",
                     opts->crop, opts->bin, opts->threshold, opts->saturation);
  if (opts->mask_path[0])
    PT_TRY(apply_mask_file(opts, file_zero_at_corner, ds, info));
  if (opts->threshold > 0.0)
    apply_threshold(opts->threshold, ds, info);
  if (opts->saturation > 0.0)
    PT_TRY(apply_saturation(opts->saturation, ds, info));

  if (opts->transpose_patterns) {
    PT_TRY(map_dataset(ds, MAP_TRANSPOSE));
    APPLIED(info, "patterns transposed");
  }
  if (opts->flip_patterns_x) {
    PT_TRY(map_dataset(ds, MAP_FLIP_X));
    APPLIED(info, "patterns flipped in x");
  }
  if (opts->flip_patterns_y) {
    PT_TRY(map_dataset(ds, MAP_FLIP_Y));
    APPLIED(info, "patterns flipped in y");
  }
  if (opts->crop > 0)
    PT_TRY(apply_crop(opts->crop, ds, info));
  if (opts->bin > 1)
    PT_TRY(apply_bin(opts->bin, ds, info));
  reorient_positions(opts, ds, info);

  if (ds->mask && count_invalid(ds->mask, (size_t)ds->m * ds->m) == (size_t)ds->m * ds->m)
    return ptyc_fail(PTYC_E_FORMAT,
                     "%s: every detector pixel is masked (file mask, data.mask_path, "
                     "data.saturation): check the mask (1 = valid) and the saturation level",
                     opts->path[0] ? opts->path : "dataset");
  return PTYC_OK;
}

ptyc_status ptyc_dataset_apply_options(const ptyc_data_options *opts, ptyc_dataset *ds) {
  int corner = opts && pt_same_word(opts->zero_frequency, "corner");
  pt_h5_quiet();
  return pt_dataset_apply_options(opts, corner, ds, NULL);
}
