/* Seeded, counter-based random numbers for host and CUDA device code.
 *
 * The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11): a keyed bijection of a 128-bit counter. A random number is a pure
 * function of (key, counter), so a value never depends on how many threads, ranks or
 * GPU blocks produced its neighbours, nor in which order.
 *
 * How ptyc uses the counter:
 *   key     - the user's seed (64 bits)
 *   stream  - what the numbers are for (e.g. "object phase noise", "Poisson noise of
 *             the patterns"); only its low 48 bits are used
 *   index   - which element of that stream (e.g. the pixel's linear index), 64 bits
 *   draw    - the top 16 bits of the counter, reserved for samplers that need more than
 *             one Philox block for one value (Poisson rejection); 0 otherwise
 * Counter words: c[0], c[1] = index (low, high); c[2] = stream bits 0..31;
 * c[3] = stream bits 32..47 | draw << 16. Key words: k[0] = key low, k[1] = key high.
 *
 * Give every purpose its own stream: uniform, normal and Poisson values taken at the same
 * (key, stream, index) share a Philox block and are therefore not independent. */
#ifndef PT_RNG_H
#define PT_RNG_H

#include <math.h>
#include <stdint.h>

#include "ptyc/types.h"

/* Philox4x32 round multipliers and Weyl key increments (from the paper). */
#define PT_PHILOX_M0 0xD2511F53u
#define PT_PHILOX_M1 0xCD9E8D57u
#define PT_PHILOX_W0 0x9E3779B9u
#define PT_PHILOX_W1 0xBB67AE85u
#define PT_PHILOX_ROUNDS 10

/* Below this mean the Poisson sampler inverts the CDF; from it on it uses PTRS. */
#define PT_POISSON_INVERSION_MAX 10.0

/* The raw block function: 10 rounds of Philox4x32 on counter `ctr` with key `key`. */
PT_HD static inline void pt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                                          uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < PT_PHILOX_ROUNDS; round++) {
    if (round > 0) { /* the key schedule: a Weyl sequence, bumped before rounds 2..10 */
      k0 += PT_PHILOX_W0;
      k1 += PT_PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PT_PHILOX_M0 * c0; /* 32x32 -> 64-bit products */
    uint64_t p1 = (uint64_t)PT_PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* Philox block for a 64-bit key and a 128-bit counter given as two 64-bit halves. */
PT_HD static inline void pt_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo,
                                       uint32_t out[4]) {
  uint32_t c[4], k[2];
  c[0] = (uint32_t)counter_lo;
  c[1] = (uint32_t)(counter_lo >> 32);
  c[2] = (uint32_t)counter_hi;
  c[3] = (uint32_t)(counter_hi >> 32);
  k[0] = (uint32_t)key;
  k[1] = (uint32_t)(key >> 32);
  pt_philox4x32_10(c, k, out);
}

/* The block of (key, stream, index, draw) in the layout described at the top. */
PT_HD static inline void pt_rng_block(uint64_t key, uint64_t stream, uint64_t index,
                                      uint32_t draw, uint32_t out[4]) {
  uint64_t hi = (stream & 0xFFFFFFFFFFFFull) | ((uint64_t)(draw & 0xFFFFu) << 48);
  pt_philox4x32(key, hi, index, out);
}

/* 53 random bits from two words -> a double in [0, 1). */
PT_HD static inline double pt_rng_to_unit(uint32_t hi, uint32_t lo) {
  uint64_t bits = ((uint64_t)hi << 32 | lo) >> 11;
  return (double)bits * (1.0 / 9007199254740992.0); /* 2^-53 */
}

/* Uniform double in [0, 1). */
PT_HD static inline double pt_rng_uniform(uint64_t key, uint64_t stream, uint64_t index) {
  uint32_t r[4];
  pt_rng_block(key, stream, index, 0, r);
  return pt_rng_to_unit(r[0], r[1]);
}

/* Standard normal N(0, 1) by Box-Muller from the two 53-bit halves of one block. */
PT_HD static inline double pt_rng_normal(uint64_t key, uint64_t stream, uint64_t index) {
  uint32_t r[4];
  pt_rng_block(key, stream, index, 0, r);
  double u1 = 1.0 - pt_rng_to_unit(r[0], r[1]); /* (0, 1]: log(u1) is finite */
  double u2 = pt_rng_to_unit(r[2], r[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* log(k!) for k >= 0 without lgamma() (which writes the global `signgam` on glibc and so
 * races between OpenMP threads): exact products below 16, Stirling's series above, whose
 * first omitted term is below 1e-13 there. */
PT_HD static inline double pt_log_factorial(double k) {
  if (k < 16.0) {
    double f = 1.0;
    for (double i = 2.0; i <= k; i += 1.0) f *= i;
    return log(f);
  }
  double n = k + 1.0; /* log Gamma(n) */
  double inv = 1.0 / n, inv2 = inv * inv;
  return (n - 0.5) * log(n) - n + 0.91893853320467274 /* log(2 pi) / 2 */
         + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
}

/* Poisson sample with mean `mean` (>= 0), exact in distribution.
 *
 * - mean < PT_POISSON_INVERSION_MAX (10): inversion of the CDF with one uniform; the
 *   walk takes ~mean steps and exp(-mean) cannot underflow.
 * - otherwise: PTRS, the transformed rejection method with squeeze of W. Hormann
 *   ("The transformed rejection method for generating Poisson random variables",
 *   Insurance: Mathematics and Economics 12, 1993). It is exact for every mean (unlike a
 *   normal approximation, whose skew error at the few-hundred-count pixels of a
 *   diffraction pattern would bias a Poisson likelihood), costs O(1) per sample
 *   (about 1.1 trials; most are accepted by the squeeze without a logarithm), and needs
 *   exactly two uniforms per trial: one Philox block, with the trial number as `draw`.
 * Non-finite or negative means give 0. */
PT_HD static inline double pt_rng_poisson(uint64_t key, uint64_t stream, uint64_t index,
                                          double mean) {
  uint32_t r[4];
  if (!(mean > 0.0)) return 0.0; /* also catches NaN */
  if (mean < PT_POISSON_INVERSION_MAX) {
    pt_rng_block(key, stream, index, 0, r);
    double u = pt_rng_to_unit(r[0], r[1]);
    double p = exp(-mean), cdf = p, k = 0.0;
    /* the bound stops the walk if rounding leaves cdf a hair below a u close to 1 */
    while (u > cdf && k < 1000.0) {
      k += 1.0;
      p *= mean / k;
      cdf += p;
    }
    return k;
  }
  /* PTRS constants (Hormann 1993, table of algorithm PTRS) */
  double smu = sqrt(mean);
  double b = 0.931 + 2.53 * smu;
  double a = -0.059 + 0.02483 * b;
  double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  double v_r = 0.9277 - 3.6224 / (b - 2.0);
  double log_mean = log(mean);
  for (uint32_t trial = 0; trial < 0xFFFFu; trial++) {
    pt_rng_block(key, stream, index, trial, r);
    double u = pt_rng_to_unit(r[0], r[1]) - 0.5;
    double v = pt_rng_to_unit(r[2], r[3]);
    double us = 0.5 - fabs(u);
    double k = floor((2.0 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= v_r) return k; /* the squeeze: accept at once */
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    /* the exact test: log(v * alpha / (a / us^2 + b)) <= log(mean^k e^-mean / k!) */
    if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <=
        -mean + k * log_mean - pt_log_factorial(k))
      return k;
  }
  /* Unreachable in practice (each trial accepts with probability ~0.9). */
  return floor(mean + 0.5);
}

/* Host-only helpers. */
#ifndef __CUDA_ARCH__
/* Fisher-Yates shuffle of a[0..n-1]: the swap partner of element i (i = n-1 .. 1) is
 * floor(u_i * (i + 1)) with u_i = pt_rng_uniform(key, stream, i); 53-bit uniforms make
 * the modulo bias (at most n / 2^53) negligible. Deterministic for (key, stream). */
static inline void pt_rng_shuffle_i32(uint64_t key, uint64_t stream, int32_t *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(pt_rng_uniform(key, stream, (uint64_t)i) * (double)(i + 1));
    if (j > i) j = i; /* guards the (impossible) case u * (i + 1) rounding up to i + 1 */
    int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
#endif

#endif
