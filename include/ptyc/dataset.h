/* Datasets: what a reader hands to a reconstruction, and the native HDF5 layout of
 * shared/FORMATS.md. All HDF5 code lives in src/data/. */
#ifndef PTYC_DATASET_H
#define PTYC_DATASET_H

#include <stdint.h>
#include <stdio.h>

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
} ptyc_dataset;

/* Ground truth written by simulators (native /truth group). */
typedef struct ptyc_truth {
  ptyc_c32 *object;       /* [H][W] on the grid of the file's /positions_px */
  int obj_h, obj_w;
  ptyc_c32 *probe;        /* [K][M][M], or NULL */
  int probe_modes, m;
} ptyc_truth;

/* Reads a dataset. `format` is "auto" or "native". Every defect (missing datasets, N
 * patterns vs N positions, non-square or 1-D patterns, NaN/Inf, negative intensities,
 * no patterns, a probe whose size differs from the patterns, unreadable or truncated
 * files, unsupported dtypes) fails with PTYC_E_FORMAT or PTYC_E_IO and a one-line
 * message naming the file and the problem. */
ptyc_status ptyc_dataset_read(const char *path, const char *format, ptyc_dataset **out);
void ptyc_dataset_free(ptyc_dataset *ds);

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

#ifdef __cplusplus
}
#endif
#endif
