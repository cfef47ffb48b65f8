/* Every CUDA op against the CPU reference, through the public API only.
 *
 * Each op runs on fresh random inputs (never zeros) on both backends; outputs that the
 * op only writes are poisoned first (all bytes 0xFF: NaN as float and as double), so
 * an output the GPU leaves unwritten fails. The error is ||gpu - cpu|| / ||cpu|| over
 * all values, printed for every op. Skips (77) without a usable GPU or without CUDA in
 * the build.
 *
 * Tolerances (see the comment at each use for anything looser):
 *  TOL_SAME    the same float operations in the same order; only contraction differs
 *              (nvcc fuses a*b+c into one FMA, gcc on x86-64 does not): ~1 ulp.
 *  TOL_FAST    the kernels build with --use_fast_math, so sqrtf and float division are
 *              approximate (~2 ulp) and (Gaussian) sqrt(d/I) - 1 can cancel; also
 *              sin/cos of the shift ramps in double rounded to float.
 *  TOL_ATOMIC  float atomics add the overlapping patches in a run-dependent order:
 *              about one rounding per overlapping batch entry.
 *  TOL_DOUBLE  double accumulation in another order (tree vs sequential).
 *  TOL_FFT     cuFFT and FFTW use different algorithms (and Bluestein for odd sizes);
 *              each is accurate to ~1e-7 * log2(M^2) in float. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/backend.h"
#include "rng.h"
#include "test_util.h"

#define TOL_SAME 1e-6
#define TOL_FAST 1e-5
#define TOL_ATOMIC 1e-5
#define TOL_DOUBLE 1e-12
#define TOL_FFT 2e-5

#define SEED 20240611u

static ptyc_backend *cpu, *gpu;
static uint64_t draw_index = 0; /* the next random number's index */

/* ---- random inputs --------------------------------------------------------------------- */

static double uniform(double lo, double hi) {
  return lo + (hi - lo) * pt_rng_uniform(SEED, 1, draw_index++);
}

static void *xmalloc(size_t nbytes) {
  void *p = malloc(nbytes ? nbytes : 1);
  if (p == NULL) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", nbytes);
    exit(1);
  }
  return p;
}

/* Complex values with re, im in [-scale, scale]. */
static ptyc_c32 *random_c32(size_t n, float scale) {
  ptyc_c32 *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++)
    x[i] = pt_c32((float)uniform(-scale, scale), (float)uniform(-scale, scale));
  return x;
}

static float *random_f32(size_t n, double lo, double hi) {
  float *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (float)uniform(lo, hi);
  return x;
}

static double *random_f64(size_t n, double lo, double hi) {
  double *x = xmalloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
  return x;
}

/* ---- one buffer on each backend ----------------------------------------------------------- */

typedef struct twin {
  ptyc_buf c, g; /* on the CPU backend, on the CUDA backend */
  size_t nbytes;
} twin;

static twin twin_upload(const void *host, size_t nbytes) {
  twin t = {.nbytes = nbytes};
  REQUIRE_OK(ptyc_buf_alloc(cpu, nbytes, &t.c));
  REQUIRE_OK(ptyc_buf_alloc(gpu, nbytes, &t.g));
  REQUIRE_OK(ptyc_buf_upload(cpu, t.c, 0, host, nbytes));
  REQUIRE_OK(ptyc_buf_upload(gpu, t.g, 0, host, nbytes));
  return t;
}

/* An output buffer filled with NaN (every byte 0xFF) on both sides. */
static twin twin_poison(size_t nbytes) {
  unsigned char *p = xmalloc(nbytes);
  memset(p, 0xFF, nbytes);
  twin t = twin_upload(p, nbytes);
  free(p);
  return t;
}

static void twin_free(twin *t) {
  ptyc_buf_free(cpu, &t->c);
  ptyc_buf_free(gpu, &t->g);
}

/* ||gpu - cpu|| / ||cpu|| over the whole buffer, read as floats or doubles (complex
 * buffers as pairs of floats). A non-finite GPU value (e.g. unwritten poison) or any
 * disagreement in finiteness gives +inf. */
static double twin_error(twin t, int doubles) {
  void *hc = xmalloc(t.nbytes), *hg = xmalloc(t.nbytes);
  REQUIRE_OK(ptyc_buf_download(cpu, hc, t.c, 0, t.nbytes));
  REQUIRE_OK(ptyc_buf_download(gpu, hg, t.g, 0, t.nbytes));
  size_t n = t.nbytes / (doubles ? sizeof(double) : sizeof(float));
  double diff = 0.0, norm = 0.0;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double c = doubles ? ((double *)hc)[i] : ((float *)hc)[i];
    double g = doubles ? ((double *)hg)[i] : ((float *)hg)[i];
    if (!isfinite(g) || !isfinite(c)) {
      bad = 1;
      continue;
    }
    diff += (g - c) * (g - c);
    norm += c * c;
  }
  free(hc);
  free(hg);
  if (bad) return INFINITY;
  return norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
}

static const char *case_name = "";

static void report(const char *what, double err, double tol) {
  printf("  %-10s %-44s rel err %.3e  (tol %.0e)%s\n", case_name, what, err, tol,
         err <= tol ? "" : "  FAILED");
  EXPECT_LE(err, tol);
}

static void check_f32(const char *what, twin t, double tol) { report(what, twin_error(t, 0), tol); }
static void check_f64(const char *what, twin t, double tol) { report(what, twin_error(t, 1), tol); }

/* ---- the scan -------------------------------------------------------------------------------- */

/* A geometry: the batch is n entries starting at order index `first` of N = n + 2 first
 * positions, so that `first` and the order permutation are exercised. */
typedef struct test_case {
  const char *name;
  int m, k, n, first, h, w;
} test_case;

typedef struct scan_pair {
  ptyc_scan c, g;
  double *pos;    /* host copies */
  int32_t *order;
  twin positions, order_buf;
} scan_pair;

static scan_pair make_scan(const test_case *tc) {
  scan_pair s;
  int n_pos = tc->n + 2 * tc->first;
  s.pos = xmalloc(sizeof(double) * 2 * n_pos);
  s.order = xmalloc(sizeof(int32_t) * n_pos);
  for (int j = 0; j < n_pos; j++) { /* top-left corners with random fractions, inside */
    s.pos[2 * j] = uniform(0.0, tc->h - tc->m - 1.0);
    s.pos[2 * j + 1] = uniform(0.0, tc->w - tc->m - 1.0);
    s.order[j] = j;
  }
  pt_rng_shuffle_i32(SEED, 2, s.order, n_pos);
  s.positions = twin_upload(s.pos, sizeof(double) * 2 * n_pos);
  s.order_buf = twin_upload(s.order, sizeof(int32_t) * n_pos);
  ptyc_scan base = {.m = tc->m, .n_modes = tc->k, .obj_h = tc->h, .obj_w = tc->w,
                    .n_positions = n_pos};
  s.c = base;
  s.c.positions = s.positions.c;
  s.c.order = s.order_buf.c;
  s.g = base;
  s.g.positions = s.positions.g;
  s.g.order = s.order_buf.g;
  return s;
}

static void free_scan(scan_pair *s) {
  twin_free(&s->positions);
  twin_free(&s->order_buf);
  free(s->pos);
  free(s->order);
}

static size_t pixels(const test_case *tc) { return (size_t)tc->m * tc->m; }
static size_t batch_values(const test_case *tc) { return (size_t)tc->n * tc->k * pixels(tc); }
static size_t object_values(const test_case *tc) { return (size_t)tc->h * tc->w; }

/* ---- memory and FFT --------------------------------------------------------------------------- */

/* Uploads large (pageable path) and small (pinned staging path, twice in a row), at
 * an offset; zero and copy of sub-ranges. */
static void test_memory(void) {
  size_t big = (size_t)3 << 20, small = 4096;
  unsigned char *a = xmalloc(big), *b = xmalloc(big);
  for (size_t i = 0; i < big; i++) a[i] = (unsigned char)(i * 131u + 7u);
  ptyc_buf x, y;
  REQUIRE_OK(ptyc_buf_alloc(gpu, big + 64, &x));
  REQUIRE_OK(ptyc_buf_alloc(gpu, small, &y));
  REQUIRE_OK(ptyc_buf_upload(gpu, x, 64, a, big));
  REQUIRE_OK(ptyc_buf_download(gpu, b, x, 64, big));
  EXPECT(memcmp(a, b, big) == 0);
  REQUIRE_OK(ptyc_buf_upload(gpu, y, 0, a, small));      /* staging, then reused at once */
  REQUIRE_OK(ptyc_buf_upload(gpu, x, 0, a + 100, small)); /* for the next upload */
  REQUIRE_OK(ptyc_buf_download(gpu, b, y, 0, small));
  EXPECT(memcmp(a, b, small) == 0);
  REQUIRE_OK(ptyc_buf_download(gpu, b, x, 0, small));
  EXPECT(memcmp(a + 100, b, small) == 0);
  REQUIRE_OK(ptyc_buf_zero(gpu, y, 16, 32));
  REQUIRE_OK(ptyc_buf_copy(gpu, y, 1024, x, 8, 256));
  REQUIRE_OK(ptyc_buf_download(gpu, b, y, 0, small));
  int zero_ok = 1;
  for (int i = 16; i < 48; i++) zero_ok &= b[i] == 0;
  EXPECT(zero_ok);
  EXPECT(memcmp(b, a, 16) == 0 && memcmp(b + 48, a + 48, 1024 - 48) == 0);
  EXPECT(memcmp(b + 1024, a + 108, 256) == 0);
  ptyc_buf_free(gpu, &x);
  ptyc_buf_free(gpu, &y);
  free(a);
  free(b);
  printf("  %-10s memory (upload paths, zero, copy) checked\n", "");
}

/* 256 x 256: on Hopper our one-pass kernel (kernels_fft256.cu), not cuFFT. A plan of
 * 7 transforms, all of them and then the first 5 (ptyc_fft_exec_count), both ways. */
static void test_fft256(void) {
  case_name = "fft256";
  const int m = 256, planned = 7, some = 5;
  size_t n = (size_t)planned * m * m;
  ptyc_c32 *x = random_c32(n, 1.f);
  twin data = twin_upload(x, n * sizeof *x);
  ptyc_fft *pc, *pg;
  REQUIRE_OK(ptyc_fft_plan(cpu, m, planned, &pc));
  REQUIRE_OK(ptyc_fft_plan(gpu, m, planned, &pg));
  for (int inverse = 0; inverse <= 1; inverse++) {
    REQUIRE_OK(ptyc_fft_exec(cpu, pc, data.c, inverse));
    REQUIRE_OK(ptyc_fft_exec(gpu, pg, data.g, inverse));
    check_f32(inverse ? "fft256 forward + inverse" : "fft256 forward", data, TOL_FFT);
    REQUIRE_OK(ptyc_fft_exec_count(cpu, pc, data.c, some, inverse));
    REQUIRE_OK(ptyc_fft_exec_count(gpu, pg, data.g, some, inverse));
    check_f32(inverse ? "fft256 first 5, inverse" : "fft256 first 5, forward", data, TOL_FFT);
  }
  ptyc_fft_free(cpu, pc);
  ptyc_fft_free(gpu, pg);
  twin_free(&data);
  free(x);
}

static void test_fft(const test_case *tc) {
  size_t n = batch_values(tc);
  ptyc_c32 *x = random_c32(n, 1.f);
  twin data = twin_upload(x, n * sizeof *x);
  ptyc_fft *pc, *pg;
  REQUIRE_OK(ptyc_fft_plan(cpu, tc->m, tc->n * tc->k, &pc));
  REQUIRE_OK(ptyc_fft_plan(gpu, tc->m, tc->n * tc->k, &pg));
  REQUIRE_OK(ptyc_fft_exec(cpu, pc, data.c, 0));
  REQUIRE_OK(ptyc_fft_exec(gpu, pg, data.g, 0));
  check_f32("fft forward", data, TOL_FFT);
  REQUIRE_OK(ptyc_fft_exec(cpu, pc, data.c, 1));
  REQUIRE_OK(ptyc_fft_exec(gpu, pg, data.g, 1));
  check_f32("fft forward + inverse", data, TOL_FFT);
  ptyc_fft_free(cpu, pc);
  ptyc_fft_free(gpu, pg);
  twin_free(&data);
  free(x);
}

/* ---- element-wise and reductions ------------------------------------------------------------- */

static void test_elementwise(const test_case *tc) {
  size_t count = batch_values(tc), den_count = pixels(tc);
  ptyc_c32 *x = random_c32(count, 2.f), *y = random_c32(count, 2.f);
  double *xd = random_f64(count, -3.0, 5.0), *start = random_f64(1, 1.0, 2.0);
  float *weights = random_f32(13, 0.1, 1.5), *den = random_f32(den_count, 0.0, 10.0);
  twin tx = twin_upload(x, count * sizeof *x), ty = twin_upload(y, count * sizeof *y);
  twin txd = twin_upload(xd, count * sizeof *xd), tw = twin_upload(weights, 13 * sizeof(float));
  twin tden = twin_upload(den, den_count * sizeof(float));

  REQUIRE_OK(ptyc_op_scale(cpu, ty.c, count, 0.37f));
  REQUIRE_OK(ptyc_op_scale(gpu, ty.g, count, 0.37f));
  check_f32("scale", ty, TOL_SAME);

  for (int accumulate = 0; accumulate <= 1; accumulate++) {
    twin out = accumulate ? twin_upload(start, sizeof(double)) : twin_poison(sizeof(double));
    REQUIRE_OK(ptyc_op_norm2(cpu, tx.c, count, out.c, accumulate));
    REQUIRE_OK(ptyc_op_norm2(gpu, tx.g, count, out.g, accumulate));
    check_f64(accumulate ? "norm2 (accumulate)" : "norm2", out, TOL_DOUBLE);
    REQUIRE_OK(ptyc_op_sum(cpu, txd.c, count, out.c, accumulate));
    REQUIRE_OK(ptyc_op_sum(gpu, txd.g, count, out.g, accumulate));
    check_f64(accumulate ? "sum (accumulate)" : "sum", out, TOL_DOUBLE);
    twin_free(&out);
  }

  REQUIRE_OK(ptyc_op_axpy_mean(cpu, tw.c, 13, tx.c, count, ty.c));
  REQUIRE_OK(ptyc_op_axpy_mean(gpu, tw.g, 13, tx.g, count, ty.g));
  check_f32("axpy_mean", ty, TOL_SAME);

  /* target is read (beta * target): random, not poisoned. */
  REQUIRE_OK(ptyc_op_precondition(cpu, tx.c, count, tden.c, den_count, 0.1, 0.5f, ty.c));
  REQUIRE_OK(ptyc_op_precondition(gpu, tx.g, count, tden.g, den_count, 0.1, 0.5f, ty.g));
  check_f32("precondition", ty, TOL_FAST);

  twin *ts[] = {&tx, &ty, &txd, &tw, &tden};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) twin_free(ts[i]);
  free(x), free(y), free(xd), free(start), free(weights), free(den);
}

/* ---- forward model ------------------------------------------------------------------------------ */

static void test_shifts(const test_case *tc, const scan_pair *s) {
  size_t modes = (size_t)tc->k * pixels(tc), batch = batch_values(tc);
  ptyc_c32 *spectrum = random_c32(modes, 5.f), *spectra = random_c32(batch, 5.f);
  ptyc_c32 *acc0 = random_c32(modes, 1.f);
  twin tspec = twin_upload(spectrum, modes * sizeof(ptyc_c32));
  twin tspectra = twin_upload(spectra, batch * sizeof(ptyc_c32));
  twin tacc = twin_upload(acc0, modes * sizeof(ptyc_c32));
  twin tout = twin_poison(batch * sizeof(ptyc_c32));
  float scale = 1.f / (float)pixels(tc);

  REQUIRE_OK(ptyc_op_shift_spectrum(cpu, &s->c, tc->first, tc->n, tspec.c, scale, tout.c));
  REQUIRE_OK(ptyc_op_shift_spectrum(gpu, &s->g, tc->first, tc->n, tspec.g, scale, tout.g));
  check_f32("shift_spectrum", tout, TOL_FAST);

  REQUIRE_OK(ptyc_op_unshift_accumulate(cpu, &s->c, tc->first, tc->n, tspectra.c, 0.7f, tacc.c));
  REQUIRE_OK(ptyc_op_unshift_accumulate(gpu, &s->g, tc->first, tc->n, tspectra.g, 0.7f, tacc.g));
  check_f32("unshift_accumulate", tacc, TOL_FAST);

  twin_free(&tspec), twin_free(&tspectra), twin_free(&tacc), twin_free(&tout);
  free(spectrum), free(spectra), free(acc0);
}

/* The interpolated shift, with and without the exit waves, and its adjoint with and
 * without the object and den. The filter's weights are double functions of the
 * fraction rounded to float (TOL_FAST); the adjoint adds groups of 8 entries with
 * float atomics (TOL_ATOMIC). */
static void test_interp(const test_case *tc, const scan_pair *s) {
  size_t modes = (size_t)tc->k * pixels(tc), batch = batch_values(tc), obj = object_values(tc);
  ptyc_c32 *probe = random_c32(modes, 3.f), *object = random_c32(obj, 1.f);
  ptyc_c32 *chi = random_c32(batch, 1.f), *acc0 = random_c32(modes, 1.f);
  float *den0 = random_f32(pixels(tc), 0.5, 2.0);
  twin tprobe = twin_upload(probe, modes * sizeof(ptyc_c32));
  twin tobj = twin_upload(object, obj * sizeof(ptyc_c32));
  twin tchi = twin_upload(chi, batch * sizeof(ptyc_c32));
  twin tprobes = twin_poison(batch * sizeof(ptyc_c32)), tpsi = twin_poison(batch * sizeof(ptyc_c32));
  ptyc_buf none = {0};
  REQUIRE_OK(ptyc_op_interp_shift(cpu, &s->c, tc->first, tc->n, tprobe.c, none, tprobes.c, none));
  REQUIRE_OK(ptyc_op_interp_shift(gpu, &s->g, tc->first, tc->n, tprobe.g, none, tprobes.g, none));
  check_f32("interp_shift", tprobes, TOL_FAST);
  REQUIRE_OK(ptyc_op_interp_shift(cpu, &s->c, tc->first, tc->n, tprobe.c, tobj.c, tprobes.c, tpsi.c));
  REQUIRE_OK(ptyc_op_interp_shift(gpu, &s->g, tc->first, tc->n, tprobe.g, tobj.g, tprobes.g, tpsi.g));
  check_f32("interp_shift + exit waves: psi", tpsi, TOL_FAST);
  for (int with_object = 0; with_object <= 1; with_object++) {
    twin tacc = twin_upload(acc0, modes * sizeof(ptyc_c32)); /* accumulated into */
    twin tden = twin_upload(den0, pixels(tc) * sizeof(float));
    REQUIRE_OK(ptyc_op_interp_unshift_accumulate(cpu, &s->c, tc->first, tc->n,
                                                 with_object ? tobj.c : none, tchi.c, tacc.c,
                                                 with_object ? tden.c : none));
    REQUIRE_OK(ptyc_op_interp_unshift_accumulate(gpu, &s->g, tc->first, tc->n,
                                                 with_object ? tobj.g : none, tchi.g, tacc.g,
                                                 with_object ? tden.g : none));
    check_f32(with_object ? "interp_unshift_accumulate (object): acc"
                          : "interp_unshift_accumulate: acc", tacc, TOL_ATOMIC);
    if (with_object) check_f32("interp_unshift_accumulate: den", tden, TOL_ATOMIC);
    twin_free(&tacc), twin_free(&tden);
  }
  twin_free(&tprobe), twin_free(&tobj), twin_free(&tchi), twin_free(&tprobes), twin_free(&tpsi);
  free(probe), free(object), free(chi), free(acc0), free(den0);
}

static void test_exit_waves(const test_case *tc, const scan_pair *s) {
  size_t batch = batch_values(tc), obj = object_values(tc);
  ptyc_c32 *object = random_c32(obj, 1.f), *probes = random_c32(batch, 3.f);
  twin tobj = twin_upload(object, obj * sizeof(ptyc_c32));
  twin tprobes = twin_upload(probes, batch * sizeof(ptyc_c32));
  twin tpsi = twin_poison(batch * sizeof(ptyc_c32));
  REQUIRE_OK(ptyc_op_exit_waves(cpu, &s->c, tc->first, tc->n, tobj.c, tprobes.c, tpsi.c));
  REQUIRE_OK(ptyc_op_exit_waves(gpu, &s->g, tc->first, tc->n, tobj.g, tprobes.g, tpsi.g));
  check_f32("exit_waves", tpsi, TOL_SAME);
  twin_free(&tobj), twin_free(&tprobes), twin_free(&tpsi);
  free(object), free(probes);
}

/* The exit waves' spectra in one op (fused on the GPU for M = 256 on Hopper, else
 * exit_waves and the plan's transforms), on a plan with an entry's images to spare and
 * on one of exactly the images transformed; where K is a power of two, these are the
 * first 2^j entries, so that the count is one (the sub-plans cover only smaller ones).
 * The exact case leaves the rest of psi zero. */
static void test_fft_exit_waves(const test_case *tc, const scan_pair *s) {
  for (int spare = 0; spare <= 1; spare++) {
    int n = tc->n;
    if (!spare && (tc->k & (tc->k - 1)) == 0)
      for (n = 1; 2 * n <= tc->n; n *= 2) {
      }
    size_t batch = batch_values(tc), obj = object_values(tc);
    ptyc_c32 *object = random_c32(obj, 1.f), *probes = random_c32(batch, 3.f);
    twin tobj = twin_upload(object, obj * sizeof(ptyc_c32));
    twin tprobes = twin_upload(probes, batch * sizeof(ptyc_c32));
    ptyc_c32 *zeros = calloc(batch, sizeof(ptyc_c32));
    twin tpsi = spare ? twin_poison(batch * sizeof(ptyc_c32))
                      : twin_upload(zeros, batch * sizeof(ptyc_c32));
    free(zeros);
    ptyc_fft *pc, *pg;
    REQUIRE_OK(ptyc_fft_plan(cpu, tc->m, (n + spare) * tc->k, &pc));
    REQUIRE_OK(ptyc_fft_plan(gpu, tc->m, (n + spare) * tc->k, &pg));
    REQUIRE_OK(ptyc_fft_exit_waves(cpu, pc, &s->c, tc->first, n, tobj.c, tprobes.c, tpsi.c));
    REQUIRE_OK(ptyc_fft_exit_waves(gpu, pg, &s->g, tc->first, n, tobj.g, tprobes.g, tpsi.g));
    check_f32(spare ? "fft_exit_waves, plan to spare" : "fft_exit_waves, exact plan", tpsi, TOL_FFT);
    ptyc_fft_free(cpu, pc);
    ptyc_fft_free(gpu, pg);
    twin_free(&tobj), twin_free(&tprobes), twin_free(&tpsi);
    free(object), free(probes);
  }
}

static void test_fourier(const test_case *tc, const scan_pair *s, ptyc_noise_model model,
                         int use_mask) {
  size_t batch = batch_values(tc), px = pixels(tc);
  size_t n_patterns = (size_t)s->c.n_positions * px;
  ptyc_c32 *waves = random_c32(batch, 3.f);
  float *patterns = random_f32(n_patterns, 0.0, 40.0);
  for (size_t i = 0; i < n_patterns; i += 17) patterns[i] = 0.f; /* some dark pixels */
  float *mask = xmalloc(px * sizeof(float));
  for (size_t i = 0; i < px; i++) mask[i] = uniform(0.0, 1.0) < 0.8 ? 1.f : 0.f;
  twin twaves = twin_upload(waves, batch * sizeof(ptyc_c32));
  twin tpat = twin_upload(patterns, n_patterns * sizeof(float));
  twin tmask = twin_upload(mask, px * sizeof(float));
  twin tcost = twin_poison((size_t)tc->n * sizeof(double));
  ptyc_buf mc = use_mask ? tmask.c : (ptyc_buf){0}, mg = use_mask ? tmask.g : (ptyc_buf){0};

  REQUIRE_OK(ptyc_op_fourier_residual(cpu, &s->c, tc->first, tc->n, model, tpat.c, mc, twaves.c,
                                      tcost.c));
  REQUIRE_OK(ptyc_op_fourier_residual(gpu, &s->g, tc->first, tc->n, model, tpat.g, mg, twaves.g,
                                      tcost.g));
  char what[64];
  const char *name = model == PTYC_NOISE_POISSON ? "poisson" : "gaussian";
  snprintf(what, sizeof what, "fourier_residual %s%s: waves", name, use_mask ? " + mask" : "");
  check_f32(what, twaves, TOL_FAST);
  /* The per-pixel cost terms are double functions of the float intensity I, which can
   * differ by an ulp (FMA in |Psi|^2); summed in another order. */
  snprintf(what, sizeof what, "fourier_residual %s%s: cost", name, use_mask ? " + mask" : "");
  check_f64(what, tcost, TOL_FAST);

  twin_free(&twaves), twin_free(&tpat), twin_free(&tmask), twin_free(&tcost);
  free(waves), free(patterns), free(mask);
}

static void test_object_gradient(const test_case *tc, const scan_pair *s, int weighted,
                                 int with_den) {
  size_t batch = batch_values(tc), obj = object_values(tc);
  ptyc_c32 *probes = random_c32(batch, 2.f), *chi = random_c32(batch, 1.f);
  ptyc_c32 *num0 = random_c32(obj, 1.f);
  float *weights = random_f32((size_t)tc->n, 0.2, 1.0), *den0 = random_f32(obj, 0.5, 2.0);
  twin tprobes = twin_upload(probes, batch * sizeof(ptyc_c32));
  twin tchi = twin_upload(chi, batch * sizeof(ptyc_c32));
  twin tw = twin_upload(weights, (size_t)tc->n * sizeof(float));
  twin tnum = twin_upload(num0, obj * sizeof(ptyc_c32)); /* accumulated into: random */
  twin tden = twin_upload(den0, obj * sizeof(float));
  ptyc_buf none = {0};
  REQUIRE_OK(ptyc_op_object_gradient(cpu, &s->c, tc->first, tc->n, tprobes.c, tchi.c,
                                     weighted ? tw.c : none, tnum.c, with_den ? tden.c : none));
  REQUIRE_OK(ptyc_op_object_gradient(gpu, &s->g, tc->first, tc->n, tprobes.g, tchi.g,
                                     weighted ? tw.g : none, tnum.g, with_den ? tden.g : none));
  char what[64];
  snprintf(what, sizeof what, "object_gradient%s: num", weighted ? " (weights)" : "");
  check_f32(what, tnum, TOL_ATOMIC);
  if (with_den) check_f32("object_gradient: den", tden, TOL_ATOMIC);
  else check_f32("object_gradient: den untouched", tden, 0.0);
  twin_free(&tprobes), twin_free(&tchi), twin_free(&tw), twin_free(&tnum), twin_free(&tden);
  free(probes), free(chi), free(num0), free(weights), free(den0);
}

static void test_probe_gradient(const test_case *tc, const scan_pair *s, int with_den) {
  size_t batch = batch_values(tc), obj = object_values(tc), px = pixels(tc);
  ptyc_c32 *object = random_c32(obj, 1.f), *chi = random_c32(batch, 1.f);
  float *den0 = random_f32(px, 0.5, 2.0);
  twin tobj = twin_upload(object, obj * sizeof(ptyc_c32));
  twin tchi = twin_upload(chi, batch * sizeof(ptyc_c32));
  twin tg = twin_poison(batch * sizeof(ptyc_c32));
  twin tden = twin_upload(den0, px * sizeof(float));
  ptyc_buf none = {0};
  REQUIRE_OK(ptyc_op_probe_gradient(cpu, &s->c, tc->first, tc->n, tobj.c, tchi.c, tg.c,
                                    with_den ? tden.c : none));
  REQUIRE_OK(ptyc_op_probe_gradient(gpu, &s->g, tc->first, tc->n, tobj.g, tchi.g, tg.g,
                                    with_den ? tden.g : none));
  check_f32(with_den ? "probe_gradient (den): g" : "probe_gradient (no den): g", tg, TOL_SAME);
  /* den: the GPU adds per chunk of 8 entries with float atomics. */
  if (with_den) check_f32("probe_gradient: den", tden, TOL_ATOMIC);
  twin_free(&tobj), twin_free(&tchi), twin_free(&tg), twin_free(&tden);
  free(object), free(chi), free(den0);
}

/* chi = 0.7 dO P + 0.4 O dP + noise, so that the steps are positive and not clamped. */
static void test_lsqml_steps(const test_case *tc, const scan_pair *s) {
  size_t batch = batch_values(tc), obj = object_values(tc), px = pixels(tc);
  size_t modes = (size_t)tc->k * px;
  ptyc_c32 *o = random_c32(obj, 1.f), *d_o = random_c32(obj, 0.3f);
  ptyc_c32 *p = random_c32(batch, 2.f), *dp = random_c32(modes, 0.5f);
  ptyc_c32 *chi = random_c32(batch, 0.05f);
  for (int b = 0; b < tc->n; b++) {
    int j = s->order[tc->first + b];
    int y0 = (int)floor(s->pos[2 * j]), x0 = (int)floor(s->pos[2 * j + 1]);
    for (int q = 0; q < tc->k; q++)
      for (int y = 0; y < tc->m; y++)
        for (int x = 0; x < tc->m; x++) {
          size_t t = ((size_t)b * tc->k + q) * px + (size_t)y * tc->m + x;
          size_t oi = (size_t)(y0 + y) * tc->w + x0 + x;
          chi[t] = pt_cadd(chi[t], pt_cadd(pt_cscale(pt_cmul(d_o[oi], p[t]), 0.7f),
                                           pt_cscale(pt_cmul(o[oi], dp[q * px + (size_t)y * tc->m + x]), 0.4f)));
        }
  }
  twin to = twin_upload(o, obj * sizeof(ptyc_c32)), tdo = twin_upload(d_o, obj * sizeof(ptyc_c32));
  twin tp = twin_upload(p, batch * sizeof(ptyc_c32)), tdp = twin_upload(dp, modes * sizeof(ptyc_c32));
  twin tchi = twin_upload(chi, batch * sizeof(ptyc_c32));
  static const int on[3][2] = {{1, 1}, {1, 0}, {0, 1}};
  for (int c = 0; c < 3; c++) {
    twin ta = twin_poison(2 * (size_t)tc->n * sizeof(float));
    REQUIRE_OK(ptyc_op_lsqml_steps(cpu, &s->c, tc->first, tc->n, to.c, tdo.c, tp.c, tdp.c,
                                   tchi.c, 0.05, 2.0, on[c][0], on[c][1], ta.c));
    REQUIRE_OK(ptyc_op_lsqml_steps(gpu, &s->g, tc->first, tc->n, to.g, tdo.g, tp.g, tdp.g,
                                   tchi.g, 0.05, 2.0, on[c][0], on[c][1], ta.g));
    char what[64];
    snprintf(what, sizeof what, "lsqml_steps (object %d, probe %d)", on[c][0], on[c][1]);
    /* double sums in another order, solved in double, rounded to float */
    check_f32(what, ta, TOL_SAME);
    twin_free(&ta);
  }
  twin_free(&to), twin_free(&tdo), twin_free(&tp), twin_free(&tdp), twin_free(&tchi);
  free(o), free(d_o), free(p), free(dp), free(chi);
}

static void test_orthogonalize(const test_case *tc) {
  size_t px = pixels(tc), modes = (size_t)tc->k * px;
  ptyc_c32 *probe = random_c32(modes, 1.f);
  for (int q = 1; q < tc->k; q++) /* correlated modes of distinct power */
    for (size_t i = 0; i < px; i++)
      probe[q * px + i] = pt_cadd(pt_cscale(probe[q * px + i], 1.f / (q + 1)),
                                  pt_cscale(probe[i], 0.3f));
  twin t = twin_upload(probe, modes * sizeof(ptyc_c32));
  REQUIRE_OK(ptyc_op_orthogonalize_modes(cpu, t.c, tc->k, tc->m));
  REQUIRE_OK(ptyc_op_orthogonalize_modes(gpu, t.g, tc->k, tc->m));
  /* Same eigen-solver on Gram matrices that differ in the last double bits; the
   * recombination rounds to float. */
  check_f32("orthogonalize_modes", t, TOL_FAST);
  twin_free(&t);
  free(probe);
}

/* A Poisson batch whose intensity cache (M^2 floats per entry) does not fit the CUDA
 * backend's scratch at once (32 MiB: 126 entries of 256 x 256), so the op is split into
 * several launches. */
static void test_split_batch(void) {
  test_case tc = {"split", 256, 1, 130, 1, 300, 300};
  case_name = tc.name;
  printf("case %s: M=%d K=%d n=%d (from %d) object %dx%d\n", tc.name, tc.m, tc.k, tc.n,
         tc.first, tc.h, tc.w);
  scan_pair s = make_scan(&tc);
  test_fourier(&tc, &s, PTYC_NOISE_POISSON, 1);
  free_scan(&s);
}

static void run_case(const test_case *tc) {
  case_name = tc->name;
  printf("case %s: M=%d K=%d n=%d (from %d) object %dx%d\n", tc->name, tc->m, tc->k, tc->n,
         tc->first, tc->h, tc->w);
  scan_pair s = make_scan(tc);
  test_fft(tc);
  test_elementwise(tc);
  test_shifts(tc, &s);
  test_exit_waves(tc, &s);
  test_fft_exit_waves(tc, &s);
  test_interp(tc, &s);
  for (int mask = 0; mask <= 1; mask++) {
    test_fourier(tc, &s, PTYC_NOISE_GAUSSIAN, mask);
    test_fourier(tc, &s, PTYC_NOISE_POISSON, mask);
  }
  test_object_gradient(tc, &s, 1, 1);
  test_object_gradient(tc, &s, 0, 0);
  test_probe_gradient(tc, &s, 1);
  test_probe_gradient(tc, &s, 0);
  test_lsqml_steps(tc, &s);
  test_orthogonalize(tc);
  free_scan(&s);
}

int main(void) {
  char why[256];
  if (!ptyc_cuda_usable(why, sizeof why)) {
    printf("skipped: %s\n", why);
    return PT_TEST_SKIP;
  }
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &cpu));
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CUDA, 0, 0, &gpu));
  EXPECT(strcmp(ptyc_backend_name(gpu), "cuda") == 0);
  ptyc_device_info info;
  REQUIRE_OK(ptyc_backend_device_info(gpu, &info));
  printf("device: %s, compute %d.%d, %.0f of %.0f MiB free\n", info.name, info.compute_major,
         info.compute_minor, info.memory_free / 1048576.0, info.memory_total / 1048576.0);

  static const test_case cases[] = {
      {"main", 64, 3, 7, 2, 150, 170},
      {"odd", 33, 2, 5, 1, 71, 90},    /* odd M: odd rows, partial warps and blocks */
      {"wide", 48, 5, 11, 3, 100, 120}, /* K = 5 takes the 8-mode kernels */
      {"single", 32, 1, 9, 0, 60, 64},  /* one mode; more than 8 entries per den chunk */
      {"large", 300, 2, 6, 1, 330, 345}, /* M above the interp kernels' 256-column strips */
  };
  test_memory();
  test_fft256();
  {
    test_case tc = {"fft256 exit waves", 256, 3, 5, 1, 300, 310};
    case_name = tc.name;
    scan_pair s = make_scan(&tc);
    test_fft_exit_waves(&tc, &s);
    free_scan(&s);
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
  test_split_batch();

  EXPECT(ptyc_backend_bytes_in_use(cpu) == 0); /* every buffer freed */
  EXPECT(ptyc_backend_bytes_in_use(gpu) == 0);
  ptyc_backend_free(gpu);
  ptyc_backend_free(cpu);
  return TEST_RESULT();
}
