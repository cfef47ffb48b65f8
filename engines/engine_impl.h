/* The engine vtable (internal): adding an engine is one folder and one line in
 * engines/registry.c. */
#ifndef PT_ENGINE_IMPL_H
#define PT_ENGINE_IMPL_H

#include "ptyc/engine.h"

typedef struct pt_engine_vtable {
  const char *name;
  /* Device bytes init will allocate (so callers can check before allocating). */
  size_t (*plan_bytes)(const ptyc_model *model, int batch_size);
  ptyc_status (*init)(ptyc_model *model, const ptyc_options *opts, void **state);
  ptyc_status (*step)(void *state, int iteration, double *loss);
  void (*free)(void *state);
} pt_engine_vtable;

extern const pt_engine_vtable pt_lsqml_engine;

#endif
