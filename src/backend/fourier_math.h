/* Per-pixel math of the Fourier-space projection, shared by the CPU and CUDA backends
 * (PT_HD) so both compute the same function. */
#ifndef PT_FOURIER_MATH_H
#define PT_FOURIER_MATH_H

#include <math.h>

#include "ptyc/types.h"

/* Guards divisions by the model intensity I (photons per pixel); far below one photon. */
#define PT_FOURIER_EPS 1e-9f
/* Newton steps of the per-position Poisson step search, and its start. */
#define PT_POISSON_NEWTON_STEPS 3
#define PT_POISSON_STEP_START 0.5

/* Gaussian (amplitude) model: the factor (Psi' - Psi) / Psi = sqrt(d / I) - 1. */
PT_HD static inline float pt_gaussian_factor(float intensity, float data) {
  float amplitude = sqrtf(data > 0.f ? data : 0.f);
  return amplitude / sqrtf(intensity + PT_FOURIER_EPS) - 1.f;
}
PT_HD static inline double pt_gaussian_cost(float intensity, float data) {
  double diff = sqrt((double)intensity) - sqrt(data > 0.f ? (double)data : 0.0);
  return diff * diff;
}

/* Poisson model: r = d / I - 1 is the ascent direction (Psi' = Psi (1 + x r)). */
PT_HD static inline float pt_poisson_ratio(float intensity, float data) {
  return (data > 0.f ? data : 0.f) / (intensity + PT_FOURIER_EPS) - 1.f;
}
/* Accumulates the first and second derivative in x of L(x) = sum I (1+xr)^2 - d log(I (1+xr)^2)
 * for one pixel. */
PT_HD static inline void pt_poisson_newton_terms(float intensity, float data, double x,
                                                 double *grad, double *hess) {
  double r = pt_poisson_ratio(intensity, data);
  double d = data > 0.f ? data : 0.0;
  double g = 1.0 + x * r;
  if (g < 1e-6) g = 1e-6;
  *grad += 2.0 * intensity * r * g - 2.0 * d * r / g;
  *hess += 2.0 * intensity * r * r + 2.0 * d * r * r / (g * g);
}
/* One Newton update of x, kept inside [0, 1]. */
PT_HD static inline double pt_poisson_newton_update(double x, double grad, double hess) {
  if (hess > 0.0) x -= grad / hess;
  return x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);
}
/* Poisson deviance of one pixel: I - d + d log(d / I), >= 0. */
PT_HD static inline double pt_poisson_cost(float intensity, float data) {
  double i = (double)intensity + PT_FOURIER_EPS;
  double d = data > 0.f ? data : 0.0;
  return d > 0.0 ? i - d + d * log(d / i) : i;
}

/* Phase of the sub-pixel shift ramp: exp(sign * 2 pi i (fu fy + fv fx) / M). */
PT_HD static inline ptyc_c32 pt_shift_phasor(int u, int v, int m, double fy, double fx,
                                             double sign) {
  double phase = sign * 2.0 * 3.14159265358979323846 *
                 ((double)pt_freq_index(u, m) * fy + (double)pt_freq_index(v, m) * fx) / m;
  return pt_c32((float)cos(phase), (float)sin(phase));
}

#endif
