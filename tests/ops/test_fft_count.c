/* ptyc_fft_exec_count: the first `count` transforms of a plan equal a plan of exactly
 * `count` (CPU), and on CUDA (when a GPU is visible) the power-of-two chunks give the
 * CPU's transforms for every count up to the plan's; out-of-range counts are refused
 * and count 0 does nothing. */
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
