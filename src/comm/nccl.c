/* The NCCL comm: collectives on device buffers, queued on the CUDA backend's stream so
 * that they run in order with its ops, without a host round trip. Built only with
 * PTYC_HAVE_NCCL (which needs CUDA and MPI).
 *
 * NCCL needs one shared unique id to form the communicator: rank 0 makes it and the
 * process comm (MPI) broadcasts it. Each rank must drive a different GPU (NCCL cannot
 * put two ranks of one communicator on one device); the driver checks that first. */
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm_impl.h"
#include "pt_try.h"

typedef struct nccl_ctx {
  ncclComm_t comm;
  cudaStream_t stream; /* the backend's stream */
  int device;          /* its CUDA device */
} nccl_ctx;

static ptyc_status nccl_error(ncclResult_t code, const char *what, int device, int line) {
  return ptyc_fail(PTYC_E_COMM, "%s: NCCL error %d, %s, at src/comm/nccl.c:%d (device %d)%s",
                   what, (int)code, ncclGetErrorString(code), line, device,
                   code == ncclSystemError || code == ncclRemoteError
                       ? ": set NCCL_DEBUG=WARN for NCCL's own report"
                       : "");
}

#define PT_NCCL(ctx, expr)                                                             \
  do {                                                                                 \
    ncclResult_t pt_nccl_code_ = (expr);                                               \
    if (pt_nccl_code_ != ncclSuccess)                                                  \
      return nccl_error(pt_nccl_code_, #expr, (ctx)->device, __LINE__);                \
  } while (0)

static ptyc_status set_device(const nccl_ctx *ctx) {
  cudaError_t err = cudaSetDevice(ctx->device);
  if (err != cudaSuccess)
    return ptyc_fail(PTYC_E_DEVICE, "cudaSetDevice(%d): %s", ctx->device,
                     cudaGetErrorString(err));
  return PTYC_OK;
}

static void nccl_release(void *vctx, int failed) {
  nccl_ctx *ctx = vctx;
  if (ctx == NULL) return;
  if (ctx->comm != NULL && cudaSetDevice(ctx->device) == cudaSuccess) {
    /* On an error path another rank may never join a collective again: abort frees
     * the communicator without waiting for anyone. */
    if (failed)
      ncclCommAbort(ctx->comm);
    else
      ncclCommDestroy(ctx->comm);
  }
  free(ctx);
}

static ptyc_status nccl_allreduce(void *vctx, void *ptr, size_t count, ptyc_comm_type type) {
  nccl_ctx *ctx = vctx;
  PT_TRY(set_device(ctx));
  ncclDataType_t dt = type == PTYC_COMM_DOUBLE ? ncclFloat64 : ncclFloat32;
  PT_NCCL(ctx, ncclAllReduce(ptr, ptr, count, dt, ncclSum, ctx->comm, ctx->stream));
  return PTYC_OK;
}

static ptyc_status nccl_broadcast(void *vctx, void *ptr, size_t nbytes, int root) {
  nccl_ctx *ctx = vctx;
  PT_TRY(set_device(ctx));
  PT_NCCL(ctx, ncclBroadcast(ptr, ptr, nbytes, ncclUint8, root, ctx->comm, ctx->stream));
  return PTYC_OK;
}

static const pt_comm_buf_vtable nccl_vtable = {
    .name = "nccl",
    .release = nccl_release,
    .allreduce = nccl_allreduce,
    .broadcast = nccl_broadcast,
};

ptyc_status pt_nccl_comm_create(ptyc_comm *comm, int device, void *stream,
                                const pt_comm_buf_vtable **vt, void **out) {
  *out = NULL;
  if (stream == NULL || device < 0)
    return ptyc_fail(PTYC_E_ARG, "NCCL needs the CUDA backend's stream and device");
  nccl_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the NCCL comm");
  ctx->stream = (cudaStream_t)stream;
  ctx->device = device;
  ptyc_status st = PTYC_OK;
  ncclUniqueId id;
  int rank = ptyc_comm_rank(comm), size = ptyc_comm_size(comm);
  ncclResult_t code = ncclSuccess;
  if (rank == 0) code = ncclGetUniqueId(&id);
  /* Every rank joins the broadcast, also when rank 0 failed (it then aborts the job). */
  double ok = code == ncclSuccess ? 0.0 : 1.0;
  PT_CHECK(ptyc_comm_allreduce_host(comm, &ok, 1, PTYC_COMM_MAX));
  if (ok != 0.0) {
    st = rank == 0 ? nccl_error(code, "ncclGetUniqueId(&id)", device, __LINE__)
                   : ptyc_fail(PTYC_E_COMM, "rank 0 could not make the NCCL unique id");
    goto fail;
  }
  PT_CHECK(ptyc_comm_broadcast_host(comm, &id, sizeof id, 0));
  PT_CHECK(set_device(ctx));
  code = ncclCommInitRank(&ctx->comm, size, id, rank);
  if (code != ncclSuccess) {
    ctx->comm = NULL;
    st = nccl_error(code, "ncclCommInitRank(&comm, size, id, rank)", device, __LINE__);
    goto fail;
  }
  *vt = &nccl_vtable;
  *out = ctx;
  return PTYC_OK;
fail:
  nccl_release(ctx, 1);
  return st;
}
