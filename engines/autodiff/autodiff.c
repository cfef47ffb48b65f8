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
 *   sum_b cost_b / (N M^2) + l1_weight mean s(O) + tv_weight mean s(grad O).
 *
 * Data parallel on several ranks, as lsqml (include/ptyc/comm.h): every rank holds
 * replicas of object, probe, positions and the optimizer states, but only the patterns
 * of its own positions [pattern_first, pattern_first + n_patterns_held). The global
 * minibatches are the same for any number of ranks; within each, the entries are put
 * in rank order (stable), so that a rank's entries of it are contiguous: its local
 * sub-batch, of varying size, maybe empty. Per global minibatch each rank runs the tape
 * on its sub-batch, and the comm sums
 *   the object gradient and illumination over the object rows the minibatch touches
 *   (its patches' bounding rows, from the positions at the start of the iteration:
 *   a position moves only in its own minibatch's step, after its gradient);
 *   the probe gradient and the object intensity;
 *   the position gradients, each rank's in its own slots of a zeroed array of the
 *   minibatch's size (so summing is exact);
 *   the cost, once per iteration.
 * The regularisers are added after the sums (their cost on rank 0 only). Then every
 * rank takes the same optimizer steps, positions included (for the whole minibatch,
 * from the summed gradients): replicas and optimizer states stay identical, and the
 * momentum restarts follow the summed cost. A rank with an empty sub-batch still joins
 * every sum, with zeros. With one rank the sums are no-ops, the order is the batching's
 * and the results are those of a run without a comm, bit for bit. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/farfield.h"
#include "autodiff/optimizers.h"
#include "common/batching.h"
#include "common/pattern_feed.h"
#include "engine_impl.h"
#include "ptyc/comm.h"
#include "pt_try.h"

typedef struct autodiff {
  ptyc_model *model;
  ptyc_backend *be;
  ptyc_comm *comm;          /* the model's; NULL = one rank */
  int rank, ranks;
  ptyc_options opts;
  ptyc_scan scan;           /* positions through the iteration's (rank-ordered) order */
  ptyc_scan pattern_scan;   /* this rank's entries' patterns, through `pattern_order` */
  pt_batching batching;
  int local_max;            /* the most entries of one minibatch this rank can own */
  int *share_first;         /* [ranks + 1] the positions' shares: rank r owns
                               [share_first[r], share_first[r + 1]) */
  int *rank_count;          /* [ranks + 1] work space of the rank ordering */
  int32_t *batch_order;     /* [N] the batching's order of this iteration */
  int32_t *order_host;      /* [N] the same with each minibatch in rank order */
  int *batch_first, *batch_n; /* [n_batches] each minibatch's entries of the order */
  int *local_offset;        /* [n_batches] this rank's first entry within the minibatch */
  int *local_first, *local_n; /* [n_batches] its entries of `local_pattern` */
  int32_t *local_pattern;   /* [held] this rank's entries' patterns: j - pattern_first */
  int *row_first, *row_end; /* [n_batches] object rows each minibatch touches (ranks > 1) */
  double *positions_now;    /* [N][2] positions at the start of the iteration (ranks > 1
                               with positions refined), else NULL: the model's host copy */
  pt_pattern_feed feed;     /* the sub-batches' measured patterns (resident or streamed) */
  ptyc_buf order;           /* int32 [N] on the device: order_host */
  ptyc_buf pattern_order;   /* int32 [held] on the device: local_pattern */
  ptyc_buf loss;            /* double: this rank's summed cost of the iteration */
  ptyc_buf other_cost;      /* double: where ranks > 0 put the regularisers' cost */
  pt_farfield ff;
  ptyc_buf grad_object;     /* c32 [H][W] */
  ptyc_buf illumination;    /* float [H][W] */
  ptyc_buf grad_probe;      /* c32 [K][M][M] */
  ptyc_buf object_intensity; /* float [M][M] */
  ptyc_buf grad_positions;  /* double [batch_max][4]: the whole minibatch's */
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

/* Patterns this rank holds (a shape from the memory plan may leave it 0: all). */
static int patterns_held(const ptyc_model *m) {
  return m->n_patterns_held > 0 ? m->n_patterns_held : m->n_positions;
}

/* An upper bound: every parameter optimisable. */
static size_t autodiff_plan_bytes(const ptyc_model *m, const ptyc_options *opts, int batch) {
  size_t image = (size_t)m->m * m->m;
  int held = patterns_held(m), local = batch < held ? batch : held;
  /* "auto" may choose the Fourier shift, which plans the probe's spectrum */
  size_t total = pt_farfield_plan_bytes(m->m, m->n_modes, local,
                                        opts->probe.shift == PTYC_SHIFT_INTERPOLATE
                                            ? PTYC_SHIFT_INTERPOLATE
                                            : PTYC_SHIFT_FOURIER);
  total += object_count(m) * (sizeof(ptyc_c32) + sizeof(float)); /* grad_object, illumination */
  total += modes_count(m) * sizeof(ptyc_c32) + image * sizeof(float);
  total += (size_t)batch * 4 * sizeof(double) + 2 * sizeof(double);
  total += ((size_t)m->n_positions + held) * sizeof(int32_t) + pt_feed_plan_bytes(m, local);
  for (int k = 0; k < PT_PARAM_COUNT; k++) total += state_bytes((pt_param_kind)k, m);
  return total;
}

static void autodiff_free(void *state) {
  autodiff *s = state;
  if (s == NULL) return;
  ptyc_backend *be = s->be;
  ptyc_buf *bufs[] = {&s->order,          &s->pattern_order, &s->loss,
                      &s->other_cost,     &s->grad_object,   &s->illumination,
                      &s->grad_probe,     &s->object_intensity, &s->grad_positions};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  for (int k = 0; k < PT_PARAM_COUNT; k++) pt_param_optimizer_free(&s->param[k], be);
  pt_farfield_free(&s->ff);
  pt_feed_free(&s->feed);
  pt_batching_free(&s->batching);
  free(s->share_first);
  free(s->rank_count);
  free(s->batch_order);
  free(s->order_host);
  free(s->batch_first);
  free(s->batch_n);
  free(s->local_offset);
  free(s->local_first);
  free(s->local_n);
  free(s->local_pattern);
  free(s->row_first);
  free(s->row_end);
  free(s->positions_now);
  free(s);
}

/* The largest intensity of this rank's patterns. */
static ptyc_status max_held_pattern_value(const ptyc_model *m, double *out) {
  size_t total = (size_t)patterns_held(m) * m->m * m->m, chunk = (size_t)1 << 22;
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

/* The largest measured intensity of all ranks' patterns, for the intensity cost's
 * curvature: this rank's read from host memory when streaming, else back from the device
 * a slice at a time (init only), then the maximum over the ranks. */
static ptyc_status max_pattern_value(const ptyc_model *m, double *out) {
  PT_TRY(max_held_pattern_value(m, out));
  return ptyc_comm_allreduce_host(m->comm, out, 1, PTYC_COMM_MAX);
}

static ptyc_status autodiff_init(ptyc_model *model, const ptyc_options *opts, void **state) {
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
  s->comm = model->comm;
  s->rank = ptyc_comm_rank(model->comm);
  s->ranks = ptyc_comm_size(model->comm);
  s->opts = *opts;
  s->opts.probe.shift = model->shift; /* "auto" resolved */
  int n = model->n_positions, held = patterns_held(model), ranks = s->ranks;
  PT_CHECK(pt_batching_init(&s->batching, model, opts->reconstructor.batch_size,
                            opts->reconstructor.batch_order, opts->reconstructor.seed));
  int batch = s->batching.batch_max;
  int n_batches = s->batching.n_batches;
  s->local_max = batch < held ? batch : held;
  int object_on = opts->object.optimizable, probe_on = opts->probe.optimizable;
  int positions_on = ad->positions_optimizable;
  s->share_first = malloc(sizeof(int) * (ranks + 1));
  s->rank_count = malloc(sizeof(int) * (ranks + 1));
  s->batch_order = malloc(sizeof(int32_t) * n);
  s->order_host = malloc(sizeof(int32_t) * n);
  s->batch_first = malloc(sizeof(int) * n_batches);
  s->batch_n = malloc(sizeof(int) * n_batches);
  s->local_offset = malloc(sizeof(int) * n_batches);
  s->local_first = malloc(sizeof(int) * n_batches);
  s->local_n = malloc(sizeof(int) * n_batches);
  s->local_pattern = malloc(sizeof(int32_t) * held);
  s->row_first = malloc(sizeof(int) * n_batches);
  s->row_end = malloc(sizeof(int) * n_batches);
  if (ranks > 1 && positions_on) s->positions_now = malloc(sizeof(double) * 2 * n);
  if (!s->share_first || !s->rank_count || !s->batch_order || !s->order_host ||
      !s->batch_first || !s->batch_n || !s->local_offset || !s->local_first || !s->local_n ||
      !s->local_pattern || !s->row_first || !s->row_end ||
      (ranks > 1 && positions_on && !s->positions_now))
    PT_FAIL(PTYC_E_NOMEM, "out of memory (autodiff order)");
  for (int b = 0; b < n_batches; b++)
    pt_batch_range(&s->batching, b, &s->batch_first[b], &s->batch_n[b]);
  for (int r = 0; r < ranks; r++) {
    int count;
    ptyc_comm_share(n, r, ranks, &s->share_first[r], &count);
  }
  s->share_first[ranks] = n;
  if (model->pattern_first != s->share_first[s->rank] ||
      (ranks > 1 && held != s->share_first[s->rank + 1] - s->share_first[s->rank]))
    PT_FAIL(PTYC_E_ARG, "the autodiff engine on rank %d of %d: the model holds patterns "
                        "[%d, %d), not this rank's share [%d, %d)", s->rank, ranks,
            model->pattern_first, model->pattern_first + held, s->share_first[s->rank],
            s->share_first[s->rank + 1]);
  PT_CHECK(pt_feed_init(&s->feed, model, s->local_max));

  /* One rank: planned for the batching's two sizes; several: a sub-batch of any size
   * runs on the largest plan. */
  PT_CHECK(pt_farfield_init(&s->ff, be, model->m, model->n_modes, s->local_max,
                            ranks == 1 && n % s->batching.n_batches != 0, s->opts.probe.shift));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * n, &s->order));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * held, &s->pattern_order));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double), &s->loss));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double), &s->other_cost));
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
  /* The cost op reads pattern order[first + b] of `patterns`: here the entries' indices
   * among this rank's patterns (positions are not read through this scan). */
  s->pattern_scan = s->scan;
  s->pattern_scan.order = s->pattern_order;
  s->pattern_scan.n_positions = held;
  *state = s;
  return PTYC_OK;
fail:
  autodiff_free(s);
  return st;
}

/* The rank that owns position j. */
static int owner(const autodiff *s, int j) {
  int r = 0;
  while (j >= s->share_first[r + 1]) r++;
  return r;
}

/* The iteration's order: the batching's, each minibatch put in rank order (stable; with
 * one rank unchanged), and from it this rank's sub-batches (entries [batch_first +
 * local_offset, + local_n) of the order), their patterns, and, with several ranks, the
 * object rows each minibatch touches. Uploads the orders. The same on every rank except
 * the parts that say "this rank". */
static ptyc_status prepare_iteration(autodiff *s, int iteration) {
  ptyc_model *m = s->model;
  int ranks = s->ranks, mine = s->rank;
  pt_batch_order(&s->batching, iteration, s->batch_order);
  const double *positions = m->positions_host;
  if (s->positions_now != NULL) { /* refined positions: the device holds the current ones */
    PT_TRY(ptyc_buf_download(s->be, s->positions_now, m->positions, 0,
                             sizeof(double) * 2 * m->n_positions));
    positions = s->positions_now;
  }
  int at = 0;
  for (int b = 0; b < s->batching.n_batches; b++) {
    int first = s->batch_first[b], n = s->batch_n[b];
    const int32_t *in = s->batch_order + first;
    int32_t *out = s->order_host + first;
    if (ranks == 1) {
      memcpy(out, in, sizeof(int32_t) * n);
      s->local_offset[b] = 0;
      s->local_n[b] = n;
    } else { /* a counting sort by owner */
      for (int r = 0; r <= ranks; r++) s->rank_count[r] = 0;
      for (int e = 0; e < n; e++) s->rank_count[owner(s, in[e]) + 1]++;
      for (int r = 1; r <= ranks; r++) s->rank_count[r] += s->rank_count[r - 1];
      s->local_offset[b] = s->rank_count[mine];
      s->local_n[b] = s->rank_count[mine + 1] - s->rank_count[mine];
      for (int e = 0; e < n; e++) out[s->rank_count[owner(s, in[e])]++] = in[e];
      int y_lo = INT_MAX, y_hi = INT_MIN;
      for (int e = 0; e < n; e++) {
        int y0 = (int)floor(positions[2 * in[e]]);
        if (y0 < y_lo) y_lo = y0;
        if (y0 > y_hi) y_hi = y0;
      }
      s->row_first[b] = y_lo < 0 ? 0 : y_lo;
      s->row_end[b] = y_hi + m->m > m->obj_h ? m->obj_h : y_hi + m->m;
      if (s->row_end[b] < s->row_first[b]) s->row_end[b] = s->row_first[b];
    }
    s->local_first[b] = at;
    for (int e = 0; e < s->local_n[b]; e++)
      s->local_pattern[at++] = out[s->local_offset[b] + e] - m->pattern_first;
  }
  PT_TRY(ptyc_buf_upload(s->be, s->order, 0, s->order_host, s->order.nbytes));
  return ptyc_buf_upload(s->be, s->pattern_order, 0, s->local_pattern, sizeof(int32_t) * at);
}

/* A view of bytes [offset, offset + nbytes) of a buffer. */
static ptyc_buf sub(ptyc_buf buf, size_t offset, size_t nbytes) {
  return (ptyc_buf){(char *)buf.ptr + offset, nbytes};
}

/* Global minibatch b: the tape on this rank's entries of it, the sums over the ranks,
 * regularisers, and one step of each active parameter (the same on every rank). */
static ptyc_status autodiff_batch(autodiff *s, int b, const int active[PT_PARAM_COUNT]) {
  int first = s->batch_first[b], n = s->batch_n[b];
  int local = s->local_n[b], offset = s->local_offset[b];
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
  if (active[PT_PARAM_PROBE]) {
    grads.probe = s->grad_probe; /* overwritten by the tape, if it runs */
    if (local == 0) PT_TRY(ptyc_buf_zero(be, s->grad_probe, 0, s->grad_probe.nbytes));
  }
  if (active[PT_PARAM_PROBE] || active[PT_PARAM_POSITIONS]) {
    PT_TRY(ptyc_buf_zero(be, s->object_intensity, 0, s->object_intensity.nbytes));
    grads.object_intensity = s->object_intensity;
  }
  ptyc_buf grad_positions = {s->grad_positions.ptr, sizeof(double) * 4 * n};
  if (active[PT_PARAM_POSITIONS]) {
    /* This rank's entries' slots of the minibatch's; the others' stay 0 for the sum. */
    if (s->ranks > 1) PT_TRY(ptyc_buf_zero(be, grad_positions, 0, grad_positions.nbytes));
    grads.positions = sub(s->grad_positions, sizeof(double) * 4 * offset,
                          sizeof(double) * 4 * local);
  }

  /* Entry e of the sub-batch has pattern pattern_order[local_first + e] of this rank's. */
  pt_farfield_data data = {.loss = ad->loss, .mask = m->mask};
  PT_TRY(pt_feed_batch(&s->feed, &s->pattern_scan, b, &data.patterns, &data.pattern_scan,
                       &data.pattern_first));
  if (local > 0) {
    PT_TRY(pt_farfield_run(&s->ff, &s->scan, first + offset, local, m->object, m->probe, &data,
                           &grads));
    PT_TRY(ptyc_op_sum(be, s->ff.cost, (size_t)local, s->loss, 1));
  }

  /* The sums over the ranks (no-ops on one). The object's over the rows the minibatch
   * touches: elsewhere gradient and illumination are 0 on every rank. */
  if (active[PT_PARAM_OBJECT]) {
    int row_first = s->ranks > 1 ? s->row_first[b] : 0;
    int row_end = s->ranks > 1 ? s->row_end[b] : m->obj_h;
    size_t row_offset = (size_t)m->obj_w * row_first;
    size_t row_pixels = (size_t)m->obj_w * (row_end - row_first);
    PT_TRY(ptyc_comm_allreduce(s->comm, s->grad_object, row_offset * sizeof(ptyc_c32),
                               2 * row_pixels, PTYC_COMM_FLOAT));
    PT_TRY(ptyc_comm_allreduce(s->comm, s->illumination, row_offset * sizeof(float), row_pixels,
                               PTYC_COMM_FLOAT));
  }
  if (active[PT_PARAM_PROBE])
    PT_TRY(ptyc_comm_allreduce(s->comm, s->grad_probe, 0, 2 * modes_count(m), PTYC_COMM_FLOAT));
  if (active[PT_PARAM_PROBE] || active[PT_PARAM_POSITIONS])
    PT_TRY(ptyc_comm_allreduce(s->comm, s->object_intensity, 0, image, PTYC_COMM_FLOAT));
  if (active[PT_PARAM_POSITIONS])
    PT_TRY(ptyc_comm_allreduce(s->comm, grad_positions, 0, 4 * (size_t)n, PTYC_COMM_DOUBLE));

  if (active[PT_PARAM_OBJECT] && (ad->l1_weight > 0.0 || ad->tv_weight > 0.0)) {
    /* This minibatch's share (n / N) of N M^2 weight * mean over the object; its cost
     * counts once, on rank 0. */
    double share = (double)n * pixels / (double)obj_count;
    PT_TRY(ptyc_op_object_regularize(be, m->object, m->obj_h, m->obj_w, share * ad->l1_weight,
                                     share * ad->tv_weight, s->grad_object,
                                     s->rank == 0 ? s->loss : s->other_cost));
  }

  double mix = ad->illumination_mix, c = s->curvature;
  if (active[PT_PARAM_OBJECT])
    PT_TRY(pt_param_step(be, &s->param[PT_PARAM_OBJECT], m->object, s->grad_object, obj_count,
                         s->illumination, obj_count, 1.0 / (c * pixels), mix));
  if (active[PT_PARAM_PROBE])
    PT_TRY(pt_param_step(be, &s->param[PT_PARAM_PROBE], m->probe, s->grad_probe, modes_count(m),
                         s->object_intensity, image, 1.0 / (c * pixels), mix));
  if (active[PT_PARAM_POSITIONS])
    PT_TRY(pt_positions_step(be, &s->param[PT_PARAM_POSITIONS], &s->scan, first, n,
                             grad_positions, s->object_intensity, image,
                             (double)n / (c * pixels * pixels), s->position_updates + 1));
  return PTYC_OK;
}

static ptyc_status autodiff_step(void *state, int iteration, double *loss) {
  autodiff *s = state;
  ptyc_model *m = s->model;
  int active[PT_PARAM_COUNT];
  for (int k = 0; k < PT_PARAM_COUNT; k++) active[k] = pt_param_active(&s->param[k], iteration);

  PT_TRY(prepare_iteration(s, iteration));
  PT_TRY(ptyc_buf_zero(s->be, s->loss, 0, sizeof(double)));
  PT_TRY(pt_feed_begin(&s->feed, s->local_pattern, s->local_first, s->local_n,
                       s->batching.n_batches));
  for (int b = 0; b < s->batching.n_batches; b++) PT_TRY(autodiff_batch(s, b, active));
  if (active[PT_PARAM_POSITIONS]) s->position_updates++;
  if (active[PT_PARAM_PROBE] && s->opts.probe.orthogonalize && m->n_modes > 1)
    PT_TRY(ptyc_op_orthogonalize_modes(s->be, m->probe, m->n_modes, m->m));

  double total = 0.0; /* this rank's cost, then all ranks' */
  PT_TRY(ptyc_buf_download(s->be, &total, s->loss, 0, sizeof total));
  PT_TRY(ptyc_comm_allreduce_host(s->comm, &total, 1, PTYC_COMM_SUM));
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
    .data_parallel = 1,
    .plan_bytes = autodiff_plan_bytes,
    .init = autodiff_init,
    .step = autodiff_step,
    .free = autodiff_free,
    .save_state = autodiff_save_state,
    .load_state = autodiff_load_state,
};
