#include "common/pattern_feed.h"

#include <stdlib.h>
#include <string.h>

#include "pt_try.h"

static size_t pattern_bytes(const ptyc_model *m) { return (size_t)m->m * m->m * sizeof(float); }

size_t pt_feed_plan_bytes(const ptyc_model *model, int batch_max) {
  if (!model->streaming) return 0;
  return 2 * pattern_bytes(model) * batch_max + sizeof(int32_t) * batch_max;
}

ptyc_status pt_feed_init(pt_pattern_feed *feed, ptyc_model *model,
                         const pt_batching *batching) {
  memset(feed, 0, sizeof *feed);
  feed->model = model;
  feed->batching = batching;
  int batch_max = batching->batch_max;
  if (!model->streaming) return PTYC_OK;
  ptyc_backend *be = model->be;
  ptyc_status st = PTYC_OK;
  int32_t *identity = malloc(sizeof(int32_t) * batch_max);
  if (identity == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory (pattern feed)");
  for (int i = 0; i < batch_max; i++) identity[i] = i;
  for (int s = 0; s < 2; s++)
    PT_CHECK(ptyc_buf_alloc(be, pattern_bytes(model) * batch_max, &feed->slots[s]));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * batch_max, &feed->identity));
  PT_CHECK(ptyc_buf_upload(be, feed->identity, 0, identity, feed->identity.nbytes));
  /* Positions are never read by the Fourier op; the model's satisfy the size check. */
  feed->batch_scan = (ptyc_scan){.m = model->m, .n_modes = model->n_modes,
                                 .obj_h = model->obj_h, .obj_w = model->obj_w,
                                 .positions = model->positions, .order = feed->identity,
                                 .n_positions = batch_max};
fail:
  free(identity);
  if (st != PTYC_OK) pt_feed_free(feed);
  return st;
}

void pt_feed_free(pt_pattern_feed *feed) {
  if (feed == NULL || feed->model == NULL) return;
  for (int s = 0; s < 2; s++) ptyc_buf_free(feed->model->be, &feed->slots[s]);
  ptyc_buf_free(feed->model->be, &feed->identity);
}

/* Queues the copies of batch b into slot b % 2, one per position. */
static ptyc_status stage(pt_pattern_feed *feed, int b) {
  ptyc_model *m = feed->model;
  int first, n;
  pt_batch_range(feed->batching, b, &first, &n);
  size_t bytes = pattern_bytes(m);
  const char *host = (const char *)m->patterns_host;
  for (int i = 0; i < n; i++) {
    size_t j = (size_t)feed->order_host[first + i];
    PT_TRY(ptyc_buf_upload_async(m->be, b % 2, feed->slots[b % 2], (size_t)i * bytes,
                                 host + j * bytes, bytes));
  }
  return PTYC_OK;
}

ptyc_status pt_feed_begin(pt_pattern_feed *feed, const int32_t *order_host) {
  feed->order_host = order_host;
  return feed->model->streaming ? stage(feed, 0) : PTYC_OK;
}

ptyc_status pt_feed_batch(pt_pattern_feed *feed, const ptyc_scan *scan, int b, int first,
                          ptyc_buf *patterns, const ptyc_scan **pattern_scan,
                          int *pattern_first) {
  if (!feed->model->streaming) {
    *patterns = feed->model->patterns;
    *pattern_scan = scan;
    *pattern_first = first;
    return PTYC_OK;
  }
  if (b + 1 < feed->batching->n_batches) PT_TRY(stage(feed, b + 1)); /* overlaps batch b */
  PT_TRY(ptyc_buf_upload_wait(feed->model->be, b % 2));
  *patterns = feed->slots[b % 2];
  *pattern_scan = &feed->batch_scan;
  *pattern_first = 0;
  return PTYC_OK;
}
