/* Eigen-decomposition of a small Hermitian matrix (the K x K Gram matrix of probe
 * modes), shared by host and device code (PT_HD, no allocation, K <= PT_MAX_MODES).
 *
 * Method: the K x K Hermitian A = X + iY is embedded in the real symmetric 2K x 2K
 * matrix [[X, -Y], [Y, X]], whose eigenvalues are those of A, each twice, with
 * eigenvectors (x; y) <-> x + iy. Cyclic real Jacobi sweeps diagonalise it; the complex
 * eigenvectors are then taken in descending order of eigenvalue, each orthogonalised
 * (complex Gram-Schmidt) against those already taken, skipping the duplicate i*v of
 * every pair. */
#ifndef PT_MODES_MATH_H
#define PT_MODES_MATH_H

#include <math.h>

#include "ptyc/types.h"

#define PT_MAX_MODES 16
#define PT_JACOBI_SWEEPS 30

/* The 2K x 2K real embedding s of the K x K Hermitian a (row-major), and v = I. */
PT_HD static inline void pt_hermitian_embed(int k, const ptyc_c64 *a, double *s, double *v) {
  int n = 2 * k;
  for (int r = 0; r < k; r++)
    for (int c = 0; c < k; c++) {
      double x = a[r * k + c].re, y = a[r * k + c].im;
      s[r * n + c] = x;
      s[(r + k) * n + (c + k)] = x;
      s[r * n + (c + k)] = -y;
      s[(r + k) * n + c] = y;
    }
  for (int i = 0; i < n * n; i++) v[i] = 0.0;
  for (int i = 0; i < n; i++) v[i * n + i] = 1.0;
}

/* Whether a sweep is still needed, from the squared off-diagonal part and the squared
 * whole of s. */
PT_HD static inline int pt_jacobi_unconverged(double off, double scale) {
  return !(off <= 1e-30 * scale || off == 0.0);
}

/* The rotation (c, sn) that zeroes s[p][q] (p < q), or 0 if it is already zero. */
PT_HD static inline int pt_jacobi_rotation(int n, const double *s, int p, int q, double *c,
                                           double *sn) {
  double apq = s[p * n + q];
  if (fabs(apq) < 1e-300) return 0;
  double tau = (s[q * n + q] - s[p * n + p]) / (2.0 * apq);
  double t = (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1.0 + tau * tau));
  *c = 1.0 / sqrt(1.0 + t * t);
  *sn = t * *c;
  return 1;
}

/* Entry r of the rotation: columns p, q of s (phase 1), then rows p, q of s (phase 2,
 * after every entry's phase 1), and columns p, q of v (with phase 1). */
PT_HD static inline void pt_jacobi_columns(int n, double *s, double *v, int p, int q, double c,
                                           double sn, int r) {
  double sp = s[r * n + p], sq = s[r * n + q];
  s[r * n + p] = c * sp - sn * sq;
  s[r * n + q] = sn * sp + c * sq;
  double vp = v[r * n + p], vq = v[r * n + q];
  v[r * n + p] = c * vp - sn * vq;
  v[r * n + q] = sn * vp + c * vq;
}
PT_HD static inline void pt_jacobi_rows(int n, double *s, int p, int q, double c, double sn,
                                        int r) {
  double sp = s[p * n + r], sq = s[q * n + r];
  s[p * n + r] = c * sp - sn * sq;
  s[q * n + r] = sn * sp + c * sq;
}

/* From the diagonalised s and its eigenvectors v (columns): evals and evecs as
 * pt_hermitian_eigen returns them. diag: 2K doubles of scratch. */
PT_HD static inline void pt_hermitian_extract(int k, const double *s, const double *v,
                                              double *diag, double *evals, ptyc_c64 *evecs) {
  int n = 2 * k;
  /* rows past the vectors taken (only if a degenerate s yields fewer than K) stay 0 */
  for (int i = 0; i < k * k; i++) evecs[i].re = evecs[i].im = 0.0;
  for (int i = 0; i < n; i++) diag[i] = s[i * n + i];

  int taken = 0;
  for (int pass = 0; pass < n && taken < k; pass++) {
    int best = -1; /* largest eigenvalue not yet used */
    for (int i = 0; i < n; i++)
      if (diag[i] > -1e300 && (best < 0 || diag[i] > diag[best])) best = i;
    if (best < 0) break;
    double lambda = diag[best];
    diag[best] = -1e301;
    ptyc_c64 *e = evecs + taken * k;
    for (int r = 0; r < k; r++) {
      e[r].re = v[r * n + best];
      e[r].im = v[(r + k) * n + best];
    }
    for (int t = 0; t < taken; t++) { /* e -= <evecs[t], e> evecs[t] */
      const ptyc_c64 *f = evecs + t * k;
      double pr = 0.0, pi = 0.0;
      for (int r = 0; r < k; r++) {
        pr += f[r].re * e[r].re + f[r].im * e[r].im;
        pi += f[r].re * e[r].im - f[r].im * e[r].re;
      }
      for (int r = 0; r < k; r++) {
        e[r].re -= pr * f[r].re - pi * f[r].im;
        e[r].im -= pr * f[r].im + pi * f[r].re;
      }
    }
    double norm = 0.0;
    for (int r = 0; r < k; r++) norm += e[r].re * e[r].re + e[r].im * e[r].im;
    if (norm < 0.25) continue; /* the duplicate of an eigenvector already taken */
    /* An eigenvector is defined up to a phase, which the real embedding picks by
     * rounding: fix it so the largest component is real and positive, so every
     * backend returns the same modes. */
    int big = 0;
    for (int r = 1; r < k; r++)
      if (e[r].re * e[r].re + e[r].im * e[r].im > e[big].re * e[big].re + e[big].im * e[big].im)
        big = r;
    double mag = sqrt(e[big].re * e[big].re + e[big].im * e[big].im);
    double ur = e[big].re / mag, ui = -e[big].im / mag; /* conj(phase) */
    norm = 1.0 / sqrt(norm);
    for (int r = 0; r < k; r++) {
      double re = e[r].re * ur - e[r].im * ui, im = e[r].re * ui + e[r].im * ur;
      e[r].re = re * norm;
      e[r].im = im * norm;
    }
    evals[taken++] = lambda;
  }
}


/* a: K x K Hermitian, row-major. Out: evals[K] descending, evecs[K][K] with evecs[i]
 * the i-th eigenvector (unit norm): sum_j a[r][j] evecs[i][j] = evals[i] evecs[i][r].
 * work: (2K)^2 * 2 + 2K doubles of scratch. (The CUDA backend runs the same steps with
 * a warp's lanes taking the entries r of each rotation.) */
PT_HD static inline void pt_hermitian_eigen(int k, const ptyc_c64 *a, double *evals,
                                            ptyc_c64 *evecs, double *work) {
  int n = 2 * k;
  double *s = work;         /* n x n symmetric, becomes diagonal */
  double *v = work + n * n; /* n x n eigenvectors in columns */
  double *diag = v + n * n; /* n */
  pt_hermitian_embed(k, a, s, v);
  for (int sweep = 0; sweep < PT_JACOBI_SWEEPS; sweep++) {
    double off = 0.0, scale = 0.0;
    for (int p = 0; p < n; p++)
      for (int q = 0; q < n; q++) {
        if (p != q) off += s[p * n + q] * s[p * n + q];
        scale += s[p * n + q] * s[p * n + q];
      }
    if (!pt_jacobi_unconverged(off, scale)) break;
    for (int p = 0; p < n - 1; p++)
      for (int q = p + 1; q < n; q++) {
        double c, sn;
        if (!pt_jacobi_rotation(n, s, p, q, &c, &sn)) continue;
        for (int r = 0; r < n; r++) pt_jacobi_columns(n, s, v, p, q, c, sn, r);
        for (int r = 0; r < n; r++) pt_jacobi_rows(n, s, p, q, c, sn, r);
      }
  }
  pt_hermitian_extract(k, s, v, diag, evals, evecs);
}

#endif
