#include "common/pattern_feed.h"

#include <stdlib.h>
#include <string.h>

#include "pt_try.h"

static size_t pattern_bytes(const ptyc_model *m) { return (size_t)m->m * m->m * sizeof(float); }

size_t pt_feed_plan_bytes(const ptyc_model *model, int batch_max) {
  if (!model->streaming) return 0;
  return 2 * pattern_bytes(model) * batch_max + sizeof(int32_t) * batch_max;
}

ptyc_status pt_feed_init(pt_pattern_feed *feed, ptyc_model *model, int batch_max) {
  memset(feed, 0, sizeof *feed);
  feed->model = model;
  feed->batch_max = batch_max;
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

/* Queues the copies of batch b into slot b % 2, one per pattern. */
static ptyc_status stage(pt_pattern_feed *feed, int b) {
  ptyc_model *m = feed->model;
  size_t bytes = pattern_bytes(m);
  const char *host = (const char *)m->patterns_host;
  const int32_t *index = feed->pattern_index + feed->batch_first[b];
  for (int i = 0; i < feed->batch_n[b]; i++)
    PT_TRY(ptyc_buf_upload_async(m->be, b % 2, feed->slots[b % 2], (size_t)i * bytes,
                                 host + (size_t)index[i] * bytes, bytes));
  return PTYC_OK;
}

ptyc_status pt_feed_begin(pt_pattern_feed *feed, const int32_t *pattern_index,
                          const int *batch_first, const int *batch_n, int n_batches) {
  feed->pattern_index = pattern_index;
  feed->batch_first = batch_first;
  feed->batch_n = batch_n;
  feed->n_batches = n_batches;
  return feed->model->streaming && n_batches > 0 ? stage(feed, 0) : PTYC_OK;
}

ptyc_status pt_feed_batch(pt_pattern_feed *feed, const ptyc_scan *pattern_scan, int b,
                          ptyc_buf *patterns, const ptyc_scan **scan_out, int *first_out) {
  if (!feed->model->streaming) {
    *patterns = feed->model->patterns;
    *scan_out = pattern_scan;
    *first_out = feed->batch_first[b];
    return PTYC_OK;
  }
  if (b + 1 < feed->n_batches) PT_TRY(stage(feed, b + 1)); /* overlaps batch b */
  PT_TRY(ptyc_buf_upload_wait(feed->model->be, b % 2));
  *patterns = feed->slots[b % 2];
  *scan_out = &feed->batch_scan;
  *first_out = 0;
  return PTYC_OK;
}
