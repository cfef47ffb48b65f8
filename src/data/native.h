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

/* Which positions (and their patterns) a reader keeps: part `part` of `parts`
 * (ptyc_comm_share); {0, 1} keeps all. The reader fills in where the part lies. */
typedef struct pt_share {
  int part, parts;           /* in */
  int first, count, n_total; /* out: positions [first, first + count) of the file's N */
} pt_share;

/* Fills share->first, count and n_total for a file of `n_total` positions; fails when
 * the part would be empty (more ranks than positions). `path` names the file. */
ptyc_status pt_share_locate(pt_share *share, int n_total, const char *path);

/* Keeps only the share's positions and patterns of a dataset read whole (the formats
 * without hyperslab reads), after locating the share among its N. */
ptyc_status pt_share_keep(pt_share *share, ptyc_dataset *ds, const char *path);

/* As pt_native_read, keeping only the positions and patterns of `share` (read as HDF5
 * hyperslabs, so the rest never reaches memory): the dataset's n_patterns is
 * share->count. */
ptyc_status pt_native_read_share(const char *path, pt_share *share, ptyc_dataset **out,
                                 pt_native_info *info);

#endif
