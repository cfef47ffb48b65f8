/* src/rng.h: Philox4x32-10 known answers, moments of the uniform, normal and Poisson
 * samplers, and the shuffle. */
#include <stdint.h>
#include <string.h>

#include "rng.h"
#include "test_util.h"

/* Known-answer vectors of Random123 (kat_vectors, "philox4x32 10"): counter, key, result. */
static void test_philox_known_answers(void) {
  static const uint32_t kat[3][10] = {
      {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
       0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int t = 0; t < 3; t++) {
    uint32_t out[4];
    pt_philox4x32_10(&kat[t][0], &kat[t][4], out);
    for (int w = 0; w < 4; w++) {
      if (out[w] != kat[t][6 + w])
        fprintf(stderr, "vector %d word %d: got %08x, expected %08x\n", t, w, out[w],
                kat[t][6 + w]);
      EXPECT(out[w] == kat[t][6 + w]);
    }
  }
  /* The 64-bit wrapper packs the words little-end first. */
  uint32_t a[4];
  pt_philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, a);
  EXPECT(a[0] == 0xd16cfe09u && a[1] == 0x94fdccebu && a[2] == 0x5001e420u &&
         a[3] == 0x24126ea1u);
}

static void test_uniform_and_normal(void) {
  const int n = 1000000;
  double s1 = 0, s2 = 0, umin = 1, umax = 0, z1 = 0, z2 = 0, z4 = 0;
  for (int i = 0; i < n; i++) {
    double u = pt_rng_uniform(42, 3, (uint64_t)i);
    s1 += u;
    s2 += u * u;
    if (u < umin) umin = u;
    if (u > umax) umax = u;
    double z = pt_rng_normal(42, 4, (uint64_t)i);
    z1 += z;
    z2 += z * z;
    z4 += z * z * z * z;
  }
  double mean = s1 / n, var = s2 / n - mean * mean;
  EXPECT(umin >= 0.0 && umax < 1.0);
  EXPECT_NEAR(mean, 0.5, 5 * sqrt(1.0 / 12 / n)); /* 5 sigma */
  EXPECT_NEAR(var, 1.0 / 12, 0.002);
  EXPECT_NEAR(z1 / n, 0.0, 5 * sqrt(1.0 / n));
  EXPECT_NEAR(z2 / n, 1.0, 5 * sqrt(2.0 / n));
  EXPECT_NEAR(z4 / n, 3.0, 5 * sqrt(96.0 / n)); /* Var(z^4) = 105 - 9 */
  /* Same counter, same value; other key or stream, other value. */
  EXPECT(pt_rng_uniform(42, 3, 7) == pt_rng_uniform(42, 3, 7));
  EXPECT(pt_rng_uniform(42, 3, 7) != pt_rng_uniform(43, 3, 7));
  EXPECT(pt_rng_uniform(42, 3, 7) != pt_rng_uniform(42, 5, 7));
}

static void test_poisson(void) {
  const double means[] = {0.5, 5.0, 50.0, 5000.0, 1e7};
  const int n = 400000;
  for (size_t t = 0; t < sizeof means / sizeof means[0]; t++) {
    double lam = means[t], s1 = 0, s2 = 0;
    int integral = 1;
    for (int i = 0; i < n; i++) {
      double k = pt_rng_poisson(7, 11 + t, (uint64_t)i, lam);
      if (k != floor(k) || k < 0) integral = 0;
      s1 += k;
      s2 += k * k;
    }
    double mean = s1 / n, var = s2 / n - mean * mean;
    EXPECT(integral);
    /* 5 sigma of the sample mean; the sample variance has relative sd ~ sqrt(2/n) */
    EXPECT_NEAR(mean, lam, 5 * sqrt(lam / n));
    EXPECT_NEAR(var / lam, 1.0, 5 * sqrt((2.0 + 1.0 / lam) / n));
  }
  /* Probabilities of small counts at mean 5 against the pmf. */
  {
    const double lam = 5.0;
    int hist[8] = {0};
    for (int i = 0; i < n; i++) {
      double k = pt_rng_poisson(9, 1, (uint64_t)i, lam);
      if (k < 8) hist[(int)k]++;
    }
    double p = exp(-lam);
    for (int k = 0; k < 8; k++) {
      EXPECT_NEAR(hist[k] / (double)n, p, 5 * sqrt(p / n));
      p *= lam / (k + 1);
    }
  }
  /* Same at mean 30 (PTRS branch), where the rejection step matters. */
  {
    const double lam = 30.0;
    int hist[61] = {0};
    for (int i = 0; i < n; i++) {
      double k = pt_rng_poisson(9, 2, (uint64_t)i, lam);
      if (k <= 60) hist[(int)k]++;
    }
    double p = exp(-lam);
    for (int k = 0; k <= 60; k++) {
      EXPECT_NEAR(hist[k] / (double)n, p, 5 * sqrt(p / n) + 1e-5);
      p *= lam / (k + 1);
    }
  }
  EXPECT(pt_rng_poisson(1, 1, 1, 0.0) == 0.0);
  EXPECT(pt_rng_poisson(1, 1, 1, -3.0) == 0.0);
  EXPECT(pt_rng_poisson(1, 1, 1, NAN) == 0.0);
  EXPECT_NEAR(pt_log_factorial(20.0), log(2432902008176640000.0), 1e-12);
  EXPECT_NEAR(pt_log_factorial(15.0), log(1307674368000.0), 1e-12);
}

static void test_shuffle(void) {
  enum { N = 1000 };
  int32_t a[N], b[N];
  int seen[N];
  for (int i = 0; i < N; i++) a[i] = b[i] = i;
  pt_rng_shuffle_i32(5, 1, a, N);
  pt_rng_shuffle_i32(5, 1, b, N);
  EXPECT(memcmp(a, b, sizeof a) == 0); /* deterministic */
  memset(seen, 0, sizeof seen);
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    EXPECT(a[i] >= 0 && a[i] < N);
    if (a[i] >= 0 && a[i] < N) seen[a[i]]++;
    fixed += a[i] == i;
  }
  for (int i = 0; i < N; i++) EXPECT(seen[i] == 1); /* a permutation */
  EXPECT_LE(fixed, 8); /* ~1 fixed point expected for a random permutation */
  for (int i = 0; i < N; i++) b[i] = i;
  pt_rng_shuffle_i32(5, 2, b, N);
  EXPECT(memcmp(a, b, sizeof a) != 0); /* another stream, another order */
  /* Degenerate sizes do nothing. */
  int32_t one = 3;
  pt_rng_shuffle_i32(5, 1, &one, 1);
  pt_rng_shuffle_i32(5, 1, NULL, 0);
  EXPECT(one == 3);
}

int main(void) {
  test_philox_known_answers();
  test_uniform_and_normal();
  test_poisson();
  test_shuffle();
  return TEST_RESULT();
}
