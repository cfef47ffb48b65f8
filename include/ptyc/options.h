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

/* How the model moves the probe by each position's sub-pixel fraction. */
typedef enum ptyc_subpixel_shift {
  PTYC_SHIFT_FOURIER = 0, /* exact phase ramp: two FFTs per position and mode */
  PTYC_SHIFT_INTERPOLATE, /* band-limited filter of 12 taps per axis (no FFT) */
  PTYC_SHIFT_AUTO         /* the model picks (ptyc_model.shift): the filter on a GPU for
                             a probe within its band, else the Fourier ramp */
} ptyc_subpixel_shift;

typedef struct ptyc_data_options {
  char path[PTYC_PATH_MAX]; /* dataset file; relative paths are relative to the job file */
  char format[32];          /* "auto" | "native" | "cxi" | "ptychodus" | "ptychoshelves" */
  /* The second file of two-file formats: the ptychodus product file (positions, probe,
   * pixel size) or the PtychoShelves *_para.hdf5 (/ppX, /ppY); "" = none (PtychoShelves:
   * found next to `path` by replacing "_dp." with "_para."). */
  char positions_path[PTYC_PATH_MAX];
  char zero_frequency[16];  /* where the file's patterns hold the zero frequency:
                               "auto" (the file's attribute or the format's default) |
                               "centre" | "center" | "corner" */
  /* Reorientation, applied after reading (see ptyc_dataset_apply_options). */
  int transpose_patterns, flip_patterns_x, flip_patterns_y;
  int transpose_positions, flip_positions_x, flip_positions_y;
  int crop;                 /* keep the central crop x crop pixels; 0 = all */
  int bin;                  /* sum bin x bin pixel blocks; 1 = no binning */
  char mask_path[PTYC_PATH_MAX]; /* HDF5 file with /mask (1 = valid); "" = none */
  double threshold;         /* counts below it become 0; 0 = off */
  double saturation;        /* pixels reaching it in any pattern are masked; 0 = off */
  /* Geometry that overrides (or supplies) the file's; 0 = the file's. */
  double energy_ev;
  double detector_distance_m;
  double detector_pixel_size_m;
  double object_pixel_size_m;
} ptyc_data_options;

typedef struct ptyc_reconstructor_options {
  char engine[32];          /* "lsqml" | "autodiff" */
  int iterations;           /* >= 1 */
  int batch_size;           /* positions per minibatch; 0 = "auto" */
  ptyc_device_kind device;
  uint64_t seed;
  ptyc_batch_order batch_order;
  double memory_fraction;   /* share of free device memory "auto" batches may use */
  int threads;              /* CPU threads; 0 = all cores (OMP_NUM_THREADS wins) */
  int gpus;                 /* GPUs `ptyc run` uses without an MPI launcher, one rank
                               each; 0 = all visible (a launcher decides for itself) */
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
  char init[16];            /* first mode: "auto" (the file's probe, else "data") |
                               "data" (back-propagated mean pattern) | "aperture" |
                               "file" (the dataset's probe, required) */
  double aperture_diameter_px; /* "aperture": pupil diameter in detector pixels (far
                                  field); 0 = measured from the mean pattern */
  double defocus;           /* "aperture": defocus phase at the pupil edge, radians */
  double defocus_m;         /* "aperture": or the defocus distance, metres (sample
                               downstream of the focus > 0); needs the geometry */
  ptyc_subpixel_shift shift; /* sub-pixel shift of the probe at each position */
} ptyc_probe_options;

typedef struct ptyc_lsqml_options {
  ptyc_noise_model noise_model;
  double object_damping;    /* preconditioner damping, fraction of max illumination */
  double probe_damping;     /* same, for the probe's object-intensity preconditioner */
  double step_regularization; /* Tikhonov term of the 2x2 step-size system, relative */
  double max_step;          /* upper bound of the per-position step sizes */
  double momentum;          /* heavy-ball momentum between iterations, 0 = off */
} ptyc_lsqml_options;

/* Cost of the autodiff engine (autodiff.loss), per detector pixel with model intensity I
 * and measured d: amplitude (sqrt I - sqrt d)^2, intensity (I - d)^2, Poisson negative
 * log-likelihood as the deviance I - d + d log(d / I). */
typedef enum ptyc_loss {
  PTYC_LOSS_AMPLITUDE = 0,
  PTYC_LOSS_INTENSITY,
  PTYC_LOSS_POISSON
} ptyc_loss;

/* Gradient-descent rules of the autodiff engine. DEFAULT is only valid per parameter
 * and means "as autodiff.optimizer". */
typedef enum ptyc_optimizer {
  PTYC_OPTIMIZER_SGD = 0,   /* with optional (Nesterov) momentum */
  PTYC_OPTIMIZER_ADAM,
  PTYC_OPTIMIZER_RMSPROP,
  PTYC_OPTIMIZER_DEFAULT
} ptyc_optimizer;

/* One optimisable parameter of the autodiff engine (object, probe or positions). */
typedef struct ptyc_autodiff_param_options {
  ptyc_optimizer optimizer; /* PTYC_OPTIMIZER_DEFAULT = autodiff.optimizer */
  double step;              /* step size; 0 = the chosen optimizer's default for it */
  int start;                /* first iteration (0-based) that updates it */
  int stop;                 /* first iteration that no longer updates it; 0 = never stops */
} ptyc_autodiff_param_options;

typedef struct ptyc_autodiff_options {
  ptyc_loss loss;
  ptyc_optimizer optimizer; /* SGD, ADAM or RMSPROP (never DEFAULT) */
  double momentum;          /* SGD momentum, 0..1 (0 = plain gradient descent) */
  int nesterov;             /* SGD: Nesterov momentum */
  double adam_beta1;        /* Adam: decay of the gradient's running mean */
  double adam_beta2;        /* Adam: decay of the squared gradient's running mean */
  double rmsprop_alpha;     /* RMSprop: decay of the squared gradient's running mean */
  double epsilon;           /* Adam / RMSprop: added to the root mean square */
  double illumination_mix;  /* object / probe gradients are divided by
                               (1 - mix) * local + mix * maximum illumination */
  double l1_weight;         /* object L1 regulariser, relative to the data cost */
  double tv_weight;         /* object total-variation regulariser, same units */
  int positions_optimizable; /* refine the scan positions */
  ptyc_autodiff_param_options object, probe, positions;
} ptyc_autodiff_options;

typedef struct ptyc_output_options {
  char directory[PTYC_PATH_MAX];
  int every;                /* snapshot every N iterations; 0 = only at the end */
  int png;                  /* write PNG previews */
  int ptychodus;            /* also write ptychodus_product.h5 (ptychodus' product file) */
  int checkpoint_every;     /* checkpoint.h5 every N iterations; 0 = off (SIGINT/SIGTERM
                               still write one) */
} ptyc_output_options;

typedef struct ptyc_options {
  ptyc_data_options data;
  ptyc_reconstructor_options reconstructor;
  ptyc_object_options object;
  ptyc_probe_options probe;
  ptyc_lsqml_options lsqml;
  ptyc_autodiff_options autodiff;
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
