/* libFuzzer target: everything in ptyc that reads an HDF5 file it was given. The input
 * is the file's bytes; it is read as
 *   - a dataset in every format (auto, native, cxi, ptychodus, ptychoshelves), the
 *     two-file formats with the same file as their second file, under options taken
 *     from the input's last byte (reorientations, crop, bin, threshold, saturation);
 *   - `ptyc info` (ptyc_dataset_describe), a simulator's /truth, a recon.h5 and a
 *     checkpoint.
 * Whatever the bytes: no crash, an error with a one-line message, no HDF5 identifier
 * left open (the readers' cleanup paths), and a dataset that is accepted holds what the
 * readers promise (include/ptyc/dataset.h): N >= 1 patterns of M x M >= 1, finite
 * non-negative intensities, finite positions, a probe of M x M if any.
 *
 * libhdf5 itself is not instrumented: a crash inside it on a malicious file is an HDF5
 * bug that ptyc may not be able to avoid (see tests/fuzz/README.md). */
#include "fuzz_common.h"

#include <math.h>

#include <hdf5.h> /* only to count the HDF5 identifiers left open */

#include "ptyc/checkpoint.h"
#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/recon_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail_check(const char *what, const char *format) {
  fprintf(stderr, "accepted dataset (format %s) breaks a promise: %s\n", format, what);
  abort();
}

/* The promises of ptyc_dataset_read about an accepted dataset. */
static void check_dataset(const ptyc_dataset *ds, const char *format) {
  if (ds == NULL) fail_check("NULL dataset", format);
  if (ds->n_patterns < 1 || ds->m < 1 || ds->patterns == NULL || ds->positions_px == NULL)
    fail_check("no patterns or positions", format);
  size_t count = (size_t)ds->n_patterns * ds->m * ds->m;
  for (size_t i = 0; i < count; i++)
    if (!isfinite(ds->patterns[i]) || ds->patterns[i] < 0.0f)
      fail_check("a non-finite or negative intensity", format);
  for (size_t i = 0; i < 2 * (size_t)ds->n_patterns; i++)
    if (!isfinite(ds->positions_px[i])) fail_check("a non-finite position", format);
  if ((ds->probe == NULL) != (ds->probe_modes == 0)) fail_check("probe and probe_modes disagree", format);
  for (size_t i = 0; ds->probe && i < (size_t)ds->probe_modes * ds->m * ds->m; i++)
    if (!isfinite(ds->probe[i].re) || !isfinite(ds->probe[i].im))
      fail_check("a non-finite probe value", format);
}

/* Every HDF5 identifier a reader made (file, group, dataset, attribute, datatype,
 * dataspace) must be closed when it returns: the counts come back to what the library
 * holds by itself (its predefined types), measured before the first input. Leaked
 * identifiers stay reachable from HDF5's tables, so LeakSanitizer would not see them. */
static const H5I_type_t id_types[] = {H5I_FILE, H5I_GROUP,     H5I_DATASET,
                                      H5I_ATTR, H5I_DATATYPE,  H5I_DATASPACE};
#define N_ID_TYPES (sizeof id_types / sizeof id_types[0])
static hsize_t id_baseline[N_ID_TYPES];

static void count_ids(hsize_t counts[N_ID_TYPES]) {
  for (size_t t = 0; t < N_ID_TYPES; t++) {
    counts[t] = 0;
    H5Inmembers(id_types[t], &counts[t]);
  }
}

static void check_nothing_open(const char *after) {
  static const char *names[N_ID_TYPES] = {"file", "group", "dataset", "attribute",
                                          "datatype", "dataspace"};
  hsize_t now[N_ID_TYPES];
  count_ids(now);
  for (size_t t = 0; t < N_ID_TYPES; t++)
    if (now[t] != id_baseline[t]) {
      fprintf(stderr, "%s left %lld HDF5 %s identifier(s) open\n", after,
              (long long)now[t] - (long long)id_baseline[t], names[t]);
      abort();
    }
}

/* Reader options from one byte, so that every option path sees fuzzed files. */
static void options_from_byte(uint8_t b, ptyc_data_options *o) {
  o->transpose_patterns = b & 1;
  o->flip_patterns_x = (b >> 1) & 1;
  o->flip_positions_y = (b >> 2) & 1;
  o->transpose_positions = (b >> 3) & 1;
  o->bin = (b >> 4) & 1 ? 2 : 1;
  o->crop = (b >> 5) & 1 ? 4 : 0;
  o->threshold = (b >> 6) & 1 ? 0.5 : 0.0;
  o->saturation = (b >> 7) & 1 ? 1e6 : 0.0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[512];
  static FILE *devnull;
  if (path[0] == '\0') {
    fuzz_scratch_path("data.h5", path, sizeof path);
    devnull = fopen("/dev/null", "w");
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    count_ids(id_baseline);
  }
  fuzz_write_file(path, data, size);

  /* As a dataset, in every format. */
  static const struct {
    const char *format;
    int second_file; /* use the same file as data.positions_path */
    int options;     /* apply the options of the last byte */
  } reads[] = {{"auto", 0, 0},      {"auto", 1, 1},      {"native", 0, 1},
               {"cxi", 0, 1},       {"ptychodus", 1, 0}, {"ptychoshelves", 1, 0}};
  for (size_t r = 0; r < sizeof reads / sizeof reads[0]; r++) {
    ptyc_options defaults;
    ptyc_options_default(&defaults);
    ptyc_data_options o = defaults.data;
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.format, sizeof o.format, "%s", reads[r].format);
    if (reads[r].second_file) snprintf(o.positions_path, sizeof o.positions_path, "%s", path);
    if (reads[r].options && size > 0) options_from_byte(data[size - 1], &o);
    ptyc_dataset *ds = NULL;
    ptyc_status st = ptyc_dataset_read_opts(&o, &ds);
    fuzz_check_status(st, "ptyc_dataset_read_opts");
    if (st == PTYC_OK) check_dataset(ds, reads[r].format);
    ptyc_dataset_free(ds);
    check_nothing_open("ptyc_dataset_read_opts");
  }

  /* As `ptyc info` shows it. */
  fuzz_check_status(ptyc_dataset_describe(path, 2, 0, devnull), "ptyc_dataset_describe");
  check_nothing_open("ptyc_dataset_describe");

  /* As a simulator's truth, a reconstruction and a checkpoint. */
  ptyc_truth *truth = NULL;
  fuzz_check_status(ptyc_truth_read(path, &truth), "ptyc_truth_read");
  ptyc_truth_free(truth);
  check_nothing_open("ptyc_truth_read");

  ptyc_recon *recon = NULL;
  fuzz_check_status(ptyc_recon_read(path, &recon), "ptyc_recon_read");
  ptyc_recon_free(recon);
  check_nothing_open("ptyc_recon_read");

  ptyc_checkpoint_info info;
  recon = NULL;
  fuzz_check_status(ptyc_checkpoint_read(path, &recon, &info), "ptyc_checkpoint_read");
  ptyc_recon_free(recon);
  ptyc_checkpoint_info_free(&info);
  check_nothing_open("ptyc_checkpoint_read");
  return 0;
}
