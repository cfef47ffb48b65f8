/* The reconstruction state: object grid from the positions, initial probe, upload. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/interp_math.h"
#include "ptyc/comm.h"
#include "ptyc/model.h"
#include "pt_try.h"


/* Object grid: the file's own grid when every position is >= 0 (so the object lines up
 * with the file's truth, if any); otherwise positions move right/down to start at
 * `padding`. The object reaches `padding` pixels past the last probe window. */
static void plan_grid(const ptyc_dataset *ds, int padding, ptyc_model *model) {
  double min_y = 1e300, min_x = 1e300, max_y = -1e300, max_x = -1e300;
  for (int j = 0; j < ds->n_patterns; j++) {
    double y = ds->positions_px[2 * j], x = ds->positions_px[2 * j + 1];
    min_y = fmin(min_y, y);
    min_x = fmin(min_x, x);
    max_y = fmax(max_y, y);
    max_x = fmax(max_x, x);
  }
  model->offset_px[0] = min_y >= 0.0 ? 0.0 : padding - floor(min_y);
  model->offset_px[1] = min_x >= 0.0 ? 0.0 : padding - floor(min_x);
  model->obj_h = (int)floor(max_y + model->offset_px[0]) + ds->m + 1 + padding;
  model->obj_w = (int)floor(max_x + model->offset_px[1]) + ds->m + 1 + padding;
}

/* In-place centred <-> corner swap of an M x M image (fftshift for even M). */
static void fftshift_image(ptyc_c32 *img, int m) {
  ptyc_c32 *tmp = malloc(sizeof *tmp * (size_t)m * m);
  if (tmp == NULL) return;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) tmp[((y + m / 2) % m) * m + (x + m / 2) % m] = img[y * m + x];
  memcpy(img, tmp, sizeof *tmp * (size_t)m * m);
  free(tmp);
}

/* The measured patterns as the initial probe sees them: all N, although on several
 * ranks this one holds only its share (ptyc_dataset_read_share) and the others' come
 * through the comm. The helpers are collective: every rank calls them in the same
 * order, and everything they return is the same on every rank. */
typedef struct pattern_view {
  const ptyc_dataset *ds; /* positions, mask, geometry; patterns of [first, first + held) */
  ptyc_comm *comm;
  int first, held;
  double *sum;            /* [M][M] sum of all N patterns */
} pattern_view;

static void view_free(pattern_view *v) {
  free(v->sum);
  v->sum = NULL;
}

static ptyc_status view_init(pattern_view *v, const ptyc_dataset *ds, ptyc_comm *comm) {
  size_t image = (size_t)ds->m * ds->m;
  v->ds = ds;
  v->comm = comm;
  v->first = ds->share_count > 0 ? ds->share_first : 0;
  v->held = ptyc_dataset_patterns_held(ds);
  v->sum = calloc(image, sizeof *v->sum);
  if (v->sum == NULL) return ptyc_fail(PTYC_E_NOMEM, "out of memory summing the patterns");
  for (int j = 0; j < v->held; j++)
    for (size_t i = 0; i < image; i++) v->sum[i] += ds->patterns[j * image + i];
  ptyc_status st = ptyc_comm_allreduce_host(comm, v->sum, image, PTYC_COMM_SUM);
  /* Rank 0's sum everywhere, to the last bit: later choices branch on it. */
  if (st == PTYC_OK) st = ptyc_comm_broadcast_host(comm, v->sum, sizeof(double) * image, 0);
  if (st != PTYC_OK) view_free(v);
  return st;
}

/* Pattern j of all N into out[M][M]; `work` holds M*M doubles. With several ranks the
 * owner's copy reaches every rank as a sum with everyone else's zeros (exact). */
static ptyc_status view_pattern(const pattern_view *v, int j, float *out, double *work) {
  size_t image = (size_t)v->ds->m * v->ds->m;
  int mine = j >= v->first && j < v->first + v->held;
  if (ptyc_comm_size(v->comm) == 1) {
    memcpy(out, v->ds->patterns + (size_t)(j - v->first) * image, sizeof(float) * image);
    return PTYC_OK;
  }
  for (size_t i = 0; i < image; i++)
    work[i] = mine ? v->ds->patterns[(size_t)(j - v->first) * image + i] : 0.0;
  PT_TRY(ptyc_comm_allreduce_host(v->comm, work, image, PTYC_COMM_SUM));
  for (size_t i = 0; i < image; i++) out[i] = (float)work[i];
  return PTYC_OK;
}

/* Index of the position nearest to position i, and its squared distance. */
static int nearest_neighbour(const ptyc_dataset *ds, int i, double *dist2) {
  int best_j = -1;
  double best = 1e300;
  for (int j = 0; j < ds->n_patterns; j++) {
    if (j == i) continue;
    double dy = ds->positions_px[2 * i] - ds->positions_px[2 * j];
    double dx = ds->positions_px[2 * i + 1] - ds->positions_px[2 * j + 1];
    double r = dy * dy + dx * dx;
    if (r < best) best = r, best_j = j;
  }
  *dist2 = best;
  return best_j;
}

/* Median distance from each position to its nearest neighbour (pixels). */
static double median_step(const ptyc_dataset *ds) {
  int n = ds->n_patterns;
  if (n < 2) return 0.0;
  double *d = malloc(sizeof(double) * n);
  if (d == NULL) return 0.0;
  for (int i = 0; i < n; i++) {
    double r2;
    nearest_neighbour(ds, i, &r2);
    d[i] = sqrt(r2);
  }
  for (int i = 1; i < n; i++) /* insertion sort: n is at most a few 10^4 */
    for (int j = i; j > 0 && d[j] < d[j - 1]; j--) {
      double t = d[j];
      d[j] = d[j - 1];
      d[j - 1] = t;
    }
  double med = d[n / 2];
  free(d);
  return med;
}

/* RMS radius of |mode|^2 about its centre of intensity. */
static double rms_radius(const ptyc_c32 *mode, int m) {
  double cy = 0, cx = 0, tot = 0, r2 = 0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double w = pt_cabs2(mode[y * m + x]);
      cy += w * y, cx += w * x, tot += w;
    }
  if (tot <= 0) return 0;
  cy /= tot, cx /= tot;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++)
      r2 += pt_cabs2(mode[y * m + x]) * ((y - cy) * (y - cy) + (x - cx) * (x - cx));
  return sqrt(r2 / tot);
}

/* mode = F^-1{ amplitude * exp(i c (u^2 + v^2) / M^2) }, centred in the window. */
static ptyc_status defocused_mode(ptyc_backend *be, ptyc_fft *plan, ptyc_buf buf,
                                  const float *amplitude, int m, double c, ptyc_c32 *mode) {
  for (int u = 0; u < m; u++)
    for (int v = 0; v < m; v++) {
      double fu = pt_freq_index(u, m), fv = pt_freq_index(v, m);
      double phase = c * (fu * fu + fv * fv) / ((double)m * m);
      float a = amplitude[u * m + v];
      mode[u * m + v] = pt_c32((float)(a * cos(phase)), (float)(a * sin(phase)));
    }
  PT_TRY(ptyc_buf_upload(be, buf, 0, mode, buf.nbytes));
  PT_TRY(ptyc_fft_exec(be, plan, buf, 1));
  PT_TRY(ptyc_buf_download(be, mode, buf, 0, buf.nbytes));
  fftshift_image(mode, m);
  return PTYC_OK;
}

/* The sign of the defocus, from the data. With far field A(q) exp(i c q^2 / M^2), the
 * pupil pixel q lights the sample at -c q / (pi M) from the beam centre (stationary
 * phase), so the bright field of a pattern holds a shadow image of the object, and
 * moving the beam by d moves that image by s = pi M d / c in the detector: the sign of
 * c is the sign of s . d. s is the peak of the cross-correlation of the shadow contrast
 * sqrt(I / mean I) - 1 inside the bright field, for neighbouring positions; up to 64
 * pairs vote, weighted by |s . d|. */
static ptyc_status defocus_sign(ptyc_backend *be, ptyc_fft *plan2, ptyc_buf pair,
                                const pattern_view *v, const float *amplitude, double *sign) {
  const ptyc_dataset *ds = v->ds;
  int m = ds->m, n = ds->n_patterns, pairs = n < 64 ? n : 64;
  size_t image = (size_t)m * m;
  ptyc_c32 *ab = malloc(sizeof(ptyc_c32) * 2 * image);
  float *pi = malloc(sizeof(float) * 2 * image), *pj = pi ? pi + image : NULL;
  double *work = malloc(sizeof(double) * image);
  if (ab == NULL || pi == NULL || work == NULL) {
    free(ab);
    free(pi);
    free(work);
    return ptyc_fail(PTYC_E_NOMEM, "out of memory estimating the defocus");
  }
  double vote = 0.0;
  ptyc_status st = PTYC_OK;
  float bright_level = 0.f; /* the bright field: above 30 % of the brightest amplitude */
  for (size_t t = 0; t < image; t++)
    if (amplitude[t] > bright_level) bright_level = amplitude[t];
  bright_level *= 0.3f;
  for (int p = 0; p < pairs && n > 1; p++) {
    int i = (int)((long)p * n / pairs), j;
    double r2;
    j = nearest_neighbour(ds, i, &r2);
    PT_CHECK(view_pattern(v, i, pi, work));
    PT_CHECK(view_pattern(v, j, pj, work));
    for (size_t t = 0; t < image; t++) { /* the shadow's contrast inside the bright field */
      int bright = amplitude[t] > bright_level;
      float ai = amplitude[t] > 0.f ? sqrtf(pi[t]) / amplitude[t] - 1.f : 0.f;
      float aj = amplitude[t] > 0.f ? sqrtf(pj[t]) / amplitude[t] - 1.f : 0.f;
      ab[t] = pt_c32(bright ? ai : 0.f, 0.f);
      ab[image + t] = pt_c32(bright ? aj : 0.f, 0.f);
    }
    PT_CHECK(ptyc_buf_upload(be, pair, 0, ab, pair.nbytes));
    PT_CHECK(ptyc_fft_exec(be, plan2, pair, 0));
    PT_CHECK(ptyc_buf_download(be, ab, pair, 0, pair.nbytes));
    for (size_t t = 0; t < image; t++) ab[t] = pt_cmulc(ab[t], ab[image + t]); /* B conj(A) */
    PT_CHECK(ptyc_buf_upload(be, pair, 0, ab, pair.nbytes));
    PT_CHECK(ptyc_fft_exec(be, plan2, pair, 1));
    PT_CHECK(ptyc_buf_download(be, ab, pair, 0, pair.nbytes));
    size_t peak = 0;
    for (size_t t = 1; t < image; t++)
      if (ab[t].re > ab[peak].re) peak = t;
    double sy = pt_freq_index((int)(peak / m), m), sx = pt_freq_index((int)(peak % m), m);
    double dy = ds->positions_px[2 * j] - ds->positions_px[2 * i];
    double dx = ds->positions_px[2 * j + 1] - ds->positions_px[2 * i + 1];
    vote += sy * dy + sx * dx;
  }
  *sign = vote < 0.0 ? -1.0 : 1.0;
fail:
  free(ab);
  free(pi);
  free(work);
  return st;
}

/* First mode from the data: the far field is the square root of the mean pattern (the
 * back-propagated mean pattern). Its phase is unknown and so is the beam size, which
 * the far-field intensity does not hold (a defocus is a pupil phase). Scans are laid
 * out for about 70 % linear overlap, so the beam diameter D ~ step / (1 - 0.7); a
 * defocus phase is added until the RMS radius of the beam is that of a disc of
 * diameter D, D / (2 sqrt 2). A beam that is already large keeps a flat phase. */
static ptyc_status probe_from_data(ptyc_backend *be, const pattern_view *v, ptyc_c32 *mode) {
  const ptyc_dataset *ds = v->ds;
  int m = ds->m;
  size_t image = (size_t)m * m;
  float *amplitude = malloc(sizeof(float) * image);
  ptyc_buf buf = {0}, pair = {0};
  ptyc_fft *plan = NULL, *plan2 = NULL;
  ptyc_status st = PTYC_OK;
  if (amplitude == NULL)
    PT_FAIL(PTYC_E_NOMEM, "out of memory making the initial probe");
  for (size_t i = 0; i < image; i++) {
    int valid = ds->mask == NULL || ds->mask[i];
    amplitude[i] = valid ? (float)sqrt(v->sum[i] / ds->n_patterns) : 0.f;
  }
  PT_CHECK(ptyc_buf_alloc(be, image * sizeof(ptyc_c32), &buf));
  PT_CHECK(ptyc_fft_plan(be, m, 1, &plan));

  double target = median_step(ds) / (1.0 - 0.7) / (2.0 * sqrt(2.0));
  if (target > m / 4.0) target = m / 4.0; /* keep the beam well inside the window */
  PT_CHECK(defocused_mode(be, plan, buf, amplitude, m, 0.0, mode));
  if (rms_radius(mode, m) < target) {
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 40; i++) { /* grow hi until the beam is too large */
      PT_CHECK(defocused_mode(be, plan, buf, amplitude, m, hi, mode));
      if (rms_radius(mode, m) >= target) break;
      lo = hi;
      hi *= 2.0;
    }
    for (int i = 0; i < 30; i++) { /* bisection on the defocus */
      double mid = 0.5 * (lo + hi);
      PT_CHECK(defocused_mode(be, plan, buf, amplitude, m, mid, mode));
      if (rms_radius(mode, m) < target) lo = mid; else hi = mid;
    }
    double sign = 1.0;
    PT_CHECK(ptyc_buf_alloc(be, 2 * image * sizeof(ptyc_c32), &pair));
    PT_CHECK(ptyc_fft_plan(be, m, 2, &plan2));
    PT_CHECK(defocus_sign(be, plan2, pair, v, amplitude, &sign));
    PT_CHECK(defocused_mode(be, plan, buf, amplitude, m, sign * 0.5 * (lo + hi), mode));
  }
fail:
  ptyc_fft_free(be, plan);
  ptyc_fft_free(be, plan2);
  ptyc_buf_free(be, &buf);
  ptyc_buf_free(be, &pair);
  free(amplitude);
  return st;
}

#define MODEL_PI 3.14159265358979323846

/* The mean pattern's bright region (the pupil): its valid pixels above half the
 * brightest one. The sum of the patterns stands for their mean: the same region. */
static double brightest(const pattern_view *v) {
  const ptyc_dataset *ds = v->ds;
  double peak = 0.0;
  for (size_t i = 0; i < (size_t)ds->m * ds->m; i++)
    if ((ds->mask == NULL || ds->mask[i]) && v->sum[i] > peak) peak = v->sum[i];
  return peak;
}
static int is_bright(const pattern_view *v, size_t i, double peak) {
  return (v->ds->mask == NULL || v->ds->mask[i]) && peak > 0.0 && v->sum[i] > 0.5 * peak;
}

/* Diameter (detector pixels) of the bright disc of the mean pattern: the disc of the
 * same area as its bright region. 0 if nothing is bright. */
static double bright_disc_diameter(const pattern_view *v) {
  size_t image = (size_t)v->ds->m * v->ds->m, bright = 0;
  double peak = brightest(v);
  for (size_t i = 0; i < image; i++) bright += is_bright(v, i, peak);
  return 2.0 * sqrt((double)bright / MODEL_PI);
}

/* First mode from an aperture model (probe.init = "aperture"): in the far field a disc
 * of diameter D = probe.aperture_diameter_px (or bright_disc_diameter) with an
 * anti-aliased edge and the defocus phase a (rho / R)^2, R = D / 2, then
 * back-propagated and centred in the window. a is probe.defocus, or from
 * probe.defocus_m the Fresnel propagator's phase -pi lambda z k^2 at the pupil edge,
 * whose spatial frequency is k = R / (M dx). */
static ptyc_status probe_from_aperture(ptyc_backend *be, const pattern_view *view,
                                       const ptyc_probe_options *po, ptyc_c32 *mode) {
  const ptyc_dataset *ds = view->ds;
  int m = ds->m;
  size_t image = (size_t)m * m;
  if (po->defocus != 0.0 && po->defocus_m != 0.0)
    return ptyc_fail(PTYC_E_CONFIG, "probe.defocus = %g and probe.defocus_m = %g: set one of "
                                    "them, not both", po->defocus, po->defocus_m);
  double diameter = po->aperture_diameter_px > 0.0 ? po->aperture_diameter_px
                                                    : bright_disc_diameter(view);
  if (!(diameter > 0.0))
    return ptyc_fail(PTYC_E_FORMAT, "the mean pattern shows no bright disc to size the "
                                    "aperture: set probe.aperture_diameter_px");
  double radius = 0.5 * diameter, edge_phase = po->defocus;
  if (po->defocus_m != 0.0) {
    if (!(ds->wavelength_m > 0.0) || !(ds->object_pixel_size_m > 0.0))
      return ptyc_fail(PTYC_E_CONFIG, "probe.defocus_m needs the wavelength and the object "
                                      "pixel size, which the dataset does not give: set "
                                      "probe.defocus (radians at the pupil edge) instead, or "
                                      "data.energy_ev and data.object_pixel_size_m");
    double k_edge = radius / (m * ds->object_pixel_size_m);
    edge_phase = -MODEL_PI * ds->wavelength_m * po->defocus_m * k_edge * k_edge;
  }
  float *amplitude = malloc(sizeof(float) * image);
  ptyc_buf buf = {0};
  ptyc_fft *plan = NULL;
  ptyc_status st = PTYC_OK;
  if (amplitude == NULL) PT_FAIL(PTYC_E_NOMEM, "out of memory making the initial probe");
  for (int u = 0; u < m; u++)
    for (int v = 0; v < m; v++) {
      double fu = pt_freq_index(u, m), fv = pt_freq_index(v, m);
      double edge = radius - sqrt(fu * fu + fv * fv) + 0.5; /* 1 px anti-aliased edge */
      amplitude[u * m + v] = (float)(edge <= 0.0 ? 0.0 : edge >= 1.0 ? 1.0 : edge);
    }
  PT_CHECK(ptyc_buf_alloc(be, image * sizeof(ptyc_c32), &buf));
  PT_CHECK(ptyc_fft_plan(be, m, 1, &plan));
  /* defocused_mode's phase c (u^2 + v^2) / M^2 equals a (rho / R)^2 for c = a M^2 / R^2 */
  PT_CHECK(defocused_mode(be, plan, buf, amplitude, m, edge_phase * m * m / (radius * radius),
                          mode));
fail:
  ptyc_fft_free(be, plan);
  ptyc_buf_free(be, &buf);
  free(amplitude);
  return st;
}

static double power(const ptyc_c32 *x, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += pt_cabs2(x[i]);
  return s;
}

/* Mode k >= 1: the first mode times a low-order polynomial in (y, x) about its centre
 * of intensity (x, y, xy, x^2 - y^2, ...), made orthogonal to the earlier modes and
 * given `rel_power` of the first mode's power. Deterministic, no randomness needed. */
static void add_mode(ptyc_c32 *modes, int k, int m, double rel_power) {
  size_t image = (size_t)m * m;
  const ptyc_c32 *p0 = modes;
  ptyc_c32 *pk = modes + k * image;
  double cy = 0, cx = 0, tot = 0, r2 = 0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double w = pt_cabs2(p0[y * m + x]);
      cy += w * y;
      cx += w * x;
      tot += w;
    }
  cy /= tot;
  cx /= tot;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) r2 += pt_cabs2(p0[y * m + x]) * ((y - cy) * (y - cy) + (x - cx) * (x - cx));
  double sigma = sqrt(r2 / tot) + 1e-9;
  static const int powers[][2] = {{0, 1}, {1, 0}, {1, 1}, {2, 0}, {0, 2}, {2, 1}, {1, 2},
                                  {3, 0}, {0, 3}, {2, 2}, {3, 1}, {1, 3}, {4, 0}, {0, 4}, {3, 2}};
  int py = powers[(k - 1) % 15][0], px = powers[(k - 1) % 15][1];
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double f = pow((y - cy) / sigma, py) * pow((x - cx) / sigma, px);
      pk[y * m + x] = pt_cscale(p0[y * m + x], (float)f);
    }
  for (int j = 0; j < k; j++) { /* Gram-Schmidt against modes 0..k-1 */
    const ptyc_c32 *pj = modes + j * image;
    double re = 0, im = 0, nj = power(pj, image);
    for (size_t i = 0; i < image; i++) {
      ptyc_c32 z = pt_cmulc(pj[i], pk[i]);
      re += z.re;
      im += z.im;
    }
    ptyc_c32 c = pt_c32((float)(re / nj), (float)(im / nj));
    for (size_t i = 0; i < image; i++) pk[i] = pt_csub(pk[i], pt_cmul(c, pj[i]));
  }
  double pkp = power(pk, image);
  float s = pkp > 0 ? (float)sqrt(rel_power * power(p0, image) / pkp) : 0.f;
  for (size_t i = 0; i < image; i++) pk[i] = pt_cscale(pk[i], s);
}

static ptyc_status initial_probe(ptyc_backend *be, const pattern_view *v,
                                 const ptyc_options *opts, ptyc_c32 *probe) {
  const ptyc_dataset *ds = v->ds;
  int k_modes = opts->probe.modes, m = ds->m;
  size_t image = (size_t)m * m;
  int from_file = ds->probe ? (ds->probe_modes < k_modes ? ds->probe_modes : k_modes) : 0;
  const char *init = opts->probe.init; /* "auto" (or ""), "data", "aperture", "file" */
  if (strcmp(init, "file") == 0 && from_file == 0)
    return ptyc_fail(PTYC_E_CONFIG, "probe.init = \"file\" but the dataset holds no probe "
                                    "(or the options dropped it): use \"auto\", \"data\" or "
                                    "\"aperture\"");
  if (strcmp(init, "data") == 0 || strcmp(init, "aperture") == 0) from_file = 0;
  if (from_file > 0)
    memcpy(probe, ds->probe, sizeof(ptyc_c32) * image * from_file);
  else if (strcmp(init, "aperture") == 0)
    PT_TRY(probe_from_aperture(be, v, &opts->probe, probe));
  else
    PT_TRY(probe_from_data(be, v, probe));
  if (power(probe, image) <= 0.0)
    return ptyc_fail(PTYC_E_FORMAT, "the initial probe is zero: give /probe in the dataset or "
                                    "check that the patterns hold counts");
  for (int k = from_file > 0 ? from_file : 1; k < k_modes; k++)
    add_mode(probe, k, m, opts->probe.extra_mode_power);

  /* Scale so that the model's mean total intensity (object of ones; Parseval: M^2 times
   * the probe power) equals the data's. */
  double model_total = (double)image * power(probe, image * k_modes);
  double data_total = 0.0;
  for (size_t i = 0; i < image; i++) data_total += v->sum[i];
  data_total /= ds->n_patterns;
  if (!(data_total > 0.0))
    return ptyc_fail(PTYC_E_FORMAT, "the patterns hold no counts (all zero)");
  float s = (float)sqrt(data_total / model_total);
  for (size_t i = 0; i < image * k_modes; i++) probe[i] = pt_cscale(probe[i], s);
  return PTYC_OK;
}

ptyc_status ptyc_model_init(ptyc_backend *be, const ptyc_dataset *ds, const ptyc_options *opts,
                            ptyc_model *model) {
  return ptyc_model_init_comm(be, NULL, ds, opts, model);
}

/* probe.shift = "auto" takes the interpolating filter where it is both faster and
 * exact: on a GPU (where it saves two FFT passes per minibatch; on a CPU FFTW's small
 * transforms cost less than the filter) and for a probe whose spectrum lies within the
 * filter's accurate band (PT_INTERP_ACCURATE_BAND), where it errs by 1.2e-4. The probe's
 * spectrum is the pupil, the bright region of the mean pattern: its reach is the largest
 * spatial frequency, in cycles per pixel on either axis, of the valid pixels above half
 * the brightest one. (The power of the object's scattering in the pattern's tails is
 * not the probe's; a data-made initial probe carries some of it, 0.2 to 3 % in the
 * presets, which is why the pattern, not that probe, decides.) */
static double pupil_reach(const pattern_view *v) {
  int m = v->ds->m;
  double peak = brightest(v), reach = 0.0;
  for (int u = 0; u < m; u++)
    for (int w = 0; w < m; w++) {
      if (!is_bright(v, (size_t)u * m + w, peak)) continue;
      double f = fmax(fabs((double)pt_freq_index(u, m)), fabs((double)pt_freq_index(w, m))) / m;
      if (f > reach) reach = f;
    }
  return reach;
}

/* model->shift from probe.shift (see pupil_reach). */
static void resolve_shift(ptyc_backend *be, const ptyc_options *opts, const pattern_view *v,
                          ptyc_model *model) {
  model->pupil_reach = pupil_reach(v);
  model->shift = opts->probe.shift;
  if (model->shift == PTYC_SHIFT_AUTO)
    model->shift = strcmp(ptyc_backend_name(be), "cpu") != 0 &&
                           model->pupil_reach <= PT_INTERP_ACCURATE_BAND
                       ? PTYC_SHIFT_INTERPOLATE
                       : PTYC_SHIFT_FOURIER;
}

const char *ptyc_model_shift_reason(const ptyc_model *model, const ptyc_options *opts) {
  if (opts->probe.shift != PTYC_SHIFT_AUTO) return "as set by probe.shift";
  if (strcmp(ptyc_backend_name(model->be), "cpu") == 0)
    return "auto: on a CPU the Fourier ramp is the faster";
  return model->shift == PTYC_SHIFT_INTERPOLATE
             ? "auto: on a GPU, and the pupil lies within the filter's band"
             : "auto: the pupil reaches past the filter's band";
}

ptyc_status ptyc_model_init_comm(ptyc_backend *be, ptyc_comm *comm, const ptyc_dataset *ds,
                                 const ptyc_options *opts, ptyc_model *model) {
  memset(model, 0, sizeof *model);
  if (ds->share_count > 0 && ptyc_comm_size(comm) == 1 && ds->share_count < ds->n_patterns)
    return ptyc_fail(PTYC_E_ARG, "ptyc_model_init: the dataset holds a share of the patterns "
                                 "but no comm reaches the others");
  model->be = be;
  model->comm = comm;
  model->n_positions = ds->n_patterns;
  model->m = ds->m;
  model->n_modes = opts->probe.modes;
  model->object_pixel_size_m = ds->object_pixel_size_m;
  model->wavelength_m = ds->wavelength_m;
  model->detector_distance_m = ds->detector_distance_m;
  if (opts->output.ptychodus && !(ds->object_pixel_size_m > 0.0))
    return ptyc_fail(PTYC_E_CONFIG, "output.ptychodus needs the object pixel size (positions "
                                    "in metres), which the dataset does not give: set "
                                    "data.object_pixel_size_m");
  plan_grid(ds, opts->object.padding_px, model);

  int n = ds->n_patterns, m = ds->m, k_modes = opts->probe.modes;
  size_t image = (size_t)m * m, obj = (size_t)model->obj_h * model->obj_w;
  ptyc_c32 *host_object = NULL, *host_probe = NULL;
  float *host_mask = NULL;
  pattern_view view = {0};
  ptyc_status st = PTYC_OK;
  PT_CHECK(view_init(&view, ds, comm)); /* collective: before anything may fail alone */
  model->pattern_first = view.first;
  model->n_patterns_held = view.held;

  model->positions_host = malloc(sizeof(double) * 2 * n);
  host_object = malloc(sizeof(ptyc_c32) * obj);
  host_probe = calloc(image * k_modes, sizeof(ptyc_c32));
  if (!model->positions_host || !host_object || !host_probe)
    PT_FAIL(PTYC_E_NOMEM, "out of host memory for a %d x %d object", model->obj_h, model->obj_w);
  for (int j = 0; j < n; j++) {
    model->positions_host[2 * j] = ds->positions_px[2 * j] + model->offset_px[0];
    model->positions_host[2 * j + 1] = ds->positions_px[2 * j + 1] + model->offset_px[1];
  }
  for (size_t i = 0; i < obj; i++) host_object[i] = pt_c32(1.f, 0.f);
  PT_CHECK(initial_probe(be, &view, opts, host_probe));
  resolve_shift(be, opts, &view, model);

  model->pattern_nbytes = sizeof(float) * image * view.held; /* this rank's share */
  PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * obj, &model->object));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(ptyc_c32) * image * k_modes, &model->probe));
  PT_CHECK(ptyc_buf_alloc(be, sizeof(double) * 2 * n, &model->positions));
  model->streaming = opts->reconstructor.patterns == PTYC_PATTERNS_STREAM;
  if (model->streaming) {
    PT_CHECK(ptyc_host_alloc(be, model->pattern_nbytes, (void **)&model->patterns_host));
    memcpy(model->patterns_host, ds->patterns, model->pattern_nbytes);
  } else {
    PT_CHECK(ptyc_buf_alloc(be, model->pattern_nbytes, &model->patterns));
    PT_CHECK(ptyc_buf_upload(be, model->patterns, 0, ds->patterns, model->pattern_nbytes));
  }
  PT_CHECK(ptyc_buf_upload(be, model->object, 0, host_object, model->object.nbytes));
  PT_CHECK(ptyc_buf_upload(be, model->probe, 0, host_probe, model->probe.nbytes));
  PT_CHECK(ptyc_buf_upload(be, model->positions, 0, model->positions_host, model->positions.nbytes));
  if (ds->mask) {
    host_mask = malloc(sizeof(float) * image);
    if (host_mask == NULL) PT_FAIL(PTYC_E_NOMEM, "out of host memory for the mask");
    for (size_t i = 0; i < image; i++) host_mask[i] = ds->mask[i] ? 1.f : 0.f;
    PT_CHECK(ptyc_buf_alloc(be, sizeof(float) * image, &model->mask));
    PT_CHECK(ptyc_buf_upload(be, model->mask, 0, host_mask, model->mask.nbytes));
  }
  double mean_sum = 0.0;
  for (size_t i = 0; i < image; i++) mean_sum += view.sum[i];
  model->mean_pattern_sum = mean_sum / n;
  PT_CHECK(ptyc_backend_sync(be)); /* uploads done: host arrays may go */
fail:
  view_free(&view);
  free(host_object);
  free(host_probe);
  free(host_mask);
  if (st != PTYC_OK) ptyc_model_free(model);
  return st;
}

void ptyc_model_plan(const ptyc_dataset *ds, const ptyc_options *opts, int *obj_h, int *obj_w,
                     size_t *nbytes) {
  ptyc_model shape = {0};
  plan_grid(ds, opts->object.padding_px, &shape);
  size_t image = (size_t)ds->m * ds->m;
  *obj_h = shape.obj_h;
  *obj_w = shape.obj_w;
  *nbytes = sizeof(ptyc_c32) * ((size_t)shape.obj_h * shape.obj_w + image * opts->probe.modes) +
            sizeof(double) * 2 * ds->n_patterns +
            sizeof(float) * image * ptyc_dataset_patterns_held(ds) +
            (ds->mask ? sizeof(float) * image : 0);
}

void ptyc_model_free(ptyc_model *model) {
  if (model == NULL) return;
  ptyc_buf_free(model->be, &model->object);
  ptyc_buf_free(model->be, &model->probe);
  ptyc_buf_free(model->be, &model->positions);
  ptyc_buf_free(model->be, &model->patterns);
  ptyc_buf_free(model->be, &model->mask);
  ptyc_host_free(model->be, model->patterns_host);
  model->patterns_host = NULL;
  free(model->positions_host);
  model->positions_host = NULL;
}

ptyc_status ptyc_model_download(ptyc_model *model, ptyc_recon *recon) {
  size_t obj = (size_t)model->obj_h * model->obj_w;
  size_t probe = (size_t)model->n_modes * model->m * model->m;
  ptyc_c32 *o = realloc(recon->object, sizeof(ptyc_c32) * obj);
  if (o) recon->object = o;
  ptyc_c32 *p = realloc(recon->probe, sizeof(ptyc_c32) * probe);
  if (p) recon->probe = p;
  double *pos = realloc(recon->positions_px, sizeof(double) * 2 * model->n_positions);
  if (pos) recon->positions_px = pos;
  if (!o || !p || !pos) return ptyc_fail(PTYC_E_NOMEM, "out of host memory copying results");
  recon->obj_h = model->obj_h;
  recon->obj_w = model->obj_w;
  recon->n_modes = model->n_modes;
  recon->m = model->m;
  recon->n_positions = model->n_positions;
  recon->object_pixel_size_m = model->object_pixel_size_m;
  recon->wavelength_m = model->wavelength_m;
  recon->detector_distance_m = model->detector_distance_m;
  PT_TRY(ptyc_buf_download(model->be, recon->object, model->object, 0, model->object.nbytes));
  PT_TRY(ptyc_buf_download(model->be, recon->probe, model->probe, 0, model->probe.nbytes));
  return ptyc_buf_download(model->be, recon->positions_px, model->positions, 0,
                           model->positions.nbytes);
}
