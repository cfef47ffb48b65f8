/* Where a minibatch's measured patterns come from, for any engine.
 *
 * Resident: the model's device array [N][M][M], indexed through the scan's order.
 * Streamed (data larger than the device): the patterns stay in page-locked host memory;
 * each batch's patterns are copied into one of two device slots while the previous batch
 * computes (double buffering), and the Fourier op reads them through a batch-local scan
 * whose order is the identity. Engines call pt_feed_begin at the start of an iteration,
 * pt_feed_batch before each batch, and use the buffer and scan it returns. */
#ifndef PT_PATTERN_FEED_H
#define PT_PATTERN_FEED_H

#include "common/batching.h"
#include "ptyc/model.h"

typedef struct pt_pattern_feed {
  ptyc_model *model;
  const pt_batching *batching;
  const int32_t *order_host; /* this iteration's order (owned by the engine) */
  ptyc_buf slots[2];         /* streamed: float [batch_max][M][M] each */
  ptyc_buf identity;         /* streamed: int32 0..batch_max-1 */
  ptyc_scan batch_scan;      /* streamed: the scan the Fourier op sees */
} pt_pattern_feed;

/* Device bytes the feed adds: two slots and the identity order when streaming. */
size_t pt_feed_plan_bytes(const ptyc_model *model, int batch_max);
ptyc_status pt_feed_init(pt_pattern_feed *feed, ptyc_model *model,
                         const pt_batching *batching);
void pt_feed_free(pt_pattern_feed *feed);
/* Starts an iteration: queues the copy of batch 0 (streaming). */
ptyc_status pt_feed_begin(pt_pattern_feed *feed, const int32_t *order_host);
/* Batch `b` of the iteration, positions [first, first + n): queues the copy of batch b+1,
 * makes the computation wait for batch b's copy, and returns the patterns buffer and the
 * scan to pass to ptyc_op_fourier_residual (with `first` replaced by *pattern_first). */
ptyc_status pt_feed_batch(pt_pattern_feed *feed, const ptyc_scan *scan, int b, int first,
                          ptyc_buf *patterns, const ptyc_scan **pattern_scan,
                          int *pattern_first);

#endif
