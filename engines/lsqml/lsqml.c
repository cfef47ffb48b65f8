/* LSQML: least-squares maximum-likelihood ptychography (Odstrcil, Menzel and
 * Guizar-Sicairos, Opt. Express 26, 3108 (2018)).
 *
 * Per minibatch of positions j with probe modes k:
 *   psi_jk = P_k(shifted by f_j) O_j,  Psi_jk = F psi_jk
 *   chi_jk = F^-1 (Psi'_jk - Psi_jk), Psi' from the noise model (Gaussian: modulus
 *            projection; Poisson: a Newton-optimised step along the likelihood gradient)
 *   dO = sum_j sum_k conj(P_jk) chi_jk / (sum_j |P_j|^2 + delta_O)     (scattered)
 *   dP = sum_j S_{-f_j}(conj(O_j) chi_jk) / (sum_j |O_j|^2 + delta_P)
 *   per position j: the steps (aO_j, aP_j) minimising ||chi_j - aO dO_j P_j - aP O_j dP||^2
 *   O += mean_j(aO_j) dO,  P += mean_j(aP_j) dP
 * delta = damping * max(illumination). After each iteration, heavy-ball momentum
 * X += mu (X - X_previous iteration) speeds up object and probe (lsqml.momentum = mu;
 * on the small preset NRMSE after 40 iterations 0.077 -> 0.037 with mu = 0.5), and the
 * probe modes are orthogonalised. The sub-pixel shift S is the exact Fourier ramp
 * (two FFTs per position and mode) or, with probe.shift = "interpolate", a 12-tap
 * filter (src/backend/interp_math.h) and its transpose. In the step-size system dP is
 * used unshifted: a sub-pixel shift barely changes those inner products, and it saves
 * two FFTs per position and mode.
 *
 * Data parallel on several ranks (include/ptyc/comm.h): every rank holds replicas of
 * object, probe and positions but only the patterns of its own positions
 * [pattern_first, pattern_first + n_patterns_held). The global batches are the same for
 * any number of ranks (same seed, same order); each rank computes the entries of every
 * global batch that it owns (a local sub-batch, of varying size, maybe empty), and the
 * comm sums what the update needs over the ranks:
 *   the numerator and illumination of dO, over the object rows the global batch
 *   touches (its patches' bounding rows: contiguous memory), and those of dP;
 *   the step sizes, so that the mean step is the global batch's mean (each rank writes
 *   its steps into its own slots of a zeroed array of the global batch's size);
 *   the cost, once per iteration.
 * Every rank then applies the same update, so the replicas stay identical; momentum and
 * mode orthogonalisation are deterministic and need nothing. A rank with an empty
 * sub-batch still joins every sum, with zeros. With one rank the sums are no-ops and
 * the sub-batch is the batch. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/batching.h"
#include "common/pattern_feed.h"
#include "engine_impl.h"
#include "ptyc/comm.h"
#include "pt_try.h"

typedef struct lsqml {
  ptyc_model *model;
  ptyc_backend *be;
  ptyc_comm *comm;        /* the model's; NULL = one rank */
  ptyc_options opts;
  ptyc_scan scan;         /* positions of this rank's entries, through `order` */
  ptyc_scan pattern_scan; /* their patterns in the model, through `pattern_order` */
  pt_batching batching;   /* global minibatch sizes and each iteration's order */
  int local_max;          /* the most entries of one batch this rank can own */
  /* This iteration, on the host (prepare_iteration). */
  int32_t *order_host;    /* [N] the global order */
  int32_t *local_order;   /* [held] this rank's entries, batch after batch: position j */
  int32_t *local_pattern; /* [held] the same entries' patterns: j - pattern_first */
  int *local_first, *local_n; /* [n_batches] batch b: local entries [first, first + n) */
  int *alpha_offset;      /* [n_batches] this rank's first slot in the global batch */
  int *row_first, *row_end; /* [n_batches] object rows the global batch touches */
  ptyc_fft *plan_probe;   /* K transforms */
  ptyc_fft *plan;         /* local_max * K transforms, run on the sub-batch's count */
  ptyc_buf order, pattern_order, probe_spectrum, probes, waves, g, cost, loss, alpha;
  ptyc_buf alpha_all;     /* float [2][batch_max]: the global batch's steps, aO then aP */
  ptyc_buf obj_num, obj_den, dobject, probe_num, probe_den, dprobe;
  pt_pattern_feed feed;                     /* the batches' measured patterns */
  ptyc_buf previous_object, previous_probe; /* state at the end of the last iteration */
  ptyc_buf momentum_weights;                /* float {-1, -mu} for ptyc_op_axpy_mean */
} lsqml;

static size_t image_bytes(const ptyc_model *m) { return (size_t)m->m * m->m * sizeof(ptyc_c32); }

/* Patterns this rank holds (a shape from the memory plan may leave it 0: all). */
static int patterns_held(const ptyc_model *m) {
  return m->n_patterns_held > 0 ? m->n_patterns_held : m->n_positions;
}

static size_t lsqml_plan_bytes(const ptyc_model *m, const ptyc_options *opts, int batch) {
  size_t modes = image_bytes(m) * m->n_modes;
  size_t obj = (size_t)m->obj_h * m->obj_w;
  int held = patterns_held(m), local = batch < held ? batch : held;
  int fourier = opts->probe.shift != PTYC_SHIFT_INTERPOLATE; /* "auto" may choose it */
  return 2 * modes * local                         /* probes, waves */
         + (fourier ? modes * local : 0)           /* g */
         + 3 * modes                               /* probe spectrum, numerator, dprobe */
         + (size_t)m->m * m->m * sizeof(float)     /* probe_den */
         + obj * (3 * sizeof(ptyc_c32) + sizeof(float)) /* obj_num, dobject, previous, obj_den */
         + modes + 2 * sizeof(float)                 /* previous probe, momentum weights */
         + (size_t)local * (2 * sizeof(float) + sizeof(double)) + sizeof(double) /* alpha, cost, loss */
         + (size_t)batch * 2 * sizeof(float)         /* alpha_all */
         + ((size_t)m->n_positions + held) * sizeof(int32_t) /* order, pattern order */
         + pt_feed_plan_bytes(m, local);
}

static void lsqml_free(void *state) {
  lsqml *s = state;
  if (s == NULL) return;
  ptyc_backend *be = s->be;
  pt_feed_free(&s->feed);
  ptyc_buf *bufs[] = {&s->order,   &s->pattern_order, &s->probe_spectrum, &s->probes,
                      &s->waves,   &s->g,             &s->cost,           &s->loss,
                      &s->alpha,   &s->alpha_all,     &s->obj_num,        &s->obj_den,
                      &s->dobject, &s->probe_num,     &s->probe_den,      &s->dprobe,
                      &s->previous_object, &s->previous_probe, &s->momentum_weights};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  ptyc_fft_free(be, s->plan_probe);
  ptyc_fft_free(be, s->plan);
  free(s->order_host);
  free(s->local_order);
  free(s->local_pattern);
  free(s->local_first);
  free(s->local_n);
  free(s->alpha_offset);
  free(s->row_first);
  free(s->row_end);
  pt_batching_free(&s->batching);
  free(s);
}

static ptyc_status lsqml_init(ptyc_model *model, const ptyc_options *opts, void **state) {
  lsqml *s = calloc(1, sizeof *s);
  if (s == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory creating the lsqml engine");
  ptyc_status st = PTYC_OK;
  ptyc_backend *be = model->be;
  s->model = model;
  s->be = be;
  s->comm = model->comm;
  s->opts = *opts;
  s->opts.probe.shift = model->shift; /* "auto" resolved */
  int n = model->n_positions, k_modes = model->n_modes, held = patterns_held(model);
  PT_CHECK(pt_batching_init(&s->batching, model, opts->reconstructor.batch_size,
                            opts->reconstructor.batch_order, opts->reconstructor.seed));
  int batch_max = s->batching.batch_max, n_batches = s->batching.n_batches;
  s->local_max = batch_max < held ? batch_max : held;
  int local_max = s->local_max;

  size_t modes = image_bytes(model) * k_modes, obj = (size_t)model->obj_h * model->obj_w;
  s->order_host = malloc(sizeof(int32_t) * n);
  s->local_order = malloc(sizeof(int32_t) * held);
  s->local_pattern = malloc(sizeof(int32_t) * held);
  s->local_first = malloc(sizeof(int) * n_batches);
  s->local_n = malloc(sizeof(int) * n_batches);
  s->alpha_offset = malloc(sizeof(int) * n_batches);
  s->row_first = malloc(sizeof(int) * n_batches);
  s->row_end = malloc(sizeof(int) * n_batches);
  if (!s->order_host || !s->local_order || !s->local_pattern || !s->local_first ||
      !s->local_n || !s->alpha_offset || !s->row_first || !s->row_end)
    PT_FAIL(PTYC_E_NOMEM, "out of memory (lsqml order)");

  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * n, &s->order));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * held, &s->pattern_order));
  PT_CHECK(pt_feed_init(&s->feed, model, local_max));
  PT_CHECK(ptyc_buf_alloc(be, modes, &s->probe_spectrum));
  PT_CHECK(ptyc_buf_alloc(be, modes * local_max, &s->probes));
  PT_CHECK(ptyc_buf_alloc(be, modes * local_max, &s->waves));
  if (s->opts.probe.shift == PTYC_SHIFT_FOURIER)
    PT_CHECK(ptyc_buf_alloc(be, modes * local_max, &s->g));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double) * local_max, &s->cost));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double), &s->loss));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * 2 * local_max, &s->alpha));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * 2 * batch_max, &s->alpha_all));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * obj, &s->obj_num));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * obj, &s->obj_den));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * obj, &s->dobject));
  PT_CHECK(ptyc_buf_alloc(be, modes, &s->probe_num));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * model->m * model->m, &s->probe_den));
  PT_CHECK(ptyc_buf_alloc(be, modes, &s->dprobe));
  /* Rows outside a batch's range keep num = den = 0 from here on. */
  PT_CHECK(ptyc_buf_zero(be, s->obj_num, 0, s->obj_num.nbytes));
  PT_CHECK(ptyc_buf_zero(be, s->obj_den, 0, s->obj_den.nbytes));
  PT_CHECK(ptyc_buf_zero(be, s->dobject, 0, s->dobject.nbytes));
  if (opts->lsqml.momentum > 0.0) {
    float weights[2] = {-1.f, (float)-opts->lsqml.momentum};
    PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * obj, &s->previous_object));
    PT_CHECK(ptyc_buf_alloc(be, modes, &s->previous_probe));
    PT_CHECK(ptyc_buf_alloc(be, sizeof weights, &s->momentum_weights));
    PT_CHECK(ptyc_buf_upload(be, s->momentum_weights, 0, weights, sizeof weights));
  }
  PT_CHECK(ptyc_buf_zero(be, s->dprobe, 0, s->dprobe.nbytes));

  PT_CHECK(ptyc_fft_plan(be, model->m, k_modes, &s->plan_probe));
  PT_CHECK(ptyc_fft_plan(be, model->m, k_modes * local_max, &s->plan));

  s->scan = (ptyc_scan){.m = model->m, .n_modes = k_modes, .obj_h = model->obj_h,
                        .obj_w = model->obj_w, .positions = model->positions,
                        .order = s->order, .n_positions = n};
  /* The Fourier op reads pattern order[first + b] of `patterns`: here the entries'
   * indices among this rank's patterns (positions are not read through this scan). */
  s->pattern_scan = s->scan;
  s->pattern_scan.order = s->pattern_order;
  s->pattern_scan.n_positions = held;
  *state = s;
  return PTYC_OK;
fail:
  lsqml_free(s);
  return st;
}

/* The iteration's global order, and from it this rank's sub-batches: its entries of
 * each global batch (in the global order), their patterns, where its steps go among
 * the global batch's, and the object rows each global batch touches. Uploads the
 * orders. The same on every rank except the parts that say "this rank". */
static ptyc_status prepare_iteration(lsqml *s, int iteration) {
  ptyc_model *m = s->model;
  int mine_first = m->pattern_first, mine_end = m->pattern_first + patterns_held(m);
  pt_batch_order(&s->batching, iteration, s->order_host);
  int at = 0;
  for (int b = 0; b < s->batching.n_batches; b++) {
    int first, n, before = 0, y_lo = INT_MAX, y_hi = INT_MIN;
    pt_batch_range(&s->batching, b, &first, &n);
    s->local_first[b] = at;
    for (int e = first; e < first + n; e++) {
      int j = s->order_host[e];
      /* LSQML does not move positions, so the host copy is the device's. */
      int y0 = (int)floor(m->positions_host[2 * j]);
      if (y0 < y_lo) y_lo = y0;
      if (y0 > y_hi) y_hi = y0;
      if (j < mine_first) {
        before++; /* owned by a lower rank: its step comes first */
      } else if (j < mine_end) {
        s->local_order[at] = j;
        s->local_pattern[at] = j - mine_first;
        at++;
      }
    }
    s->local_n[b] = at - s->local_first[b];
    s->alpha_offset[b] = before;
    s->row_first[b] = y_lo < 0 ? 0 : y_lo;
    s->row_end[b] = y_hi + m->m > m->obj_h ? m->obj_h : y_hi + m->m;
  }
  PT_TRY(ptyc_buf_upload(s->be, s->order, 0, s->local_order, sizeof(int32_t) * at));
  return ptyc_buf_upload(s->be, s->pattern_order, 0, s->local_pattern, sizeof(int32_t) * at);
}

/* A view of bytes [offset, offset + nbytes) of a buffer. */
static ptyc_buf sub(ptyc_buf buf, size_t offset, size_t nbytes) {
  return (ptyc_buf){(char *)buf.ptr + offset, nbytes};
}

/* The per-position ops of this rank's entries [first, first + n) of the order (their
 * patterns from pattern_first on, through pattern_scan): shifted probes, exit waves,
 * Fourier projection, chi, and their contributions to the object's and probe's update
 * numerators and illuminations. `probes` and `waves` (now chi) stay for the step sizes.
 * (Running this a few entries at a time, so that each op would read what the previous
 * one wrote from the GPU's L2, was measured on the H100 and gained at most 3 %: at 16
 * entries 108 vs 112 ms per iteration, and lost below 8 entries to launch overhead.) */
static ptyc_status per_position_chain(lsqml *s, int first, int n, const ptyc_scan *pattern_scan,
                                      int pattern_first, ptyc_buf patterns) {
  ptyc_backend *be = s->be;
  ptyc_model *m = s->model;
  const ptyc_scan *scan = &s->scan;
  ptyc_buf probes = s->probes, waves = s->waves, cost = s->cost;
  int images = m->n_modes * n;
  float inv_pixels = 1.f / (float)(m->m * m->m);
  int fourier = s->opts.probe.shift == PTYC_SHIFT_FOURIER;
  if (fourier) {
    PT_TRY(ptyc_op_shift_spectrum(be, scan, first, n, s->probe_spectrum, inv_pixels,
                                  probes));
    PT_TRY(ptyc_fft_exec_count(be, s->plan, probes, images, 1));
  } else {
    PT_TRY(ptyc_op_interp_shift(be, scan, first, n, m->probe, (ptyc_buf){0}, probes,
                                (ptyc_buf){0}));
  }
  /* the exit waves' spectra: where the backend fuses the product into the transform,
   * the exit waves never pass through memory */
  PT_TRY(ptyc_fft_exit_waves(be, s->plan, scan, first, n, m->object, probes, waves));
  PT_TRY(ptyc_op_fourier_residual(be, pattern_scan, pattern_first, n,
                                  s->opts.lsqml.noise_model, patterns, m->mask, waves, cost));
  PT_TRY(ptyc_fft_exec_count(be, s->plan, waves, images, 1)); /* waves now hold chi */
  if (s->opts.object.optimizable)
    PT_TRY(ptyc_op_object_gradient(be, scan, first, n, probes, waves, (ptyc_buf){0},
                                   s->obj_num, s->obj_den));
  if (!s->opts.probe.optimizable) return PTYC_OK;
  if (!fourier)
    return ptyc_op_interp_unshift_accumulate(be, scan, first, n, m->object, waves,
                                             s->probe_num, s->probe_den);
  /* the Fourier shift's adjoint works on spectra: probe_num is one until lsqml_batch
   * transforms it back */
  PT_TRY(ptyc_op_probe_gradient(be, scan, first, n, m->object, waves, s->g,
                                s->probe_den));
  PT_TRY(ptyc_fft_exec_count(be, s->plan, s->g, images, 0));
  PT_TRY(ptyc_op_unshift_accumulate(be, scan, first, n, s->g, inv_pixels, s->probe_num));
  return PTYC_OK;
}

/* Global batch b: this rank's entries of it (local entries [first, first + n)), then
 * the sums over the ranks and the update every rank applies. */
static ptyc_status lsqml_batch(lsqml *s, int b) {
  ptyc_backend *be = s->be;
  ptyc_model *m = s->model;
  const ptyc_scan *scan = &s->scan;
  const ptyc_lsqml_options *lo = &s->opts.lsqml;
  int object_on = s->opts.object.optimizable, probe_on = s->opts.probe.optimizable;
  int first = s->local_first[b], n = s->local_n[b], n_global, unused;
  pt_batch_range(&s->batching, b, &unused, &n_global);
  size_t modes_count = (size_t)m->n_modes * m->m * m->m;
  size_t row_pixels = (size_t)m->obj_w * (s->row_end[b] - s->row_first[b]);
  size_t row_offset = (size_t)m->obj_w * s->row_first[b];

  /* The update directions, summed over the ranks. The object's only over the rows the
   * global batch touches: elsewhere num = 0, so dO = 0 and the object stays as it is. */
  ptyc_buf num_rows = sub(s->obj_num, row_offset * sizeof(ptyc_c32), row_pixels * sizeof(ptyc_c32));
  ptyc_buf den_rows = sub(s->obj_den, row_offset * sizeof(float), row_pixels * sizeof(float));
  ptyc_buf dobject_rows = sub(s->dobject, row_offset * sizeof(ptyc_c32),
                              row_pixels * sizeof(ptyc_c32));
  if (object_on) {
    PT_TRY(ptyc_buf_zero(be, num_rows, 0, num_rows.nbytes));
    PT_TRY(ptyc_buf_zero(be, den_rows, 0, den_rows.nbytes));
  }
  if (probe_on) {
    PT_TRY(ptyc_buf_zero(be, s->probe_num, 0, s->probe_num.nbytes));
    PT_TRY(ptyc_buf_zero(be, s->probe_den, 0, s->probe_den.nbytes));
  }

  /* This rank's entries (maybe none; see per_position_chain). The feed
   * is asked every batch, empty or not: when streaming it also queues the next batch's
   * copies. */
  ptyc_buf patterns;
  const ptyc_scan *pattern_scan;
  int pattern_first;
  PT_TRY(pt_feed_batch(&s->feed, &s->pattern_scan, b, &patterns, &pattern_scan,
                       &pattern_first));
  int fourier = s->opts.probe.shift == PTYC_SHIFT_FOURIER;
  if (n > 0) {
    if (fourier) {
      PT_TRY(ptyc_buf_copy(be, s->probe_spectrum, 0, m->probe, 0, m->probe.nbytes));
      PT_TRY(ptyc_fft_exec(be, s->plan_probe, s->probe_spectrum, 0));
    }
    PT_TRY(per_position_chain(s, first, n, pattern_scan, pattern_first, patterns));
    PT_TRY(ptyc_op_sum(be, s->cost, (size_t)n, s->loss, 1));
  }
  if (!object_on && !probe_on) return PTYC_OK; /* nothing to update: no step sizes */
  if (object_on) {
    PT_TRY(ptyc_comm_allreduce(s->comm, num_rows, 0, 2 * row_pixels, PTYC_COMM_FLOAT));
    PT_TRY(ptyc_comm_allreduce(s->comm, den_rows, 0, row_pixels, PTYC_COMM_FLOAT));
    PT_TRY(ptyc_op_precondition(be, num_rows, row_pixels, den_rows, row_pixels,
                                lo->object_damping, 0.f, dobject_rows));
  }
  if (probe_on) {
    PT_TRY(ptyc_comm_allreduce(s->comm, s->probe_num, 0, 2 * modes_count, PTYC_COMM_FLOAT));
    PT_TRY(ptyc_comm_allreduce(s->comm, s->probe_den, 0, (size_t)m->m * m->m,
                               PTYC_COMM_FLOAT));
    if (fourier) PT_TRY(ptyc_fft_exec(be, s->plan_probe, s->probe_num, 1));
    PT_TRY(ptyc_op_precondition(be, s->probe_num, modes_count, s->probe_den,
                                (size_t)m->m * m->m, lo->probe_damping, 0.f, s->dprobe));
  }

  /* Per-position steps into this rank's slots of the global batch's (aO at
   * [offset, offset + n), aP at [n_global + offset, ...)), summed over the ranks, then
   * the global batch's mean step: the batch's mean step gives the same quality as
   * per-position weights in the engine test (NRMSE 0.056 vs 0.054) without a second
   * scatter pass. */
  size_t offset = (size_t)s->alpha_offset[b];
  PT_TRY(ptyc_buf_zero(be, s->alpha_all, 0, sizeof(float) * 2 * n_global));
  if (n > 0) {
    PT_TRY(ptyc_op_lsqml_steps(be, scan, first, n, m->object, s->dobject, s->probes, s->dprobe,
                               s->waves, lo->step_regularization, lo->max_step, object_on,
                               probe_on, s->alpha));
    PT_TRY(ptyc_buf_copy(be, s->alpha_all, sizeof(float) * offset, s->alpha, 0,
                         sizeof(float) * n));
    PT_TRY(ptyc_buf_copy(be, s->alpha_all, sizeof(float) * (n_global + offset), s->alpha,
                         sizeof(float) * n, sizeof(float) * n));
  }
  PT_TRY(ptyc_comm_allreduce(s->comm, s->alpha_all, 0, 2 * (size_t)n_global, PTYC_COMM_FLOAT));
  if (object_on) {
    ptyc_buf alpha_object = sub(s->alpha_all, 0, sizeof(float) * n_global);
    ptyc_buf object_rows = sub(m->object, row_offset * sizeof(ptyc_c32),
                               row_pixels * sizeof(ptyc_c32));
    PT_TRY(ptyc_op_axpy_mean(be, alpha_object, n_global, dobject_rows, row_pixels, object_rows));
  }
  if (probe_on) {
    ptyc_buf alpha_probe = sub(s->alpha_all, sizeof(float) * n_global, sizeof(float) * n_global);
    PT_TRY(ptyc_op_axpy_mean(be, alpha_probe, n_global, s->dprobe, modes_count, m->probe));
  }
  return PTYC_OK;
}

/* X += mu (X - X_prev), then X_prev = X, as two axpys and a copy:
 * X_prev -= X (weight -1); X -= mu X_prev (weight -mu). The first iteration only records. */
static ptyc_status momentum(lsqml *s, ptyc_buf x, ptyc_buf previous, int iteration) {
  size_t count = x.nbytes / sizeof(ptyc_c32);
  ptyc_buf minus_one = {s->momentum_weights.ptr, sizeof(float)};
  ptyc_buf minus_mu = {(float *)s->momentum_weights.ptr + 1, sizeof(float)};
  if (iteration > 0) {
    PT_TRY(ptyc_op_axpy_mean(s->be, minus_one, 1, x, count, previous));
    PT_TRY(ptyc_op_axpy_mean(s->be, minus_mu, 1, previous, count, x));
  }
  return ptyc_buf_copy(s->be, previous, 0, x, 0, x.nbytes);
}

static ptyc_status lsqml_step(void *state, int iteration, double *loss) {
  lsqml *s = state;
  ptyc_model *m = s->model;
  PT_TRY(prepare_iteration(s, iteration));
  PT_TRY(ptyc_buf_zero(s->be, s->loss, 0, sizeof(double)));
  PT_TRY(pt_feed_begin(&s->feed, s->local_pattern, s->local_first, s->local_n,
                       s->batching.n_batches));
  for (int b = 0; b < s->batching.n_batches; b++) PT_TRY(lsqml_batch(s, b));
  if (s->opts.lsqml.momentum > 0.0) {
    if (s->opts.object.optimizable)
      PT_TRY(momentum(s, m->object, s->previous_object, iteration));
    if (s->opts.probe.optimizable) PT_TRY(momentum(s, m->probe, s->previous_probe, iteration));
  }
  if (s->opts.probe.optimizable && s->opts.probe.orthogonalize && m->n_modes > 1)
    PT_TRY(ptyc_op_orthogonalize_modes(s->be, m->probe, m->n_modes, m->m));
  double total = 0.0; /* this rank's cost, then all ranks' */
  PT_TRY(ptyc_buf_download(s->be, &total, s->loss, 0, sizeof total));
  PT_TRY(ptyc_comm_allreduce_host(s->comm, &total, 1, PTYC_COMM_SUM));
  *loss = total / ((double)m->n_positions * m->m * m->m);
  if (!isfinite(*loss))
    return ptyc_fail(PTYC_E_NUMERIC, "the cost became %g at iteration %d: the reconstruction "
                                     "diverged (check the data, or lower lsqml.max_step)",
                     *loss, iteration + 1);
  return PTYC_OK;
}

/* ---- checkpoint state ------------------------------------------------------------------ */

/* Without momentum the model is lsqml's whole state (the batch order is a function of
 * seed and iteration). With momentum, the next step also needs X_previous of object
 * and probe (the probe's differs from the model's: it is taken before the modes are
 * orthogonalised). Blob: this header, then the previous object and probe as stored on
 * the device (each present only if that part is optimised). */
typedef struct lsqml_state_header {
  uint32_t version;          /* LSQML_STATE_VERSION */
  uint32_t reserved;
  uint64_t object_nbytes;    /* 0 if the object is frozen */
  uint64_t probe_nbytes;     /* 0 if the probe is frozen */
} lsqml_state_header;

#define LSQML_STATE_VERSION 1u

/* The previous object and probe that momentum uses: {NULL, 0} where it uses none. */
static void momentum_buffers(const lsqml *s, ptyc_buf *object, ptyc_buf *probe) {
  int on = s->opts.lsqml.momentum > 0.0;
  *object = on && s->opts.object.optimizable ? s->previous_object : (ptyc_buf){0};
  *probe = on && s->opts.probe.optimizable ? s->previous_probe : (ptyc_buf){0};
}

static ptyc_status lsqml_save_state(void *state, void **blob, size_t *nbytes) {
  lsqml *s = state;
  ptyc_buf object, probe;
  momentum_buffers(s, &object, &probe);
  *blob = NULL;
  *nbytes = 0;
  if (object.nbytes == 0 && probe.nbytes == 0) return PTYC_OK;
  lsqml_state_header h = {LSQML_STATE_VERSION, 0, object.nbytes, probe.nbytes};
  size_t total = sizeof h + object.nbytes + probe.nbytes;
  unsigned char *b = malloc(total);
  if (b == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory saving the lsqml state");
  memcpy(b, &h, sizeof h);
  ptyc_status st = PTYC_OK;
  if (object.nbytes) st = ptyc_buf_download(s->be, b + sizeof h, object, 0, object.nbytes);
  if (st == PTYC_OK && probe.nbytes)
    st = ptyc_buf_download(s->be, b + sizeof h + object.nbytes, probe, 0, probe.nbytes);
  if (st != PTYC_OK) {
    free(b);
    return st;
  }
  *blob = b;
  *nbytes = total;
  return PTYC_OK;
}

static ptyc_status lsqml_load_state(void *state, const void *blob, size_t nbytes) {
  lsqml *s = state;
  ptyc_buf object, probe;
  momentum_buffers(s, &object, &probe);
  lsqml_state_header h = {0};
  if (nbytes == 0 && object.nbytes == 0 && probe.nbytes == 0) return PTYC_OK;
  if (nbytes >= sizeof h) memcpy(&h, blob, sizeof h);
  if (nbytes < sizeof h || h.version != LSQML_STATE_VERSION || h.object_nbytes != object.nbytes ||
      h.probe_nbytes != probe.nbytes || nbytes != sizeof h + object.nbytes + probe.nbytes)
    return ptyc_fail(PTYC_E_FORMAT, "the checkpoint's lsqml state (%zu bytes) does not fit this "
                                    "job's momentum buffers (%zu + %zu bytes): it was written "
                                    "by another build", nbytes, object.nbytes, probe.nbytes);
  const unsigned char *b = blob;
  if (object.nbytes) PT_TRY(ptyc_buf_upload(s->be, object, 0, b + sizeof h, object.nbytes));
  if (probe.nbytes)
    PT_TRY(ptyc_buf_upload(s->be, probe, 0, b + sizeof h + object.nbytes, probe.nbytes));
  return PTYC_OK;
}

const pt_engine_vtable pt_lsqml_engine = {
    .name = "lsqml",
    .data_parallel = 1,
    .plan_bytes = lsqml_plan_bytes,
    .init = lsqml_init,
    .step = lsqml_step,
    .free = lsqml_free,
    .save_state = lsqml_save_state,
    .load_state = lsqml_load_state,
};
