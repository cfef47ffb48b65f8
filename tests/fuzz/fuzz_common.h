/* What the libFuzzer targets of tests/fuzz share: a scratch file per process and the
 * checks every answer of ptyc must pass, whatever the input:
 *   - no crash, no sanitizer report, no leak (the sanitizers check these);
 *   - a failure carries a one-line message: non-empty, no newline;
 *   - a failure is an error status, never PTYC_OK with garbage.
 * A broken check calls abort(), which libFuzzer reports as a crash with the input. */
#ifndef PTYC_FUZZ_COMMON_H
#define PTYC_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptyc/status.h"

/* "<TMPDIR or /tmp>/ptyc_fuzz_<pid>_<tag>": one file per process, so that parallel
 * fuzzing jobs (-jobs=N) do not share it. */
static inline const char *fuzz_scratch_path(const char *tag, char *buf, size_t size) {
  const char *dir = getenv("TMPDIR");
  snprintf(buf, size, "%s/ptyc_fuzz_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(), tag);
  return buf;
}

/* Writes `size` bytes to a new file `path` (replacing it); aborts if it cannot, since
 * every later result would be meaningless. The old file is removed first, so that each
 * input is a new file (a new inode): libhdf5 remembers files it failed to open by their
 * inode, and a finding must not depend on the inputs before it. */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
  remove(path);
  FILE *f = fopen(path, "wb");
  if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* Checks the answer of one call: an error must come with a one-line message. */
static inline void fuzz_check_status(ptyc_status st, const char *call) {
  if (st == PTYC_OK) return;
  const char *message = ptyc_last_error();
  if ((int)st < 0 || (int)st >= (int)PTYC_STATUS_COUNT) {
    fprintf(stderr, "%s returned the invalid status %d\n", call, (int)st);
    abort();
  }
  if (message == NULL || message[0] == '\0' || strchr(message, '\n') != NULL) {
    fprintf(stderr, "%s failed (%s) without a one-line message: \"%s\"\n", call,
            ptyc_status_str(st), message ? message : "(null)");
    abort();
  }
}

#endif
