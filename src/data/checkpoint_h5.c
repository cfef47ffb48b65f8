/* checkpoint.h5: a recon.h5 plus what resuming needs (include/ptyc/checkpoint.h).
 *
 * Writing, atomically:
 *   1. ptyc_recon_write() writes the recon.h5 part to "<path>.tmp.<pid>" (itself via a
 *      temporary name of its own), so the layout stays recon_h5.c's alone;
 *   2. that file is reopened and the checkpoint's own attributes and datasets added;
 *   3. its bytes are flushed to disk (fsync) and it is renamed over `path`, and the
 *      directory entry is flushed too.
 * An existing checkpoint is therefore replaced by a complete new one or not at all,
 * even if ptyc is killed or the machine loses power in between. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/h5util.h"
#include "pt_try.h"
#include "ptyc/checkpoint.h"

/* Fails with "<path>: cannot write <what> (<HDF5 detail>)". */
static ptyc_status fail_write(const char *path, const char *what) {
  char detail[256];
  pt_h5_error_detail(detail, sizeof detail);
  return ptyc_fail(PTYC_E_IO, "%s: cannot write %s%s%s%s: check free disk space and permissions",
                   path, what, detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

/* fsync() of a file or directory by name, so that a rename publishes data that is on
 * disk. Failures of fsync itself are reported; a directory that cannot be opened for
 * syncing (some file systems) is not an error. */
static ptyc_status sync_path(const char *path, int is_directory) {
  int fd = open(path, is_directory ? O_RDONLY : O_RDWR);
  if (fd < 0) {
    if (is_directory) return PTYC_OK;
    return ptyc_fail(PTYC_E_IO, "%s: cannot reopen to flush it (%s)", path, strerror(errno));
  }
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0 && !(is_directory && (err == EINVAL || err == EBADF)))
    return ptyc_fail(PTYC_E_IO, "%s: cannot flush to disk (%s): check free disk space", path,
                     strerror(err));
  return PTYC_OK;
}

/* The checkpoint's own entries, added to the open file `file`. */
static ptyc_status write_extras(const char *path, hid_t file, const ptyc_recon *recon,
                                const ptyc_checkpoint_info *info) {
  char hash[32];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)info->dataset_hash);
  if (pt_h5_write_attr_int(file, "checkpoint_version", PTYC_CHECKPOINT_VERSION) < 0 ||
      pt_h5_write_attr_string(file, "job", info->job ? info->job : "") < 0 ||
      pt_h5_write_attr_string(file, "dataset_hash", hash) < 0 ||
      pt_h5_write_attr_string(file, "device", info->device) < 0 ||
      pt_h5_write_attr_int(file, "threads", info->threads) < 0)
    return fail_write(path, "the checkpoint attributes");
  if (recon->n_iterations > 0 && info->peak_gib) {
    hsize_t dims[1] = {(hsize_t)recon->n_iterations};
    if (pt_h5_write_dataset(file, "peak_gib", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dims,
                            info->peak_gib, 0) < 0)
      return fail_write(path, "/peak_gib");
  }
  if (info->engine_state_nbytes > 0) {
    if (info->engine_state == NULL)
      return ptyc_fail(PTYC_E_ARG, "%s: engine state of %zu bytes but no data", path,
                       info->engine_state_nbytes);
    hsize_t dims[1] = {(hsize_t)info->engine_state_nbytes};
    if (pt_h5_write_dataset(file, "engine_state", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims,
                            info->engine_state, 0) < 0)
      return fail_write(path, "/engine_state");
  }
  return PTYC_OK;
}

ptyc_status ptyc_checkpoint_write(const char *path, const ptyc_recon *recon,
                                  const ptyc_checkpoint_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  char stage[4096 + 64], dir[4096 + 64];
  int staged = 0;

  if (!path || !recon || !info)
    return ptyc_fail(PTYC_E_ARG, "ptyc_checkpoint_write: NULL argument");
  PT_TRY(pt_tmp_path(path, stage, sizeof stage));
  pt_h5_quiet();

  PT_CHECK(ptyc_recon_write(stage, recon)); /* 1. the recon.h5 part, complete */
  staged = 1;
  file = H5Fopen(stage, H5F_ACC_RDWR, H5P_DEFAULT); /* 2. the checkpoint's own part */
  if (file < 0)
    PT_CHECK(fail_write(stage, "the file (reopening it failed)"));
  PT_CHECK(write_extras(path, file, recon, info));
  herr_t closed = H5Fclose(file);
  file = H5I_INVALID_HID;
  if (closed < 0)
    PT_CHECK(fail_write(path, "the file (closing it failed)"));

  PT_CHECK(sync_path(stage, 0)); /* 3. on disk, then published */
  if (rename(stage, path) != 0)
    PT_FAIL(PTYC_E_IO, "%s: cannot rename %s to it (%s)", path, stage, strerror(errno));
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  return sync_path(dir, 1);
fail:
  pt_h5_close_file(&file);
  if (staged)
    remove(stage);
  return st;
}

/* ---- reading ----------------------------------------------------------------------- */

/* Reads a 1-D dataset of `expect` values (or any length if expect < 0) of `mem_type`
 * (element size `elem`) into a new array; *n receives the length. */
static ptyc_status read_vector(const char *path, hid_t file, const char *name, hid_t mem_type,
                               size_t elem, long long expect, void **out, size_t *n) {
  ptyc_status st = PTYC_OK;
  hid_t dset = H5I_INVALID_HID;
  hsize_t dims[PT_H5_MAX_RANK];
  int rank = 0;
  char shape[128], dtype[32];
  *out = NULL;
  *n = 0;
  PT_CHECK(pt_h5_open_dataset(path, file, name, &dset, &rank, dims));
  if (rank != 1 || dims[0] > (hsize_t)INT_MAX ||
      (expect >= 0 && dims[0] != (hsize_t)expect)) {
    pt_h5_format_shape(shape, sizeof shape, rank, dims);
    if (expect >= 0)
      PT_FAIL(PTYC_E_FORMAT, "%s: /%s has the shape %s; expected (%lld,)", path, name, shape,
              expect);
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has the shape %s; expected one dimension", path, name,
            shape);
  }
  H5T_class_t cls = pt_h5_dataset_class(dset, dtype, sizeof dtype);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s has the unsupported type %s", path, name, dtype);
  if (dims[0] > 0) {
    *out = malloc((size_t)dims[0] * elem);
    if (!*out)
      PT_FAIL(PTYC_E_NOMEM, "%s: out of memory reading /%s", path, name);
    if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
  }
  *n = (size_t)dims[0];
fail:
  if (st != PTYC_OK) {
    free(*out);
    *out = NULL;
  }
  pt_h5_close_dataset(&dset);
  return st;
}

static ptyc_status read_extras(const char *path, hid_t file, const ptyc_recon *recon,
                               ptyc_checkpoint_info *info) {
  double version = 0.0;
  char hash[32] = "";
  size_t n = 0;
  if (pt_h5_attr_double(file, "checkpoint_version", &version) != 1)
    return ptyc_fail(PTYC_E_FORMAT, "%s: not a ptyc checkpoint (no checkpoint_version "
                                    "attribute; a recon.h5 cannot be resumed from)", path);
  if (version != PTYC_CHECKPOINT_VERSION)
    return ptyc_fail(PTYC_E_FORMAT, "%s: checkpoint version %g; this ptyc reads version %d: "
                                    "finish the run with the ptyc that wrote it", path, version,
                     PTYC_CHECKPOINT_VERSION);
  double done = -1.0;
  if (pt_h5_attr_double(file, "n_iterations_done", &done) != 1 ||
      done != (double)recon->n_iterations)
    return ptyc_fail(PTYC_E_FORMAT, "%s: the iteration counter (n_iterations_done) is missing "
                                    "or disagrees with /loss (%d entries)", path,
                     recon->n_iterations);
  if (pt_h5_attr_string_alloc(file, "job", &info->job) != 1)
    return ptyc_fail(PTYC_E_FORMAT, "%s: no job attribute (string)", path);
  char *end = NULL;
  int hash_ok = pt_h5_attr_string(file, "dataset_hash", hash, sizeof hash) == 1 &&
                strlen(hash) == 16 && strspn(hash, "0123456789abcdef") == 16;
  if (!hash_ok)
    return ptyc_fail(PTYC_E_FORMAT, "%s: no dataset_hash attribute of 16 hex digits", path);
  info->dataset_hash = strtoull(hash, &end, 16);
  double threads = 0.0;
  if (pt_h5_attr_double(file, "threads", &threads) == 1 && threads >= 0 && threads <= INT_MAX)
    info->threads = (int)threads;
  pt_h5_attr_string(file, "device", info->device, sizeof info->device);

  void *values = NULL;
  if (pt_h5_dataset_exists(file, "peak_gib") == 1) {
    PT_TRY(read_vector(path, file, "peak_gib", H5T_NATIVE_DOUBLE, sizeof(double),
                       recon->n_iterations, &values, &n));
    info->peak_gib = values;
  }
  if (pt_h5_dataset_exists(file, "engine_state") == 1)
    PT_TRY(read_vector(path, file, "engine_state", H5T_NATIVE_UINT8, 1, -1,
                       &info->engine_state, &info->engine_state_nbytes));
  return PTYC_OK;
}

ptyc_status ptyc_checkpoint_read(const char *path, ptyc_recon **recon,
                                 ptyc_checkpoint_info *info) {
  ptyc_status st = PTYC_OK;
  hid_t file = H5I_INVALID_HID;
  if (!path || !recon || !info)
    return ptyc_fail(PTYC_E_ARG, "ptyc_checkpoint_read: NULL argument");
  *recon = NULL;
  memset(info, 0, sizeof *info);
  PT_CHECK(ptyc_recon_read(path, recon));
  PT_CHECK(pt_h5_open_read(path, &file));
  PT_CHECK(read_extras(path, file, *recon, info));
  pt_h5_close_file(&file);
  return PTYC_OK;
fail:
  pt_h5_close_file(&file);
  ptyc_recon_free(*recon);
  *recon = NULL;
  ptyc_checkpoint_info_free(info);
  return st;
}

void ptyc_checkpoint_info_free(ptyc_checkpoint_info *info) {
  if (!info)
    return;
  free(info->job);
  free(info->engine_state);
  free(info->peak_gib);
  memset(info, 0, sizeof *info);
}
