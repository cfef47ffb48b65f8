/* Times every backend op at a production size and prints milliseconds and the effective
 * memory bandwidth (bytes each op must move at least / time).
 *
 *   bench_ops [cuda|cpu] [M K n]      default: cuda 256 4 96 (exit waves ~200 MB)
 *
 * Built by tests/CMakeLists.txt with the other benchmarks (build/tests/bench_ops).
 * Each op runs once to warm up, then REPEATS times under the backend's timer (device
 * events on a GPU). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptyc/backend.h"
#include "rng.h"

#define REPEATS 20

static void die_on(ptyc_status st, const char *what) {
  if (st == PTYC_OK) return;
  fprintf(stderr, "%s failed: %s: %s\n", what, ptyc_status_str(st), ptyc_last_error());
  exit(1);
}
#define CHECK(expr) die_on((expr), #expr)

static ptyc_backend *be;

/* A buffer of random floats in [lo, hi). */
static ptyc_buf random_buf(size_t n_floats, double lo, double hi, uint64_t stream) {
  float *h = malloc(n_floats * sizeof *h);
  if (h == NULL) die_on(PTYC_E_NOMEM, "malloc");
  for (size_t i = 0; i < n_floats; i++) h[i] = (float)(lo + (hi - lo) * pt_rng_uniform(1, stream, i));
  ptyc_buf b;
  CHECK(ptyc_buf_alloc(be, n_floats * sizeof *h, &b));
  CHECK(ptyc_buf_upload(be, b, 0, h, n_floats * sizeof *h));
  free(h);
  return b;
}

/* The ops, as one switch so that each can be run repeatedly by number. */
enum {
  OP_FFT_FORWARD, OP_FFT_INVERSE, OP_SHIFT, OP_UNSHIFT, OP_EXIT_WAVES, OP_GAUSSIAN,
  OP_POISSON, OP_OBJECT_GRADIENT, OP_PROBE_GRADIENT, OP_LSQML, OP_NORM2, OP_SCALE,
  OP_PRECONDITION, OP_ORTHOGONALIZE, OP_INTERP_SHIFT, OP_INTERP_UNSHIFT, OP_COUNT
};
static const char *op_names[OP_COUNT] = {
    "fft forward", "fft inverse", "shift_spectrum", "unshift_accumulate", "exit_waves",
    "fourier_residual gaussian", "fourier_residual poisson", "object_gradient",
    "probe_gradient", "lsqml_steps", "norm2 (waves)", "scale (waves)", "precondition (object)",
    "orthogonalize_modes", "interp_shift + exit", "interp_unshift + probe grad"};

typedef struct bench {
  ptyc_scan scan;
  int n;
  ptyc_fft *plan;
  ptyc_buf object, dobject, num, oden, probe, dprobe, probes, waves, chi, patterns, cost,
      alpha, pden, weights, out;
} bench;

static void run_op(bench *b, int op) {
  const ptyc_scan *s = &b->scan;
  size_t batch = (size_t)b->n * s->n_modes * s->m * s->m, obj = (size_t)s->obj_h * s->obj_w;
  ptyc_buf none = {0};
  switch (op) {
  case OP_FFT_FORWARD: CHECK(ptyc_fft_exec(be, b->plan, b->waves, 0)); break;
  case OP_FFT_INVERSE: CHECK(ptyc_fft_exec(be, b->plan, b->waves, 1)); break;
  case OP_SHIFT: CHECK(ptyc_op_shift_spectrum(be, s, 0, b->n, b->probe, 1e-3f, b->probes)); break;
  case OP_UNSHIFT: CHECK(ptyc_op_unshift_accumulate(be, s, 0, b->n, b->chi, 1e-3f, b->dprobe)); break;
  case OP_EXIT_WAVES: CHECK(ptyc_op_exit_waves(be, s, 0, b->n, b->object, b->probes, b->waves)); break;
  case OP_GAUSSIAN:
    CHECK(ptyc_op_fourier_residual(be, s, 0, b->n, PTYC_NOISE_GAUSSIAN, b->patterns, none,
                                   b->waves, b->cost));
    break;
  case OP_POISSON:
    CHECK(ptyc_op_fourier_residual(be, s, 0, b->n, PTYC_NOISE_POISSON, b->patterns, none,
                                   b->waves, b->cost));
    break;
  case OP_OBJECT_GRADIENT:
    CHECK(ptyc_op_object_gradient(be, s, 0, b->n, b->probes, b->chi, b->weights, b->num, b->oden));
    break;
  case OP_PROBE_GRADIENT:
    CHECK(ptyc_op_probe_gradient(be, s, 0, b->n, b->object, b->chi, b->out, b->pden));
    break;
  case OP_LSQML:
    CHECK(ptyc_op_lsqml_steps(be, s, 0, b->n, b->object, b->dobject, b->probes, b->dprobe,
                              b->chi, 0.1, 1.0, 1, 1, b->alpha));
    break;
  case OP_NORM2: CHECK(ptyc_op_norm2(be, b->chi, batch, b->cost, 0)); break;
  case OP_SCALE: CHECK(ptyc_op_scale(be, b->out, batch, 1.0f)); break;
  case OP_PRECONDITION:
    CHECK(ptyc_op_precondition(be, b->num, obj, b->oden, obj, 0.1, 0.f, b->dobject));
    break;
  case OP_ORTHOGONALIZE: CHECK(ptyc_op_orthogonalize_modes(be, b->probe, s->n_modes, s->m)); break;
  case OP_INTERP_SHIFT:
    CHECK(ptyc_op_interp_shift(be, s, 0, b->n, b->probe, b->object, b->probes, b->waves));
    break;
  case OP_INTERP_UNSHIFT:
    CHECK(ptyc_op_interp_unshift_accumulate(be, s, 0, b->n, b->object, b->chi, b->dprobe, b->pden));
    break;
  }
}

/* The bytes an op must read and write at least (complex = 8 bytes). */
static double op_bytes(const bench *b, int op) {
  const ptyc_scan *s = &b->scan;
  double img = (double)s->m * s->m, batch = b->n * s->n_modes * img * 8.0;
  double pixels_b = b->n * img, obj = (double)s->obj_h * s->obj_w;
  switch (op) {
  case OP_FFT_FORWARD:
  case OP_FFT_INVERSE: return 2 * batch;
  case OP_SHIFT: return batch;
  case OP_UNSHIFT: return batch;
  case OP_EXIT_WAVES: return 2 * batch + pixels_b * 8;
  case OP_GAUSSIAN: return 2 * batch + pixels_b * 4;
  case OP_POISSON: return 2 * batch + pixels_b * 4; /* one pass would do; we make four */
  case OP_OBJECT_GRADIENT: return 2 * batch + pixels_b * 12;
  case OP_PROBE_GRADIENT: return 2 * batch + pixels_b * 8;
  case OP_LSQML: return 2 * batch + pixels_b * 16;
  case OP_NORM2: return batch;
  case OP_SCALE: return 2 * batch;
  case OP_PRECONDITION: return obj * (8 + 4 + 8);
  case OP_ORTHOGONALIZE: return 3 * s->n_modes * img * 8;
  case OP_INTERP_SHIFT: return 2 * batch + pixels_b * 8;
  case OP_INTERP_UNSHIFT: return batch + pixels_b * 8;
  }
  return 0;
}

int main(int argc, char **argv) {
  int use_cuda = !(argc > 1 && strcmp(argv[1], "cpu") == 0);
  int m = argc > 4 ? atoi(argv[2]) : 256, k = argc > 4 ? atoi(argv[3]) : 4;
  int n = argc > 4 ? atoi(argv[4]) : 96;
  if (use_cuda) {
    char why[256];
    if (!ptyc_cuda_usable(why, sizeof why)) {
      fprintf(stderr, "no CUDA: %s\n", why);
      return 77;
    }
  }
  CHECK(ptyc_backend_create(use_cuda ? PTYC_DEVICE_CUDA : PTYC_DEVICE_CPU, 0, 0, &be));
  ptyc_device_info info;
  CHECK(ptyc_backend_device_info(be, &info));

  bench b = {.n = n};
  int side = 4 * m; /* object with the positions scattered inside it */
  double *pos = malloc(sizeof(double) * 2 * n);
  int32_t *order = malloc(sizeof(int32_t) * n);
  for (int j = 0; j < n; j++) {
    pos[2 * j] = pt_rng_uniform(2, 1, j) * (side - m - 1);
    pos[2 * j + 1] = pt_rng_uniform(2, 2, j) * (side - m - 1);
    order[j] = j;
  }
  b.scan = (ptyc_scan){.m = m, .n_modes = k, .obj_h = side, .obj_w = side, .n_positions = n};
  CHECK(ptyc_buf_alloc(be, sizeof(double) * 2 * n, &b.scan.positions));
  CHECK(ptyc_buf_upload(be, b.scan.positions, 0, pos, sizeof(double) * 2 * n));
  CHECK(ptyc_buf_alloc(be, sizeof(int32_t) * n, &b.scan.order));
  CHECK(ptyc_buf_upload(be, b.scan.order, 0, order, sizeof(int32_t) * n));
  size_t img = (size_t)m * m, batch = (size_t)n * k * img, obj = (size_t)side * side;
  b.object = random_buf(2 * obj, -1, 1, 1);
  b.dobject = random_buf(2 * obj, -1, 1, 2);
  b.num = random_buf(2 * obj, -1, 1, 3);
  b.oden = random_buf(obj, 0, 1, 4);
  b.probe = random_buf(2 * k * img, -1, 1, 5);
  b.dprobe = random_buf(2 * k * img, -1, 1, 6);
  b.probes = random_buf(2 * batch, -1, 1, 7);
  b.waves = random_buf(2 * batch, -1, 1, 8);
  b.chi = random_buf(2 * batch, -1, 1, 9);
  b.out = random_buf(2 * batch, -1, 1, 10);
  b.patterns = random_buf((size_t)n * img, 0, 10, 11);
  b.cost = random_buf(2 * (size_t)n, 0, 1, 12);
  b.alpha = random_buf(2 * (size_t)n, 0, 1, 13);
  b.pden = random_buf(img, 0, 1, 14);
  b.weights = random_buf((size_t)n, 0, 1, 15);
  CHECK(ptyc_fft_plan(be, m, n * k, &b.plan));

  printf("%s: %s | M=%d K=%d n=%d | exit waves %.1f MB | %.1f GiB allocated\n",
         ptyc_backend_name(be), info.name, m, k, n, batch * 8 / 1e6,
         ptyc_backend_bytes_in_use(be) / 1073741824.0);
  printf("%-28s %10s %10s\n", "op", "ms", "GB/s");
  for (int op = 0; op < OP_COUNT; op++) {
    run_op(&b, op);
    CHECK(ptyc_backend_sync(be));
    double ms = 0.0;
    CHECK(ptyc_timer_start(be));
    for (int r = 0; r < REPEATS; r++) run_op(&b, op);
    CHECK(ptyc_timer_stop(be, &ms));
    ms /= REPEATS;
    printf("%-28s %10.3f %10.1f\n", op_names[op], ms, op_bytes(&b, op) / (ms * 1e6));
  }

  ptyc_fft_free(be, b.plan);
  ptyc_buf *bufs[] = {&b.object, &b.dobject, &b.num, &b.oden, &b.probe, &b.dprobe, &b.probes,
                      &b.waves, &b.chi, &b.out, &b.patterns, &b.cost, &b.alpha, &b.pden,
                      &b.weights, &b.scan.positions, &b.scan.order};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ptyc_buf_free(be, bufs[i]);
  ptyc_backend_free(be);
  free(pos);
  free(order);
  return 0;
}
