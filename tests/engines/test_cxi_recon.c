/* A CXI copy of a native dataset reconstructs as well as the native file: the small
 * preset is written in both layouts (the CXI copy with the HDF5 API, as other tools write
 * CXI: detector frames centred, the sample's translations in metres, energy in joules),
 * each is read back by ptyc and reconstructed by LSQML on the CPU, and the object NRMSE
 * against the truth must agree within 0.01 (and be as good as test_lsqml asks, 0.10). */
#define _POSIX_C_SOURCE 200809L

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/compare.h"
#include "ptyc/engine.h"
#include "ptyc/model.h"
#include "ptyc/simulate.h"
#include "test_util.h"

#define HC_J_M 1.9864458571489286e-25 /* h c, J m */

static void put(hid_t f, const char *name, hid_t file_type, hid_t mem_type, int rank,
                const hsize_t *dims, const void *data) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dset = H5Dcreate2(f, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (dset < 0 || H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    fprintf(stderr, "cannot write %s\n", name);
    exit(1);
  }
  H5Dclose(dset);
  H5Sclose(space);
  H5Pclose(lcpl);
}

static void put_scalar(hid_t f, const char *name, double v) {
  hsize_t one = 1;
  put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &one, &v);
}

/* The CXI 1.6 copy of `ds`. */
static void write_cxi(const char *path, const ptyc_dataset *ds) {
  int n = ds->n_patterns, m = ds->m;
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    fprintf(stderr, "cannot create %s\n", path);
    exit(1);
  }
  float *frames = malloc((size_t)n * m * m * sizeof *frames);
  for (int j = 0; j < n; j++) /* detector frames: zero frequency at the centre */
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++)
        frames[((size_t)j * m + (y + m / 2) % m) * m + (x + m / 2) % m] =
            ds->patterns[((size_t)j * m + y) * m + x];
  hsize_t dims[3] = {(hsize_t)n, (hsize_t)m, (hsize_t)m};
  put(f, "entry_1/instrument_1/detector_1/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dims,
      frames);
  H5Gclose(H5Gcreate2(f, "entry_1/data_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Lcreate_soft("/entry_1/instrument_1/detector_1/data", f, "entry_1/data_1/data", H5P_DEFAULT,
                 H5P_DEFAULT);
  double *translation = calloc((size_t)n * 3, sizeof *translation);
  for (int j = 0; j < n; j++) { /* minus the probe centre, x then y */
    double dx = ds->object_pixel_size_m;
    translation[3 * j] = -(ds->positions_px[2 * j + 1] + m / 2.0) * dx;
    translation[3 * j + 1] = -(ds->positions_px[2 * j] + m / 2.0) * dx;
  }
  hsize_t tdims[2] = {(hsize_t)n, 3};
  put(f, "entry_1/sample_1/geometry_1/translation", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, tdims,
      translation);
  put_scalar(f, "entry_1/instrument_1/source_1/energy", HC_J_M / ds->wavelength_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/distance", ds->detector_distance_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/x_pixel_size", ds->detector_pixel_size_m);
  put_scalar(f, "entry_1/instrument_1/detector_1/y_pixel_size", ds->detector_pixel_size_m);
  H5Fclose(f);
  free(frames);
  free(translation);
}

/* LSQML as test_lsqml runs it (Gaussian, batch 48, 2 modes, 50 iterations); the object
 * NRMSE against the truth, whose grid is that of `truth_positions`. */
static double reconstruct(const ptyc_dataset *ds, const ptyc_truth *truth,
                          const double *truth_positions) {
  ptyc_options opts;
  ptyc_options_default(&opts);
  opts.reconstructor.iterations = 50;
  opts.reconstructor.batch_size = 48;
  opts.probe.modes = 2;
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  ptyc_model model;
  REQUIRE_OK(ptyc_model_init(be, ds, &opts, &model));
  ptyc_engine *engine;
  REQUIRE_OK(ptyc_engine_create(&model, &opts, &engine));
  for (int it = 0; it < opts.reconstructor.iterations; it++) {
    double loss;
    REQUIRE_OK(ptyc_engine_step(engine, it, &loss));
  }
  ptyc_recon recon = {0};
  REQUIRE_OK(ptyc_model_download(&model, &recon));
  ptyc_compare_object rec = {recon.object, recon.obj_h, recon.obj_w, recon.positions_px,
                             recon.n_positions};
  ptyc_compare_object tru = {truth->object, truth->obj_h, truth->obj_w, truth_positions,
                             ds->n_patterns};
  double nrmse = 1.0;
  REQUIRE_OK(ptyc_object_nrmse(&rec, &tru, truth->probe, truth->probe_modes, truth->m, &nrmse));
  free(recon.object);
  free(recon.probe);
  free(recon.positions_px);
  ptyc_engine_free(engine);
  ptyc_model_free(&model);
  ptyc_backend_free(be);
  return nrmse;
}

int main(void) {
  char dir[] = "/tmp/ptyc_test_cxi_recon_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  ptyc_sim_params p;
  REQUIRE_OK(ptyc_sim_preset("small", &p));
  ptyc_dataset *sim;
  ptyc_truth *truth;
  REQUIRE_OK(ptyc_simulate(&p, &sim, &truth));

  char native_path[512], cxi_path[512];
  snprintf(native_path, sizeof native_path, "%s/small.h5", dir);
  snprintf(cxi_path, sizeof cxi_path, "%s/small.cxi", dir);
  ptyc_dataset_write_args args = {.data = sim, .truth = truth};
  REQUIRE_OK(ptyc_dataset_write(native_path, &args));
  write_cxi(cxi_path, sim);

  ptyc_dataset *native = NULL, *cxi = NULL;
  REQUIRE_OK(ptyc_dataset_read(native_path, "auto", &native));
  REQUIRE_OK(ptyc_dataset_read(cxi_path, "auto", &cxi));
  EXPECT(strcmp(native->format, "ptyc-native") == 0 && strcmp(cxi->format, "cxi") == 0);

  /* The truth lives on the grid of the native file's positions; the CXI copy's
   * positions differ from those by a common offset at most. */
  double nrmse_native = reconstruct(native, truth, native->positions_px);
  double nrmse_cxi = reconstruct(cxi, truth, native->positions_px);
  printf("lsqml small: object NRMSE %.4f from the native file, %.4f from its CXI copy\n",
         nrmse_native, nrmse_cxi);
  EXPECT_NEAR(nrmse_cxi, nrmse_native, 0.01);
  EXPECT_LE(nrmse_cxi, 0.10);

  ptyc_dataset_free(native);
  ptyc_dataset_free(cxi);
  ptyc_dataset_free(sim);
  ptyc_truth_free(truth);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return TEST_RESULT();
}
