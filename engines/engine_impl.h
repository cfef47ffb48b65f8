/* The engine vtable (internal): adding an engine is one folder and one line in
 * engines/registry.c. */
#ifndef PT_ENGINE_IMPL_H
#define PT_ENGINE_IMPL_H

#include "ptyc/engine.h"

typedef struct pt_engine_vtable {
  const char *name;
  /* 1 if init/step handle a model that holds only this rank's share of the patterns
   * and sum their updates over model->comm (include/ptyc/comm.h): the engine runs on
   * several ranks. 0: one rank only (the driver refuses more). */
  int data_parallel;
  /* Device bytes init will allocate (so callers can check before allocating). */
  size_t (*plan_bytes)(const ptyc_model *model, const ptyc_options *opts, int batch_size);
  ptyc_status (*init)(ptyc_model *model, const ptyc_options *opts, void **state);
  ptyc_status (*step)(void *state, int iteration, double *loss);
  void (*free)(void *state);
  /* Optional checkpoint slots; NULL = the model (object, probe, positions) and the
   * iteration counter are the engine's whole state, as for lsqml, whose batch order
   * is a pure function of seed and iteration.
   * save_state: called between iterations; returns the state the next step depends on
   *   beyond the model (optimizer moments, step counters, ...) as one malloc'd byte
   *   blob (*blob, *nbytes) that the caller frees. The layout is the engine's own; put
   *   a version number first so that a later build can refuse an old blob.
   * load_state: called after init, before the first step of a resumed run, with the
   *   blob save_state gave (NULL, 0 if it gave none) for the same engine and job; it
   *   checks the blob (version, sizes) and fails with PTYC_E_FORMAT and a one-line
   *   message if it does not fit. After it, step(iteration) must give bit for bit what
   *   the uninterrupted run gave. An engine with save_state must also have load_state. */
  ptyc_status (*save_state)(void *state, void **blob, size_t *nbytes);
  ptyc_status (*load_state)(void *state, const void *blob, size_t nbytes);
} pt_engine_vtable;

extern const pt_engine_vtable pt_lsqml_engine;
extern const pt_engine_vtable pt_autodiff_engine;

#endif
