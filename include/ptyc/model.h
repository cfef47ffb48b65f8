/* The reconstruction state shared by all engines: object, probe modes, positions and
 * this rank's patterns, on the backend's device. */
#ifndef PTYC_MODEL_H
#define PTYC_MODEL_H

#include "ptyc/backend.h"
#include "ptyc/comm.h"
#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/recon_io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_model {
  ptyc_backend *be;     /* not owned */
  int n_positions;      /* N */
  int m;                /* M */
  int n_modes;          /* K */
  int obj_h, obj_w;
  ptyc_buf object;      /* c32 [H][W] */
  ptyc_buf probe;       /* c32 [K][M][M] */
  ptyc_buf positions;   /* double [N][2] (y, x) top-left on the object grid */
  ptyc_buf patterns;    /* float [N][M][M] intensities, zero frequency at [0][0];
                           {NULL} when streaming */
  int streaming;        /* patterns stay in page-locked host memory (patterns_host) and
                           are copied to the device batch by batch */
  float *patterns_host; /* streaming: [N][M][M], from ptyc_host_alloc */
  ptyc_buf mask;        /* float [M][M] 1 valid / 0 invalid, or {NULL} */
  double *positions_host;   /* [N][2], same as `positions` */
  double offset_px[2];      /* object grid = file grid + offset (y, x) */
  double mean_pattern_sum;  /* mean over patterns of their total counts */
  ptyc_subpixel_shift shift; /* how the engines move the probe: probe.shift, "auto"
                                resolved (never PTYC_SHIFT_AUTO) */
  double pupil_reach;        /* largest spatial frequency of the mean pattern's bright
                                region, cycles per pixel (model.c: pupil_reach) */
  double object_pixel_size_m;
  size_t pattern_nbytes;    /* bytes of `patterns` on the device */
  double wavelength_m;      /* the dataset's, 0 if unknown (for the outputs) */
  double detector_distance_m; /* the dataset's, 0 if unknown */
  /* Runs on several ranks (include/ptyc/comm.h): `patterns` / `patterns_host` hold only
   * the patterns of positions [pattern_first, pattern_first + n_patterns_held), this
   * rank's share; with one rank 0 and N. Object, probe and positions are replicas. */
  int pattern_first, n_patterns_held;
  ptyc_comm *comm;      /* the ranks; NULL = one rank (not owned) */
} ptyc_model;

/* Builds the model from a dataset: object of ones sized from the positions plus
 * object.padding_px, positions moved onto that grid, the probe from the file or from
 * the data (back-propagated mean pattern) with extra modes added, scaled so that the
 * model intensity matches the data; everything uploaded to `be`. */
ptyc_status ptyc_model_init(ptyc_backend *be, const ptyc_dataset *ds, const ptyc_options *opts,
                            ptyc_model *model);
/* The same on one rank of `comm`, for a dataset that may hold only this rank's share of
 * the patterns (ptyc_dataset_read_share): what the initial probe needs from all patterns
 * (their sum, the pairs the defocus sign compares) comes through the comm, so every
 * rank builds the same model. Collective; comm NULL = ptyc_model_init. */
ptyc_status ptyc_model_init_comm(ptyc_backend *be, ptyc_comm *comm, const ptyc_dataset *ds,
                                 const ptyc_options *opts, ptyc_model *model);
void ptyc_model_free(ptyc_model *model);

/* Why model->shift is what it is, in a few words (for the run's header). */
const char *ptyc_model_shift_reason(const ptyc_model *model, const ptyc_options *opts);

/* The object size ptyc_model_init will choose and the device bytes the model itself
 * will hold (object, probe, positions, patterns, mask), before allocating anything. */
void ptyc_model_plan(const ptyc_dataset *ds, const ptyc_options *opts, int *obj_h, int *obj_w,
                     size_t *nbytes);

/* Copies object, probe and positions to host arrays of `recon` (allocating them). */
ptyc_status ptyc_model_download(ptyc_model *model, ptyc_recon *recon);

#ifdef __cplusplus
}
#endif
#endif
