/* Finite-difference check of the whole cost's gradient with respect to the object, the
 * probe modes and the scan positions, through the autodiff tape (pt_farfield_run), for
 * the three costs with a detector mask, on the CPU and, when a GPU is usable, on CUDA.
 *
 * A double-precision host implementation of the far-field model (FORMATS.md:
 * psi = shift(P_k, f_j) O_j, Psi = F psi, I = sum_k |Psi|^2, C = sum l(I, d)) gives the
 * cost; central differences of it in double are the reference gradients. Checked
 * against them:
 *  - tight (1e-7): the hand-derived reverse pass in double (below), step by step the
 *    chain of VJPs that the tape runs;
 *  - float (TOL_MODEL): the tape on the backend, float32 values through four FFTs. */
#include "autodiff/farfield.h"
#include "grad_util.h"

/* Four float FFTs (~1e-7 log2(M^2) each) and the products between them: ~1e-6;
 * 1e-4 leaves a margin of ~100 (an error in a derivation is O(1)). */
#define TOL_MODEL 1e-4

enum { M = 8, K = 2, N = 3, FIRST = 1, N_POS = 5, H = 20, W = 22 };
#define IMG ((size_t)M * M)

typedef struct problem {
  ptyc_loss loss;
  ptyc_subpixel_shift shift;
  double pos[2 * N_POS];
  int32_t order[N_POS];
  ptyc_c64 object[H * W];
  ptyc_c64 probe[K * M * M];
  float patterns[N_POS * M * M];
  float mask[M * M];
} problem;

static double loss64(ptyc_loss loss, double i, double d) {
  switch (loss) {
  case PTYC_LOSS_INTENSITY: return (i - d) * (i - d);
  case PTYC_LOSS_POISSON: return d > 0 ? i + 1e-9 - d + d * log(d / (i + 1e-9)) : i + 1e-9;
  default: return (sqrt(i) - sqrt(d)) * (sqrt(i) - sqrt(d));
  }
}
static double loss64_derivative(ptyc_loss loss, double i, double d) {
  switch (loss) {
  case PTYC_LOSS_INTENSITY: return 2 * (i - d);
  case PTYC_LOSS_POISSON: return 1 - d / (i + 1e-9);
  default: return 1 - sqrt(d / i);
  }
}

/* Where entry b sits. */
static void corner(const problem *pr, int b, int *j, int *y0, int *x0, double *fy, double *fx) {
  *j = pr->order[FIRST + b];
  *y0 = (int)floor(pr->pos[2 * *j]);
  *x0 = (int)floor(pr->pos[2 * *j + 1]);
  *fy = pr->pos[2 * *j] - *y0;
  *fx = pr->pos[2 * *j + 1] - *x0;
}

/* The intermediate values of one entry's forward model (kept for the reverse pass). */
typedef struct entry {
  ptyc_c64 s[K * M * M], p[K * M * M], big_psi[K * M * M];
} entry;

/* Forward model of entry b; returns its cost. */
static double forward_entry(const problem *pr, const ptyc_c64 *spectrum, int b, entry *e) {
  int j, y0, x0;
  double fy, fx;
  corner(pr, b, &j, &y0, &x0, &fy, &fx);
  ptyc_c64 psi[M * M];
  double wy[PT_INTERP_TAPS], wx[PT_INTERP_TAPS];
  interp_weights64(fy, fx, wy, wx);
  for (int k = 0; k < K; k++) {
    if (pr->shift == PTYC_SHIFT_INTERPOLATE) {
      interp64(pr->probe + k * IMG, e->p + k * IMG, M, wy, wx);
    } else {
      for (int u = 0; u < M; u++)
        for (int v = 0; v < M; v++)
          e->s[k * IMG + u * M + v] = c64_scale(
              c64_mul(spectrum[k * IMG + u * M + v], ramp64(u, v, M, fy, fx)), 1.0 / IMG);
      dft2(e->s + k * IMG, e->p + k * IMG, M, 1); /* the shifted probe */
    }
    for (int y = 0; y < M; y++)
      for (int x = 0; x < M; x++)
        psi[y * M + x] = c64_mul(e->p[k * IMG + y * M + x], pr->object[(y0 + y) * W + x0 + x]);
    dft2(psi, e->big_psi + k * IMG, M, 0);
  }
  const float *d = pr->patterns + (size_t)j * IMG;
  double cost = 0;
  for (size_t q = 0; q < IMG; q++) {
    if (pr->mask[q] <= 0) continue;
    double intensity = 0;
    for (int k = 0; k < K; k++) intensity += c64_abs2(e->big_psi[k * IMG + q]);
    cost += loss64(pr->loss, intensity, d[q]);
  }
  return cost;
}

static double model_cost(const problem *pr) {
  ptyc_c64 spectrum[K * M * M];
  for (int k = 0; k < K; k++) dft2(pr->probe + k * IMG, spectrum + k * IMG, M, 0);
  entry e;
  double total = 0;
  for (int b = 0; b < N; b++) total += forward_entry(pr, spectrum, b, &e);
  return total;
}

/* The hand-derived reverse pass in double: the VJPs of primitives.c in reverse order. */
static void reverse_pass(const problem *pr, ptyc_c64 *g_object, ptyc_c64 *g_probe, double *g_pos) {
  ptyc_c64 spectrum[K * M * M], g_spectrum[K * M * M];
  for (int k = 0; k < K; k++) dft2(pr->probe + k * IMG, spectrum + k * IMG, M, 0);
  memset(g_spectrum, 0, sizeof g_spectrum);
  memset(g_object, 0, sizeof(ptyc_c64) * H * W);
  static entry e;
  for (int b = 0; b < N; b++) {
    forward_entry(pr, spectrum, b, &e);
    int j, y0, x0;
    double fy, fx;
    corner(pr, b, &j, &y0, &x0, &fy, &fx);
    const float *d = pr->patterns + (size_t)j * IMG;
    ptyc_c64 g_big[K * M * M], g_psi[M * M], g_p[M * M], g_s[M * M];
    for (size_t q = 0; q < IMG; q++) { /* loss: grad Psi = l'(I) Psi */
      double intensity = 0;
      for (int k = 0; k < K; k++) intensity += c64_abs2(e.big_psi[k * IMG + q]);
      double f = pr->mask[q] > 0 ? loss64_derivative(pr->loss, intensity, d[q]) : 0;
      for (int k = 0; k < K; k++) g_big[k * IMG + q] = c64_scale(e.big_psi[k * IMG + q], f);
    }
    g_pos[2 * b] = g_pos[2 * b + 1] = 0;
    for (int k = 0; k < K; k++) {
      dft2(g_big + k * IMG, g_psi, M, 1); /* Psi = F psi: grad psi = G grad Psi */
      for (int y = 0; y < M; y++)         /* psi = p O: both factors */
        for (int x = 0; x < M; x++) {
          size_t o = (size_t)(y0 + y) * W + x0 + x, q = (size_t)y * M + x;
          g_object[o] = c64_add(g_object[o], c64_mulc(e.p[k * IMG + q], g_psi[q]));
          g_p[q] = c64_mulc(pr->object[o], g_psi[q]);
        }
      dft2(g_p, g_s, M, 0); /* p = G S: grad S = F grad p */
      for (int u = 0; u < M; u++)
        for (int v = 0; v < M; v++) {
          size_t q = (size_t)u * M + v;
          ptyc_c64 s = e.s[k * IMG + q]; /* S = P^ ramp / M^2 */
          g_spectrum[k * IMG + q] = c64_add(g_spectrum[k * IMG + q],
                                            c64_scale(c64_mulc(ramp64(u, v, M, fy, fx), g_s[q]), 1.0 / IMG));
          double im = c64_mulc(g_s[q], s).im; /* dS/df = -2 pi i f / M S */
          g_pos[2 * b] += 4 * GRAD_PI * pt_freq_index(u, M) / M * im;
          g_pos[2 * b + 1] += 4 * GRAD_PI * pt_freq_index(v, M) / M * im;
        }
    }
  }
  for (int k = 0; k < K; k++) dft2(g_spectrum + k * IMG, g_probe + k * IMG, M, 1); /* P^ = F P */
}

/* Finite differences of model_cost over the object, the probe and the positions. */
typedef struct which {
  problem *pr;
  int part; /* 0 object, 1 probe */
} which;

static double cost_of(void *vctx, const ptyc_c64 *x) {
  which *w = vctx;
  ptyc_c64 *target = w->part == 0 ? w->pr->object : w->pr->probe;
  size_t n = w->part == 0 ? (size_t)H * W : K * IMG;
  if (x != target) memcpy(target, x, n * sizeof *x);
  return model_cost(w->pr);
}

static void fd_positions(problem *pr, double *g) {
  /* The interpolation weights carry rounding noise (~1e-11, an ill-conditioned solve:
   * test_ad_primitives) that central differences of step 1e-6 would magnify to ~1e-5:
   * there, a five-point stencil of step 1e-3. */
  const int interp = pr->shift == PTYC_SHIFT_INTERPOLATE;
  const double h = interp ? 1e-3 : 1e-6;
  for (int b = 0; b < N; b++)
    for (int a = 0; a < 2; a++) {
      int j = pr->order[FIRST + b];
      double keep = pr->pos[2 * j + a], f[4];
      for (int q = 0; q < 4; q++) { /* at -2h, -h, +h, +2h */
        pr->pos[2 * j + a] = keep + (q < 2 ? q - 2 : q - 1) * h;
        f[q] = interp || q == 1 || q == 2 ? model_cost(pr) : 0.0;
      }
      pr->pos[2 * j + a] = keep;
      g[2 * b + a] = interp ? (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
                            : (f[2] - f[1]) / (2 * h);
    }
}

static void make_problem(problem *pr, ptyc_loss loss, ptyc_subpixel_shift shift) {
  pr->loss = loss;
  pr->shift = shift;
  for (int j = 0; j < N_POS; j++) {
    pr->pos[2 * j] = floor(grad_uniform(0, H - M - 1)) + grad_uniform(0.15, 0.85);
    pr->pos[2 * j + 1] = floor(grad_uniform(0, W - M - 1)) + grad_uniform(0.15, 0.85);
    pr->order[j] = (j * 2 + 1) % N_POS;
  }
  for (int i = 0; i < H * W; i++) /* an object of modulus ~1 with structure */
    pr->object[i] = c64((float)grad_uniform(0.5, 1.2), (float)grad_uniform(-0.5, 0.5));
  for (size_t i = 0; i < K * IMG; i++)
    pr->probe[i] = c64((float)grad_uniform(-1, 1), (float)grad_uniform(-1, 1));
  for (size_t i = 0; i < IMG; i++) pr->mask[i] = grad_uniform(0, 1) < 0.85 ? 1.f : 0.f;
  /* data near the model's own intensities (d = I * [0.5, 1.5]), so residuals are O(1) */
  ptyc_c64 spectrum[K * M * M];
  for (int k = 0; k < K; k++) dft2(pr->probe + k * IMG, spectrum + k * IMG, M, 0);
  static entry e;
  memset(pr->patterns, 0, sizeof pr->patterns);
  for (int b = 0; b < N; b++) {
    forward_entry(pr, spectrum, b, &e);
    int j = pr->order[FIRST + b];
    for (size_t q = 0; q < IMG; q++) {
      double intensity = 0;
      for (int k = 0; k < K; k++) intensity += c64_abs2(e.big_psi[k * IMG + q]);
      pr->patterns[j * IMG + q] = (float)(intensity * grad_uniform(0.5, 1.5));
    }
  }
}

/* The tape's gradients on one backend. */
static void tape_gradients(ptyc_backend *be, const problem *pr, ptyc_c32 *g_object,
                           ptyc_c32 *g_probe, double *g_pos, double *cost) {
  ptyc_scan scan = {.m = M, .n_modes = K, .obj_h = H, .obj_w = W, .n_positions = N_POS};
  scan.positions = buf_from(be, pr->pos, sizeof pr->pos);
  scan.order = buf_from(be, pr->order, sizeof pr->order);
  ptyc_buf object = buf_c64(be, pr->object, (size_t)H * W), probe = buf_c64(be, pr->probe, K * IMG);
  ptyc_buf patterns = buf_from(be, pr->patterns, sizeof pr->patterns);
  ptyc_buf mask = buf_from(be, pr->mask, sizeof pr->mask);
  pt_farfield_grads grads;
  grads.object = buf_from(be, NULL, sizeof(ptyc_c32) * H * W);
  grads.illumination = buf_from(be, NULL, sizeof(float) * H * W);
  grads.probe = buf_from(be, NULL, sizeof(ptyc_c32) * K * IMG);
  grads.object_intensity = buf_from(be, NULL, sizeof(float) * IMG);
  grads.positions = buf_from(be, NULL, sizeof(double) * 4 * N);
  pt_farfield ff;
  REQUIRE_OK(pt_farfield_init(&ff, be, M, K, N, 0, pr->shift));
  pt_farfield_data data = {pr->loss, patterns, mask, &scan, FIRST};
  REQUIRE_OK(pt_farfield_run(&ff, &scan, FIRST, N, object, probe, &data, &grads));
  double pos4[4 * N], costs[N];
  REQUIRE_OK(ptyc_buf_download(be, g_object, grads.object, 0, sizeof(ptyc_c32) * H * W));
  REQUIRE_OK(ptyc_buf_download(be, g_probe, grads.probe, 0, sizeof(ptyc_c32) * K * IMG));
  REQUIRE_OK(ptyc_buf_download(be, pos4, grads.positions, 0, sizeof pos4));
  REQUIRE_OK(ptyc_buf_download(be, costs, ff.cost, 0, sizeof costs));
  *cost = 0;
  for (int b = 0; b < N; b++) {
    g_pos[2 * b] = pos4[4 * b];
    g_pos[2 * b + 1] = pos4[4 * b + 1];
    *cost += costs[b];
  }
  pt_farfield_free(&ff);
  ptyc_buf *bufs[] = {&scan.positions, &scan.order, &object, &probe, &patterns, &mask,
                      &grads.object, &grads.illumination, &grads.probe,
                      &grads.object_intensity, &grads.positions};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
}

int main(void) {
  ptyc_backend *be[2] = {NULL, NULL};
  const char *names[2];
  int n_be = grad_backends(be, names);
  static const char *loss_names[] = {"amplitude", "intensity", "poisson"};
  static problem pr;
  static ptyc_c64 fd_o[H * W], fd_p[K * M * M], ref_o[H * W], ref_p[K * M * M];
  static ptyc_c32 got_o[H * W], got_p[K * M * M];
  for (int run = 0; run < 4; run++) {
    /* the three costs with the Fourier shift, then the amplitude cost with the
     * interpolated one (the shift's primitive does not depend on the cost) */
    int l = run % 3;
    ptyc_subpixel_shift shift = run < 3 ? PTYC_SHIFT_FOURIER : PTYC_SHIFT_INTERPOLATE;
    make_problem(&pr, (ptyc_loss)l, shift);
    printf("cost %s, shift %s (M %d, %d modes, %d of %d positions, %d x %d object, masked)\n",
           loss_names[l], shift == PTYC_SHIFT_FOURIER ? "fourier" : "interpolate", M, K, N,
           N_POS, H, W);
    which wo = {&pr, 0}, wp = {&pr, 1};
    static ptyc_c64 x_o[H * W], x_p[K * M * M];
    memcpy(x_o, pr.object, sizeof x_o);
    memcpy(x_p, pr.probe, sizeof x_p);
    fd_gradient(cost_of, &wo, x_o, (size_t)H * W, fd_o);
    memcpy(pr.object, x_o, sizeof x_o);
    fd_gradient(cost_of, &wp, x_p, K * IMG, fd_p);
    memcpy(pr.probe, x_p, sizeof x_p);
    double fd_pos[2 * N], ref_pos[2 * N], got_pos[2 * N];
    fd_positions(&pr, fd_pos);
    if (shift == PTYC_SHIFT_FOURIER) { /* the interpolated shift's VJPs: test_ad_primitives */
      reverse_pass(&pr, ref_o, ref_p, ref_pos);
      grad_check("double", "reverse pass: grad object", rel_err64(ref_o, fd_o, (size_t)H * W), TOL_DOUBLE);
      grad_check("double", "reverse pass: grad probe", rel_err64(ref_p, fd_p, K * IMG), TOL_DOUBLE);
      grad_check("double", "reverse pass: dC/d positions", rel_err_real(ref_pos, fd_pos, 2 * N), TOL_DOUBLE);
    }
    double cost_ref = model_cost(&pr);
    for (int i = 0; i < n_be; i++) {
      double cost;
      tape_gradients(be[i], &pr, got_o, got_p, got_pos, &cost);
      grad_check(names[i], "tape: cost", fabs(cost - cost_ref) / cost_ref, TOL_MODEL);
      grad_check(names[i], "tape: grad object", rel_err32(got_o, fd_o, (size_t)H * W), TOL_MODEL);
      grad_check(names[i], "tape: grad probe", rel_err32(got_p, fd_p, K * IMG), TOL_MODEL);
      grad_check(names[i], "tape: dC/d positions", rel_err_real(got_pos, fd_pos, 2 * N), TOL_MODEL);
    }
  }
  for (int i = 0; i < n_be; i++) {
    EXPECT(ptyc_backend_bytes_in_use(be[i]) == 0);
    ptyc_backend_free(be[i]);
  }
  return TEST_RESULT();
}
