/* The resolved options of one reconstruction job, grouped as in the job file
 * (configs/default.cfg documents every key, its unit and its default). */
#ifndef PTYC_OPTIONS_H
#define PTYC_OPTIONS_H

#include <stdint.h>

#include "ptyc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTYC_PATH_MAX 4096

typedef enum ptyc_device_kind {
  PTYC_DEVICE_AUTO = 0,
  PTYC_DEVICE_CPU,
  PTYC_DEVICE_CUDA
} ptyc_device_kind;

typedef enum ptyc_noise_model {
  PTYC_NOISE_GAUSSIAN = 0, /* amplitude (square-root) least squares */
  PTYC_NOISE_POISSON
} ptyc_noise_model;

typedef enum ptyc_batch_order {
  PTYC_BATCH_RANDOM = 0, /* positions drawn at random into each minibatch */
  PTYC_BATCH_COMPACT     /* spatially compact minibatches */
} ptyc_batch_order;

typedef enum ptyc_patterns_place {
  PTYC_PATTERNS_AUTO = 0,   /* on the device when they fit, else streamed */
  PTYC_PATTERNS_RESIDENT,   /* all patterns on the device */
  PTYC_PATTERNS_STREAM      /* page-locked host memory, copied batch by batch */
} ptyc_patterns_place;

typedef struct ptyc_data_options {
  char path[PTYC_PATH_MAX]; /* dataset file; relative paths are relative to the job file */
  char format[32];          /* "auto" | "native" */
} ptyc_data_options;

typedef struct ptyc_reconstructor_options {
  char engine[32];          /* "lsqml" */
  int iterations;           /* >= 1 */
  int batch_size;           /* positions per minibatch; 0 = "auto" */
  ptyc_device_kind device;
  uint64_t seed;
  ptyc_batch_order batch_order;
  double memory_fraction;   /* share of free device memory "auto" batches may use */
  int threads;              /* CPU threads; 0 = all cores (OMP_NUM_THREADS wins) */
  ptyc_patterns_place patterns; /* where the measured patterns live during the run */
} ptyc_reconstructor_options;

typedef struct ptyc_object_options {
  int optimizable;          /* 0 = frozen */
  int padding_px;           /* margin around the scanned area, pixels */
} ptyc_object_options;

typedef struct ptyc_probe_options {
  int modes;                /* incoherent probe modes K >= 1 */
  int optimizable;          /* 0 = frozen */
  int orthogonalize;        /* orthogonalise modes after every iteration */
  double extra_mode_power;  /* power of each added mode relative to the first, 0..1 */
} ptyc_probe_options;

typedef struct ptyc_lsqml_options {
  ptyc_noise_model noise_model;
  double object_damping;    /* preconditioner damping, fraction of max illumination */
  double probe_damping;     /* same, for the probe's object-intensity preconditioner */
  double step_regularization; /* Tikhonov term of the 2x2 step-size system, relative */
  double max_step;          /* upper bound of the per-position step sizes */
  double momentum;          /* heavy-ball momentum between iterations, 0 = off */
} ptyc_lsqml_options;

typedef struct ptyc_output_options {
  char directory[PTYC_PATH_MAX];
  int every;                /* snapshot every N iterations; 0 = only at the end */
  int png;                  /* write PNG previews */
} ptyc_output_options;

typedef struct ptyc_options {
  ptyc_data_options data;
  ptyc_reconstructor_options reconstructor;
  ptyc_object_options object;
  ptyc_probe_options probe;
  ptyc_lsqml_options lsqml;
  ptyc_output_options output;
} ptyc_options;

/* Fills `opts` with the documented defaults. */
void ptyc_options_default(ptyc_options *opts);

/* Reads a libconfig job file, applies `n_overrides` "group.key=value" strings on top
 * (same checks as the file), validates everything and fills `opts`. Unknown keys,
 * wrong types and out-of-range values fail with PTYC_E_CONFIG and a message that
 * names file:line (or the --set string), what was expected and, for a misspelt key,
 * the nearest valid key. Relative data.path / output.directory are resolved against
 * the job file's directory. */
ptyc_status ptyc_options_load(const char *job_path, const char *const *overrides,
                              int n_overrides, ptyc_options *opts);

/* The resolved job as libconfig text (every key, defaults included): printed at
 * start and stored in the output. Returns a malloc'd string the caller frees. */
ptyc_status ptyc_options_to_text(const ptyc_options *opts, char **text);

#ifdef __cplusplus
}
#endif
#endif
