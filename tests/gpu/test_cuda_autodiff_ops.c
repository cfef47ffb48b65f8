/* Every CUDA autodiff op against the CPU reference, through the public API only (as
 * tests/gpu/test_cuda_ops.c does for the other ops).
 *
 * Each op runs on fresh random inputs (never zeros) on both backends; outputs that the
 * op only writes are poisoned first (all bytes 0xFF: NaN as float and as double), so an
 * output the GPU leaves unwritten fails; outputs it adds to start from random values.
 * The error is ||gpu - cpu|| / ||cpu|| over all values; one line per check. Skips (77)
 * without a usable GPU or without CUDA in the build.
 *
 * Tolerances:
 *  TOL_SAME    the same float operations in the same order; only contraction (FMA) and
 *              approximate sqrt / division (--use_fast_math) differ: a few ulp.
 *  TOL_ATOMIC  float atomics add the overlapping patches in a run-dependent order.
 *  TOL_SUM     double partial sums added in another order (block tree vs sequential),
 *              of float terms that may themselves differ by an ulp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/backend.h"
#include "rng.h"
#include "test_util.h"

#define TOL_SAME 1e-5
#define TOL_ATOMIC 1e-5
#define TOL_SUM 1e-5

static ptyc_backend *cpu, *gpu;
static uint64_t draw_index = 0;

static double uniform(double lo, double hi) {
  return lo + (hi - lo) * pt_rng_uniform(20241122u, 5, draw_index++);
}

static void *xmalloc(size_t nbytes) {
  void *p = malloc(nbytes ? nbytes : 1);
  if (p == NULL) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", nbytes);
    exit(1);
  }
  return p;
}

static ptyc_c32 *random_c32(size_t n, float scale) {
  ptyc_c32 *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = pt_c32((float)uniform(-scale, scale), (float)uniform(-scale, scale));
  return x;
}

static float *random_f32(size_t n, double lo, double hi) {
  float *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (float)uniform(lo, hi);
  return x;
}

/* ---- one buffer on each backend --------------------------------------------------------- */

typedef struct twin {
  ptyc_buf c, g;
  size_t nbytes;
} twin;

static twin twin_upload(const void *host, size_t nbytes) {
  twin t = {.nbytes = nbytes};
  REQUIRE_OK(ptyc_buf_alloc(cpu, nbytes, &t.c));
  REQUIRE_OK(ptyc_buf_alloc(gpu, nbytes, &t.g));
  REQUIRE_OK(ptyc_buf_upload(cpu, t.c, 0, host, nbytes));
  REQUIRE_OK(ptyc_buf_upload(gpu, t.g, 0, host, nbytes));
  return t;
}

static twin twin_poison(size_t nbytes) {
  unsigned char *p = xmalloc(nbytes);
  memset(p, 0xFF, nbytes);
  twin t = twin_upload(p, nbytes);
  free(p);
  return t;
}

static void twin_free(twin *t) {
  ptyc_buf_free(cpu, &t->c);
  ptyc_buf_free(gpu, &t->g);
}

static double twin_error(twin t, int doubles) {
  void *hc = xmalloc(t.nbytes), *hg = xmalloc(t.nbytes);
  REQUIRE_OK(ptyc_buf_download(cpu, hc, t.c, 0, t.nbytes));
  REQUIRE_OK(ptyc_buf_download(gpu, hg, t.g, 0, t.nbytes));
  size_t n = t.nbytes / (doubles ? sizeof(double) : sizeof(float));
  double diff = 0.0, norm = 0.0;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double c = doubles ? ((double *)hc)[i] : ((float *)hc)[i];
    double g = doubles ? ((double *)hg)[i] : ((float *)hg)[i];
    if (!isfinite(g) || !isfinite(c)) {
      bad = 1;
      continue;
    }
    diff += (g - c) * (g - c);
    norm += c * c;
  }
  free(hc);
  free(hg);
  if (bad) return INFINITY;
  return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

static const char *case_name = "";

static void report(const char *what, double err, double tol) {
  printf("  %-8s %-50s rel err %.3e  (tol %.0e)%s\n", case_name, what, err, tol,
         err <= tol ? "" : "  FAILED");
  EXPECT_LE(err, tol);
}
static void check_f32(const char *what, twin t, double tol) { report(what, twin_error(t, 0), tol); }
static void check_f64(const char *what, twin t, double tol) { report(what, twin_error(t, 1), tol); }

/* ---- the scan --------------------------------------------------------------------------------- */

typedef struct test_case {
  const char *name;
  int m, k, n, first, h, w;
} test_case;

typedef struct scan_pair {
  ptyc_scan c, g;
  twin positions, order;
} scan_pair;

static scan_pair make_scan(const test_case *tc) {
  scan_pair s;
  int n_pos = tc->n + 2 * tc->first;
  double *pos = xmalloc(sizeof(double) * 2 * n_pos);
  int32_t *order = xmalloc(sizeof(int32_t) * n_pos);
  for (int j = 0; j < n_pos; j++) {
    pos[2 * j] = uniform(0.0, tc->h - tc->m - 1.0);
    pos[2 * j + 1] = uniform(0.0, tc->w - tc->m - 1.0);
    order[j] = j;
  }
  pt_rng_shuffle_i32(20241122u, 6, order, n_pos);
  s.positions = twin_upload(pos, sizeof(double) * 2 * n_pos);
  s.order = twin_upload(order, sizeof(int32_t) * n_pos);
  ptyc_scan base = {.m = tc->m, .n_modes = tc->k, .obj_h = tc->h, .obj_w = tc->w, .n_positions = n_pos};
  s.c = base, s.g = base;
  s.c.positions = s.positions.c, s.c.order = s.order.c;
  s.g.positions = s.positions.g, s.g.order = s.order.g;
  free(pos);
  free(order);
  return s;
}

static void free_scan(scan_pair *s) {
  twin_free(&s->positions);
  twin_free(&s->order);
}

static size_t pixels(const test_case *tc) { return (size_t)tc->m * tc->m; }
static size_t batch_values(const test_case *tc) { return (size_t)tc->n * tc->k * pixels(tc); }
static size_t object_values(const test_case *tc) { return (size_t)tc->h * tc->w; }

/* ---- ops ------------------------------------------------------------------------------------- */

static void test_loss(const test_case *tc, const scan_pair *s, ptyc_loss loss, int use_mask) {
  static const char *names[] = {"amplitude", "intensity", "poisson"};
  size_t batch = batch_values(tc), px = pixels(tc), n_pat = (size_t)s->c.n_positions * px;
  ptyc_c32 *waves = random_c32(batch, 3.f);
  float *patterns = random_f32(n_pat, 0.0, 40.0), *mask = xmalloc(px * sizeof(float));
  for (size_t i = 0; i < n_pat; i += 13) patterns[i] = 0.f;
  for (size_t i = 0; i < px; i++) mask[i] = uniform(0, 1) < 0.8 ? 1.f : 0.f;
  twin tw = twin_upload(waves, batch * sizeof(ptyc_c32)), tp = twin_upload(patterns, n_pat * sizeof(float));
  twin tm = twin_upload(mask, px * sizeof(float)), tcost = twin_poison((size_t)tc->n * sizeof(double));
  ptyc_buf mc = use_mask ? tm.c : (ptyc_buf){0}, mg = use_mask ? tm.g : (ptyc_buf){0};
  REQUIRE_OK(ptyc_op_loss_gradient(cpu, &s->c, tc->first, tc->n, loss, tp.c, mc, tw.c, tcost.c));
  REQUIRE_OK(ptyc_op_loss_gradient(gpu, &s->g, tc->first, tc->n, loss, tp.g, mg, tw.g, tcost.g));
  char what[80];
  snprintf(what, sizeof what, "loss_gradient %s%s: gradient", names[loss], use_mask ? " + mask" : "");
  check_f32(what, tw, TOL_SAME);
  snprintf(what, sizeof what, "loss_gradient %s%s: cost", names[loss], use_mask ? " + mask" : "");
  check_f64(what, tcost, TOL_SUM);
  twin_free(&tw), twin_free(&tp), twin_free(&tm), twin_free(&tcost);
  free(waves), free(patterns), free(mask);
}

/* all four outputs, then in place with only grad_probes, then only the object terms */
static void test_exit_vjp(const test_case *tc, const scan_pair *s) {
  size_t batch = batch_values(tc), obj = object_values(tc), px = pixels(tc);
  ptyc_c32 *object = random_c32(obj, 1.f), *probes = random_c32(batch, 2.f), *g = random_c32(batch, 1.f);
  ptyc_c32 *go0 = random_c32(obj, 1.f);
  float *il0 = random_f32(obj, 0.5, 2.0), *oi0 = random_f32(px, 0.5, 2.0);
  twin to = twin_upload(object, obj * sizeof(ptyc_c32)), tp = twin_upload(probes, batch * sizeof(ptyc_c32));
  twin tg = twin_upload(g, batch * sizeof(ptyc_c32)), tgo = twin_upload(go0, obj * sizeof(ptyc_c32));
  twin til = twin_upload(il0, obj * sizeof(float)), toi = twin_upload(oi0, px * sizeof(float));
  twin tgp = twin_poison(batch * sizeof(ptyc_c32));
  REQUIRE_OK(ptyc_op_exit_waves_vjp(cpu, &s->c, tc->first, tc->n, to.c, tp.c, tg.c, tgo.c, til.c, tgp.c, toi.c));
  REQUIRE_OK(ptyc_op_exit_waves_vjp(gpu, &s->g, tc->first, tc->n, to.g, tp.g, tg.g, tgo.g, til.g, tgp.g, toi.g));
  check_f32("exit_waves_vjp: grad object (added)", tgo, TOL_ATOMIC);
  check_f32("exit_waves_vjp: illumination (added)", til, TOL_ATOMIC);
  check_f32("exit_waves_vjp: grad probes", tgp, TOL_SAME);
  check_f32("exit_waves_vjp: object intensity (added)", toi, TOL_ATOMIC);
  ptyc_buf none = {0};
  REQUIRE_OK(ptyc_op_exit_waves_vjp(cpu, &s->c, tc->first, tc->n, to.c, tp.c, tg.c, none, none, tp.c, none));
  REQUIRE_OK(ptyc_op_exit_waves_vjp(gpu, &s->g, tc->first, tc->n, to.g, tp.g, tg.g, none, none, tp.g, none));
  check_f32("exit_waves_vjp: grad probes in place", tp, TOL_SAME);
  REQUIRE_OK(ptyc_op_exit_waves_vjp(cpu, &s->c, tc->first, tc->n, to.c, tp.c, tg.c, tgo.c, none, none, none));
  REQUIRE_OK(ptyc_op_exit_waves_vjp(gpu, &s->g, tc->first, tc->n, to.g, tp.g, tg.g, tgo.g, none, none, none));
  check_f32("exit_waves_vjp: grad object only", tgo, TOL_ATOMIC);
  twin *ts[] = {&to, &tp, &tg, &tgo, &til, &toi, &tgp};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) twin_free(ts[i]);
  free(object), free(probes), free(g), free(go0), free(il0), free(oi0);
}

static void test_shift_gradient(const test_case *tc, const scan_pair *s) {
  size_t modes = (size_t)tc->k * pixels(tc), batch = batch_values(tc);
  ptyc_c32 *spectrum = random_c32(modes, 5.f), *g = random_c32(batch, 1.f);
  twin tspec = twin_upload(spectrum, modes * sizeof(ptyc_c32)), tg = twin_upload(g, batch * sizeof(ptyc_c32));
  twin tout = twin_poison((size_t)tc->n * 4 * sizeof(double));
  float scale = 1.f / (float)pixels(tc);
  REQUIRE_OK(ptyc_op_shift_position_gradient(cpu, &s->c, tc->first, tc->n, tspec.c, scale, tg.c, tout.c));
  REQUIRE_OK(ptyc_op_shift_position_gradient(gpu, &s->g, tc->first, tc->n, tspec.g, scale, tg.g, tout.g));
  /* sums of products of float ramps made from double sin/cos: as shift_spectrum */
  check_f64("shift_position_gradient", tout, TOL_SUM);
  twin_free(&tspec), twin_free(&tg), twin_free(&tout);
  free(spectrum), free(g);
}

static void test_interp_gradient(const test_case *tc, const scan_pair *s) {
  size_t modes = (size_t)tc->k * pixels(tc), batch = batch_values(tc);
  ptyc_c32 *probe = random_c32(modes, 2.f), *g = random_c32(batch, 1.f);
  ptyc_c32 *object = random_c32(object_values(tc), 1.f);
  twin tp = twin_upload(probe, modes * sizeof(ptyc_c32)), tg = twin_upload(g, batch * sizeof(ptyc_c32));
  twin to = twin_upload(object, object_values(tc) * sizeof(ptyc_c32));
  twin tout = twin_poison((size_t)tc->n * 4 * sizeof(double));
  REQUIRE_OK(ptyc_op_interp_position_gradient(cpu, &s->c, tc->first, tc->n, tp.c, to.c, tg.c, tout.c));
  REQUIRE_OK(ptyc_op_interp_position_gradient(gpu, &s->g, tc->first, tc->n, tp.g, to.g, tg.g, tout.g));
  /* float filter sums (the same taps, rows then columns) and float products, added in
   * double in another order */
  check_f64("interp_position_gradient", tout, TOL_SUM);
  twin_free(&tp), twin_free(&tg), twin_free(&to), twin_free(&tout);
  free(probe), free(g), free(object);
}

static void test_optimizer(const test_case *tc) {
  size_t count = batch_values(tc), den_count = pixels(tc);
  ptyc_c32 *x = random_c32(count, 1.f), *grad = random_c32(count, 2.f);
  float *den = random_f32(den_count, 0.1, 9.0);
  static const char *rules[] = {"sgd nesterov", "adam", "rmsprop"};
  for (int r = 0; r < 3; r++) {
    twin tx = twin_upload(x, count * sizeof(ptyc_c32)), tg = twin_upload(grad, count * sizeof(ptyc_c32));
    twin td = twin_upload(den, den_count * sizeof(float));
    twin ts = twin_poison(count * (sizeof(ptyc_c32) + sizeof(float)));
    REQUIRE_OK(ptyc_buf_zero(cpu, ts.c, 0, ts.nbytes));
    REQUIRE_OK(ptyc_buf_zero(gpu, ts.g, 0, ts.nbytes));
    ptyc_optim_params p = {.kind = (ptyc_optimizer)r, .step = 0.2, .momentum = 0.9, .nesterov = 1,
                           .beta1 = 0.9, .beta2 = 0.999, .alpha = 0.99, .epsilon = 1e-8,
                           .grad_scale = 3.0, .den_mix = 0.5};
    for (int t = 1; t <= 3; t++) {
      p.t = t;
      REQUIRE_OK(ptyc_op_optimizer_step(cpu, &p, tx.c, tg.c, count, td.c, den_count, ts.c));
      REQUIRE_OK(ptyc_op_optimizer_step(gpu, &p, tx.g, tg.g, count, td.g, den_count, ts.g));
    }
    char what[80];
    snprintf(what, sizeof what, "optimizer_step %s (den), 3 updates: param", rules[r]);
    check_f32(what, tx, TOL_SAME);
    snprintf(what, sizeof what, "optimizer_step %s (den), 3 updates: state", rules[r]);
    check_f32(what, ts, TOL_SAME);
    twin_free(&tx), twin_free(&tg), twin_free(&td), twin_free(&ts);
  }
  free(x), free(grad), free(den);
}

static void test_position_step(const test_case *tc, scan_pair *s) {
  size_t n_pos = (size_t)s->c.n_positions, px = pixels(tc);
  double *grad = xmalloc(sizeof(double) * 4 * tc->n), *state = xmalloc(sizeof(double) * 4 * n_pos);
  for (int b = 0; b < tc->n; b++) {
    grad[4 * b] = uniform(-50, 50), grad[4 * b + 1] = uniform(-50, 50);
    grad[4 * b + 2] = uniform(1, 3), grad[4 * b + 3] = uniform(1, 3);
  }
  for (size_t i = 0; i < 4 * n_pos; i++) state[i] = uniform(0, 0.1);
  float *den = random_f32(px, 0.5, 3.0);
  twin tg = twin_upload(grad, sizeof(double) * 4 * tc->n), ts = twin_upload(state, sizeof(double) * 4 * n_pos);
  twin td = twin_upload(den, px * sizeof(float));
  static const char *rules[] = {"sgd nesterov", "adam", "rmsprop"};
  for (int r = 0; r < 3; r++) {
    ptyc_optim_params p = {.kind = (ptyc_optimizer)r, .step = 0.3, .momentum = 0.9, .nesterov = 1,
                           .beta1 = 0.9, .beta2 = 0.999, .alpha = 0.99, .epsilon = 1e-8,
                           .grad_scale = 0.2, .t = 2};
    REQUIRE_OK(ptyc_op_position_step(cpu, &s->c, tc->first, tc->n, &p, tg.c, td.c, px, ts.c));
    REQUIRE_OK(ptyc_op_position_step(gpu, &s->g, tc->first, tc->n, &p, tg.g, td.g, px, ts.g));
    char what[80];
    snprintf(what, sizeof what, "position_step %s: positions", rules[r]);
    check_f64(what, s->positions, TOL_SAME);
    snprintf(what, sizeof what, "position_step %s: state", rules[r]);
    check_f64(what, ts, TOL_SAME);
  }
  twin_free(&tg), twin_free(&ts), twin_free(&td);
  free(grad), free(state), free(den);
}

static void test_regularize(const test_case *tc) {
  size_t obj = object_values(tc);
  ptyc_c32 *o = random_c32(obj, 1.f), *g0 = random_c32(obj, 0.5f);
  double start = 2.0;
  twin to = twin_upload(o, obj * sizeof(ptyc_c32)), tg = twin_upload(g0, obj * sizeof(ptyc_c32));
  twin tc_ = twin_upload(&start, sizeof start);
  REQUIRE_OK(ptyc_op_object_regularize(cpu, to.c, tc->h, tc->w, 0.3, 0.7, tg.c, tc_.c));
  REQUIRE_OK(ptyc_op_object_regularize(gpu, to.g, tc->h, tc->w, 0.3, 0.7, tg.g, tc_.g));
  check_f32("object_regularize: grad (added)", tg, TOL_SAME);
  check_f64("object_regularize: cost (added)", tc_, TOL_SUM);
  twin_free(&to), twin_free(&tg), twin_free(&tc_);
  free(o), free(g0);
}

static void run_case(const test_case *tc) {
  case_name = tc->name;
  printf("case %s: M=%d K=%d n=%d (from %d) object %dx%d\n", tc->name, tc->m, tc->k, tc->n, tc->first,
         tc->h, tc->w);
  scan_pair s = make_scan(tc);
  for (int mask = 0; mask <= 1; mask++)
    for (int l = 0; l < 3; l++) test_loss(tc, &s, (ptyc_loss)l, mask);
  test_exit_vjp(tc, &s);
  test_shift_gradient(tc, &s);
  test_interp_gradient(tc, &s);
  test_optimizer(tc);
  test_position_step(tc, &s);
  test_regularize(tc);
  free_scan(&s);
}

int main(void) {
  char why[256];
  if (!ptyc_cuda_usable(why, sizeof why)) {
    printf("skipped: %s\n", why);
    return PT_TEST_SKIP;
  }
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &cpu));
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CUDA, 0, 0, &gpu));
  static const test_case cases[] = {
      {"main", 64, 3, 7, 2, 150, 170},
      {"odd", 33, 2, 5, 1, 71, 90},      /* odd M: partial warps and blocks */
      {"wide", 48, 5, 11, 3, 100, 120},  /* K = 5 takes the 8-mode kernels */
      {"chunks", 32, 1, 19, 0, 60, 64},  /* more than one chunk of 8 entries */
      {"big", 256, 4, 6, 1, 400, 420},   /* several blocks per position */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  EXPECT(ptyc_backend_bytes_in_use(cpu) == 0);
  EXPECT(ptyc_backend_bytes_in_use(gpu) == 0);
  ptyc_backend_free(gpu);
  ptyc_backend_free(cpu);
  return TEST_RESULT();
}
