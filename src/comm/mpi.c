/* The MPI comm: host-memory collectives between the processes an MPI launcher started
 * (mpirun, mpiexec, srun). Built only with PTYC_HAVE_MPI.
 *
 * MPI is initialised here, once, with MPI_THREAD_FUNNELED (OpenMP threads never call
 * MPI), and finalised by destroy. ptyc talks on its own duplicate of MPI_COMM_WORLD,
 * whose errors return codes (MPI_ERRORS_RETURN) that become ptyc statuses. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm_impl.h"
#include "pt_try.h"

typedef struct mpi_ctx {
  MPI_Comm comm;  /* ptyc's duplicate of MPI_COMM_WORLD */
  int rank, size;
  int finalize;   /* we initialised MPI, so we finalise it */
} mpi_ctx;

/* Turns an MPI error code into a status with MPI's own text. */
static ptyc_status mpi_error(int code, const char *what, const char *file, int line) {
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "?");
  return ptyc_fail(PTYC_E_COMM, "%s: MPI error %d, %s, at %s:%d", what, code, text, file, line);
}

#define PT_MPI(expr)                                                                   \
  do {                                                                                 \
    int pt_mpi_code_ = (expr);                                                         \
    if (pt_mpi_code_ != MPI_SUCCESS)                                                   \
      return mpi_error(pt_mpi_code_, #expr, "src/comm/mpi.c", __LINE__);               \
  } while (0)

/* MPI counts are int: longer arrays go in chunks of at most this many elements. */
#define MPI_CHUNK ((size_t)1 << 30)

static void mpi_destroy(void *vctx) {
  mpi_ctx *ctx = vctx;
  if (ctx == NULL) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    if (ctx->comm != MPI_COMM_NULL) MPI_Comm_free(&ctx->comm);
    if (ctx->finalize) MPI_Finalize();
  }
  free(ctx);
}

static ptyc_status mpi_allreduce(void *vctx, void *data, size_t count, ptyc_comm_type type,
                                 ptyc_comm_op op) {
  mpi_ctx *ctx = vctx;
  MPI_Datatype dt = type == PTYC_COMM_DOUBLE ? MPI_DOUBLE : MPI_FLOAT;
  size_t elem = type == PTYC_COMM_DOUBLE ? sizeof(double) : sizeof(float);
  MPI_Op mop = op == PTYC_COMM_MAX ? MPI_MAX : MPI_SUM;
  for (size_t done = 0; done < count;) {
    size_t n = count - done < MPI_CHUNK ? count - done : MPI_CHUNK;
    PT_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)data + done * elem, (int)n, dt, mop, ctx->comm));
    done += n;
  }
  return PTYC_OK;
}

static ptyc_status mpi_broadcast(void *vctx, void *data, size_t nbytes, int root) {
  mpi_ctx *ctx = vctx;
  for (size_t done = 0; done < nbytes;) {
    size_t n = nbytes - done < MPI_CHUNK ? nbytes - done : MPI_CHUNK;
    PT_MPI(MPI_Bcast((char *)data + done, (int)n, MPI_BYTE, root, ctx->comm));
    done += n;
  }
  return PTYC_OK;
}

static ptyc_status mpi_barrier(void *vctx) {
  mpi_ctx *ctx = vctx;
  PT_MPI(MPI_Barrier(ctx->comm));
  return PTYC_OK;
}

/* Ends the whole job: the launcher kills every other rank. Does not return. */
static void mpi_abort(void *vctx, int code) {
  (void)vctx;
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
}

static const pt_comm_vtable mpi_vtable = {
    .name = "mpi",
    .destroy = mpi_destroy,
    .allreduce = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
};

ptyc_status pt_mpi_comm_create(const ptyc_rank_env *env, const pt_comm_vtable **vt,
                               void **out) {
  *out = NULL;
  mpi_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the MPI comm");
  ctx->comm = MPI_COMM_NULL;
  int initialized = 0, provided = 0, code = MPI_SUCCESS;
  MPI_Initialized(&initialized);
  if (!initialized) {
    code = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (code != MPI_SUCCESS) {
      free(ctx);
      return ptyc_fail(PTYC_E_COMM, "MPI_Init_thread failed (error %d): was this process "
                                    "started by %s's own launcher (mpirun, srun)?",
                       code, env->launcher);
    }
    ctx->finalize = 1;
  }
  ptyc_status st = PTYC_OK;
  code = MPI_Comm_dup(MPI_COMM_WORLD, &ctx->comm);
  if (code == MPI_SUCCESS) code = MPI_Comm_set_errhandler(ctx->comm, MPI_ERRORS_RETURN);
  if (code == MPI_SUCCESS) code = MPI_Comm_rank(ctx->comm, &ctx->rank);
  if (code == MPI_SUCCESS) code = MPI_Comm_size(ctx->comm, &ctx->size);
  if (code != MPI_SUCCESS) {
    st = mpi_error(code, "MPI_Comm_dup(MPI_COMM_WORLD)", "src/comm/mpi.c", __LINE__);
    goto fail;
  }
  /* The environment and MPI must agree, or the shares would overlap or leave gaps. */
  if (ctx->rank != env->rank || ctx->size != env->size) {
    st = ptyc_fail(PTYC_E_COMM, "MPI says rank %d of %d but the %s environment says rank %d "
                                "of %d: the MPI library ptyc was built with is not the one "
                                "of the launcher (check mpirun's and libmpi's versions)",
                   ctx->rank, ctx->size, env->launcher, env->rank, env->size);
    goto fail;
  }
  *vt = &mpi_vtable;
  *out = ctx;
  return PTYC_OK;
fail:
  mpi_destroy(ctx);
  return st;
}
