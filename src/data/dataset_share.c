/* A rank's share of a dataset (ptyc_dataset_read_share): every rank reads the positions
 * and patterns of its own part of the scan, then the ranks exchange what must be the
 * same everywhere (all positions, the mask), so that each ends with the dataset of a
 * single-rank read minus the other ranks' patterns. */
#include <stdlib.h>
#include <string.h>

#include "data/readers.h"
#include "ptyc/comm.h"
#include "pt_try.h"

ptyc_status pt_share_locate(pt_share *share, int n_total, const char *path) {
  if (share->parts < 1 || share->part < 0 || share->part >= share->parts)
    return ptyc_fail(PTYC_E_ARG, "%s: share %d of %d does not exist", path, share->part,
                     share->parts);
  share->n_total = n_total;
  ptyc_comm_share(n_total, share->part, share->parts, &share->first, &share->count);
  if (share->count < 1)
    return ptyc_fail(PTYC_E_CONFIG, "%s holds %d positions, too few for %d ranks: run at most "
                                    "%d ranks", path, n_total, share->parts, n_total);
  return PTYC_OK;
}

ptyc_status pt_share_keep(pt_share *share, ptyc_dataset *ds, const char *path) {
  PT_TRY(pt_share_locate(share, ds->n_patterns, path));
  if (share->count == ds->n_patterns) return PTYC_OK;
  size_t plane = (size_t)ds->m * ds->m;
  memmove(ds->patterns, ds->patterns + (size_t)share->first * plane,
          sizeof(float) * plane * share->count);
  memmove(ds->positions_px, ds->positions_px + 2 * (size_t)share->first,
          sizeof(double) * 2 * share->count);
  ds->n_patterns = share->count;
  /* Give the rest back; shrinking cannot fail in practice, and if it does the larger
   * block stays valid. */
  float *patterns = realloc(ds->patterns, sizeof(float) * plane * share->count);
  if (patterns) ds->patterns = patterns;
  return PTYC_OK;
}

/* Every rank must have read the same file: N, M and the probe modes agree. */
static ptyc_status check_same(ptyc_comm *comm, const ptyc_data_options *opts, int n_total,
                              const ptyc_dataset *ds) {
  double mine[3] = {n_total, ds->m, ds->probe_modes};
  double high[3], low[3];
  for (int i = 0; i < 3; i++) {
    high[i] = mine[i];
    low[i] = -mine[i];
  }
  PT_TRY(ptyc_comm_allreduce_host(comm, high, 3, PTYC_COMM_MAX));
  PT_TRY(ptyc_comm_allreduce_host(comm, low, 3, PTYC_COMM_MAX));
  for (int i = 0; i < 3; i++)
    if (high[i] != -low[i])
      return ptyc_fail(PTYC_E_FORMAT, "%s differs between ranks (N, M or probe modes: %g to "
                                      "%g): every rank must read the same file",
                       opts->path, -low[i], high[i]);
  return PTYC_OK;
}

/* All N positions on every rank: each fills its own rows of a zeroed array and the sum
 * over ranks assembles them (every row has exactly one nonzero contribution, so the
 * sum is exact). */
static ptyc_status gather_positions(ptyc_comm *comm, const pt_share *share, ptyc_dataset *ds) {
  double *all = calloc((size_t)share->n_total * 2, sizeof *all);
  if (all == NULL)
    return ptyc_fail(PTYC_E_NOMEM, "out of memory for %d positions", share->n_total);
  memcpy(all + 2 * (size_t)share->first, ds->positions_px, sizeof(double) * 2 * share->count);
  ptyc_status st = ptyc_comm_allreduce_host(comm, all, (size_t)share->n_total * 2,
                                            PTYC_COMM_SUM);
  if (st != PTYC_OK) {
    free(all);
    return st;
  }
  free(ds->positions_px);
  ds->positions_px = all;
  return PTYC_OK;
}

/* The mask of all ranks: a pixel is valid where it is valid on every rank (each rank's
 * data.saturation only saw its own patterns). No rank with a mask: none. */
static ptyc_status combine_masks(ptyc_comm *comm, ptyc_dataset *ds) {
  double any = ds->mask != NULL;
  PT_TRY(ptyc_comm_allreduce_host(comm, &any, 1, PTYC_COMM_MAX));
  if (any == 0.0) return PTYC_OK;
  size_t plane = (size_t)ds->m * ds->m;
  double *invalid = malloc(sizeof(double) * plane);
  if (ds->mask == NULL) ds->mask = malloc(plane);
  if (invalid == NULL || ds->mask == NULL) {
    free(invalid);
    return ptyc_fail(PTYC_E_NOMEM, "out of memory combining the masks of the ranks");
  }
  for (size_t i = 0; i < plane; i++) invalid[i] = ds->mask[i] ? 0.0 : 1.0;
  ptyc_status st = ptyc_comm_allreduce_host(comm, invalid, plane, PTYC_COMM_MAX);
  for (size_t i = 0; st == PTYC_OK && i < plane; i++) ds->mask[i] = invalid[i] == 0.0;
  free(invalid);
  return st;
}

ptyc_status ptyc_dataset_read_share(const ptyc_data_options *opts, ptyc_comm *comm,
                                    ptyc_dataset **out) {
  if (opts == NULL || out == NULL)
    return ptyc_fail(PTYC_E_ARG, "ptyc_dataset_read_share: NULL argument");
  *out = NULL;
  int size = ptyc_comm_size(comm);
  if (size == 1) return ptyc_dataset_read_opts(opts, out);
  pt_share share = {.part = ptyc_comm_rank(comm), .parts = size};
  ptyc_dataset *ds = NULL;
  ptyc_status st = PTYC_OK;
  PT_CHECK(pt_dataset_read_share_info(opts, &share, &ds, NULL));
  PT_CHECK(check_same(comm, opts, share.n_total, ds));
  PT_CHECK(gather_positions(comm, &share, ds));
  PT_CHECK(combine_masks(comm, ds));
  ds->n_patterns = share.n_total;
  ds->share_first = share.first;
  ds->share_count = share.count;
  *out = ds;
  return PTYC_OK;
fail:
  ptyc_dataset_free(ds);
  return st;
}
