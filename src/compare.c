/* Object error of a reconstruction against the ground truth (`ptyc compare`).
 *
 * A reconstruction is defined only up to a complex scale c and a linear phase ramp
 * exp(i g.r) (both leave every diffraction pattern unchanged when the probe takes the
 * inverse factors), and its grid may be offset from the truth's. So the figure is
 *
 *   NRMSE = min over c, g of || c e^{i g.r} O_rec - O_true || / || O_true ||
 *
 * over the illuminated region, after aligning the grids by the mean position offset.
 *
 * The minimisation, derived: for a fixed g the best c is the least-squares one,
 *   c(g) = Z(g) / ||O_rec||^2,   Z(g) = sum_r z(r) e^{-i g.r},   z = O_true conj(O_rec),
 * and the residual left is ||O_true||^2 - |Z(g)|^2 / ||O_rec||^2. So the best ramp is the
 * maximum of |Z(g)|, the discrete-time Fourier transform of z: found coarsely as the
 * peak of a zero-padded FFT of z, then refined by safeguarded Newton steps on |Z(g)|^2,
 * whose gradient and Hessian need only a few more sums over the region.
 *
 * The width of |Z|'s main lobe shrinks as 1/L with the region's size L, so for large
 * objects the search is done on growing windows about the region's centre (256, 511,
 * ... pixels): each stage's estimate lies well inside the next stage's lobe, and the
 * FFT never grows beyond 1024 x 1024.
 *
 * The FFT is double-precision FFTW (as the simulator's): this is a test tool, not a
 * backend op. */
#include "ptyc/compare.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt_try.h"

#define CMP_PI 3.14159265358979323846
#define CMP_REGION_LEVEL 0.1   /* illuminated: >= 10 % of the maximum illumination */
#define CMP_FIRST_HALF 127.5   /* half side of the first search window: 256 pixels */
#define CMP_PAD 4              /* zero padding of the coarse FFT */
#define CMP_NEWTON_STEPS 30
#define CMP_LINE_HALVINGS 10
/* Newton stops once its step is this fraction of the step limit (half a lobe): the
 * phase error left at the window's edge is then below 1e-6 rad. */
#define CMP_NEWTON_TOL 1e-7

/* Pixels compared: their row and column on the truth grid and z = O_true conj(O_rec). */
typedef struct pixel_list {
  long n;
  int *y, *x;
  double *z; /* [n][2] re, im */
} pixel_list;

/* Phase factors e^{-i g_y (y - cy)} per row and e^{-i g_x (x - cx)} per column of the
 * truth grid, so a pixel's factor costs one complex product instead of a sine and a
 * cosine. Coordinates are taken from the region's centroid (cy, cx), which decouples
 * the ramp from the phase of c and keeps the Newton system well conditioned. */
typedef struct ramp_tables {
  double cy, cx;
  int h, w;
  double *row, *col; /* [h][2], [w][2] */
} ramp_tables;

/* |Z(g)|^2 = f with its gradient and Hessian, and Z(g) itself. */
typedef struct ramp_eval {
  double f, gy, gx, hyy, hxx, hxy;
  double zr, zi;
} ramp_eval;

static ramp_eval eval_ramp(const pixel_list *p, ramp_tables *t, double g_y, double g_x) {
  for (int y = 0; y < t->h; y++) {
    double a = -g_y * (y - t->cy);
    t->row[2 * y] = cos(a);
    t->row[2 * y + 1] = sin(a);
  }
  for (int x = 0; x < t->w; x++) {
    double a = -g_x * (x - t->cx);
    t->col[2 * x] = cos(a);
    t->col[2 * x + 1] = sin(a);
  }
  /* Z = sum w, Zy = dZ/dg_y = sum -i y w, Zyy = sum -y^2 w, ... with w = z e^{-i g.r} */
  double z[2] = {0, 0}, zy[2] = {0, 0}, zx[2] = {0, 0};
  double zyy[2] = {0, 0}, zxx[2] = {0, 0}, zxy[2] = {0, 0};
  for (long i = 0; i < p->n; i++) {
    const double *ry = t->row + 2 * p->y[i], *cx = t->col + 2 * p->x[i];
    double er = ry[0] * cx[0] - ry[1] * cx[1], ei = ry[0] * cx[1] + ry[1] * cx[0];
    double wr = p->z[2 * i] * er - p->z[2 * i + 1] * ei;
    double wi = p->z[2 * i] * ei + p->z[2 * i + 1] * er;
    double y = p->y[i] - t->cy, x = p->x[i] - t->cx;
    z[0] += wr;
    z[1] += wi;
    zy[0] += y * wi; /* -i y w = y (wi - i wr) */
    zy[1] -= y * wr;
    zx[0] += x * wi;
    zx[1] -= x * wr;
    zyy[0] -= y * y * wr;
    zyy[1] -= y * y * wi;
    zxx[0] -= x * x * wr;
    zxx[1] -= x * x * wi;
    zxy[0] -= x * y * wr;
    zxy[1] -= x * y * wi;
  }
  /* f = |Z|^2: df = 2 Re(conj(Z) dZ), d2f = 2 Re(conj(dZ_a) dZ_b + conj(Z) d2Z_ab) */
  ramp_eval e;
  e.zr = z[0];
  e.zi = z[1];
  e.f = z[0] * z[0] + z[1] * z[1];
  e.gy = 2 * (z[0] * zy[0] + z[1] * zy[1]);
  e.gx = 2 * (z[0] * zx[0] + z[1] * zx[1]);
  e.hyy = 2 * (zy[0] * zy[0] + zy[1] * zy[1] + z[0] * zyy[0] + z[1] * zyy[1]);
  e.hxx = 2 * (zx[0] * zx[0] + zx[1] * zx[1] + z[0] * zxx[0] + z[1] * zxx[1]);
  e.hxy = 2 * (zy[0] * zx[0] + zy[1] * zx[1] + z[0] * zxy[0] + z[1] * zxy[1]);
  return e;
}

/* Maximises |Z(g)|^2 over the pixels `p` from the start g: Newton where the Hessian is
 * negative definite, gradient ascent otherwise; steps no longer than `max_step`, halved
 * until |Z| grows. */
static void refine_ramp(const pixel_list *p, ramp_tables *t, double max_step, double *g_y,
                        double *g_x) {
  ramp_eval e = eval_ramp(p, t, *g_y, *g_x);
  for (int it = 0; it < CMP_NEWTON_STEPS; it++) {
    double det = e.hyy * e.hxx - e.hxy * e.hxy;
    double sy, sx;
    int newton = e.hyy < 0 && det > 0;
    if (newton) { /* s = -H^-1 grad */
      sy = -(e.hxx * e.gy - e.hxy * e.gx) / det;
      sx = -(e.hyy * e.gx - e.hxy * e.gy) / det;
    } else { /* along the gradient, as far as allowed */
      double gn = sqrt(e.gy * e.gy + e.gx * e.gx);
      if (!(gn > 0)) return;
      sy = max_step * e.gy / gn;
      sx = max_step * e.gx / gn;
    }
    double len = sqrt(sy * sy + sx * sx);
    if (newton && len < CMP_NEWTON_TOL * max_step) { /* converged: take the last step */
      *g_y += sy;
      *g_x += sx;
      return;
    }
    if (len > max_step) {
      sy *= max_step / len;
      sx *= max_step / len;
    }
    int improved = 0;
    for (int h = 0; h < CMP_LINE_HALVINGS && !improved; h++) {
      ramp_eval trial = eval_ramp(p, t, *g_y + sy, *g_x + sx);
      if (trial.f > e.f) {
        *g_y += sy;
        *g_x += sx;
        e = trial;
        improved = 1;
      }
      sy *= 0.5;
      sx *= 0.5;
    }
    if (!improved) return; /* at the maximum to rounding */
  }
}

/* Coarse ramp: the peak of the zero-padded FFT of z over the pixels `p`, which lie in
 * rows y_lo .. y_lo + ny - 1 and columns x_lo .. x_lo + nx - 1. */
static ptyc_status coarse_ramp(const pixel_list *p, int y_lo, int ny, int x_lo, int nx,
                               double *g_y, double *g_x) {
  int py = 1, px = 1; /* powers of two, at least CMP_PAD times the window */
  while (py < CMP_PAD * ny) py *= 2;
  while (px < CMP_PAD * nx) px *= 2;
  fftw_complex *a = fftw_malloc((size_t)py * px * sizeof *a);
  if (a == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory for a %dx%d FFT of the comparison", py, px);
  memset(a, 0, (size_t)py * px * sizeof *a);
  for (long i = 0; i < p->n; i++) {
    size_t k = (size_t)(p->y[i] - y_lo) * px + (size_t)(p->x[i] - x_lo);
    a[k][0] = p->z[2 * i];
    a[k][1] = p->z[2 * i + 1];
  }
  fftw_plan plan = fftw_plan_dft_2d(py, px, a, a, FFTW_FORWARD, FFTW_ESTIMATE);
  if (plan == NULL) {
    fftw_free(a);
    return ptyc_fail(PTYC_E_NOMEM, "FFTW could not plan a %dx%d FFT for the comparison", py, px);
  }
  fftw_execute(plan);
  fftw_destroy_plan(plan);
  /* forward sign -1: the bin k with |Z| largest has e^{-2 pi i k n / P} cancelling the
   * ramp e^{i g n} of z, so g = 2 pi k / P with k the signed frequency index */
  double best = -1;
  int by = 0, bx = 0;
  for (int y = 0; y < py; y++)
    for (int x = 0; x < px; x++) {
      const double *v = a[(size_t)y * px + x];
      if (v[0] * v[0] + v[1] * v[1] > best) {
        best = v[0] * v[0] + v[1] * v[1];
        by = y;
        bx = x;
      }
    }
  fftw_free(a);
  *g_y = 2 * CMP_PI * pt_freq_index(by, py) / py;
  *g_x = 2 * CMP_PI * pt_freq_index(bx, px) / px;
  return PTYC_OK;
}

/* Copies into `out` the pixels of `all` in rows y_lo..y_hi and columns x_lo..x_hi. */
static void select_window(const pixel_list *all, int y_lo, int y_hi, int x_lo, int x_hi,
                          pixel_list *out) {
  out->n = 0;
  for (long i = 0; i < all->n; i++)
    if (all->y[i] >= y_lo && all->y[i] <= y_hi && all->x[i] >= x_lo && all->x[i] <= x_hi) {
      out->y[out->n] = all->y[i];
      out->x[out->n] = all->x[i];
      out->z[2 * out->n] = all->z[2 * i];
      out->z[2 * out->n + 1] = all->z[2 * i + 1];
      out->n++;
    }
}

static ptyc_status check_object(const ptyc_compare_object *o, const char *which) {
  if (o == NULL || o->object == NULL || o->positions_px == NULL)
    return ptyc_fail(PTYC_E_ARG, "the %s object or its positions are missing", which);
  if (o->h <= 0 || o->w <= 0 || o->n_positions <= 0)
    return ptyc_fail(PTYC_E_ARG, "the %s object is %dx%d with %d positions", which, o->h, o->w,
                     o->n_positions);
  for (int j = 0; j < 2 * o->n_positions; j++)
    if (!isfinite(o->positions_px[j]))
      return ptyc_fail(PTYC_E_ARG, "the %s positions hold a non-finite value", which);
  return PTYC_OK;
}

ptyc_status ptyc_object_compare(const ptyc_compare_object *recon, const ptyc_compare_object *truth,
                                const ptyc_c32 *probe, int n_modes, int m,
                                ptyc_compare_result *result) {
  PT_TRY(check_object(recon, "reconstructed"));
  PT_TRY(check_object(truth, "true"));
  if (probe == NULL || n_modes <= 0 || m <= 0 || result == NULL)
    return ptyc_fail(PTYC_E_ARG, "the truth probe is missing (%d modes of %dx%d)", n_modes, m, m);
  if (recon->n_positions != truth->n_positions)
    return ptyc_fail(PTYC_E_ARG,
                     "the reconstruction has %d positions and the truth %d; "
                     "compare a reconstruction of the same dataset",
                     recon->n_positions, truth->n_positions);

  ptyc_status st = PTYC_OK;
  const int n = truth->n_positions, h = truth->h, w = truth->w;
  double *illum = NULL, *probe_i = NULL;
  pixel_list all = {0, NULL, NULL, NULL}, win = {0, NULL, NULL, NULL};
  ramp_tables tab = {0, 0, h, w, NULL, NULL};
  memset(result, 0, sizeof *result);

  /* Grid alignment: recon pixel = truth pixel + offset. */
  double dy = 0, dx = 0;
  for (int j = 0; j < n; j++) {
    dy += recon->positions_px[2 * j] - truth->positions_px[2 * j];
    dx += recon->positions_px[2 * j + 1] - truth->positions_px[2 * j + 1];
  }
  const int off_y = (int)floor(dy / n + 0.5), off_x = (int)floor(dx / n + 0.5);

  /* Illumination on the truth grid: sum over positions of sum_k |P_k|^2, each probe
   * placed at the position rounded to the nearest pixel. */
  illum = calloc((size_t)h * w, sizeof *illum);
  probe_i = calloc((size_t)m * m, sizeof *probe_i);
  if (!illum || !probe_i) PT_FAIL(PTYC_E_NOMEM, "out of memory for a %dx%d illumination map", h, w);
  for (int k = 0; k < n_modes; k++)
    for (size_t i = 0; i < (size_t)m * m; i++) probe_i[i] += pt_cabs2(probe[(size_t)k * m * m + i]);
  for (int j = 0; j < n; j++) {
    int y0 = (int)floor(truth->positions_px[2 * j] + 0.5);
    int x0 = (int)floor(truth->positions_px[2 * j + 1] + 0.5);
    for (int y = 0; y < m; y++) {
      if (y0 + y < 0 || y0 + y >= h) continue;
      for (int x = 0; x < m; x++)
        if (x0 + x >= 0 && x0 + x < w) illum[(size_t)(y0 + y) * w + x0 + x] += probe_i[(size_t)y * m + x];
    }
  }
  double top = 0;
  for (size_t i = 0; i < (size_t)h * w; i++)
    if (illum[i] > top) top = illum[i];
  if (!(top > 0)) PT_FAIL(PTYC_E_ARG, "the truth probe does not illuminate the truth object");

  /* The region's pixels, each checked against the recon grid. */
  long count = 0;
  double sum_y = 0, sum_x = 0;
  int y_min = h, y_max = -1, x_min = w, x_max = -1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (illum[(size_t)y * w + x] >= CMP_REGION_LEVEL * top) {
        int ry = y + off_y, rx = x + off_x;
        if (ry < 0 || ry >= recon->h || rx < 0 || rx >= recon->w)
          PT_FAIL(PTYC_E_ARG,
                  "illuminated truth pixel (%d, %d) falls at (%d, %d), outside the %dx%d "
                  "reconstructed object; check that both files hold the same scan",
                  y, x, ry, rx, recon->h, recon->w);
        count++;
        sum_y += y;
        sum_x += x;
        y_min = y < y_min ? y : y_min;
        y_max = y > y_max ? y : y_max;
        x_min = x < x_min ? x : x_min;
        x_max = x > x_max ? x : x_max;
      }
  tab.cy = sum_y / count;
  tab.cx = sum_x / count;
  all.y = malloc((size_t)count * sizeof *all.y);
  all.x = malloc((size_t)count * sizeof *all.x);
  all.z = malloc((size_t)count * 2 * sizeof *all.z);
  win.y = malloc((size_t)count * sizeof *win.y);
  win.x = malloc((size_t)count * sizeof *win.x);
  win.z = malloc((size_t)count * 2 * sizeof *win.z);
  tab.row = malloc((size_t)h * 2 * sizeof *tab.row);
  tab.col = malloc((size_t)w * 2 * sizeof *tab.col);
  if (!all.y || !all.x || !all.z || !win.y || !win.x || !win.z || !tab.row || !tab.col)
    PT_FAIL(PTYC_E_NOMEM, "out of memory for %ld compared pixels", count);
  double true_norm2 = 0, rec_norm2 = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (illum[(size_t)y * w + x] >= CMP_REGION_LEVEL * top) {
        ptyc_c32 t = truth->object[(size_t)y * w + x];
        ptyc_c32 r = recon->object[(size_t)(y + off_y) * recon->w + (x + off_x)];
        long i = all.n++;
        all.y[i] = y;
        all.x[i] = x;
        all.z[2 * i] = (double)t.re * r.re + (double)t.im * r.im; /* t conj(r) */
        all.z[2 * i + 1] = (double)t.im * r.re - (double)t.re * r.im;
        true_norm2 += (double)t.re * t.re + (double)t.im * t.im;
        rec_norm2 += (double)r.re * r.re + (double)r.im * r.im;
      }
  if (!(true_norm2 > 0)) PT_FAIL(PTYC_E_ARG, "the true object is zero where it is illuminated");

  /* The ramp: coarse FFT on the first window, then Newton on windows that double in
   * size until they hold the whole region. */
  double g_y = 0, g_x = 0;
  for (double half = CMP_FIRST_HALF;; half *= 2) {
    int y_lo = (int)ceil(tab.cy - half), y_hi = (int)floor(tab.cy + half);
    int x_lo = (int)ceil(tab.cx - half), x_hi = (int)floor(tab.cx + half);
    y_lo = y_lo > y_min ? y_lo : y_min;
    y_hi = y_hi < y_max ? y_hi : y_max;
    x_lo = x_lo > x_min ? x_lo : x_min;
    x_hi = x_hi < x_max ? x_hi : x_max;
    select_window(&all, y_lo, y_hi, x_lo, x_hi, &win);
    if (half == CMP_FIRST_HALF)
      PT_CHECK(coarse_ramp(&win, y_lo, y_hi - y_lo + 1, x_lo, x_hi - x_lo + 1, &g_y, &g_x));
    /* a step of half a main lobe (2 pi / window) at most */
    int side = y_hi - y_lo > x_hi - x_lo ? y_hi - y_lo + 1 : x_hi - x_lo + 1;
    refine_ramp(&win, &tab, CMP_PI / side, &g_y, &g_x);
    if (win.n == all.n) break;
  }

  /* The scale and the error, summed directly. */
  ramp_eval e = eval_ramp(&all, &tab, g_y, g_x); /* also leaves the tables at g */
  double c_re = rec_norm2 > 0 ? e.zr / rec_norm2 : 0, c_im = rec_norm2 > 0 ? e.zi / rec_norm2 : 0;
  double err2 = 0;
  for (long i = 0; i < all.n; i++) {
    ptyc_c32 t = truth->object[(size_t)all.y[i] * w + all.x[i]];
    ptyc_c32 r = recon->object[(size_t)(all.y[i] + off_y) * recon->w + (all.x[i] + off_x)];
    /* c e^{+i g.r}: the conjugate of the tables' e^{-i g.r} */
    const double *ry = tab.row + 2 * all.y[i], *cx = tab.col + 2 * all.x[i];
    double pr = ry[0] * cx[0] - ry[1] * cx[1], pi = -(ry[0] * cx[1] + ry[1] * cx[0]);
    double er = c_re * pr - c_im * pi, ei = c_re * pi + c_im * pr;
    double mr = er * r.re - ei * r.im - t.re, mi = er * r.im + ei * r.re - t.im;
    err2 += mr * mr + mi * mi;
  }
  result->nrmse = sqrt(err2 / true_norm2);
  result->n_pixels = all.n;
  result->offset_y = off_y;
  result->offset_x = off_x;
  result->ramp_y = g_y;
  result->ramp_x = g_x;
  result->scale.re = c_re;
  result->scale.im = c_im;
fail:
  free(illum);
  free(probe_i);
  free(all.y);
  free(all.x);
  free(all.z);
  free(win.y);
  free(win.x);
  free(win.z);
  free(tab.row);
  free(tab.col);
  return st;
}

ptyc_status ptyc_object_nrmse(const ptyc_compare_object *recon, const ptyc_compare_object *truth,
                              const ptyc_c32 *probe, int n_modes, int m, double *nrmse) {
  if (nrmse == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_object_nrmse: NULL result");
  ptyc_compare_result r;
  PT_TRY(ptyc_object_compare(recon, truth, probe, n_modes, m, &r));
  *nrmse = r.nrmse;
  return PTYC_OK;
}
