/* One reconstruction from resolved options: the body of `ptyc run`. */
#ifndef PTYC_RUN_H
#define PTYC_RUN_H

#include <stddef.h>

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
} ptyc_run_result;

typedef struct ptyc_run_flags {
  int quiet;                  /* no configuration table, no per-iteration lines */
} ptyc_run_flags;

/* Resolves the device, reads the dataset, checks memory, runs the engine and writes
 * the outputs (recon.h5, PNGs, log.jsonl) into opts->output.directory. Nothing is
 * written before the dataset and the memory plan are accepted. */
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
