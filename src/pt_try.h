/* Internal helpers to propagate a ptyc_status. Every macro is do { } while (0). */
#ifndef PT_TRY_H
#define PT_TRY_H
#include "ptyc/status.h"

/* Return the status of `expr` from the current function if it is not PTYC_OK. */
#define PT_TRY(expr)                          \
  do {                                        \
    ptyc_status pt_try_status_ = (expr);      \
    if (pt_try_status_ != PTYC_OK)            \
      return pt_try_status_;                  \
  } while (0)

/* Store the status of `expr` in the local `st` and jump to `fail` if it failed. */
#define PT_CHECK(expr)                        \
  do {                                        \
    st = (expr);                              \
    if (st != PTYC_OK)                        \
      goto fail;                              \
  } while (0)

/* Fail with `code` and a message, jumping to `fail`. */
#define PT_FAIL(code, ...)                    \
  do {                                        \
    st = ptyc_fail((code), __VA_ARGS__);      \
    goto fail;                                \
  } while (0)

#endif
