/* Per-element math of the autodiff ops, shared by the CPU and CUDA backends (PT_HD), so
 * that every backend computes the same function: the costs and their derivatives, the
 * optimizer updates and the smoothed L1 / total-variation terms.
 *
 * Gradients follow the Wirtinger convention of include/ptyc/backend.h: the gradient of
 * a real cost C with respect to a complex z is g = dC/d(conj z) = (dC/d Re z +
 * i dC/d Im z) / 2, so that dC = 2 Re(conj(g) dz) and -g is the steepest descent. */
#ifndef PT_AUTODIFF_MATH_H
#define PT_AUTODIFF_MATH_H

#include <math.h>

#include "ptyc/backend.h"
#include "ptyc/options.h"
#include "ptyc/types.h"

/* Guards divisions by the model intensity I (photons per pixel); far below one photon. */
#define PT_LOSS_EPS 1e-9f
/* Smoothing of |z| in the L1 and total-variation terms: sqrt(|z|^2 + eps^2). */
#define PT_REG_EPS 1e-4
/* Largest move of a scan position in one update, per axis (pixels): a safeguard
 * against a wild step where the data say little about a position. */
#define PT_POSITION_MAX_MOVE_PX 1.0

/* ---- costs ---------------------------------------------------------------------------
 * The cost of one detector pixel, l(I, d), with I = sum_k |Psi_k|^2 the model and d the
 * measured intensity (negative counts read as 0). Since dI/d(conj Psi_k) = Psi_k, the
 * gradient of l with respect to conj(Psi_k) is l'(I) Psi_k. */

PT_HD static inline double pt_loss_value(ptyc_loss loss, float intensity, float data) {
  double i = (double)intensity, d = data > 0.f ? (double)data : 0.0;
  switch (loss) {
  case PTYC_LOSS_INTENSITY:
    return (i - d) * (i - d);
  case PTYC_LOSS_POISSON: { /* the deviance: the likelihood minus its best value, >= 0 */
    double ie = i + PT_LOSS_EPS;
    return d > 0.0 ? ie - d + d * log(d / ie) : ie;
  }
  default: { /* amplitude */
    double diff = sqrt(i) - sqrt(d);
    return diff * diff;
  }
  }
}

/* dl/dI. */
PT_HD static inline float pt_loss_derivative(ptyc_loss loss, float intensity, float data) {
  float d = data > 0.f ? data : 0.f;
  switch (loss) {
  case PTYC_LOSS_INTENSITY:
    return 2.f * (intensity - d);
  case PTYC_LOSS_POISSON:
    return 1.f - d / (intensity + PT_LOSS_EPS);
  default: /* amplitude: d/dI (sqrt I - sqrt d)^2 = 1 - sqrt(d / I) */
    return 1.f - sqrtf(d) / sqrtf(intensity + PT_LOSS_EPS);
  }
}

/* ---- optimizers ---------------------------------------------------------------------
 * One update of one value from its (already normalised) gradient g, with the rule's
 * state m (running mean or momentum) and v (running mean square). Complex values share
 * one v = mean |g|^2, so an update does not depend on the global phase; for Adam and
 * RMSprop `step` is then about the largest change of a value per update. */

/* The scalars of one update, computed once on the host. */
typedef struct pt_optim_coeffs {
  int kind;          /* ptyc_optimizer: SGD, ADAM or RMSPROP */
  float step;
  float momentum;    /* SGD; 0 = none */
  int nesterov;      /* SGD */
  int first;         /* SGD: first update (the momentum buffer starts at g) */
  float decay1;      /* Adam: beta1 */
  float decay2;      /* Adam: beta2; RMSprop: alpha */
  float keep1, keep2; /* 1 - decay1, 1 - decay2, rounded from double (1 - 0.999f is off
                         by 1e-5 in float) */
  float bias1, bias2; /* Adam: 1 / (1 - beta^t) */
  float epsilon;
} pt_optim_coeffs;

/* The coefficients of one update (host code: pow in double, once per op). */
static inline pt_optim_coeffs pt_optim_coeffs_of(const ptyc_optim_params *p) {
  pt_optim_coeffs c;
  c.kind = (int)p->kind;
  c.step = (float)p->step;
  c.momentum = (float)p->momentum;
  c.nesterov = p->nesterov;
  c.first = p->t <= 1;
  c.decay1 = (float)p->beta1;
  double decay2 = p->kind == PTYC_OPTIMIZER_RMSPROP ? p->alpha : p->beta2;
  c.decay2 = (float)decay2;
  c.keep1 = (float)(1.0 - p->beta1);
  c.keep2 = (float)(1.0 - decay2);
  c.bias1 = (float)(1.0 / (1.0 - pow(p->beta1, p->t)));
  c.bias2 = (float)(1.0 / (1.0 - pow(p->beta2, p->t)));
  c.epsilon = (float)p->epsilon;
  return c;
}

/* Returns the change of the value (add it); updates *m, *v. */
PT_HD static inline ptyc_c32 pt_optim_update_c32(const pt_optim_coeffs *c, ptyc_c32 g,
                                                 ptyc_c32 *m, float *v) {
  if (c->kind == PTYC_OPTIMIZER_ADAM) {
    *m = pt_cadd(pt_cscale(*m, c->decay1), pt_cscale(g, c->keep1));
    *v = c->decay2 * *v + c->keep2 * pt_cabs2(g);
    float denom = sqrtf(*v * c->bias2) + c->epsilon;
    return pt_cscale(*m, -c->step * c->bias1 / denom);
  }
  if (c->kind == PTYC_OPTIMIZER_RMSPROP) {
    *v = c->decay2 * *v + c->keep2 * pt_cabs2(g);
    return pt_cscale(g, -c->step / (sqrtf(*v) + c->epsilon));
  }
  if (c->momentum > 0.f) { /* SGD with momentum (PyTorch's form, no dampening) */
    *m = c->first ? g : pt_cadd(pt_cscale(*m, c->momentum), g);
    ptyc_c32 d = c->nesterov ? pt_cadd(g, pt_cscale(*m, c->momentum)) : *m;
    return pt_cscale(d, -c->step);
  }
  return pt_cscale(g, -c->step);
}

/* The same rules for one real value, in double (scan positions). */
PT_HD static inline double pt_optim_update_real(const pt_optim_coeffs *c, double g, double *m,
                                                double *v) {
  if (c->kind == PTYC_OPTIMIZER_ADAM) {
    *m = c->decay1 * *m + c->keep1 * g;
    *v = c->decay2 * *v + c->keep2 * g * g;
    return -c->step * *m * c->bias1 / (sqrt(*v * c->bias2) + c->epsilon);
  }
  if (c->kind == PTYC_OPTIMIZER_RMSPROP) {
    *v = c->decay2 * *v + c->keep2 * g * g;
    return -c->step * g / (sqrt(*v) + c->epsilon);
  }
  if (c->momentum > 0.f) {
    *m = c->first ? g : c->momentum * *m + g;
    return -c->step * (c->nesterov ? g + c->momentum * *m : *m);
  }
  return -c->step * g;
}

/* A position moved by `change`, at most PT_POSITION_MAX_MOVE_PX, kept inside [0, limit]
 * (limit = object size - M: the patch stays inside the object). */
PT_HD static inline double pt_move_position(double x, double change, double limit) {
  if (change > PT_POSITION_MAX_MOVE_PX) change = PT_POSITION_MAX_MOVE_PX;
  if (change < -PT_POSITION_MAX_MOVE_PX) change = -PT_POSITION_MAX_MOVE_PX;
  x += change;
  return x < 0.0 ? 0.0 : (x > limit ? limit : x);
}

/* ---- regularisers ---------------------------------------------------------------------
 * Smoothed magnitude s(z) = sqrt(|z|^2 + eps^2); ds/d(conj z) = z / (2 s). */

PT_HD static inline double pt_smooth_abs(double re, double im) {
  return sqrt(re * re + im * im + PT_REG_EPS * PT_REG_EPS);
}

/* The forward differences of the object at (y, x): a = O[y+1][x] - O[y][x] and
 * b = O[y][x+1] - O[y][x], zero across the last row / column (Neumann boundary). */
PT_HD static inline void pt_tv_differences(const ptyc_c32 *object, int h, int w, int y, int x,
                                           ptyc_c64 *a, ptyc_c64 *b) {
  ptyc_c32 o = object[(size_t)y * w + x];
  a->re = a->im = b->re = b->im = 0.0;
  if (y + 1 < h) {
    ptyc_c32 d = object[(size_t)(y + 1) * w + x];
    a->re = (double)d.re - o.re;
    a->im = (double)d.im - o.im;
  }
  if (x + 1 < w) {
    ptyc_c32 r = object[(size_t)y * w + x + 1];
    b->re = (double)r.re - o.re;
    b->im = (double)r.im - o.im;
  }
}

/* Total variation at (y, x), t = sqrt(|a|^2 + |b|^2 + eps^2), and the gradient of the
 * whole TV sum with respect to conj(O[y][x]). Pixel (y, x) enters t at (y, x) through
 * -O in both a and b, t at (y-1, x) through +O in a, and t at (y, x-1) through +O in b:
 *   g = (-(a + b) / t)(y, x) / 2 + (a / t)(y-1, x) / 2 + (b / t)(y, x-1) / 2. */
PT_HD static inline double pt_tv_pixel(const ptyc_c32 *object, int h, int w, int y, int x,
                                       ptyc_c64 *grad) {
  ptyc_c64 a, b;
  pt_tv_differences(object, h, w, y, x, &a, &b);
  double t = sqrt(a.re * a.re + a.im * a.im + b.re * b.re + b.im * b.im + PT_REG_EPS * PT_REG_EPS);
  grad->re = -(a.re + b.re) / (2.0 * t);
  grad->im = -(a.im + b.im) / (2.0 * t);
  if (y > 0) {
    ptyc_c64 au, bu;
    pt_tv_differences(object, h, w, y - 1, x, &au, &bu);
    double tu = sqrt(au.re * au.re + au.im * au.im + bu.re * bu.re + bu.im * bu.im +
                     PT_REG_EPS * PT_REG_EPS);
    grad->re += au.re / (2.0 * tu);
    grad->im += au.im / (2.0 * tu);
  }
  if (x > 0) {
    ptyc_c64 al, bl;
    pt_tv_differences(object, h, w, y, x - 1, &al, &bl);
    double tl = sqrt(al.re * al.re + al.im * al.im + bl.re * bl.re + bl.im * bl.im +
                     PT_REG_EPS * PT_REG_EPS);
    grad->re += bl.re / (2.0 * tl);
    grad->im += bl.im / (2.0 * tl);
  }
  return t;
}

#endif
