/* The native dataset reader and writer (src/data/): files are crafted here with the
 * HDF5 API, the way independent tools (h5py, simulators) write them, in a temporary
 * directory. Every defect the reader promises to report is tried, with its status
 * and a key phrase of the message. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/dataset.h"
#include "test_util.h"

#define MAX_N 16
#define MAX_M 9

/* ---- helpers that craft files ------------------------------------------------------ */

static void path_in(char *buf, size_t size, const char *dir, const char *name) {
  snprintf(buf, size, "%s/%s", dir, name);
}

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
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
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
}

static void put_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                     hsize_t n, const void *value) {
  hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
  hid_t attr = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attr, mem_type, value);
  H5Aclose(attr);
  H5Sclose(space);
}

static void put_attr_d(hid_t loc, const char *name, double v) {
  put_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, 1, &v);
}

/* A variable-length UTF-8 string, as h5py writes a Python str. */
static void put_attr_s(hid_t loc, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  put_attr(loc, name, t, t, 0, 1, &v);
  H5Tclose(t);
}

/* A fixed-length, NUL-padded string, as h5py writes numpy bytes. */
static void put_attr_s_fixed(hid_t loc, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v));
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  put_attr(loc, name, t, t, 0, 1, v);
  H5Tclose(t);
}

/* Complex compound {re, im} of float32 (dbl = 0) or float64 (dbl = 1), file or memory. */
static hid_t complex_type(const char *re, const char *im, int dbl, int native) {
  size_t each = dbl ? 8 : 4;
  hid_t base = dbl ? (native ? H5T_NATIVE_DOUBLE : H5T_IEEE_F64LE)
                   : (native ? H5T_NATIVE_FLOAT : H5T_IEEE_F32LE);
  hid_t t = H5Tcreate(H5T_COMPOUND, 2 * each);
  H5Tinsert(t, re, 0, base);
  H5Tinsert(t, im, each, base);
  return t;
}

/* Test value of pattern j at (y, x): distinct everywhere, exact in float. */
static double dp_value(int j, int y, int x) { return 10000.0 * j + 100.0 * y + x; }

static void fill_dp(double *dp, int n, int m) {
  for (int j = 0; j < n; j++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++)
        dp[((size_t)j * m + y) * m + x] = dp_value(j, y, x);
}

static void fill_positions(double *pos, int n) {
  for (int j = 0; j < n; j++) {
    pos[2 * j] = 1.5 * j - 2.0;
    pos[2 * j + 1] = 0.25 * j + 3.0;
  }
}

/* Writes /dp (n, m, m) of `file_type` and /positions_px; returns the open file so a
 * test can add to it. */
static hid_t make_basic(const char *path, int n, int m, hid_t file_type) {
  double dp[MAX_N * MAX_M * MAX_M], pos[MAX_N * 2];
  fill_dp(dp, n, m);
  fill_positions(pos, n);
  hid_t f = new_file(path);
  hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m};
  put(f, "dp", file_type, H5T_NATIVE_DOUBLE, 3, dims, dp);
  hsize_t pdims[2] = {(hsize_t)n, 2};
  put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pdims, pos);
  return f;
}

/* Reads `path` and expects failure with `want` and `phrase` in the message. */
#define EXPECT_READ_FAILS(path, want, phrase)                                           \
  do {                                                                                  \
    ptyc_dataset *ds_ = NULL;                                                           \
    ptyc_clear_error();                                                                 \
    EXPECT_STATUS(ptyc_dataset_read((path), "auto", &ds_), (want));                     \
    EXPECT(ds_ == NULL);                                                                \
    if (!strstr(ptyc_last_error(), (phrase)))                                           \
      fprintf(stderr, "  message was: %s\n", ptyc_last_error());                        \
    EXPECT(strstr(ptyc_last_error(), (phrase)) != NULL);                                \
    EXPECT(strstr(ptyc_last_error(), (path)) != NULL);                                  \
    EXPECT(strchr(ptyc_last_error(), '\n') == NULL);                                    \
    EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0); /* nothing left open */     \
    ptyc_dataset_free(ds_);                                                             \
  } while (0)

/* ---- valid files ------------------------------------------------------------------- */

static void test_dtypes(const char *dir) {
  const struct {
    const char *name;
    hid_t type;
  } types[] = {{"float32", H5T_IEEE_F32LE}, {"float64", H5T_IEEE_F64LE},
               {"uint16", H5T_STD_U16LE},   {"uint32", H5T_STD_U32LE},
               {"int32", H5T_STD_I32LE},    {"float32 big-endian", H5T_IEEE_F32BE}};
  const int n = 3, m = 4;
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    char path[512];
    path_in(path, sizeof path, dir, "dtype.h5");
    hid_t f = make_basic(path, n, m, types[t].type);
    put_attr_s(f, "dp_zero_frequency", "corner");
    H5Fclose(f);
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read(path, "native", &ds));
    if (!ds) {
      fprintf(stderr, "  dtype %s\n", types[t].name);
      continue;
    }
    EXPECT(ds->n_patterns == n && ds->m == m);
    EXPECT(strcmp(ds->format, "ptyc-native") == 0);
    int same = 1;
    for (int j = 0; j < n; j++)
      for (int y = 0; y < m; y++)
        for (int x = 0; x < m; x++)
          same &= ds->patterns[((size_t)j * m + y) * m + x] == (float)dp_value(j, y, x);
    if (!same)
      fprintf(stderr, "  dtype %s: values differ\n", types[t].name);
    EXPECT(same);
    EXPECT(ds->mask == NULL && ds->probe == NULL && ds->probe_modes == 0);
    EXPECT(ds->positions_from_metres == 0);
    EXPECT_NEAR(ds->positions_px[2 * 2], 1.0, 0.0);
    EXPECT_NEAR(ds->positions_px[2 * 2 + 1], 3.5, 0.0);
    ptyc_dataset_free(ds);
  }
}

/* Centre layout: out[(y - M/2) mod M][(x - M/2) mod M] = in[y][x]; corner: identity.
 * Tried with even and odd M, the attribute on the root or on /dp, both spellings. */
static void test_layout(const char *dir) {
  for (int m = 4; m <= 7; m++) {
    for (int variant = 0; variant < 4; variant++) {
      /* 0: no attribute (centre), 1: root "centre", 2: /dp "center" (fixed string),
       * 3: root "corner" */
      char path[512];
      path_in(path, sizeof path, dir, "layout.h5");
      const int n = 2;
      hid_t f = make_basic(path, n, m, H5T_IEEE_F32LE);
      if (variant == 1)
        put_attr_s(f, "dp_zero_frequency", "centre");
      if (variant == 2) {
        hid_t d = H5Dopen2(f, "dp", H5P_DEFAULT);
        put_attr_s_fixed(d, "dp_zero_frequency", "center");
        H5Dclose(d);
      }
      if (variant == 3)
        put_attr_s(f, "dp_zero_frequency", "corner");
      H5Fclose(f);

      ptyc_dataset *ds = NULL;
      EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
      if (!ds)
        continue;
      int same = 1;
      for (int j = 0; j < n; j++)
        for (int y = 0; y < m; y++)
          for (int x = 0; x < m; x++) {
            int oy = variant == 3 ? y : (y - m / 2 + m) % m;
            int ox = variant == 3 ? x : (x - m / 2 + m) % m;
            same &= ds->patterns[((size_t)j * m + oy) * m + ox] == (float)dp_value(j, y, x);
          }
      if (!same)
        fprintf(stderr, "  layout M = %d variant %d: wrong placement\n", m, variant);
      EXPECT(same);
      /* The centre pixel (index M/2) is the zero frequency: it must land at [0][0]. */
      if (variant != 3)
        EXPECT(ds->patterns[0] == (float)dp_value(0, m / 2, m / 2));
      ptyc_dataset_free(ds);
    }
  }
  char path[512];
  path_in(path, sizeof path, dir, "layout_bad.h5");
  hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
  put_attr_s(f, "dp_zero_frequency", "middle");
  H5Fclose(f);
  EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "dp_zero_frequency is \"middle\"");
}

/* Positions in metres: probe centres -> top-left px = pos / dx - M / 2. */
static void test_positions(const char *dir) {
  const int n = 4, m = 6;
  char path[512];
  path_in(path, sizeof path, dir, "positions.h5");
  double want[MAX_N * 2];
  fill_positions(want, n);

  /* px given as float32 */
  {
    double dp[MAX_N * MAX_M * MAX_M];
    fill_dp(dp, n, m);
    hid_t f = new_file(path);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m}, pdims[2] = {(hsize_t)n, 2};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, dims, dp);
    put(f, "positions_px", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 2, pdims, want);
    H5Fclose(f);
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
    if (ds)
      for (int i = 0; i < 2 * n; i++)
        EXPECT_NEAR(ds->positions_px[i], want[i], 1e-6);
    ptyc_dataset_free(ds);
  }

  /* The four ways to give the object pixel size. */
  const double wavelength = 1.0e-10, distance = 2.0, det_pixel = 75e-6;
  const double energy_ev = 12398.419843320026; /* gives exactly 1e-10 m */
  const double dx_geometry = wavelength * distance / (m * det_pixel);
  for (int way = 0; way < 4; way++) {
    double dx = way == 0 ? 2.5e-8 : dx_geometry;
    double dp[MAX_N * MAX_M * MAX_M], y_m[MAX_N], x_m[MAX_N];
    fill_dp(dp, n, m);
    for (int j = 0; j < n; j++) {
      y_m[j] = (want[2 * j] + m / 2.0) * dx;
      x_m[j] = (want[2 * j + 1] + m / 2.0) * dx;
    }
    hid_t f = new_file(path);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m}, ldims[1] = {(hsize_t)n};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, dims, dp);
    put(f, "probe_position_y_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, ldims, y_m);
    put(f, "probe_position_x_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, ldims, x_m);
    if (way == 0) {
      put_attr_d(f, "object_pixel_size_m", dx);
    } else if (way == 1) {
      put_attr_d(f, "wavelength_m", wavelength);
      put_attr_d(f, "detector_distance_m", distance);
      put_attr_d(f, "detector_pixel_size_m", det_pixel);
    } else if (way == 2) {
      /* energy instead of wavelength; one-element arrays, an integer distance */
      put_attr(f, "energy_ev", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, 1, &energy_ev);
      long long dist_int = 2;
      put_attr(f, "detector_distance_m", H5T_STD_I64LE, H5T_NATIVE_LLONG, 0, 1, &dist_int);
      put_attr(f, "detector_pixel_size_m", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 1, 1, &det_pixel);
    } else {
      /* both wavelength_m and a (wrong) energy_ev: the wavelength wins */
      put_attr_d(f, "wavelength_m", wavelength);
      put_attr_d(f, "energy_ev", 5000.0);
      put_attr_d(f, "detector_distance_m", distance);
      put_attr_d(f, "detector_pixel_size_m", det_pixel);
    }
    H5Fclose(f);
    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
    if (!ds) {
      fprintf(stderr, "  way %d\n", way);
      continue;
    }
    EXPECT(ds->positions_from_metres == 1);
    /* float32 detector pixel size (way 2) rounds dx at 1e-7 relative */
    double tol = way == 2 ? 1e-5 : 1e-9;
    for (int i = 0; i < 2 * n; i++)
      EXPECT_NEAR(ds->positions_px[i], want[i], tol);
    EXPECT_NEAR(ds->object_pixel_size_m / dx, 1.0, 1e-6);
    if (way >= 1) {
      EXPECT_NEAR(ds->wavelength_m / wavelength, 1.0, 1e-12);
      EXPECT_NEAR(ds->detector_distance_m, distance, 0.0);
      EXPECT_NEAR(ds->detector_pixel_size_m / det_pixel, 1.0, 1e-7);
    }
    ptyc_dataset_free(ds);
  }

  /* Geometry that is missing: the error names what is needed. */
  {
    double dp[MAX_N * MAX_M * MAX_M], y_m[MAX_N] = {0}, x_m[MAX_N] = {0};
    fill_dp(dp, n, m);
    hid_t f = new_file(path);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m}, ldims[1] = {(hsize_t)n};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, dims, dp);
    put(f, "probe_position_y_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, ldims, y_m);
    put(f, "probe_position_x_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, ldims, x_m);
    put_attr_d(f, "wavelength_m", wavelength);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "missing detector_distance_m, detector_pixel_size_m");
    EXPECT(strstr(ptyc_last_error(), "object_pixel_size_m") != NULL);
  }
  /* Only one of the two metre datasets. */
  {
    double dp[MAX_N * MAX_M * MAX_M], y_m[MAX_N] = {0};
    fill_dp(dp, n, m);
    hid_t f = new_file(path);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m}, ldims[1] = {(hsize_t)n};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, dims, dp);
    put(f, "probe_position_y_m", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, ldims, y_m);
    put_attr_d(f, "object_pixel_size_m", 1e-8);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "no /probe_position_x_m");
  }
}

static void test_probe(const char *dir) {
  const int n = 2, m = 5;
  const struct {
    int rank, k, dbl;
    const char *re, *im;
  } cases[] = {{3, 2, 0, "r", "i"},       {2, 1, 0, "r", "i"},   {3, 3, 1, "r", "i"},
               {2, 1, 1, "r", "i"},       {3, 1, 0, "re", "im"}, {3, 2, 1, "real", "imag"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char path[512];
    path_in(path, sizeof path, dir, "probe.h5");
    int k = cases[c].k;
    double values[2 * 3 * MAX_M * MAX_M];
    for (int i = 0; i < 2 * k * m * m; i++)
      values[i] = 0.1 * i - 1.3 + 1e-9; /* the tiny part is lost in complex64 */
    hid_t f = make_basic(path, n, m, H5T_IEEE_F32LE);
    hid_t ft = complex_type(cases[c].re, cases[c].im, cases[c].dbl, 0);
    hid_t mt = complex_type(cases[c].re, cases[c].im, 1, 1);
    hsize_t dims3[3] = {(hsize_t)k, (hsize_t)m, (hsize_t)m};
    put(f, "probe", ft, mt, cases[c].rank, cases[c].rank == 3 ? dims3 : dims3 + 1, values);
    H5Tclose(ft);
    H5Tclose(mt);
    H5Fclose(f);

    ptyc_dataset *ds = NULL;
    EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
    if (!ds)
      continue;
    EXPECT(ds->probe != NULL);
    EXPECT(ds->probe_modes == k);
    int same = 1;
    for (int i = 0; ds->probe && i < k * m * m; i++)
      same &= fabs(ds->probe[i].re - values[2 * i]) < 1e-6 &&
              fabs(ds->probe[i].im - values[2 * i + 1]) < 1e-6;
    if (!same)
      fprintf(stderr, "  probe case %zu differs\n", c);
    EXPECT(same);
    ptyc_dataset_free(ds);
  }
}

static void test_mask(const char *dir) {
  for (int m = 4; m <= 5; m++) {
    for (int as_bool = 0; as_bool < 2; as_bool++) {
      char path[512];
      path_in(path, sizeof path, dir, "mask.h5");
      uint8_t mask[MAX_M * MAX_M];
      for (int i = 0; i < m * m; i++)
        mask[i] = (i % 3) != 0;
      hid_t f = make_basic(path, 2, m, H5T_IEEE_F32LE);
      hsize_t dims[2] = {(hsize_t)m, (hsize_t)m};
      if (as_bool) {
        /* h5py's bool: enum {FALSE = 0, TRUE = 1} over int8 */
        hid_t t = H5Tenum_create(H5T_NATIVE_SCHAR);
        signed char v0 = 0, v1 = 1;
        H5Tenum_insert(t, "FALSE", &v0);
        H5Tenum_insert(t, "TRUE", &v1);
        put(f, "mask", t, t, 2, dims, mask);
        H5Tclose(t);
      } else {
        put(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, dims, mask);
      }
      H5Fclose(f);
      ptyc_dataset *ds = NULL;
      EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
      if (!ds)
        continue;
      EXPECT(ds->mask != NULL);
      int same = 1;
      for (int y = 0; ds->mask && y < m; y++)
        for (int x = 0; x < m; x++) {
          int oy = (y - m / 2 + m) % m, ox = (x - m / 2 + m) % m;
          same &= ds->mask[oy * m + ox] == mask[y * m + x];
        }
      if (!same)
        fprintf(stderr, "  mask M = %d bool = %d differs\n", m, as_bool);
      EXPECT(same);
      ptyc_dataset_free(ds);
    }
  }
}

/* ---- defects ----------------------------------------------------------------------- */

static void copy_prefix(const char *from, const char *to, long nbytes) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  for (long i = 0; in && out && i < nbytes; i++) {
    int c = fgetc(in);
    if (c == EOF)
      break;
    fputc(c, out);
  }
  if (in)
    fclose(in);
  if (out)
    fclose(out);
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  return size;
}

static void test_errors(const char *dir) {
  char path[512];
  path_in(path, sizeof path, dir, "data.h5");
  double zeros[MAX_N * MAX_M * MAX_M] = {0};

  /* /dp with one dimension */
  {
    hid_t f = new_file(path);
    hsize_t d1[1] = {10};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 1, d1, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp has 1 dimension(s); expected (N, M, M)");
  }
  /* non-square */
  {
    hid_t f = new_file(path);
    hsize_t d[3] = {2, 4, 5};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, d, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp is 4x5; patterns must be square");
  }
  /* no patterns */
  {
    hid_t f = new_file(path);
    hsize_t d[3] = {0, 4, 4};
    put(f, "dp", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 3, d, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp has no patterns (N = 0)");
  }
  /* N patterns but N - 1 positions */
  {
    hid_t f = make_basic(path, 3, 4, H5T_IEEE_F32LE);
    H5Ldelete(f, "positions_px", H5P_DEFAULT);
    hsize_t pd[2] = {2, 2};
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "3 patterns but 2 positions in /positions_px");
  }
  /* positions not (N, 2) */
  {
    hid_t f = make_basic(path, 3, 4, H5T_IEEE_F32LE);
    H5Ldelete(f, "positions_px", H5P_DEFAULT);
    hsize_t pd[2] = {3, 3};
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/positions_px is (3, 3); expected (N, 2)");
  }
  /* NaN position */
  {
    hid_t f = make_basic(path, 3, 4, H5T_IEEE_F32LE);
    H5Ldelete(f, "positions_px", H5P_DEFAULT);
    double pos[6] = {0, 0, 1, 1, NAN, 2};
    hsize_t pd[2] = {3, 2};
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, pos);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/positions_px holds NaN or Inf (position 2)");
  }
  /* NaN and Inf intensities, negative intensities */
  for (int kind = 0; kind < 3; kind++) {
    double dp[3 * 16];
    fill_dp(dp, 3, 4);
    if (kind == 0)
      dp[2 * 16 + 5] = NAN;
    if (kind == 1)
      dp[2 * 16 + 7] = INFINITY;
    if (kind == 2)
      dp[1 * 16 + 3] = -1.0;
    hid_t f = new_file(path);
    hsize_t d[3] = {3, 4, 4}, pd[2] = {3, 2};
    put(f, "dp", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, d, dp);
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    if (kind < 2)
      EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp holds NaN or Inf (pattern 2)");
    else
      EXPECT_READ_FAILS(path, PTYC_E_FORMAT,
                        "/dp holds negative intensities (pattern 1, value -1)");
  }
  /* negative value in a signed integer file */
  {
    double dp[2 * 16];
    fill_dp(dp, 2, 4);
    dp[16 + 2] = -7;
    hid_t f = new_file(path);
    hsize_t d[3] = {2, 4, 4}, pd[2] = {2, 2};
    put(f, "dp", H5T_STD_I32LE, H5T_NATIVE_DOUBLE, 3, d, dp);
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "negative intensities (pattern 1, value -7)");
  }
  /* unsupported /dp type: complex */
  {
    hid_t f = new_file(path);
    hsize_t d[3] = {2, 4, 4}, pd[2] = {2, 2};
    hid_t ft = complex_type("r", "i", 0, 0), mt = complex_type("r", "i", 1, 1);
    put(f, "dp", ft, mt, 3, d, zeros);
    H5Tclose(ft);
    H5Tclose(mt);
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp has unsupported type complex64");
  }
  /* probe of the wrong size */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    hsize_t d[3] = {1, 2, 2};
    hid_t ft = complex_type("r", "i", 0, 0), mt = complex_type("r", "i", 1, 1);
    double ones[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    put(f, "probe", ft, mt, 3, d, ones);
    H5Tclose(ft);
    H5Tclose(mt);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/probe is 2x2 but patterns are 4x4");
  }
  /* probe of an unsupported type (string) */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    hsize_t d[2] = {4, 4};
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 4);
    char text[16 * 4];
    memset(text, 'a', sizeof text);
    put(f, "probe", t, t, 2, d, text);
    H5Tclose(t);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/probe has unsupported type string");
  }
  /* probe with too many dimensions */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    hsize_t d[4] = {1, 1, 4, 4};
    hid_t ft = complex_type("r", "i", 0, 0), mt = complex_type("r", "i", 1, 1);
    double ones[32];
    for (int i = 0; i < 32; i++)
      ones[i] = 1.0;
    put(f, "probe", ft, mt, 4, d, ones);
    H5Tclose(ft);
    H5Tclose(mt);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/probe has 4 dimension(s)");
  }
  /* mask shape and an all-invalid mask */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    uint8_t mask[25] = {1};
    hsize_t d[2] = {5, 5};
    put(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d, mask);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/mask is (5, 5); expected (M, M) = (4, 4)");
  }
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    uint8_t mask[16] = {0};
    hsize_t d[2] = {4, 4};
    put(f, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, d, mask);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/mask marks every detector pixel invalid");
  }
  /* no positions at all */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    H5Ldelete(f, "positions_px", H5P_DEFAULT);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT,
                      "no /positions_px and no /probe_position_y_m + /probe_position_x_m");
  }
  /* a geometry attribute that is not a positive number */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    put_attr_d(f, "wavelength_m", -1.0);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "wavelength_m = -1; expected a positive number");
  }
  /* a CXI-like file without patterns: auto-detection reads it as CXI and says so */
  {
    hid_t f = new_file(path);
    hid_t g = H5Gcreate2(f, "entry_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    long long version = 160;
    hsize_t one = 1;
    put(f, "cxi_version", H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &one, &version);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "no /entry_1/data_1/data");
    EXPECT(strstr(ptyc_last_error(), "CXI") != NULL);
  }
  /* an empty HDF5 file, and /dp as a group */
  {
    hid_t f = new_file(path);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "the file is empty");
    f = new_file(path);
    hid_t g = H5Gcreate2(f, "dp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    EXPECT_READ_FAILS(path, PTYC_E_FORMAT, "/dp is a group");
  }

  /* files that are not HDF5, or damaged */
  char other[512];
  path_in(other, sizeof other, dir, "text.h5");
  FILE *t = fopen(other, "w");
  fprintf(t, "this is not HDF5\n1 2 3\n");
  fclose(t);
  EXPECT_READ_FAILS(other, PTYC_E_IO, "not an HDF5 file");

  path_in(other, sizeof other, dir, "empty.h5");
  t = fopen(other, "w");
  fclose(t);
  EXPECT_READ_FAILS(other, PTYC_E_IO, "empty file");

  path_in(other, sizeof other, dir, "missing.h5");
  EXPECT_READ_FAILS(other, PTYC_E_IO, "no such file");

  EXPECT_READ_FAILS(dir, PTYC_E_IO, "is a directory");

  {
    hid_t f = make_basic(path, MAX_N, MAX_M, H5T_IEEE_F64LE);
    H5Fclose(f);
    path_in(other, sizeof other, dir, "truncated.h5");
    copy_prefix(path, other, file_size(path) / 2);
    EXPECT_READ_FAILS(other, PTYC_E_IO, "truncated");
  }

  /* A chunk of compressed /dp overwritten with garbage: opens, but /dp cannot be read. */
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    hid_t f = new_file(path);
    double dp[MAX_N * MAX_M * MAX_M];
    fill_dp(dp, MAX_N, MAX_M);
    hsize_t d[3] = {MAX_N, MAX_M, MAX_M}, chunk[3] = {1, MAX_M, MAX_M};
    hid_t space = H5Screate_simple(3, d, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    H5Pset_deflate(dcpl, 6);
    hid_t dset = H5Dcreate2(f, "dp", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dp);
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    hsize_t pd[2] = {MAX_N, 2};
    put(f, "positions_px", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pd, zeros);
    H5Fclose(f);
    /* find chunk 0 */
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    dset = H5Dopen2(f, "dp", H5P_DEFAULT);
    haddr_t addr = 0;
    hsize_t offset[3], size = 0;
    unsigned filter_mask = 0;
    space = H5Dget_space(dset);
    herr_t found = H5Dget_chunk_info(dset, space, 0, offset, &filter_mask, &addr, &size);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(f);
    EXPECT(found >= 0 && size > 4);
    if (found >= 0 && size > 4) {
      FILE *raw = fopen(path, "r+b");
      fseek(raw, (long)addr, SEEK_SET);
      for (hsize_t i = 0; i < size; i++)
        fputc(0xA5, raw);
      fclose(raw);
      EXPECT_READ_FAILS(path, PTYC_E_IO, "cannot read /dp (file truncated or corrupt?");
    }
  }

  /* an unknown format name */
  {
    hid_t f = make_basic(path, 2, 4, H5T_IEEE_F32LE);
    H5Fclose(f);
    ptyc_dataset *ds = NULL;
    EXPECT_STATUS(ptyc_dataset_read(path, "cxi2", &ds), PTYC_E_ARG);
    EXPECT(strstr(ptyc_last_error(), "\"cxi2\"") != NULL);
    EXPECT(ds == NULL);
    ptyc_truth *truth = NULL;
    EXPECT_STATUS(ptyc_truth_read(path, &truth), PTYC_E_FORMAT);
    EXPECT(strstr(ptyc_last_error(), "no /truth/object") != NULL);
    EXPECT(truth == NULL);
  }
}

/* ---- writer ------------------------------------------------------------------------ */

/* Number of entries of `dir` whose name contains `part`. */
static int count_entries(const char *dir, const char *part) {
  int count = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    count += strstr(e->d_name, part) != NULL;
  if (d)
    closedir(d);
  return count;
}

static void test_writer(const char *dir) {
  enum { N = 5, M = 5, K = 2, H = 12, W = 13 };
  float patterns[N * M * M];
  double positions[N * 2];
  uint8_t mask[M * M];
  ptyc_c32 probe[K * M * M], truth_object[H * W], truth_probe[K * M * M];
  for (int i = 0; i < N * M * M; i++)
    patterns[i] = (float)((i * 37) % 101) + 0.25f;
  for (int i = 0; i < N * 2; i++)
    positions[i] = 0.5 * i - 1.25;
  for (int i = 0; i < M * M; i++)
    mask[i] = (i % 4) != 1;
  for (int i = 0; i < K * M * M; i++) {
    probe[i] = pt_c32(0.5f * i, -0.25f * i);
    truth_probe[i] = pt_c32(1.0f - i, 0.125f * i);
  }
  for (int i = 0; i < H * W; i++)
    truth_object[i] = pt_c32(cosf(0.1f * i), sinf(0.1f * i));

  ptyc_dataset data;
  memset(&data, 0, sizeof data);
  data.n_patterns = N;
  data.m = M;
  data.patterns = patterns;
  data.positions_px = positions;
  data.mask = mask;
  data.probe = probe;
  data.probe_modes = K;
  data.wavelength_m = 1.5e-10;
  data.detector_distance_m = 3.0;
  data.detector_pixel_size_m = 55e-6;
  ptyc_truth truth = {truth_object, H, W, truth_probe, K, M};
  ptyc_dataset_attr attrs[2] = {{"seed", 42}, {"photons", 1e6}};
  ptyc_dataset_write_args args = {&data, &truth, attrs, 2};

  char path[512];
  path_in(path, sizeof path, dir, "written.h5");
  EXPECT_OK(ptyc_dataset_write(path, &args));
  EXPECT(count_entries(dir, ".tmp.") == 0);

  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read(path, "auto", &ds));
  if (ds) {
    EXPECT(ds->n_patterns == N && ds->m == M && ds->probe_modes == K);
    EXPECT(memcmp(ds->patterns, patterns, sizeof patterns) == 0);
    EXPECT(memcmp(ds->positions_px, positions, sizeof positions) == 0);
    EXPECT(ds->mask && memcmp(ds->mask, mask, sizeof mask) == 0);
    EXPECT(ds->probe && memcmp(ds->probe, probe, sizeof probe) == 0);
    EXPECT_NEAR(ds->wavelength_m, data.wavelength_m, 0.0);
    EXPECT_NEAR(ds->detector_distance_m, data.detector_distance_m, 0.0);
    EXPECT_NEAR(ds->detector_pixel_size_m, data.detector_pixel_size_m, 0.0);
    EXPECT_NEAR(ds->object_pixel_size_m / (1.5e-10 * 3.0 / (M * 55e-6)), 1.0, 1e-12);
    ptyc_dataset_free(ds);
  }
  ptyc_truth *t = NULL;
  EXPECT_OK(ptyc_truth_read(path, &t));
  if (t) {
    EXPECT(t->obj_h == H && t->obj_w == W && t->probe_modes == K && t->m == M);
    EXPECT(memcmp(t->object, truth_object, sizeof truth_object) == 0);
    EXPECT(t->probe && memcmp(t->probe, truth_probe, sizeof truth_probe) == 0);
    ptyc_truth_free(t);
  }

  /* On disk: zero frequency at the centre, format attributes, generator attributes. */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  float disk[N * M * M];
  hid_t dset = H5Dopen2(f, "dp", H5P_DEFAULT);
  H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, disk);
  hid_t type = H5Dget_type(dset);
  EXPECT(H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4);
  H5Tclose(type);
  H5Dclose(dset);
  int centred = 1;
  for (int j = 0; j < N; j++)
    for (int y = 0; y < M; y++)
      for (int x = 0; x < M; x++)
        centred &= disk[(j * M + (y + M / 2) % M) * M + (x + M / 2) % M] ==
                   patterns[(j * M + y) * M + x];
  EXPECT(centred);
  dset = H5Dopen2(f, "probe", H5P_DEFAULT);
  type = H5Dget_type(dset);
  EXPECT(H5Tget_class(type) == H5T_COMPOUND && H5Tget_size(type) == 8);
  EXPECT(H5Tget_member_index(type, "r") == 0 && H5Tget_member_index(type, "i") == 1);
  H5Tclose(type);
  H5Dclose(dset);
  double seed = 0;
  hid_t attr = H5Aopen(f, "seed", H5P_DEFAULT);
  H5Aread(attr, H5T_NATIVE_DOUBLE, &seed);
  H5Aclose(attr);
  EXPECT_NEAR(seed, 42.0, 0.0);
  char *format = NULL;
  hid_t vstr = H5Tcopy(H5T_C_S1);
  H5Tset_size(vstr, H5T_VARIABLE);
  attr = H5Aopen(f, "format", H5P_DEFAULT);
  H5Aread(attr, vstr, &format);
  H5Aclose(attr);
  EXPECT(format && strcmp(format, "ptyc-native") == 0);
  H5free_memory(format);
  H5Tclose(vstr);
  EXPECT(H5Aexists(f, "format_version") > 0);
  EXPECT(H5Aexists(f, "object_pixel_size_m") == 0); /* zero: not written */
  H5Fclose(f);

  /* A directory that does not exist: a clean error and no temporary left behind. */
  char bad[600];
  snprintf(bad, sizeof bad, "%s/no_such_dir/x.h5", dir);
  EXPECT_STATUS(ptyc_dataset_write(bad, &args), PTYC_E_IO);
  EXPECT(strstr(ptyc_last_error(), "no_such_dir") != NULL);
  /* A clashing generator attribute fails and removes the temporary file. */
  ptyc_dataset_attr clash[1] = {{"format_version", 2}};
  ptyc_dataset_write_args clash_args = {&data, NULL, clash, 1};
  path_in(path, sizeof path, dir, "clash.h5");
  EXPECT_STATUS(ptyc_dataset_write(path, &clash_args), PTYC_E_ARG);
  EXPECT(count_entries(dir, ".tmp.") == 0);
  EXPECT(count_entries(dir, "clash.h5") == 0);
}

/* ---- main -------------------------------------------------------------------------- */

/* Removes every file of `dir`, then `dir`. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[1024];
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    remove(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

int main(void) {
  char dir[] = "/tmp/ptyc_test_dataset_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  test_dtypes(dir);
  test_layout(dir);
  test_positions(dir);
  test_probe(dir);
  test_mask(dir);
  test_errors(dir);
  test_writer(dir);
  EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
  remove_dir(dir);
  return TEST_RESULT();
}
