/* Sub-pixel shifts by interpolation, shared by the CPU and CUDA backends (PT_HD) so both
 * compute the same function.
 *
 * A probe is band-limited: its spectrum is the illuminating pupil, which fills only part
 * of the detector (a quarter of its width in the presets). Such an image is moved by a
 * fraction f of a pixel almost exactly by a short separable filter, which costs a few
 * multiply-adds per pixel where the exact Fourier shift costs two FFTs per position and
 * mode. The filter moves content by +f, as multiplying the spectrum by
 * exp(-2 pi i u f / M) does:
 *   out(y) = sum_{i=0..T-1} w_i(f) in(y - t_i),  t_i = i - BEFORE,  f in [0, 1),
 * with in = 0 outside [0, M) (no wrap-around), along rows and then columns.
 *
 * The weights are the least-squares fit of the filter's response to the ideal one over
 * the band |k| <= B cycles per pixel:
 *   minimise int_{-B}^{B} |sum_i w_i exp(-2 pi i k t_i) - exp(-2 pi i k f)|^2 dk,
 * whose normal equations are G w = b with G_ij = 2B sinc(2B (t_i - t_j)) and
 * b_i = 2B sinc(2B (t_i - f)). With T = 12 taps and B = 0.3 (60 % of Nyquist) the
 * response is within 1.2e-4 of the exact shift for |k| <= 0.25 and never exceeds 1 in
 * modulus above the band (nothing is amplified); a windowed sinc (Lanczos) of 8 taps
 * errs by 1e-2 at |k| = 0.25. f = 0 gives the identity exactly. */
#ifndef PT_INTERP_MATH_H
#define PT_INTERP_MATH_H

#include <math.h>

#include "ptyc/types.h"

#define PT_INTERP_TAPS 12
/* Tap i reads the input BEFORE - i pixels after the output pixel: the forward filter
 * reaches 5 pixels forward and 6 back (the adjoint the opposite). */
#define PT_INTERP_BEFORE 5
#define PT_INTERP_BAND 0.3
/* The band, in cycles per pixel on each axis, within which the filter errs by at most
 * 1.2e-4: where a probe's spectrum must lie for the filter to move it (model.c checks
 * this for probe.shift = "auto"). */
#define PT_INTERP_ACCURATE_BAND 0.25

/* sinc(x) = sin(pi x) / (pi x) and its derivative. */
PT_HD static inline double pt_sinc(double x) {
  if (fabs(x) < 1e-12) return 1.0;
  double px = 3.14159265358979323846 * x;
  return sin(px) / px;
}
PT_HD static inline double pt_sinc_derivative(double x) {
  if (fabs(x) < 1e-12) return 0.0;
  double px = 3.14159265358979323846 * x;
  return (cos(px) - sin(px) / px) / x;
}

/* The inverse of G (row-major T x T), by Cholesky in double: computed once per op call
 * (T^3 / 3 operations), then every entry's weights cost T^2 (pt_interp_weights). */
typedef struct pt_interp_design {
  double g_inverse[PT_INTERP_TAPS * PT_INTERP_TAPS];
} pt_interp_design;

PT_HD static inline void pt_interp_design_make(pt_interp_design *d) {
  enum { T = PT_INTERP_TAPS };
  const double band2 = 2.0 * PT_INTERP_BAND;
  double l[T][T];
  for (int i = 0; i < T; i++)
    for (int j = 0; j <= i; j++) l[i][j] = band2 * pt_sinc(band2 * (double)(i - j));
  for (int j = 0; j < T; j++) { /* G = L L^T, in place in the lower triangle */
    double dd = l[j][j];
    for (int p = 0; p < j; p++) dd -= l[j][p] * l[j][p];
    l[j][j] = sqrt(dd);
    for (int i = j + 1; i < T; i++) {
      double s = l[i][j];
      for (int p = 0; p < j; p++) s -= l[i][p] * l[j][p];
      l[i][j] = s / l[j][j];
    }
  }
  for (int c = 0; c < T; c++) { /* column c of G^-1: L L^T x = e_c */
    double x[T];
    for (int i = 0; i < T; i++) {
      double s = i == c ? 1.0 : 0.0;
      for (int p = 0; p < i; p++) s -= l[i][p] * x[p];
      x[i] = s / l[i][i];
    }
    for (int i = T - 1; i >= 0; i--) {
      double s = x[i];
      for (int p = i + 1; p < T; p++) s -= l[p][i] * x[p];
      x[i] = s / l[i][i];
    }
    for (int i = 0; i < T; i++) d->g_inverse[i * T + c] = x[i];
  }
}

/* Tap i's entry of b(f), the right-hand side of the normal equations, and of db/df. */
PT_HD static inline double pt_interp_rhs(double f, int i) {
  const double band2 = 2.0 * PT_INTERP_BAND;
  return band2 * pt_sinc(band2 * ((double)(i - PT_INTERP_BEFORE) - f));
}
PT_HD static inline double pt_interp_rhs_derivative(double f, int i) {
  const double band2 = 2.0 * PT_INTERP_BAND;
  return -band2 * band2 * pt_sinc_derivative(band2 * ((double)(i - PT_INTERP_BEFORE) - f));
}

/* Row i of G^-1 times b: tap i's weight from the right-hand side (or its derivative from
 * db/df). Apart so that the CUDA backend can give each tap a thread. */
PT_HD static inline double pt_interp_row(const pt_interp_design *d, const double *b, int i) {
  double s = 0.0;
  for (int j = 0; j < PT_INTERP_TAPS; j++) s += d->g_inverse[i * PT_INTERP_TAPS + j] * b[j];
  return s;
}
/* At f = 0 the solution is a unit tap; make it exactly one. */
PT_HD static inline double pt_interp_weight_from_row(double f, int i, double row) {
  return f == 0.0 ? (i == PT_INTERP_BEFORE ? 1.0 : 0.0) : row;
}

/* w[i] = the weight of tap i for the fraction f, and dw[i] = dw_i/df (NULL: not wanted):
 * w = G^-1 b(f), in double (the tests' reference models use these directly). */
PT_HD static inline void pt_interp_weights64(const pt_interp_design *d, double f,
                                             double w[PT_INTERP_TAPS], double dw[PT_INTERP_TAPS]) {
  enum { T = PT_INTERP_TAPS };
  double b[T], db[T];
  for (int i = 0; i < T; i++) {
    b[i] = pt_interp_rhs(f, i);
    if (dw) db[i] = pt_interp_rhs_derivative(f, i);
  }
  for (int i = 0; i < T; i++) {
    w[i] = pt_interp_weight_from_row(f, i, pt_interp_row(d, b, i));
    if (dw) dw[i] = pt_interp_row(d, db, i);
  }
}

/* The same rounded to float, as the backends apply them. */
PT_HD static inline void pt_interp_weights(const pt_interp_design *d, double f,
                                           float w[PT_INTERP_TAPS], float dw[PT_INTERP_TAPS]) {
  double w64[PT_INTERP_TAPS], dw64[PT_INTERP_TAPS];
  pt_interp_weights64(d, f, w64, dw ? dw64 : NULL);
  for (int i = 0; i < PT_INTERP_TAPS; i++) {
    w[i] = (float)w64[i];
    if (dw) dw[i] = (float)dw64[i];
  }
}

#endif
