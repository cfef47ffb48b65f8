/* libFuzzer target: the --set parser. The input is a list of "group.key=value"
 * overrides, one per line (at most 32), applied with no job file.
 *
 * Whatever the lines, ptyc_options_load answers PTYC_OK or an error with a one-line
 * message, and an accepted job prints to text. */
#include "fuzz_common.h"

#include "ptyc/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_OVERRIDES = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A NUL-terminated copy, cut into lines in place (as argv strings would be). */
  char *copy = malloc(size + 1);
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  copy[size] = '\0';
  const char *overrides[MAX_OVERRIDES];
  int n = 0;
  for (char *line = copy; line && n < MAX_OVERRIDES;) {
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    overrides[n++] = line;
    line = end ? end + 1 : NULL;
  }

  ptyc_options opts;
  ptyc_status st = ptyc_options_load(NULL, overrides, n, &opts);
  fuzz_check_status(st, "ptyc_options_load");
  if (st == PTYC_OK) {
    char *text = NULL;
    fuzz_check_status(ptyc_options_to_text(&opts, &text), "ptyc_options_to_text");
    free(text);
  }
  free(copy);
  return 0;
}
