/* Array and physics conventions shared by every layer (see shared/FORMATS.md).
 *
 * - Arrays are row-major: [pattern][y][x], [mode][y][x], x fastest.
 * - Positions are (y, x) pairs of the TOP-LEFT corner of the probe window in object
 *   pixels. The integer part selects the object patch O[y0 : y0+M, x0 : x0+M]; the
 *   fractional part f = (fy, fx) shifts every probe mode: P_f(r) = P(r - f), done in
 *   Fourier space as P_f = F^-1{ F{P} * exp(-2 pi i (u fy + v fx) / M) } with u, v the
 *   signed frequency indices (-M/2 .. M/2-1).
 * - F is the unnormalised 2-D DFT with forward sign -1; the inverse carries 1/M^2.
 *   Backends' FFTs are unnormalised both ways; ops that feed an inverse FFT fold the
 *   1/M^2 in, and say so.
 * - Measured patterns are intensities. Inside ptyc they are stored with the zero
 *   frequency at [0][0] (the FFT's own layout); readers convert from the file's layout.
 * - Complex values are ptyc_c32 {re, im}, layout-compatible with fftwf_complex and
 *   cufftComplex. */
#ifndef PTYC_TYPES_H
#define PTYC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptyc_c32 {
  float re, im;
} ptyc_c32;

typedef struct ptyc_c64 {
  double re, im;
} ptyc_c64;

#ifdef __cplusplus
#define PT_STATIC_ASSERT static_assert
#else
#define PT_STATIC_ASSERT _Static_assert
#endif
PT_STATIC_ASSERT(sizeof(ptyc_c32) == 8, "ptyc_c32 must be two packed floats");
PT_STATIC_ASSERT(sizeof(ptyc_c64) == 16, "ptyc_c64 must be two packed doubles");

/* Element math shared by host and device code. */
#if defined(__CUDACC__)
#define PT_HD __host__ __device__
#else
#define PT_HD
#endif

PT_HD static inline ptyc_c32 pt_c32(float re, float im) {
  ptyc_c32 z;
  z.re = re;
  z.im = im;
  return z;
}
PT_HD static inline ptyc_c32 pt_cmul(ptyc_c32 a, ptyc_c32 b) {
  return pt_c32(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
/* conj(a) * b */
PT_HD static inline ptyc_c32 pt_cmulc(ptyc_c32 a, ptyc_c32 b) {
  return pt_c32(a.re * b.re + a.im * b.im, a.re * b.im - a.im * b.re);
}
PT_HD static inline ptyc_c32 pt_cadd(ptyc_c32 a, ptyc_c32 b) { return pt_c32(a.re + b.re, a.im + b.im); }
PT_HD static inline ptyc_c32 pt_csub(ptyc_c32 a, ptyc_c32 b) { return pt_c32(a.re - b.re, a.im - b.im); }
PT_HD static inline ptyc_c32 pt_cscale(ptyc_c32 a, float s) { return pt_c32(a.re * s, a.im * s); }
PT_HD static inline float pt_cabs2(ptyc_c32 a) { return a.re * a.re + a.im * a.im; }

/* Signed frequency index of FFT bin i of length m: 0..m/2-1 then -m/2..-1. */
PT_HD static inline int pt_freq_index(int i, int m) { return i < (m + 1) / 2 ? i : i - m; }

#ifdef __cplusplus
}
#endif
#endif
