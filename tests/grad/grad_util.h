/* Helpers of the gradient tests: double-precision host references (complex arithmetic,
 * the unnormalised 2-D DFT, the sub-pixel ramp), random inputs, central finite
 * differences with the Wirtinger convention, the backends to test and one printed line
 * per check.
 *
 * How the checks work. For a real cost C(x) of complex x, the Wirtinger gradient is
 * g = dC/d(conj x) = (dC/d Re x + i dC/d Im x) / 2. fd_gradient() estimates it with
 * central differences of a DOUBLE-precision host implementation of the cost (step
 * h = 1e-6 (1 + |x|): truncation ~h^2, rounding ~1e-16 / h, both far below 1e-8
 * relative). Each primitive's VJP is then checked twice:
 *  - tight: a double-precision host implementation of the hand-derived VJP against the
 *    finite differences (TOL_DOUBLE): this checks the derivation;
 *  - float: the backend op (float32 values, double sums) against the same finite
 *    differences (TOL_FLOAT): this checks the op implements the derivation.
 * A check passes when ||got - fd|| / ||fd|| <= tol over all values. */
#ifndef PT_GRAD_UTIL_H
#define PT_GRAD_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp_math.h"
#include "ptyc/backend.h"
#include "rng.h"
#include "test_util.h"

/* Double references against double finite differences. */
#define TOL_DOUBLE 1e-7
/* One backend op in float32 (inputs exact in float, ~6e-8 per operation, sums in
 * double; the CUDA kernels may use approximate sqrt and division, ~2 ulp): errors of
 * ~1e-7 are measured; 1e-5 leaves a margin of ~100, while any mistake in a derivation
 * (a factor, a sign, a conjugate) is O(1). */
#define TOL_FLOAT 1e-5

#define GRAD_PI 3.14159265358979323846

static uint64_t grad_draw = 0;

static inline double grad_uniform(double lo, double hi) {
  return lo + (hi - lo) * pt_rng_uniform(20241122u, 9, grad_draw++);
}

static inline void *grad_malloc(size_t nbytes) {
  void *p = calloc(1, nbytes ? nbytes : 1);
  if (p == NULL) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", nbytes);
    exit(1);
  }
  return p;
}

/* Random complex values, re and im in [-scale, scale], exactly representable in float. */
static inline ptyc_c64 *random_c64(size_t n, double scale) {
  ptyc_c64 *x = grad_malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) {
    x[i].re = (float)grad_uniform(-scale, scale);
    x[i].im = (float)grad_uniform(-scale, scale);
  }
  return x;
}

static inline ptyc_c32 *to_c32(const ptyc_c64 *x, size_t n) {
  ptyc_c32 *y = grad_malloc(n * sizeof *y);
  for (size_t i = 0; i < n; i++) y[i] = pt_c32((float)x[i].re, (float)x[i].im);
  return y;
}

/* ---- complex double arithmetic ------------------------------------------------------ */

static inline ptyc_c64 c64(double re, double im) {
  ptyc_c64 z = {re, im};
  return z;
}
static inline ptyc_c64 c64_add(ptyc_c64 a, ptyc_c64 b) { return c64(a.re + b.re, a.im + b.im); }
static inline ptyc_c64 c64_mul(ptyc_c64 a, ptyc_c64 b) {
  return c64(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
static inline ptyc_c64 c64_mulc(ptyc_c64 a, ptyc_c64 b) { /* conj(a) b */
  return c64(a.re * b.re + a.im * b.im, a.re * b.im - a.im * b.re);
}
static inline ptyc_c64 c64_scale(ptyc_c64 a, double s) { return c64(a.re * s, a.im * s); }
static inline double c64_abs2(ptyc_c64 a) { return a.re * a.re + a.im * a.im; }

/* 2 Re sum conj(w) y: the test cost whose gradient with respect to conj(y) is w. */
static inline double re_inner(const ptyc_c64 *w, const ptyc_c64 *y, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += w[i].re * y[i].re + w[i].im * y[i].im;
  return 2.0 * s;
}

/* Unnormalised 2-D DFT of one m x m image: sign -1 (forward) or +1 (inverse), no 1/m^2. */
static inline void dft2(const ptyc_c64 *in, ptyc_c64 *out, int m, int inverse) {
  double sign = inverse ? 1.0 : -1.0;
  ptyc_c64 *tmp = grad_malloc(sizeof(ptyc_c64) * m * m);
  for (int y = 0; y < m; y++) /* along x */
    for (int v = 0; v < m; v++) {
      ptyc_c64 s = c64(0, 0);
      for (int x = 0; x < m; x++) {
        double ph = sign * 2.0 * GRAD_PI * (double)v * x / m;
        s = c64_add(s, c64_mul(in[y * m + x], c64(cos(ph), sin(ph))));
      }
      tmp[y * m + v] = s;
    }
  for (int u = 0; u < m; u++) /* along y */
    for (int v = 0; v < m; v++) {
      ptyc_c64 s = c64(0, 0);
      for (int y = 0; y < m; y++) {
        double ph = sign * 2.0 * GRAD_PI * (double)u * y / m;
        s = c64_add(s, c64_mul(tmp[y * m + v], c64(cos(ph), sin(ph))));
      }
      out[u * m + v] = s;
    }
  free(tmp);
}

/* exp(-2 pi i (fu fy + fv fx) / m), the sub-pixel ramp of types.h. */
static inline ptyc_c64 ramp64(int u, int v, int m, double fy, double fx) {
  double ph = -2.0 * GRAD_PI * (pt_freq_index(u, m) * fy + pt_freq_index(v, m) * fx) / m;
  return c64(cos(ph), sin(ph));
}

/* The shift by interpolation (src/backend/interp_math.h) in double: out = `in` (M x M,
 * zero outside) through the separable filter of y weights wy and x weights wx,
 * out(y, x) = sum_i,j wy_i wx_j in(y - t_i, x - t_j), t_i = i - PT_INTERP_BEFORE. */
static inline void interp64(const ptyc_c64 *in, ptyc_c64 *out, int m, const double *wy,
                            const double *wx) {
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      ptyc_c64 s = c64(0, 0);
      for (int i = 0; i < PT_INTERP_TAPS; i++) {
        int yy = y - (i - PT_INTERP_BEFORE);
        if (yy < 0 || yy >= m) continue;
        for (int j = 0; j < PT_INTERP_TAPS; j++) {
          int xx = x - (j - PT_INTERP_BEFORE);
          if (xx >= 0 && xx < m) s = c64_add(s, c64_scale(in[yy * m + xx], wy[i] * wx[j]));
        }
      }
      out[y * m + x] = s;
    }
}

/* The filter's weights for fractions (fy, fx) in double (interp_math.h). */
static inline void interp_weights64(double fy, double fx, double *wy, double *wx) {
  pt_interp_design design;
  pt_interp_design_make(&design);
  pt_interp_weights64(&design, fy, wy, NULL);
  pt_interp_weights64(&design, fx, wx, NULL);
}

/* ---- finite differences ---------------------------------------------------------------- */

typedef double (*grad_cost_fn)(void *ctx, const ptyc_c64 *x);

/* g[i] = (dC/d Re x_i + i dC/d Im x_i) / 2 by central differences; x is restored. */
static inline void fd_gradient(grad_cost_fn cost, void *ctx, ptyc_c64 *x, size_t n, ptyc_c64 *g) {
  for (size_t i = 0; i < n; i++) {
    double *parts[2] = {&x[i].re, &x[i].im}, d[2];
    for (int p = 0; p < 2; p++) {
      double keep = *parts[p], h = 1e-6 * (1.0 + fabs(keep));
      *parts[p] = keep + h;
      double up = cost(ctx, x);
      *parts[p] = keep - h;
      double down = cost(ctx, x);
      *parts[p] = keep;
      d[p] = (up - down) / (2.0 * h);
    }
    g[i] = c64(0.5 * d[0], 0.5 * d[1]);
  }
}

/* ||a - b|| / ||b|| over n complex values (a in double or float). */
static inline double rel_err64(const ptyc_c64 *a, const ptyc_c64 *b, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; i++) {
    diff += c64_abs2(c64(a[i].re - b[i].re, a[i].im - b[i].im));
    norm += c64_abs2(b[i]);
  }
  return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}
static inline double rel_err32(const ptyc_c32 *a, const ptyc_c64 *b, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i].re) || !isfinite(a[i].im)) return INFINITY;
    diff += c64_abs2(c64(a[i].re - b[i].re, a[i].im - b[i].im));
    norm += c64_abs2(b[i]);
  }
  return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}
static inline double rel_err_real(const double *a, const double *b, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

/* One line per check. */
static inline void grad_check(const char *backend, const char *what, double err, double tol) {
  printf("  %-6s %-58s rel err %.2e (tol %.0e)%s\n", backend, what, err, tol,
         err <= tol ? "" : "  FAILED");
  EXPECT_LE(err, tol);
}

/* ---- backends ---------------------------------------------------------------------------- */

/* The CPU backend, and the CUDA backend when a GPU is usable (else NULL). */
static inline int grad_backends(ptyc_backend *be[2], const char *names[2]) {
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &be[0]));
  names[0] = "cpu";
  char why[256];
  if (!ptyc_cuda_usable(why, sizeof why)) {
    printf("CUDA part skipped: %s\n", why);
    return 1;
  }
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CUDA, 0, 0, &be[1]));
  names[1] = "cuda";
  return 2;
}

static inline ptyc_buf buf_from(ptyc_backend *be, const void *host, size_t nbytes) {
  ptyc_buf b;
  REQUIRE_OK(ptyc_buf_alloc(be, nbytes, &b));
  if (host) REQUIRE_OK(ptyc_buf_upload(be, b, 0, host, nbytes));
  else REQUIRE_OK(ptyc_buf_zero(be, b, 0, nbytes));
  return b;
}

static inline ptyc_buf buf_c64(ptyc_backend *be, const ptyc_c64 *x, size_t n) {
  ptyc_c32 *y = to_c32(x, n);
  ptyc_buf b = buf_from(be, y, n * sizeof(ptyc_c32));
  free(y);
  return b;
}

#endif
