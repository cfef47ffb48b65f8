/* Where a minibatch's measured patterns come from, for any engine.
 *
 * The engine describes each iteration by its batches: batch b is entries
 * [batch_first[b], batch_first[b] + batch_n[b]) of the iteration's order (on several
 * ranks: this rank's entries of global batch b), and entry e's pattern is number
 * pattern_index[e] of the model's patterns (j - model->pattern_first for position j).
 *
 * Resident: the model's device array, indexed through the engine's pattern scan (a
 * scan whose order holds pattern_index on the device).
 * Streamed (data larger than the device): the patterns stay in page-locked host memory;
 * each batch's patterns are copied into one of two device slots while the previous batch
 * computes (double buffering), and the Fourier op reads them through a batch-local scan
 * whose order is the identity. Engines call pt_feed_begin at the start of an iteration,
 * pt_feed_batch before each batch, and use the buffer and scan it returns. */
#ifndef PT_PATTERN_FEED_H
#define PT_PATTERN_FEED_H

#include <stdint.h>

#include "ptyc/model.h"

typedef struct pt_pattern_feed {
  ptyc_model *model;
  int batch_max;              /* the most entries of one batch */
  int n_batches;              /* this iteration's */
  const int32_t *pattern_index; /* this iteration's (owned by the engine) */
  const int *batch_first, *batch_n;
  ptyc_buf slots[2];          /* streamed: float [batch_max][M][M] each */
  ptyc_buf identity;          /* streamed: int32 0..batch_max-1 */
  ptyc_scan batch_scan;       /* streamed: the scan the Fourier op sees */
} pt_pattern_feed;

/* Device bytes the feed adds: two slots and the identity order when streaming. */
size_t pt_feed_plan_bytes(const ptyc_model *model, int batch_max);
ptyc_status pt_feed_init(pt_pattern_feed *feed, ptyc_model *model, int batch_max);
void pt_feed_free(pt_pattern_feed *feed);
/* Starts an iteration of `n_batches` batches described as above (the arrays must stay
 * unchanged until the iteration ends); queues the copy of batch 0 (streaming). */
ptyc_status pt_feed_begin(pt_pattern_feed *feed, const int32_t *pattern_index,
                          const int *batch_first, const int *batch_n, int n_batches);
/* Batch `b`: queues the copy of batch b+1, makes the computation wait for batch b's
 * copy, and returns the patterns buffer and the scan and first entry to pass to
 * ptyc_op_fourier_residual. `pattern_scan` is the engine's scan of pattern_index,
 * returned when the patterns are resident. */
ptyc_status pt_feed_batch(pt_pattern_feed *feed, const ptyc_scan *pattern_scan, int b,
                          ptyc_buf *patterns, const ptyc_scan **scan_out, int *first_out);

#endif
