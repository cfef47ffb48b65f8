/* The job file: defaults, parsing, validation and printing of ptyc_options.
 *
 * One table, `keys`, lists every key of the job file with its type, allowed range,
 * default, unit and a line of documentation. Everything in this file is driven by it:
 * the defaults, reading a libconfig file, --set overrides, validation and
 * ptyc_options_to_text(). configs/default.cfg is written by hand from the same table,
 * and tests/unit/test_config.c checks that it loads to the defaults.
 *
 * Values from the file and from --set first become a `value` (what was written: a
 * boolean, an integer, a string, ...); apply_value() then checks it against the key's
 * spec and stores it, so both sources get the same checks and the same messages.
 *
 * This is the only file of ptyc that includes libconfig.h.
 *
 * libconfig 1.5 reads a plain integer literal as 32 bits (larger ones wrap silently);
 * integers beyond 2147483647 need an L suffix, e.g. seed = 12345678901L. */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat, getcwd */

#include "ptyc/options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "pt_try.h"

/* ---- the key table -------------------------------------------------------------- */

/* How a key is written in the job file and where its value is stored. */
typedef enum key_kind {
  KEY_BOOL,     /* true | false                          -> int, 0 or 1 */
  KEY_INT,      /* an integer within the bounds          -> int */
  KEY_INT_AUTO, /* an integer within the bounds | "auto" -> int, 0 = "auto" */
  KEY_UINT64,   /* an integer >= 0, 64 bits              -> uint64_t */
  KEY_FLOAT,    /* a number (integers accepted)          -> double */
  KEY_ENUM,     /* one of `words`                        -> enum, the word's index */
  KEY_NAME,     /* one of `words`                        -> char[], the word itself */
  KEY_PATH      /* a non-empty string, made absolute     -> char[] */
} key_kind;

typedef enum bound_kind {
  BOUND_NONE = 0, /* no bound on this side */
  BOUND_INCL,     /* the bound itself is allowed */
  BOUND_EXCL      /* the bound itself is not allowed */
} bound_kind;

typedef struct key_spec {
  const char *name;          /* "group.key", as in the job file */
  key_kind kind;
  size_t offset;             /* where the value lives in ptyc_options */
  size_t size;               /* its size (the buffer size for char[] fields) */
  bound_kind lo_bound, hi_bound;
  double lo, hi;             /* numeric bounds, used where the bound kind says so */
  const char *const *words;  /* KEY_ENUM / KEY_NAME: the allowed words, NULL-terminated */
  int optional;              /* KEY_PATH: "" is allowed and means "none" (not resolved) */
  double default_number;     /* default of KEY_BOOL, KEY_INT*, KEY_UINT64, KEY_FLOAT */
  const char *default_text;  /* default of KEY_ENUM, KEY_NAME, KEY_PATH */
  const char *unit;          /* unit of the value, "" if none */
  const char *doc;           /* one line for configs/default.cfg */
} key_spec;

#define FIELD(member)                          \
  .offset = offsetof(ptyc_options, member),    \
  .size = sizeof(((ptyc_options *)0)->member)

/* KEY_ENUM words are listed in the order of the enum's values. */
static const char *const format_words[] = {"auto", "native", "cxi", "ptychodus",
                                            "ptychoshelves", NULL};
static const char *const zero_frequency_words[] = {"auto", "centre", "center", "corner", NULL};
static const char *const probe_init_words[] = {"auto", "data", "aperture", "file", NULL};
static const char *const engine_words[] = {"lsqml", "autodiff", NULL};
static const char *const device_words[] = {"auto", "cpu", "cuda", NULL};
static const char *const batch_order_words[] = {"random", "compact", NULL};
static const char *const patterns_words[] = {"auto", "resident", "stream", NULL};
static const char *const noise_words[] = {"gaussian", "poisson", NULL};
static const char *const shift_words[] = {"fourier", "interpolate", "auto", NULL};
static const char *const loss_words[] = {"amplitude", "intensity", "poisson", NULL};
static const char *const optimizer_words[] = {"sgd", "adam", "rmsprop", NULL};
/* per-parameter optimizer: the global words plus "default" (= autodiff.optimizer) */
static const char *const param_optimizer_words[] = {"sgd", "adam", "rmsprop", "default", NULL};

_Static_assert(PTYC_LOSS_AMPLITUDE == 0 && PTYC_LOSS_INTENSITY == 1 && PTYC_LOSS_POISSON == 2,
               "loss_words follows ptyc_loss");
_Static_assert(PTYC_OPTIMIZER_SGD == 0 && PTYC_OPTIMIZER_ADAM == 1 &&
                   PTYC_OPTIMIZER_RMSPROP == 2 && PTYC_OPTIMIZER_DEFAULT == 3,
               "optimizer_words and param_optimizer_words follow ptyc_optimizer");
_Static_assert(sizeof(ptyc_loss) == sizeof(int) && sizeof(ptyc_optimizer) == sizeof(int),
               "enums are stored as int");

_Static_assert(PTYC_DEVICE_AUTO == 0 && PTYC_DEVICE_CPU == 1 && PTYC_DEVICE_CUDA == 2,
               "device_words follows ptyc_device_kind");
_Static_assert(PTYC_BATCH_RANDOM == 0 && PTYC_BATCH_COMPACT == 1,
               "batch_order_words follows ptyc_batch_order");
_Static_assert(PTYC_NOISE_GAUSSIAN == 0 && PTYC_NOISE_POISSON == 1,
               "noise_words follows ptyc_noise_model");
_Static_assert(PTYC_SHIFT_FOURIER == 0 && PTYC_SHIFT_INTERPOLATE == 1 && PTYC_SHIFT_AUTO == 2,
               "shift_words follows ptyc_subpixel_shift");
/* KEY_ENUM and KEY_BOOL values are stored through an int lvalue. */
_Static_assert(sizeof(ptyc_device_kind) == sizeof(int) &&
                   sizeof(ptyc_batch_order) == sizeof(int) &&
                   sizeof(ptyc_noise_model) == sizeof(int) &&
                   sizeof(ptyc_subpixel_shift) == sizeof(int),
               "enums are stored as int");

/* Every key of the job file, grouped, in the order of configs/default.cfg. */
static const key_spec keys[] = {
    {.name = "data.path", .kind = KEY_PATH, FIELD(data.path), .default_text = "",
     .unit = "path",
     .doc = "the dataset file (required); relative to this file's directory"},
    {.name = "data.format", .kind = KEY_NAME, FIELD(data.format), .words = format_words,
     .default_text = "auto", .unit = "",
     .doc = "layout of the dataset file; \"auto\" recognises it"},
    {.name = "data.positions_path", .kind = KEY_PATH, FIELD(data.positions_path),
     .optional = 1, .default_text = "", .unit = "path",
     .doc = "second file: ptychodus product or PtychoShelves *_para.hdf5; \"\" = none"},
    {.name = "data.zero_frequency", .kind = KEY_NAME, FIELD(data.zero_frequency),
     .words = zero_frequency_words, .default_text = "auto", .unit = "",
     .doc = "where the file's patterns hold the zero frequency"},
    {.name = "data.transpose_patterns", .kind = KEY_BOOL, FIELD(data.transpose_patterns),
     .default_number = 0, .unit = "", .doc = "swap the y and x axes of every pattern"},
    {.name = "data.flip_patterns_x", .kind = KEY_BOOL, FIELD(data.flip_patterns_x),
     .default_number = 0, .unit = "", .doc = "mirror the patterns in x (after transposing)"},
    {.name = "data.flip_patterns_y", .kind = KEY_BOOL, FIELD(data.flip_patterns_y),
     .default_number = 0, .unit = "", .doc = "mirror the patterns in y (after transposing)"},
    {.name = "data.transpose_positions", .kind = KEY_BOOL, FIELD(data.transpose_positions),
     .default_number = 0, .unit = "", .doc = "swap the y and x coordinates of the positions"},
    {.name = "data.flip_positions_x", .kind = KEY_BOOL, FIELD(data.flip_positions_x),
     .default_number = 0, .unit = "", .doc = "negate the x positions (after transposing)"},
    {.name = "data.flip_positions_y", .kind = KEY_BOOL, FIELD(data.flip_positions_y),
     .default_number = 0, .unit = "", .doc = "negate the y positions (after transposing)"},
    {.name = "data.crop", .kind = KEY_INT, FIELD(data.crop), .lo_bound = BOUND_INCL, .lo = 0,
     .default_number = 0, .unit = "pixels",
     .doc = "keep the central crop x crop pixels of each pattern; 0 = all"},
    {.name = "data.bin", .kind = KEY_INT, FIELD(data.bin), .lo_bound = BOUND_INCL, .lo = 1,
     .hi_bound = BOUND_INCL, .hi = 64, .default_number = 1, .unit = "pixels",
     .doc = "sum bin x bin pixel blocks (after cropping); 1 = no binning"},
    {.name = "data.mask_path", .kind = KEY_PATH, FIELD(data.mask_path), .optional = 1,
     .default_text = "", .unit = "path",
     .doc = "HDF5 file with /mask (M x M, 1 = valid) like the patterns; \"\" = none"},
    {.name = "data.threshold", .kind = KEY_FLOAT, FIELD(data.threshold),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "counts",
     .doc = "counts below it are set to 0; 0 = off"},
    {.name = "data.saturation", .kind = KEY_FLOAT, FIELD(data.saturation),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "counts",
     .doc = "pixels at or above it in any pattern are masked; 0 = off"},
    {.name = "data.energy_ev", .kind = KEY_FLOAT, FIELD(data.energy_ev),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "eV",
     .doc = "photon energy; 0 = the file's"},
    {.name = "data.detector_distance_m", .kind = KEY_FLOAT, FIELD(data.detector_distance_m),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "m",
     .doc = "sample-detector distance; 0 = the file's"},
    {.name = "data.detector_pixel_size_m", .kind = KEY_FLOAT,
     FIELD(data.detector_pixel_size_m), .lo_bound = BOUND_INCL, .lo = 0,
     .default_number = 0, .unit = "m", .doc = "detector pixel size; 0 = the file's"},
    {.name = "data.object_pixel_size_m", .kind = KEY_FLOAT, FIELD(data.object_pixel_size_m),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "m",
     .doc = "object pixel size; 0 = the file's or from the geometry"},

    {.name = "reconstructor.engine", .kind = KEY_NAME, FIELD(reconstructor.engine),
     .words = engine_words, .default_text = "lsqml", .unit = "",
     .doc = "reconstruction algorithm"},
    {.name = "reconstructor.iterations", .kind = KEY_INT, FIELD(reconstructor.iterations),
     .lo_bound = BOUND_INCL, .lo = 1, .default_number = 50, .unit = "iterations",
     .doc = "number of passes over all positions"},
    {.name = "reconstructor.batch_size", .kind = KEY_INT_AUTO,
     FIELD(reconstructor.batch_size), .lo_bound = BOUND_INCL, .lo = 1,
     .default_number = 64, .unit = "positions",
     .doc = "positions per minibatch; \"auto\" takes the most that fit memory_fraction"},
    {.name = "reconstructor.device", .kind = KEY_ENUM, FIELD(reconstructor.device),
     .words = device_words, .default_text = "auto", .unit = "",
     .doc = "where to compute; \"auto\" uses CUDA when a GPU is present"},
    {.name = "reconstructor.seed", .kind = KEY_UINT64, FIELD(reconstructor.seed),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 1, .unit = "",
     .doc = "seed of all random choices; above 2147483647 write an L suffix"},
    {.name = "reconstructor.batch_order", .kind = KEY_ENUM,
     FIELD(reconstructor.batch_order), .words = batch_order_words,
     .default_text = "random", .unit = "",
     .doc = "minibatches of positions drawn at random, or spatially compact"},
    {.name = "reconstructor.patterns", .kind = KEY_ENUM, FIELD(reconstructor.patterns),
     .words = patterns_words, .default_text = "auto", .unit = "",
     .doc = "patterns on the device (\"resident\"), streamed from page-locked host memory "
            "batch by batch (\"stream\"), or \"auto\": resident when they fit"},
    {.name = "reconstructor.memory_fraction", .kind = KEY_FLOAT,
     FIELD(reconstructor.memory_fraction), .lo_bound = BOUND_EXCL, .lo = 0,
     .hi_bound = BOUND_INCL, .hi = 1, .default_number = 0.9,
     .unit = "fraction of free device memory",
     .doc = "memory that \"auto\" batches may use"},
    {.name = "reconstructor.threads", .kind = KEY_INT, FIELD(reconstructor.threads),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "threads",
     .doc = "CPU threads; 0 = all cores (OMP_NUM_THREADS wins)"},
    {.name = "reconstructor.gpus", .kind = KEY_INT, FIELD(reconstructor.gpus),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "GPUs",
     .doc = "GPUs a run without an MPI launcher uses, one rank each; 0 = all visible"},

    {.name = "object.optimizable", .kind = KEY_BOOL, FIELD(object.optimizable),
     .default_number = 1, .unit = "", .doc = "update the object; false keeps it fixed"},
    {.name = "object.padding_px", .kind = KEY_INT, FIELD(object.padding_px),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 65536,
     .default_number = 8, .unit = "pixels",
     .doc = "margin of the object around the scanned area"},

    {.name = "probe.modes", .kind = KEY_INT, FIELD(probe.modes), .lo_bound = BOUND_INCL,
     .lo = 1, .hi_bound = BOUND_INCL, .hi = 16, .default_number = 1, .unit = "modes",
     .doc = "incoherent probe modes"},
    {.name = "probe.optimizable", .kind = KEY_BOOL, FIELD(probe.optimizable),
     .default_number = 1, .unit = "", .doc = "update the probe; false keeps it fixed"},
    {.name = "probe.orthogonalize", .kind = KEY_BOOL, FIELD(probe.orthogonalize),
     .default_number = 1, .unit = "",
     .doc = "orthogonalise the probe modes after every iteration"},
    {.name = "probe.extra_mode_power", .kind = KEY_FLOAT, FIELD(probe.extra_mode_power),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 1,
     .default_number = 0.1, .unit = "fraction of the first mode's power",
     .doc = "initial power of each added mode"},
    {.name = "probe.init", .kind = KEY_NAME, FIELD(probe.init), .words = probe_init_words,
     .default_text = "auto", .unit = "",
     .doc = "first probe mode: the file's, from the data, or an aperture model"},
    {.name = "probe.aperture_diameter_px", .kind = KEY_FLOAT,
     FIELD(probe.aperture_diameter_px), .lo_bound = BOUND_INCL, .lo = 0,
     .default_number = 0, .unit = "detector pixels",
     .doc = "\"aperture\": pupil diameter in the far field; 0 = from the mean pattern"},
    {.name = "probe.defocus", .kind = KEY_FLOAT, FIELD(probe.defocus), .default_number = 0,
     .unit = "radians at the pupil edge", .doc = "\"aperture\": defocus phase"},
    {.name = "probe.defocus_m", .kind = KEY_FLOAT, FIELD(probe.defocus_m),
     .default_number = 0, .unit = "m",
     .doc = "\"aperture\": defocus distance (sample past the focus > 0)"},
    {.name = "probe.shift", .kind = KEY_ENUM, FIELD(probe.shift), .words = shift_words,
     .default_text = "auto", .unit = "",
     .doc = "sub-pixel probe shift: the exact Fourier ramp, a 12-tap filter, or auto (the "
            "filter on a GPU for a band-limited probe)"},

    {.name = "lsqml.noise_model", .kind = KEY_ENUM, FIELD(lsqml.noise_model),
     .words = noise_words, .default_text = "gaussian", .unit = "",
     .doc = "likelihood: amplitude least squares or Poisson photon counts"},
    {.name = "lsqml.object_damping", .kind = KEY_FLOAT, FIELD(lsqml.object_damping),
     .lo_bound = BOUND_EXCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 10,
     .default_number = 0.1, .unit = "fraction of the maximum illumination",
     .doc = "damping of the object update's preconditioner"},
    {.name = "lsqml.probe_damping", .kind = KEY_FLOAT, FIELD(lsqml.probe_damping),
     .lo_bound = BOUND_EXCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 10,
     .default_number = 0.1, .unit = "fraction of the maximum object intensity",
     .doc = "damping of the probe update's preconditioner"},
    {.name = "lsqml.step_regularization", .kind = KEY_FLOAT,
     FIELD(lsqml.step_regularization), .lo_bound = BOUND_INCL, .lo = 0,
     .default_number = 0.01, .unit = "relative to the system's diagonal",
     .doc = "Tikhonov term of the 2x2 step-size system"},
    {.name = "lsqml.max_step", .kind = KEY_FLOAT, FIELD(lsqml.max_step),
     .lo_bound = BOUND_EXCL, .lo = 0, .default_number = 2.0, .unit = "",
     .doc = "upper bound of the per-position step sizes"},
    {.name = "lsqml.momentum", .kind = KEY_FLOAT, FIELD(lsqml.momentum),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 0.95,
     .default_number = 0.5, .unit = "",
     .doc = "heavy-ball momentum between iterations: X += momentum (X - X_previous)"},

    {.name = "autodiff.loss", .kind = KEY_ENUM, FIELD(autodiff.loss), .words = loss_words,
     .default_text = "amplitude", .unit = "",
     .doc = "cost: amplitude (Gaussian) or intensity least squares, or Poisson likelihood"},
    {.name = "autodiff.optimizer", .kind = KEY_ENUM, FIELD(autodiff.optimizer),
     .words = optimizer_words, .default_text = "sgd", .unit = "",
     .doc = "gradient-descent rule of every parameter whose own optimizer is \"default\""},
    {.name = "autodiff.momentum", .kind = KEY_FLOAT, FIELD(autodiff.momentum),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_EXCL, .hi = 1,
     .default_number = 0.9, .unit = "", .doc = "SGD momentum; 0 = plain gradient descent"},
    {.name = "autodiff.nesterov", .kind = KEY_BOOL, FIELD(autodiff.nesterov),
     .default_number = 1, .unit = "", .doc = "SGD: Nesterov momentum"},
    {.name = "autodiff.adam_beta1", .kind = KEY_FLOAT, FIELD(autodiff.adam_beta1),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_EXCL, .hi = 1,
     .default_number = 0.9, .unit = "", .doc = "Adam: decay of the mean gradient"},
    {.name = "autodiff.adam_beta2", .kind = KEY_FLOAT, FIELD(autodiff.adam_beta2),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_EXCL, .hi = 1,
     .default_number = 0.999, .unit = "", .doc = "Adam: decay of the mean squared gradient"},
    {.name = "autodiff.rmsprop_alpha", .kind = KEY_FLOAT, FIELD(autodiff.rmsprop_alpha),
     .lo_bound = BOUND_INCL, .lo = 0, .hi_bound = BOUND_EXCL, .hi = 1,
     .default_number = 0.99, .unit = "", .doc = "RMSprop: decay of the mean squared gradient"},
    {.name = "autodiff.epsilon", .kind = KEY_FLOAT, FIELD(autodiff.epsilon),
     .lo_bound = BOUND_EXCL, .lo = 0, .default_number = 1e-8, .unit = "",
     .doc = "Adam / RMSprop: added to the root mean squared gradient"},
    {.name = "autodiff.illumination_mix", .kind = KEY_FLOAT, FIELD(autodiff.illumination_mix),
     .lo_bound = BOUND_EXCL, .lo = 0, .hi_bound = BOUND_INCL, .hi = 1,
     .default_number = 0.5, .unit = "fraction",
     .doc = "gradients divided by (1 - mix) local + mix maximum illumination"},
    {.name = "autodiff.l1_weight", .kind = KEY_FLOAT, FIELD(autodiff.l1_weight),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "relative to the data cost",
     .doc = "weight of the object's L1 norm (mean |O|)"},
    {.name = "autodiff.tv_weight", .kind = KEY_FLOAT, FIELD(autodiff.tv_weight),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "relative to the data cost",
     .doc = "weight of the object's total variation (mean |grad O|)"},
    {.name = "autodiff.object_optimizer", .kind = KEY_ENUM, FIELD(autodiff.object.optimizer),
     .words = param_optimizer_words, .default_text = "default", .unit = "",
     .doc = "the object's optimizer; \"default\" = autodiff.optimizer"},
    {.name = "autodiff.object_step", .kind = KEY_FLOAT, FIELD(autodiff.object.step),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "",
     .doc = "the object's step size; 0 = the optimizer's default"},
    {.name = "autodiff.object_start", .kind = KEY_INT, FIELD(autodiff.object.start),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iteration",
     .doc = "first iteration that updates the object"},
    {.name = "autodiff.object_stop", .kind = KEY_INT, FIELD(autodiff.object.stop),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iteration",
     .doc = "first iteration that no longer updates the object; 0 = never stops"},
    {.name = "autodiff.probe_optimizer", .kind = KEY_ENUM, FIELD(autodiff.probe.optimizer),
     .words = param_optimizer_words, .default_text = "default", .unit = "",
     .doc = "the probe's optimizer; \"default\" = autodiff.optimizer"},
    {.name = "autodiff.probe_step", .kind = KEY_FLOAT, FIELD(autodiff.probe.step),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "",
     .doc = "the probe's step size; 0 = the optimizer's default"},
    {.name = "autodiff.probe_start", .kind = KEY_INT, FIELD(autodiff.probe.start),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iteration",
     .doc = "first iteration that updates the probe"},
    {.name = "autodiff.probe_stop", .kind = KEY_INT, FIELD(autodiff.probe.stop),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iteration",
     .doc = "first iteration that no longer updates the probe; 0 = never stops"},
    {.name = "autodiff.positions_optimizable", .kind = KEY_BOOL,
     FIELD(autodiff.positions_optimizable), .default_number = 0, .unit = "",
     .doc = "refine the scan positions (sub-pixel, through the probe shift)"},
    {.name = "autodiff.positions_optimizer", .kind = KEY_ENUM,
     FIELD(autodiff.positions.optimizer), .words = param_optimizer_words,
     .default_text = "default", .unit = "",
     .doc = "the positions' optimizer; \"default\" = autodiff.optimizer"},
    {.name = "autodiff.positions_step", .kind = KEY_FLOAT, FIELD(autodiff.positions.step),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "",
     .doc = "the positions' step size; 0 = the optimizer's default"},
    {.name = "autodiff.positions_start", .kind = KEY_INT, FIELD(autodiff.positions.start),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 10, .unit = "iteration",
     .doc = "first iteration that updates the positions"},
    {.name = "autodiff.positions_stop", .kind = KEY_INT, FIELD(autodiff.positions.stop),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iteration",
     .doc = "first iteration that no longer updates the positions; 0 = never stops"},

    {.name = "output.directory", .kind = KEY_PATH, FIELD(output.directory),
     .default_text = "ptyc_out", .unit = "path",
     .doc = "where results go; relative to this file's directory"},
    {.name = "output.every", .kind = KEY_INT, FIELD(output.every), .lo_bound = BOUND_INCL,
     .lo = 0, .default_number = 0, .unit = "iterations",
     .doc = "write a snapshot every N iterations; 0 = only at the end"},
    {.name = "output.png", .kind = KEY_BOOL, FIELD(output.png), .default_number = 1,
     .unit = "", .doc = "write PNG previews of object and probe"},
    {.name = "output.ptychodus", .kind = KEY_BOOL, FIELD(output.ptychodus),
     .default_number = 0, .unit = "",
     .doc = "also write ptychodus_product.h5, a ptychodus product file"},
    {.name = "output.checkpoint_every", .kind = KEY_INT, FIELD(output.checkpoint_every),
     .lo_bound = BOUND_INCL, .lo = 0, .default_number = 0, .unit = "iterations",
     .doc = "write checkpoint.h5 every N iterations (ptyc run --resume); 0 = off"},
};

#undef FIELD

enum { N_KEYS = (int)(sizeof keys / sizeof keys[0]) };

/* Where a key's current value came from; relative paths are resolved accordingly. */
typedef enum key_origin {
  FROM_DEFAULT = 0, /* the table: resolved against the job file's directory */
  FROM_FILE,        /* the job file: same */
  FROM_SET          /* a --set override: resolved against the current directory */
} key_origin;

/* Length of the group part of "group.key". */
static size_t group_len(const char *full_name) { return strcspn(full_name, "."); }

/* The key part of "group.key" (the whole name if there is no dot). */
static const char *key_leaf(const char *full_name) {
  const char *dot = strchr(full_name, '.');
  return dot ? dot + 1 : full_name;
}

static const key_spec *find_key(const char *full_name) {
  for (int i = 0; i < N_KEYS; i++)
    if (strcmp(keys[i].name, full_name) == 0)
      return &keys[i];
  return NULL;
}

static int is_group_name(const char *name) {
  for (int i = 0; i < N_KEYS; i++)
    if (group_len(keys[i].name) == strlen(name) &&
        strncmp(keys[i].name, name, strlen(name)) == 0)
      return 1;
  return 0;
}

/* Index of `word` in a NULL-terminated list, or -1. */
static int word_index(const char *const *words, const char *word) {
  for (int i = 0; words[i]; i++)
    if (strcmp(words[i], word) == 0)
      return i;
  return -1;
}

/* ---- suggestions for misspelt names ------------------------------------------------ */

enum { MAX_SUGGEST_LEN = 63 };

/* Edit distance (insertions, deletions, substitutions and swaps of neighbours) between
 * a[0..na) and b[0..nb); INT_MAX for names too long to be worth comparing. */
static int edit_distance(const char *a, size_t na, const char *b, size_t nb) {
  if (na > MAX_SUGGEST_LEN || nb > MAX_SUGGEST_LEN)
    return INT_MAX;
  /* three rows of the dynamic programme: i-2, i-1 and i */
  int rows[3][MAX_SUGGEST_LEN + 1];
  for (size_t j = 0; j <= nb; j++)
    rows[0][j] = (int)j;
  for (size_t i = 1; i <= na; i++) {
    int *prev2 = rows[(i + 1) % 3], *prev = rows[(i + 2) % 3], *cur = rows[i % 3];
    cur[0] = (int)i;
    for (size_t j = 1; j <= nb; j++) {
      int cost = a[i - 1] != b[j - 1];
      int best = prev[j - 1] + cost;
      if (prev[j] + 1 < best)
        best = prev[j] + 1;
      if (cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          prev2[j - 2] + 1 < best)
        best = prev2[j - 2] + 1;
      cur[j] = best;
    }
  }
  return rows[na % 3][nb];
}

/* Is a distance `d` from a name of length `len` close enough to suggest? */
static int close_enough(int d, size_t len) {
  int limit = (int)(len + 2) / 3;
  return d <= (limit > 2 ? limit : 2);
}

/* The valid key nearest to `name` ("group.key", or a bare key), or NULL if none is
 * close. The right key in the wrong group (or without a group) costs one edit more
 * than the key itself. */
static const char *suggest_key(const char *name) {
  const char *leaf = key_leaf(name);
  const char *best = NULL;
  int best_d = INT_MAX;
  for (int i = 0; i < N_KEYS; i++) {
    int d = edit_distance(name, strlen(name), keys[i].name, strlen(keys[i].name));
    const char *kleaf = key_leaf(keys[i].name);
    int d_leaf = edit_distance(leaf, strlen(leaf), kleaf, strlen(kleaf));
    /* a shortened key ("noise" for "noise_model") counts as one edit */
    if (strlen(leaf) >= 3 && strncmp(leaf, kleaf, strlen(leaf)) == 0 && d_leaf > 1)
      d_leaf = 1;
    if (d_leaf < INT_MAX && d_leaf + 1 < d)
      d = d_leaf + 1;
    if (d < best_d) {
      best_d = d;
      best = keys[i].name;
    }
  }
  return close_enough(best_d, strlen(leaf)) ? best : NULL;
}

/* The valid group nearest to `name`: writes its length to *len and returns a pointer
 * to it (inside a key name), or NULL if none is close. */
static const char *suggest_group(const char *name, int *len) {
  const char *best = NULL;
  int best_d = INT_MAX;
  for (int i = 0; i < N_KEYS; i++) {
    size_t glen = group_len(keys[i].name);
    int d = edit_distance(name, strlen(name), keys[i].name, glen);
    if (d < best_d) {
      best_d = d;
      best = keys[i].name;
      *len = (int)glen;
    }
  }
  return close_enough(best_d, strlen(name)) ? best : NULL;
}

static ptyc_status fail_unknown_key(const char *where, const char *name) {
  const char *hint = suggest_key(name);
  if (hint)
    return ptyc_fail(PTYC_E_CONFIG, "%s: unknown key '%s'; did you mean '%s'?", where, name,
                     hint);
  return ptyc_fail(PTYC_E_CONFIG,
                   "%s: unknown key '%s' (configs/default.cfg lists every key)", where, name);
}

/* ---- values and their checks ---------------------------------------------------------- */

/* What the job file (or a --set string) wrote for a key. */
typedef enum value_kind {
  VAL_BOOL,
  VAL_INT,
  VAL_BIG_INT, /* digits only, but beyond 64 bits */
  VAL_FLOAT,
  VAL_STRING,
  VAL_GROUP,
  VAL_LIST,
  VAL_ARRAY
} value_kind;

typedef struct value {
  value_kind kind;
  long long i;   /* VAL_INT, and VAL_BOOL as 0 / 1 */
  double f;      /* VAL_FLOAT */
  const char *s; /* VAL_STRING; borrowed, not owned */
} value;

/* "a string", "an integer", ...: how a message names what was written. */
static const char *value_kind_text(value_kind kind) {
  switch (kind) {
  case VAL_BOOL: return "a boolean";
  case VAL_INT: return "an integer";
  case VAL_BIG_INT: return "an integer beyond 64 bits";
  case VAL_FLOAT: return "a float";
  case VAL_STRING: return "a string";
  case VAL_GROUP: return "a group";
  case VAL_LIST: return "a list";
  case VAL_ARRAY: return "an array";
  }
  return "a value";
}

/* Formats `x` with the fewest digits that read back to exactly `x`. With
 * `as_libconfig_float`, makes sure libconfig reads it as a float, not an integer. */
static void format_double(double x, int as_libconfig_float, char *buf, size_t cap) {
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(buf, cap, "%.*g", digits, x);
    if (strtod(buf, NULL) == x)
      break;
  }
  if (as_libconfig_float && !strpbrk(buf, ".eEni")) {
    size_t n = strlen(buf);
    if (n + 2 < cap)
      memcpy(buf + n, ".0", 3);
  }
}

static int within_bounds(const key_spec *k, double x) {
  if (k->lo_bound == BOUND_INCL && !(x >= k->lo))
    return 0;
  if (k->lo_bound == BOUND_EXCL && !(x > k->lo))
    return 0;
  if (k->hi_bound == BOUND_INCL && !(x <= k->hi))
    return 0;
  if (k->hi_bound == BOUND_EXCL && !(x < k->hi))
    return 0;
  return 1;
}

/* " >= 1", " from 1 to 16", " > 0 and <= 1", or "" without bounds. */
static void bounds_text(const key_spec *k, char *buf, size_t cap) {
  if (k->lo_bound == BOUND_INCL && k->hi_bound == BOUND_INCL) {
    snprintf(buf, cap, " from %g to %g", k->lo, k->hi);
    return;
  }
  char lo[64] = "", hi[64] = "";
  if (k->lo_bound != BOUND_NONE)
    snprintf(lo, sizeof lo, " %s %g", k->lo_bound == BOUND_INCL ? ">=" : ">", k->lo);
  if (k->hi_bound != BOUND_NONE)
    snprintf(hi, sizeof hi, "%s %s %g", lo[0] ? " and" : "",
             k->hi_bound == BOUND_INCL ? "<=" : "<", k->hi);
  snprintf(buf, cap, "%s%s", lo, hi);
}

/* What a key accepts, as a message says it: "an integer >= 1", "one of ...". */
static void expected_text(const key_spec *k, char *buf, size_t cap) {
  char bounds[160];
  bounds_text(k, bounds, sizeof bounds);
  switch (k->kind) {
  case KEY_BOOL:
    snprintf(buf, cap, "true or false");
    break;
  case KEY_INT:
  case KEY_UINT64:
    snprintf(buf, cap, "an integer%s", bounds);
    break;
  case KEY_INT_AUTO:
    snprintf(buf, cap, "an integer%s or \"auto\"", bounds);
    break;
  case KEY_FLOAT:
    snprintf(buf, cap, "a number%s", bounds);
    break;
  case KEY_ENUM:
  case KEY_NAME: {
    size_t n = (size_t)snprintf(buf, cap, "one of");
    for (int i = 0; k->words[i] && n < cap; i++)
      n += (size_t)snprintf(buf + n, cap - n, "%s \"%s\"", i ? "," : "", k->words[i]);
    break;
  }
  case KEY_PATH:
    snprintf(buf, cap, k->optional ? "a string (a path, or \"\" for none)"
                                   : "a non-empty string (a path)");
    break;
  }
}

/* Stores an int-valued number after the range checks (KEY_INT, KEY_INT_AUTO). */
static ptyc_status set_int(const key_spec *k, long long x, const char *where, int *field) {
  char expected[256];
  expected_text(k, expected, sizeof expected);
  if (!within_bounds(k, (double)x))
    return ptyc_fail(PTYC_E_CONFIG, "%s: %s: expected %s, got %lld", where, k->name,
                     expected, x);
  if (x > INT_MAX)
    return ptyc_fail(PTYC_E_CONFIG, "%s: %s: expected at most %d, got %lld", where,
                     k->name, INT_MAX, x);
  *field = (int)x;
  return PTYC_OK;
}

/* Checks `v` against key `k` and stores it in `opts`; on failure says, after `where`
 * ("job.cfg:5" or "--set ..."), what the key expects and what it got. */
static ptyc_status apply_value(const key_spec *k, const value *v, const char *where,
                               ptyc_options *opts) {
  char *field = (char *)opts + k->offset;
  char got[160];
  /* Unless a case below says more, the value has the wrong type. */
  snprintf(got, sizeof got, "%s", value_kind_text(v->kind));

  switch (k->kind) {
  case KEY_BOOL:
    if (v->kind != VAL_BOOL)
      break;
    *(int *)field = v->i != 0;
    return PTYC_OK;
  case KEY_INT_AUTO:
    if (v->kind == VAL_STRING && strcmp(v->s, "auto") == 0) {
      *(int *)field = 0;
      return PTYC_OK;
    }
    if (v->kind == VAL_STRING)
      snprintf(got, sizeof got, "\"%.100s\"", v->s);
    if (v->kind != VAL_INT)
      break;
    return set_int(k, v->i, where, (int *)field);
  case KEY_INT:
    if (v->kind != VAL_INT)
      break;
    return set_int(k, v->i, where, (int *)field);
  case KEY_UINT64:
    if (v->kind != VAL_INT)
      break;
    if (!within_bounds(k, (double)v->i)) {
      snprintf(got, sizeof got, "%lld", v->i);
      break;
    }
    *(uint64_t *)field = (uint64_t)v->i;
    return PTYC_OK;
  case KEY_FLOAT: {
    if (v->kind != VAL_INT && v->kind != VAL_FLOAT)
      break;
    double x = v->kind == VAL_INT ? (double)v->i : v->f;
    if (!isfinite(x) || !within_bounds(k, x)) {
      format_double(x, 0, got, sizeof got);
      break;
    }
    *(double *)field = x;
    return PTYC_OK;
  }
  case KEY_ENUM:
  case KEY_NAME: {
    if (v->kind != VAL_STRING)
      break;
    int index = word_index(k->words, v->s);
    if (index < 0) {
      snprintf(got, sizeof got, "\"%.100s\"", v->s);
      break;
    }
    if (k->kind == KEY_ENUM)
      *(int *)field = index;
    else
      snprintf(field, k->size, "%s", k->words[index]);
    return PTYC_OK;
  }
  case KEY_PATH:
    if (v->kind != VAL_STRING)
      break;
    if (v->s[0] == '\0' && !k->optional) {
      snprintf(got, sizeof got, "\"\"");
      break;
    }
    if (strlen(v->s) >= k->size)
      return ptyc_fail(PTYC_E_CONFIG, "%s: %s: path too long (%zu bytes, at most %zu)",
                       where, k->name, strlen(v->s), k->size - 1);
    memcpy(field, v->s, strlen(v->s) + 1);
    return PTYC_OK;
  }

  char expected[256];
  expected_text(k, expected, sizeof expected);
  return ptyc_fail(PTYC_E_CONFIG, "%s: %s: expected %s, got %s", where, k->name, expected,
                   got);
}

static void set_default(const key_spec *k, ptyc_options *opts) {
  char *field = (char *)opts + k->offset;
  switch (k->kind) {
  case KEY_BOOL:
  case KEY_INT:
  case KEY_INT_AUTO:
    *(int *)field = (int)k->default_number;
    break;
  case KEY_UINT64:
    *(uint64_t *)field = (uint64_t)k->default_number;
    break;
  case KEY_FLOAT:
    *(double *)field = k->default_number;
    break;
  case KEY_ENUM:
    *(int *)field = word_index(k->words, k->default_text);
    break;
  case KEY_NAME:
  case KEY_PATH:
    snprintf(field, k->size, "%s", k->default_text);
    break;
  }
}

void ptyc_options_default(ptyc_options *opts) {
  if (!opts)
    return;
  memset(opts, 0, sizeof *opts);
  for (int i = 0; i < N_KEYS; i++)
    set_default(&keys[i], opts);
}

/* ---- the job file ------------------------------------------------------------------- */

static value value_of_setting(const config_setting_t *s) {
  value v = {.kind = VAL_STRING, .s = ""};
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    v.kind = VAL_INT;
    v.i = config_setting_get_int64(s);
    break;
  case CONFIG_TYPE_FLOAT:
    v.kind = VAL_FLOAT;
    v.f = config_setting_get_float(s);
    break;
  case CONFIG_TYPE_BOOL:
    v.kind = VAL_BOOL;
    v.i = config_setting_get_bool(s);
    break;
  case CONFIG_TYPE_STRING:
    v.s = config_setting_get_string(s);
    break;
  case CONFIG_TYPE_GROUP:
    v.kind = VAL_GROUP;
    break;
  case CONFIG_TYPE_LIST:
    v.kind = VAL_LIST;
    break;
  case CONFIG_TYPE_ARRAY:
    v.kind = VAL_ARRAY;
    break;
  }
  return v;
}

/* "file:line" of a setting; `file` is the job file unless it came from an @include. */
static void setting_where(const config_setting_t *s, const char *job_path, char *buf,
                          size_t cap) {
  const char *file = config_setting_source_file(s);
  snprintf(buf, cap, "%s:%u", file ? file : job_path,
           (unsigned)config_setting_source_line(s));
}

/* A top-level setting that is not a group. */
static ptyc_status fail_top_level(const config_setting_t *s, const char *where) {
  const char *name = config_setting_name(s);
  if (is_group_name(name))
    return ptyc_fail(PTYC_E_CONFIG, "%s: '%s' must be a group: %s = { ... };", where, name,
                     name);
  const char *hint = suggest_key(name);
  if (hint)
    return ptyc_fail(PTYC_E_CONFIG, "%s: '%s' must be inside a group; did you mean '%s'?",
                     where, name, hint);
  return ptyc_fail(PTYC_E_CONFIG,
                   "%s: '%s' must be inside a group, e.g. reconstructor = { iterations = 50; };",
                   where, name);
}

/* Applies every setting of the parsed job file, in file order. */
static ptyc_status apply_file_settings(const config_t *cfg, const char *job_path,
                                       ptyc_options *opts, key_origin *origin) {
  const config_setting_t *root = config_root_setting(cfg);
  char where[PTYC_PATH_MAX + 32];
  for (int i = 0; i < config_setting_length(root); i++) {
    const config_setting_t *group = config_setting_get_elem(root, (unsigned)i);
    const char *group_name = config_setting_name(group);
    setting_where(group, job_path, where, sizeof where);
    if (!config_setting_is_group(group))
      return fail_top_level(group, where);
    if (!is_group_name(group_name)) {
      int len = 0;
      const char *hint = suggest_group(group_name, &len);
      if (hint)
        return ptyc_fail(PTYC_E_CONFIG, "%s: unknown group '%s'; did you mean '%.*s'?",
                         where, group_name, len, hint);
      return ptyc_fail(PTYC_E_CONFIG,
                       "%s: unknown group '%s' (configs/default.cfg lists every group)",
                       where, group_name);
    }
    for (int j = 0; j < config_setting_length(group); j++) {
      const config_setting_t *s = config_setting_get_elem(group, (unsigned)j);
      char full_name[256];
      snprintf(full_name, sizeof full_name, "%s.%s", group_name, config_setting_name(s));
      setting_where(s, job_path, where, sizeof where);
      const key_spec *k = find_key(full_name);
      if (!k)
        return fail_unknown_key(where, full_name);
      value v = value_of_setting(s);
      PT_TRY(apply_value(k, &v, where, opts));
      origin[k - keys] = FROM_FILE;
    }
  }
  return PTYC_OK;
}

/* The directory part of `path` ("" for a bare file name), in `dir`. */
static void directory_of(const char *path, char *dir, size_t cap) {
  snprintf(dir, cap, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    dir[0] = '\0';
  else if (slash == dir)
    dir[1] = '\0'; /* a file in "/" */
  else
    *slash = '\0';
}

static ptyc_status read_job_file(const char *job_path, ptyc_options *opts,
                                 key_origin *origin) {
  FILE *file = fopen(job_path, "r");
  if (!file)
    return ptyc_fail(PTYC_E_CONFIG, "%s: cannot read: %s", job_path, strerror(errno));
  struct stat info;
  if (fstat(fileno(file), &info) == 0 && S_ISDIR(info.st_mode)) {
    fclose(file);
    return ptyc_fail(PTYC_E_CONFIG, "%s: cannot read: %s", job_path, strerror(EISDIR));
  }

  ptyc_status st = PTYC_OK;
  config_t cfg;
  config_init(&cfg);
  /* @include "x.cfg" in a job file is relative to that job file */
  char include_dir[PTYC_PATH_MAX];
  directory_of(job_path, include_dir, sizeof include_dir);
  if (include_dir[0])
    config_set_include_dir(&cfg, include_dir);

  if (config_read(&cfg, file) != CONFIG_TRUE) {
    const char *error_file = config_error_file(&cfg);
    st = ptyc_fail(PTYC_E_CONFIG, "%s:%d: %s", error_file ? error_file : job_path,
                   config_error_line(&cfg), config_error_text(&cfg));
  } else {
    st = apply_file_settings(&cfg, job_path, opts, origin);
  }
  config_destroy(&cfg);
  fclose(file);
  return st;
}

/* ---- --set overrides ------------------------------------------------------------------ */

/* `text` without leading and trailing white space (modifies `text`). */
static char *trim(char *text) {
  while (isspace((unsigned char)*text))
    text++;
  size_t n = strlen(text);
  while (n > 0 && isspace((unsigned char)text[n - 1]))
    text[--n] = '\0';
  return text;
}

/* Reads a --set value as libconfig would: true/false, an integer, a float, or else a
 * string. Quotes ('...' or "...") make a string and are removed (modifies `text`). */
static value parse_override_value(char *text) {
  value v = {.kind = VAL_STRING, .s = text};
  size_t n = strlen(text);
  if (n >= 2 && (text[0] == '"' || text[0] == '\'') && text[n - 1] == text[0]) {
    text[n - 1] = '\0';
    v.s = text + 1;
    return v;
  }
  if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
    v.kind = VAL_BOOL;
    v.i = text[0] == 't';
    return v;
  }
  int numeric = n > 0 && (isdigit((unsigned char)text[0]) || strchr("+-.", text[0]));
  if (!numeric)
    return v;
  char *end = NULL;
  errno = 0;
  long long i = strtoll(text, &end, 10);
  if (end != text && *end == '\0') {
    v.kind = errno == ERANGE ? VAL_BIG_INT : VAL_INT;
    v.i = i;
    return v;
  }
  double f = strtod(text, &end);
  if (end != text && *end == '\0' && isfinite(f)) {
    v.kind = VAL_FLOAT;
    v.f = f;
  }
  return v;
}

/* Applies one "group.key=value" override. */
static ptyc_status apply_override(const char *text, ptyc_options *opts, key_origin *origin) {
  char where[PTYC_PATH_MAX + 64];
  snprintf(where, sizeof where, "--set %s", text);
  char copy[PTYC_PATH_MAX + 256];
  if (strlen(text) >= sizeof copy)
    return ptyc_fail(PTYC_E_CONFIG, "%.80s...: too long (at most %zu bytes)", where,
                     sizeof copy - 1);
  memcpy(copy, text, strlen(text) + 1);

  char *eq = strchr(copy, '=');
  if (!eq)
    return ptyc_fail(PTYC_E_CONFIG,
                     "%s: expected group.key=value, e.g. reconstructor.iterations=100", where);
  *eq = '\0';
  const char *name = trim(copy);
  const key_spec *k = find_key(name);
  if (!k)
    return fail_unknown_key(where, name);
  value v = parse_override_value(trim(eq + 1));
  PT_TRY(apply_value(k, &v, where, opts));
  origin[k - keys] = FROM_SET;
  return PTYC_OK;
}

/* ---- paths ---------------------------------------------------------------------------- */

/* Writes `base`/`rel`, or `rel` alone when it is absolute, to `out`, dropping empty and
 * "." components. ".." stays: removing it by text would be wrong across symbolic links.
 * Returns 0, or -1 if it does not fit. */
static int join_path(const char *base, const char *rel, char *out, size_t cap) {
  const char *parts[2] = {rel[0] == '/' ? "" : base, rel};
  size_t n = 0;
  if (cap < 2)
    return -1;
  if (parts[0][0] == '/' || rel[0] == '/')
    out[n++] = '/';
  for (int p = 0; p < 2; p++) {
    const char *s = parts[p];
    for (;;) {
      while (*s == '/')
        s++;
      size_t len = strcspn(s, "/");
      if (len == 0)
        break;
      if (!(len == 1 && s[0] == '.')) {
        int slash = n > 0 && out[n - 1] != '/';
        if (n + (size_t)slash + len + 1 > cap)
          return -1;
        if (slash)
          out[n++] = '/';
        memcpy(out + n, s, len);
        n += len;
      }
      s += len;
    }
  }
  if (n == 0)
    out[n++] = '.';
  out[n] = '\0';
  return 0;
}

/* Checks what no single key can check and makes relative paths absolute: those from
 * the job file (or its defaults) against the job file's directory, those from --set
 * against the current directory. */
static ptyc_status finish_options(const char *job_path, ptyc_options *opts,
                                  const key_origin *origin) {
  if (opts->data.path[0] == '\0') {
    if (job_path)
      return ptyc_fail(PTYC_E_CONFIG, "%s: data.path is required (the dataset file)",
                       job_path);
    return ptyc_fail(PTYC_E_CONFIG,
                     "data.path is required (the dataset file): --set data.path=FILE");
  }

  char cwd[PTYC_PATH_MAX], job_dir[PTYC_PATH_MAX], dir_part[PTYC_PATH_MAX];
  if (!getcwd(cwd, sizeof cwd))
    return ptyc_fail(PTYC_E_IO, "cannot read the current directory: %s", strerror(errno));
  directory_of(job_path ? job_path : "", dir_part, sizeof dir_part);
  if (join_path(cwd, dir_part, job_dir, sizeof job_dir) != 0)
    return ptyc_fail(PTYC_E_CONFIG, "%s: the directory of the job file is too long",
                     job_path);

  for (int i = 0; i < N_KEYS; i++) {
    if (keys[i].kind != KEY_PATH)
      continue;
    char *path = (char *)opts + keys[i].offset;
    if (path[0] == '\0')
      continue; /* an optional path left empty: none */
    const char *base = (origin[i] == FROM_SET || !job_path) ? cwd : job_dir;
    char resolved[PTYC_PATH_MAX];
    if (join_path(base, path, resolved, sizeof resolved) != 0 ||
        strlen(resolved) >= keys[i].size)
      return ptyc_fail(PTYC_E_CONFIG, "%s: %s: the resolved path is too long (\"%s/%.80s...\")",
                       job_path ? job_path : "--set", keys[i].name, base, path);
    memcpy(path, resolved, strlen(resolved) + 1);
  }
  return PTYC_OK;
}

ptyc_status ptyc_options_load(const char *job_path, const char *const *overrides,
                              int n_overrides, ptyc_options *opts) {
  if (!opts || n_overrides < 0 || (n_overrides > 0 && !overrides))
    return ptyc_fail(PTYC_E_ARG, "ptyc_options_load: no options or bad overrides");

  /* Work on a copy so that `opts` changes only on success. */
  ptyc_options loaded;
  key_origin origin[N_KEYS] = {FROM_DEFAULT};
  ptyc_options_default(&loaded);
  if (job_path)
    PT_TRY(read_job_file(job_path, &loaded, origin));
  for (int i = 0; i < n_overrides; i++) {
    if (!overrides[i])
      return ptyc_fail(PTYC_E_ARG, "ptyc_options_load: override %d is NULL", i);
    PT_TRY(apply_override(overrides[i], &loaded, origin));
  }
  PT_TRY(finish_options(job_path, &loaded, origin));
  *opts = loaded;
  return PTYC_OK;
}

/* ---- printing -------------------------------------------------------------------------- */

/* A growing, NUL-terminated string; `failed` records an allocation failure. */
typedef struct text_buf {
  char *data;
  size_t len, cap;
  int failed;
} text_buf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void text_printf(text_buf *tb, const char *fmt, ...) {
  if (tb->failed)
    return;
  va_list args;
  va_start(args, fmt);
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(NULL, 0, fmt, args);
  va_end(args);
  if (n >= 0 && tb->len + (size_t)n + 1 > tb->cap) {
    size_t cap = 2 * tb->cap + (size_t)n + 1;
    char *data = realloc(tb->data, cap);
    if (!data)
      n = -1;
    else {
      tb->data = data;
      tb->cap = cap;
    }
  }
  if (n < 0)
    tb->failed = 1;
  else {
    vsnprintf(tb->data + tb->len, tb->cap - tb->len, fmt, again);
    tb->len += (size_t)n;
  }
  va_end(again);
}

/* `s` as a libconfig string literal, with quotes and escapes. */
static void text_quoted(text_buf *tb, const char *s) {
  text_printf(tb, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\')
      text_printf(tb, "\\%c", *c);
    else if (*c < 0x20 || *c == 0x7f)
      text_printf(tb, "\\x%02x", *c);
    else
      text_printf(tb, "%c", *c);
  }
  text_printf(tb, "\"");
}

/* Writes the value of key `k` as libconfig text. */
static ptyc_status text_value(text_buf *tb, const key_spec *k, const ptyc_options *opts) {
  const char *field = (const char *)opts + k->offset;
  switch (k->kind) {
  case KEY_BOOL:
    text_printf(tb, "%s", *(const int *)field ? "true" : "false");
    break;
  case KEY_INT:
    text_printf(tb, "%d", *(const int *)field);
    break;
  case KEY_INT_AUTO:
    if (*(const int *)field == 0)
      text_printf(tb, "\"auto\"");
    else
      text_printf(tb, "%d", *(const int *)field);
    break;
  case KEY_UINT64: {
    unsigned long long x = *(const uint64_t *)field;
    if (x > (unsigned long long)INT64_MAX)
      return ptyc_fail(PTYC_E_ARG, "%s = %llu is beyond what a job file can hold (%lld)",
                       k->name, x, (long long)INT64_MAX);
    /* libconfig reads plain integer literals as 32 bits: larger ones need "L" */
    text_printf(tb, "%llu%s", x, x > INT32_MAX ? "L" : "");
    break;
  }
  case KEY_FLOAT: {
    char number[64];
    if (!isfinite(*(const double *)field))
      return ptyc_fail(PTYC_E_ARG, "%s is not a finite number", k->name);
    format_double(*(const double *)field, 1, number, sizeof number);
    text_printf(tb, "%s", number);
    break;
  }
  case KEY_ENUM: {
    int index = *(const int *)field, n_words = 0;
    while (k->words[n_words])
      n_words++;
    if (index < 0 || index >= n_words)
      return ptyc_fail(PTYC_E_ARG, "%s holds %d, which names no valid value", k->name,
                       index);
    text_quoted(tb, k->words[index]);
    break;
  }
  case KEY_NAME:
  case KEY_PATH:
    text_quoted(tb, field);
    break;
  }
  return PTYC_OK;
}

ptyc_status ptyc_options_to_text(const ptyc_options *opts, char **text) {
  if (!opts || !text)
    return ptyc_fail(PTYC_E_ARG, "ptyc_options_to_text: NULL argument");
  *text = NULL;
  text_buf tb = {0};
  ptyc_status st = PTYC_OK;
  text_printf(&tb, "# ptyc job, resolved (configs/default.cfg documents every key)\n");
  for (int i = 0; i < N_KEYS; i++) {
    const char *name = keys[i].name;
    size_t glen = group_len(name);
    int new_group = i == 0 || glen != group_len(keys[i - 1].name) ||
                    strncmp(name, keys[i - 1].name, glen) != 0;
    if (new_group)
      text_printf(&tb, "%s%.*s = {\n", i ? "};\n\n" : "\n", (int)glen, name);
    text_printf(&tb, "  %s = ", key_leaf(name));
    PT_CHECK(text_value(&tb, &keys[i], opts));
    text_printf(&tb, ";\n");
  }
  text_printf(&tb, "};\n");
  if (tb.failed)
    PT_FAIL(PTYC_E_NOMEM, "ptyc_options_to_text: out of memory");
  *text = tb.data;
  return PTYC_OK;

fail:
  free(tb.data);
  return st;
}
