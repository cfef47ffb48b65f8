/* Status codes and the last-error message.
 *
 * Every fallible function returns ptyc_status; results go through out-parameters.
 * The detailed, human-readable message of the most recent failure on this thread is
 * kept by ptyc_fail() and read with ptyc_last_error(). It is one line that says what
 * is wrong and, where possible, how to fix it. */
#ifndef PTYC_STATUS_H
#define PTYC_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#define PTYC_STATUS_LIST(X)                                   \
  X(PTYC_OK, "ok")                                            \
  X(PTYC_E_ARG, "invalid argument")                           \
  X(PTYC_E_NOMEM, "out of memory")                            \
  X(PTYC_E_IO, "input/output error")                          \
  X(PTYC_E_FORMAT, "bad dataset")                             \
  X(PTYC_E_CONFIG, "bad job configuration")                   \
  X(PTYC_E_UNSUPPORTED, "unsupported")                        \
  X(PTYC_E_DEVICE, "device error")                            \
  X(PTYC_E_NUMERIC, "non-finite value")                       \
  X(PTYC_E_INTERRUPTED, "interrupted")                        \
  X(PTYC_E_COMM, "communication error")

typedef enum ptyc_status {
#define PTYC_STATUS_ENUM_(name, text) name,
  PTYC_STATUS_LIST(PTYC_STATUS_ENUM_)
#undef PTYC_STATUS_ENUM_
  PTYC_STATUS_COUNT
} ptyc_status;

/* A short generic text for a status ("bad dataset"). */
const char *ptyc_status_str(ptyc_status status);

/* The detailed message of the last failure on this thread, or "" if none. */
const char *ptyc_last_error(void);

/* Records a printf-style message as the last error and returns `status`, so that
 *   return ptyc_fail(PTYC_E_FORMAT, "%s: /dp has %d dimensions, expected 3", path, nd);
 * reports and propagates in one statement. */
ptyc_status ptyc_fail(ptyc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Forgets the last error (tests use it between cases). */
void ptyc_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
