/* Public comm API: the launcher's environment, argument checks around the comm
 * vtables, and the buffer collectives of backends without NCCL (through host memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "comm/comm_impl.h"
#include "pt_try.h"

struct ptyc_comm {
  const pt_comm_vtable *vt; /* the process group: single or mpi */
  void *ctx;
  ptyc_rank_env env;
  ptyc_backend *be;         /* bound backend, NULL before ptyc_comm_bind */
  int host_memory;          /* the bound backend's buffers are host memory (CPU) */
  const pt_comm_buf_vtable *buf_vt; /* nccl when bound with it, else NULL */
  void *buf_ctx;
  void *staging;            /* host copies of device buffers (no NCCL on a GPU) */
  size_t staging_nbytes;
  char name[32];
};

/* ---- the launcher's environment ------------------------------------------------------ */

/* A non-negative integer from the environment, or -1. */
static int env_int(const char *name) {
  const char *s = getenv(name);
  if (s == NULL || *s == '\0') return -1;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 1000000) return -1;
  return (int)v;
}

/* One launcher's variables: rank and size must both be there. */
static int try_launcher(ptyc_rank_env *env, const char *name, const char *rank,
                        const char *size, const char *local_rank, const char *local_size) {
  int r = env_int(rank), s = env_int(size);
  if (r < 0 || s < 1 || r >= s) return 0;
  env->rank = r;
  env->size = s;
  int lr = env_int(local_rank), ls = env_int(local_size);
  env->local_rank = lr >= 0 ? lr : r;
  env->local_size = ls >= 1 ? ls : s;
  if (env->local_rank >= env->local_size) env->local_size = env->local_rank + 1;
  snprintf(env->launcher, sizeof env->launcher, "%s", name);
  return 1;
}

void ptyc_rank_env_detect(ptyc_rank_env *env) {
  memset(env, 0, sizeof *env);
  env->size = env->local_size = 1;
  snprintf(env->launcher, sizeof env->launcher, "none");
  if (try_launcher(env, "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                   "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"))
    return;
  if (try_launcher(env, "mpich", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"))
    return;
  /* SLURM_NTASKS_PER_NODE may read "4(x2)"; env_int then refuses it and the local
   * size falls back to the job size, an upper bound. */
  try_launcher(env, "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
               "SLURM_NTASKS_PER_NODE");
}

void ptyc_comm_share(int n, int rank, int size, int *first, int *count) {
  long long lo = (long long)n * rank / size, hi = (long long)n * (rank + 1) / size;
  *first = (int)lo;
  *count = (int)(hi - lo);
}

/* ---- lifetime ------------------------------------------------------------------------- */

ptyc_status ptyc_comm_create(const ptyc_rank_env *env_in, ptyc_comm **out) {
  if (out == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_comm_create: out is NULL");
  *out = NULL;
  ptyc_comm *comm = calloc(1, sizeof *comm);
  if (comm == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating a comm");
  if (env_in)
    comm->env = *env_in;
  else
    ptyc_rank_env_detect(&comm->env);
  ptyc_status st;
  if (comm->env.size <= 1) {
    st = pt_single_comm_create(&comm->vt, &comm->ctx);
  } else {
#if PTYC_HAVE_MPI
    st = pt_mpi_comm_create(&comm->env, &comm->vt, &comm->ctx);
#else
    st = ptyc_fail(PTYC_E_UNSUPPORTED,
                   "%s started this process as rank %d of %d, but this ptyc was built "
                   "without MPI: install an MPI (e.g. openmpi-bin libopenmpi-dev) and "
                   "rebuild with -DPTYC_MPI=ON, or run a single process",
                   comm->env.launcher, comm->env.rank, comm->env.size);
#endif
  }
  if (st != PTYC_OK) {
    free(comm);
    return st;
  }
  snprintf(comm->name, sizeof comm->name, "%s", comm->vt->name);
  *out = comm;
  return PTYC_OK;
}

void ptyc_comm_free(ptyc_comm *comm) {
  if (comm == NULL) return;
  ptyc_comm_unbind(comm, 0);
  comm->vt->destroy(comm->ctx);
  free(comm);
}

ptyc_status ptyc_comm_bind(ptyc_comm *comm, ptyc_backend *be) {
  if (comm == NULL) return PTYC_OK;
  if (be == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_comm_bind: backend is NULL");
  if (comm->be != NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_comm_bind: already bound");
  comm->be = be;
  comm->host_memory = strcmp(ptyc_backend_name(be), "cpu") == 0;
  snprintf(comm->name, sizeof comm->name, "%s", comm->vt->name);
  if (comm->env.size <= 1 || comm->host_memory) return PTYC_OK;
  const char *want = getenv("PTYC_NCCL");
  int nccl_wanted = !(want && strcmp(want, "0") == 0);
#if PTYC_HAVE_NCCL
  if (nccl_wanted) {
    int device = -1;
    void *stream = ptyc_backend_native_stream(be, &device);
    ptyc_status st = pt_nccl_comm_create(comm, device, stream, &comm->buf_vt, &comm->buf_ctx);
    if (st != PTYC_OK) {
      comm->be = NULL;
      return st;
    }
    snprintf(comm->name, sizeof comm->name, "%s", comm->buf_vt->name);
    return PTYC_OK;
  }
#else
  (void)nccl_wanted;
#endif
  snprintf(comm->name, sizeof comm->name, "%s (host copies)", comm->vt->name);
  return PTYC_OK;
}

void ptyc_comm_unbind(ptyc_comm *comm, int failed) {
  if (comm == NULL) return;
  if (comm->buf_vt) comm->buf_vt->release(comm->buf_ctx, failed);
  comm->buf_vt = NULL;
  comm->buf_ctx = NULL;
  free(comm->staging);
  comm->staging = NULL;
  comm->staging_nbytes = 0;
  comm->be = NULL;
}

int ptyc_comm_rank(const ptyc_comm *comm) { return comm ? comm->env.rank : 0; }
int ptyc_comm_size(const ptyc_comm *comm) { return comm ? comm->env.size : 1; }
int ptyc_comm_local_rank(const ptyc_comm *comm) { return comm ? comm->env.local_rank : 0; }
int ptyc_comm_local_size(const ptyc_comm *comm) { return comm ? comm->env.local_size : 1; }
const char *ptyc_comm_name(const ptyc_comm *comm) { return comm ? comm->name : "single"; }

void ptyc_comm_abort(ptyc_comm *comm, int code) {
  if (comm == NULL || comm->env.size <= 1) return;
  comm->vt->abort(comm->ctx, code);
}

/* ---- host collectives ------------------------------------------------------------------ */

ptyc_status ptyc_comm_allreduce_host(ptyc_comm *comm, double *values, size_t count,
                                     ptyc_comm_op op) {
  if (comm == NULL || comm->env.size <= 1 || count == 0) return PTYC_OK;
  if (values == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_comm_allreduce_host: values is NULL");
  if (op != PTYC_COMM_SUM && op != PTYC_COMM_MAX)
    return ptyc_fail(PTYC_E_ARG, "ptyc_comm_allreduce_host: unknown op %d", (int)op);
  return comm->vt->allreduce(comm->ctx, values, count, PTYC_COMM_DOUBLE, op);
}

ptyc_status ptyc_comm_broadcast_host(ptyc_comm *comm, void *data, size_t nbytes, int root) {
  if (comm == NULL || comm->env.size <= 1 || nbytes == 0) return PTYC_OK;
  if (data == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_comm_broadcast_host: data is NULL");
  if (root < 0 || root >= comm->env.size)
    return ptyc_fail(PTYC_E_ARG, "ptyc_comm_broadcast_host: root %d of %d ranks", root,
                     comm->env.size);
  return comm->vt->broadcast(comm->ctx, data, nbytes, root);
}

ptyc_status ptyc_comm_barrier(ptyc_comm *comm) {
  if (comm == NULL || comm->env.size <= 1) return PTYC_OK;
  return comm->vt->barrier(comm->ctx);
}

/* ---- buffer collectives ------------------------------------------------------------------ */

static size_t type_bytes(ptyc_comm_type type) {
  return type == PTYC_COMM_DOUBLE ? sizeof(double) : sizeof(float);
}

/* The range must lie inside a buffer of the bound backend. */
static ptyc_status check_buf(const char *op, const ptyc_comm *comm, ptyc_buf buf,
                             size_t offset, size_t nbytes) {
  if (comm->be == NULL)
    return ptyc_fail(PTYC_E_ARG, "%s: the comm is not bound to a backend (ptyc_comm_bind)", op);
  if (buf.ptr == NULL) return ptyc_fail(PTYC_E_ARG, "%s: buffer is missing", op);
  if (offset > buf.nbytes || nbytes > buf.nbytes - offset)
    return ptyc_fail(PTYC_E_ARG, "%s: bytes [%zu, %zu) outside a buffer of %zu", op, offset,
                     offset + nbytes, buf.nbytes);
  return PTYC_OK;
}

/* Host memory for copies of device buffers: grows to the largest request, so it is
 * allocated in the first iteration only. This path is the slow fallback anyway. */
static ptyc_status staging(ptyc_comm *comm, size_t nbytes, void **out) {
  if (nbytes > comm->staging_nbytes) {
    void *grown = realloc(comm->staging, nbytes);
    if (grown == NULL)
      return ptyc_fail(PTYC_E_NOMEM, "out of host memory for a %.1f MiB reduction",
                       nbytes / 1048576.0);
    comm->staging = grown;
    comm->staging_nbytes = nbytes;
  }
  *out = comm->staging;
  return PTYC_OK;
}

ptyc_status ptyc_comm_allreduce(ptyc_comm *comm, ptyc_buf buf, size_t offset, size_t count,
                                ptyc_comm_type type) {
  if (comm == NULL || comm->env.size <= 1 || count == 0) return PTYC_OK;
  if (type != PTYC_COMM_FLOAT && type != PTYC_COMM_DOUBLE)
    return ptyc_fail(PTYC_E_ARG, "ptyc_comm_allreduce: unknown type %d", (int)type);
  size_t nbytes = count * type_bytes(type);
  PT_TRY(check_buf(__func__, comm, buf, offset, nbytes));
  char *ptr = (char *)buf.ptr + offset;
  if (comm->buf_vt) return comm->buf_vt->allreduce(comm->buf_ctx, ptr, count, type);
  if (comm->host_memory) /* CPU ops are done when they return: the data is ready */
    return comm->vt->allreduce(comm->ctx, ptr, count, type, PTYC_COMM_SUM);
  void *host = NULL;
  PT_TRY(staging(comm, nbytes, &host));
  PT_TRY(ptyc_buf_download(comm->be, host, buf, offset, nbytes));
  PT_TRY(comm->vt->allreduce(comm->ctx, host, count, type, PTYC_COMM_SUM));
  return ptyc_buf_upload(comm->be, buf, offset, host, nbytes);
}

ptyc_status ptyc_comm_broadcast(ptyc_comm *comm, ptyc_buf buf, size_t offset, size_t nbytes,
                                int root) {
  if (comm == NULL || comm->env.size <= 1 || nbytes == 0) return PTYC_OK;
  if (root < 0 || root >= comm->env.size)
    return ptyc_fail(PTYC_E_ARG, "ptyc_comm_broadcast: root %d of %d ranks", root,
                     comm->env.size);
  PT_TRY(check_buf(__func__, comm, buf, offset, nbytes));
  char *ptr = (char *)buf.ptr + offset;
  if (comm->buf_vt) return comm->buf_vt->broadcast(comm->buf_ctx, ptr, nbytes, root);
  if (comm->host_memory) return comm->vt->broadcast(comm->ctx, ptr, nbytes, root);
  void *host = NULL;
  PT_TRY(staging(comm, nbytes, &host));
  PT_TRY(ptyc_buf_download(comm->be, host, buf, offset, nbytes));
  PT_TRY(comm->vt->broadcast(comm->ctx, host, nbytes, root));
  return ptyc_buf_upload(comm->be, buf, offset, host, nbytes);
}
