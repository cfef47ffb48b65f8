/* Minimal assertions for ptyc tests: each prints the expression and both values. */
#ifndef PTYC_TEST_UTIL_H
#define PTYC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ptyc/status.h"

#define PT_TEST_SKIP 77

static int pt_test_failures = 0;

#define EXPECT(cond)                                                              \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);          \
      pt_test_failures++;                                                         \
    }                                                                             \
  } while (0)

#define EXPECT_OK(expr)                                                           \
  do {                                                                            \
    ptyc_status expect_st_ = (expr);                                              \
    if (expect_st_ != PTYC_OK) {                                                  \
      fprintf(stderr, "%s:%d: FAILED: %s returned %s: %s\n", __FILE__, __LINE__,  \
              #expr, ptyc_status_str(expect_st_), ptyc_last_error());             \
      pt_test_failures++;                                                         \
    }                                                                             \
  } while (0)

/* Stops the test at once if `expr` fails (later steps would only crash). */
#define REQUIRE_OK(expr)                                                          \
  do {                                                                            \
    ptyc_status require_st_ = (expr);                                             \
    if (require_st_ != PTYC_OK) {                                                 \
      fprintf(stderr, "%s:%d: FATAL: %s returned %s: %s\n", __FILE__, __LINE__,   \
              #expr, ptyc_status_str(require_st_), ptyc_last_error());            \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

#define EXPECT_STATUS(expr, want)                                                 \
  do {                                                                            \
    ptyc_status expect_st_ = (expr);                                              \
    if (expect_st_ != (want)) {                                                   \
      fprintf(stderr, "%s:%d: FAILED: %s returned %s, expected %s (%s)\n",        \
              __FILE__, __LINE__, #expr, ptyc_status_str(expect_st_),             \
              ptyc_status_str(want), ptyc_last_error());                          \
      pt_test_failures++;                                                         \
    }                                                                             \
  } while (0)

#define EXPECT_LE(a, b)                                                           \
  do {                                                                            \
    double expect_a_ = (double)(a), expect_b_ = (double)(b);                      \
    if (!(expect_a_ <= expect_b_)) {                                              \
      fprintf(stderr, "%s:%d: FAILED: %s <= %s (%.6g vs %.6g)\n", __FILE__,       \
              __LINE__, #a, #b, expect_a_, expect_b_);                            \
      pt_test_failures++;                                                         \
    }                                                                             \
  } while (0)

#define EXPECT_NEAR(a, b, tol)                                                    \
  do {                                                                            \
    double expect_a_ = (double)(a), expect_b_ = (double)(b);                      \
    if (!(fabs(expect_a_ - expect_b_) <= (tol))) {                                \
      fprintf(stderr, "%s:%d: FAILED: %s ~ %s (%.9g vs %.9g, tol %.3g)\n",        \
              __FILE__, __LINE__, #a, #b, expect_a_, expect_b_, (double)(tol));   \
      pt_test_failures++;                                                         \
    }                                                                             \
  } while (0)

#define TEST_RESULT()                                                             \
  (pt_test_failures == 0 ? (printf("ok\n"), 0)                                    \
                         : (fprintf(stderr, "%d failure(s)\n", pt_test_failures), 1))

#endif
