/* Minibatches of scan positions (see batching.h). */
#include "common/batching.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt_try.h"
#include "rng.h"

void pt_batch_range(const pt_batching *b, int index, int *first, int *n) {
  int base = b->n_positions / b->n_batches, extra = b->n_positions % b->n_batches;
  *first = index * base + (index < extra ? index : extra);
  *n = base + (index < extra ? 1 : 0);
}

typedef struct keyed {
  double key;
  int32_t index;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  double d = ((const keyed *)a)->key - ((const keyed *)b)->key;
  return (d > 0) - (d < 0);
}

/* Spatially compact minibatches: positions sorted into horizontal strips (one per
 * sqrt(n_batches)), serpentine within strips; consecutive runs form the batches. */
static ptyc_status compact_order(const ptyc_model *m, int n_batches, int32_t *order) {
  int n = m->n_positions, strips = (int)ceil(sqrt((double)n_batches));
  keyed *items = malloc(sizeof(keyed) * n);
  if (items == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory sorting positions");
  for (int j = 0; j < n; j++) items[j] = (keyed){m->positions_host[2 * j], j};
  qsort(items, n, sizeof *items, cmp_keyed);
  for (int s = 0; s < strips; s++) {
    int first = (int)((long)n * s / strips), last = (int)((long)n * (s + 1) / strips);
    for (int i = first; i < last; i++)
      items[i].key = (s % 2 ? -1.0 : 1.0) * m->positions_host[2 * items[i].index + 1];
    qsort(items + first, last - first, sizeof *items, cmp_keyed);
  }
  for (int j = 0; j < n; j++) order[j] = items[j].index;
  free(items);
  return PTYC_OK;
}

ptyc_status pt_batching_init(pt_batching *b, const ptyc_model *model, int batch_size,
                             ptyc_batch_order order_kind, uint64_t seed) {
  memset(b, 0, sizeof *b);
  int n = model->n_positions;
  if (batch_size <= 0 || batch_size > n) batch_size = n;
  b->n_positions = n;
  b->n_batches = (n + batch_size - 1) / batch_size;
  b->batch_max = (n + b->n_batches - 1) / b->n_batches;
  b->order_kind = order_kind;
  b->seed = seed;
  b->compact = malloc(sizeof(int32_t) * n);
  b->shuffled = malloc(sizeof(int32_t) * b->n_batches);
  if (b->compact == NULL || b->shuffled == NULL) {
    pt_batching_free(b);
    return ptyc_fail(PTYC_E_NOMEM, "out of memory (batch order)");
  }
  ptyc_status st = compact_order(model, b->n_batches, b->compact);
  if (st != PTYC_OK) pt_batching_free(b);
  return st;
}

void pt_batching_free(pt_batching *b) {
  if (b == NULL) return;
  free(b->compact);
  free(b->shuffled);
  b->compact = b->shuffled = NULL;
}

void pt_batch_order(const pt_batching *b, int iteration, int32_t *order) {
  int n = b->n_positions;
  if (b->order_kind == PTYC_BATCH_RANDOM) {
    for (int j = 0; j < n; j++) order[j] = j;
    pt_rng_shuffle_i32(b->seed, (uint64_t)iteration, order, n);
    return;
  }
  int nb = b->n_batches;
  for (int i = 0; i < nb; i++) b->shuffled[i] = i;
  pt_rng_shuffle_i32(b->seed, (uint64_t)iteration, b->shuffled, nb);
  int at = 0;
  for (int i = 0; i < nb; i++) {
    int first, count;
    pt_batch_range(b, b->shuffled[i], &first, &count);
    memcpy(order + at, b->compact + first, sizeof(int32_t) * count);
    at += count;
  }
}
