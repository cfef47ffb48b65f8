#include "ptyc/status.h"

#include <stdarg.h>
#include <stdio.h>

/* One message per thread, like errno: a failure on a worker thread never garbles
 * the message of another. */
static _Thread_local char last_error[1024];

const char *ptyc_status_str(ptyc_status status) {
  switch (status) {
#define PTYC_STATUS_CASE_(name, text) \
  case name:                          \
    return text;
    PTYC_STATUS_LIST(PTYC_STATUS_CASE_)
#undef PTYC_STATUS_CASE_
  default:
    return "unknown status";
  }
}

const char *ptyc_last_error(void) { return last_error; }

void ptyc_clear_error(void) { last_error[0] = '\0'; }

ptyc_status ptyc_fail(ptyc_status status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, args);
  va_end(args);
  return status;
}
