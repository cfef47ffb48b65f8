/* Autodiff: gradient-based reconstruction by reverse-mode differentiation of the
 * far-field model (the counterpart of Pty-Chi's Autodiff reconstructor).
 *
 * For every minibatch: the forward model and its VJPs on a tape (farfield.h) give the
 * cost and the Wirtinger gradients of the object, the probe modes and the positions;
 * optional regularisers add to the object's; then each optimisable parameter takes one
 * step of its own optimizer (optimizers.h), inside its iteration window. All on the
 * backend: the one host read per iteration is the cost.
 *
 * Steps work on normalised gradients, so that a first run converges without tuning:
 *  - object: grad / (c M^2 ((1 - a) illum + a max illum)), illum = sum_b,k |p_bk|^2 over
 *    the minibatch (a = autodiff.illumination_mix). For the amplitude cost, grad psi =
 *    -M^2 chi with chi = F^-1(Psi' - Psi) the exit-wave correction of the modulus
 *    projection, so an SGD step of 1 with a = 1 is exactly the ePIE / minibatch update
 *    O += sum conj(p) chi / max(illum).
 *  - probe: the same with the object intensity sum_b |O_b|^2.
 *  - positions: dC/df / (c M^4 h Obar^2), a Gauss-Newton step: h = sum |dS/df|^2 (from
 *    the shift VJP) and Obar^2 = max(sum_b |O_b|^2) / n.
 * c is the cost's curvature per |Psi|^2 near a fit (amplitude 1, Poisson 2, intensity
 * 4 max(d)), so that the same steps suit every cost.
 * The regularisers are weighted relative to the mean data cost per pattern pixel and
 * use means over object pixels: the iteration's loss is
 *   sum_b cost_b / (N M^2) + l1_weight mean s(O) + tv_weight mean s(grad O). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/farfield.h"
#include "autodiff/optimizers.h"
#include "common/batching.h"
#include "common/pattern_feed.h"
#include "engine_impl.h"
#include "pt_try.h"

typedef struct autodiff {
  ptyc_model *model;
  ptyc_backend *be;
  ptyc_options opts;
  ptyc_scan scan;
  pt_batching batching;
  int32_t *order_host;      /* [N] this iteration's order */
  int *batch_first, *batch_n; /* [n_batches] each minibatch's entries of the order */
  pt_pattern_feed feed;     /* the minibatches' measured patterns (resident or streamed) */
  ptyc_buf order;           /* int32 [N] on the device */
  ptyc_buf loss;            /* double: the iteration's summed cost */
  pt_farfield ff;
  ptyc_buf grad_object;     /* c32 [H][W] */
  ptyc_buf illumination;    /* float [H][W] */
  ptyc_buf grad_probe;      /* c32 [K][M][M] */
  ptyc_buf object_intensity; /* float [M][M] */
  ptyc_buf grad_positions;  /* double [batch_max][4] */
  pt_param_optimizer param[PT_PARAM_COUNT];
  double curvature;         /* c above */
  int position_updates;     /* iterations that have updated the positions */
  double previous_loss;     /* the last iteration's loss (momentum restarts), 0 = none */
  int restarts;             /* momentum restarts so far */
} autodiff;

static size_t object_count(const ptyc_model *m) { return (size_t)m->obj_h * m->obj_w; }
static size_t modes_count(const ptyc_model *m) { return (size_t)m->n_modes * m->m * m->m; }

/* Optimizer state bytes: complex parameters keep c32 m and float v; positions 4 doubles. */
static size_t state_bytes(pt_param_kind kind, const ptyc_model *m) {
  switch (kind) {
  case PT_PARAM_OBJECT: return object_count(m) * (sizeof(ptyc_c32) + sizeof(float));
  case PT_PARAM_PROBE: return modes_count(m) * (sizeof(ptyc_c32) + sizeof(float));
  default: return (size_t)m->n_positions * 4 * sizeof(double);
  }
}

/* An upper bound: every parameter optimisable. */
static size_t autodiff_plan_bytes(const ptyc_model *m, int batch) {
  size_t image = (size_t)m->m * m->m;
  size_t total = pt_farfield_plan_bytes(m->m, m->n_modes, batch);
  total += object_count(m) * (sizeof(ptyc_c32) + sizeof(float)); /* grad_object, illumination */
  total += modes_count(m) * sizeof(ptyc_c32) + image * sizeof(float);
  total += (size_t)batch * 4 * sizeof(double) + sizeof(double);
  total += (size_t)m->n_positions * sizeof(int32_t) + pt_feed_plan_bytes(m, batch);
  for (int k = 0; k < PT_PARAM_COUNT; k++) total += state_bytes((pt_param_kind)k, m);
  return total;
}

static void autodiff_free(void *state) {
  autodiff *s = state;
  if (s == NULL) return;
  ptyc_backend *be = s->be;
  ptyc_buf *bufs[] = {&s->order,      &s->loss,          &s->grad_object,     &s->illumination,
                      &s->grad_probe, &s->object_intensity, &s->grad_positions};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  for (int k = 0; k < PT_PARAM_COUNT; k++) pt_param_optimizer_free(&s->param[k], be);
  pt_farfield_free(&s->ff);
  pt_feed_free(&s->feed);
  pt_batching_free(&s->batching);
  free(s->order_host);
  free(s->batch_first);
  free(s->batch_n);
  free(s);
}

/* The largest measured intensity, for the intensity cost's curvature: read from host
 * memory when streaming, else back from the device a slice at a time (init only). */
static ptyc_status max_pattern_value(const ptyc_model *m, double *out) {
  size_t total = (size_t)m->n_positions * m->m * m->m, chunk = (size_t)1 << 22;
  double mx = 0.0;
  if (m->streaming) {
    for (size_t i = 0; i < total; i++)
      if (m->patterns_host[i] > mx) mx = m->patterns_host[i];
    *out = mx;
    return PTYC_OK;
  }
  float *host = malloc(sizeof(float) * (total < chunk ? total : chunk));
  if (host == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory reading the patterns back");
  ptyc_status st = PTYC_OK;
  for (size_t at = 0; at < total && st == PTYC_OK; at += chunk) {
    size_t count = total - at < chunk ? total - at : chunk;
    st = ptyc_buf_download(m->be, host, m->patterns, at * sizeof(float), count * sizeof(float));
    for (size_t i = 0; st == PTYC_OK && i < count; i++)
      if (host[i] > mx) mx = host[i];
  }
  free(host);
  *out = mx;
  return st;
}

static ptyc_status autodiff_init(ptyc_model *model, const ptyc_options *opts, void **state) {
  if (model->comm != NULL && ptyc_comm_size(model->comm) > 1)
    return ptyc_fail(PTYC_E_UNSUPPORTED,
                     "the autodiff engine runs on one rank for now: start ptyc without "
                     "mpirun / srun / ptyc launch, or use engine \"lsqml\"");
  if (opts->autodiff.optimizer != PTYC_OPTIMIZER_SGD &&
      opts->autodiff.optimizer != PTYC_OPTIMIZER_ADAM &&
      opts->autodiff.optimizer != PTYC_OPTIMIZER_RMSPROP)
    return ptyc_fail(PTYC_E_CONFIG, "autodiff.optimizer must be \"sgd\", \"adam\" or "
                                    "\"rmsprop\"");
  autodiff *s = calloc(1, sizeof *s);
  if (s == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the autodiff engine");
  ptyc_status st = PTYC_OK;
  ptyc_backend *be = model->be;
  const ptyc_autodiff_options *ad = &opts->autodiff;
  s->model = model;
  s->be = be;
  s->opts = *opts;
  int n = model->n_positions;
  PT_CHECK(pt_batching_init(&s->batching, model, opts->reconstructor.batch_size,
                            opts->reconstructor.batch_order, opts->reconstructor.seed));
  int batch = s->batching.batch_max;
  int n_batches = s->batching.n_batches;
  s->order_host = malloc(sizeof(int32_t) * n);
  s->batch_first = malloc(sizeof(int) * n_batches);
  s->batch_n = malloc(sizeof(int) * n_batches);
  if (!s->order_host || !s->batch_first || !s->batch_n)
    PT_FAIL(PTYC_E_NOMEM, "out of memory (autodiff order)");
  for (int b = 0; b < n_batches; b++) pt_batch_range(&s->batching, b, &s->batch_first[b], &s->batch_n[b]);
  PT_CHECK(pt_feed_init(&s->feed, model, batch));

  PT_CHECK(pt_farfield_init(&s->ff, be, model->m, model->n_modes, batch,
                            n % s->batching.n_batches != 0));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * n, &s->order));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double), &s->loss));
  int object_on = opts->object.optimizable, probe_on = opts->probe.optimizable;
  int positions_on = ad->positions_optimizable;
  if (object_on) {
    PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * object_count(model), &s->grad_object));
    PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * object_count(model), &s->illumination));
  }
  if (probe_on) PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * modes_count(model), &s->grad_probe));
  if (probe_on || positions_on)
    PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * model->m * model->m, &s->object_intensity));
  if (positions_on)
    PT_CHECK(ptyc_buf_alloc(be, sizeof(double) * 4 * batch, &s->grad_positions));
  int enabled[PT_PARAM_COUNT] = {object_on, probe_on, positions_on};
  for (int k = 0; k < PT_PARAM_COUNT; k++)
    PT_CHECK(pt_param_optimizer_init(&s->param[k], be, (pt_param_kind)k, enabled[k], ad,
                                     state_bytes((pt_param_kind)k, model)));

  switch (ad->loss) {
  case PTYC_LOSS_POISSON: s->curvature = 2.0; break;
  case PTYC_LOSS_INTENSITY: {
    double mx = 0.0;
    PT_CHECK(max_pattern_value(model, &mx));
    s->curvature = 4.0 * (mx > 1.0 ? mx : 1.0);
    break;
  }
  default: s->curvature = 1.0;
  }

  s->scan = (ptyc_scan){.m = model->m, .n_modes = model->n_modes, .obj_h = model->obj_h,
                        .obj_w = model->obj_w, .positions = model->positions,
                        .order = s->order, .n_positions = n};
  *state = s;
  return PTYC_OK;
fail:
  autodiff_free(s);
  return st;
}

/* One minibatch: gradients on the tape, regularisers, one step of each active parameter. */
static ptyc_status autodiff_batch(autodiff *s, int b, const int active[PT_PARAM_COUNT]) {
  int first = s->batch_first[b], n = s->batch_n[b];
  ptyc_backend *be = s->be;
  ptyc_model *m = s->model;
  const ptyc_autodiff_options *ad = &s->opts.autodiff;
  size_t obj_count = object_count(m), image = (size_t)m->m * m->m;
  double pixels = (double)image;

  pt_farfield_grads grads = {.object = {0}};
  if (active[PT_PARAM_OBJECT]) {
    PT_TRY(ptyc_buf_zero(be, s->grad_object, 0, s->grad_object.nbytes));
    PT_TRY(ptyc_buf_zero(be, s->illumination, 0, s->illumination.nbytes));
    grads.object = s->grad_object;
    grads.illumination = s->illumination;
  }
  if (active[PT_PARAM_PROBE]) grads.probe = s->grad_probe;
  if (active[PT_PARAM_PROBE] || active[PT_PARAM_POSITIONS]) {
    PT_TRY(ptyc_buf_zero(be, s->object_intensity, 0, s->object_intensity.nbytes));
    grads.object_intensity = s->object_intensity;
  }
  if (active[PT_PARAM_POSITIONS])
    grads.positions = (ptyc_buf){s->grad_positions.ptr, sizeof(double) * 4 * n};

  /* One rank: entry e's pattern is that of position order[e], as the scan finds it. */
  pt_farfield_data data = {.loss = ad->loss, .mask = m->mask};
  PT_TRY(pt_feed_batch(&s->feed, &s->scan, b, &data.patterns, &data.pattern_scan,
                       &data.pattern_first));
  PT_TRY(pt_farfield_run(&s->ff, &s->scan, first, n, m->object, m->probe, &data, &grads));
  PT_TRY(ptyc_op_sum(be, s->ff.cost, (size_t)n, s->loss, 1));

  if (active[PT_PARAM_OBJECT] && (ad->l1_weight > 0.0 || ad->tv_weight > 0.0)) {
    /* This minibatch's share (n / N) of N M^2 weight * mean over the object. */
    double share = (double)n * pixels / (double)obj_count;
    PT_TRY(ptyc_op_object_regularize(be, m->object, m->obj_h, m->obj_w, share * ad->l1_weight,
                                     share * ad->tv_weight, s->grad_object, s->loss));
  }

  double mix = ad->illumination_mix, c = s->curvature;
  if (active[PT_PARAM_OBJECT])
    PT_TRY(pt_param_step(be, &s->param[PT_PARAM_OBJECT], m->object, s->grad_object, obj_count,
                         s->illumination, obj_count, 1.0 / (c * pixels), mix));
  if (active[PT_PARAM_PROBE])
    PT_TRY(pt_param_step(be, &s->param[PT_PARAM_PROBE], m->probe, s->grad_probe, modes_count(m),
                         s->object_intensity, image, 1.0 / (c * pixels), mix));
  if (active[PT_PARAM_POSITIONS])
    PT_TRY(pt_positions_step(be, &s->param[PT_PARAM_POSITIONS], &s->scan, first, n, grads.positions,
                             s->object_intensity, image, (double)n / (c * pixels * pixels),
                             s->position_updates + 1));
  return PTYC_OK;
}

static ptyc_status autodiff_step(void *state, int iteration, double *loss) {
  autodiff *s = state;
  ptyc_model *m = s->model;
  int active[PT_PARAM_COUNT];
  for (int k = 0; k < PT_PARAM_COUNT; k++) active[k] = pt_param_active(&s->param[k], iteration);

  pt_batch_order(&s->batching, iteration, s->order_host);
  PT_TRY(ptyc_buf_upload(s->be, s->order, 0, s->order_host, s->order.nbytes));
  PT_TRY(ptyc_buf_zero(s->be, s->loss, 0, sizeof(double)));
  PT_TRY(pt_feed_begin(&s->feed, s->order_host, s->batch_first, s->batch_n,
                       s->batching.n_batches));
  for (int b = 0; b < s->batching.n_batches; b++) PT_TRY(autodiff_batch(s, b, active));
  if (active[PT_PARAM_POSITIONS]) s->position_updates++;
  if (active[PT_PARAM_PROBE] && s->opts.probe.orthogonalize && m->n_modes > 1)
    PT_TRY(ptyc_op_orthogonalize_modes(s->be, m->probe, m->n_modes, m->m));

  double total = 0.0;
  PT_TRY(ptyc_buf_download(s->be, &total, s->loss, 0, sizeof total));
  *loss = total / ((double)m->n_positions * m->m * m->m);
  if (!isfinite(*loss))
    return ptyc_fail(PTYC_E_NUMERIC, "the cost became %g at iteration %d: the reconstruction "
                                     "diverged (check the data, or lower the autodiff step "
                                     "sizes)", *loss, iteration + 1);
  /* Adaptive restart (O'Donoghue and Candes 2015): when the cost rises, the momentum
   * has overshot; forgetting it makes SGD with momentum safe for any minibatching. */
  if (s->previous_loss > 0.0 && *loss > s->previous_loss) {
    for (int k = 0; k < PT_PARAM_COUNT; k++) PT_TRY(pt_param_restart(s->be, &s->param[k]));
    s->restarts++;
  }
  s->previous_loss = *loss;
  return PTYC_OK;
}

/* ---- checkpoint state ------------------------------------------------------------------
 * Beyond the model, the next step depends on each parameter's optimizer state and
 * update count. Blob: this header, then the state of each enabled parameter in the
 * order object, probe, positions, as stored on the device. */
typedef struct autodiff_state_header {
  uint32_t version; /* AUTODIFF_STATE_VERSION */
  int32_t position_updates;
  int32_t updates[PT_PARAM_COUNT];
  int32_t restarts;
  double previous_loss;            /* decides the next momentum restart */
  uint64_t nbytes[PT_PARAM_COUNT]; /* 0 for a parameter that is not optimised */
} autodiff_state_header;

#define AUTODIFF_STATE_VERSION 1u

static ptyc_status autodiff_save_state(void *state, void **blob, size_t *nbytes) {
  autodiff *s = state;
  autodiff_state_header h = {.version = AUTODIFF_STATE_VERSION,
                             .position_updates = s->position_updates,
                             .restarts = s->restarts,
                             .previous_loss = s->previous_loss};
  size_t total = sizeof h;
  for (int k = 0; k < PT_PARAM_COUNT; k++) {
    h.updates[k] = s->param[k].params.t;
    h.nbytes[k] = s->param[k].state.nbytes;
    total += s->param[k].state.nbytes;
  }
  unsigned char *b = malloc(total);
  if (b == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory saving the autodiff state");
  memcpy(b, &h, sizeof h);
  size_t at = sizeof h;
  for (int k = 0; k < PT_PARAM_COUNT; k++) {
    ptyc_status st = PTYC_OK;
    if (h.nbytes[k] > 0) st = ptyc_buf_download(s->be, b + at, s->param[k].state, 0, h.nbytes[k]);
    if (st != PTYC_OK) {
      free(b);
      return st;
    }
    at += h.nbytes[k];
  }
  *blob = b;
  *nbytes = total;
  return PTYC_OK;
}

static ptyc_status autodiff_load_state(void *state, const void *blob, size_t nbytes) {
  autodiff *s = state;
  autodiff_state_header h = {0};
  size_t want = sizeof h;
  for (int k = 0; k < PT_PARAM_COUNT; k++) want += s->param[k].state.nbytes;
  if (nbytes >= sizeof h) memcpy(&h, blob, sizeof h);
  int fits = nbytes == want && h.version == AUTODIFF_STATE_VERSION;
  for (int k = 0; fits && k < PT_PARAM_COUNT; k++) fits = h.nbytes[k] == s->param[k].state.nbytes;
  if (!fits)
    return ptyc_fail(PTYC_E_FORMAT, "the checkpoint's autodiff state (%zu bytes) does not fit "
                                    "this job's optimizers (%zu bytes): it was written by "
                                    "another build or job", nbytes, want);
  const unsigned char *b = blob;
  size_t at = sizeof h;
  for (int k = 0; k < PT_PARAM_COUNT; k++) {
    if (h.nbytes[k] > 0) PT_TRY(ptyc_buf_upload(s->be, s->param[k].state, 0, b + at, h.nbytes[k]));
    s->param[k].params.t = h.updates[k];
    at += h.nbytes[k];
  }
  s->position_updates = h.position_updates;
  s->restarts = h.restarts;
  s->previous_loss = h.previous_loss;
  return PTYC_OK;
}

const pt_engine_vtable pt_autodiff_engine = {
    .name = "autodiff",
    .plan_bytes = autodiff_plan_bytes,
    .init = autodiff_init,
    .step = autodiff_step,
    .free = autodiff_free,
    .save_state = autodiff_save_state,
    .load_state = autodiff_load_state,
};
