/* CPU reference ops: plain loops over the conventions of include/ptyc/types.h, OpenMP
 * over batch entries or rows, double accumulation in every reduction. Every other
 * backend is tested against these. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/fourier_math.h"
#include "backend/interp_math.h"
#include "backend/lsqml_math.h"
#include "backend/modes_math.h"
#include "pt_try.h"

#define THREADS(ctx) (((const pt_cpu_ctx *)(ctx))->threads)

/* Where batch entry b sits: integer corner and sub-pixel fraction. */
typedef struct patch_pos {
  int y0, x0;
  double fy, fx;
} patch_pos;

static patch_pos batch_position(const ptyc_scan *scan, int first, int b) {
  const int32_t *order = scan->order.ptr;
  const double *pos = scan->positions.ptr;
  int j = order[first + b];
  patch_pos p;
  double py = pos[2 * j], px = pos[2 * j + 1];
  p.y0 = (int)floor(py);
  p.x0 = (int)floor(px);
  p.fy = py - p.y0;
  p.fx = px - p.x0;
  return p;
}

static int batch_index(const ptyc_scan *scan, int first, int b) {
  return ((const int32_t *)scan->order.ptr)[first + b];
}

ptyc_status pt_cpu_scale(void *ctx, ptyc_c32 *x, size_t count, float s) {
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (size_t i = 0; i < count; i++) x[i] = pt_cscale(x[i], s);
  return PTYC_OK;
}

ptyc_status pt_cpu_norm2(void *ctx, const ptyc_c32 *x, size_t count, double *out, int accumulate) {
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(THREADS(ctx))
  for (size_t i = 0; i < count; i++) total += (double)x[i].re * x[i].re + (double)x[i].im * x[i].im;
  *out = accumulate ? *out + total : total;
  return PTYC_OK;
}

ptyc_status pt_cpu_sum(void *ctx, const double *x, size_t count, double *out, int accumulate) {
  double total = 0.0;
  for (size_t i = 0; i < count; i++) total += x[i];
  *out = accumulate ? *out + total : total;
  return PTYC_OK;
}

ptyc_status pt_cpu_axpy_mean(void *ctx, const float *weights, int n_weights, const ptyc_c32 *x,
                             size_t count, ptyc_c32 *y) {
  double mean = 0.0;
  for (int i = 0; i < n_weights; i++) mean += weights[i];
  float a = (float)(mean / n_weights);
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (size_t i = 0; i < count; i++) y[i] = pt_cadd(y[i], pt_cscale(x[i], a));
  return PTYC_OK;
}

ptyc_status pt_cpu_precondition(void *ctx, const ptyc_c32 *num, size_t count, const float *den,
                                size_t den_count, double damping, float beta, ptyc_c32 *target) {
  float max_den = 0.f;
  for (size_t i = 0; i < den_count; i++)
    if (den[i] > max_den) max_den = den[i];
  float delta = (float)(damping * max_den);
  if (delta <= 0.f) delta = 1e-30f; /* an all-zero denominator: leave target unchanged */
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (size_t i = 0; i < count; i++) {
    float w = 1.f / (den[i % den_count] + delta);
    target[i] = pt_cadd(pt_cscale(target[i], beta), pt_cscale(num[i], w));
  }
  return PTYC_OK;
}

/* The separable sub-pixel ramp of one position: ramp(u, v) = ey[u] * ex[v]. */
static void shift_ramps(int m, double fy, double fx, double sign, ptyc_c32 *ey, ptyc_c32 *ex) {
  for (int i = 0; i < m; i++) {
    ey[i] = pt_shift_phasor(i, 0, m, fy, 0.0, sign);
    ex[i] = pt_shift_phasor(0, i, m, 0.0, fx, sign);
  }
}

ptyc_status pt_cpu_shift_spectrum(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_c32 *spectrum, float scale, ptyc_c32 *out) {
  int m = scan->m, k_modes = scan->n_modes;
  size_t image = (size_t)m * m;
  ptyc_c32 *ramps = pt_cpu_scratch(ctx, sizeof(ptyc_c32) * 2 * m * (size_t)(n > 0 ? n : 1));
  if (ramps == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in shift_spectrum");
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    ptyc_c32 *ey = ramps + 2 * (size_t)m * b, *ex = ey + m;
    shift_ramps(m, p.fy, p.fx, -1.0, ey, ex);
    for (int k = 0; k < k_modes; k++) {
      const ptyc_c32 *src = spectrum + k * image;
      ptyc_c32 *dst = out + ((size_t)b * k_modes + k) * image;
      for (int u = 0; u < m; u++) {
        ptyc_c32 row = pt_cscale(ey[u], scale);
        for (int v = 0; v < m; v++)
          dst[u * m + v] = pt_cmul(src[u * m + v], pt_cmul(row, ex[v]));
      }
    }
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                      const ptyc_c32 *spectra, float scale, ptyc_c32 *acc) {
  int m = scan->m, k_modes = scan->n_modes;
  size_t image = (size_t)m * m;
  ptyc_c32 *ramps = pt_cpu_scratch(ctx, sizeof(ptyc_c32) * 2 * m * (size_t)(n > 0 ? n : 1));
  if (ramps == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in unshift_accumulate");
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    shift_ramps(m, p.fy, p.fx, +1.0, ramps + 2 * (size_t)m * b, ramps + 2 * (size_t)m * b + m);
  }
  /* Rows of the output are independent: no two threads write the same element. */
#pragma omp parallel for collapse(2) schedule(static) num_threads(THREADS(ctx))
  for (int k = 0; k < k_modes; k++)
    for (int u = 0; u < m; u++)
      for (int v = 0; v < m; v++) {
        double re = 0.0, im = 0.0;
        for (int b = 0; b < n; b++) {
          const ptyc_c32 *ey = ramps + 2 * (size_t)m * b, *ex = ey + m;
          ptyc_c32 z = pt_cmul(spectra[((size_t)b * k_modes + k) * image + u * m + v],
                               pt_cmul(ey[u], ex[v]));
          re += z.re;
          im += z.im;
        }
        ptyc_c32 *a = acc + k * image + u * m + v;
        a->re += (float)(scale * re);
        a->im += (float)(scale * im);
      }
  return PTYC_OK;
}

ptyc_status pt_cpu_exit_waves(void *ctx, const ptyc_scan *scan, int first, int n,
                              const ptyc_c32 *object, const ptyc_c32 *probes, ptyc_c32 *psi) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w;
  size_t image = (size_t)m * m;
#pragma omp parallel for collapse(2) schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++)
    for (int k = 0; k < k_modes; k++) {
      patch_pos p = batch_position(scan, first, b);
      const ptyc_c32 *pr = probes + ((size_t)b * k_modes + k) * image;
      ptyc_c32 *out = psi + ((size_t)b * k_modes + k) * image;
      for (int y = 0; y < m; y++) {
        const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) out[y * m + x] = pt_cmul(pr[y * m + x], orow[x]);
      }
    }
  return PTYC_OK;
}

/* den[y][x] += sum_b |O_b[y][x]|^2, the probe's illumination by the object. */
static void add_object_intensity(void *ctx, const ptyc_scan *scan, int first, int n,
                                 const ptyc_c32 *object, float *den) {
  int m = scan->m, w = scan->obj_w;
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double s = 0.0;
      for (int b = 0; b < n; b++) {
        patch_pos p = batch_position(scan, first, b);
        s += pt_cabs2(object[(size_t)(p.y0 + y) * w + p.x0 + x]);
      }
      den[y * m + x] += (float)s;
    }
}

/* ---- sub-pixel shift by interpolation (interp_math.h) ----------------------------------- */

/* out = the separable filter (wy along y, wx along x) of `in`, both M x M, zero outside;
 * `adjoint` applies the transposed filter. `rows` (M x M) is work space. Tap i of the
 * forward filter reads in(y - i + BEFORE); of the adjoint, in(y + i - BEFORE). Each
 * tap is one shifted multiply-add over whole rows (contiguous, so the compiler
 * vectorises it); the pixels a shift moves out of the window are skipped. */
static void interp_filter(int m, const float *wy, const float *wx, int adjoint,
                          const ptyc_c32 *in, ptyc_c32 *rows, ptyc_c32 *out) {
  size_t row = (size_t)m;
  memset(rows, 0, sizeof(ptyc_c32) * row * m);
  memset(out, 0, sizeof(ptyc_c32) * row * m);
  for (int i = 0; i < PT_INTERP_TAPS; i++) {
    int s = adjoint ? i - PT_INTERP_BEFORE : PT_INTERP_BEFORE - i; /* out(x) += w in(x + s) */
    int lo = s < 0 ? -s : 0, hi = s > 0 ? m - s : m;
    float a = wx[i];
    for (int y = 0; y < m; y++) {
      float *o = (float *)(rows + y * row);
      const float *src = (const float *)(in + y * row + s);
      for (int x = 2 * lo; x < 2 * hi; x++) o[x] += a * src[x];
    }
  }
  for (int i = 0; i < PT_INTERP_TAPS; i++) {
    int s = adjoint ? i - PT_INTERP_BEFORE : PT_INTERP_BEFORE - i;
    int lo = s < 0 ? -s : 0, hi = s > 0 ? m - s : m;
    float a = wy[i];
    for (int y = lo; y < hi; y++) {
      float *o = (float *)(out + y * row);
      const float *src = (const float *)(rows + (y + s) * row);
      for (int x = 0; x < 2 * m; x++) o[x] += a * src[x];
    }
  }
}

ptyc_status pt_cpu_interp_shift(void *ctx, const ptyc_scan *scan, int first, int n,
                                const ptyc_c32 *probe, const ptyc_c32 *object, ptyc_c32 *probes,
                                ptyc_c32 *psi) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w, threads = THREADS(ctx);
  size_t image = (size_t)m * m;
  ptyc_c32 *work = pt_cpu_scratch(ctx, sizeof(ptyc_c32) * image * (size_t)threads);
  if (work == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in interp_shift");
  pt_interp_design design;
  pt_interp_design_make(&design);
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
  for (int b = 0; b < n; b++)
    for (int k = 0; k < k_modes; k++) {
      patch_pos p = batch_position(scan, first, b);
      float wy[PT_INTERP_TAPS], wx[PT_INTERP_TAPS];
      pt_interp_weights(&design, p.fy, wy, NULL);
      pt_interp_weights(&design, p.fx, wx, NULL);
      ptyc_c32 *out = probes + ((size_t)b * k_modes + k) * image;
      interp_filter(m, wy, wx, 0, probe + (size_t)k * image,
                    work + image * (size_t)omp_get_thread_num(), out);
      if (psi == NULL) continue;
      ptyc_c32 *wave = psi + ((size_t)b * k_modes + k) * image;
      for (int y = 0; y < m; y++) {
        const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) wave[y * m + x] = pt_cmul(out[y * m + x], orow[x]);
      }
    }
  return PTYC_OK;
}

/* Each thread sums its share of the batch into its own double-precision images, which
 * are then added in thread order: no races, and the same result for a thread count. */
ptyc_status pt_cpu_interp_unshift_accumulate(void *ctx, const ptyc_scan *scan, int first, int n,
                                             const ptyc_c32 *object, const ptyc_c32 *chi,
                                             ptyc_c32 *acc, float *den) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w, threads = THREADS(ctx);
  size_t image = (size_t)m * m, modes = image * k_modes;
  /* per thread: G, the row pass and the filtered image (complex), then the sums (double) */
  size_t per_thread = 3 * image * sizeof(ptyc_c32) + 2 * modes * sizeof(double);
  char *work = pt_cpu_scratch(ctx, per_thread * (size_t)threads);
  if (work == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in interp_unshift_accumulate");
  pt_interp_design design;
  pt_interp_design_make(&design);
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    ptyc_c32 *g = (ptyc_c32 *)(work + per_thread * (size_t)t);
    ptyc_c32 *rows = g + image, *filtered = rows + image;
    double *sum = (double *)(filtered + image);
    memset(sum, 0, 2 * modes * sizeof(double));
    int b_lo = (int)((long)n * t / nt), b_hi = (int)((long)n * (t + 1) / nt);
    for (int b = b_lo; b < b_hi; b++) {
      patch_pos p = batch_position(scan, first, b);
      float wy[PT_INTERP_TAPS], wx[PT_INTERP_TAPS];
      pt_interp_weights(&design, p.fy, wy, NULL);
      pt_interp_weights(&design, p.fx, wx, NULL);
      for (int k = 0; k < k_modes; k++) {
        const ptyc_c32 *c = chi + ((size_t)b * k_modes + k) * image;
        const ptyc_c32 *src = c;
        if (object != NULL) {
          for (int y = 0; y < m; y++) {
            const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
            for (int x = 0; x < m; x++) g[y * m + x] = pt_cmulc(orow[x], c[y * m + x]);
          }
          src = g;
        }
        interp_filter(m, wy, wx, 1, src, rows, filtered);
        double *s_k = sum + 2 * (size_t)k * image;
        for (size_t i = 0; i < image; i++) {
          s_k[2 * i] += filtered[i].re;
          s_k[2 * i + 1] += filtered[i].im;
        }
      }
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (long i = 0; i < (long)modes; i++) {
      double re = 0.0, im = 0.0;
      for (int u = 0; u < nt; u++) {
        const double *s_u = (const double *)(work + per_thread * (size_t)u + 3 * image * sizeof(ptyc_c32));
        re += s_u[2 * i];
        im += s_u[2 * i + 1];
      }
      acc[i].re += (float)re;
      acc[i].im += (float)im;
    }
  }
  if (den != NULL) add_object_intensity(ctx, scan, first, n, object, den);
  return PTYC_OK;
}

/* Per entry (in parallel): the probe modes through the filter with the derivative
 * weights along y (dwy x wx) and along x (wy x dwx), and the four sums of
 * ptyc_op_interp_position_gradient in double. */
ptyc_status pt_cpu_interp_position_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                            const ptyc_c32 *probe, const ptyc_c32 *object,
                                            const ptyc_c32 *grad_psi, double *out) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w, threads = THREADS(ctx);
  size_t image = (size_t)m * m;
  /* per thread: the row pass, then D_y P and D_x P */
  ptyc_c32 *work = pt_cpu_scratch(ctx, 3 * sizeof(ptyc_c32) * image * (size_t)threads);
  if (work == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in interp_position_gradient");
  pt_interp_design design;
  pt_interp_design_make(&design);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    float wy[PT_INTERP_TAPS], wx[PT_INTERP_TAPS], dwy[PT_INTERP_TAPS], dwx[PT_INTERP_TAPS];
    pt_interp_weights(&design, p.fy, wy, dwy);
    pt_interp_weights(&design, p.fx, wx, dwx);
    ptyc_c32 *rows = work + 3 * image * (size_t)omp_get_thread_num();
    ptyc_c32 *dy = rows + image, *dx = dy + image;
    double sum[4] = {0.0, 0.0, 0.0, 0.0};
    for (int k = 0; k < k_modes; k++) {
      interp_filter(m, dwy, wx, 0, probe + (size_t)k * image, rows, dy);
      interp_filter(m, wy, dwx, 0, probe + (size_t)k * image, rows, dx);
      const ptyc_c32 *g = grad_psi + ((size_t)b * k_modes + k) * image;
      for (int y = 0; y < m; y++) {
        const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) {
          size_t i = (size_t)y * m + x;
          ptyc_c32 z = pt_cmulc(g[i], orow[x]); /* conj(grad psi) O */
          sum[0] += (double)z.re * dy[i].re - (double)z.im * dy[i].im;
          sum[1] += (double)z.re * dx[i].re - (double)z.im * dx[i].im;
          sum[2] += pt_cabs2(dy[i]);
          sum[3] += pt_cabs2(dx[i]);
        }
      }
    }
    out[4 * (size_t)b + 0] = 2.0 * sum[0];
    out[4 * (size_t)b + 1] = 2.0 * sum[1];
    out[4 * (size_t)b + 2] = sum[2] / (double)image;
    out[4 * (size_t)b + 3] = sum[3] / (double)image;
  }
  return PTYC_OK;
}

/* Gaussian model: one pass, residual = (sqrt(d/I) - 1) Psi / M^2. */
static double gaussian_residual(int m, int k_modes, const float *d, const float *mask,
                                ptyc_c32 *waves) {
  size_t image = (size_t)m * m;
  float inv_pixels = 1.f / (float)image;
  double cost = 0.0;
  for (size_t i = 0; i < image; i++) {
    float intensity = 0.f;
    for (int k = 0; k < k_modes; k++) intensity += pt_cabs2(waves[k * image + i]);
    float factor = 0.f;
    if (mask == NULL || mask[i] > 0.f) {
      factor = pt_gaussian_factor(intensity, d[i]) * inv_pixels;
      cost += pt_gaussian_cost(intensity, d[i]);
    }
    for (int k = 0; k < k_modes; k++) waves[k * image + i] = pt_cscale(waves[k * image + i], factor);
  }
  return cost;
}

/* Poisson model: Newton search of the step x along r Psi, then residual = x r Psi / M^2. */
static double poisson_residual(int m, int k_modes, const float *d, const float *mask,
                               ptyc_c32 *waves, float *intensity) {
  size_t image = (size_t)m * m;
  double cost = 0.0;
  for (size_t i = 0; i < image; i++) {
    float s = 0.f;
    for (int k = 0; k < k_modes; k++) s += pt_cabs2(waves[k * image + i]);
    intensity[i] = s;
    if (mask == NULL || mask[i] > 0.f) cost += pt_poisson_cost(s, d[i]);
  }
  double x = PT_POISSON_STEP_START;
  for (int step = 0; step < PT_POISSON_NEWTON_STEPS; step++) {
    double grad = 0.0, hess = 0.0;
    for (size_t i = 0; i < image; i++)
      if (mask == NULL || mask[i] > 0.f) pt_poisson_newton_terms(intensity[i], d[i], x, &grad, &hess);
    x = pt_poisson_newton_update(x, grad, hess);
  }
  float scale = (float)x / (float)image;
  for (size_t i = 0; i < image; i++) {
    float factor = (mask == NULL || mask[i] > 0.f) ? pt_poisson_ratio(intensity[i], d[i]) * scale : 0.f;
    for (int k = 0; k < k_modes; k++) waves[k * image + i] = pt_cscale(waves[k * image + i], factor);
  }
  return cost;
}

ptyc_status pt_cpu_fourier_residual(void *ctx, const ptyc_scan *scan, int first, int n,
                                    ptyc_noise_model noise_model, const float *patterns,
                                    const float *mask, ptyc_c32 *waves, double *cost) {
  int m = scan->m, k_modes = scan->n_modes;
  size_t image = (size_t)m * m;
  float *intensity = NULL;
  if (noise_model == PTYC_NOISE_POISSON) {
    intensity = pt_cpu_scratch(ctx, sizeof(float) * image * (size_t)(n > 0 ? n : 1));
    if (intensity == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory in fourier_residual");
  }
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    const float *d = patterns + (size_t)batch_index(scan, first, b) * image;
    ptyc_c32 *wb = waves + (size_t)b * k_modes * image;
    cost[b] = noise_model == PTYC_NOISE_POISSON
                  ? poisson_residual(m, k_modes, d, mask, wb, intensity + (size_t)b * image)
                  : gaussian_residual(m, k_modes, d, mask, wb);
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_object_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                   const ptyc_c32 *probes, const ptyc_c32 *chi,
                                   const float *weights, ptyc_c32 *num, float *den) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w;
  size_t image = (size_t)m * m;
  /* Patches of one batch overlap: positions go one after the other, the rows of each
   * patch are shared among threads, so no two threads add into the same pixel. */
#pragma omp parallel num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    float wb = weights ? weights[b] : 1.f;
#pragma omp for schedule(static)
    for (int y = 0; y < m; y++) {
      ptyc_c32 *nrow = num + (size_t)(p.y0 + y) * w + p.x0;
      float *drow = den ? den + (size_t)(p.y0 + y) * w + p.x0 : NULL;
      for (int x = 0; x < m; x++) {
        double re = 0.0, im = 0.0, illum = 0.0;
        for (int k = 0; k < k_modes; k++) {
          size_t i = ((size_t)b * k_modes + k) * image + y * m + x;
          ptyc_c32 z = pt_cmulc(probes[i], chi[i]);
          re += z.re;
          im += z.im;
          illum += pt_cabs2(probes[i]);
        }
        nrow[x].re += (float)(wb * re);
        nrow[x].im += (float)(wb * im);
        if (drow) drow[x] += (float)illum;
      }
    }
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_probe_gradient(void *ctx, const ptyc_scan *scan, int first, int n,
                                  const ptyc_c32 *object, const ptyc_c32 *chi, ptyc_c32 *g,
                                  float *den) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w;
  size_t image = (size_t)m * m;
#pragma omp parallel for collapse(2) schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++)
    for (int k = 0; k < k_modes; k++) {
      patch_pos p = batch_position(scan, first, b);
      size_t base = ((size_t)b * k_modes + k) * image;
      for (int y = 0; y < m; y++) {
        const ptyc_c32 *orow = object + (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) g[base + y * m + x] = pt_cmulc(orow[x], chi[base + y * m + x]);
      }
    }
  if (den != NULL) add_object_intensity(ctx, scan, first, n, object, den);
  return PTYC_OK;
}

ptyc_status pt_cpu_lsqml_steps(void *ctx, const ptyc_scan *scan, int first, int n,
                               const ptyc_c32 *object, const ptyc_c32 *dobject,
                               const ptyc_c32 *probes, const ptyc_c32 *dprobe,
                               const ptyc_c32 *chi, double regularization, double max_step,
                               int object_on, int probe_on, float *alpha) {
  int m = scan->m, k_modes = scan->n_modes, w = scan->obj_w;
  size_t image = (size_t)m * m;
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (int b = 0; b < n; b++) {
    patch_pos p = batch_position(scan, first, b);
    pt_lsqml_sums s = {0, 0, 0, 0, 0};
    for (int k = 0; k < k_modes; k++) {
      size_t base = ((size_t)b * k_modes + k) * image;
      for (int y = 0; y < m; y++) {
        size_t orow = (size_t)(p.y0 + y) * w + p.x0;
        for (int x = 0; x < m; x++) {
          ptyc_c32 a = pt_cmul(dobject[orow + x], probes[base + y * m + x]);
          ptyc_c32 c = pt_cmul(object[orow + x], dprobe[k * image + y * m + x]);
          ptyc_c32 r = chi[base + y * m + x];
          s.a11 += pt_cabs2(a);
          s.a22 += pt_cabs2(c);
          s.a12 += (double)a.re * c.re + (double)a.im * c.im;
          s.r1 += (double)a.re * r.re + (double)a.im * r.im;
          s.r2 += (double)c.re * r.re + (double)c.im * r.im;
        }
      }
    }
    pt_lsqml_solve(s, regularization, max_step, object_on, probe_on, &alpha[b], &alpha[n + b]);
  }
  return PTYC_OK;
}

ptyc_status pt_cpu_orthogonalize_modes(void *ctx, ptyc_c32 *probe, int n_modes, int m) {
  if (n_modes == 1) return PTYC_OK;
  size_t image = (size_t)m * m;
  int k = n_modes;
  ptyc_c64 gram[PT_MAX_MODES * PT_MAX_MODES], vecs[PT_MAX_MODES * PT_MAX_MODES];
  double evals[PT_MAX_MODES], work[2 * (2 * PT_MAX_MODES) * (2 * PT_MAX_MODES) + 2 * PT_MAX_MODES];
  for (int i = 0; i < k; i++)
    for (int j = i; j < k; j++) { /* gram[i][j] = <P_i, P_j> */
      double re = 0.0, im = 0.0;
      for (size_t t = 0; t < image; t++) {
        ptyc_c32 z = pt_cmulc(probe[i * image + t], probe[j * image + t]);
        re += z.re;
        im += z.im;
      }
      gram[i * k + j] = (ptyc_c64){re, im};
      gram[j * k + i] = (ptyc_c64){re, -im};
    }
  pt_hermitian_eigen(k, gram, evals, vecs, work);
  /* New mode a = sum_j vecs[a][j] P_j: orthogonal with power evals[a]. */
  ptyc_c32 *old = pt_cpu_scratch(ctx, sizeof(ptyc_c32) * image * k);
  if (old == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory orthogonalising modes");
  memcpy(old, probe, sizeof(ptyc_c32) * image * k);
#pragma omp parallel for schedule(static) num_threads(THREADS(ctx))
  for (size_t t = 0; t < image; t++)
    for (int a = 0; a < k; a++) {
      double re = 0.0, im = 0.0;
      for (int j = 0; j < k; j++) {
        ptyc_c64 v = vecs[a * k + j];
        ptyc_c32 p = old[j * image + t];
        re += v.re * p.re - v.im * p.im;
        im += v.re * p.im + v.im * p.re;
      }
      probe[a * image + t] = pt_c32((float)re, (float)im);
    }
  return PTYC_OK;
}
