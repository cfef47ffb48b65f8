/* Simulated far-field ptychography datasets with known truth (`ptyc simulate`).
 *
 * This is an INDEPENDENT forward model, used to test the reconstruction: it computes in
 * double precision with FFTW directly and shares no code with the ptyc backends. Its
 * physics is the one of include/ptyc/types.h and shared/FORMATS.md:
 *
 *   psi_jk = shift(P_k, f_j) * O[y_j : y_j+M, x_j : x_j+M],   I_j = sum_k |F{psi_jk}|^2
 *
 * with (y_j, x_j) the integer part of position j (top-left corner of the probe window),
 * f_j its fractional part, shift(P, f)(r) = P(r - f) applied in Fourier space as
 * F^-1{ F{P} * exp(-2 pi i (u fy + v fx) / M) } (u, v signed frequency indices), and F the
 * unnormalised forward DFT (sign -1).
 *
 * The pieces:
 *   probe    - a circular aperture of diameter aperture_frac * M in the far field with a
 *              quadratic (defocus) phase, propagated to the sample plane by an inverse
 *              FFT; K incoherent modes are this probe times Hermite-like functions
 *              x^a y^b exp(-r^2/2), orthonormalised (complex Gram-Schmidt) and given
 *              powers 1, 0.3/1, 0.3/2, ...
 *   scan     - a Fermat spiral whose step gives the requested linear overlap of
 *              neighbouring probes, plus uniform jitter of +-jitter_px on each axis
 *   object   - a Siemens star (36 spokes: amplitude 1 -> 0.6, phase 0 -> 1 rad) times
 *              smooth random amplitude (~+-10 %) and phase (~+-0.5 rad) fields
 *   photons  - the probe is scaled so that the mean total of a noiseless pattern equals
 *              `photons`, then Poisson noise; photons <= 0 gives noiseless patterns at the
 *              nominal scale SIM_NOISELESS_PHOTONS
 *
 * Every random number comes from src/rng.h with an explicit counter, and every sum
 * that reaches the output is taken in a fixed order, so a seed gives the same bytes
 * whatever the number of OpenMP threads. FFTW plans are made with FFTW_ESTIMATE, whose
 * choice of algorithm does not depend on timing (FFTW_MEASURE would break that).
 * FFTW's planner is not thread-safe: do not call ptyc_simulate from two threads at once. */
#include "ptyc/simulate.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_try.h"
#include "rng.h"

#define SIM_PI 3.14159265358979323846

/* Object design. */
#define SIM_SPOKES 36           /* Siemens star spokes */
#define SIM_STAR_AMP_DIP 0.4    /* amplitude 1.0 outside a spoke, 0.6 inside */
#define SIM_STAR_PHASE_RAD 1.0  /* phase 0 outside a spoke, 1 rad inside */
#define SIM_FIELD_SIGMA_PX 4.0  /* Gaussian filter width of the smooth random fields */
#define SIM_FIELD_HALF_PX 12    /* the filter's half length: 3 sigma */
#define SIM_AMP_FIELD_SD 0.05   /* standard deviation: about +-10 % at two sigma */
#define SIM_PHASE_FIELD_SD 0.25 /* about +-0.5 rad at two sigma */

/* Probe design. */
#define SIM_MAX_MODES 10        /* length of the polynomial list below */
#define SIM_MODE_POWER 0.3      /* power of mode k >= 1 relative to mode 0: 0.3 / k */
/* Fraction of M covered by the defocused beam in the presets (geometric diameter). */
#define SIM_BEAM_FRACTION 0.35
#define SIM_APERTURE_FRAC 0.25

/* Mean total counts of noiseless patterns (photons <= 0): the level of the small
 * preset, so that intensity guards in the engines meet the values they would with data. */
#define SIM_NOISELESS_PHOTONS 1e6

/* Random streams (src/rng.h): one per purpose. */
enum {
  SIM_STREAM_AMP_FIELD = 1,
  SIM_STREAM_PHASE_FIELD = 2,
  SIM_STREAM_JITTER_Y = 3,
  SIM_STREAM_JITTER_X = 4,
  SIM_STREAM_COUNTS = 5,
};

/* ---------------------------------------------------------------------------------- */
/* Presets and parameter checks                                                         */

/* Defocus (radians at the aperture edge) that spreads the beam over `beam_fraction` of
 * the window. A phase a (u/R)^2 over the pupil of radius R = aperture_frac M / 2 bends
 * the ray leaving the pupil edge by M a / (pi R) = 2 a / (pi aperture_frac) pixels in the
 * sample plane, so the geometric beam diameter is 4 a / (pi aperture_frac). */
static double preset_defocus(int m, double aperture_frac, double beam_fraction) {
  return beam_fraction * m * SIM_PI * aperture_frac / 4.0;
}

ptyc_status ptyc_sim_preset(const char *name, ptyc_sim_params *p) {
  if (name == NULL || p == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_sim_preset: NULL argument");
  ptyc_sim_params q;
  memset(&q, 0, sizeof q);
  if (strcmp(name, "small") == 0) {
    q.m = 64;
    q.n_positions = 144;
    q.n_modes = 2;
    q.photons = 1e6;
  } else if (strcmp(name, "medium") == 0) {
    q.m = 256;
    q.n_positions = 4096;
    q.n_modes = 4;
    q.photons = 1e7;
  } else if (strcmp(name, "large") == 0) {
    q.m = 512;
    q.n_positions = 12000;
    q.n_modes = 3;
    q.photons = 1e7;
  } else {
    return ptyc_fail(PTYC_E_ARG, "unknown preset '%s'; choose small, medium or large", name);
  }
  q.overlap = 0.7;
  q.jitter_px = 0.5;
  q.aperture_frac = SIM_APERTURE_FRAC;
  q.defocus = preset_defocus(q.m, q.aperture_frac, SIM_BEAM_FRACTION);
  q.seed = 1;
  q.wavelength_m = 1.24e-10; /* 10 keV */
  q.detector_distance_m = 2.0;
  q.detector_pixel_size_m = 75e-6;
  *p = q;
  return PTYC_OK;
}

static ptyc_status check_params(const ptyc_sim_params *p) {
  if (p->m < 8 || p->m % 2 != 0 || p->m > 8192)
    return ptyc_fail(PTYC_E_ARG, "pattern size M = %d: it must be even and between 8 and 8192", p->m);
  if (p->n_positions < 1 || p->n_positions > 10000000)
    return ptyc_fail(PTYC_E_ARG, "%d scan positions: give between 1 and 1e7",
                     p->n_positions);
  if (p->n_modes < 1 || p->n_modes > SIM_MAX_MODES)
    return ptyc_fail(PTYC_E_ARG, "%d probe modes: the simulator makes between 1 and %d",
                     p->n_modes, SIM_MAX_MODES);
  if (!isfinite(p->photons))
    return ptyc_fail(PTYC_E_ARG, "photons must be finite (<= 0 for no noise)");
  if (!(p->overlap >= 0.0 && p->overlap <= 0.95))
    return ptyc_fail(PTYC_E_ARG, "overlap %g must lie in [0, 0.95]", p->overlap);
  if (!(p->jitter_px >= 0.0 && p->jitter_px <= p->m))
    return ptyc_fail(PTYC_E_ARG, "jitter %g px must lie in [0, M]", p->jitter_px);
  if (!(p->aperture_frac > 0.0 && p->aperture_frac <= 1.0))
    return ptyc_fail(PTYC_E_ARG, "aperture_frac %g must lie in (0, 1]", p->aperture_frac);
  if (!isfinite(p->defocus))
    return ptyc_fail(PTYC_E_ARG, "defocus must be finite");
  if (!(p->wavelength_m >= 0.0 && p->detector_distance_m >= 0.0 && p->detector_pixel_size_m >= 0.0))
    return ptyc_fail(PTYC_E_ARG, "geometry values must be >= 0 (0 = unknown)");
  return PTYC_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Probe                                                                                */

/* Centroid (cy, cx) and mean squared radius of the intensity sum_k |modes_k|^2. */
static void intensity_moments(const fftw_complex *modes, int n_modes, int m, double *cy,
                              double *cx, double *r2) {
  double s = 0, sy = 0, sx = 0, syy = 0, sxx = 0;
  for (int k = 0; k < n_modes; k++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        const double *z = modes[((size_t)k * m + y) * m + x];
        double i = z[0] * z[0] + z[1] * z[1];
        s += i;
        sy += i * y;
        sx += i * x;
        syy += i * (double)y * y;
        sxx += i * (double)x * x;
      }
  *cy = sy / s;
  *cx = sx / s;
  *r2 = (syy / s - *cy * *cy) + (sxx / s - *cx * *cx);
}

/* <a, b> = sum conj(a) b over n values. */
static void inner(const fftw_complex *a, const fftw_complex *b, size_t n, double *re, double *im) {
  double sr = 0, si = 0;
  for (size_t i = 0; i < n; i++) {
    sr += a[i][0] * b[i][0] + a[i][1] * b[i][1];
    si += a[i][0] * b[i][1] - a[i][1] * b[i][0];
  }
  *re = sr;
  *im = si;
}

/* Builds the K unscaled probe modes [K][M][M] in the sample plane, centred in the window,
 * mutually orthogonal, with powers (squared norms) 1, 0.3, 0.15, 0.1, ... */
static ptyc_status make_probe(const ptyc_sim_params *p, fftw_complex *modes) {
  const int m = p->m;
  const size_t mm = (size_t)m * m;
  /* Exponents (a, b) of the polynomial x^a y^b that multiplies mode 0 to seed mode k. */
  static const int poly[SIM_MAX_MODES][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0},
                                             {0, 2}, {2, 1}, {1, 2}, {3, 0}, {0, 3}};
  fftw_plan inverse = fftw_plan_dft_2d(m, m, modes, modes, FFTW_BACKWARD, FFTW_ESTIMATE);
  if (inverse == NULL) return ptyc_fail(PTYC_E_NOMEM, "FFTW could not plan a %dx%d FFT for the simulation", m, m);

  /* The far-field pupil in FFT layout: a disc of radius R with an anti-aliased edge
   * (one pixel wide) and the defocus phase a (rho / R)^2. The factor (-1)^(u+v) moves
   * the sample-plane probe from [0][0] to the centre of the window [M/2][M/2]. */
  const double radius = 0.5 * p->aperture_frac * m;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      int u = pt_freq_index(y, m), v = pt_freq_index(x, m);
      double rho = sqrt((double)u * u + (double)v * v);
      double edge = radius - rho + 0.5;
      double amplitude = edge <= 0 ? 0.0 : (edge >= 1 ? 1.0 : edge);
      double phase = p->defocus * (rho / radius) * (rho / radius);
      double sign = ((u + v) & 1) ? -1.0 : 1.0;
      modes[(size_t)y * m + x][0] = sign * amplitude * cos(phase);
      modes[(size_t)y * m + x][1] = sign * amplitude * sin(phase);
    }
  fftw_execute(inverse);
  fftw_destroy_plan(inverse);

  /* Seeds of the other modes: mode 0 times the Hermite-like function x^a y^b e^{-r^2/2},
   * with x, y measured from the probe's centroid in units of its rms radius. The
   * Gaussian keeps the polynomials from lifting mode 0's faint tails at the window's
   * edges into real energy. */
  double cy, cx, r2;
  intensity_moments(modes, 1, m, &cy, &cx, &r2);
  double scale = 1.0 / sqrt(r2 > 0 ? r2 : 1.0);
  for (int k = 1; k < p->n_modes; k++)
    for (int y = 0; y < m; y++)
      for (int x = 0; x < m; x++) {
        double u = (x - cx) * scale, v = (y - cy) * scale;
        double w = pow(u, poly[k][0]) * pow(v, poly[k][1]) * exp(-0.5 * (u * u + v * v));
        const double *z0 = modes[(size_t)y * m + x];
        double *z = modes[k * mm + (size_t)y * m + x];
        z[0] = w * z0[0];
        z[1] = w * z0[1];
      }

  /* Modified Gram-Schmidt, done twice ("twice is enough") so that the modes are
   * orthogonal to rounding; then each gets its power. */
  for (int k = 0; k < p->n_modes; k++) {
    fftw_complex *mk = modes + k * mm;
    for (int pass = 0; pass < 2; pass++)
      for (int l = 0; l < k; l++) {
        double re, im; /* projection coefficient <m_l, m_k> (m_l has unit norm) */
        inner(modes + l * mm, mk, mm, &re, &im);
        const fftw_complex *ml = modes + l * mm;
        for (size_t i = 0; i < mm; i++) {
          mk[i][0] -= re * ml[i][0] - im * ml[i][1];
          mk[i][1] -= re * ml[i][1] + im * ml[i][0];
        }
      }
    double norm2, unused;
    inner(mk, mk, mm, &norm2, &unused);
    if (!(norm2 > 0.0))
      return ptyc_fail(PTYC_E_NUMERIC, "simulated probe mode %d vanished; increase aperture_frac", k);
    double f = 1.0 / sqrt(norm2);
    for (size_t i = 0; i < mm; i++) {
      mk[i][0] *= f;
      mk[i][1] *= f;
    }
  }
  for (int k = 1; k < p->n_modes; k++) {
    double f = sqrt(SIM_MODE_POWER / k);
    for (size_t i = 0; i < mm; i++) {
      modes[k * mm + i][0] *= f;
      modes[k * mm + i][1] *= f;
    }
  }
  return PTYC_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Scan                                                                                 */

/* Mean distance from each point to its nearest neighbour (O(N^2), about 0.1 s for
 * N = 12000). Per-point minima are summed in order, so the result is thread-count-free. */
static double mean_nearest_distance(const double *yx, int n, double *scratch) {
  if (n < 2) return 0.0;
#pragma omp parallel for schedule(dynamic, 64)
  for (int i = 0; i < n; i++) {
    double best = INFINITY;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double dy = yx[2 * i] - yx[2 * j], dx = yx[2 * i + 1] - yx[2 * j + 1];
      double d2 = dy * dy + dx * dx;
      if (d2 < best) best = d2;
    }
    scratch[i] = sqrt(best);
  }
  double s = 0;
  for (int i = 0; i < n; i++) s += scratch[i];
  return s / n;
}

/* Positions: a Fermat spiral r_i = c sqrt(i), theta_i = i * golden angle (137.508 deg),
 * whose mean nearest-neighbour distance is diameter * (1 - overlap), plus uniform jitter.
 * Writes top-left corners [N][2] (y, x) with the smallest of each axis at `margin`, and
 * the spiral's centre and outer radius in object pixels. */
static void make_positions(const ptyc_sim_params *p, double diameter_px, double margin,
                           double *pos, double *scratch, double *centre_y, double *centre_x,
                           double *radius_px) {
  const int n = p->n_positions;
  const double golden = SIM_PI * (3.0 - sqrt(5.0));
  for (int i = 0; i < n; i++) {
    double r = sqrt((double)i), theta = golden * i;
    pos[2 * i] = r * sin(theta);
    pos[2 * i + 1] = r * cos(theta);
  }
  double unit_step = mean_nearest_distance(pos, n, scratch);
  double c = unit_step > 0 ? diameter_px * (1.0 - p->overlap) / unit_step : 0.0;
  double min_y = INFINITY, min_x = INFINITY;
  for (int i = 0; i < n; i++) {
    double jy = p->jitter_px * (2.0 * pt_rng_uniform(p->seed, SIM_STREAM_JITTER_Y, (uint64_t)i) - 1.0);
    double jx = p->jitter_px * (2.0 * pt_rng_uniform(p->seed, SIM_STREAM_JITTER_X, (uint64_t)i) - 1.0);
    pos[2 * i] = c * pos[2 * i] + jy - 0.5 * p->m; /* probe centre -> top-left corner */
    pos[2 * i + 1] = c * pos[2 * i + 1] + jx - 0.5 * p->m;
    if (pos[2 * i] < min_y) min_y = pos[2 * i];
    if (pos[2 * i + 1] < min_x) min_x = pos[2 * i + 1];
  }
  for (int i = 0; i < n; i++) {
    pos[2 * i] += margin - min_y;
    pos[2 * i + 1] += margin - min_x;
  }
  /* The spiral's origin had its probe centre at (0, 0) before the shift. */
  *centre_y = margin - min_y;
  *centre_x = margin - min_x;
  *radius_px = c * sqrt((double)n);
}

/* ---------------------------------------------------------------------------------- */
/* Object                                                                               */

/* A smooth random field of zero mean and unit standard deviation on h x w: white
 * Gaussian noise (stream `stream`) filtered by a separable Gaussian of width
 * SIM_FIELD_SIGMA_PX (zero outside the grid). `tmp` holds h * w doubles, `row_sums` 2 h. */
static void smooth_field(uint64_t seed, uint64_t stream, int h, int w, double *out, double *tmp,
                         double *row_sums) {
  const int half = SIM_FIELD_HALF_PX;
  const double sigma = SIM_FIELD_SIGMA_PX;
  double kernel[2 * SIM_FIELD_HALF_PX + 1];
  double ksum = 0;
  for (int t = -half; t <= half; t++) ksum += kernel[t + half] = exp(-0.5 * t * t / (sigma * sigma));
  for (int t = 0; t <= 2 * half; t++) kernel[t] /= ksum;

#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      out[(size_t)y * w + x] = pt_rng_normal(seed, stream, (uint64_t)y * w + x);
  /* along x: out -> tmp */
#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; y++) {
    const double *src = out + (size_t)y * w;
    for (int x = 0; x < w; x++) {
      double s = 0;
      int t0 = x - half < 0 ? half - x : 0, t1 = x + half >= w ? w - 1 - x + half : 2 * half;
      for (int t = t0; t <= t1; t++) s += kernel[t] * src[x + t - half];
      tmp[(size_t)y * w + x] = s;
    }
  }
  /* along y: tmp -> out, row by row so the inner loop runs along x */
#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; y++) {
    double *dst = out + (size_t)y * w;
    for (int x = 0; x < w; x++) dst[x] = 0;
    for (int t = 0; t <= 2 * half; t++) {
      int ys = y + t - half;
      if (ys < 0 || ys >= h) continue;
      const double *src = tmp + (size_t)ys * w;
      for (int x = 0; x < w; x++) dst[x] += kernel[t] * src[x];
    }
    double s = 0, s2 = 0;
    for (int x = 0; x < w; x++) {
      s += dst[x];
      s2 += dst[x] * dst[x];
    }
    row_sums[2 * y] = s;
    row_sums[2 * y + 1] = s2;
  }
  /* normalise with sums taken row by row in order (independent of the thread count) */
  double s = 0, s2 = 0;
  for (int y = 0; y < h; y++) {
    s += row_sums[2 * y];
    s2 += row_sums[2 * y + 1];
  }
  double n = (double)h * w, mean = s / n, var = s2 / n - mean * mean;
  double inv_sd = var > 0 ? 1.0 / sqrt(var) : 0.0;
#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) out[(size_t)y * w + x] = (out[(size_t)y * w + x] - mean) * inv_sd;
}

/* How much of pixel (y, x) lies inside a spoke of the star centred at (cy, cx) with
 * outer radius `radius`: 0..1 with a one-pixel linear ramp at every edge (anti-aliasing).
 * Spokes are where cos(S theta) > 0; near an edge the distance to it is about
 * cos(S theta) r / S pixels, since |grad cos(S theta)| = S / r there. */
static double star_spoke(double y, double x, double cy, double cx, double radius) {
  double dy = y - cy, dx = x - cx;
  double r = sqrt(dy * dy + dx * dx);
  double t = cos(SIM_SPOKES * atan2(dy, dx));
  double inside = 0.5 + t * r / SIM_SPOKES;
  double disc = radius - r + 0.5;
  inside = inside < 0 ? 0 : (inside > 1 ? 1 : inside);
  disc = disc < 0 ? 0 : (disc > 1 ? 1 : disc);
  return inside * disc;
}

/* The object [h][w]: star times smooth random amplitude and phase fields. */
static ptyc_status make_object(const ptyc_sim_params *p, int h, int w, double cy, double cx,
                               double radius, ptyc_c32 *object) {
  ptyc_status st = PTYC_OK;
  size_t n = (size_t)h * w;
  double *amp = malloc(n * sizeof *amp);
  double *phase = malloc(n * sizeof *phase);
  double *tmp = malloc(n * sizeof *tmp);
  double *row_sums = malloc((size_t)h * 2 * sizeof *row_sums);
  if (!amp || !phase || !tmp || !row_sums)
    PT_FAIL(PTYC_E_NOMEM, "out of memory for a %dx%d simulated object", h, w);
  smooth_field(p->seed, SIM_STREAM_AMP_FIELD, h, w, amp, tmp, row_sums);
  smooth_field(p->seed, SIM_STREAM_PHASE_FIELD, h, w, phase, tmp, row_sums);
#pragma omp parallel for schedule(static)
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      size_t i = (size_t)y * w + x;
      double s = star_spoke(y, x, cy, cx, radius);
      double a = (1.0 - SIM_STAR_AMP_DIP * s) * (1.0 + SIM_AMP_FIELD_SD * amp[i]);
      double ph = SIM_STAR_PHASE_RAD * s + SIM_PHASE_FIELD_SD * phase[i];
      object[i] = pt_c32((float)(a * cos(ph)), (float)(a * sin(ph)));
    }
fail:
  free(amp);
  free(phase);
  free(tmp);
  free(row_sums);
  return st;
}

/* ---------------------------------------------------------------------------------- */
/* Forward model                                                                        */

/* Why not fftw_plan_dft_2d: the plans are made with FFTW_ESTIMATE (see the top), and the
 * estimated 2-D plan runs its column pass with strided vector loops, 8x slower than
 * FFTW_MEASURE here. Batched 1-D transforms along contiguous rows are fast even when
 * estimated, so a 2-D FFT is done as rows, a cache-blocked transpose, and rows again.
 * Two transposes cancel: the forward model below works in both layouts without
 * transposing back (see forward_patterns). */
#define SIM_TRANSPOSE_BLOCK 8

/* out[x][y] = in[y][x] for an m x m array (out-of-place). */
static void transpose(const fftw_complex *in, fftw_complex *out, int m) {
  for (int y0 = 0; y0 < m; y0 += SIM_TRANSPOSE_BLOCK)
    for (int x0 = 0; x0 < m; x0 += SIM_TRANSPOSE_BLOCK) {
      int y1 = y0 + SIM_TRANSPOSE_BLOCK < m ? y0 + SIM_TRANSPOSE_BLOCK : m;
      int x1 = x0 + SIM_TRANSPOSE_BLOCK < m ? x0 + SIM_TRANSPOSE_BLOCK : m;
      for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
          out[(size_t)x * m + y][0] = in[(size_t)y * m + x][0];
          out[(size_t)x * m + y][1] = in[(size_t)y * m + x][1];
        }
    }
}

/* Noiseless, unscaled patterns [N][M][M] (FFT layout) and their totals, from the probe
 * spectra stored TRANSPOSED: probe_hat_t[k][v][u] = F{P_k}[u][v]. The object enters as its
 * complex64 values, the ones written to /truth/object.
 *
 * Per position and mode, with a and b two M x M buffers ("[v][u]" names the layout):
 *   a[v][u] = F{P}[u][v] * ramp          sub-pixel shift in Fourier space
 *   rows of a, inverse: a[v][y]          transform along u
 *   b = transpose(a): b[y][v]
 *   rows of b, inverse: b[y][x]          = M^2 P_f(y, x)
 *   b *= O[y0 + y][x0 + x] / M^2         exit wave psi
 *   rows of b, forward: b[y][v]
 *   a = transpose(b): a[v][y]
 *   rows of a, forward: a[v][u]          = Psi[u][v]
 *   sum[v][u] += |a|^2,  and at the end pattern[u][v] = sum[v][u]. */
static ptyc_status forward_patterns(const ptyc_sim_params *p, const fftw_complex *probe_hat_t,
                                    const ptyc_c32 *object, int obj_w, const double *pos,
                                    float *patterns, double *totals) {
  ptyc_status st = PTYC_OK;
  const int m = p->m, n_modes = p->n_modes;
  const size_t mm = (size_t)m * m;
  const int n_threads = omp_get_max_threads();
  fftw_plan rows_forward = NULL, rows_inverse = NULL;
  /* Per-thread work, allocated once: two waves, the intensity sum, two 1-D ramps.
   * Every wave starts a multiple of M*M*16 bytes after the first, so it has the
   * alignment the plans were made for (new-array execution requires it). */
  fftw_complex *waves = fftw_malloc((size_t)n_threads * 2 * mm * sizeof *waves);
  fftw_complex *ramps = fftw_malloc((size_t)n_threads * 2 * m * sizeof *ramps);
  double *sums = malloc((size_t)n_threads * mm * sizeof *sums);
  if (!waves || !ramps || !sums)
    PT_FAIL(PTYC_E_NOMEM, "out of memory for %d threads' FFT buffers of the simulation", n_threads);
  rows_forward = fftw_plan_many_dft(1, &m, m, waves, NULL, 1, m, waves, NULL, 1, m, FFTW_FORWARD,
                                    FFTW_ESTIMATE);
  rows_inverse = fftw_plan_many_dft(1, &m, m, waves, NULL, 1, m, waves, NULL, 1, m, FFTW_BACKWARD,
                                    FFTW_ESTIMATE);
  if (!rows_forward || !rows_inverse)
    PT_FAIL(PTYC_E_NOMEM, "FFTW could not plan %d FFTs of length %d for the simulation", m, m);

  const double inv_mm = 1.0 / (double)mm;
#pragma omp parallel for schedule(dynamic, 4)
  for (int j = 0; j < p->n_positions; j++) {
    int t = omp_get_thread_num();
    fftw_complex *a = waves + (size_t)t * 2 * mm, *b = a + mm;
    fftw_complex *ey = ramps + (size_t)t * 2 * m, *ex = ey + m;
    double *sum = sums + (size_t)t * mm;
    double y0 = floor(pos[2 * j]), x0 = floor(pos[2 * j + 1]);
    double fy = pos[2 * j] - y0, fx = pos[2 * j + 1] - x0;
    /* exp(-2 pi i u f / M) per axis: the sub-pixel shift P(r - f) */
    for (int i = 0; i < m; i++) {
      double ay = -2.0 * SIM_PI * pt_freq_index(i, m) * fy / m;
      double ax = -2.0 * SIM_PI * pt_freq_index(i, m) * fx / m;
      ey[i][0] = cos(ay);
      ey[i][1] = sin(ay);
      ex[i][0] = cos(ax);
      ex[i][1] = sin(ax);
    }
    const ptyc_c32 *patch = object + (size_t)y0 * obj_w + (size_t)x0;
    for (size_t i = 0; i < mm; i++) sum[i] = 0;
    for (int k = 0; k < n_modes; k++) {
      const fftw_complex *hat = probe_hat_t + k * mm;
      for (int v = 0; v < m; v++)
        for (int u = 0; u < m; u++) {
          size_t i = (size_t)v * m + u;
          double rr = ey[u][0] * ex[v][0] - ey[u][1] * ex[v][1]; /* ey[u] * ex[v] */
          double ri = ey[u][0] * ex[v][1] + ey[u][1] * ex[v][0];
          a[i][0] = hat[i][0] * rr - hat[i][1] * ri;
          a[i][1] = hat[i][0] * ri + hat[i][1] * rr;
        }
      fftw_execute_dft(rows_inverse, a, a);
      transpose(a, b, m);
      fftw_execute_dft(rows_inverse, b, b);
      for (int y = 0; y < m; y++)
        for (int x = 0; x < m; x++) {
          size_t i = (size_t)y * m + x;
          ptyc_c32 o = patch[(size_t)y * obj_w + x];
          double pr = b[i][0] * inv_mm, pi = b[i][1] * inv_mm;
          b[i][0] = pr * o.re - pi * o.im;
          b[i][1] = pr * o.im + pi * o.re;
        }
      fftw_execute_dft(rows_forward, b, b);
      transpose(b, a, m);
      fftw_execute_dft(rows_forward, a, a);
      for (size_t i = 0; i < mm; i++) sum[i] += a[i][0] * a[i][0] + a[i][1] * a[i][1];
    }
    /* transpose on the way out; the total is summed in a fixed order */
    double total = 0;
    float *out = patterns + (size_t)j * mm;
    for (int u = 0; u < m; u++)
      for (int v = 0; v < m; v++) {
        double s = sum[(size_t)v * m + u];
        out[(size_t)u * m + v] = (float)s;
        total += s;
      }
    totals[j] = total;
  }
fail:
  if (rows_forward) fftw_destroy_plan(rows_forward);
  if (rows_inverse) fftw_destroy_plan(rows_inverse);
  fftw_free(waves);
  fftw_free(ramps);
  free(sums);
  return st;
}

/* ---------------------------------------------------------------------------------- */
/* The whole simulation                                                                 */

ptyc_status ptyc_simulate(const ptyc_sim_params *p, ptyc_dataset **data, ptyc_truth **truth) {
  if (p == NULL || data == NULL || truth == NULL)
    return ptyc_fail(PTYC_E_ARG, "ptyc_simulate: NULL argument");
  *data = NULL;
  *truth = NULL;
  PT_TRY(check_params(p));

  ptyc_status st = PTYC_OK;
  const int m = p->m, n = p->n_positions, n_modes = p->n_modes;
  const size_t mm = (size_t)m * m;
  const int margin = m / 16 > 2 ? m / 16 : 2;
  fftw_complex *modes = NULL, *probe_hat = NULL, *spectrum = NULL;
  fftw_plan forward = NULL;
  double *scratch = NULL, *totals = NULL;
  ptyc_dataset *ds = calloc(1, sizeof *ds);
  ptyc_truth *tr = calloc(1, sizeof *tr);
  if (!ds || !tr) PT_FAIL(PTYC_E_NOMEM, "out of memory for the simulation");

  /* Probe modes and their spectra (transposed, for forward_patterns). */
  modes = fftw_malloc((size_t)n_modes * mm * sizeof *modes);
  probe_hat = fftw_malloc((size_t)n_modes * mm * sizeof *probe_hat);
  spectrum = fftw_malloc(mm * sizeof *spectrum);
  if (!modes || !probe_hat || !spectrum) PT_FAIL(PTYC_E_NOMEM, "out of memory for the simulated probe");
  PT_CHECK(make_probe(p, modes));
  {
    int dims[2] = {m, m};
    forward = fftw_plan_many_dft(2, dims, n_modes, modes, NULL, 1, (int)mm, probe_hat, NULL, 1,
                                 (int)mm, FFTW_FORWARD, FFTW_ESTIMATE);
    if (!forward) PT_FAIL(PTYC_E_NOMEM, "FFTW could not plan the simulated probe's FFT");
    fftw_execute(forward);
    /* forward_patterns wants the spectra transposed */
    for (int k = 0; k < n_modes; k++) {
      transpose(probe_hat + k * mm, spectrum, m);
      memcpy(probe_hat + k * mm, spectrum, mm * sizeof *spectrum);
    }
  }

  /* Scan: the probe's diameter is 2 sqrt(2) times its rms radius (exact for a disc). */
  double cy, cx, r2;
  intensity_moments(modes, n_modes, m, &cy, &cx, &r2);
  double diameter = 2.0 * sqrt(2.0 * r2);
  ds->positions_px = malloc((size_t)n * 2 * sizeof *ds->positions_px);
  scratch = malloc((size_t)n * sizeof *scratch);
  totals = malloc((size_t)n * sizeof *totals);
  if (!ds->positions_px || !scratch || !totals) PT_FAIL(PTYC_E_NOMEM, "out of memory for the simulation");
  double star_y, star_x, star_radius;
  make_positions(p, diameter, margin, ds->positions_px, scratch, &star_y, &star_x, &star_radius);

  /* Object: the scan extent, plus the window, plus the margin on each side. */
  double max_y = 0, max_x = 0;
  for (int j = 0; j < n; j++) {
    if (ds->positions_px[2 * j] > max_y) max_y = ds->positions_px[2 * j];
    if (ds->positions_px[2 * j + 1] > max_x) max_x = ds->positions_px[2 * j + 1];
  }
  tr->obj_h = (int)floor(max_y) + m + margin;
  tr->obj_w = (int)floor(max_x) + m + margin;
  tr->object = malloc((size_t)tr->obj_h * tr->obj_w * sizeof *tr->object);
  if (!tr->object)
    PT_FAIL(PTYC_E_NOMEM, "out of memory for a %dx%d simulated object", tr->obj_h, tr->obj_w);
  PT_CHECK(make_object(p, tr->obj_h, tr->obj_w, star_y, star_x, star_radius, tr->object));

  /* Patterns, then the photon scale and the noise. */
  ds->patterns = malloc((size_t)n * mm * sizeof *ds->patterns);
  if (!ds->patterns)
    PT_FAIL(PTYC_E_NOMEM, "out of memory for %d simulated patterns of %dx%d (%.1f GiB)", n, m, m,
            (double)n * mm * sizeof(float) / (1 << 30));
  PT_CHECK(forward_patterns(p, probe_hat, tr->object, tr->obj_w, ds->positions_px, ds->patterns, totals));
  double mean_total = 0;
  for (int j = 0; j < n; j++) mean_total += totals[j];
  mean_total /= n;
  if (!(mean_total > 0.0)) PT_FAIL(PTYC_E_NUMERIC, "the simulated patterns are empty: check aperture_frac and the probe");
  const double target = p->photons > 0 ? p->photons : SIM_NOISELESS_PHOTONS;
  const double scale = target / mean_total; /* intensity scale; the probe gets its root */
  const int noisy = p->photons > 0;
#pragma omp parallel for schedule(static)
  for (int j = 0; j < n; j++) {
    float *pattern = ds->patterns + (size_t)j * mm;
    for (size_t i = 0; i < mm; i++) {
      double mean = (double)pattern[i] * scale;
      pattern[i] = noisy ? (float)pt_rng_poisson(p->seed, SIM_STREAM_COUNTS, (uint64_t)j * mm + i, mean)
                         : (float)mean;
    }
  }

  /* Truth probe: scaled so that the forward model reproduces the noiseless patterns. */
  tr->probe = malloc((size_t)n_modes * mm * sizeof *tr->probe);
  if (!tr->probe) PT_FAIL(PTYC_E_NOMEM, "out of memory for the simulation");
  const double amplitude_scale = sqrt(scale);
  for (size_t i = 0; i < (size_t)n_modes * mm; i++)
    tr->probe[i] = pt_c32((float)(modes[i][0] * amplitude_scale), (float)(modes[i][1] * amplitude_scale));
  tr->probe_modes = n_modes;
  tr->m = m;

  snprintf(ds->format, sizeof ds->format, "%s", "ptyc-native");
  ds->n_patterns = n;
  ds->m = m;
  ds->mask = NULL;
  ds->probe = NULL; /* no initial guess: the reconstruction makes its own */
  ds->probe_modes = 0;
  ds->wavelength_m = p->wavelength_m;
  ds->detector_distance_m = p->detector_distance_m;
  ds->detector_pixel_size_m = p->detector_pixel_size_m;
  ds->object_pixel_size_m = p->detector_pixel_size_m > 0
                                ? p->wavelength_m * p->detector_distance_m / (m * p->detector_pixel_size_m)
                                : 0.0;
  ds->positions_from_metres = 0;

  *data = ds;
  *truth = tr;
  ds = NULL;
  tr = NULL;
fail:
  if (forward) fftw_destroy_plan(forward);
  fftw_free(modes);
  fftw_free(probe_hat);
  fftw_free(spectrum);
  free(scratch);
  free(totals);
  ptyc_dataset_free(ds); /* NULL after a success */
  ptyc_truth_free(tr);
  return st;
}

ptyc_status ptyc_simulate_write(const ptyc_sim_params *p, const char *path) {
  if (p == NULL || path == NULL) return ptyc_fail(PTYC_E_ARG, "ptyc_simulate_write: NULL argument");
  ptyc_dataset *ds = NULL;
  ptyc_truth *tr = NULL;
  PT_TRY(ptyc_simulate(p, &ds, &tr));
  const ptyc_dataset_attr attrs[] = {
      {"seed", (double)p->seed},          {"photons", p->photons},
      {"n_modes", (double)p->n_modes},    {"overlap", p->overlap},
      {"jitter_px", p->jitter_px},        {"aperture_frac", p->aperture_frac},
      {"defocus", p->defocus},
  };
  ptyc_dataset_write_args args;
  memset(&args, 0, sizeof args);
  args.data = ds;
  args.truth = tr;
  args.attrs = attrs;
  args.n_attrs = (int)(sizeof attrs / sizeof attrs[0]);
  ptyc_status st = ptyc_dataset_write(path, &args);
  ptyc_dataset_free(ds);
  ptyc_truth_free(tr);
  return st;
}
