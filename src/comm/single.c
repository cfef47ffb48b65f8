/* The single-rank comm: one process, nothing to exchange. Every collective leaves the
 * data as it is (the sum or maximum over one rank is the value itself). */
#include <stdlib.h>

#include "comm/comm_impl.h"

static void single_destroy(void *ctx) { (void)ctx; }

static ptyc_status single_allreduce(void *ctx, void *data, size_t count, ptyc_comm_type type,
                                    ptyc_comm_op op) {
  (void)ctx, (void)data, (void)count, (void)type, (void)op;
  return PTYC_OK;
}

static ptyc_status single_broadcast(void *ctx, void *data, size_t nbytes, int root) {
  (void)ctx, (void)data, (void)nbytes, (void)root;
  return PTYC_OK;
}

static ptyc_status single_barrier(void *ctx) {
  (void)ctx;
  return PTYC_OK;
}

/* One rank: the caller reports its error and exits as usual. */
static void single_abort(void *ctx, int code) { (void)ctx, (void)code; }

static const pt_comm_vtable single_vtable = {
    .name = "single",
    .destroy = single_destroy,
    .allreduce = single_allreduce,
    .broadcast = single_broadcast,
    .barrier = single_barrier,
    .abort = single_abort,
};

ptyc_status pt_single_comm_create(const pt_comm_vtable **vt, void **ctx) {
  *vt = &single_vtable;
  *ctx = NULL;
  return PTYC_OK;
}
