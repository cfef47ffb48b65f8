/* Finite-difference checks of every autodiff primitive's VJP (engines/autodiff/
 * primitives.c) and of the backend ops that implement them, on the CPU and, when a GPU
 * is usable, on CUDA. grad_util.h explains the two checks (double reference: tight;
 * float backend op: 1e-4) and prints one line per check.
 *
 * For a primitive y = f(x) the test cost is C = 2 Re <w, f(x)> with a random cotangent
 * w, so that dC/d(conj y) = w and the VJP must give dC/d(conj x). The primitives:
 *   fft          y = F x (and y = G x):       grad x = G w (F w)
 *   shift        S_b = s P^ ramp(f_b):       grad P^ = s sum_b conj(ramp_b) w_b,
 *                                             dC/df_b = 2 Re sum conj(w) dS/df
 *   exit waves   psi_b = p_b O_b:            grad O_b += conj(p_b) w, grad p_b = conj(O_b) w
 *   interp       psi_b = (S_b P) O_b:         grad P = sum_b S_b^T conj(O_b) w_b,
 *                (S_b the 12-tap filter)      dC/df_b = 2 Re <w_b, (dS_b/df P) O_b>
 *   loss         C = sum l(sum_k |Psi_k|^2): grad Psi_k = l'(I) Psi_k   (C itself)
 *   regulariser  R(O) = L1 and TV terms     (C itself) */
#include "grad_util.h"

/* The geometry: n entries from order index FIRST of N_POS positions. */
enum { M = 8, K = 2, N = 3, FIRST = 1, N_POS = 5, H = 20, W = 22 };

typedef struct geometry {
  double pos[2 * N_POS];
  int32_t order[N_POS];
} geometry;

static geometry make_geometry(void) {
  geometry g;
  for (int j = 0; j < N_POS; j++) {
    /* integer corners inside the object, fractions away from 0 and 1 so that finite
     * differences never cross a pixel boundary */
    g.pos[2 * j] = floor(grad_uniform(0, H - M - 1)) + grad_uniform(0.15, 0.85);
    g.pos[2 * j + 1] = floor(grad_uniform(0, W - M - 1)) + grad_uniform(0.15, 0.85);
    g.order[j] = (j * 3 + 2) % N_POS; /* a permutation */
  }
  return g;
}

/* The scan of `g` on a backend (buffers freed by free_scan). */
static ptyc_scan upload_scan(ptyc_backend *be, const geometry *g) {
  ptyc_scan s = {.m = M, .n_modes = K, .obj_h = H, .obj_w = W, .n_positions = N_POS};
  s.positions = buf_from(be, g->pos, sizeof g->pos);
  s.order = buf_from(be, g->order, sizeof g->order);
  return s;
}

static void free_scan(ptyc_backend *be, ptyc_scan *s) {
  ptyc_buf_free(be, &s->positions);
  ptyc_buf_free(be, &s->order);
}

static void entry_corner(const geometry *g, int b, int *j, int *y0, int *x0, double *fy,
                         double *fx) {
  *j = g->order[FIRST + b];
  *y0 = (int)floor(g->pos[2 * *j]);
  *x0 = (int)floor(g->pos[2 * *j + 1]);
  *fy = g->pos[2 * *j] - *y0;
  *fx = g->pos[2 * *j + 1] - *x0;
}

static ptyc_c32 *download_c32(ptyc_backend *be, ptyc_buf b, size_t n) {
  ptyc_c32 *h = grad_malloc(n * sizeof *h);
  REQUIRE_OK(ptyc_buf_download(be, h, b, 0, n * sizeof *h));
  return h;
}

static const size_t IMG = (size_t)M * M;

/* ---- fft ------------------------------------------------------------------------------------ */

typedef struct fft_ctx {
  const ptyc_c64 *w;
  int inverse;
} fft_ctx;

static double fft_cost(void *vctx, const ptyc_c64 *x) {
  fft_ctx *c = vctx;
  ptyc_c64 y[K * M * M];
  for (int k = 0; k < K; k++) dft2(x + k * IMG, y + k * IMG, M, c->inverse);
  return re_inner(c->w, y, K * IMG);
}

static void test_fft(ptyc_backend *const *be, const char *const *names, int n_be) {
  for (int inverse = 0; inverse <= 1; inverse++) {
    ptyc_c64 *x = random_c64(K * IMG, 1.0), *w = random_c64(K * IMG, 1.0);
    ptyc_c64 fd[K * M * M], ref[K * M * M];
    fft_ctx c = {w, inverse};
    fd_gradient(fft_cost, &c, x, K * IMG, fd);
    for (int k = 0; k < K; k++) dft2(w + k * IMG, ref + k * IMG, M, !inverse);
    const char *what = inverse ? "fft inverse: grad x = F w" : "fft forward: grad x = G w";
    grad_check("double", what, rel_err64(ref, fd, K * IMG), TOL_DOUBLE);
    for (int i = 0; i < n_be; i++) {
      ptyc_fft *plan;
      REQUIRE_OK(ptyc_fft_plan(be[i], M, K, &plan));
      ptyc_buf g = buf_c64(be[i], w, K * IMG);
      REQUIRE_OK(ptyc_fft_exec(be[i], plan, g, !inverse)); /* the fft primitive's VJP */
      ptyc_c32 *got = download_c32(be[i], g, K * IMG);
      grad_check(names[i], what, rel_err32(got, fd, K * IMG), TOL_FLOAT);
      free(got);
      ptyc_buf_free(be[i], &g);
      ptyc_fft_free(be[i], plan);
    }
    free(x), free(w);
  }
}

/* ---- shift ------------------------------------------------------------------------------------ */

#define SHIFT_SCALE (1.0 / 64.0)

typedef struct shift_ctx {
  geometry g;           /* positions may be perturbed by the finite differences */
  const ptyc_c64 *w;    /* [N][K][M][M] */
  const ptyc_c64 *spec; /* [K][M][M] */
} shift_ctx;

/* S[b][k] = scale * spec[k] * ramp(f_b). */
static void shift_forward64(const shift_ctx *c, const ptyc_c64 *spec, ptyc_c64 *s) {
  for (int b = 0; b < N; b++) {
    int j, y0, x0;
    double fy, fx;
    entry_corner(&c->g, b, &j, &y0, &x0, &fy, &fx);
    for (int k = 0; k < K; k++)
      for (int u = 0; u < M; u++)
        for (int v = 0; v < M; v++)
          s[(b * K + k) * IMG + u * M + v] =
              c64_scale(c64_mul(spec[k * IMG + u * M + v], ramp64(u, v, M, fy, fx)), SHIFT_SCALE);
  }
}

static double shift_cost(void *vctx, const ptyc_c64 *spec) {
  shift_ctx *c = vctx;
  ptyc_c64 s[N * K * M * M];
  shift_forward64(c, spec, s);
  return re_inner(c->w, s, N * K * IMG);
}

static void test_shift(ptyc_backend *const *be, const char *const *names, int n_be) {
  shift_ctx c = {.g = make_geometry()};
  ptyc_c64 *spec = random_c64(K * IMG, 3.0), *w = random_c64(N * K * IMG, 1.0);
  c.w = w;
  c.spec = spec;

  /* grad P^ */
  ptyc_c64 fd[K * M * M], ref[K * M * M];
  fd_gradient(shift_cost, &c, spec, K * IMG, fd);
  memset(ref, 0, sizeof ref);
  for (int b = 0; b < N; b++) {
    int j, y0, x0;
    double fy, fx;
    entry_corner(&c.g, b, &j, &y0, &x0, &fy, &fx);
    for (int k = 0; k < K; k++)
      for (int u = 0; u < M; u++)
        for (int v = 0; v < M; v++) {
          size_t i = k * IMG + u * M + v;
          ptyc_c64 t = c64_mulc(ramp64(u, v, M, fy, fx), w[(b * K + k) * IMG + u * M + v]);
          ref[i] = c64_add(ref[i], c64_scale(t, SHIFT_SCALE));
        }
  }
  grad_check("double", "shift: grad spectrum = s sum_b conj(ramp_b) w_b", rel_err64(ref, fd, K * IMG),
             TOL_DOUBLE);

  /* dC/df_b by finite differences of the positions, and the curvature terms */
  double fd_pos[N * 2], ref_pos[N * 4];
  for (int b = 0; b < N; b++)
    for (int a = 0; a < 2; a++) {
      int j = c.g.order[FIRST + b];
      double keep = c.g.pos[2 * j + a], h = 1e-6;
      c.g.pos[2 * j + a] = keep + h;
      double up = shift_cost(&c, spec);
      c.g.pos[2 * j + a] = keep - h;
      double down = shift_cost(&c, spec);
      c.g.pos[2 * j + a] = keep;
      fd_pos[2 * b + a] = (up - down) / (2 * h);
    }
  ptyc_c64 s[N * K * M * M];
  shift_forward64(&c, spec, s);
  for (int b = 0; b < N; b++) { /* dS/dfy = -2 pi i fu / M S: 2 Re conj(w) dS = (4 pi fu / M) Im(conj(w) S) */
    double gy = 0, gx = 0, hy = 0, hx = 0;
    for (int k = 0; k < K; k++)
      for (int u = 0; u < M; u++)
        for (int v = 0; v < M; v++) {
          size_t i = (b * K + k) * IMG + u * M + v;
          double fu = 2 * GRAD_PI * pt_freq_index(u, M) / M, fv = 2 * GRAD_PI * pt_freq_index(v, M) / M;
          double im = c64_mulc(w[i], s[i]).im;
          gy += 2 * fu * im;
          gx += 2 * fv * im;
          hy += fu * fu * c64_abs2(s[i]);
          hx += fv * fv * c64_abs2(s[i]);
        }
    ref_pos[4 * b] = gy, ref_pos[4 * b + 1] = gx, ref_pos[4 * b + 2] = hy, ref_pos[4 * b + 3] = hx;
  }
  double ref_g[N * 2], ref_h[N * 2];
  for (int b = 0; b < N; b++)
    for (int a = 0; a < 2; a++) ref_g[2 * b + a] = ref_pos[4 * b + a], ref_h[2 * b + a] = ref_pos[4 * b + 2 + a];
  grad_check("double", "shift: dC/df = (4 pi / M) sum f Im(conj(w) S)", rel_err_real(ref_g, fd_pos, 2 * N),
             TOL_DOUBLE);

  for (int i = 0; i < n_be; i++) {
    ptyc_scan scan = upload_scan(be[i], &c.g);
    ptyc_buf bspec = buf_c64(be[i], spec, K * IMG), bw = buf_c64(be[i], w, N * K * IMG);
    ptyc_buf acc = buf_from(be[i], NULL, K * IMG * sizeof(ptyc_c32));
    ptyc_buf out = buf_from(be[i], NULL, N * K * IMG * sizeof(ptyc_c32));
    ptyc_buf pos = buf_from(be[i], NULL, N * 4 * sizeof(double));
    REQUIRE_OK(ptyc_op_shift_spectrum(be[i], &scan, FIRST, N, bspec, (float)SHIFT_SCALE, out));
    ptyc_c32 *got = download_c32(be[i], out, N * K * IMG);
    grad_check(names[i], "shift_spectrum (forward) against the double reference",
               rel_err32(got, s, N * K * IMG), TOL_FLOAT);
    free(got);
    REQUIRE_OK(ptyc_op_unshift_accumulate(be[i], &scan, FIRST, N, bw, (float)SHIFT_SCALE, acc));
    got = download_c32(be[i], acc, K * IMG);
    grad_check(names[i], "unshift_accumulate: grad spectrum", rel_err32(got, fd, K * IMG), TOL_FLOAT);
    free(got);
    REQUIRE_OK(ptyc_op_shift_position_gradient(be[i], &scan, FIRST, N, bspec, (float)SHIFT_SCALE, bw, pos));
    double got_pos[N * 4], got_g[N * 2], got_h[N * 2];
    REQUIRE_OK(ptyc_buf_download(be[i], got_pos, pos, 0, sizeof got_pos));
    for (int b = 0; b < N; b++)
      for (int a = 0; a < 2; a++) got_g[2 * b + a] = got_pos[4 * b + a], got_h[2 * b + a] = got_pos[4 * b + 2 + a];
    grad_check(names[i], "shift_position_gradient: dC/dy, dC/dx", rel_err_real(got_g, fd_pos, 2 * N), TOL_FLOAT);
    grad_check(names[i], "shift_position_gradient: sum |dS/df|^2", rel_err_real(got_h, ref_h, 2 * N), TOL_FLOAT);
    ptyc_buf_free(be[i], &bspec), ptyc_buf_free(be[i], &bw), ptyc_buf_free(be[i], &acc);
    ptyc_buf_free(be[i], &out), ptyc_buf_free(be[i], &pos);
    free_scan(be[i], &scan);
  }
  free(spec), free(w);
}

/* ---- exit waves ------------------------------------------------------------------------------- */

typedef struct exit_ctx {
  geometry g;
  const ptyc_c64 *w;      /* [N][K][M][M] */
  const ptyc_c64 *object; /* [H][W] (when the probes vary) */
  const ptyc_c64 *probes; /* [N][K][M][M] (when the object varies) */
} exit_ctx;

static double exit_cost(const exit_ctx *c, const ptyc_c64 *object, const ptyc_c64 *probes) {
  double total = 0;
  for (int b = 0; b < N; b++) {
    int j, y0, x0;
    double fy, fx;
    entry_corner(&c->g, b, &j, &y0, &x0, &fy, &fx);
    for (int k = 0; k < K; k++)
      for (int y = 0; y < M; y++)
        for (int x = 0; x < M; x++) {
          size_t i = (b * K + k) * IMG + y * M + x;
          ptyc_c64 psi = c64_mul(probes[i], object[(y0 + y) * W + x0 + x]);
          total += 2 * (c->w[i].re * psi.re + c->w[i].im * psi.im);
        }
  }
  return total;
}
static double exit_cost_object(void *c, const ptyc_c64 *o) {
  return exit_cost(c, o, ((exit_ctx *)c)->probes);
}
static double exit_cost_probes(void *c, const ptyc_c64 *p) {
  return exit_cost(c, ((exit_ctx *)c)->object, p);
}

static void test_exit_waves(ptyc_backend *const *be, const char *const *names, int n_be) {
  exit_ctx c = {.g = make_geometry()};
  size_t nb = N * K * IMG, no = (size_t)H * W;
  ptyc_c64 *object = random_c64(no, 1.0), *probes = random_c64(nb, 2.0), *w = random_c64(nb, 1.0);
  c.w = w, c.object = object, c.probes = probes;
  ptyc_c64 *fd_o = grad_malloc(no * sizeof *fd_o), *fd_p = grad_malloc(nb * sizeof *fd_p);
  ptyc_c64 *ref_o = grad_malloc(no * sizeof *ref_o), *ref_p = grad_malloc(nb * sizeof *ref_p);
  fd_gradient(exit_cost_object, &c, object, no, fd_o);
  fd_gradient(exit_cost_probes, &c, probes, nb, fd_p);
  double *illum = grad_malloc(no * sizeof *illum), obj_int[M * M] = {0};
  for (int b = 0; b < N; b++) {
    int j, y0, x0;
    double fy, fx;
    entry_corner(&c.g, b, &j, &y0, &x0, &fy, &fx);
    for (int k = 0; k < K; k++)
      for (int y = 0; y < M; y++)
        for (int x = 0; x < M; x++) {
          size_t i = (b * K + k) * IMG + y * M + x, o = (size_t)(y0 + y) * W + x0 + x;
          ref_o[o] = c64_add(ref_o[o], c64_mulc(probes[i], w[i]));
          ref_p[i] = c64_mulc(object[o], w[i]);
          illum[o] += c64_abs2(probes[i]);
          if (k == 0) obj_int[y * M + x] += c64_abs2(object[o]);
        }
  }
  grad_check("double", "exit waves: grad O = sum conj(p) w (scattered)", rel_err64(ref_o, fd_o, no), TOL_DOUBLE);
  grad_check("double", "exit waves: grad p = conj(O_b) w", rel_err64(ref_p, fd_p, nb), TOL_DOUBLE);

  for (int i = 0; i < n_be; i++) {
    ptyc_scan scan = upload_scan(be[i], &c.g);
    for (int in_place = 0; in_place <= 1; in_place++) {
      ptyc_buf bo = buf_c64(be[i], object, no), bp = buf_c64(be[i], probes, nb);
      ptyc_buf bw = buf_c64(be[i], w, nb);
      ptyc_buf go = buf_from(be[i], NULL, no * sizeof(ptyc_c32));
      ptyc_buf il = buf_from(be[i], NULL, no * sizeof(float));
      ptyc_buf oi = buf_from(be[i], NULL, IMG * sizeof(float));
      ptyc_buf gp = in_place ? bp : buf_from(be[i], NULL, nb * sizeof(ptyc_c32));
      REQUIRE_OK(ptyc_op_exit_waves_vjp(be[i], &scan, FIRST, N, bo, bp, bw, go, il, gp, oi));
      ptyc_c32 *got_o = download_c32(be[i], go, no), *got_p = download_c32(be[i], gp, nb);
      float *got_il = grad_malloc(no * sizeof(float)), got_oi[M * M];
      REQUIRE_OK(ptyc_buf_download(be[i], got_il, il, 0, no * sizeof(float)));
      REQUIRE_OK(ptyc_buf_download(be[i], got_oi, oi, 0, sizeof got_oi));
      double *il64 = grad_malloc(no * sizeof(double)), oi64[M * M];
      for (size_t t = 0; t < no; t++) il64[t] = got_il[t];
      for (size_t t = 0; t < IMG; t++) oi64[t] = got_oi[t];
      char what[96];
      snprintf(what, sizeof what, "exit_waves_vjp%s: grad object", in_place ? " (in place)" : "");
      grad_check(names[i], what, rel_err32(got_o, fd_o, no), TOL_FLOAT);
      snprintf(what, sizeof what, "exit_waves_vjp%s: grad probes", in_place ? " (in place)" : "");
      grad_check(names[i], what, rel_err32(got_p, fd_p, nb), TOL_FLOAT);
      if (!in_place) {
        grad_check(names[i], "exit_waves_vjp: illumination sum |p|^2", rel_err_real(il64, illum, no), TOL_FLOAT);
        grad_check(names[i], "exit_waves_vjp: object intensity sum |O_b|^2", rel_err_real(oi64, obj_int, IMG),
                   TOL_FLOAT);
        ptyc_buf_free(be[i], &gp);
      }
      free(got_o), free(got_p), free(got_il), free(il64);
      ptyc_buf_free(be[i], &bo), ptyc_buf_free(be[i], &bp), ptyc_buf_free(be[i], &bw);
      ptyc_buf_free(be[i], &go), ptyc_buf_free(be[i], &il), ptyc_buf_free(be[i], &oi);
    }
    free_scan(be[i], &scan);
  }
  free(object), free(probes), free(w), free(fd_o), free(fd_p), free(ref_o), free(ref_p), free(illum);
}

/* ---- shift by interpolation, fused with the exit waves ------------------------------------------ */

typedef struct interp_ctx {
  geometry g;
  const ptyc_c64 *w;      /* [N][K][M][M] cotangent of psi */
  const ptyc_c64 *object; /* [H][W] */
} interp_ctx;

/* psi[b][k] = (S_b P_k) O_b in double, with the y and x weights of entry b given or, when
 * wy is NULL, its own. */
static void interp_psi64(const interp_ctx *c, const ptyc_c64 *probe, int b, const double *wy,
                         const double *wx, ptyc_c64 *p, ptyc_c64 *psi) {
  int j, y0, x0;
  double fy, fx, own_y[PT_INTERP_TAPS], own_x[PT_INTERP_TAPS];
  entry_corner(&c->g, b, &j, &y0, &x0, &fy, &fx);
  if (wy == NULL) interp_weights64(fy, fx, own_y, own_x), wy = own_y, wx = own_x;
  for (int k = 0; k < K; k++) {
    interp64(probe + k * IMG, p + k * IMG, M, wy, wx);
    for (int y = 0; y < M; y++)
      for (int x = 0; x < M; x++)
        psi[k * IMG + y * M + x] = c64_mul(p[k * IMG + y * M + x], c->object[(y0 + y) * W + x0 + x]);
  }
}

/* C = 2 Re <w, psi> over the batch. */
static double interp_cost(void *vctx, const ptyc_c64 *probe) {
  const interp_ctx *c = vctx;
  ptyc_c64 p[K * M * M], psi[K * M * M];
  double total = 0;
  for (int b = 0; b < N; b++) {
    interp_psi64(c, probe, b, NULL, NULL, p, psi);
    total += re_inner(c->w + (size_t)b * K * IMG, psi, K * IMG);
  }
  return total;
}

static void test_interp(ptyc_backend *const *be, const char *const *names, int n_be) {
  interp_ctx c = {.g = make_geometry()};
  size_t nb = N * K * IMG, no = (size_t)H * W;
  ptyc_c64 *probe = random_c64(K * IMG, 1.0), *object = random_c64(no, 1.0), *w = random_c64(nb, 1.0);
  c.w = w, c.object = object;
  ptyc_c64 *fd = grad_malloc(K * IMG * sizeof *fd), *ref = grad_malloc(K * IMG * sizeof *ref);
  fd_gradient(interp_cost, &c, probe, K * IMG, fd);

  /* grad P = sum_b S_b^T conj(O_b) w_b: the filter's taps read backwards */
  ptyc_c64 *probes = grad_malloc(nb * sizeof *probes), *psi = grad_malloc(nb * sizeof *psi);
  double fd_pos[N * 2], ref_g[N * 2], ref_h[N * 2], obj_int[M * M] = {0};
  for (int b = 0; b < N; b++) {
    int j, y0, x0;
    double fy, fx, wy[PT_INTERP_TAPS], wx[PT_INTERP_TAPS], dwy[PT_INTERP_TAPS], dwx[PT_INTERP_TAPS];
    entry_corner(&c.g, b, &j, &y0, &x0, &fy, &fx);
    pt_interp_design design;
    pt_interp_design_make(&design);
    pt_interp_weights64(&design, fy, wy, dwy);
    pt_interp_weights64(&design, fx, wx, dwx);
    interp_psi64(&c, probe, b, NULL, NULL, probes + b * K * IMG, psi + b * K * IMG);
    for (int k = 0; k < K; k++)
      for (int y = 0; y < M; y++)
        for (int x = 0; x < M; x++) {
          ptyc_c64 g = c64_mulc(object[(y0 + y) * W + x0 + x], w[(b * K + k) * IMG + y * M + x]);
          if (k == 0) obj_int[y * M + x] += c64_abs2(object[(y0 + y) * W + x0 + x]);
          for (int i = 0; i < PT_INTERP_TAPS; i++)
            for (int t = 0; t < PT_INTERP_TAPS; t++) {
              int yy = y - (i - PT_INTERP_BEFORE), xx = x - (t - PT_INTERP_BEFORE);
              if (yy < 0 || yy >= M || xx < 0 || xx >= M) continue;
              ref[k * IMG + yy * M + xx] = c64_add(ref[k * IMG + yy * M + xx], c64_scale(g, wy[i] * wx[t]));
            }
        }
    /* dC/df = 2 Re <w, (dS/df P) O>; the curvature sum |dS/df P|^2 / M^2 */
    ptyc_c64 d_p[K * M * M], d_psi[K * M * M];
    for (int a = 0; a < 2; a++) {
      interp_psi64(&c, probe, b, a == 0 ? dwy : wy, a == 0 ? wx : dwx, d_p, d_psi);
      ref_g[2 * b + a] = re_inner(w + (size_t)b * K * IMG, d_psi, K * IMG);
      double h = 0;
      for (size_t q = 0; q < K * IMG; q++) h += c64_abs2(d_p[q]);
      ref_h[2 * b + a] = h / IMG;
      /* a five-point stencil of step 1e-3: the weights solve an ill-conditioned system
       * (G^-1 has entries ~1e5), so each carries rounding noise ~1e-11, which central
       * differences of step 1e-6 magnify to a relative error ~1e-5 */
      double keep = c.g.pos[2 * j + a], step = 1e-3, f[4];
      for (int q = 0; q < 4; q++) {
        c.g.pos[2 * j + a] = keep + (q < 2 ? q - 2 : q - 1) * step;
        f[q] = interp_cost(&c, probe);
      }
      c.g.pos[2 * j + a] = keep;
      fd_pos[2 * b + a] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * step);
    }
  }
  grad_check("double", "interp: grad P = sum_b S_b^T conj(O_b) w_b", rel_err64(ref, fd, K * IMG), TOL_DOUBLE);
  grad_check("double", "interp: dC/df = 2 Re <w, (dS/df P) O>", rel_err_real(ref_g, fd_pos, 2 * N), TOL_DOUBLE);

  for (int i = 0; i < n_be; i++) {
    ptyc_scan scan = upload_scan(be[i], &c.g);
    ptyc_buf bp = buf_c64(be[i], probe, K * IMG), bo = buf_c64(be[i], object, no);
    ptyc_buf bw = buf_c64(be[i], w, nb);
    ptyc_buf out_p = buf_from(be[i], NULL, nb * sizeof(ptyc_c32));
    ptyc_buf out_psi = buf_from(be[i], NULL, nb * sizeof(ptyc_c32));
    ptyc_buf acc = buf_from(be[i], NULL, K * IMG * sizeof(ptyc_c32));
    ptyc_buf den = buf_from(be[i], NULL, IMG * sizeof(float));
    ptyc_buf pos = buf_from(be[i], NULL, N * 4 * sizeof(double));
    REQUIRE_OK(ptyc_op_interp_shift(be[i], &scan, FIRST, N, bp, bo, out_p, out_psi));
    ptyc_c32 *got = download_c32(be[i], out_p, nb);
    grad_check(names[i], "interp_shift: probes against the double reference", rel_err32(got, probes, nb), TOL_FLOAT);
    free(got);
    got = download_c32(be[i], out_psi, nb);
    grad_check(names[i], "interp_shift: exit waves against the double reference", rel_err32(got, psi, nb), TOL_FLOAT);
    free(got);
    REQUIRE_OK(ptyc_op_interp_unshift_accumulate(be[i], &scan, FIRST, N, bo, bw, acc, den));
    got = download_c32(be[i], acc, K * IMG);
    grad_check(names[i], "interp_unshift_accumulate: grad P", rel_err32(got, fd, K * IMG), TOL_FLOAT);
    free(got);
    float got_den[M * M];
    double den64[M * M];
    REQUIRE_OK(ptyc_buf_download(be[i], got_den, den, 0, sizeof got_den));
    for (size_t t = 0; t < IMG; t++) den64[t] = got_den[t];
    grad_check(names[i], "interp_unshift_accumulate: sum |O_b|^2", rel_err_real(den64, obj_int, IMG), TOL_FLOAT);
    REQUIRE_OK(ptyc_op_interp_position_gradient(be[i], &scan, FIRST, N, bp, bo, bw, pos));
    double got_pos[N * 4], got_g[N * 2], got_h[N * 2];
    REQUIRE_OK(ptyc_buf_download(be[i], got_pos, pos, 0, sizeof got_pos));
    for (int b = 0; b < N; b++)
      for (int a = 0; a < 2; a++) got_g[2 * b + a] = got_pos[4 * b + a], got_h[2 * b + a] = got_pos[4 * b + 2 + a];
    grad_check(names[i], "interp_position_gradient: dC/dy, dC/dx", rel_err_real(got_g, fd_pos, 2 * N), TOL_FLOAT);
    grad_check(names[i], "interp_position_gradient: sum |dS/df P|^2 / M^2", rel_err_real(got_h, ref_h, 2 * N),
               TOL_FLOAT);
    ptyc_buf *bufs[] = {&bp, &bo, &bw, &out_p, &out_psi, &acc, &den, &pos};
    for (size_t t = 0; t < sizeof bufs / sizeof bufs[0]; t++) ptyc_buf_free(be[i], bufs[t]);
    free_scan(be[i], &scan);
  }
  free(probe), free(object), free(w), free(fd), free(ref), free(probes), free(psi);
}

/* ---- loss --------------------------------------------------------------------------------------- */

typedef struct loss_ctx {
  geometry g;
  ptyc_loss loss;
  const float *patterns; /* [N_POS][M][M] */
  const float *mask;     /* [M][M] */
} loss_ctx;

/* l(I, d) in double: the definitions of include/ptyc/options.h (Poisson: the deviance,
 * with the ops' guard 1e-9 added to I). */
static double loss64(ptyc_loss loss, double i, double d) {
  switch (loss) {
  case PTYC_LOSS_INTENSITY: return (i - d) * (i - d);
  case PTYC_LOSS_POISSON: return d > 0 ? i + 1e-9 - d + d * log(d / (i + 1e-9)) : i + 1e-9;
  default: return (sqrt(i) - sqrt(d)) * (sqrt(i) - sqrt(d));
  }
}
static double loss64_derivative(ptyc_loss loss, double i, double d) {
  switch (loss) {
  case PTYC_LOSS_INTENSITY: return 2 * (i - d);
  case PTYC_LOSS_POISSON: return 1 - d / (i + 1e-9);
  default: return 1 - sqrt(d / i);
  }
}

/* cost of entry b of waves */
static double loss_entry(const loss_ctx *c, const ptyc_c64 *waves, int b) {
  const float *d = c->patterns + (size_t)c->g.order[FIRST + b] * IMG;
  double total = 0;
  for (size_t p = 0; p < IMG; p++) {
    if (c->mask[p] <= 0) continue;
    double intensity = 0;
    for (int k = 0; k < K; k++) intensity += c64_abs2(waves[(b * K + k) * IMG + p]);
    total += loss64(c->loss, intensity, d[p]);
  }
  return total;
}

static double loss_cost(void *vctx, const ptyc_c64 *waves) {
  double total = 0;
  for (int b = 0; b < N; b++) total += loss_entry(vctx, waves, b);
  return total;
}

static void test_loss(ptyc_backend *const *be, const char *const *names, int n_be) {
  static const char *loss_names[] = {"amplitude", "intensity", "poisson"};
  loss_ctx c = {.g = make_geometry()};
  size_t nb = N * K * IMG;
  float *patterns = grad_malloc(N_POS * IMG * sizeof(float)), mask[M * M];
  for (size_t i = 0; i < N_POS * IMG; i++) patterns[i] = i % 11 == 0 ? 0.f : (float)grad_uniform(0.5, 20.0);
  for (size_t i = 0; i < IMG; i++) mask[i] = grad_uniform(0, 1) < 0.8 ? 1.f : 0.f;
  c.patterns = patterns, c.mask = mask;
  /* far fields of modulus 1 to 3 in mode 0, so that I stays well away from 0 */
  ptyc_c64 *waves = random_c64(nb, 1.0);
  for (int b = 0; b < N; b++)
    for (size_t p = 0; p < IMG; p++) {
      double r = grad_uniform(1, 3), ph = grad_uniform(0, 2 * GRAD_PI);
      waves[(b * K) * IMG + p] = c64((float)(r * cos(ph)), (float)(r * sin(ph)));
    }
  ptyc_c64 *fd = grad_malloc(nb * sizeof *fd), *ref = grad_malloc(nb * sizeof *ref);
  for (int l = 0; l < 3; l++) {
    c.loss = (ptyc_loss)l;
    fd_gradient(loss_cost, &c, waves, nb, fd);
    double cost_ref[N];
    for (int b = 0; b < N; b++) {
      cost_ref[b] = loss_entry(&c, waves, b);
      const float *d = patterns + (size_t)c.g.order[FIRST + b] * IMG;
      for (size_t p = 0; p < IMG; p++) {
        double intensity = 0;
        for (int k = 0; k < K; k++) intensity += c64_abs2(waves[(b * K + k) * IMG + p]);
        double f = mask[p] > 0 ? loss64_derivative(c.loss, intensity, d[p]) : 0.0;
        for (int k = 0; k < K; k++) ref[(b * K + k) * IMG + p] = c64_scale(waves[(b * K + k) * IMG + p], f);
      }
    }
    char what[96];
    snprintf(what, sizeof what, "loss %s: grad Psi = l'(I) Psi (masked)", loss_names[l]);
    grad_check("double", what, rel_err64(ref, fd, nb), TOL_DOUBLE);
    for (int i = 0; i < n_be; i++) {
      ptyc_scan scan = upload_scan(be[i], &c.g);
      ptyc_buf bpat = buf_from(be[i], patterns, N_POS * IMG * sizeof(float));
      ptyc_buf bmask = buf_from(be[i], mask, sizeof mask);
      ptyc_buf bw = buf_c64(be[i], waves, nb), bcost = buf_from(be[i], NULL, N * sizeof(double));
      REQUIRE_OK(ptyc_op_loss_gradient(be[i], &scan, FIRST, N, c.loss, bpat, bmask, bw, bcost));
      ptyc_c32 *got = download_c32(be[i], bw, nb);
      double got_cost[N];
      REQUIRE_OK(ptyc_buf_download(be[i], got_cost, bcost, 0, sizeof got_cost));
      snprintf(what, sizeof what, "loss_gradient %s: grad Psi", loss_names[l]);
      grad_check(names[i], what, rel_err32(got, fd, nb), TOL_FLOAT);
      snprintf(what, sizeof what, "loss_gradient %s: cost per entry", loss_names[l]);
      grad_check(names[i], what, rel_err_real(got_cost, cost_ref, N), TOL_FLOAT);
      free(got);
      ptyc_buf_free(be[i], &bpat), ptyc_buf_free(be[i], &bmask), ptyc_buf_free(be[i], &bw);
      ptyc_buf_free(be[i], &bcost);
      free_scan(be[i], &scan);
    }
  }
  free(patterns), free(waves), free(fd), free(ref);
}

/* ---- regularisers ------------------------------------------------------------------------------- */

#define L1_WEIGHT 0.3
#define TV_WEIGHT 0.7
#define REG_EPS 1e-4 /* PT_REG_EPS */

static double smooth(double a2) { return sqrt(a2 + REG_EPS * REG_EPS); }

/* Forward differences with zero across the last row and column. */
static void differences(const ptyc_c64 *o, int y, int x, ptyc_c64 *a, ptyc_c64 *b) {
  ptyc_c64 z = o[y * W + x];
  *a = y + 1 < H ? c64(o[(y + 1) * W + x].re - z.re, o[(y + 1) * W + x].im - z.im) : c64(0, 0);
  *b = x + 1 < W ? c64(o[y * W + x + 1].re - z.re, o[y * W + x + 1].im - z.im) : c64(0, 0);
}

static double reg_cost(void *ctx, const ptyc_c64 *o) {
  (void)ctx;
  double total = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      ptyc_c64 a, b;
      differences(o, y, x, &a, &b);
      total += L1_WEIGHT * smooth(c64_abs2(o[y * W + x])) + TV_WEIGHT * smooth(c64_abs2(a) + c64_abs2(b));
    }
  return total;
}

static void test_regularize(ptyc_backend *const *be, const char *const *names, int n_be) {
  size_t no = (size_t)H * W;
  ptyc_c64 *o = random_c64(no, 1.0);
  ptyc_c64 *fd = grad_malloc(no * sizeof *fd), *ref = grad_malloc(no * sizeof *ref);
  fd_gradient(reg_cost, NULL, o, no, fd);
  /* scatter form: t(y,x) = s(|a|^2 + |b|^2) has d t/d conj(a) = a / (2t), and a, b enter
   * as +O at the neighbour, -O at (y, x) */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      size_t i = (size_t)y * W + x;
      ref[i] = c64_add(ref[i], c64_scale(o[i], L1_WEIGHT / (2 * smooth(c64_abs2(o[i])))));
      ptyc_c64 a, b;
      differences(o, y, x, &a, &b);
      double t = smooth(c64_abs2(a) + c64_abs2(b)), f = TV_WEIGHT / (2 * t);
      ref[i] = c64_add(ref[i], c64_scale(c64_add(a, b), -f));
      if (y + 1 < H) ref[i + W] = c64_add(ref[i + W], c64_scale(a, f));
      if (x + 1 < W) ref[i + 1] = c64_add(ref[i + 1], c64_scale(b, f));
    }
  grad_check("double", "regularisers: grad of L1 + TV", rel_err64(ref, fd, no), TOL_DOUBLE);
  double cost_ref = reg_cost(NULL, o);
  for (int i = 0; i < n_be; i++) {
    ptyc_buf bo = buf_c64(be[i], o, no), g = buf_from(be[i], NULL, no * sizeof(ptyc_c32));
    double start = 1.5;
    ptyc_buf cost = buf_from(be[i], &start, sizeof start);
    REQUIRE_OK(ptyc_op_object_regularize(be[i], bo, H, W, L1_WEIGHT, TV_WEIGHT, g, cost));
    ptyc_c32 *got = download_c32(be[i], g, no);
    double got_cost;
    REQUIRE_OK(ptyc_buf_download(be[i], &got_cost, cost, 0, sizeof got_cost));
    grad_check(names[i], "object_regularize: grad of L1 + TV", rel_err32(got, fd, no), TOL_FLOAT);
    double want = cost_ref + start;
    grad_check(names[i], "object_regularize: cost (accumulated)", fabs(got_cost - want) / want, TOL_FLOAT);
    free(got);
    ptyc_buf_free(be[i], &bo), ptyc_buf_free(be[i], &g), ptyc_buf_free(be[i], &cost);
  }
  free(o), free(fd), free(ref);
}

int main(void) {
  ptyc_backend *be[2] = {NULL, NULL};
  const char *names[2];
  int n_be = grad_backends(be, names);
  printf("fft\n");
  test_fft(be, names, n_be);
  printf("shift\n");
  test_shift(be, names, n_be);
  test_interp(be, names, n_be);
  printf("exit waves\n");
  test_exit_waves(be, names, n_be);
  printf("loss\n");
  test_loss(be, names, n_be);
  printf("regularisers\n");
  test_regularize(be, names, n_be);
  for (int i = 0; i < n_be; i++) {
    EXPECT(ptyc_backend_bytes_in_use(be[i]) == 0);
    ptyc_backend_free(be[i]);
  }
  return TEST_RESULT();
}
