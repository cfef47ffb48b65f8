#include "ptyc/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
  /* Formatted aside first, so that the arguments may include ptyc_last_error(). */
  char message[sizeof last_error];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  /* One line, whatever the message quotes (a job file's string, a file name): control
   * characters such as newlines become spaces. */
  for (char *c = message; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
  memcpy(last_error, message, sizeof last_error);
  return status;
}
