/* The CXI, ptychodus and PtychoShelves readers, format detection and the `data`
 * options (src/data/). Files are written here with the HDF5 API, the way other tools
 * write them: a simulated dataset is copied into each format and must read back to the
 * same patterns, the same positions (up to a common offset) and the same geometry.
 * Each option is checked element by element on a small hand-made dataset, and each
 * error case gives its status and a one-line message naming the file. */
#define _POSIX_C_SOURCE 200809L

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/simulate.h"
#include "test_util.h"

/* h c in J m, for CXI's energies in joules. */
#define HC_J_M 1.9864458571489286e-25

/* ---- writing files ----------------------------------------------------------------- */

static hid_t new_file(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    fprintf(stderr, "cannot create %s\n", path);
    exit(1);
  }
  return f;
}

static void put(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                const hsize_t *dims, const void *data) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dset = H5Dcreate2(loc, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t count = 1;
  for (int d = 0; d < rank; d++)
    count *= dims[d];
  if (dset < 0 ||
      (count > 0 && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) {
    fprintf(stderr, "cannot write test dataset %s\n", name);
    exit(1);
  }
  H5Dclose(dset);
  H5Sclose(space);
  H5Pclose(lcpl);
}

static void put_scalar(hid_t loc, const char *name, double v) {
  hsize_t one = 1;
  put(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &one, &v);
}

static void put_attr_d(hid_t loc, const char *name, double v) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(attr);
  H5Sclose(space);
}

static void put_attr_s(hid_t loc, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, t, &v);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(t);
}

/* complex64 as h5py writes it: compound {r, i} of float32 */
static hid_t c64_type(void) {
  hid_t t = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(t, "r", 0, H5T_NATIVE_FLOAT);
  H5Tinsert(t, "i", 4, H5T_NATIVE_FLOAT);
  return t;
}

/* The patterns of `ds` (FFT layout) as a detector records them: zero frequency at the
 * centre (index M/2), written as /`name` float32. */
static void put_centred_patterns(hid_t loc, const char *name, const ptyc_dataset *ds) {
  int n = ds->n_patterns, m = ds->m;
  float *centred = malloc((size_t)n * m * m * sizeof *centred);
  for (int j = 0; j < n; j++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++)
        centred[((size_t)j * m + (y + m / 2) % m) * m + (x + m / 2) % m] =
            ds->patterns[((size_t)j * m + y) * m + x];
  hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m};
  put(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dims, centred);
  free(centred);
}

/* Probe centres in metres: (top-left + M/2) * pixel + offset. */
static void centres_m(const ptyc_dataset *ds, double offset_m, double *y_m, double *x_m) {
  for (int j = 0; j < ds->n_patterns; j++) {
    y_m[j] = (ds->positions_px[2 * j] + ds->m / 2.0) * ds->object_pixel_size_m + offset_m;
    x_m[j] = (ds->positions_px[2 * j + 1] + ds->m / 2.0) * ds->object_pixel_size_m - offset_m;
  }
}

/* A CXI 1.6 copy of `ds`: data under the detector, soft-linked from data_1; the sample's
 * translation is minus the probe centre (x = column 0, y = column 1). `n_translations`
 * may differ from N to make a bad file. */
static void write_cxi(const char *path, const ptyc_dataset *ds, int n_translations) {
  int n = ds->n_patterns;
  hid_t f = new_file(path);
  long long version = 160;
  hsize_t one = 1;
  put(f, "cxi_version", H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &one, &version);
  put_centred_patterns(f, "entry_1/instrument_1/detector_1/data", ds);
  H5Gclose(H5Gcreate2(f, "entry_1/data_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Lcreate_soft("/entry_1/instrument_1/detector_1/data", f, "entry_1/data_1/data",
                 H5P_DEFAULT, H5P_DEFAULT);
  double *y_m = malloc(n * sizeof *y_m), *x_m = malloc(n * sizeof *x_m);
  double *t = calloc((size_t)n * 3, sizeof *t);
  centres_m(ds, 1e-6, y_m, x_m);
  for (int j = 0; j < n; j++) {
    t[3 * j] = -x_m[j];
    t[3 * j + 1] = -y_m[j];
  }
  hsize_t tdims[2] = {(hsize_t)n_translations, 3};
  put(f, "entry_1/sample_1/geometry_1/translation", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, tdims,
      t);
  put_scalar(f, "entry_1/instrument_1/source_1/energy", HC_J_M / ds->wavelength_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/distance", ds->detector_distance_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/x_pixel_size", ds->detector_pixel_size_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/y_pixel_size", ds->detector_pixel_size_m);
  H5Fclose(f);
  free(y_m);
  free(x_m);
  free(t);
}

/* A ptychodus pair: /dp file and product file (positions in metres, probe with its
 * pixel size, energy and distance). With `indexes`, the product lists n_pos positions
 * of the patterns indexes[p]. */
static void write_ptychodus(const char *dp_path, const char *product_path,
                            const ptyc_dataset *ds, const ptyc_c32 *probe, const int *indexes,
                            int n_pos) {
  hid_t f = new_file(dp_path);
  put_centred_patterns(f, "dp", ds);
  H5Fclose(f);

  int n = ds->n_patterns, m = ds->m;
  double *y_m = malloc(n * sizeof *y_m), *x_m = malloc(n * sizeof *x_m);
  double *py = malloc(n * sizeof *py), *px = malloc(n * sizeof *px);
  long long *idx = malloc(n * sizeof *idx);
  centres_m(ds, -3e-6, y_m, x_m);
  for (int p = 0; p < n_pos; p++) {
    int j = indexes ? indexes[p] : p;
    py[p] = y_m[j];
    px[p] = x_m[j];
    idx[p] = j;
  }
  f = new_file(product_path);
  put_attr_s(f, "name", "test product");
  put_attr_d(f, "probe_energy_eV", 1.2398419843320026e-6 / ds->wavelength_m);
  put_attr_d(f, "detector_object_distance_m", ds->detector_distance_m);
  hsize_t pdims[1] = {(hsize_t)n_pos};
  put(f, "probe_position_x_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, pdims, px);
  put(f, "probe_position_y_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, pdims, py);
  if (indexes)
    put(f, "probe_position_indexes", H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, pdims, idx);
  hid_t ct = c64_type();
  hsize_t prdims[4] = {1, 1, (hsize_t)m, (hsize_t)m}; /* ptychodus' (coherent, K, M, M) */
  put(f, "probe", ct, ct, 4, prdims, probe);
  H5Tclose(ct);
  hid_t d = H5Dopen2(f, "probe", H5P_DEFAULT);
  put_attr_d(d, "pixel_width_m", ds->object_pixel_size_m);
  put_attr_d(d, "pixel_height_m", ds->object_pixel_size_m);
  H5Dclose(d);
  H5Fclose(f);
  free(y_m);
  free(x_m);
  free(py);
  free(px);
  free(idx);
}

/* A PtychoShelves pair: /dp and /ppX, /ppY as MATLAB writes vectors, (1, N). */
static void write_ptychoshelves(const char *dp_path, const char *para_path,
                                const ptyc_dataset *ds, int n_pos) {
  hid_t f = new_file(dp_path);
  put_centred_patterns(f, "dp", ds);
  H5Fclose(f);
  int n = ds->n_patterns;
  double *y_m = malloc(n * sizeof *y_m), *x_m = malloc(n * sizeof *x_m);
  centres_m(ds, 5e-6, y_m, x_m);
  f = new_file(para_path);
  hsize_t dims[2] = {1, (hsize_t)n_pos};
  put(f, "ppX", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, x_m);
  put(f, "ppY", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, y_m);
  H5Fclose(f);
  free(y_m);
  free(x_m);
}

/* ---- comparing --------------------------------------------------------------------- */

/* Same patterns exactly, positions equal up to one common offset, same geometry. */
static void expect_same_dataset(const ptyc_dataset *got, const ptyc_dataset *want,
                                const char *what) {
  EXPECT(got->n_patterns == want->n_patterns && got->m == want->m);
  if (got->n_patterns != want->n_patterns || got->m != want->m) {
    fprintf(stderr, "  %s: %d patterns of %d, expected %d of %d\n", what, got->n_patterns,
            got->m, want->n_patterns, want->m);
    return;
  }
  size_t count = (size_t)got->n_patterns * got->m * got->m, differ = 0;
  for (size_t i = 0; i < count; i++)
    differ += got->patterns[i] != want->patterns[i];
  if (differ)
    fprintf(stderr, "  %s: %zu pattern values differ\n", what, differ);
  EXPECT(differ == 0);
  double oy = got->positions_px[0] - want->positions_px[0];
  double ox = got->positions_px[1] - want->positions_px[1], worst = 0.0;
  for (int j = 0; j < got->n_patterns; j++) {
    worst = fmax(worst, fabs(got->positions_px[2 * j] - want->positions_px[2 * j] - oy));
    worst = fmax(worst, fabs(got->positions_px[2 * j + 1] - want->positions_px[2 * j + 1] - ox));
  }
  if (worst > 1e-6)
    fprintf(stderr, "  %s: positions differ by up to %g px beyond a common offset\n", what,
            worst);
  EXPECT_LE(worst, 1e-6);
  EXPECT_NEAR(got->wavelength_m / want->wavelength_m, 1.0, 1e-9);
  EXPECT_NEAR(got->detector_distance_m / want->detector_distance_m, 1.0, 1e-12);
  EXPECT_NEAR(got->object_pixel_size_m / want->object_pixel_size_m, 1.0, 1e-9);
  EXPECT(got->positions_from_metres == 1);
}

/* `path` read with `opts` fails with `want`, a message holding `phrase` and `file`, on
 * one line, and leaves nothing open. */
static void expect_fails(const ptyc_data_options *opts, ptyc_status want, const char *phrase,
                         const char *file) {
  ptyc_dataset *ds = NULL;
  ptyc_clear_error();
  EXPECT_STATUS(ptyc_dataset_read_opts(opts, &ds), want);
  EXPECT(ds == NULL);
  const char *msg = ptyc_last_error();
  if (!strstr(msg, phrase) || !strstr(msg, file))
    fprintf(stderr, "  expected \"%s\" and %s in: %s\n", phrase, file, msg);
  EXPECT(strstr(msg, phrase) != NULL);
  EXPECT(strstr(msg, file) != NULL);
  EXPECT(strchr(msg, '\n') == NULL);
  EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
  ptyc_dataset_free(ds);
}

static void default_data(ptyc_data_options *d, const char *path) {
  ptyc_options o;
  ptyc_options_default(&o);
  *d = o.data;
  snprintf(d->path, sizeof d->path, "%s", path);
}

/* ---- the three formats on a simulated dataset -------------------------------------- */

static ptyc_dataset *simulated(void) {
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  p.n_positions = 40; /* enough to compare, quick to write */
  ptyc_dataset *ds = NULL;
  ptyc_truth *truth = NULL;
  REQUIRE_OK(ptyc_simulate(&p, &ds, &truth));
  ptyc_truth_free(truth);
  return ds;
}

static void test_cxi(const char *dir, const ptyc_dataset *sim) {
  char path[512];
  snprintf(path, sizeof path, "%s/scan.cxi", dir);
  write_cxi(path, sim, sim->n_patterns);
  const char *formats[] = {"auto", "cxi"};
  for (int f = 0; f < 2; f++) {
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read(path, formats[f], &ds));
    if (!ds)
      continue;
    EXPECT(strcmp(ds->format, "cxi") == 0);
    expect_same_dataset(ds, sim, "cxi");
    EXPECT_NEAR(ds->detector_pixel_size_m, sim->detector_pixel_size_m, 1e-15);
    EXPECT(ds->mask == NULL && ds->probe == NULL);
    ptyc_dataset_free(ds);
  }

  /* a mask bit field (nonzero = invalid) and an illumination */
  int m = sim->m;
  hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  uint32_t *bits = calloc((size_t)m * m, sizeof *bits);
  bits[(m / 2) * m + m / 2 + 1] = 2;   /* centred (M/2, M/2+1): saturated */
  bits[0] = 8;                         /* centred (0, 0): dead */
  hsize_t mdims[2] = {(hsize_t)m, (hsize_t)m};
  put(file, "entry_1/instrument_1/detector_1/mask", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, mdims,
      bits);
  ptyc_c32 *probe = calloc((size_t)m * m, sizeof *probe);
  for (int i = 0; i < m * m; i++)
    probe[i] = pt_c32((float)(i % 7), (float)(i % 3) - 1.0f);
  hid_t ct = c64_type();
  put(file, "entry_1/instrument_1/source_1/illumination", ct, ct, 2, mdims, probe);
  H5Tclose(ct);
  H5Fclose(file);
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
  if (ds) {
    EXPECT(ds->mask != NULL && ds->probe != NULL && ds->probe_modes == 1);
    if (ds->mask) {
      size_t invalid = 0;
      for (int i = 0; i < m * m; i++)
        invalid += ds->mask[i] == 0;
      EXPECT(invalid == 2);
      EXPECT(ds->mask[1] == 0);                           /* frequency (0, 1) */
      EXPECT(ds->mask[(size_t)(m / 2) * m + m / 2] == 0); /* frequency (-M/2, -M/2) */
    }
    if (ds->probe)
      EXPECT(memcmp(ds->probe, probe, (size_t)m * m * sizeof *probe) == 0);
    ptyc_dataset_free(ds);
  }
  free(bits);
  free(probe);

  /* `ptyc info` on it */
  FILE *out = tmpfile();
  EXPECT_OK(ptyc_dataset_describe(path, 1, 8, out));
  rewind(out);
  char text[4096] = "";
  size_t got = fread(text, 1, sizeof text - 1, out);
  text[got] = '\0';
  fclose(out);
  EXPECT(strstr(text, "cxi") != NULL);
  EXPECT(strstr(text, "minus /entry_1/sample_1/geometry_1/translation") != NULL);
  EXPECT(strstr(text, "options") != NULL);
}

static void test_ptychodus(const char *dir, const ptyc_dataset *sim) {
  char dp[512], product[512];
  snprintf(dp, sizeof dp, "%s/diffraction.h5", dir);
  snprintf(product, sizeof product, "%s/product-in.h5", dir);
  int m = sim->m;
  ptyc_c32 *probe = malloc((size_t)m * m * sizeof *probe);
  for (int i = 0; i < m * m; i++)
    probe[i] = pt_c32(1.0f + (float)(i % 5), (float)(i % 4));
  write_ptychodus(dp, product, sim, probe, NULL, sim->n_patterns);

  ptyc_data_options opts;
  default_data(&opts, dp);
  snprintf(opts.positions_path, sizeof opts.positions_path, "%s", product);
  const char *formats[] = {"auto", "ptychodus"};
  for (int f = 0; f < 2; f++) {
    snprintf(opts.format, sizeof opts.format, "%s", formats[f]);
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read_opts(&opts, &ds));
    if (!ds)
      continue;
    EXPECT(strcmp(ds->format, "ptychodus") == 0);
    expect_same_dataset(ds, sim, "ptychodus");
    EXPECT(ds->probe != NULL && ds->probe_modes == 1);
    if (ds->probe)
      EXPECT(memcmp(ds->probe, probe, (size_t)m * m * sizeof *probe) == 0);
    ptyc_dataset_free(ds);
  }

  /* probe_position_indexes: positions of patterns 5, 2 and 7 only, in that order */
  int pick[3] = {5, 2, 7};
  write_ptychodus(dp, product, sim, probe, pick, 3);
  snprintf(opts.format, sizeof opts.format, "auto");
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read_opts(&opts, &ds));
  if (ds) {
    size_t plane = (size_t)m * m;
    EXPECT(ds->n_patterns == 3);
    for (int p = 0; p < 3 && ds->n_patterns == 3; p++) {
      EXPECT(memcmp(ds->patterns + p * plane, sim->patterns + pick[p] * plane,
                    plane * sizeof(float)) == 0);
      double dy = ds->positions_px[2 * p] - sim->positions_px[2 * pick[p]];
      double dy0 = ds->positions_px[0] - sim->positions_px[2 * pick[0]];
      EXPECT_NEAR(dy, dy0, 1e-6);
    }
    ptyc_dataset_free(ds);
  }

  /* errors */
  write_ptychodus(dp, product, sim, probe, NULL, sim->n_patterns - 1);
  expect_fails(&opts, PTYC_E_FORMAT, "patterns but", product);
  opts.positions_path[0] = '\0';
  snprintf(opts.format, sizeof opts.format, "ptychodus");
  expect_fails(&opts, PTYC_E_CONFIG, "set data.positions_path", dp);
  snprintf(opts.positions_path, sizeof opts.positions_path, "%s/none.h5", dir);
  expect_fails(&opts, PTYC_E_IO, "no such file", opts.positions_path);
  snprintf(opts.positions_path, sizeof opts.positions_path, "%s", dp); /* not a product */
  expect_fails(&opts, PTYC_E_FORMAT, "not a ptychodus product file", dp);
  snprintf(opts.format, sizeof opts.format, "auto");
  expect_fails(&opts, PTYC_E_FORMAT, "neither /ppX + /ppY", dp);
  free(probe);
}

static void test_ptychoshelves(const char *dir, const ptyc_dataset *sim) {
  char dp[512], para[512];
  snprintf(dp, sizeof dp, "%s/data_roi0_dp.hdf5", dir);
  snprintf(para, sizeof para, "%s/data_roi0_para.hdf5", dir);
  write_ptychoshelves(dp, para, sim, sim->n_patterns);

  /* the geometry comes from the job, the para file is found next to the dp file */
  ptyc_data_options opts;
  default_data(&opts, dp);
  opts.energy_ev = 1.2398419843320026e-6 / sim->wavelength_m;
  opts.detector_distance_m = sim->detector_distance_m;
  opts.detector_pixel_size_m = sim->detector_pixel_size_m;
  const char *formats[] = {"auto", "ptychoshelves"};
  for (int f = 0; f < 2; f++) {
    snprintf(opts.format, sizeof opts.format, "%s", formats[f]);
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read_opts(&opts, &ds));
    if (!ds)
      continue;
    EXPECT(strcmp(ds->format, "ptychoshelves") == 0);
    expect_same_dataset(ds, sim, "ptychoshelves");
    ptyc_dataset_free(ds);
  }
  /* the object pixel size alone is enough */
  ptyc_data_options pixel_only;
  default_data(&pixel_only, dp);
  pixel_only.object_pixel_size_m = sim->object_pixel_size_m;
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read_opts(&pixel_only, &ds));
  if (ds) {
    double oy = ds->positions_px[0] - sim->positions_px[0];
    EXPECT_NEAR(ds->positions_px[2 * 7] - sim->positions_px[2 * 7], oy, 1e-6);
  }
  ptyc_dataset_free(ds);

  /* errors: no geometry, counts that differ, no para file */
  default_data(&opts, dp);
  expect_fails(&opts, PTYC_E_FORMAT, "object pixel size is unknown", para);
  EXPECT(strstr(ptyc_last_error(), "data.object_pixel_size_m") != NULL);
  write_ptychoshelves(dp, para, sim, sim->n_patterns - 2);
  opts.object_pixel_size_m = sim->object_pixel_size_m;
  expect_fails(&opts, PTYC_E_FORMAT, "positions", para);
  remove(para);
  expect_fails(&opts, PTYC_E_FORMAT, "data.positions_path", dp);
  snprintf(opts.format, sizeof opts.format, "ptychoshelves");
  expect_fails(&opts, PTYC_E_IO, "no such file", "data_roi0_para.hdf5");
}

/* Frames wider than tall: cropped to the central square, mask too. */
static void test_cxi_wide(const char *dir, const ptyc_dataset *sim) {
  char path[512];
  snprintf(path, sizeof path, "%s/wide.cxi", dir);
  write_cxi(path, sim, sim->n_patterns);
  int n = sim->n_patterns, m = sim->m, w = m + 4;
  /* the centred frames in columns 2 .. m+1 of wider frames, 7 counts elsewhere */
  float *wide = malloc((size_t)n * m * w * sizeof *wide);
  for (int j = 0; j < n; j++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < w; x++) {
        int cx = x - 2;
        wide[((size_t)j * m + y) * w + x] =
            cx < 0 || cx >= m ? 7.0f
                              : sim->patterns[((size_t)j * m + (y - m / 2 + m) % m) * m +
                                              (cx - m / 2 + m) % m];
      }
  uint32_t *bits = calloc((size_t)m * w, sizeof *bits);
  bits[0] = 1;                    /* outside the crop */
  bits[(size_t)5 * w + 2 + 9] = 4; /* centred (5, 9) of the square */
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "entry_1/instrument_1/detector_1/data", H5P_DEFAULT);
  hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)w}, mdims[2] = {(hsize_t)m, (hsize_t)w};
  put(f, "entry_1/instrument_1/detector_1/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dims,
      wide);
  put(f, "entry_1/instrument_1/detector_1/mask", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, mdims,
      bits);
  H5Fclose(f);
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
  if (ds) {
    EXPECT(ds->m == m);
    EXPECT(ds->m == m && memcmp(ds->patterns, sim->patterns, (size_t)n * m * m * 4) == 0);
    size_t invalid = 0;
    for (int i = 0; ds->mask && i < m * m; i++)
      invalid += ds->mask[i] == 0;
    EXPECT(ds->mask && invalid == 1 &&
           ds->mask[(size_t)((5 - m / 2 + m) % m) * m + (9 - m / 2 + m) % m] == 0);
    ptyc_dataset_free(ds);
  }
  free(wide);
  free(bits);
}

/* CXI files that are wrong in one way each. */
static void test_cxi_errors(const char *dir, const ptyc_dataset *sim) {
  char path[512];
  snprintf(path, sizeof path, "%s/bad.cxi", dir);
  ptyc_data_options opts;
  default_data(&opts, path);

  write_cxi(path, sim, sim->n_patterns - 1);
  char phrase[64];
  snprintf(phrase, sizeof phrase, "%d patterns but %d translations", sim->n_patterns,
           sim->n_patterns - 1);
  expect_fails(&opts, PTYC_E_FORMAT, phrase, path);

  /* no geometry: the positions cannot be converted */
  write_cxi(path, sim, sim->n_patterns);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "entry_1/instrument_1/detector_1/distance", H5P_DEFAULT);
  H5Fclose(f);
  expect_fails(&opts, PTYC_E_FORMAT, "missing: detector distance", path);
  opts.detector_distance_m = sim->detector_distance_m; /* the job supplies it */
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read_opts(&opts, &ds));
  if (ds)
    expect_same_dataset(ds, sim, "cxi with the distance from the job");
  ptyc_dataset_free(ds);
  opts.detector_distance_m = 0.0;

  /* non-square detector pixels */
  write_cxi(path, sim, sim->n_patterns);
  f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "entry_1/instrument_1/detector_1/y_pixel_size", H5P_DEFAULT);
  put_scalar(f, "entry_1/instrument_1/detector_1/y_pixel_size", 2 * sim->detector_pixel_size_m);
  H5Fclose(f);
  expect_fails(&opts, PTYC_E_FORMAT, "square pixels", path);

  /* no translations */
  write_cxi(path, sim, sim->n_patterns);
  f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "entry_1/sample_1/geometry_1/translation", H5P_DEFAULT);
  H5Fclose(f);
  expect_fails(&opts, PTYC_E_FORMAT, "sample translations", path);

  /* a dangling soft link for the data */
  f = new_file(path);
  H5Gclose(H5Gcreate2(f, "entry_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Gclose(H5Gcreate2(f, "entry_1/data_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Lcreate_soft("/entry_1/instrument_1/detector_1/data", f, "entry_1/data_1/data",
                 H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  expect_fails(&opts, PTYC_E_FORMAT, "holds no patterns", path);

  /* named "cxi" but without /entry_1 */
  f = new_file(path);
  H5Fclose(f);
  snprintf(opts.format, sizeof opts.format, "cxi");
  expect_fails(&opts, PTYC_E_FORMAT, "no /entry_1", path);
  snprintf(opts.format, sizeof opts.format, "hdf9");
  expect_fails(&opts, PTYC_E_ARG, "unknown data format", path);
}

/* ---- the options, element by element ------------------------------------------------ */

/* A hand-made dataset in the FFT layout: value 1000 j + 10 y + x + 1 (exact in float),
 * positions (j, 2 j + 1), optional mask and probe. */
static ptyc_dataset *hand_made(int n, int m, int with_mask, int with_probe) {
  ptyc_dataset *ds = calloc(1, sizeof *ds);
  ds->n_patterns = n;
  ds->m = m;
  ds->patterns = malloc((size_t)n * m * m * sizeof(float));
  ds->positions_px = malloc((size_t)n * 2 * sizeof(double));
  for (int j = 0; j < n; j++) {
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++)
        ds->patterns[((size_t)j * m + y) * m + x] = (float)(1000 * j + 10 * y + x + 1);
    ds->positions_px[2 * j] = j;
    ds->positions_px[2 * j + 1] = 2 * j + 1;
  }
  if (with_mask) {
    ds->mask = malloc((size_t)m * m);
    for (int i = 0; i < m * m; i++)
      ds->mask[i] = i % 5 != 3;
  }
  if (with_probe) {
    ds->probe_modes = 1;
    ds->probe = malloc((size_t)m * m * sizeof(ptyc_c32));
    for (int i = 0; i < m * m; i++)
      ds->probe[i] = pt_c32((float)i, (float)-i);
  }
  ds->wavelength_m = 1e-10;
  ds->detector_distance_m = 1.0;
  ds->detector_pixel_size_m = 1e-4;
  ds->object_pixel_size_m = ds->wavelength_m * ds->detector_distance_m / (m * 1e-4);
  return ds;
}

static float value(int j, int y, int x) { return (float)(1000 * j + 10 * y + x + 1); }

static void test_reorientation(void) {
  for (int m = 5; m <= 6; m++) { /* odd and even */
    for (int op = 0; op < 3; op++) {
      ptyc_data_options o;
      default_data(&o, "");
      if (op == 0)
        o.transpose_patterns = 1;
      if (op == 1)
        o.flip_patterns_x = 1;
      if (op == 2)
        o.flip_patterns_y = 1;
      ptyc_dataset *ds = hand_made(2, m, 1, 1);
      REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
      int same = 1;
      for (int j = 0; j < 2; j++)
        for (int y = 0; y < m; y++)
          for (int x = 0; x < m; x++) {
            /* source (sy, sx) of destination (y, x) */
            int sy = op == 0 ? x : op == 2 ? (m - y) % m : y;
            int sx = op == 0 ? y : op == 1 ? (m - x) % m : x;
            same &= ds->patterns[((size_t)j * m + y) * m + x] == value(j, sy, sx);
            same &= ds->mask[(size_t)y * m + x] == (((size_t)sy * m + sx) % 5 != 3);
            same &= ds->probe[(size_t)y * m + x].re == (float)(sy * m + sx);
          }
      if (!same)
        fprintf(stderr, "  reorientation %d, M = %d: wrong elements\n", op, m);
      EXPECT(same);
      EXPECT(ds->patterns[0] == value(0, 0, 0)); /* the zero frequency stays put */
      ptyc_dataset_free(ds);
    }
  }

  /* positions: transpose, then negate the centres (top-left -> -top-left - M) */
  ptyc_data_options o;
  default_data(&o, "");
  o.transpose_positions = 1;
  o.flip_positions_x = 1;
  ptyc_dataset *ds = hand_made(3, 4, 0, 0);
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  for (int j = 0; j < 3; j++) {
    EXPECT_NEAR(ds->positions_px[2 * j], 2 * j + 1, 0.0);
    EXPECT_NEAR(ds->positions_px[2 * j + 1], -j - 4, 0.0);
  }
  ptyc_dataset_free(ds);
  default_data(&o, "");
  o.flip_positions_y = 1;
  ds = hand_made(3, 4, 0, 0);
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  for (int j = 0; j < 3; j++) {
    EXPECT_NEAR(ds->positions_px[2 * j], -j - 4, 0.0);
    EXPECT_NEAR(ds->positions_px[2 * j + 1], 2 * j + 1, 0.0);
  }
  ptyc_dataset_free(ds);
}

static void test_crop_bin(void) {
  /* crop 6 -> 4 keeps frequencies -2..1: FFT indices 0, 1, 4, 5 */
  const int src[4] = {0, 1, 4, 5};
  ptyc_data_options o;
  default_data(&o, "");
  o.crop = 4;
  ptyc_dataset *ds = hand_made(2, 6, 1, 1);
  double pixel = ds->object_pixel_size_m;
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  EXPECT(ds->m == 4);
  int same = 1;
  for (int j = 0; j < 2; j++)
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 4; x++) {
        same &= ds->patterns[((size_t)j * 4 + y) * 4 + x] == value(j, src[y], src[x]);
        same &= ds->mask[(size_t)y * 4 + x] == ((src[y] * 6 + src[x]) % 5 != 3);
      }
  EXPECT(same);
  EXPECT(ds->probe == NULL && ds->probe_modes == 0); /* its sampling changed */
  EXPECT_NEAR(ds->object_pixel_size_m / pixel, 6.0 / 4.0, 1e-12);
  EXPECT_NEAR(ds->positions_px[2], 1.0 * 4 / 6, 1e-12);   /* top-left scales by C / M */
  EXPECT_NEAR(ds->positions_px[3], 3.0 * 4 / 6, 1e-12);
  ptyc_dataset_free(ds);

  /* bin 2 of 4x4: the centred blocks {2,3} and {0,1} (FFT indices) become indices 1, 0 */
  const int rows[2][2] = {{0, 1}, {2, 3}};
  default_data(&o, "");
  o.bin = 2;
  ds = hand_made(2, 4, 0, 0);
  ds->mask = malloc(16);
  memset(ds->mask, 1, 16);
  ds->mask[2 * 4 + 3] = 0; /* in block (1, 1) */
  double det = ds->detector_pixel_size_m;
  pixel = ds->object_pixel_size_m;
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  EXPECT(ds->m == 2);
  same = 1;
  for (int j = 0; j < 2; j++)
    for (int y = 0; y < 2; y++)
      for (int x = 0; x < 2; x++) {
        float sum = 0.0f;
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++)
            sum += value(j, rows[y][a], rows[x][b]);
        same &= ds->patterns[((size_t)j * 2 + y) * 2 + x] == sum;
      }
  EXPECT(same);
  EXPECT(ds->mask[0] == 1 && ds->mask[1] == 1 && ds->mask[2] == 1 && ds->mask[3] == 0);
  EXPECT_NEAR(ds->detector_pixel_size_m / det, 2.0, 1e-12);
  EXPECT_NEAR(ds->object_pixel_size_m, pixel, 0.0);
  EXPECT_NEAR(ds->positions_px[2], 1.0 + 1.0, 0.0); /* + (M - M/b) / 2 */
  ptyc_dataset_free(ds);

  /* crop then bin, and the errors */
  default_data(&o, "");
  o.crop = 6;
  o.bin = 3;
  ds = hand_made(1, 8, 0, 0);
  EXPECT_OK(ptyc_dataset_apply_options(&o, ds));
  EXPECT(ds->m == 2);
  ptyc_dataset_free(ds);
  o.crop = 9;
  ds = hand_made(1, 8, 0, 0);
  EXPECT_STATUS(ptyc_dataset_apply_options(&o, ds), PTYC_E_CONFIG);
  EXPECT(strstr(ptyc_last_error(), "data.crop = 9") != NULL);
  ptyc_dataset_free(ds);
  o.crop = 0;
  o.bin = 3;
  ds = hand_made(1, 8, 0, 0);
  EXPECT_STATUS(ptyc_dataset_apply_options(&o, ds), PTYC_E_CONFIG);
  EXPECT(strstr(ptyc_last_error(), "data.bin = 3 does not divide") != NULL);
  ptyc_dataset_free(ds);
}

static void test_threshold_saturation_mask(const char *dir) {
  const int m = 4;
  ptyc_data_options o;
  default_data(&o, "");
  o.threshold = 1023.5; /* pattern 0 (values 1..34) -> 0; pattern 1 keeps >= 1024 */
  ptyc_dataset *ds = hand_made(2, m, 0, 0);
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  int same = 1;
  for (int j = 0; j < 2; j++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        float want = value(j, y, x) < 1023.5f ? 0.0f : value(j, y, x);
        same &= ds->patterns[((size_t)j * m + y) * m + x] == want;
      }
  EXPECT(same);
  EXPECT(ds->mask == NULL);
  ptyc_dataset_free(ds);

  /* saturation 1030: pattern 1 reaches it where 10 y + x + 1 >= 30, i.e. rows 2 (x >= 9:
   * none) and 3 (all); no pixel of pattern 0 does */
  default_data(&o, "");
  o.saturation = 1030.0;
  ds = hand_made(2, m, 0, 0);
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  EXPECT(ds->mask != NULL);
  same = 1;
  for (int y = 0; y < m && ds->mask; y++)
    for (int x = 0; x < m; x++)
      same &= ds->mask[(size_t)y * m + x] == (value(1, y, x) < 1030.0f);
  EXPECT(same);
  EXPECT(ds->patterns[(size_t)m * m + 3 * m] == value(1, 3, 0)); /* counts are kept */
  ptyc_dataset_free(ds);

  /* a saturation so low that every pixel goes */
  o.saturation = 1.0;
  ds = hand_made(1, m, 0, 0);
  EXPECT_STATUS(ptyc_dataset_apply_options(&o, ds), PTYC_E_FORMAT);
  EXPECT(strstr(ptyc_last_error(), "every detector pixel is masked") != NULL);
  ptyc_dataset_free(ds);

  /* a mask file in the centre layout: centred (y, x) is FFT ((y - M/2) mod M, ...) */
  char path[512];
  snprintf(path, sizeof path, "%s/mask.h5", dir);
  uint8_t mask[16];
  memset(mask, 1, sizeof mask);
  mask[1 * m + 3] = 0; /* centred (1, 3) = FFT (3, 1) */
  hid_t f = new_file(path);
  hsize_t dims[2] = {m, m};
  put(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dims, mask);
  H5Fclose(f);
  default_data(&o, "");
  snprintf(o.mask_path, sizeof o.mask_path, "%s", path);
  ds = hand_made(1, m, 1, 0); /* own mask: i % 5 == 3 invalid */
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  same = 1;
  for (int i = 0; i < m * m; i++)
    same &= ds->mask[i] == (i % 5 != 3 && i != 3 * m + 1);
  EXPECT(same);
  ptyc_dataset_free(ds);
  /* the same file read as corner layout */
  snprintf(o.zero_frequency, sizeof o.zero_frequency, "corner");
  ds = hand_made(1, m, 0, 0);
  REQUIRE_OK(ptyc_dataset_apply_options(&o, ds));
  for (int i = 0; i < m * m; i++)
    same &= ds->mask[i] == (i != 1 * m + 3);
  EXPECT(same);
  ptyc_dataset_free(ds);

  /* mask files that are wrong */
  f = new_file(path);
  hsize_t bad[2] = {m + 1, m};
  uint8_t ones[20];
  memset(ones, 1, sizeof ones);
  put(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, bad, ones);
  H5Fclose(f);
  ds = hand_made(1, m, 0, 0);
  EXPECT_STATUS(ptyc_dataset_apply_options(&o, ds), PTYC_E_FORMAT);
  EXPECT(strstr(ptyc_last_error(), "/mask is (5, 4); expected (4, 4)") != NULL);
  EXPECT(strstr(ptyc_last_error(), path) != NULL);
  ptyc_dataset_free(ds);
  f = new_file(path);
  H5Fclose(f);
  ds = hand_made(1, m, 0, 0);
  EXPECT_STATUS(ptyc_dataset_apply_options(&o, ds), PTYC_E_FORMAT);
  EXPECT(strstr(ptyc_last_error(), "no /mask dataset") != NULL);
  ptyc_dataset_free(ds);
  EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
}

/* data.zero_frequency against the file's attribute, and the options through a read. */
static void test_zero_frequency(const char *dir, const ptyc_dataset *sim) {
  char path[512];
  snprintf(path, sizeof path, "%s/native.h5", dir);
  ptyc_dataset_write_args args = {.data = sim};
  REQUIRE_OK(ptyc_dataset_write(path, &args)); /* written with the zero frequency centred */
  ptyc_data_options o;
  default_data(&o, path);
  snprintf(o.zero_frequency, sizeof o.zero_frequency, "corner"); /* pretend it is not */
  o.transpose_patterns = 1;
  ptyc_dataset *ds = NULL;
  REQUIRE_OK(ptyc_dataset_read_opts(&o, &ds));
  int m = sim->m, same = 1;
  for (int j = 0; j < 3; j++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) /* the file's centred array, transposed, as is */
        same &= ds->patterns[((size_t)j * m + y) * m + x] ==
                sim->patterns[((size_t)j * m + (x - m / 2 + m) % m) * m + (y - m / 2 + m) % m];
  EXPECT(same);
  ptyc_dataset_free(ds);
  snprintf(o.zero_frequency, sizeof o.zero_frequency, "middle");
  expect_fails(&o, PTYC_E_CONFIG, "data.zero_frequency = \"middle\"", "data.zero_frequency");

  /* describe with options: they are listed */
  default_data(&o, path);
  o.crop = 32;
  o.flip_positions_x = 1;
  FILE *out = tmpfile();
  EXPECT_OK(ptyc_dataset_describe_opts(&o, 1, 8, out));
  rewind(out);
  char text[4096] = "";
  size_t got = fread(text, 1, sizeof text - 1, out);
  text[got] = '\0';
  fclose(out);
  if (!strstr(text, "crop 64 -> 32") || !strstr(text, "positions flipped in x"))
    fprintf(stderr, "  describe printed:\n%s\n", text);
  EXPECT(strstr(text, "crop 64 -> 32") != NULL);
  EXPECT(strstr(text, "positions flipped in x") != NULL);
}

int main(void) {
  char dir[] = "/tmp/ptyc_test_readers_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  ptyc_dataset *sim = simulated();

  test_cxi(dir, sim);
  test_cxi_wide(dir, sim);
  test_cxi_errors(dir, sim);
  test_ptychodus(dir, sim);
  test_ptychoshelves(dir, sim);
  test_reorientation();
  test_crop_bin();
  test_threshold_saturation_mask(dir);
  test_zero_frequency(dir, sim);

  ptyc_dataset_free(sim);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return TEST_RESULT();
}
