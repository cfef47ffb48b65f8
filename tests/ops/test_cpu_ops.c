/* The CPU reference ops: FFT and shift conventions, adjoint pairs of the forward
 * model's linear parts (<Ax, y> = <x, A^H y>), the Fourier projection, the step sizes
 * and the mode orthogonalisation, on random inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/backend.h"
#include "rng.h"
#include "test_util.h"

#define PI 3.14159265358979323846

static uint64_t draw = 0;
static void fill_random(ptyc_c32 *x, size_t n, float scale) {
  for (size_t i = 0; i < n; i++, draw++)
    x[i] = pt_c32((float)(scale * (2 * pt_rng_uniform(7, 1, draw) - 1)),
                  (float)(scale * (2 * pt_rng_uniform(7, 2, draw) - 1)));
}

/* <a, b> = sum conj(a) b in double */
static ptyc_c64 dot(const ptyc_c32 *a, const ptyc_c32 *b, size_t n) {
  ptyc_c64 s = {0, 0};
  for (size_t i = 0; i < n; i++) {
    s.re += (double)a[i].re * b[i].re + (double)a[i].im * b[i].im;
    s.im += (double)a[i].re * b[i].im - (double)a[i].im * b[i].re;
  }
  return s;
}

static ptyc_buf upload(ptyc_backend *be, const void *src, size_t nbytes) {
  ptyc_buf b;
  REQUIRE_OK(ptyc_buf_alloc(be, nbytes, &b));
  REQUIRE_OK(ptyc_buf_upload(be, b, 0, src, nbytes));
  return b;
}

/* A scan of n positions with random fractional parts inside an object. */
typedef struct fixture {
  ptyc_scan scan;
  double *pos;
  int32_t *order;
} fixture;

static fixture make_scan(ptyc_backend *be, int m, int k, int n, int h, int w) {
  fixture f;
  f.pos = malloc(sizeof(double) * 2 * n);
  f.order = malloc(sizeof(int32_t) * n);
  for (int j = 0; j < n; j++, draw++) {
    f.pos[2 * j] = pt_rng_uniform(9, 1, draw) * (h - m - 1);
    f.pos[2 * j + 1] = pt_rng_uniform(9, 2, draw) * (w - m - 1);
    f.order[j] = n - 1 - j;
  }
  f.scan = (ptyc_scan){.m = m, .n_modes = k, .obj_h = h, .obj_w = w,
                       .positions = upload(be, f.pos, sizeof(double) * 2 * n),
                       .order = upload(be, f.order, sizeof(int32_t) * n), .n_positions = n};
  return f;
}

static double rel_diff(ptyc_c64 a, ptyc_c64 b) {
  double d = hypot(a.re - b.re, a.im - b.im), s = hypot(b.re, b.im);
  return d / (s > 0 ? s : 1);
}

static void test_fft_convention(ptyc_backend *be) {
  int m = 16;
  ptyc_c32 x[256] = {{0, 0}};
  x[1 * m + 0] = pt_c32(1, 0); /* delta at y = 1 */
  ptyc_buf b = upload(be, x, sizeof x);
  ptyc_fft *plan;
  REQUIRE_OK(ptyc_fft_plan(be, m, 1, &plan));
  REQUIRE_OK(ptyc_fft_exec(be, plan, b, 0));
  REQUIRE_OK(ptyc_buf_download(be, x, b, 0, sizeof x));
  double err = 0;
  for (int u = 0; u < m; u++)
    for (int v = 0; v < m; v++) { /* forward sign -1: exp(-2 pi i u y / M) */
      err = fmax(err, fabs(x[u * m + v].re - cos(2 * PI * u / m)));
      err = fmax(err, fabs(x[u * m + v].im + sin(2 * PI * u / m)));
    }
  EXPECT_LE(err, 1e-5);
  REQUIRE_OK(ptyc_fft_exec(be, plan, b, 1)); /* inverse is unnormalised: M^2 * delta */
  REQUIRE_OK(ptyc_buf_download(be, x, b, 0, sizeof x));
  EXPECT_NEAR(x[1 * m].re, m * m, 1e-3);
  EXPECT_NEAR(x[0].re, 0.0, 1e-3);
  ptyc_fft_free(be, plan);
  ptyc_buf_free(be, &b);
}

/* A Gaussian probe shifted by f through shift_spectrum + inverse FFT equals the
 * Gaussian centred at c + f: the sign convention P_f(r) = P(r - f). */
static void test_subpixel_shift(ptyc_backend *be) {
  int m = 32, k = 1, n = 1;
  ptyc_c32 probe[32 * 32], out[32 * 32];
  double c = 15.0, sigma = 3.0, fy = 0.3, fx = 0.7;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++)
      probe[y * m + x] = pt_c32((float)exp(-((y - c) * (y - c) + (x - c) * (x - c)) / (2 * sigma * sigma)), 0);
  double pos[2] = {10 + fy, 20 + fx};
  int32_t order[1] = {0};
  ptyc_scan scan = {.m = m, .n_modes = k, .obj_h = 80, .obj_w = 80,
                    .positions = upload(be, pos, sizeof pos), .order = upload(be, order, sizeof order),
                    .n_positions = 1};
  ptyc_buf spec = upload(be, probe, sizeof probe), shifted;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof out, &shifted));
  ptyc_fft *plan;
  REQUIRE_OK(ptyc_fft_plan(be, m, 1, &plan));
  REQUIRE_OK(ptyc_fft_exec(be, plan, spec, 0));
  REQUIRE_OK(ptyc_op_shift_spectrum(be, &scan, 0, n, spec, 1.f / (m * m), shifted));
  REQUIRE_OK(ptyc_fft_exec(be, plan, shifted, 1));
  REQUIRE_OK(ptyc_buf_download(be, out, shifted, 0, sizeof out));
  double err = 0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double want = exp(-((y - c - fy) * (y - c - fy) + (x - c - fx) * (x - c - fx)) / (2 * sigma * sigma));
      err = fmax(err, hypot(out[y * m + x].re - want, out[y * m + x].im));
    }
  EXPECT_LE(err, 1e-4);
  ptyc_fft_free(be, plan);
  ptyc_buf_free(be, &spec);
  ptyc_buf_free(be, &shifted);
  ptyc_buf_free(be, &scan.positions);
  ptyc_buf_free(be, &scan.order);
}

/* The interpolated shift (interp_shift) of a smooth Gaussian probe by (0.3, 0.7) equals
 * the Gaussian centred at c + f, as the Fourier shift does; an integer position leaves
 * the probe exactly as it is. The least-squares filter of src/backend/interp_math.h is
 * accurate to about 6e-5 of the peak on content this smooth (its design predicts
 * 3.8e-5 at the worst fraction, float rounding adds the rest); the filter does not
 * reach past the window, so a
 * constant part is kept only 6 pixels from the edges. */
static void test_interp_shift(ptyc_backend *be) {
  int m = 32;
  ptyc_c32 probe[32 * 32], out[2 * 32 * 32];
  double c = 15.0, sigma = 3.0, fy = 0.3, fx = 0.7;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++)
      probe[y * m + x] = pt_c32((float)exp(-((y - c) * (y - c) + (x - c) * (x - c)) / (2 * sigma * sigma)), 0.5f);
  double pos[4] = {10 + fy, 20 + fx, 7, 9};
  int32_t order[2] = {0, 1};
  ptyc_scan scan = {.m = m, .n_modes = 1, .obj_h = 80, .obj_w = 80,
                    .positions = upload(be, pos, sizeof pos), .order = upload(be, order, sizeof order),
                    .n_positions = 2};
  ptyc_buf bprobe = upload(be, probe, sizeof probe), shifted;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof out, &shifted));
  REQUIRE_OK(ptyc_op_interp_shift(be, &scan, 0, 2, bprobe, (ptyc_buf){0}, shifted, (ptyc_buf){0}));
  REQUIRE_OK(ptyc_buf_download(be, out, shifted, 0, sizeof out));
  double err = 0, exact = 0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double want = exp(-((y - c - fy) * (y - c - fy) + (x - c - fx) * (x - c - fx)) / (2 * sigma * sigma));
      ptyc_c32 got = out[y * m + x], same = out[m * m + y * m + x];
      /* the constant imaginary part 0.5 is cut where the filter reaches past the window */
      int inside = y >= 6 && y < m - 6 && x >= 6 && x < m - 6;
      err = fmax(err, fabs(got.re - want));
      if (inside) err = fmax(err, fabs(got.im - 0.5));
      exact = fmax(exact, hypot(same.re - probe[y * m + x].re, same.im - probe[y * m + x].im));
    }
  printf("interp_shift: max error %.2e of a unit peak; integer position %.1e\n", err, exact);
  EXPECT_LE(err, 1e-4);
  EXPECT(exact == 0.0);
  ptyc_buf_free(be, &bprobe);
  ptyc_buf_free(be, &shifted);
  ptyc_buf_free(be, &scan.positions);
  ptyc_buf_free(be, &scan.order);
}

/* interp_unshift_accumulate is the adjoint of interp_shift, as a map of the probe modes
 * (K -> n K) and, with the object, of the exit waves it makes alongside. */
static void test_interp_adjoint(ptyc_backend *be) {
  int m = 13, k = 2, n = 4, h = 40, w = 47;
  size_t modes = (size_t)m * m * k, batch = modes * n, obj = (size_t)h * w;
  fixture f = make_scan(be, m, k, n, h, w);
  ptyc_c32 *x = malloc(sizeof(ptyc_c32) * modes), *y = malloc(sizeof(ptyc_c32) * batch);
  ptyc_c32 *ax = malloc(sizeof(ptyc_c32) * batch), *ahy = malloc(sizeof(ptyc_c32) * modes);
  ptyc_c32 *object = malloc(sizeof(ptyc_c32) * obj);
  fill_random(x, modes, 1);
  fill_random(y, batch, 1);
  fill_random(object, obj, 1);
  ptyc_buf bx = upload(be, x, sizeof(ptyc_c32) * modes), by = upload(be, y, sizeof(ptyc_c32) * batch);
  ptyc_buf bobj = upload(be, object, sizeof(ptyc_c32) * obj), bprobes, bpsi, bacc;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * batch, &bprobes));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * batch, &bpsi));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * modes, &bacc));
  REQUIRE_OK(ptyc_op_interp_shift(be, &f.scan, 0, n, bx, bobj, bprobes, bpsi));
  for (int with_object = 0; with_object <= 1; with_object++) {
    REQUIRE_OK(ptyc_buf_zero(be, bacc, 0, bacc.nbytes));
    REQUIRE_OK(ptyc_op_interp_unshift_accumulate(be, &f.scan, 0, n,
                                                 with_object ? bobj : (ptyc_buf){0}, by, bacc,
                                                 (ptyc_buf){0}));
    REQUIRE_OK(ptyc_buf_download(be, ax, with_object ? bpsi : bprobes, 0, sizeof(ptyc_c32) * batch));
    REQUIRE_OK(ptyc_buf_download(be, ahy, bacc, 0, sizeof(ptyc_c32) * modes));
    EXPECT_LE(rel_diff(dot(ax, y, batch), dot(x, ahy, modes)), 1e-5);
  }
  ptyc_buf *bufs[] = {&bx, &by, &bobj, &bprobes, &bpsi, &bacc, &f.scan.positions, &f.scan.order};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  free(x), free(y), free(ax), free(ahy), free(object), free(f.pos), free(f.order);
}

static void test_adjoints(ptyc_backend *be) {
  int m = 12, k = 3, n = 5, h = 40, w = 47;
  size_t img = (size_t)m * m, modes = img * k, batch = modes * n, obj = (size_t)h * w;
  fixture f = make_scan(be, m, k, n, h, w);
  ptyc_c32 *x = malloc(sizeof(ptyc_c32) * batch), *y = malloc(sizeof(ptyc_c32) * batch);
  ptyc_c32 *ax = malloc(sizeof(ptyc_c32) * batch), *ahy = malloc(sizeof(ptyc_c32) * (batch + obj));
  ptyc_c32 *object = malloc(sizeof(ptyc_c32) * obj), *probes = malloc(sizeof(ptyc_c32) * batch);
  fill_random(object, obj, 1);
  fill_random(probes, batch, 1);
  ptyc_buf bobj = upload(be, object, sizeof(ptyc_c32) * obj);
  ptyc_buf bprobes = upload(be, probes, sizeof(ptyc_c32) * batch);
  ptyc_buf bx, by, bout, bacc;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * batch, &bout));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * (batch > obj ? batch : obj), &bacc));

  /* shift_spectrum (K -> n K) and unshift_accumulate (n K -> K). */
  fill_random(x, modes, 1);
  fill_random(y, batch, 1);
  bx = upload(be, x, sizeof(ptyc_c32) * modes);
  by = upload(be, y, sizeof(ptyc_c32) * batch);
  REQUIRE_OK(ptyc_op_shift_spectrum(be, &f.scan, 0, n, bx, 0.7f, bout));
  REQUIRE_OK(ptyc_buf_zero(be, bacc, 0, bacc.nbytes));
  REQUIRE_OK(ptyc_op_unshift_accumulate(be, &f.scan, 0, n, by, 0.7f, bacc));
  REQUIRE_OK(ptyc_buf_download(be, ax, bout, 0, sizeof(ptyc_c32) * batch));
  REQUIRE_OK(ptyc_buf_download(be, ahy, bacc, 0, sizeof(ptyc_c32) * modes));
  EXPECT_LE(rel_diff(dot(ax, y, batch), dot(x, ahy, modes)), 1e-5);
  ptyc_buf_free(be, &bx);

  /* exit_waves as a map of the probes: adjoint is g = conj(O_b) chi (probe_gradient). */
  bx = upload(be, probes, sizeof(ptyc_c32) * batch);
  REQUIRE_OK(ptyc_op_exit_waves(be, &f.scan, 0, n, bobj, bx, bout));
  REQUIRE_OK(ptyc_op_probe_gradient(be, &f.scan, 0, n, bobj, by, bacc, (ptyc_buf){0}));
  REQUIRE_OK(ptyc_buf_download(be, ax, bout, 0, sizeof(ptyc_c32) * batch));
  REQUIRE_OK(ptyc_buf_download(be, ahy, bacc, 0, sizeof(ptyc_c32) * batch));
  EXPECT_LE(rel_diff(dot(ax, y, batch), dot(probes, ahy, batch)), 1e-5);

  /* exit_waves as a map of the object: adjoint is the scatter of conj(P) chi. */
  REQUIRE_OK(ptyc_buf_zero(be, bacc, 0, bacc.nbytes));
  REQUIRE_OK(ptyc_op_object_gradient(be, &f.scan, 0, n, bprobes, by, (ptyc_buf){0}, bacc,
                                     (ptyc_buf){0}));
  REQUIRE_OK(ptyc_buf_download(be, ahy, bacc, 0, sizeof(ptyc_c32) * obj));
  ptyc_c64 lhs = {0, 0}; /* <sum_k P_k O_b, chi> summed over modes equals <O, A^H chi> */
  lhs = dot(ax, y, batch);
  EXPECT_LE(rel_diff(lhs, dot(object, ahy, obj)), 1e-5);

  /* The FFT: <F x, y> = <x, F^H y> with F^H the unnormalised inverse. */
  ptyc_fft *plan;
  REQUIRE_OK(ptyc_fft_plan(be, m, k * n, &plan));
  REQUIRE_OK(ptyc_buf_copy(be, bout, 0, bprobes, 0, sizeof(ptyc_c32) * batch));
  REQUIRE_OK(ptyc_fft_exec(be, plan, bout, 0));
  REQUIRE_OK(ptyc_buf_copy(be, bacc, 0, by, 0, sizeof(ptyc_c32) * batch));
  REQUIRE_OK(ptyc_fft_exec(be, plan, bacc, 1));
  REQUIRE_OK(ptyc_buf_download(be, ax, bout, 0, sizeof(ptyc_c32) * batch));
  REQUIRE_OK(ptyc_buf_download(be, ahy, bacc, 0, sizeof(ptyc_c32) * batch));
  EXPECT_LE(rel_diff(dot(ax, y, batch), dot(probes, ahy, batch)), 1e-5);
  ptyc_fft_free(be, plan);

  ptyc_buf *bufs[] = {&bx, &by, &bout, &bacc, &bobj, &bprobes, &f.scan.positions, &f.scan.order};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  free(x), free(y), free(ax), free(ahy), free(object), free(probes), free(f.pos), free(f.order);
}

/* After the Gaussian projection, Psi + M^2 * residual has the measured modulus. */
static void test_fourier_projection(ptyc_backend *be, ptyc_noise_model model) {
  int m = 8, k = 2, n = 3;
  size_t img = (size_t)m * m, batch = img * k * n;
  fixture f = make_scan(be, m, k, n, 20, 20);
  ptyc_c32 *waves = malloc(sizeof(ptyc_c32) * batch), *res = malloc(sizeof(ptyc_c32) * batch);
  float *d = malloc(sizeof(float) * img * n), mask[64];
  fill_random(waves, batch, 3);
  for (size_t i = 0; i < img * n; i++, draw++) d[i] = (float)(20 * pt_rng_uniform(3, 3, draw));
  for (size_t i = 0; i < img; i++) mask[i] = i % 7 == 3 ? 0.f : 1.f;
  ptyc_buf bw = upload(be, waves, sizeof(ptyc_c32) * batch), bd = upload(be, d, sizeof(float) * img * n);
  ptyc_buf bm = upload(be, mask, sizeof mask), bc;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(double) * n, &bc));
  REQUIRE_OK(ptyc_op_fourier_residual(be, &f.scan, 0, n, model, bd, bm, bw, bc));
  REQUIRE_OK(ptyc_buf_download(be, res, bw, 0, sizeof(ptyc_c32) * batch));
  double cost[3], err = 0, want_cost = 0;
  REQUIRE_OK(ptyc_buf_download(be, cost, bc, 0, sizeof cost));
  for (int b = 0; b < n; b++) {
    const float *db = d + (size_t)f.order[b] * img;
    for (size_t i = 0; i < img; i++) {
      double i_old = 0, i_new = 0;
      for (int q = 0; q < k; q++) {
        size_t t = ((size_t)b * k + q) * img + i;
        ptyc_c32 now = pt_cadd(waves[t], pt_cscale(res[t], (float)img));
        i_old += pt_cabs2(waves[t]);
        i_new += pt_cabs2(now);
        if (mask[i] == 0.f) err = fmax(err, hypot(res[t].re, res[t].im));
      }
      if (mask[i] == 0.f) continue;
      if (model == PTYC_NOISE_GAUSSIAN) {
        err = fmax(err, fabs(sqrt(i_new) - sqrt(db[i])) / (1 + sqrt(db[i])));
        want_cost += (sqrt(i_old) - sqrt(db[i])) * (sqrt(i_old) - sqrt(db[i]));
      } else {
        want_cost += db[i] > 0 ? i_old - db[i] + db[i] * log(db[i] / i_old) : i_old;
      }
    }
  }
  EXPECT_LE(err, 1e-5);
  EXPECT_NEAR(cost[0] + cost[1] + cost[2], want_cost, 1e-4 * want_cost);
  if (model == PTYC_NOISE_POISSON) { /* the Poisson step lowers the likelihood */
    double before = 0, after = 0;
    for (int b = 0; b < n; b++)
      for (size_t i = 0; i < img; i++) {
        if (mask[i] == 0.f) continue;
        double i_old = 0, i_new = 0, dv = d[(size_t)f.order[b] * img + i];
        for (int q = 0; q < k; q++) {
          size_t t = ((size_t)b * k + q) * img + i;
          i_old += pt_cabs2(waves[t]);
          i_new += pt_cabs2(pt_cadd(waves[t], pt_cscale(res[t], (float)img)));
        }
        before += i_old - dv * log(i_old + 1e-9);
        after += i_new - dv * log(i_new + 1e-9);
      }
    EXPECT(after < before);
  }
  ptyc_buf *bufs[] = {&bw, &bd, &bm, &bc, &f.scan.positions, &f.scan.order};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  free(waves), free(res), free(d), free(f.pos), free(f.order);
}

/* chi built exactly as aO dO P + aP O dP: the steps come back (no regularisation). */
static void test_lsqml_steps(ptyc_backend *be) {
  int m = 10, k = 2, n = 4, h = 30, w = 30;
  size_t img = (size_t)m * m, modes = img * k, batch = modes * n, obj = (size_t)h * w;
  fixture f = make_scan(be, m, k, n, h, w);
  ptyc_c32 *o = malloc(sizeof(ptyc_c32) * obj), *d_o = malloc(sizeof(ptyc_c32) * obj);
  ptyc_c32 *p = malloc(sizeof(ptyc_c32) * batch), *dp = malloc(sizeof(ptyc_c32) * modes);
  ptyc_c32 *chi = malloc(sizeof(ptyc_c32) * batch);
  fill_random(o, obj, 1), fill_random(d_o, obj, 1), fill_random(p, batch, 1), fill_random(dp, modes, 1);
  float want[2][4] = {{0.3f, 0.5f, 0.8f, 0.1f}, {0.6f, 0.2f, 0.9f, 0.4f}};
  for (int b = 0; b < n; b++) {
    int j = f.order[b], y0 = (int)floor(f.pos[2 * j]), x0 = (int)floor(f.pos[2 * j + 1]);
    for (int q = 0; q < k; q++)
      for (int y = 0; y < m; y++)
        for (int x = 0; x < m; x++) {
          size_t t = ((size_t)b * k + q) * img + y * m + x, oi = (size_t)(y0 + y) * w + x0 + x;
          chi[t] = pt_cadd(pt_cscale(pt_cmul(d_o[oi], p[t]), want[0][b]),
                           pt_cscale(pt_cmul(o[oi], dp[q * img + y * m + x]), want[1][b]));
        }
  }
  ptyc_buf bo = upload(be, o, sizeof(ptyc_c32) * obj), bdo = upload(be, d_o, sizeof(ptyc_c32) * obj);
  ptyc_buf bp = upload(be, p, sizeof(ptyc_c32) * batch), bdp = upload(be, dp, sizeof(ptyc_c32) * modes);
  ptyc_buf bchi = upload(be, chi, sizeof(ptyc_c32) * batch), ba;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof(float) * 2 * n, &ba));
  REQUIRE_OK(ptyc_op_lsqml_steps(be, &f.scan, 0, n, bo, bdo, bp, bdp, bchi, 0.0, 10.0, 1, 1, ba));
  float alpha[8];
  REQUIRE_OK(ptyc_buf_download(be, alpha, ba, 0, sizeof alpha));
  for (int b = 0; b < n; b++) {
    EXPECT_NEAR(alpha[b], want[0][b], 1e-4);
    EXPECT_NEAR(alpha[n + b], want[1][b], 1e-4);
  }
  ptyc_buf *bufs[] = {&bo, &bdo, &bp, &bdp, &bchi, &ba, &f.scan.positions, &f.scan.order};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  free(o), free(d_o), free(p), free(dp), free(chi), free(f.pos), free(f.order);
}

static void test_orthogonalize(ptyc_backend *be) {
  int m = 9, k = 4;
  size_t img = (size_t)m * m;
  ptyc_c32 modes[4 * 81], out[4 * 81];
  fill_random(modes, img * k, 1);
  for (size_t i = 0; i < img; i++) modes[img + i] = pt_cadd(modes[img + i], modes[i]); /* correlated */
  double total = 0;
  for (size_t i = 0; i < img * k; i++) total += pt_cabs2(modes[i]);
  ptyc_buf b = upload(be, modes, sizeof modes);
  REQUIRE_OK(ptyc_op_orthogonalize_modes(be, b, k, m));
  REQUIRE_OK(ptyc_buf_download(be, out, b, 0, sizeof out));
  double after = 0, prev = 1e300;
  for (int i = 0; i < k; i++) {
    ptyc_c64 self = dot(out + i * img, out + i * img, img);
    EXPECT(self.re <= prev * (1 + 1e-6)); /* strongest first */
    prev = self.re;
    after += self.re;
    for (int j = i + 1; j < k; j++) {
      ptyc_c64 c = dot(out + i * img, out + j * img, img);
      EXPECT_LE(hypot(c.re, c.im), 1e-5 * total);
    }
  }
  EXPECT_NEAR(after, total, 1e-5 * total);
  ptyc_buf_free(be, &b);
}

static void test_precondition(ptyc_backend *be) {
  ptyc_c32 num[6], target[6];
  float den[3] = {1.f, 4.f, 2.f};
  fill_random(num, 6, 1);
  fill_random(target, 6, 1);
  ptyc_buf bn = upload(be, num, sizeof num), bd = upload(be, den, sizeof den);
  ptyc_buf bt = upload(be, target, sizeof target);
  REQUIRE_OK(ptyc_op_precondition(be, bn, 6, bd, 3, 0.1, 0.5f, bt));
  ptyc_c32 out[6];
  REQUIRE_OK(ptyc_buf_download(be, out, bt, 0, sizeof out));
  for (int i = 0; i < 6; i++) {
    double wgt = 1.0 / (den[i % 3] + 0.4);
    EXPECT_NEAR(out[i].re, 0.5 * target[i].re + wgt * num[i].re, 1e-6);
    EXPECT_NEAR(out[i].im, 0.5 * target[i].im + wgt * num[i].im, 1e-6);
  }
  ptyc_buf_free(be, &bn), ptyc_buf_free(be, &bd), ptyc_buf_free(be, &bt);
}

int main(void) {
  ptyc_backend *be;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be));
  test_fft_convention(be);
  test_subpixel_shift(be);
  test_adjoints(be);
  test_interp_shift(be);
  test_interp_adjoint(be);
  test_fourier_projection(be, PTYC_NOISE_GAUSSIAN);
  test_fourier_projection(be, PTYC_NOISE_POISSON);
  test_lsqml_steps(be);
  test_orthogonalize(be);
  test_precondition(be);
  EXPECT(ptyc_backend_bytes_in_use(be) == 0); /* every buffer freed */
  ptyc_backend_free(be);
  return TEST_RESULT();
}
