/* Minibatches of scan positions, shared by engines: sizes, the spatially compact
 * grouping and each iteration's order. Deterministic for a seed and an iteration, on
 * any machine (src/rng.h). */
#ifndef PT_BATCHING_H
#define PT_BATCHING_H

#include <stdint.h>

#include "ptyc/model.h"
#include "ptyc/options.h"

/* How N positions split into minibatches of at most `batch_size` (<= 0: one batch):
 * n_batches batches whose sizes differ by at most one; the largest holds batch_max. */
typedef struct pt_batching {
  int n_positions, n_batches, batch_max;
  ptyc_batch_order order_kind;
  uint64_t seed;
  int32_t *compact; /* [N] positions sorted into compact batches (PTYC_BATCH_COMPACT) */
  int32_t *shuffled; /* [n_batches] work space of the compact order */
} pt_batching;

ptyc_status pt_batching_init(pt_batching *b, const ptyc_model *model, int batch_size,
                             ptyc_batch_order order_kind, uint64_t seed);
void pt_batching_free(pt_batching *b);

/* Minibatch `index`: entries [*first, *first + *n) of the iteration's order. */
void pt_batch_range(const pt_batching *b, int index, int *first, int *n);

/* The order of `iteration` (order[N]): a fresh permutation (random batches) or the
 * compact batches in a fresh order. */
void pt_batch_order(const pt_batching *b, int iteration, int32_t *order);

#endif
