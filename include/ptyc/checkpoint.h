/* Checkpoints: <output.directory>/checkpoint.h5, from which `ptyc run JOB.cfg --resume`
 * continues a reconstruction and ends with the result an uninterrupted run would have
 * given (bit for bit on the same device kind and CPU thread count).
 *
 * A checkpoint is a recon.h5 (shared/FORMATS.md: object, probe, positions, loss, ...;
 * `ptyc compare` and h5py open it as one) plus what resuming needs:
 *   root attribute  checkpoint_version  int, 1
 *   root attribute  n_iterations_done   the iteration counter: the next step's index
 *   root attribute  engine              the engine that wrote it
 *   root attribute  job                 ptyc_checkpoint_job_text() of the writing job
 *   root attribute  dataset_hash        ptyc_dataset_hash() as 16 hex digits
 *   root attributes device, threads     where it was computed (a resume elsewhere is
 *                                       allowed but may differ in the last bits)
 *   /peak_gib       (iterations,) float64  peak device memory per iteration (log.jsonl)
 *   /engine_state   (bytes,) uint8      the engine's save_state blob, when it has one
 * Random generator state needs no entry: ptyc draws from a counter-based generator
 * keyed by (seed, iteration), so the seed in `job` and the counter suffice. */
#ifndef PTYC_CHECKPOINT_H
#define PTYC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "ptyc/dataset.h"
#include "ptyc/options.h"
#include "ptyc/recon_io.h"
#include "ptyc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTYC_CHECKPOINT_VERSION 1

/* What a checkpoint holds beyond the recon.h5 layout. */
typedef struct ptyc_checkpoint_info {
  char *job;                 /* ptyc_checkpoint_job_text() of the job that wrote it */
  uint64_t dataset_hash;     /* ptyc_dataset_hash() of the dataset it reconstructs */
  void *engine_state;        /* the engine's save_state blob, or NULL */
  size_t engine_state_nbytes;
  double *peak_gib;          /* [iterations done] peak device memory, for log.jsonl */
  int threads;               /* CPU threads of the writing run (0 on a GPU) */
  char device[16];           /* "cpu" | "cuda" */
} ptyc_checkpoint_info;

/* Writes `recon` (recon->n_iterations = iterations done) and `info` to `path`
 * atomically: the whole file is written under a temporary name in the same
 * directory and renamed over `path` only when complete, so an existing checkpoint is
 * replaced by a complete new one or not at all. */
ptyc_status ptyc_checkpoint_write(const char *path, const ptyc_recon *recon,
                                  const ptyc_checkpoint_info *info);

/* Reads a checkpoint; the caller frees *recon with ptyc_recon_free and `info` with
 * ptyc_checkpoint_info_free. A recon.h5 or any other file is refused with a one-line
 * message (PTYC_E_FORMAT, or PTYC_E_IO for a missing or unreadable file). */
ptyc_status ptyc_checkpoint_read(const char *path, ptyc_recon **recon,
                                 ptyc_checkpoint_info *info);

/* Frees the members of `info` (not `info` itself) and zeroes it; NULL-safe. */
void ptyc_checkpoint_info_free(ptyc_checkpoint_info *info);

/* The part of a resolved job that decides the result of a run, as libconfig text
 * (malloc'd; the caller frees). Keys that only say how far and where to run are left
 * at their defaults, so that a resume may change them: reconstructor.iterations,
 * reconstructor.device, reconstructor.threads, reconstructor.memory_fraction, the
 * output group, and data.path (the dataset itself is compared by its hash). */
ptyc_status ptyc_checkpoint_job_text(const ptyc_options *opts, char **text);

/* A 64-bit fingerprint of a dataset as read: shape, patterns, positions, mask, probe
 * and geometry. Not cryptographic; it tells datasets apart, it does not authenticate. */
uint64_t ptyc_dataset_hash(const ptyc_dataset *ds);

/* Checks that the checkpoint at `path` (already read into `recon` and `info`) belongs
 * to this job: same engine, same job text, same dataset. Fails with PTYC_E_CONFIG and
 * a message naming the first key that differs (or the dataset) and what to do. */
ptyc_status ptyc_checkpoint_check(const char *path, const ptyc_recon *recon,
                                  const ptyc_checkpoint_info *info, const char *engine,
                                  const char *job_text, uint64_t dataset_hash);

#ifdef __cplusplus
}
#endif
#endif
