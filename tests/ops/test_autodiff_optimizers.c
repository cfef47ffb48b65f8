/* The optimizer ops of the autodiff engine against a double-precision reference of the
 * rules (include/ptyc/backend.h, ptyc_op_optimizer_step / ptyc_op_position_step), over
 * four updates on random values, on the CPU and, when a GPU is usable, on CUDA. One line
 * per check.
 *
 * Reference rules, on the normalised gradient g (complex values share v = mean |g|^2):
 *   SGD       m = g (first update) or mu m + g;  x -= lr (nesterov ? g + mu m : m)
 *   Adam      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) |g|^2;
 *             x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *   RMSprop   v = a v + (1 - a) |g|^2;  x -= lr g / (sqrt(v) + eps)
 * Positions: g = grad_scale dC/df / (curvature max(den)), the same rules per axis, the
 * move limited to 1 px and the position kept in [0, size - M]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/backend.h"
#include "rng.h"
#include "test_util.h"

/* float values and float update arithmetic over four updates: ~1e-6 relative. */
#define TOL 1e-5
#define STEPS 4

static uint64_t draw = 0;
static double uniform(double lo, double hi) { return lo + (hi - lo) * pt_rng_uniform(77, 1, draw++); }

static void check(const char *backend, const char *what, double err) {
  printf("  %-5s %-52s rel err %.2e (tol %.0e)%s\n", backend, what, err, TOL, err <= TOL ? "" : "  FAILED");
  EXPECT_LE(err, TOL);
}

/* ---- complex parameters ------------------------------------------------------------------ */

typedef struct ref_state {
  double mre, mim, v;
} ref_state;

static void reference_update(const ptyc_optim_params *p, double gre, double gim, ref_state *s,
                             double *xre, double *xim) {
  double lr = p->step, dre, dim;
  if (p->kind == PTYC_OPTIMIZER_ADAM) {
    s->mre = p->beta1 * s->mre + (1 - p->beta1) * gre;
    s->mim = p->beta1 * s->mim + (1 - p->beta1) * gim;
    s->v = p->beta2 * s->v + (1 - p->beta2) * (gre * gre + gim * gim);
    double denom = sqrt(s->v / (1 - pow(p->beta2, p->t))) + p->epsilon;
    double b1 = 1 - pow(p->beta1, p->t);
    dre = s->mre / b1 / denom, dim = s->mim / b1 / denom;
  } else if (p->kind == PTYC_OPTIMIZER_RMSPROP) {
    s->v = p->alpha * s->v + (1 - p->alpha) * (gre * gre + gim * gim);
    dre = gre / (sqrt(s->v) + p->epsilon), dim = gim / (sqrt(s->v) + p->epsilon);
  } else if (p->momentum > 0) {
    s->mre = p->t == 1 ? gre : p->momentum * s->mre + gre;
    s->mim = p->t == 1 ? gim : p->momentum * s->mim + gim;
    dre = p->nesterov ? gre + p->momentum * s->mre : s->mre;
    dim = p->nesterov ? gim + p->momentum * s->mim : s->mim;
  } else {
    dre = gre, dim = gim;
  }
  *xre -= lr * dre;
  *xim -= lr * dim;
}

static void test_rule(ptyc_backend *be, const char *name, ptyc_optim_params p, int with_den) {
  enum { COUNT = 600, DEN = 200 }; /* den repeats three times, as for probe modes */
  ptyc_c32 x[COUNT], g[STEPS][COUNT];
  float den[DEN];
  double xre[COUNT], xim[COUNT];
  ref_state st[COUNT];
  memset(st, 0, sizeof st);
  for (int i = 0; i < COUNT; i++) {
    x[i] = pt_c32((float)uniform(-1, 1), (float)uniform(-1, 1));
    xre[i] = x[i].re, xim[i] = x[i].im;
    for (int t = 0; t < STEPS; t++) g[t][i] = pt_c32((float)uniform(-3, 3), (float)uniform(-3, 3));
  }
  for (int i = 0; i < DEN; i++) den[i] = (float)uniform(0.5, 40);
  den[7] = 0.f; /* an unilluminated pixel */
  double max_den = 0;
  for (int i = 0; i < DEN; i++) max_den = den[i] > max_den ? den[i] : max_den;
  ptyc_buf bx, bg, bden, bstate;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof x, &bx));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof g[0], &bg));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof den, &bden));
  REQUIRE_OK(ptyc_buf_alloc(be, COUNT * (sizeof(ptyc_c32) + sizeof(float)), &bstate));
  REQUIRE_OK(ptyc_buf_upload(be, bx, 0, x, sizeof x));
  REQUIRE_OK(ptyc_buf_upload(be, bden, 0, den, sizeof den));
  REQUIRE_OK(ptyc_buf_zero(be, bstate, 0, bstate.nbytes));
  for (int t = 0; t < STEPS; t++) {
    p.t = t + 1;
    REQUIRE_OK(ptyc_buf_upload(be, bg, 0, g[t], sizeof g[t]));
    REQUIRE_OK(ptyc_op_optimizer_step(be, &p, bx, bg, COUNT, with_den ? bden : (ptyc_buf){0}, DEN, bstate));
    for (int i = 0; i < COUNT; i++) {
      double s = p.grad_scale;
      if (with_den) {
        double d = (1 - p.den_mix) * den[i % DEN] + p.den_mix * max_den;
        s = d > 0 ? p.grad_scale / d : 0;
      }
      reference_update(&p, s * g[t][i].re, s * g[t][i].im, &st[i], &xre[i], &xim[i]);
    }
  }
  REQUIRE_OK(ptyc_buf_download(be, x, bx, 0, sizeof x));
  double diff = 0, norm = 0;
  for (int i = 0; i < COUNT; i++) {
    diff += pow(x[i].re - xre[i], 2) + pow(x[i].im - xim[i], 2);
    norm += xre[i] * xre[i] + xim[i] * xim[i];
    if (!isfinite(x[i].re)) diff = INFINITY;
  }
  char what[96];
  snprintf(what, sizeof what, "%s%s, %d updates", name, with_den ? " (den, mix)" : "", STEPS);
  check(ptyc_backend_name(be), what, sqrt(diff / norm));
  ptyc_buf_free(be, &bx), ptyc_buf_free(be, &bg), ptyc_buf_free(be, &bden), ptyc_buf_free(be, &bstate);
}

/* ---- positions ------------------------------------------------------------------------------- */

static void test_positions(ptyc_backend *be, const char *name, ptyc_optim_params p) {
  enum { N_POS = 9, NB = 6, FIRST = 2, M = 16, H = 40, W = 50 };
  double pos[2 * N_POS], ref[2 * N_POS], state[4 * N_POS] = {0}, grad[STEPS][4 * NB];
  int32_t order[N_POS];
  float den[M * M];
  for (int j = 0; j < N_POS; j++) {
    pos[2 * j] = uniform(0, H - M), pos[2 * j + 1] = uniform(0, W - M);
    order[j] = (j * 4 + 1) % N_POS;
  }
  pos[2 * order[FIRST]] = 0.2; /* this one is pushed against the edge */
  memcpy(ref, pos, sizeof pos);
  for (int i = 0; i < M * M; i++) den[i] = (float)uniform(1, 5);
  double max_den = 0;
  for (int i = 0; i < M * M; i++) max_den = den[i] > max_den ? den[i] : max_den;
  for (int t = 0; t < STEPS; t++)
    for (int b = 0; b < NB; b++) {
      grad[t][4 * b] = uniform(-2, 2), grad[t][4 * b + 1] = uniform(-2, 2);
      grad[t][4 * b + 2] = uniform(0.5, 2), grad[t][4 * b + 3] = uniform(0.5, 2);
      if (b == 0) grad[t][0] = 5.0 * max_den; /* pushes y below 0 */
      if (b == 1) grad[t][5] = -100.0;        /* a step beyond the 1 px limit */
    }
  ptyc_scan scan = {.m = M, .n_modes = 1, .obj_h = H, .obj_w = W, .n_positions = N_POS};
  ptyc_buf bgrad, bden, bstate;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof pos, &scan.positions));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof order, &scan.order));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof grad[0], &bgrad));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof den, &bden));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof state, &bstate));
  REQUIRE_OK(ptyc_buf_upload(be, scan.positions, 0, pos, sizeof pos));
  REQUIRE_OK(ptyc_buf_upload(be, scan.order, 0, order, sizeof order));
  REQUIRE_OK(ptyc_buf_upload(be, bden, 0, den, sizeof den));
  REQUIRE_OK(ptyc_buf_zero(be, bstate, 0, sizeof state));
  double limit[2] = {H - M, W - M};
  for (int t = 0; t < STEPS; t++) {
    p.t = t + 1;
    REQUIRE_OK(ptyc_buf_upload(be, bgrad, 0, grad[t], sizeof grad[t]));
    REQUIRE_OK(ptyc_op_position_step(be, &scan, FIRST, NB, &p, bgrad, bden, M * M, bstate));
    for (int b = 0; b < NB; b++) {
      int j = order[FIRST + b];
      for (int a = 0; a < 2; a++) {
        double curv = grad[t][4 * b + 2 + a] * max_den;
        double g = p.grad_scale * grad[t][4 * b + a] / curv;
        ref_state s = {state[4 * j + a], 0, state[4 * j + 2 + a]};
        double x = 0, unused = 0;
        reference_update(&p, g, 0.0, &s, &x, &unused);
        state[4 * j + a] = s.mre, state[4 * j + 2 + a] = s.v;
        double move = x > 1.0 ? 1.0 : (x < -1.0 ? -1.0 : x);
        double y = ref[2 * j + a] + move;
        ref[2 * j + a] = y < 0 ? 0 : (y > limit[a] ? limit[a] : y);
      }
    }
  }
  REQUIRE_OK(ptyc_buf_download(be, pos, scan.positions, 0, sizeof pos));
  double err = 0;
  for (int i = 0; i < 2 * N_POS; i++) err = fmax(err, fabs(pos[i] - ref[i]));
  char what[96];
  snprintf(what, sizeof what, "position_step %s (edge, 1 px limit): max |err| px", name);
  check(ptyc_backend_name(be), what, err);
  EXPECT(pos[2 * order[FIRST]] == 0.0); /* clamped at the edge */
  ptyc_buf_free(be, &scan.positions), ptyc_buf_free(be, &scan.order), ptyc_buf_free(be, &bgrad);
  ptyc_buf_free(be, &bden), ptyc_buf_free(be, &bstate);
}

static void run_all(ptyc_backend *be) {
  ptyc_optim_params base = {.step = 0.3, .momentum = 0.9, .nesterov = 1, .beta1 = 0.9, .beta2 = 0.999,
                            .alpha = 0.99, .epsilon = 1e-8, .grad_scale = 2.5, .den_mix = 0.4};
  ptyc_optim_params p = base;
  p.kind = PTYC_OPTIMIZER_SGD, p.momentum = 0;
  test_rule(be, "sgd", p, 0);
  test_rule(be, "sgd", p, 1);
  p.momentum = 0.9, p.nesterov = 0;
  test_rule(be, "sgd momentum", p, 1);
  p.nesterov = 1;
  test_rule(be, "sgd nesterov", p, 1);
  p = base, p.kind = PTYC_OPTIMIZER_ADAM;
  test_rule(be, "adam", p, 0);
  test_rule(be, "adam", p, 1);
  p = base, p.kind = PTYC_OPTIMIZER_RMSPROP;
  test_rule(be, "rmsprop", p, 1);
  p = base, p.kind = PTYC_OPTIMIZER_SGD, p.grad_scale = 0.7;
  test_positions(be, "sgd nesterov", p);
  p.kind = PTYC_OPTIMIZER_ADAM, p.step = 0.4;
  test_positions(be, "adam", p);
  p.kind = PTYC_OPTIMIZER_RMSPROP, p.step = 0.05;
  test_positions(be, "rmsprop", p);
}

int main(void) {
  ptyc_backend *cpu;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &cpu));
  run_all(cpu);
  EXPECT(ptyc_backend_bytes_in_use(cpu) == 0);
  ptyc_backend_free(cpu);
  char why[256];
  if (ptyc_cuda_usable(why, sizeof why)) {
    ptyc_backend *gpu;
    REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CUDA, 0, 0, &gpu));
    run_all(gpu);
    EXPECT(ptyc_backend_bytes_in_use(gpu) == 0);
    ptyc_backend_free(gpu);
  } else {
    printf("CUDA part skipped: %s\n", why);
  }
  ptyc_optim_params bad = {.kind = PTYC_OPTIMIZER_DEFAULT, .epsilon = 1e-8, .t = 1};
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 1, &be));
  ptyc_buf b;
  REQUIRE_OK(ptyc_buf_alloc(be, 120, &b));
  EXPECT_STATUS(ptyc_op_optimizer_step(be, &bad, b, b, 10, (ptyc_buf){0}, 0, b), PTYC_E_ARG);
  ptyc_buf_free(be, &b);
  ptyc_backend_free(be);
  return TEST_RESULT();
}
