/* The comm vtables (internal). src/comm/comm.c wraps them with argument checks
 * (include/ptyc/comm.h).
 *
 * Two tables, because a run needs two things from its comm:
 *   pt_comm_vtable      the process group: host collectives, barrier, abort. `single`
 *                       (single.c) or `mpi` (mpi.c), chosen at ptyc_comm_create.
 *   pt_comm_buf_vtable  collectives on device buffers, queued on the backend's stream:
 *                       `nccl` (nccl.c), chosen at ptyc_comm_bind. Without it comm.c
 *                       runs buffer collectives through the host ones (directly on CPU
 *                       buffers, which are host memory; through download and upload on
 *                       a GPU). */
#ifndef PT_COMM_IMPL_H
#define PT_COMM_IMPL_H

#include "ptyc/comm.h"

typedef struct pt_comm_vtable {
  const char *name;
  void (*destroy)(void *ctx); /* MPI_Finalize for mpi */
  /* In place on host memory; `count` elements of `type`. */
  ptyc_status (*allreduce)(void *ctx, void *data, size_t count, ptyc_comm_type type,
                           ptyc_comm_op op);
  ptyc_status (*broadcast)(void *ctx, void *data, size_t nbytes, int root);
  ptyc_status (*barrier)(void *ctx);
  void (*abort)(void *ctx, int code);
} pt_comm_vtable;

typedef struct pt_comm_buf_vtable {
  const char *name;
  void (*release)(void *ctx, int failed);
  /* In place on device memory, sum. */
  ptyc_status (*allreduce)(void *ctx, void *ptr, size_t count, ptyc_comm_type type);
  ptyc_status (*broadcast)(void *ctx, void *ptr, size_t nbytes, int root);
} pt_comm_buf_vtable;

/* The constructors. `env` has size > 1 for mpi. */
ptyc_status pt_single_comm_create(const pt_comm_vtable **vt, void **ctx);
/* Defined only in builds with MPI (PTYC_HAVE_MPI), in mpi.c. */
ptyc_status pt_mpi_comm_create(const ptyc_rank_env *env, const pt_comm_vtable **vt,
                               void **ctx);
/* Defined only in builds with NCCL (PTYC_HAVE_NCCL), in nccl.c: a communicator of all
 * ranks of `comm` (bootstrapped through its host broadcast) on CUDA device `device`,
 * whose collectives go on `stream` (a cudaStream_t). */
ptyc_status pt_nccl_comm_create(ptyc_comm *comm, int device, void *stream,
                                const pt_comm_buf_vtable **vt, void **ctx);

#endif
