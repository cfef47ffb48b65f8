/* Small HDF5 helpers shared by the readers and writers of src/data/ (internal).
 *
 * src/data/ is the only module that includes hdf5.h. Every helper here either
 * returns a ptyc_status with a one-line message already recorded by ptyc_fail(), or
 * is a plain query (returns 1 / 0 / -1) that leaves the wording to its caller, who
 * knows the file and the context.
 *
 * Handles: every helper closes what it opens. Callers keep hid_t values initialised
 * to H5I_INVALID_HID and release them with pt_h5_close_*, which ignore invalid ids. */
#ifndef PT_DATA_H5UTIL_H
#define PT_DATA_H5UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "ptyc/status.h"
#include "ptyc/types.h"

/* Longest dataset rank the helpers look at (ptyc's arrays have rank <= 3). */
#define PT_H5_MAX_RANK 8

/* Photon energy (eV) to wavelength (m): lambda = h c / E, with h c / e exact in SI. */
#define PT_HC_EV_M 1.2398419843320026e-6

/* Turns HDF5's automatic error printing off: ptyc reports errors itself. Called at
 * the top of every public entry point of src/data/ (cheap and idempotent). */
void pt_h5_quiet(void);

/* The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."),
 * or "" when the stack is empty. Writes at most `size` bytes including the NUL. */
void pt_h5_error_detail(char *buf, size_t size);

/* NULL-safe closers for ids that may be H5I_INVALID_HID; they reset *id. */
void pt_h5_close_file(hid_t *id);
void pt_h5_close_dataset(hid_t *id);
void pt_h5_close_space(hid_t *id);
void pt_h5_close_type(hid_t *id);
void pt_h5_close_group(hid_t *id);

/* Opens `path` read-only. Fails with PTYC_E_IO and a message that tells a missing
 * file, an unreadable one, a non-HDF5 file and a truncated HDF5 file apart. */
ptyc_status pt_h5_open_read(const char *path, hid_t *file);

/* 1 if `name` (e.g. "dp" or "truth/object") names a dataset in `loc`, 0 if nothing
 * exists there, -1 if something that is not a dataset (a group) does. Intermediate
 * groups are checked one by one, so a missing "truth" gives 0, not an error. */
int pt_h5_dataset_exists(hid_t loc, const char *name);

/* Shape of an open dataset: rank and dims (at most PT_H5_MAX_RANK). -1 on failure. */
int pt_h5_dataset_shape(hid_t dset, hsize_t dims[PT_H5_MAX_RANK]);

/* "(150, 64, 64)" for messages. */
void pt_h5_format_shape(char *buf, size_t size, int rank, const hsize_t *dims);

/* A short name of a file datatype for messages: "float32", "uint16", "int8",
 * "complex64", "complex128", "bool", "enum", "string", "compound", ... */
void pt_h5_type_name(hid_t type, char *buf, size_t size);

/* Whether `type` is a compound of two floating-point fields named {r, i}, {re, im} or
 * {real, imag} (h5py and most tools write complex numbers so). On 1, the field names
 * are copied to re_name / im_name (each at least 16 bytes) and *size_each receives the
 * byte size of one field (4 = complex64, 8 = complex128). */
int pt_h5_is_complex(hid_t type, char *re_name, char *im_name, size_t *size_each);

/* A memory compound type {re_name, im_name} of two floats laid out as ptyc_c32, so
 * that H5Dread converts any complex layout found by pt_h5_is_complex into ptyc_c32.
 * Returns a type id to close, or H5I_INVALID_HID. */
hid_t pt_h5_c32_memtype(const char *re_name, const char *im_name);

/* The file type ptyc writes for complex64: compound {r: float32 LE, i: float32 LE},
 * which h5py reads as numpy complex64. Returns a type id to close. */
hid_t pt_h5_c32_filetype(void);

/* Reads a numeric attribute of `loc` (scalar or one-element array, integer or float)
 * as a double. Returns 1 if read, 0 if absent, -1 if present but not a single number. */
int pt_h5_attr_double(hid_t loc, const char *name, double *value);

/* Reads a string attribute (fixed or variable length, scalar or one element) into
 * buf (NUL-terminated, truncated to size-1). Returns 1, 0 (absent) or -1 (not a
 * string). */
int pt_h5_attr_string(hid_t loc, const char *name, char *buf, size_t size);

/* Same, allocating the whole string (*out, free() it). Returns 1, 0 or -1 (also on
 * out-of-memory). */
int pt_h5_attr_string_alloc(hid_t loc, const char *name, char **out);

/* ---- reading ----------------------------------------------------------------------- */

/* Fails (PTYC_E_IO) with "<path>: cannot read /<name> (file truncated or corrupt?: <HDF5's
 * own words>)". */
ptyc_status pt_h5_fail_read(const char *path, const char *name);

/* *out = a * b * c and 1, or 0 if the product overflows size_t. */
int pt_checked_product(size_t a, size_t b, size_t c, size_t *out);

/* Opens dataset `name` of `file` and reads its shape; fails if `name` is a group or
 * cannot be read. Absent datasets are the caller's business: ask
 * pt_h5_dataset_exists first. The caller closes *dset. */
ptyc_status pt_h5_open_dataset(const char *path, hid_t file, const char *name, hid_t *dset,
                               int *rank, hsize_t dims[PT_H5_MAX_RANK]);

/* The class of a dataset's type, and its name for messages (pt_h5_type_name). */
H5T_class_t pt_h5_dataset_class(hid_t dset, char *name, size_t size);

/* Reads a whole dataset of `count` values into a new ptyc_c32 array (*out, free()).
 * Complex compounds of pt_h5_is_complex (32 or 64-bit) are converted by HDF5; a real
 * float or integer array is taken as the real part. `dtype` receives the file type's
 * name. Fails with PTYC_E_FORMAT for any other type. */
ptyc_status pt_h5_read_c32(const char *path, hid_t dset, const char *name, size_t count,
                           ptyc_c32 **out, char *dtype, size_t dtype_size);

/* ---- writing ----------------------------------------------------------------------- */

/* Scalar attribute writers. Strings are variable-length UTF-8 (h5py reads them as
 * str); integers are int64; doubles are float64. Return 0 on success, -1 on failure. */
int pt_h5_write_attr_string(hid_t loc, const char *name, const char *value);
int pt_h5_write_attr_int(hid_t loc, const char *name, long long value);
int pt_h5_write_attr_double(hid_t loc, const char *name, double value);

/* Creates dataset `name` in `loc` with the given file type and shape and writes
 * `data` (in `mem_type`) to it. If `chunk_rows` > 0 the dataset is chunked by that
 * many entries along the first axis and compressed (shuffle + deflate level 1) when
 * the deflate filter is available; otherwise it is contiguous. 0 / -1. */
int pt_h5_write_dataset(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                        int rank, const hsize_t *dims, const void *data, hsize_t chunk_rows);

/* "<path>.tmp.<pid>": the name atomic writers write to before renaming. */
ptyc_status pt_tmp_path(const char *path, char *buf, size_t size);

/* Fails with "<path>: cannot write <what> (<HDF5 detail>): check free disk space and
 * permissions". */
ptyc_status pt_h5_fail_write(const char *path, const char *what);

/* An HDF5 file written atomically: created as "<path>.tmp.<pid>" and renamed over `path`
 * by pt_h5_atomic_commit only when complete, so no reader ever sees it half-written.
 *   pt_h5_atomic w;
 *   PT_TRY(pt_h5_atomic_create(path, &w));   ... write into w.file ...
 *   st = pt_h5_atomic_commit(&w);  (on any earlier failure: pt_h5_atomic_abort(&w)) */
typedef struct pt_h5_atomic {
  hid_t file;
  const char *path;
  char tmp[4096 + 64];
} pt_h5_atomic;
ptyc_status pt_h5_atomic_create(const char *path, pt_h5_atomic *w);
ptyc_status pt_h5_atomic_commit(pt_h5_atomic *w); /* closes, renames; aborts on failure */
void pt_h5_atomic_abort(pt_h5_atomic *w);         /* closes and removes the temporary file */

/* Moves the zero frequency of an M x M plane between the two layouts, in place
 * (`tmp` holds M*M elements).
 *   to_corner (ifftshift): out[(i - M/2) mod M] = in[i] on each axis, so the element at
 *                          index M/2 (the centre) lands at 0;
 *   to_centre (fftshift):  out[(i + M/2) mod M] = in[i], the inverse.
 * Correct for even and odd M. */
void pt_shift_plane_f32(float *plane, float *tmp, int m, int to_corner);
void pt_shift_plane_u8(uint8_t *plane, uint8_t *tmp, int m, int to_corner);

#endif
