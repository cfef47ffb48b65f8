/* Writes the HDF5 seed corpus of fuzz_dataset (tests/fuzz/corpus_h5/): one small valid
 * file of every kind ptyc reads and a few broken ones, each a few KB, so that the fuzzer
 * starts from inputs that reach deep into every reader. The corpus is committed; run
 * this only to regenerate it (README.md):
 *   make_seed_h5 tests/fuzz/corpus_h5
 * Written with plain HDF5 calls (not ptyc's writers) where a file must look like other
 * tools' output (CXI, ptychodus, PtychoShelves), and with ptyc's writers for its own
 * formats. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "ptyc/checkpoint.h"
#include "ptyc/dataset.h"
#include "ptyc/recon_io.h"

enum { N = 3, M = 4 };

static const char *out_dir;
static int failures;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "make_seed_h5: failed: %s\n", what);
    failures++;
  }
}

static hid_t create(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  check(file >= 0, path);
  return file;
}

/* A compact (in the object header) dataset: the smallest files. Intermediate groups
 * are created as needed. */
static void put(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                const void *data) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5Pset_layout(dcpl, H5D_COMPACT);
  hid_t dset = H5Dcreate2(loc, name, type, space, lcpl, dcpl, H5P_DEFAULT);
  check(dset >= 0 && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, name);
  H5Dclose(dset);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Sclose(space);
}

static void put_attr_double(hid_t loc, const char *name, double value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  check(attr >= 0 && H5Awrite(attr, H5T_NATIVE_DOUBLE, &value) >= 0, name);
  H5Aclose(attr);
  H5Sclose(space);
}

static void put_attr_string(hid_t loc, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, strlen(value) + 1);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  check(attr >= 0 && H5Awrite(attr, type, value) >= 0, name);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

/* {r, i} float32 compound, as h5py writes complex64. */
static hid_t complex_type(void) {
  hid_t t = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(t, "r", 0, H5T_NATIVE_FLOAT);
  H5Tinsert(t, "i", 4, H5T_NATIVE_FLOAT);
  return t;
}

static float patterns[N * M * M];
static double positions_px[N * 2], pos_y_m[N], pos_x_m[N], translation[N * 3];
static ptyc_c32 probe[M * M];
static unsigned char mask[M * M];

static void make_arrays(void) {
  for (int i = 0; i < N * M * M; i++) patterns[i] = (float)((i * 37) % 11);
  for (int j = 0; j < N; j++) {
    positions_px[2 * j] = 1.5 * j;
    positions_px[2 * j + 1] = 0.75 * j;
    pos_y_m[j] = 1e-8 * j;
    pos_x_m[j] = -0.5e-8 * j;
    translation[3 * j] = -pos_x_m[j];
    translation[3 * j + 1] = -pos_y_m[j];
    translation[3 * j + 2] = 0.0;
  }
  for (int i = 0; i < M * M; i++) {
    probe[i] = pt_c32(1.0f / (1 + i % 5), 0.1f * (i % 3));
    mask[i] = i != 5;
  }
}

static void geometry(hid_t file) {
  put_attr_double(file, "wavelength_m", 1e-10);
  put_attr_double(file, "detector_distance_m", 2.0);
  put_attr_double(file, "detector_pixel_size_m", 75e-6);
}

static void native_files(void) {
  hsize_t dp[3] = {N, M, M}, pos[2] = {N, 2}, pr[3] = {1, M, M}, mk[2] = {M, M}, vec[1] = {N};
  hid_t f = create("native_ok.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 3, dp, patterns);
  put(f, "positions_px", H5T_NATIVE_DOUBLE, 2, pos, positions_px);
  hid_t c = complex_type();
  put(f, "probe", c, 3, pr, probe);
  put(f, "mask", H5T_NATIVE_UCHAR, 2, mk, mask);
  put(f, "truth/object", c, 2, mk, probe);
  put(f, "truth/probe", c, 3, pr, probe);
  H5Tclose(c);
  put_attr_string(f, "format", "ptyc-native");
  put_attr_double(f, "format_version", 1);
  geometry(f);
  H5Fclose(f);

  unsigned short counts[N * M * M];
  for (int i = 0; i < N * M * M; i++) counts[i] = (unsigned short)patterns[i];
  f = create("native_u16_corner_metres.h5");
  put(f, "dp", H5T_NATIVE_USHORT, 3, dp, counts);
  put(f, "probe_position_y_m", H5T_NATIVE_DOUBLE, 1, vec, pos_y_m);
  put(f, "probe_position_x_m", H5T_NATIVE_DOUBLE, 1, vec, pos_x_m);
  put_attr_string(f, "dp_zero_frequency", "corner");
  put_attr_double(f, "energy_ev", 8000.0);
  put_attr_double(f, "detector_distance_m", 2.0);
  put_attr_double(f, "detector_pixel_size_m", 75e-6);
  H5Fclose(f);

  /* Broken: N patterns but N-1 positions; a NaN; a negative count; 1-D patterns. */
  hsize_t fewer[2] = {N - 1, 2};
  f = create("native_bad_count.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 3, dp, patterns);
  put(f, "positions_px", H5T_NATIVE_DOUBLE, 2, fewer, positions_px);
  H5Fclose(f);
  float bad[N * M * M];
  memcpy(bad, patterns, sizeof bad);
  bad[7] = NAN;
  bad[9] = -3.0f;
  f = create("native_nan_negative.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 3, dp, bad);
  put(f, "positions_px", H5T_NATIVE_DOUBLE, 2, pos, positions_px);
  H5Fclose(f);
  hsize_t flat[1] = {N * M * M};
  f = create("native_1d.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 1, flat, patterns);
  put(f, "positions_px", H5T_NATIVE_DOUBLE, 2, pos, positions_px);
  H5Fclose(f);
}

static void cxi_file(void) {
  hsize_t dp[3] = {N, M, M}, tr[2] = {N, 3}, mk[2] = {M, M}, one[1] = {1};
  hid_t f = create("cxi_ok.h5");
  int version = 160;
  put(f, "cxi_version", H5T_NATIVE_INT, 1, one, &version);
  put(f, "entry_1/instrument_1/detector_1/data", H5T_NATIVE_FLOAT, 3, dp, patterns);
  hid_t data_1 = H5Gcreate2(f, "entry_1/data_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  check(H5Lcreate_soft("/entry_1/instrument_1/detector_1/data", data_1, "data", H5P_DEFAULT,
                       H5P_DEFAULT) >= 0, "soft link");
  H5Gclose(data_1);
  put(f, "entry_1/sample_1/geometry_1/translation", H5T_NATIVE_DOUBLE, 2, tr, translation);
  double energy_j = 8000.0 * 1.602176634e-19, distance = 2.0, pixel = 75e-6;
  put(f, "entry_1/instrument_1/source_1/energy", H5T_NATIVE_DOUBLE, 1, one, &energy_j);
  put(f, "entry_1/instrument_1/detector_1/distance", H5T_NATIVE_DOUBLE, 1, one, &distance);
  put(f, "entry_1/instrument_1/detector_1/x_pixel_size", H5T_NATIVE_DOUBLE, 1, one, &pixel);
  put(f, "entry_1/instrument_1/detector_1/y_pixel_size", H5T_NATIVE_DOUBLE, 1, one, &pixel);
  unsigned int bits[M * M] = {0};
  bits[3] = 2;
  put(f, "entry_1/instrument_1/detector_1/mask", H5T_NATIVE_UINT, 2, mk, bits);
  hid_t c = complex_type();
  put(f, "entry_1/instrument_1/source_1/illumination", c, 2, mk, probe);
  H5Tclose(c);
  H5Fclose(f);
}

/* The two-file formats, with both files' contents in one file (the fuzz target passes
 * the file as its own second file). */
static void two_file_formats(void) {
  hsize_t dp[3] = {N, M, M}, vec[1] = {N}, pr[4] = {1, 1, M, M};
  hid_t f = create("ptychoshelves_dp_para.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 3, dp, patterns);
  put(f, "ppY", H5T_NATIVE_DOUBLE, 1, vec, pos_y_m);
  put(f, "ppX", H5T_NATIVE_DOUBLE, 1, vec, pos_x_m);
  geometry(f);
  H5Fclose(f);

  f = create("ptychodus_dp_product.h5");
  put(f, "dp", H5T_NATIVE_FLOAT, 3, dp, patterns);
  put(f, "probe_position_y_m", H5T_NATIVE_DOUBLE, 1, vec, pos_y_m);
  put(f, "probe_position_x_m", H5T_NATIVE_DOUBLE, 1, vec, pos_x_m);
  double indexes[N] = {2, 0, 1};
  put(f, "probe_position_indexes", H5T_NATIVE_DOUBLE, 1, vec, indexes);
  hid_t c = complex_type();
  put(f, "probe", c, 4, pr, probe);
  H5Tclose(c);
  hid_t dset = H5Dopen2(f, "probe", H5P_DEFAULT);
  put_attr_double(dset, "pixel_width_m", 2e-8);
  put_attr_double(dset, "pixel_height_m", 2e-8);
  H5Dclose(dset);
  put_attr_double(f, "probe_energy_eV", 8000.0);
  put_attr_double(f, "detector_object_distance_m", 2.0);
  H5Fclose(f);
}

/* ptyc's own results, written by ptyc's writers. */
static void ptyc_results(void) {
  ptyc_c32 object[6 * 7];
  for (int i = 0; i < 6 * 7; i++) object[i] = pt_c32(1.0f, 0.01f * i);
  double loss[2] = {1.0, 0.5}, times[2] = {0.1, 0.1}, peak[2] = {0.01, 0.01};
  char config[] = "reconstructor = {\n  iterations = 4;\n};\n";
  ptyc_recon r = {.object = object, .obj_h = 6, .obj_w = 7, .probe = probe, .n_modes = 1,
                  .m = M, .positions_px = positions_px, .n_positions = N, .loss = loss,
                  .iteration_time_s = times, .n_iterations = 2, .iterations = 4,
                  .config_text = config, .object_pixel_size_m = 2e-8};
  snprintf(r.engine, sizeof r.engine, "lsqml");
  char path[4096];
  snprintf(path, sizeof path, "%s/recon_ok.h5", out_dir);
  check(ptyc_recon_write(path, &r) == PTYC_OK, ptyc_last_error());
  unsigned char state[24] = {1};
  ptyc_checkpoint_info info = {.job = config, .dataset_hash = 0x0123456789abcdefull,
                               .engine_state = state, .engine_state_nbytes = sizeof state,
                               .peak_gib = peak, .threads = 2};
  snprintf(info.device, sizeof info.device, "cpu");
  snprintf(path, sizeof path, "%s/checkpoint_ok.h5", out_dir);
  check(ptyc_checkpoint_write(path, &r, &info) == PTYC_OK, ptyc_last_error());
}

/* A truncated copy and a text file. */
static void broken_bytes(void) {
  char src[4096], dst[4096];
  snprintf(src, sizeof src, "%s/native_ok.h5", out_dir);
  snprintf(dst, sizeof dst, "%s/native_truncated.h5", out_dir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  char buf[1 << 16];
  size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
  check(in && out && n > 0 && fwrite(buf, 1, n / 2, out) == n / 2, dst);
  if (in) fclose(in);
  if (out) fclose(out);
  snprintf(dst, sizeof dst, "%s/not_hdf5.txt", out_dir);
  out = fopen(dst, "w");
  check(out && fputs("data = { path = \"x.h5\"; };\n", out) >= 0, dst);
  if (out) fclose(out);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seed_h5 OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  make_arrays();
  native_files();
  cxi_file();
  two_file_formats();
  ptyc_results();
  broken_bytes();
  return failures ? 1 : 0;
}
