/* The per-position LSQML step-size solve (Odstrcil et al. 2018, eq. 25-27), shared by
 * host and device code so every backend returns the same steps. */
#ifndef PT_LSQML_MATH_H
#define PT_LSQML_MATH_H

#include "ptyc/types.h"

/* The five sums of one position: A11 = sum|a|^2, A22 = sum|c|^2, A12 = sum Re(conj a c),
 * r1 = sum Re(conj a chi), r2 = sum Re(conj c chi), a = dO P, c = O dP. */
typedef struct pt_lsqml_sums {
  double a11, a22, a12, r1, r2;
} pt_lsqml_sums;

PT_HD static inline float pt_clamp_step(double x, double max_step) {
  if (!(x > 0.0)) return 0.f; /* also maps NaN to 0 */
  return (float)(x < max_step ? x : max_step);
}

/* Solves the regularised 2x2 (or 1x1) system for the object and probe steps. */
PT_HD static inline void pt_lsqml_solve(pt_lsqml_sums s, double regularization,
                                        double max_step, int object_on, int probe_on,
                                        float *alpha_object, float *alpha_probe) {
  double lam = regularization * 0.5 * (s.a11 + s.a22);
  double a11 = s.a11 + lam, a22 = s.a22 + lam;
  double x_o = 0.0, x_p = 0.0;
  if (object_on && probe_on) {
    double det = a11 * a22 - s.a12 * s.a12;
    if (det > 1e-12 * a11 * a22 && det > 0.0) {
      x_o = (a22 * s.r1 - s.a12 * s.r2) / det;
      x_p = (a11 * s.r2 - s.a12 * s.r1) / det;
    } else { /* (nearly) dependent directions: solve each alone */
      x_o = a11 > 0.0 ? s.r1 / a11 : 0.0;
      x_p = a22 > 0.0 ? s.r2 / a22 : 0.0;
    }
  } else if (object_on) {
    x_o = a11 > 0.0 ? s.r1 / a11 : 0.0;
  } else if (probe_on) {
    x_p = a22 > 0.0 ? s.r2 / a22 : 0.0;
  }
  *alpha_object = pt_clamp_step(x_o, max_step);
  *alpha_probe = pt_clamp_step(x_p, max_step);
}

#endif
