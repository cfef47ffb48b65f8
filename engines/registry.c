/* The table of engines. Adding an engine: its folder, and one line here. */
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"
#include "pt_try.h"

static const pt_engine_vtable *const engines[] = {
    &pt_lsqml_engine,
    &pt_autodiff_engine,
};
#define N_ENGINES (sizeof engines / sizeof engines[0])

struct ptyc_engine {
  const pt_engine_vtable *vt;
  void *state;
};

static const pt_engine_vtable *find(const char *name) {
  for (size_t i = 0; i < N_ENGINES; i++)
    if (strcmp(engines[i]->name, name) == 0) return engines[i];
  return NULL;
}

static ptyc_status unknown(const char *name) {
  return ptyc_fail(PTYC_E_CONFIG, "reconstructor.engine: no engine named \"%s\" in this build "
                                  "(available: lsqml, autodiff)", name);
}

const char *const *ptyc_engine_names(void) {
  static const char *const names[N_ENGINES + 1] = {"lsqml", "autodiff", NULL};
  return names;
}

ptyc_status ptyc_engine_plan_bytes(const char *name, const ptyc_model *model,
                                   const ptyc_options *opts, int batch_size, size_t *nbytes) {
  const pt_engine_vtable *vt = find(name);
  if (vt == NULL) return unknown(name);
  if (batch_size <= 0 || batch_size > model->n_positions) batch_size = model->n_positions;
  *nbytes = vt->plan_bytes(model, opts, batch_size);
  return PTYC_OK;
}

int ptyc_engine_data_parallel(const char *name) {
  const pt_engine_vtable *vt = find(name);
  return vt != NULL && vt->data_parallel;
}

ptyc_status ptyc_engine_create(ptyc_model *model, const ptyc_options *opts, ptyc_engine **out) {
  *out = NULL;
  const pt_engine_vtable *vt = find(opts->reconstructor.engine);
  if (vt == NULL) return unknown(opts->reconstructor.engine);
  if (!vt->data_parallel && model->n_patterns_held > 0 &&
      model->n_patterns_held < model->n_positions)
    return ptyc_fail(PTYC_E_CONFIG, "engine %s runs on one rank only, but this model holds a "
                                    "share of the patterns (%d of %d)",
                     vt->name, model->n_patterns_held, model->n_positions);
  ptyc_engine *e = calloc(1, sizeof *e);
  if (e == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating an engine");
  e->vt = vt;
  ptyc_status st = vt->init(model, opts, &e->state);
  if (st != PTYC_OK) {
    free(e);
    return st;
  }
  *out = e;
  return PTYC_OK;
}

ptyc_status ptyc_engine_step(ptyc_engine *engine, int iteration, double *loss) {
  return engine->vt->step(engine->state, iteration, loss);
}

ptyc_status ptyc_engine_save_state(ptyc_engine *engine, void **blob, size_t *nbytes) {
  *blob = NULL;
  *nbytes = 0;
  if (engine->vt->save_state == NULL) return PTYC_OK; /* the model is the whole state */
  return engine->vt->save_state(engine->state, blob, nbytes);
}

ptyc_status ptyc_engine_load_state(ptyc_engine *engine, const void *blob, size_t nbytes) {
  const char *name = engine->vt->name;
  if (engine->vt->load_state == NULL) {
    if (nbytes == 0) return PTYC_OK;
    return ptyc_fail(PTYC_E_FORMAT, "the checkpoint holds %zu bytes of engine state but "
                                    "engine %s keeps none: it was written by another build",
                     nbytes, name);
  }
  return engine->vt->load_state(engine->state, nbytes > 0 ? blob : NULL, nbytes);
}

const char *ptyc_engine_name(const ptyc_engine *engine) { return engine->vt->name; }

void ptyc_engine_free(ptyc_engine *engine) {
  if (engine == NULL) return;
  engine->vt->free(engine->state);
  free(engine);
}
