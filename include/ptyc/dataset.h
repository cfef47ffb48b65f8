/* Datasets: what a reader hands to a reconstruction, and the native HDF5 layout of
 * shared/FORMATS.md. All HDF5 code lives in src/data/. */
#ifndef PTYC_DATASET_H
#define PTYC_DATASET_H

#include <stdint.h>
#include <stdio.h>

#include "ptyc/options.h"
#include "ptyc/status.h"
#include "ptyc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_dataset {
  char format[32];        /* detected or named format, e.g. "ptyc-native" */
  int n_patterns;         /* N */
  int m;                  /* patterns are M x M */
  float *patterns;        /* [N][M][M] intensities, zero frequency at [0][0] (FFT layout) */
  double *positions_px;   /* [N][2] (y, x) top-left of the probe window, object pixels,
                             in the file's own grid (any common offset) */
  uint8_t *mask;          /* [M][M] 1 = valid, zero frequency at [0][0]; NULL = all valid */
  ptyc_c32 *probe;        /* [K][M][M] initial probe from the file, or NULL */
  int probe_modes;        /* K of `probe`, 0 if none */
  /* Geometry in SI units; 0 where the file does not say. */
  double wavelength_m;
  double detector_distance_m;
  double detector_pixel_size_m;
  double object_pixel_size_m;
  int positions_from_metres; /* 1 if positions came from /probe_position_*_m */
  /* A rank's share (ptyc_dataset_read_share): `patterns` then holds only the patterns
   * of positions [share_first, share_first + share_count), while positions, mask and
   * probe are those of all N. share_count = 0 (every other reader) = all N patterns. */
  int share_first, share_count;
} ptyc_dataset;

/* The number of patterns `patterns` holds: N, or a share's count. */
static inline int ptyc_dataset_patterns_held(const ptyc_dataset *ds) {
  return ds->share_count > 0 ? ds->share_count : ds->n_patterns;
}

/* Ground truth written by simulators (native /truth group). */
typedef struct ptyc_truth {
  ptyc_c32 *object;       /* [H][W] on the grid of the file's /positions_px */
  int obj_h, obj_w;
  ptyc_c32 *probe;        /* [K][M][M], or NULL */
  int probe_modes, m;
} ptyc_truth;

/* Reads a dataset. `format` is "auto", "native", "cxi", "ptychodus" or "ptychoshelves"
 * (NULL or "" = "auto"), read with the default options (ptyc_dataset_read_opts). Every
 * defect (missing datasets, N patterns vs N positions, non-square or 1-D patterns,
 * NaN/Inf, negative intensities, no patterns, a probe whose size differs from the
 * patterns, unreadable or truncated files, unsupported dtypes) fails with PTYC_E_FORMAT
 * or PTYC_E_IO and a one-line message naming the file and the problem. */
ptyc_status ptyc_dataset_read(const char *path, const char *format, ptyc_dataset **out);
void ptyc_dataset_free(ptyc_dataset *ds);

/* Reads the dataset a job's `data` group describes: opts->path in opts->format ("auto"
 * detects native, CXI, ptychodus and PtychoShelves; the layouts are described at the
 * top of src/data/<format>_reader.c, the options in configs/default.cfg), with
 * opts->positions_path as the second file of two-file formats and the geometry keys
 * overriding the file's, then applies the options with ptyc_dataset_apply_options.
 * ptyc_dataset_read(path, format) is this call with the default options. Errors as for
 * ptyc_dataset_read, plus bad option values (PTYC_E_CONFIG) and files that do not match
 * each other (PTYC_E_FORMAT). */
ptyc_status ptyc_dataset_read_opts(const ptyc_data_options *opts, ptyc_dataset **out);

/* Applies, in this order and in memory: the mask file (opts->mask_path, (M, M), 1 =
 * valid, combined with ds->mask; in the layout of its own dp_zero_frequency attribute,
 * else of opts->zero_frequency, else the centre; ptyc_dataset_read_opts uses the data
 * file's layout instead of the centre), threshold (counts below it -> 0),
 * saturation (pixels reaching it in any pattern -> masked), transpose_patterns,
 * flip_patterns_x/y (mirror about the zero frequency, so it stays at [0][0]), crop
 * (central crop x crop; positions and object pixel size scale by crop / M), bin (sums
 * of bin x bin blocks; detector pixel size grows by bin), transpose_positions,
 * flip_positions_x/y (negation of the probe centres). A file probe follows transposes
 * and flips, and is dropped when crop or bin change M. Fields of `opts` other than
 * these are ignored. */
ptyc_status ptyc_dataset_apply_options(const ptyc_data_options *opts, ptyc_dataset *ds);

/* Reads /truth of a native file; PTYC_E_FORMAT if it has none. */
ptyc_status ptyc_truth_read(const char *path, ptyc_truth **out);
void ptyc_truth_free(ptyc_truth *truth);

/* What a native dataset file to be written holds. Patterns are given in the FFT
 * layout (zero frequency at [0][0]) and written with the zero frequency at the centre
 * (the format's default). `truth` and `attrs` are optional. */
typedef struct ptyc_dataset_attr {
  const char *name;
  double value;
} ptyc_dataset_attr;

typedef struct ptyc_dataset_write_args {
  const ptyc_dataset *data;       /* patterns, positions_px, optional mask/probe, geometry */
  const ptyc_truth *truth;        /* optional */
  const ptyc_dataset_attr *attrs; /* optional generator attributes (seed, photons, ...) */
  int n_attrs;
} ptyc_dataset_write_args;

/* Writes a native file atomically (temporary file, then rename). */
ptyc_status ptyc_dataset_write(const char *path, const ptyc_dataset_write_args *args);

/* `ptyc info`: prints what the file holds, the detected format, geometry and the
 * memory a reconstruction will need (for `n_modes` probe modes and `batch_size`). */
ptyc_status ptyc_dataset_describe(const char *path, int n_modes, int batch_size, FILE *out);

/* The same for the dataset a job's `data` group describes: also names the second
 * file, and lists the options applied. */
ptyc_status ptyc_dataset_describe_opts(const ptyc_data_options *opts, int n_modes,
                                       int batch_size, FILE *out);

/* ---- shares, for runs on several ranks (include/ptyc/comm.h) ------------------------- */
typedef struct ptyc_comm ptyc_comm;

/* The dataset of `opts` as rank r of R of `comm` needs it: all N positions, the mask
 * and the probe, but only the patterns of positions [share_first, share_first +
 * share_count) = ptyc_comm_share(N, r, R), so that pattern memory per rank falls as
 * 1/R. The native format reads just those patterns and positions (HDF5 hyperslabs);
 * the other formats read the whole file, then keep the share. The positions of the
 * other shares and the mask (data.saturation masks a pixel saturated in any pattern
 * of any rank) are combined through `comm`, so every rank ends with the same ones as
 * a single-rank read. Collective: every rank calls it. With one rank (or a NULL comm)
 * it is ptyc_dataset_read_opts. */
ptyc_status ptyc_dataset_read_share(const ptyc_data_options *opts, ptyc_comm *comm,
                                    ptyc_dataset **out);

#ifdef __cplusplus
}
#endif
#endif
