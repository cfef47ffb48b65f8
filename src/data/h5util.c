/* Small HDF5 helpers shared by src/data/ (see h5util.h). */
#define _POSIX_C_SOURCE 200809L

#include "data/h5util.h"

#include "pt_try.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void pt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- error stack ------------------------------------------------------------------- */

typedef struct detail_buf {
  char *buf;
  size_t size;
} detail_buf;

/* Walking upward, entry 0 is the most specific error: the one raised deepest inside
 * the library, whose text says what was actually wrong. */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *err, void *client) {
  detail_buf *d = (detail_buf *)client;
  if (n == 0 && err->desc)
    snprintf(d->buf, d->size, "%s", err->desc);
  return 0;
}

void pt_h5_error_detail(char *buf, size_t size) {
  if (size == 0)
    return;
  buf[0] = '\0';
  detail_buf d = {buf, size};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &d);
}

/* ---- closing ----------------------------------------------------------------------- */

void pt_h5_close_file(hid_t *id) {
  if (*id >= 0)
    H5Fclose(*id);
  *id = H5I_INVALID_HID;
}
void pt_h5_close_dataset(hid_t *id) {
  if (*id >= 0)
    H5Dclose(*id);
  *id = H5I_INVALID_HID;
}
void pt_h5_close_space(hid_t *id) {
  if (*id >= 0)
    H5Sclose(*id);
  *id = H5I_INVALID_HID;
}
void pt_h5_close_type(hid_t *id) {
  if (*id >= 0)
    H5Tclose(*id);
  *id = H5I_INVALID_HID;
}
void pt_h5_close_group(hid_t *id) {
  if (*id >= 0)
    H5Gclose(*id);
  *id = H5I_INVALID_HID;
}

/* ---- opening ----------------------------------------------------------------------- */

ptyc_status pt_h5_open_read(const char *path, hid_t *file) {
  *file = H5I_INVALID_HID;
  struct stat sb;
  if (stat(path, &sb) != 0) {
    if (errno == ENOENT)
      return ptyc_fail(PTYC_E_IO, "%s: no such file", path);
    return ptyc_fail(PTYC_E_IO, "%s: cannot open (%s)", path, strerror(errno));
  }
  if (S_ISDIR(sb.st_mode))
    return ptyc_fail(PTYC_E_IO, "%s: is a directory, not an HDF5 file", path);
  FILE *probe = fopen(path, "rb");
  if (!probe)
    return ptyc_fail(PTYC_E_IO, "%s: cannot open (%s)", path, strerror(errno));
  fclose(probe);
  if (sb.st_size == 0)
    return ptyc_fail(PTYC_E_IO, "%s: empty file (0 bytes), not an HDF5 file", path);

  pt_h5_quiet();
#if H5_VERSION_GE(1, 12, 0)
  htri_t is_hdf5 = H5Fis_accessible(path, H5P_DEFAULT);
#else
  htri_t is_hdf5 = H5Fis_hdf5(path);
#endif
  if (is_hdf5 <= 0)
    return ptyc_fail(PTYC_E_IO,
                     "%s: not an HDF5 file (no HDF5 signature): give a ptyc-native .h5 file",
                     path);

  /* STRONG close degree: H5Fclose closes every object still open in the file. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0)
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  hid_t id = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
  char detail[256];
  pt_h5_error_detail(detail, sizeof detail);
  if (fapl >= 0)
    H5Pclose(fapl);
  if (id < 0)
    return ptyc_fail(PTYC_E_IO,
                     "%s: not an HDF5 file or truncated (cannot open%s%s): copy it again "
                     "or regenerate it",
                     path, detail[0] ? ": " : "", detail);
  *file = id;
  return PTYC_OK;
}

/* ---- structure queries ------------------------------------------------------------- */

int pt_h5_dataset_exists(hid_t loc, const char *name) {
  char partial[512];
  size_t len = strlen(name);
  if (len == 0 || len >= sizeof partial)
    return 0;
  /* Check "a", "a/b", "a/b/c" in turn: H5Lexists fails (rather than answering 0) when
   * an intermediate group is missing. */
  for (size_t i = 0; i <= len; i++) {
    if (name[i] != '/' && name[i] != '\0')
      continue;
    memcpy(partial, name, i);
    partial[i] = '\0';
    if (i == 0)
      continue;
    if (H5Lexists(loc, partial, H5P_DEFAULT) <= 0)
      return 0;
  }
  hid_t obj = H5Oopen(loc, name, H5P_DEFAULT);
  if (obj < 0)
    return 0; /* a dangling soft or external link */
  H5I_type_t kind = H5Iget_type(obj);
  H5Oclose(obj);
  return kind == H5I_DATASET ? 1 : -1;
}

int pt_h5_dataset_shape(hid_t dset, hsize_t dims[PT_H5_MAX_RANK]) {
  hid_t space = H5Dget_space(dset);
  if (space < 0)
    return -1;
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank > PT_H5_MAX_RANK)
    rank = -1;
  else if (rank >= 0 && H5Sget_simple_extent_dims(space, dims, NULL) < 0)
    rank = -1;
  H5Sclose(space);
  return rank;
}

void pt_h5_format_shape(char *buf, size_t size, int rank, const hsize_t *dims) {
  size_t used = 0;
  used += (size_t)snprintf(buf, size, "(");
  for (int d = 0; d < rank && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%llu", d ? ", " : "",
                             (unsigned long long)dims[d]);
  if (used < size)
    snprintf(buf + used, size - used, rank == 1 ? ",)" : ")");
}

/* Field-name pairs that mean (real, imaginary). */
static const char *const complex_names[][2] = {{"r", "i"}, {"re", "im"}, {"real", "imag"}};

/* Whether compound `type` is two IEEE floats of `size` (4 or 8) bytes at offsets 0 and
 * `size` (either order), filling exactly 2 * size bytes. */
static int complex_layout_ok(hid_t type, size_t size) {
  if ((size != 4 && size != 8) || H5Tget_size(type) != 2 * size)
    return 0;
  size_t offsets[2] = {H5Tget_member_offset(type, 0), H5Tget_member_offset(type, 1)};
  if (!((offsets[0] == 0 && offsets[1] == size) || (offsets[0] == size && offsets[1] == 0)))
    return 0;
  int ok = 1;
  for (unsigned k = 0; k < 2 && ok; k++) {
    hid_t mt = H5Tget_member_type(type, k);
    hid_t le = size == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
    hid_t be = size == 4 ? H5T_IEEE_F32BE : H5T_IEEE_F64BE;
    ok = mt >= 0 && (H5Tequal(mt, le) > 0 || H5Tequal(mt, be) > 0);
    if (mt >= 0)
      H5Tclose(mt);
  }
  return ok;
}

int pt_h5_is_complex(hid_t type, char *re_name, char *im_name, size_t *size_each) {
  if (H5Tget_class(type) != H5T_COMPOUND || H5Tget_nmembers(type) != 2)
    return 0;
  char *names[2] = {NULL, NULL};
  size_t sizes[2] = {0, 0};
  int floats = 1;
  for (unsigned k = 0; k < 2; k++) {
    names[k] = H5Tget_member_name(type, k);
    hid_t mt = H5Tget_member_type(type, k);
    if (mt < 0 || H5Tget_class(mt) != H5T_FLOAT)
      floats = 0;
    else
      sizes[k] = H5Tget_size(mt);
    if (mt >= 0)
      H5Tclose(mt);
  }
  /* A corrupt compound (members overlapping or reaching past its end, odd float
   * layouts) crashes libhdf5 1.10's conversion (seen by tests/fuzz): accept only the
   * layouts tools write, two IEEE floats of 4 or 8 bytes side by side. */
  if (floats && !complex_layout_ok(type, sizes[0]))
    floats = 0;
  int found = 0;
  if (floats && names[0] && names[1] && sizes[0] == sizes[1]) {
    for (size_t p = 0; p < sizeof complex_names / sizeof complex_names[0] && !found; p++) {
      for (int order = 0; order < 2 && !found; order++) {
        if (strcmp(names[order], complex_names[p][0]) == 0 &&
            strcmp(names[1 - order], complex_names[p][1]) == 0) {
          snprintf(re_name, 16, "%s", complex_names[p][0]);
          snprintf(im_name, 16, "%s", complex_names[p][1]);
          *size_each = sizes[0];
          found = 1;
        }
      }
    }
  }
  for (int k = 0; k < 2; k++)
    if (names[k])
      H5free_memory(names[k]);
  return found;
}

/* h5py's bool: an enum of two members named FALSE and TRUE. */
static int is_bool_enum(hid_t type) {
  if (H5Tget_nmembers(type) != 2)
    return 0;
  char *first = H5Tget_member_name(type, 0), *second = H5Tget_member_name(type, 1);
  int is_bool = first && second && strcmp(first, "FALSE") == 0 && strcmp(second, "TRUE") == 0;
  if (first)
    H5free_memory(first);
  if (second)
    H5free_memory(second);
  return is_bool;
}

void pt_h5_type_name(hid_t type, char *buf, size_t size) {
  char re[16], im[16];
  size_t each = 0;
  size_t nbytes = H5Tget_size(type);
  switch (H5Tget_class(type)) {
  case H5T_INTEGER:
    snprintf(buf, size, "%s%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int",
             8 * nbytes);
    break;
  case H5T_FLOAT:
    snprintf(buf, size, "float%zu", 8 * nbytes);
    break;
  case H5T_STRING:
    snprintf(buf, size, "string");
    break;
  case H5T_ENUM:
    snprintf(buf, size, "%s", is_bool_enum(type) ? "bool" : "enum");
    break;
  case H5T_COMPOUND:
    if (pt_h5_is_complex(type, re, im, &each))
      snprintf(buf, size, "complex%zu", 16 * each);
    else
      snprintf(buf, size, "compound");
    break;
  case H5T_BITFIELD:
    snprintf(buf, size, "bitfield");
    break;
  case H5T_OPAQUE:
    snprintf(buf, size, "opaque");
    break;
  case H5T_ARRAY:
    snprintf(buf, size, "array");
    break;
  case H5T_VLEN:
    snprintf(buf, size, "vlen");
    break;
  case H5T_REFERENCE:
    snprintf(buf, size, "reference");
    break;
  default:
    snprintf(buf, size, "unknown type");
    break;
  }
}

hid_t pt_h5_c32_memtype(const char *re_name, const char *im_name) {
  hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ptyc_c32));
  if (t < 0)
    return H5I_INVALID_HID;
  if (H5Tinsert(t, re_name, offsetof(ptyc_c32, re), H5T_NATIVE_FLOAT) < 0 ||
      H5Tinsert(t, im_name, offsetof(ptyc_c32, im), H5T_NATIVE_FLOAT) < 0) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

hid_t pt_h5_c32_filetype(void) {
  hid_t t = H5Tcreate(H5T_COMPOUND, 8);
  if (t < 0)
    return H5I_INVALID_HID;
  if (H5Tinsert(t, "r", 0, H5T_IEEE_F32LE) < 0 || H5Tinsert(t, "i", 4, H5T_IEEE_F32LE) < 0) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

/* ---- attributes -------------------------------------------------------------------- */

/* Opens attribute `name` of `loc` if it exists and holds exactly one element: 1 and
 * *attr set; 0 if absent; -1 if present with another element count. */
static int open_single_attr(hid_t loc, const char *name, hid_t *attr) {
  *attr = H5I_INVALID_HID;
  if (H5Aexists(loc, name) <= 0)
    return 0;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0)
    return -1;
  hid_t space = H5Aget_space(a);
  hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  if (space >= 0)
    H5Sclose(space);
  if (npoints != 1) {
    H5Aclose(a);
    return -1;
  }
  *attr = a;
  return 1;
}

int pt_h5_attr_double(hid_t loc, const char *name, double *value) {
  hid_t attr;
  int found = open_single_attr(loc, name, &attr);
  if (found <= 0)
    return found;
  int result = -1;
  hid_t type = H5Aget_type(attr);
  H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && H5Aread(attr, H5T_NATIVE_DOUBLE, value) >= 0)
    result = 1;
  if (type >= 0)
    H5Tclose(type);
  H5Aclose(attr);
  return result;
}

int pt_h5_attr_string_alloc(hid_t loc, const char *name, char **out) {
  *out = NULL;
  hid_t attr;
  int found = open_single_attr(loc, name, &attr);
  if (found <= 0)
    return found;
  int result = -1;
  hid_t mem = H5I_INVALID_HID;
  hid_t type = H5Aget_type(attr);
  if (type < 0 || H5Tget_class(type) != H5T_STRING)
    goto done;
  mem = H5Tcopy(H5T_C_S1);
  if (mem < 0)
    goto done;
  H5Tset_cset(mem, H5Tget_cset(type));
  if (H5Tis_variable_str(type) > 0) {
    char *text = NULL;
    if (H5Tset_size(mem, H5T_VARIABLE) < 0 || H5Aread(attr, mem, &text) < 0)
      goto done;
    *out = strdup(text ? text : "");
    if (text)
      H5free_memory(text);
  } else {
    /* Fixed length: read the raw bytes (NUL- or space-padded) and terminate them. */
    size_t n = H5Tget_size(type);
    char *text = malloc(n + 1);
    if (!text)
      goto done;
    if (H5Tset_size(mem, n) < 0 || H5Tset_strpad(mem, H5T_STR_NULLPAD) < 0 ||
        H5Aread(attr, mem, text) < 0) {
      free(text);
      goto done;
    }
    text[n] = '\0';
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == ' ')
      text[--len] = '\0';
    *out = text;
  }
  if (*out)
    result = 1;
done:
  if (mem >= 0)
    H5Tclose(mem);
  if (type >= 0)
    H5Tclose(type);
  H5Aclose(attr);
  return result;
}

int pt_h5_attr_string(hid_t loc, const char *name, char *buf, size_t size) {
  char *text = NULL;
  int found = pt_h5_attr_string_alloc(loc, name, &text);
  if (found == 1 && size > 0)
    snprintf(buf, size, "%s", text);
  free(text);
  return found;
}

/* Creates a scalar attribute and writes one value; 0 / -1. */
static int write_scalar_attr(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                             const void *value) {
  int result = -1;
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5I_INVALID_HID;
  if (space < 0)
    return -1;
  attr = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr >= 0 && H5Awrite(attr, mem_type, value) >= 0)
    result = 0;
  if (attr >= 0 && H5Aclose(attr) < 0)
    result = -1;
  H5Sclose(space);
  return result;
}

int pt_h5_write_attr_string(hid_t loc, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type < 0)
    return -1;
  int result = -1;
  if (H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0) {
    const char *text = value ? value : "";
    result = write_scalar_attr(loc, name, type, type, &text);
  }
  H5Tclose(type);
  return result;
}

int pt_h5_write_attr_int(hid_t loc, const char *name, long long value) {
  return write_scalar_attr(loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value);
}

int pt_h5_write_attr_double(hid_t loc, const char *name, double value) {
  return write_scalar_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

/* ---- datasets ---------------------------------------------------------------------- */

int pt_h5_write_dataset(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                        int rank, const hsize_t *dims, const void *data, hsize_t chunk_rows) {
  int result = -1;
  hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
  hsize_t npoints = 1;
  for (int d = 0; d < rank; d++)
    npoints *= dims[d];

  space = H5Screate_simple(rank, dims, NULL);
  dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (space < 0 || dcpl < 0)
    goto done;
  if (chunk_rows > 0 && npoints > 0 && rank <= PT_H5_MAX_RANK) {
    hsize_t chunk[PT_H5_MAX_RANK];
    for (int d = 0; d < rank; d++)
      chunk[d] = dims[d];
    chunk[0] = chunk_rows < dims[0] ? chunk_rows : dims[0];
    if (H5Pset_chunk(dcpl, rank, chunk) < 0)
      goto done;
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
      if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 1) < 0)
        goto done;
    }
  }
  dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0)
    goto done;
  if (npoints > 0 && H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    goto done;
  result = 0;
done:
  if (dset >= 0 && H5Dclose(dset) < 0)
    result = -1;
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (space >= 0)
    H5Sclose(space);
  return result;
}

/* ---- reading whole datasets -------------------------------------------------------- */

/* Fails with "<path>: cannot read /<name> (file truncated or corrupt?: <HDF5 detail>)". */
ptyc_status pt_h5_fail_read(const char *path, const char *name) {
  char detail[256];
  pt_h5_error_detail(detail, sizeof detail);
  return ptyc_fail(PTYC_E_IO, "%s: cannot read /%s (file truncated or corrupt?%s%s)", path, name,
                   detail[0] ? ": " : "", detail);
}

/* *out = a * b * c, or 0 if that overflows size_t. */
int pt_checked_product(size_t a, size_t b, size_t c, size_t *out) {
  if (b != 0 && a > SIZE_MAX / b)
    return 0;
  if (c != 0 && a * b > SIZE_MAX / c)
    return 0;
  *out = a * b * c;
  return 1;
}

/* Checks that `name` is a dataset (fails if it is a group) and opens it with its
 * shape. Absent datasets are the caller's business: call pt_h5_dataset_exists first. */
/* Whether a compact dataset's stored bytes cover its shape. libhdf5 1.10 reads a compact
 * dataset whose stored size is smaller than its shape from a NULL buffer and crashes
 * (seen by tests/fuzz; h5dump crashes on such files too), so such a corrupt file is
 * refused before any read. Other layouts, and variable-length types, pass. */
static int compact_storage_complete(hid_t dset, unsigned long long *have,
                                    unsigned long long *need) {
  int complete = 1;
  hid_t dcpl = H5Dget_create_plist(dset);
  hid_t space = H5Dget_space(dset), type = H5Dget_type(dset);
  if (dcpl >= 0 && space >= 0 && type >= 0 && H5Pget_layout(dcpl) == H5D_COMPACT &&
      H5Tget_class(type) != H5T_VLEN && H5Tis_variable_str(type) <= 0) {
    hssize_t points = H5Sget_simple_extent_npoints(space);
    *need = points > 0 ? (unsigned long long)points * H5Tget_size(type) : 0;
    *have = H5Dget_storage_size(dset);
    complete = *have >= *need;
  }
  if (dcpl >= 0)
    H5Pclose(dcpl);
  pt_h5_close_space(&space);
  pt_h5_close_type(&type);
  return complete;
}

ptyc_status pt_h5_open_dataset(const char *path, hid_t file, const char *name, hid_t *dset,
                               int *rank, hsize_t dims[PT_H5_MAX_RANK]) {
  *dset = H5I_INVALID_HID;
  if (pt_h5_dataset_exists(file, name) < 0)
    return ptyc_fail(PTYC_E_FORMAT, "%s: /%s is a group, not a dataset", path, name);
  hid_t id = H5Dopen2(file, name, H5P_DEFAULT);
  if (id < 0)
    return pt_h5_fail_read(path, name);
  int r = pt_h5_dataset_shape(id, dims);
  if (r < 0) {
    H5Dclose(id);
    return pt_h5_fail_read(path, name);
  }
  unsigned long long have = 0, need = 0;
  if (!compact_storage_complete(id, &have, &need)) {
    H5Dclose(id);
    return ptyc_fail(PTYC_E_FORMAT, "%s: /%s is corrupt (its compact storage holds %llu "
                                    "bytes, its shape needs %llu): copy or regenerate the file",
                     path, name, have, need);
  }
  *dset = id;
  *rank = r;
  return PTYC_OK;
}

/* The class of a dataset's type and its name for messages. */
H5T_class_t pt_h5_dataset_class(hid_t dset, char *name, size_t size) {
  hid_t type = H5Dget_type(dset);
  if (type < 0) {
    snprintf(name, size, "unknown type");
    return H5T_NO_CLASS;
  }
  H5T_class_t cls = H5Tget_class(type);
  pt_h5_type_name(type, name, size);
  H5Tclose(type);
  return cls;
}

/* Reads a whole complex dataset of `count` values into a new ptyc_c32 array. Complex
 * compounds ({r, i}, {re, im}, {real, imag}; 32 or 64-bit) are converted by HDF5; a
 * real (float or integer) array is taken as the real part. */
ptyc_status pt_h5_read_c32(const char *path, hid_t dset, const char *name, size_t count,
                           ptyc_c32 **out, char *dtype, size_t dtype_size) {
  ptyc_status st = PTYC_OK;
  hid_t type = H5I_INVALID_HID, mem = H5I_INVALID_HID;
  ptyc_c32 *values = NULL;
  float *real = NULL;
  char re[16], im[16];
  size_t each = 0, nbytes = 0;
  *out = NULL;

  type = H5Dget_type(dset);
  if (type < 0)
    PT_FAIL(PTYC_E_IO, "%s: cannot read the type of /%s", path, name);
  pt_h5_type_name(type, dtype, dtype_size);
  if (!pt_checked_product(count, sizeof(ptyc_c32), 1, &nbytes))
    PT_FAIL(PTYC_E_FORMAT, "%s: /%s is too large", path, name);
  values = malloc(nbytes ? nbytes : 1);
  if (!values)
    PT_FAIL(PTYC_E_NOMEM, "%s: cannot allocate %zu bytes for /%s", path, nbytes, name);

  H5T_class_t cls = H5Tget_class(type);
  if (pt_h5_is_complex(type, re, im, &each)) {
    mem = pt_h5_c32_memtype(re, im);
    if (mem < 0 || H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
  } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
    real = malloc(count * sizeof *real + 1);
    if (!real)
      PT_FAIL(PTYC_E_NOMEM, "%s: cannot allocate memory for /%s", path, name);
    if (H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, real) < 0)
      PT_CHECK(pt_h5_fail_read(path, name));
    for (size_t i = 0; i < count; i++)
      values[i] = pt_c32(real[i], 0.0f);
  } else {
    PT_FAIL(PTYC_E_FORMAT,
            "%s: /%s has unsupported type %s; expected complex64 or complex128 "
            "(compound {r, i} as h5py writes)",
            path, name, dtype);
  }
  *out = values;
  values = NULL;
fail:
  free(real);
  free(values);
  pt_h5_close_type(&mem);
  pt_h5_close_type(&type);
  return st;
}

/* ---- atomic writes and layouts ----------------------------------------------------- */

ptyc_status pt_tmp_path(const char *path, char *buf, size_t size) {
  int n = snprintf(buf, size, "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= size)
    return ptyc_fail(PTYC_E_ARG, "%s: path too long", path);
  return PTYC_OK;
}

ptyc_status pt_h5_fail_write(const char *path, const char *what) {
  char detail[256];
  pt_h5_error_detail(detail, sizeof detail);
  return ptyc_fail(PTYC_E_IO, "%s: cannot write %s%s%s%s: check free disk space and permissions",
                   path, what, detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

ptyc_status pt_h5_atomic_create(const char *path, pt_h5_atomic *w) {
  w->file = H5I_INVALID_HID;
  w->path = path;
  PT_TRY(pt_tmp_path(path, w->tmp, sizeof w->tmp));
  pt_h5_quiet();
  /* STRONG close: closing the file closes every object still open in it. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    if (fapl >= 0) H5Pclose(fapl);
    return pt_h5_fail_write(path, "the file");
  }
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (w->file < 0) return pt_h5_fail_write(w->tmp, "the file");
  return PTYC_OK;
}

void pt_h5_atomic_abort(pt_h5_atomic *w) {
  pt_h5_close_file(&w->file);
  remove(w->tmp);
}

ptyc_status pt_h5_atomic_commit(pt_h5_atomic *w) {
  herr_t closed = H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
  ptyc_status st = PTYC_OK;
  if (closed < 0)
    st = pt_h5_fail_write(w->path, "the file (closing it failed)");
  else if (rename(w->tmp, w->path) != 0)
    st = ptyc_fail(PTYC_E_IO, "%s: cannot rename %s to it (%s)", w->path, w->tmp,
                   strerror(errno));
  if (st != PTYC_OK) remove(w->tmp);
  return st;
}

/* Destination row/column of source index i: to the corner subtracts M/2, to the
 * centre adds it (mod M). */
static int shifted_index(int i, int m, int to_corner) {
  int half = m / 2;
  return to_corner ? (i - half + m) % m : (i + half) % m;
}

void pt_shift_plane_f32(float *plane, float *tmp, int m, int to_corner) {
  for (int y = 0; y < m; y++) {
    int ty = shifted_index(y, m, to_corner);
    for (int x = 0; x < m; x++)
      tmp[(size_t)ty * m + shifted_index(x, m, to_corner)] = plane[(size_t)y * m + x];
  }
  memcpy(plane, tmp, (size_t)m * m * sizeof *plane);
}

void pt_shift_plane_u8(uint8_t *plane, uint8_t *tmp, int m, int to_corner) {
  for (int y = 0; y < m; y++) {
    int ty = shifted_index(y, m, to_corner);
    for (int x = 0; x < m; x++)
      tmp[(size_t)ty * m + shifted_index(x, m, to_corner)] = plane[(size_t)y * m + x];
  }
  memcpy(plane, tmp, (size_t)m * m * sizeof *plane);
}
