/* Reconstruction engines (lsqml, ...), registered in engines/registry.c. */
#ifndef PTYC_ENGINE_H
#define PTYC_ENGINE_H

#include "ptyc/model.h"
#include "ptyc/options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_engine ptyc_engine;

/* Creates the engine named opts->reconstructor.engine; plans and allocates all it
 * needs before the first step. */
ptyc_status ptyc_engine_create(ptyc_model *model, const ptyc_options *opts, ptyc_engine **out);
/* Advances one iteration (0-based `iteration`); *loss receives the iteration's mean
 * cost per pattern pixel (the one host read of the iteration). */
ptyc_status ptyc_engine_step(ptyc_engine *engine, int iteration, double *loss);
void ptyc_engine_free(ptyc_engine *engine);

/* The engine's own state beyond the model, for checkpoints: a malloc'd blob the caller
 * frees, or *blob = NULL and *nbytes = 0 when the model is the engine's whole state. */
ptyc_status ptyc_engine_save_state(ptyc_engine *engine, void **blob, size_t *nbytes);
/* Restores a blob of ptyc_engine_save_state (NULL / 0 for none) after create, before
 * the first step. Fails with PTYC_E_FORMAT if the blob does not fit what the engine
 * keeps (another build, another job). */
ptyc_status ptyc_engine_load_state(ptyc_engine *engine, const void *blob, size_t nbytes);
/* The registered name of an engine ("lsqml"). */
const char *ptyc_engine_name(const ptyc_engine *engine);

/* Device bytes the named engine will allocate for `model`, `opts` and `batch_size`. */
ptyc_status ptyc_engine_plan_bytes(const char *name, const ptyc_model *model,
                                   const ptyc_options *opts, int batch_size, size_t *nbytes);
/* 1 if the named engine runs data parallel on several ranks (include/ptyc/comm.h). */
int ptyc_engine_data_parallel(const char *name);
/* Names of the registered engines, NULL-terminated. */
const char *const *ptyc_engine_names(void);

#ifdef __cplusplus
}
#endif
#endif
