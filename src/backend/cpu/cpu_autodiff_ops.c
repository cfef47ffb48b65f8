/* CPU reference ops of the autodiff engine: costs and their gradients, the exit-wave
 * and sub-pixel-shift VJPs, the optimizer updates and the object regularisers. Plain
 * loops over the conventions of include/ptyc/types.h, OpenMP over batch entries or
 * rows, double accumulation in every reduction; the per-element math is
 * src/backend/autodiff_math.h, shared with the CUDA kernels. */
#include <math.h>
#include <stdlib.h>

#include "backend/autodiff_math.h"
#include "backend/cpu/cpu_autodiff_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/fourier_math.h"
#include "pt_try.h"

#define THREADS(ctx) (((const pt_cpu_ctx *)(ctx))->threads)
#define PT_PI 3.14159265358979323846

/* Where batch entry b sits: integer corner and sub-pixel fraction (as cpu_ops.c). */
typedef struct patch_pos {
  int j;
  int y0, x0;
  double fy, fx;
} patch_pos;

static patch_pos batch_position(const ptyc_scan *scan, int first, int b) {
  const int32_t *order = scan->order.ptr;
  const double *pos = scan->positions.ptr;
  patch_pos p;
  p.j = order[first + b];
  double py = pos[2 * p.j], px = pos[2 * p.j + 1];
  p.y0 = (int)floor(py);
  p.x0 = (int)floor(px);
  p.fy = py - p.y0;
  p.fx = px - p.x0;
  return p;
}

/* The largest den[i] (0 if none is positive; NaN ignored), as the precondition op. */
static float max_of(const float *den, size_t count) {
  float mx = 0.f;
  for (size_t i = 0; i < count; i++)
    if (den[i] > mx) mx = den[i];
  return mx;
}

ptyc_status pt_cpu_loss_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                 ptyc_loss loss, const float *patterns, const float *mask,
                                 ptyc_c32 *waves, double *cost) {
  int m = scan->m, k_modes = scan->n_modes;
  size_t image = (size_t)m * m;
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    const float *d = patterns + (size_t)batch_position(scan, first, b).j * image;
    ptyc_c32 *wb = waves + (size_t)b * k_modes * image;
    double c = 0.0;
    for (size_t i = 0; i < image; i++) {
      float intensity = 0.f;
      for (int k = 0; k < k_modes; k++) intensity += pt_cabs2(wb[k * image + i]);
      float factor = 0.f;
      if (mask == NULL || mask[i] > 0.f) {
        c += pt_loss_value(loss, intensity, d[i]);
        factor = pt_loss_derivative(loss, intensity, d[i]);
      }
      for (int k = 0; k < k_modes; k++) wb[k * image + i] = pt_cscale(wb[k * image + i], factor);
    }
    cost[b] = c;
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_exit_waves_vjp(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_c32 *object, const ptyc_c32 *probes,
                                  const ptyc_c32 *grad_psi, ptyc_c32 *grad_object,
                                  float *illumination, ptyc_c32 *grad_probes,
                                  float *object_intensity) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w;
  size_t image = (size_t)m * m;
  /* 1. Object terms, before grad_probes may overwrite the probes. Patches of one batch
   *    overlap: entries go one after the other and the rows of each patch are shared
   *    among threads, so no two threads add into the same pixel. */
  if (grad_object != NULL || illumination != NULL) {
#pragma omp parallel num_threads(THREADS(ctx))
    for (int b = 0; b < n; b++) {
      patch_pos p = batch_position(scan, first, b);
#pragma omp for schedule(static)
      for (int y = 0; y < m; y++) {
        size_t row = (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) {
          double re = 0.0, im = 0.0, illum = 0.0;
          for (int k = 0; k < k_modes; k++) {
            size_t i = ((size_t)b * k_modes + k) * image + (size_t)y * m + x;
            ptyc_c32 z = pt_cmulc(probes[i], grad_psi[i]);
            re += z.re;
            im += z.im;
            illum += pt_cabs2(probes[i]);
          }
          if (grad_object) {
            grad_object[row + x].re += (float)re;
            grad_object[row + x].im += (float)im;
          }
          if (illumination) illumination[row + x] += (float)illum;
        }
      }
    }
  }
  /* 2. Probe terms: each element reads its own probe value (if any) before writing. */
  if (grad_probes != NULL) {
#pragma omp parallel for collapse(2) schedule(static) num_threads(THREADS(ctx))
    for (int b = 0; b < n; b++)
      for (int k = 0; k < k_modes; k++) {
        patch_pos p = batch_position(scan, first, b);
        size_t base = ((size_t)b * k_modes + k) * image;
        for (int y = 0; y < m; y++) {
          const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
          for (int x = 0; x < m; x++)
            grad_probes[base + y * m + x] = pt_cmulc(orow[x], grad_psi[base + y * m + x]);
        }
      }
  }
  if (object_intensity != NULL) {
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        double s = 0.0;
        for (int b = 0; b < n; b++) {
          patch_pos p = batch_position(scan, first, b);
          s += pt_cabs2(object[(size_t)(p.y0 + y) * w + p.x0 + x]);
        }
        object_intensity[y * m + x] += (float)s;
      }
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_shift_position_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                           const ptyc_c32 *spectrum, float scale,
                                           const ptyc_c32 *grad_spectra, double *out) {
  int m = scan->m, k_modes = scan->n_modes;
  size_t image = (size_t)m * m;
  ptyc_c32 *ramps = pt_cpu_scratch(ctx, sizeof(ptyc_c32) * 2 * m * (size_t)(n > 0 ? n : 1));
  if (ramps == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in shift_position_gradient");
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    ptyc_c32 *ey = ramps + 2 * (size_t)m * b, *ex = ey + m;
    for (int i = 0; i < m; i++) { /* the ramps exactly as shift_spectrum makes them */
      ey[i] = pt_shift_phasor(i, 0, m, p.fy, 0.0, -1.0);
      ex[i] = pt_shift_phasor(0, i, m, 0.0, p.fx, -1.0);
    }
    double gy = 0.0, gx = 0.0, hy = 0.0, hx = 0.0;
    for (int k = 0; k < k_modes; k++) {
      const ptyc_c32 *src = spectrum + k * image;
      const ptyc_c32 *g = grad_spectra + ((size_t)b * k_modes + k) * image;
      for (int u = 0; u < m; u++) {
        double fu = pt_freq_index(u, m);
        ptyc_c32 row = pt_cscale(ey[u], scale);
        double sy = 0.0, sh = 0.0; /* this row's sums: fu is common to them */
        for (int v = 0; v < m; v++) {
          double fv = pt_freq_index(v, m);
          ptyc_c32 s = pt_cmul(src[u * m + v], pt_cmul(row, ex[v]));
          ptyc_c32 z = pt_cmulc(g[u * m + v], s); /* conj(grad S) S */
          double s2 = pt_cabs2(s);
          sy += z.im;
          sh += s2;
          gx += fv * z.im;
          hx += fv * fv * s2;
        }
        gy += fu * sy;
        hy += fu * fu * sh;
      }
    }
    double w = 2.0 * PT_PI / m;
    out[4 * (size_t)b + 0] = 2.0 * w * gy;
    out[4 * (size_t)b + 1] = 2.0 * w * gx;
    out[4 * (size_t)b + 2] = w * w * hy;
    out[4 * (size_t)b + 3] = w * w * hx;
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_optimizer_step(void *ctx, const ptyc_optim_params *p, ptyc_c32 *param,
                                  const ptyc_c32 *grad, size_t count, const float *den,
                                  size_t den_count, void *state) {
  pt_optim_coeffs c = pt_optim_coeffs_of(p);
  ptyc_c32 *mean = state;
  float *mean_square = (float *)(mean + count);
  float mix = (float)p->den_mix, gscale = (float)p->grad_scale;
  float mixed_max = den ? mix * max_of(den, den_count) : 0.f;
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (size_t i = 0; i < count; i++) {
    float s = gscale;
    if (den) {
      float d = (1.f - mix) * den[i % den_count] + mixed_max;
      s = d > 0.f ? gscale / d : 0.f;
    }
    ptyc_c32 change = pt_optim_update_c32(&c, pt_cscale(grad[i], s), &mean[i], &mean_square[i]);
    param[i] = pt_cadd(param[i], change);
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_position_step(void *ctx, const ptyc_scan *scan, int first, int n,
                                 const ptyc_optim_params *p, const double *grad,
                                 const float *den, size_t den_count, double *state) {
  pt_optim_coeffs c = pt_optim_coeffs_of(p);
  double scale = den ? (double)max_of(den, den_count) : 1.0;
  double *pos = scan->positions.ptr;
  double limit[2] = {scan->obj_h - scan->m, scan->obj_w - scan->m};
  for (int b = 0; b < n; b++) { /* entries are distinct positions: any order */
    int j = batch_position(scan, first, b).j;
    for (int a = 0; a < 2; a++) {
      double curvature = grad[4 * (size_t)b + 2 + a] * scale;
      double g = curvature > 0.0 ? p->grad_scale * grad[4 * (size_t)b + a] / curvature : 0.0;
      double change = pt_optim_update_real(&c, g, &state[4 * (size_t)j + a],
                                           &state[4 * (size_t)j + 2 + a]);
      pos[2 * (size_t)j + a] = pt_move_position(pos[2 * (size_t)j + a], change, limit[a]);
    }
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_object_regularize(void *ctx, const ptyc_c32 *object, int h, int w,
                                     double l1_weight, double tv_weight, ptyc_c32 *grad,
                                     double *cost) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(THREADS(ctx))
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      size_t i = (size_t)y * w + x;
      double gre = 0.0, gim = 0.0;
      if (l1_weight > 0.0) {
        double s = pt_smooth_abs(object[i].re, object[i].im);
        total += l1_weight * s;
        gre += l1_weight * object[i].re / (2.0 * s);
        gim += l1_weight * object[i].im / (2.0 * s);
      }
      if (tv_weight > 0.0) {
        ptyc_c64 g;
        total += tv_weight * pt_tv_pixel(object, h, w, y, x, &g);
        gre += tv_weight * g.re;
        gim += tv_weight * g.im;
      }
      grad[i].re += (float)gre;
      grad[i].im += (float)gim;
    }
  *cost += total;
  return PTYC_OK;
}
