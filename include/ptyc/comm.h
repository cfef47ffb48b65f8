/* Communication between the ranks of a data-parallel run.
 *
 * A run on R ranks (processes) keeps a replica of object, probe and positions on every
 * rank; each rank computes the update terms of its own share of the patterns, the comm
 * sums them, and every rank applies the same update. The comm has three kinds:
 *   single  one rank: every operation is a no-op (also what a NULL comm means);
 *   mpi     MPI on host memory: CPU buffers directly, CUDA buffers through a download
 *           and an upload around each operation (correct, but slow: build with NCCL);
 *   nccl    NCCL on the CUDA backend's stream, device memory to device memory; MPI
 *           still carries the host operations and gave NCCL its unique id.
 *
 * Life cycle: ptyc_rank_env_detect (where this process sits, from the launcher's
 * environment) -> ptyc_comm_create (MPI_Init when there are several ranks) ->
 * ptyc_comm_bind(comm, backend) once the backend exists -> collectives ->
 * ptyc_comm_unbind -> ptyc_comm_free (MPI_Finalize).
 *
 * Every rank must call the same collectives in the same order with the same sizes;
 * a rank with no work in a minibatch still joins them (with zeros). Device-buffer
 * collectives are queued in order with the backend's other work, like its ops. */
#ifndef PTYC_COMM_H
#define PTYC_COMM_H

#include <stddef.h>

#include "ptyc/backend.h"
#include "ptyc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_comm ptyc_comm;

/* Where this process sits in the job, from the launcher's environment:
 *   Open MPI  OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE
 *   MPICH     PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS
 *   Slurm     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE
 * (first match wins). Without any: rank 0 of 1. */
typedef struct ptyc_rank_env {
  int rank, size;             /* in the whole job */
  int local_rank, local_size; /* on this node (local_size: best effort, >= 1) */
  char launcher[16];          /* "openmpi" | "mpich" | "slurm" | "none" */
} ptyc_rank_env;

void ptyc_rank_env_detect(ptyc_rank_env *env);

/* Creates the comm of this process: single when env->size == 1 (or env is NULL), else
 * MPI (MPI_Init_thread; fails with a clear message when the build has no MPI). */
ptyc_status ptyc_comm_create(const ptyc_rank_env *env, ptyc_comm **out);
/* Ends MPI (MPI_Finalize, after ptyc_comm_unbind). NULL-safe. */
void ptyc_comm_free(ptyc_comm *comm);

/* Binds the comm to the backend whose buffers it will reduce (once, after
 * ptyc_backend_create): with the CUDA backend and a build with NCCL, several ranks
 * talk through NCCL on the backend's stream (the NCCL communicator is made here, its
 * unique id sent by MPI from rank 0); otherwise through MPI on host memory. Collective:
 * every rank calls it. PTYC_NCCL=0 in the environment keeps MPI (for comparisons). */
ptyc_status ptyc_comm_bind(ptyc_comm *comm, ptyc_backend *be);
/* Releases what bind made (the NCCL communicator). `failed` = 1 on an error path:
 * NCCL is aborted rather than finalised, so that no rank waits for the others. */
void ptyc_comm_unbind(ptyc_comm *comm, int failed);

/* Rank and size; a NULL comm is rank 0 of 1. */
int ptyc_comm_rank(const ptyc_comm *comm);
int ptyc_comm_size(const ptyc_comm *comm);
/* Local rank and ranks on this node (from the launcher's environment). */
int ptyc_comm_local_rank(const ptyc_comm *comm);
int ptyc_comm_local_size(const ptyc_comm *comm);
/* "single", "mpi", "mpi (host copies)" or "nccl": how buffers travel. */
const char *ptyc_comm_name(const ptyc_comm *comm);

typedef enum ptyc_comm_type {
  PTYC_COMM_FLOAT = 0, /* float; complex c32 buffers are 2 floats per value */
  PTYC_COMM_DOUBLE
} ptyc_comm_type;

typedef enum ptyc_comm_op {
  PTYC_COMM_SUM = 0,
  PTYC_COMM_MAX
} ptyc_comm_op;

/* In place, on every rank: buf[offset ..] = sum over ranks, for `count` elements of
 * `type` starting at byte `offset` of a bound backend buffer. */
ptyc_status ptyc_comm_allreduce(ptyc_comm *comm, ptyc_buf buf, size_t offset, size_t count,
                                ptyc_comm_type type);
/* buf[offset, offset + nbytes) of rank `root` is copied to every rank. */
ptyc_status ptyc_comm_broadcast(ptyc_comm *comm, ptyc_buf buf, size_t offset, size_t nbytes,
                                int root);
/* Host values (a loss, a flag, a few sums), in place on every rank; waits. */
ptyc_status ptyc_comm_allreduce_host(ptyc_comm *comm, double *values, size_t count,
                                     ptyc_comm_op op);
/* Host bytes of rank `root` to every rank; waits. */
ptyc_status ptyc_comm_broadcast_host(ptyc_comm *comm, void *data, size_t nbytes, int root);
/* Waits until every rank has reached it. */
ptyc_status ptyc_comm_barrier(ptyc_comm *comm);

/* Ends every rank of the job at once with exit code `code` (MPI_Abort): what a rank
 * does after printing its error, so that the others never wait for it. With one rank
 * it returns and the caller exits as usual. Only the program (src/cli) calls it. */
void ptyc_comm_abort(ptyc_comm *comm, int code);

/* The positions [first, first + count) rank `rank` of `size` owns out of `n`: the
 * contiguous share [n rank / size, n (rank + 1) / size). */
void ptyc_comm_share(int n, int rank, int size, int *first, int *count);

#ifdef __cplusplus
}
#endif
#endif
