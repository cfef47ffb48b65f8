/* ptyc_fft_exec_count: the first `count` transforms of a plan equal a plan of exactly
 * `count` (CPU), and on CUDA (when a GPU is visible) the power-of-two chunks give the
 * CPU's transforms for every count up to the plan's; out-of-range counts are refused
 * and count 0 does nothing. ptyc_fft_exit_waves: exit waves then transforms. */
#include <math.h>
#include <string.h>

#include "ptyc/backend.h"
#include "test_util.h"

#define M 16
#define PLANNED 13 /* not a power of two: counts take 1 to 3 chunks */

static void fill(ptyc_c32 *x, size_t n) {
  for (size_t i = 0; i < n; i++) /* fixed, non-trivial values */
    x[i] = pt_c32((float)sin(0.37 * (double)i + 0.1), (float)cos(1.3 * (double)i));
}

/* Transforms `count` images of `host` (in place) with ptyc_fft_exec_count. */
static void run(ptyc_backend *be, ptyc_fft *plan, ptyc_c32 *host, int count, int inverse) {
  ptyc_buf buf;
  size_t nbytes = sizeof(ptyc_c32) * M * M * PLANNED;
  REQUIRE_OK(ptyc_buf_alloc(be, nbytes, &buf));
  REQUIRE_OK(ptyc_buf_upload(be, buf, 0, host, nbytes));
  EXPECT_OK(ptyc_fft_exec_count(be, plan, buf, count, inverse));
  REQUIRE_OK(ptyc_buf_download(be, host, buf, 0, nbytes));
  ptyc_buf_free(be, &buf);
}

/* ptyc_fft_exit_waves equals exit_waves then the transforms (here, the CPU's own
 * fallback: the GPU's fused kernel is checked in tests/gpu/test_cuda_ops.c), and refuses
 * more images than the plan holds or a plan of another size. One mode, positions at
 * integer corners (2 j, j) of a 3M x 3M object. */
static void check_exit_waves(ptyc_backend *be, ptyc_fft *plan, const ptyc_c32 *input) {
  enum { N = PLANNED + 1, W = 3 * M };
  double positions[2 * N];
  int32_t order[N];
  static ptyc_c32 object[W * W], want[M * M * N], got[M * M * N];
  for (int j = 0; j < N; j++) positions[2 * j] = 2 * (j % 8), positions[2 * j + 1] = j % 8, order[j] = N - 1 - j;
  fill(object, (size_t)W * W);
  ptyc_buf pos, ord, obj, probes, psi;
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof positions, &pos));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof order, &ord));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof object, &obj));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof want, &probes));
  REQUIRE_OK(ptyc_buf_alloc(be, sizeof want, &psi));
  REQUIRE_OK(ptyc_buf_upload(be, pos, 0, positions, sizeof positions));
  REQUIRE_OK(ptyc_buf_upload(be, ord, 0, order, sizeof order));
  REQUIRE_OK(ptyc_buf_upload(be, obj, 0, object, sizeof object));
  REQUIRE_OK(ptyc_buf_upload(be, probes, 0, input, sizeof(ptyc_c32) * M * M * PLANNED));
  ptyc_scan scan = {M, 1, W, W, pos, ord, N};
  const int first = 1, n = PLANNED - 2;
  EXPECT_OK(ptyc_op_exit_waves(be, &scan, first, n, obj, probes, psi));
  EXPECT_OK(ptyc_fft_exec_count(be, plan, psi, n, 0));
  REQUIRE_OK(ptyc_buf_download(be, want, psi, 0, sizeof want));
  REQUIRE_OK(ptyc_buf_zero(be, psi, 0, sizeof want));
  EXPECT_OK(ptyc_fft_exit_waves(be, plan, &scan, first, n, obj, probes, psi));
  REQUIRE_OK(ptyc_buf_download(be, got, psi, 0, sizeof got));
  EXPECT(memcmp(want, got, sizeof(ptyc_c32) * M * M * n) == 0);
  EXPECT_STATUS(ptyc_fft_exit_waves(be, plan, &scan, 0, PLANNED + 1, obj, probes, psi), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_fft_exit_waves(be, NULL, &scan, first, n, obj, probes, psi), PTYC_E_ARG);
  ptyc_scan other = scan;
  other.m = M / 2;
  EXPECT_STATUS(ptyc_fft_exit_waves(be, plan, &other, first, n, obj, probes, psi), PTYC_E_ARG);
  ptyc_buf *bufs[] = {&pos, &ord, &obj, &probes, &psi};
  for (int i = 0; i < 5; i++) ptyc_buf_free(be, bufs[i]);
}

int main(void) {
  size_t total = (size_t)M * M * PLANNED, image = (size_t)M * M;
  static ptyc_c32 input[M * M * PLANNED], a[M * M * PLANNED], b[M * M * PLANNED];
  fill(input, total);
  ptyc_backend *cpu = NULL;
  REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CPU, 0, 2, &cpu));
  ptyc_fft *plan = NULL;
  REQUIRE_OK(ptyc_fft_plan(cpu, M, PLANNED, &plan));

  /* CPU: the first `count` transformed, the rest untouched, equal to an exact plan. */
  for (int count = 0; count <= PLANNED; count++) {
    memcpy(a, input, sizeof input);
    run(cpu, plan, a, count, count % 2);
    ptyc_fft *exact = NULL;
    memcpy(b, input, sizeof input);
    if (count > 0) {
      REQUIRE_OK(ptyc_fft_plan(cpu, M, count, &exact));
      ptyc_buf buf;
      REQUIRE_OK(ptyc_buf_alloc(cpu, sizeof b, &buf));
      REQUIRE_OK(ptyc_buf_upload(cpu, buf, 0, b, sizeof b));
      REQUIRE_OK(ptyc_fft_exec(cpu, exact, buf, count % 2));
      REQUIRE_OK(ptyc_buf_download(cpu, b, buf, 0, sizeof b));
      ptyc_buf_free(cpu, &buf);
      ptyc_fft_free(cpu, exact);
    }
    EXPECT(memcmp(a, b, sizeof a) == 0);
    EXPECT(memcmp(a + (size_t)count * image, input + (size_t)count * image,
                  sizeof(ptyc_c32) * (total - (size_t)count * image)) == 0);
  }
  ptyc_buf small;
  REQUIRE_OK(ptyc_buf_alloc(cpu, sizeof(ptyc_c32) * image, &small));
  EXPECT_STATUS(ptyc_fft_exec_count(cpu, plan, small, PLANNED + 1, 0), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_fft_exec_count(cpu, plan, small, -1, 0), PTYC_E_ARG);
  EXPECT_STATUS(ptyc_fft_exec_count(cpu, plan, small, 2, 0), PTYC_E_ARG); /* too small */
  ptyc_buf_free(cpu, &small);
  check_exit_waves(cpu, plan, input);

  /* CUDA against the CPU, every count: float transforms of 16 x 16 agree to about
   * 1e-7 relative; 1e-5 leaves room for other FFT algorithms. */
  char why[256];
  if (ptyc_cuda_usable(why, sizeof why)) {
    ptyc_backend *gpu = NULL;
    ptyc_fft *gplan = NULL;
    REQUIRE_OK(ptyc_backend_create(PTYC_DEVICE_CUDA, 0, 0, &gpu));
    REQUIRE_OK(ptyc_fft_plan(gpu, M, PLANNED, &gplan));
    for (int count = 1; count <= PLANNED; count++) {
      memcpy(a, input, sizeof input);
      memcpy(b, input, sizeof input);
      run(cpu, plan, a, count, 0);
      run(gpu, gplan, b, count, 0);
      double diff = 0, norm = 0;
      for (size_t i = 0; i < total; i++) {
        double dr = a[i].re - b[i].re, di = a[i].im - b[i].im;
        diff += dr * dr + di * di;
        norm += (double)a[i].re * a[i].re + (double)a[i].im * a[i].im;
      }
      EXPECT_LE(sqrt(diff / norm), 1e-5);
    }
    ptyc_fft_free(gpu, gplan);
    ptyc_backend_free(gpu);
  }
  ptyc_fft_free(cpu, plan);
  ptyc_backend_free(cpu);
  return TEST_RESULT();
}
