/* The native reader's view of a file, beyond what ptyc_dataset holds (internal):
 * `ptyc info` prints it. */
#ifndef PT_DATA_NATIVE_H
#define PT_DATA_NATIVE_H

#include "ptyc/dataset.h"

typedef struct pt_native_info {
  char dp_dtype[32];          /* file type of /dp, e.g. "float32", "uint16" */
  int dp_zero_at_corner;      /* 1 if the file stores the zero frequency at [0][0] */
  char positions_source[64];  /* "/positions_px" or "/probe_position_y_m + /probe_position_x_m" */
  char probe_dtype[32];       /* "" if no /probe */
  char mask_dtype[32];        /* "" if no /mask */
  double energy_ev;           /* the energy_ev attribute, 0 if absent */
  int object_pixel_size_computed; /* 1 if derived from wavelength, distance, pixel size */
  int has_truth;              /* 1 if /truth/object exists */
} pt_native_info;

/* Reads a native file like ptyc_dataset_read(path, "native", out) and fills `info`
 * (which may be NULL). */
ptyc_status pt_native_read(const char *path, ptyc_dataset **out, pt_native_info *info);

#endif
