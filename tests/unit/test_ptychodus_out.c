/* output.ptychodus: ptyc_ptychodus_write writes a ptychodus product file. It is read
 * back here with the HDF5 API, as ptychodus reads it (root metadata, positions in
 * metres, probe and object with their pixel sizes, the loss), and then through ptyc's
 * own ptychodus reader, which must give back the positions (up to a common offset),
 * the probe and the geometry. Errors leave no file behind. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/recon_io.h"
#include "test_util.h"

#define N_POS 5
#define M 4
#define K 2
#define H 10
#define W 12
#define ITERS 3
#define PIXEL 2e-8
#define WAVELENGTH 1e-10
#define DISTANCE 2.0

static ptyc_c32 object[H * W], probe[K * M * M];
static double positions[N_POS * 2], loss[ITERS] = {3.0, 2.0, 1.5};

static ptyc_recon make_recon(void) {
  for (int i = 0; i < H * W; i++)
    object[i] = pt_c32(1.0f + 0.01f * i, -0.5f + 0.02f * (i % 7));
  for (int i = 0; i < K * M * M; i++)
    probe[i] = pt_c32((float)(i % 5), (float)(i % 3));
  for (int j = 0; j < N_POS; j++) {
    positions[2 * j] = 1.25 + j;
    positions[2 * j + 1] = 6.5 - 1.5 * j;
  }
  ptyc_recon r = {0};
  r.object = object;
  r.obj_h = H;
  r.obj_w = W;
  r.probe = probe;
  r.n_modes = K;
  r.m = M;
  r.positions_px = positions;
  r.n_positions = N_POS;
  r.loss = loss;
  r.n_iterations = ITERS;
  r.iterations = ITERS;
  snprintf(r.engine, sizeof r.engine, "lsqml");
  r.object_pixel_size_m = PIXEL;
  r.wavelength_m = WAVELENGTH;
  r.detector_distance_m = DISTANCE;
  return r;
}

static double attr_double(hid_t loc, const char *name) {
  double v = NAN;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
    fprintf(stderr, "  cannot read attribute %s\n", name);
  if (a >= 0)
    H5Aclose(a);
  return v;
}

static void attr_string(hid_t loc, const char *name, char *buf, size_t size) {
  buf[0] = '\0';
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8); /* h5py's str */
  char *text = NULL;
  if (a >= 0 && H5Aread(a, t, &text) >= 0 && text) {
    snprintf(buf, size, "%s", text);
    H5free_memory(text);
  }
  H5Tclose(t);
  if (a >= 0)
    H5Aclose(a);
}

/* Reads dataset `name` (of `count` values) in `mem_type`; returns its rank and dims. */
static int read_all(hid_t f, const char *name, hid_t mem_type, void *out, hsize_t *dims) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) {
    fprintf(stderr, "  no /%s\n", name);
    return -1;
  }
  hid_t s = H5Dget_space(d);
  int rank = H5Sget_simple_extent_ndims(s);
  H5Sget_simple_extent_dims(s, dims, NULL);
  if (H5Sget_simple_extent_npoints(s) > 0)
    H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
  H5Sclose(s);
  H5Dclose(d);
  return rank;
}

/* The file as ptychodus reads it. */
static void check_layout(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE_OK(f >= 0 ? PTYC_OK : PTYC_E_IO);
  char text[256];
  attr_string(f, "name", text, sizeof text);
  EXPECT(strcmp(text, "scan 7") == 0);
  attr_string(f, "comments", text, sizeof text);
  EXPECT(strstr(text, "ptyc") != NULL && strstr(text, "lsqml") != NULL);
  EXPECT_NEAR(attr_double(f, "detector_object_distance_m"), DISTANCE, 0.0);
  EXPECT_NEAR(attr_double(f, "probe_energy_eV"), 1.2398419843320026e-6 / WAVELENGTH, 1e-6);
  const char *zero_attrs[] = {"probe_photon_count", "exposure_time_s", "mass_attenuation_m2_kg",
                              "tomography_angle_deg"};
  for (int i = 0; i < 4; i++)
    EXPECT_NEAR(attr_double(f, zero_attrs[i]), 0.0, 0.0);

  /* positions: probe centres in metres about the object's centre */
  double x_m[N_POS], y_m[N_POS];
  long long indexes[N_POS];
  hsize_t dims[4];
  EXPECT(read_all(f, "probe_position_x_m", H5T_NATIVE_DOUBLE, x_m, dims) == 1 && dims[0] == N_POS);
  EXPECT(read_all(f, "probe_position_y_m", H5T_NATIVE_DOUBLE, y_m, dims) == 1 && dims[0] == N_POS);
  EXPECT(read_all(f, "probe_position_indexes", H5T_NATIVE_LLONG, indexes, dims) == 1);
  for (int j = 0; j < N_POS; j++) {
    EXPECT_NEAR(x_m[j], PIXEL * (positions[2 * j + 1] + M / 2.0 - W / 2.0), 1e-20);
    EXPECT_NEAR(y_m[j], PIXEL * (positions[2 * j] + M / 2.0 - H / 2.0), 1e-20);
    EXPECT(indexes[j] == j);
  }

  /* probe and object, complex64 with their pixel sizes */
  hid_t ct = H5Tcreate(H5T_COMPOUND, sizeof(ptyc_c32));
  H5Tinsert(ct, "r", 0, H5T_NATIVE_FLOAT);
  H5Tinsert(ct, "i", 4, H5T_NATIVE_FLOAT);
  static ptyc_c32 got[H * W];
  EXPECT(read_all(f, "probe", ct, got, dims) == 3 && dims[0] == K && dims[1] == M &&
         dims[2] == M);
  EXPECT(memcmp(got, probe, sizeof probe) == 0);
  EXPECT(read_all(f, "object", ct, got, dims) == 2 && dims[0] == H && dims[1] == W);
  EXPECT(memcmp(got, object, sizeof object) == 0);
  H5Tclose(ct);
  const char *images[2] = {"probe", "object"};
  for (int i = 0; i < 2; i++) {
    hid_t d = H5Dopen2(f, images[i], H5P_DEFAULT);
    EXPECT_NEAR(attr_double(d, "pixel_width_m"), PIXEL, 0.0);
    EXPECT_NEAR(attr_double(d, "pixel_height_m"), PIXEL, 0.0);
    if (i == 1) {
      EXPECT_NEAR(attr_double(d, "center_x_m"), 0.0, 0.0);
      EXPECT_NEAR(attr_double(d, "center_y_m"), 0.0, 0.0);
    }
    H5Dclose(d);
  }

  /* the loss, and a single object layer */
  double values[ITERS];
  long long epochs[ITERS];
  EXPECT(read_all(f, "loss_values", H5T_NATIVE_DOUBLE, values, dims) == 1 && dims[0] == ITERS);
  EXPECT(read_all(f, "loss_epochs", H5T_NATIVE_LLONG, epochs, dims) == 1 && dims[0] == ITERS);
  for (int i = 0; i < ITERS; i++) {
    EXPECT_NEAR(values[i], loss[i], 0.0);
    EXPECT(epochs[i] == i);
  }
  EXPECT(read_all(f, "object_layer_spacing_m", H5T_NATIVE_DOUBLE, values, dims) == 1 &&
         dims[0] == 0);
  EXPECT(read_all(f, "costs", H5T_NATIVE_DOUBLE, values, dims) == 1 && dims[0] == ITERS);
  H5Fclose(f);
}

/* The product as the second file of a ptychodus dataset, read by ptyc. */
static void check_read_back(const char *dir, const char *product) {
  char dp_path[512];
  snprintf(dp_path, sizeof dp_path, "%s/dp.h5", dir);
  float dp[N_POS * M * M];
  for (int i = 0; i < N_POS * M * M; i++)
    dp[i] = (float)(1 + i % 11);
  hid_t f = H5Fcreate(dp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[3] = {N_POS, M, M};
  hid_t s = H5Screate_simple(3, dims, NULL);
  hid_t d = H5Dcreate2(f, "dp", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dp);
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);

  ptyc_options o;
  ptyc_options_default(&o);
  snprintf(o.data.path, sizeof o.data.path, "%s", dp_path);
  snprintf(o.data.positions_path, sizeof o.data.positions_path, "%s", product);
  ptyc_dataset *ds = NULL;
  EXPECT_OK(ptyc_dataset_read_opts(&o.data, &ds));
  if (!ds)
    return;
  EXPECT(strcmp(ds->format, "ptychodus") == 0);
  EXPECT_NEAR(ds->object_pixel_size_m, PIXEL, 0.0);
  EXPECT_NEAR(ds->wavelength_m / WAVELENGTH, 1.0, 1e-12);
  EXPECT_NEAR(ds->detector_distance_m, DISTANCE, 0.0);
  double oy = ds->positions_px[0] - positions[0], ox = ds->positions_px[1] - positions[1];
  for (int j = 0; j < N_POS; j++) {
    EXPECT_NEAR(ds->positions_px[2 * j] - positions[2 * j], oy, 1e-9);
    EXPECT_NEAR(ds->positions_px[2 * j + 1] - positions[2 * j + 1], ox, 1e-9);
  }
  EXPECT(ds->probe_modes == K && ds->probe && memcmp(ds->probe, probe, sizeof probe) == 0);
  ptyc_dataset_free(ds);
}

/* No "<name>.tmp.<pid>" files left in `dir`. */
static int leftovers(const char *dir) {
  int count = 0;
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    count += strstr(e->d_name, ".tmp.") != NULL;
  if (d)
    closedir(d);
  return count;
}

int main(void) {
  char dir[] = "/tmp/ptyc_test_ptychodus_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/ptychodus_product.h5", dir);
  ptyc_recon r = make_recon();
  REQUIRE_OK(ptyc_ptychodus_write(path, &r, "scan 7"));
  EXPECT(leftovers(dir) == 0);
  check_layout(path);
  check_read_back(dir, path);

  /* errors: no pixel size, a directory that does not exist; nothing is left behind */
  ptyc_recon bad = r;
  bad.object_pixel_size_m = 0.0;
  char other[512];
  snprintf(other, sizeof other, "%s/other.h5", dir);
  EXPECT_STATUS(ptyc_ptychodus_write(other, &bad, NULL), PTYC_E_ARG);
  EXPECT(strstr(ptyc_last_error(), "object pixel size") != NULL);
  EXPECT(access(other, F_OK) != 0);
  snprintf(other, sizeof other, "%s/missing/product.h5", dir);
  EXPECT_STATUS(ptyc_ptychodus_write(other, &r, NULL), PTYC_E_IO);
  EXPECT(strstr(ptyc_last_error(), "missing/product.h5") != NULL);
  EXPECT(strchr(ptyc_last_error(), '\n') == NULL);
  EXPECT(leftovers(dir) == 0);
  EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return TEST_RESULT();
}
