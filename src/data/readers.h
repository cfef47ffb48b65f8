/* The dataset readers of every format and what they share (internal to src/data/).
 *
 * Reading a dataset is three steps (dataset_read.c):
 *   1. a format reader (native_reader.c, cxi_reader.c, ptychodus_reader.c,
 *      ptychoshelves_reader.c) fills a ptyc_dataset from its file(s): patterns moved to
 *      the FFT layout according to the file's own layout (attribute or format default),
 *      geometry with the job's overrides applied, positions in object pixels;
 *   2. data.zero_frequency, when it names a layout, corrects step 1's assumption;
 *   3. the options of dataset_options.c (mask file, threshold, saturation, reorientation,
 *      crop, bin) are applied in memory, whatever the format.
 * Every reader fails with one line naming the file and the problem. */
#ifndef PT_DATA_READERS_H
#define PT_DATA_READERS_H

#include <stddef.h>
#include <stdint.h>

#include "data/h5util.h"
#include "data/native.h"
#include "ptyc/dataset.h"
#include "ptyc/options.h"

/* What a read found, beyond the dataset: `ptyc info` prints it. */
typedef struct pt_read_info {
  pt_native_info file;                /* dtypes, the file's layout, where positions came
                                         from, energy, ...; dp_zero_at_corner is the
                                         layout finally used */
  char positions_path[PTYC_PATH_MAX]; /* the second file read, "" if none */
  char applied[1024];                 /* the options applied, "" if none */
  char notes[512];                    /* what was read but not used, "" if nothing */
  int frame_h, frame_w;               /* detector frames in the file (before squaring) */
} pt_read_info;

/* Steps 1 to 3 above for the job's `data` options. `info` may be NULL. */
ptyc_status pt_dataset_read_info(const ptyc_data_options *opts, ptyc_dataset **out,
                                 pt_read_info *info);
/* The same, keeping only the positions and patterns of `share` (see pt_share in
 * native.h): the native reader reads just those; the other formats read everything in
 * step 1, then keep the share. The dataset's n_patterns is share->count. */
ptyc_status pt_dataset_read_share_info(const ptyc_data_options *opts, pt_share *share,
                                       ptyc_dataset **out, pt_read_info *info);

/* ---- format readers (step 1); each fills *out and `info` (not NULL) ---------------- */

/* CXI 1.6: opts->path. */
ptyc_status pt_cxi_read(const ptyc_data_options *opts, ptyc_dataset **out, pt_read_info *info);
/* ptychodus: patterns (/dp) in opts->path, positions, probe and pixel size in the
 * product file `product_path`. */
ptyc_status pt_ptychodus_read(const ptyc_data_options *opts, const char *product_path,
                              ptyc_dataset **out, pt_read_info *info);
/* PtychoShelves: patterns (/dp) in opts->path, positions (/ppX, /ppY) in `para_path`. */
ptyc_status pt_ptychoshelves_read(const ptyc_data_options *opts, const char *para_path,
                                  ptyc_dataset **out, pt_read_info *info);

/* ---- step 3 ------------------------------------------------------------------------ */

/* ptyc_dataset_apply_options, with the layout of a mask file that does not say its own
 * (`file_zero_at_corner`) and a summary of what was done appended to info->applied
 * (info may be NULL). */
ptyc_status pt_dataset_apply_options(const ptyc_data_options *opts, int file_zero_at_corner,
                                     ptyc_dataset *ds, pt_read_info *info);

/* ---- helpers shared by the readers (reader_common.c) ------------------------------- */

/* Largest pattern side and number of probe modes accepted (as the native reader). */
#define PT_MAX_PATTERN_SIDE 65536
#define PT_MAX_PROBE_MODES 4096

/* Case-insensitive ASCII equality. */
int pt_same_word(const char *a, const char *b);

/* Appends printf-style text to `buf` (of `size` bytes), separated by "; " from what
 * is already there. */
void pt_append(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reads the patterns dataset `name` of `file`: (N, H, W), any integer or float type,
 * finite values (negative values are checked after the options, see
 * pt_check_intensities). Reads the dp_zero_frequency attribute (root, then the
 * dataset; absent = centre) into info->file.dp_zero_at_corner and moves centred
 * patterns to the FFT layout. Frames that are not square (H != W) are cropped to the
 * central M x M, M = min(H, W), around the zero frequency, with a note: ptyc needs
 * square patterns, and the cropped axis then has the other's object pixel size. Sets
 * ds->patterns, n_patterns, m, info->file.dp_dtype and info->frame_h, frame_w. */
ptyc_status pt_read_patterns(const char *path, hid_t file, const char *name, ptyc_dataset *ds,
                             pt_read_info *info);

/* Crops `planes` H x W planes of `elem`-byte elements in `in` to their central M x M,
 * M = min(H, W), around the zero frequency (at index H/2, W/2, or at 0 when
 * `zero_at_corner`), into `out`. */
void pt_square_crop(const void *in, void *out, size_t elem, int planes, int h, int w,
                    int zero_at_corner);

/* The dp_zero_frequency attribute of `loc` (a file or a dataset, named `where` in
 * messages): *corner = 1 for "corner", 0 for "centre" / "center", -1 when absent; any
 * other value fails. */
ptyc_status pt_read_layout_attr(const char *path, hid_t loc, const char *where, int *corner);

/* Fails if a pattern holds a negative intensity (after data.threshold). */
ptyc_status pt_check_intensities(const char *path, const ptyc_dataset *ds);

/* Reads a 1-D dataset of numbers (also (N, 1) or (1, N), as MATLAB writes vectors) into
 * a new array of *n doubles (*out, free()); NaN or Inf fail. */
ptyc_status pt_read_vector(const char *path, hid_t file, const char *name, double **out,
                           int *n);

/* Reads an (H, W) mask `name`: any integer, float or h5py bool type. A pixel is valid
 * where the value is nonzero (`nonzero_is_valid`, ptyc's convention) or where it is
 * zero (CXI's bit field of defects). *out is a new H*W array of 0/1 (free()), in the
 * file's layout. dtype receives the file type's name. */
ptyc_status pt_read_mask_plane(const char *path, hid_t file, const char *name, int h, int w,
                               int nonzero_is_valid, uint8_t **out, char *dtype,
                               size_t dtype_size);

/* Reads a probe `name`: (M, M), (K, M, M) or (1, K, M, M) (ptychodus; the first of
 * several coherent sets is kept), complex (or real). If its side is not `m`,
 * *side_found receives it and nothing is read (the caller decides); otherwise *out
 * (free()), *modes and *side_found = m. NaN, Inf or an all-zero probe fail. */
ptyc_status pt_read_probe(const char *path, hid_t file, const char *name, int m,
                          ptyc_c32 **out, int *modes, int *side_found, char *dtype,
                          size_t dtype_size);

/* Reads an optional positive number: a root attribute `name` of `loc` (*value = 0 when
 * absent or 0). Fails on a non-number, a negative or non-finite value. */
ptyc_status pt_read_positive_attr(const char *path, hid_t loc, const char *where,
                                  const char *name, double *value);

/* Reads an optional positive scalar dataset `name` (a number, or an array of one) into
 * *value (0 when absent). */
ptyc_status pt_read_positive_scalar(const char *path, hid_t file, const char *name,
                                    double *value);

/* Applies the geometry keys of `opts` (those > 0 replace the file's), the wavelength
 * from info->energy_ev, and the object pixel size from wavelength, distance and
 * detector pixel when no explicit one is given (info->object_pixel_size_computed). */
void pt_finish_geometry(const ptyc_data_options *opts, ptyc_dataset *ds, pt_native_info *info);

/* Probe centres in metres (y_m[j], x_m[j]) -> top-left corners in object pixels,
 * px = centre / pixel_size - M / 2, with the object pixel sizes pixel_y_m, pixel_x_m
 * (0 = unknown: fails, naming what is missing and the keys that give it; `what` names
 * the positions in the message). */
ptyc_status pt_positions_from_metres(const char *path, const char *what, ptyc_dataset *ds,
                                     const double *y_m, const double *x_m, double pixel_y_m,
                                     double pixel_x_m);

/* Shifts the zero frequency of the patterns and the mask of `ds` between layouts
 * (to_corner as in pt_shift_plane_f32). */
ptyc_status pt_dataset_shift_layout(ptyc_dataset *ds, int to_corner);

/* Planck constant times speed of light, J m (exact in SI), for energies in joules. */
#define PT_HC_J_M 1.9864458571489286e-25

#endif
