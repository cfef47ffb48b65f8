/* One reconstruction from resolved options: the body of `ptyc run`. */
#ifndef PTYC_RUN_H
#define PTYC_RUN_H

#include <signal.h>
#include <stddef.h>

#include "ptyc/comm.h"
#include "ptyc/options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_run_result {
  int iterations_done;
  double final_loss;
  double median_iteration_ms;
  size_t peak_device_bytes;
  char device[16];            /* "cpu" or "cuda" */
  int resumed_at;             /* iterations already done in the checkpoint; 0 if fresh */
  int checkpoint_iteration;   /* iterations done in the last checkpoint.h5 written or
                                 resumed from by this run; -1 if none */
} ptyc_run_result;

typedef struct ptyc_run_flags {
  int quiet;                  /* no configuration table, no per-iteration lines */
  int resume;                 /* continue from <output.directory>/checkpoint.h5 */
  /* When non-NULL and set to a signal number (by a signal handler) during the run, the
   * run finishes the current iteration, writes checkpoint.h5 and the outputs, and
   * returns PTYC_E_INTERRUPTED. */
  volatile sig_atomic_t *stop_signal;
  /* Fault injection for tests (0 = off): after this many iterations the object is
   * made NaN, as a diverging engine would leave it, to check that a non-finite state
   * is reported and never replaces a good checkpoint or output. */
  int fault_nan_after;
  /* The ranks of a data-parallel run (include/ptyc/comm.h), created by the caller;
   * NULL = one rank. With several, every rank calls ptyc_run_job: each reads its share
   * of the patterns and uses GPU local_rank % visible GPUs; only rank 0 prints
   * progress and writes files. The run binds the comm to its backend and unbinds it
   * before returning. On an error the caller prints it and calls ptyc_comm_abort. A
   * stop signal on any rank stops all after the same iteration (its number is written
   * back to *stop_signal). */
  ptyc_comm *comm;
} ptyc_run_flags;

/* Resolves the device, reads the dataset, checks memory, runs the engine and writes
 * the outputs (recon.h5, PNGs, log.jsonl, checkpoint.h5 when output.checkpoint_every
 * is set) into opts->output.directory. Nothing is written before the dataset, the
 * memory plan and (with flags->resume) the checkpoint are accepted. A cost or a model
 * that becomes NaN/Inf fails with PTYC_E_NUMERIC and leaves the last good checkpoint
 * and outputs as they were. */
ptyc_status ptyc_run_job(const ptyc_options *opts, const ptyc_run_flags *flags,
                         ptyc_run_result *result);

/* The device a job will use: PTYC_DEVICE (cpu|cuda) overrides opts; "auto" becomes
 * CUDA when a usable GPU is visible, else the CPU (with *notice set to why). */
ptyc_status ptyc_resolve_device(ptyc_device_kind requested, ptyc_device_kind *resolved,
                                char *notice, size_t notice_size);

#ifdef __cplusplus
}
#endif
#endif
